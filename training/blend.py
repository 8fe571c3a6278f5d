"""Choose the popularity blend of a trained run on VALID (`recsys.runs.LoadedRun`, "Popularity
blend"): score = <u, p> + a * w(n) * z(p), w(n) = h / (h + n).

Why: the retrieval loss is trained with the logQ correction, so <u, p> ranks by affinity with the
popularity taken out. For a user the model knows well that is what we want; for a user with a
short history the affinity is a guess and what most people engage with is the better bet. How
much, and how fast it fades with the history, is chosen here on valid, per dataset, never on test.

Shapes: U users, N posts, d retrieval dim.
"""

from __future__ import annotations

import logging

import numpy as np
import torch

logger = logging.getLogger(__name__)

WEIGHTS = (0.0, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0, 1.5, 2.0)  # a: the popularity coordinate's weight (<u, p> is in [-1, 1])
HALVES = (0.0, 2.0, 5.0, 10.0, 20.0)  # h: history length at which the weight halves (0 = constant)
MAX_WEIGHT = 16.0  # where the best a is the grid's largest, a is doubled while valid rises, up to this


class _Blended:
    """<u, p> + a w(n) z(p) for precomputed (U, d) users, (N, d) posts."""

    name = "model+popularity"

    def __init__(self, users: torch.Tensor, posts: torch.Tensor, z: torch.Tensor, w: torch.Tensor) -> None:
        self.users, self.posts_t, self.z, self.w = users, posts.T.contiguous(), z, w

    def score(self, user_idx: np.ndarray) -> torch.Tensor:
        u = torch.from_numpy(np.asarray(user_idx, np.int64))
        return self.users[u] @ self.posts_t + self.w[u, None] * self.z[None, :]  # (B, N)


def choose_pop_blend(run, scorer, data, weights=WEIGHTS, halves=HALVES) -> dict:
    """Grid (a, h) scored by valid recall@20 of `scorer` (a `recsys.runs.RunScorer` of `run`, blend
    off) -> {"pop_weight", "pop_half", "valid_recall@20", "grid": [[a, h, recall], ...]}.
    Ties keep the smaller weight (a = 0 wins unless the blend helps). Where the best a is the
    largest tried, a is doubled (every h again) while valid rises, up to MAX_WEIGHT: the grid fixes
    where the search starts, not how far a dataset may go (with recency-weighted counts z(p) is
    small beside the training counts' scale, `recsys.prior`)."""
    from recsys.evaluation import evaluate
    from recsys.inference import pad_histories

    if run.pop_weight > 0:
        raise ValueError("choose_pop_blend needs the run without a blend")
    base = scorer.for_history(data.history_for("valid"), "valid")  # VectorScorer, users (U, d), posts (N, d)
    rows = scorer.histories(data.history_splits("valid"))
    n = (pad_histories(rows, run.max_history) >= 0).sum(1)  # (U,) posts the model reads
    z = torch.from_numpy(run.popularity_z(data.popularity_for("valid")))  # (N,) counts valid is scored with
    grid, best = [], None

    def score(a: float) -> None:
        nonlocal best
        for h in halves if a > 0 else (0.0,):
            w = torch.from_numpy(np.asarray(type(run).popularity_weight_of(a, h, n), np.float32))
            r = evaluate(_Blended(base.users, base.posts, z, w), data, "valid", ks=(20,))["metrics"]["recall@20"]
            grid.append([a, h, round(float(r), 6)])
            if best is None or r > best[2] + 1e-12:
                best = (a, h, float(r))

    for a in weights:
        score(a)
    while best[0] > 0 and best[0] == max(g[0] for g in grid) and 2 * best[0] <= MAX_WEIGHT:
        before = best
        score(2 * best[0])
        if best is before:
            break
    logger.info("popularity blend on valid: a=%s h=%s recall@20 %.4f (a=0: %.4f)", best[0], best[1], best[2], grid[0][2])
    return {"pop_weight": best[0], "pop_half": best[1], "valid_recall@20": best[2], "grid": grid}
