"""Choose the popularity blend of a trained run on VALID (`recsys.runs.LoadedRun`, "Popularity
blend"): score = <u, p> + a * w(n) * z(p), w(n) = h / (h + n).

Why: the retrieval loss is trained with the logQ correction, so <u, p> ranks by affinity with the
popularity taken out. For a user the model knows well that is what we want; for a user with a
short history the affinity is a guess and what most people engage with is the better bet. How
much, and how fast it fades with the history, is chosen here on valid, per dataset, never on test.

Selection: the one-standard-error rule. The grid's best point by valid recall@20 sets the bar; the
first point in the order tried (a = 0 first, then a ascending, h in HALVES' order) whose recall is
within one standard error of the paired per-user difference from the best is chosen. The maximum
over ~40 points of a small valid set is partly noise: the blend lowers every post without counts
(new posts), so a weight taken for a hit or two of valid is paid for by them (data in MMRec's layout:
a = 0.1 for one valid hit, cold-post test recall 0.093 -> 0.037). Where the blend's gain is real the
rule keeps a blend, possibly a smaller one.

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


def paired_se(best: np.ndarray, other: np.ndarray) -> float:
    """The standard error of the mean per-user difference between two points' figures, float
    (U,) each (0 with fewer than two users): the band of the one-standard-error rules."""
    n = len(best)
    return float(np.std(best - other, ddof=1) / np.sqrt(n)) if n > 1 else 0.0


def one_se_choice(recalls: np.ndarray) -> tuple[int, int, float]:
    """Per-user valid recall@20 of each point in the order tried, float (P, U) -> (chosen, best,
    se): `best` the point with the highest mean (the first of equal ones), `chosen` the first point
    whose mean is at least best's minus `se`, the standard error of the per-user difference between
    best and that point (se of the chosen point returned)."""
    r = np.asarray(recalls, np.float64)
    means = r.mean(1)
    best = int(np.argmax(means))
    for i in range(len(r)):
        se = paired_se(r[best], r[i])
        if means[i] >= means[best] - se:
            return i, best, se
    return best, best, 0.0  # not reached: best itself qualifies


def choose_pop_blend(run, scorer, data, weights=WEIGHTS, halves=HALVES) -> dict:
    """Grid (a, h) scored by valid recall@20 of `scorer` (a `recsys.runs.RunScorer` of `run`, blend
    off) -> {"pop_weight", "pop_half", "valid_recall@20", "best": [a, h, recall] (the grid's
    maximum), "se" (of the chosen point against it), "grid": [[a, h, recall], ...] in the order
    tried}. The choice is the one-standard-error rule (module docstring). Where the best a is the
    largest tried, a is doubled (every h again) while valid rises, up to MAX_WEIGHT: the grid fixes
    where the search starts, not how far a dataset may go (with recency-weighted counts z(p) is
    small beside the training counts' scale, `recsys.prior`)."""
    from recsys.evaluation import evaluate, per_user_recall
    from recsys.inference import pad_histories

    if run.pop_weight > 0:
        raise ValueError("choose_pop_blend needs the run without a blend")
    base = scorer.for_history(data.history_for("valid"), "valid")  # VectorScorer, users (U, d), posts (N, d)
    rows = scorer.histories(data.history_splits("valid"))
    n = (pad_histories(rows, run.max_history) >= 0).sum(1)  # (U,) posts the model reads
    z = torch.from_numpy(run.popularity_z(data.popularity_for("valid")))  # (N,) counts valid is scored with
    grid, per_user, best = [], [], None

    def score(a: float) -> None:
        nonlocal best
        for h in halves if a > 0 else (0.0,):
            w = torch.from_numpy(np.asarray(type(run).popularity_weight_of(a, h, n), np.float32))
            res = evaluate(_Blended(base.users, base.posts, z, w), data, "valid", ks=(20,), keep_lists=True)
            r = float(res["metrics"]["recall@20"])
            grid.append([a, h, round(r, 6)])
            per_user.append(per_user_recall(res, 20)[1])
            if best is None or r > best[2] + 1e-12:
                best = (a, h, r)

    for a in weights:
        score(a)
    while best[0] > 0 and best[0] == max(g[0] for g in grid) and 2 * best[0] <= MAX_WEIGHT:
        before = best
        score(2 * best[0])
        if best is before:
            break
    i, _, se = one_se_choice(np.stack(per_user)) if len(per_user[0]) else (0, 0, 0.0)
    a, h = grid[i][0], grid[i][1]
    r = float(np.mean(per_user[i])) if len(per_user[i]) else 0.0
    logger.info(
        "popularity blend on valid: a=%s h=%s recall@20 %.4f (a=0: %.4f; best a=%s h=%s %.4f, one standard error %.4f)",
        a, h, r, grid[0][2], best[0], best[1], best[2], se,
    )
    return {"pop_weight": a, "pop_half": h, "valid_recall@20": r, "best": [best[0], best[1], round(best[2], 6)], "se": round(se, 6), "grid": grid}
