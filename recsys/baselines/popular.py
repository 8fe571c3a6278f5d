"""Most popular: every user gets the posts with the most interactions in the history the
evaluation holds for the split (train; train + valid on a temporal test; distinct users weighted
by recency where the dataset has a half-life, `recsys.prior`), ranked exactly as the server ranks
posts for a user it cannot place (`recsys.inference.population_prior`: newest first among equal
counts, lower post index after that)."""

from __future__ import annotations

import time

import numpy as np
import scipy.sparse as sp
import torch

from recsys.inference import population_prior
from recsys.interactions import InteractionData


class PopularScorer:
    name = "popular"

    def __init__(self, counts: np.ndarray, created_us: np.ndarray | None, info: dict, data: InteractionData | None = None) -> None:
        self.counts, self.created_us, self.data = counts, created_us, data
        self.prior = torch.from_numpy(population_prior(counts, created_us))  # (N,)
        self.info = info

    def score(self, user_idx: np.ndarray) -> torch.Tensor:
        return self.prior.expand(len(user_idx), -1)  # (B, N) view; the harness copies it

    def shared_scores(self) -> torch.Tensor:
        """The one row every user gets (`recsys.evaluation` ranks it once)."""
        return self.prior

    def for_history(self, history: sp.csr_matrix, split: str) -> "PopularScorer":
        counts = self.data.popularity_for(split) if self.data is not None else np.asarray(history.sum(axis=0), np.float64).ravel()
        return PopularScorer(counts, self.created_us, self.info, self.data)


def fit(data: InteractionData, features=None) -> PopularScorer:
    t0 = time.perf_counter()
    counts = data.popularity_for("valid")  # (N,) the train history's
    info = {"config": {"half_life_s": data.half_life_s}, "fit_s": round(time.perf_counter() - t0, 4)}
    return PopularScorer(counts, data.post_created_us, info, data)
