"""Ranking: full-ranking accuracy (``metrics``: HR@K, NDCG@K, seen items masked, ties against the target) and the
beyond-accuracy metrics of the same top-K lists (``beyond``: coverage, Gini, popularity, tail share, group NDCG)."""

from recprobe.ranking.metrics import evaluate_ranking, ranks_and_top

__all__ = ["evaluate_ranking", "ranks_and_top"]
