"""Learning what is hand-set (issue 16, step 3): a training corpus generated from the knowledge itself
(:mod:`bot.learning.corpus`), a learned ranking and answer/decline decision over the ranker's own score terms
(:mod:`bot.learning.model`), and the command that trains them (:mod:`bot.learning.train`, ``python -m bot learn``).

The ranker imports only :mod:`bot.learning.model` (numpy, no scikit-learn); training imports the rest.
"""
