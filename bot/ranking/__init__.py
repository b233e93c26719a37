"""Ranking the indexed records for a question: the lexical and dense channels, their fusion, the scorers that
adjust a fused score (coverage, title precision, variant preference, plan signals) and the confidence gate.

``bot.ranking.ranker.Ranker`` wires them; every weight lives in ``bot.ranking.weights.RankingWeights``. The package
imports nothing here, so a module can take the weights without loading the rest.
"""
