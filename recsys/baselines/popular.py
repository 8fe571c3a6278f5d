"""Most popular: every user gets the posts with the most train interactions (ties: lower post
index first, as the evaluation breaks every tie)."""

from __future__ import annotations

import time

import numpy as np
import torch

from recsys.interactions import InteractionData


class PopularScorer:
    name = "popular"

    def __init__(self, counts: np.ndarray, info: dict) -> None:
        self.counts = torch.as_tensor(counts, dtype=torch.float32)  # (N,)
        self.info = info

    def score(self, user_idx: np.ndarray) -> torch.Tensor:
        return self.counts.expand(len(user_idx), -1)  # (B, N) view; the harness copies it


def fit(data: InteractionData, features=None) -> PopularScorer:
    t0 = time.perf_counter()
    counts = np.asarray(data.train.sum(axis=0), dtype=np.float64).ravel()  # (N,)
    return PopularScorer(counts, {"config": {}, "fit_s": round(time.perf_counter() - t0, 4)})
