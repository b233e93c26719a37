"""The Vietnamese NLU layer of the Rasa conversation: tokenizer, entity extractors, training.

* :mod:`bot.nlu.words` — folded, segmented words located in the original text (the tokenizer's logic)
* :mod:`bot.nlu.procedure_names` — procedure names generated from the knowledge base, and their matcher
* :mod:`bot.nlu.localities` — addresses named as today's units (old ones converted)
* :mod:`bot.nlu.facts` — the facts that select a procedure variant
* :mod:`bot.nlu.choices` — a chosen option and a rating
* :mod:`bot.nlu.entities` — one value per entity type from a parse result
* :mod:`bot.nlu.components` — the Rasa graph components wrapping the above (config.yml)
* :mod:`bot.nlu.generate` — ``python -m bot.nlu.generate``: the lookup table from the knowledge base
* :mod:`bot.nlu.train` — ``python -m bot train``: train, skipped when nothing changed
* :mod:`bot.nlu.evaluate` — ``python -m bot.nlu.evaluate``: cross-validation report (docs/nlu.md)

Importing this package is cheap; only :mod:`bot.nlu.components`, :mod:`bot.nlu.train` and
:mod:`bot.nlu.evaluate` import Rasa (and TensorFlow).
"""
