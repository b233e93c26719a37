"""Vietnamese text layer: normalization, folding, tokens for the lexical index, and the domain lexicon.

Import from here::

    from bot.text import normalize, fold, lexical_tokens, load_lexicon

``bot.text.vietnamese`` holds the text functions, ``bot.text.lexicon`` the lexicon
(``knowledge/lexicon.yml``). Importing this package is cheap: underthesea is loaded on the first
call that needs word segmentation.
"""

from bot.text.lexicon import DEFAULT_LEXICON_PATH, Lexicon, LexiconEntry, load_lexicon
from bot.text.vietnamese import (
    STOPWORDS,
    fold,
    has_diacritics,
    lexical_tokens,
    normalize,
    segment,
    syllables,
    warm_up,
)

__all__ = [
    "DEFAULT_LEXICON_PATH",
    "STOPWORDS",
    "Lexicon",
    "LexiconEntry",
    "fold",
    "has_diacritics",
    "lexical_tokens",
    "load_lexicon",
    "normalize",
    "segment",
    "syllables",
    "warm_up",
]
