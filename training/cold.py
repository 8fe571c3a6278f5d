"""Choose the cold channel of a trained run on VALID (`recsys.cold_channel`): a post without an ID
row is scored <u_lam, p> + c, u_lam the user's vector with `cold_scale` lam on the user side.

Why: cold posts are ranked by their content (and the ID rows they borrow) only; how much of the
user's content profile should meet them, and how far they should be lifted or lowered against
posts the model has ID rows for, depends on the dataset: chosen here on valid, never on test.

Grid: lam = r * content_scale for r in RATIOS, c in OFFSETS. r = 1, c = 0 is the channel off (the
scores of the run as trained). Where the best point lies on the edge of what was tried (the largest
or smallest offset, the largest or smallest ratio), the search goes on past that edge, doubling
(halving the ratio downwards) while valid rises, within |c| <= 1 (scores <u, p> are cosines) and
r <= MAX_RATIO: the grid only fixes where the search starts, not how far a dataset may go.
Selection, fixed before any test figure was seen: the highest valid recall@20; among equal ones the
highest valid recall@20 on cold posts (the posts this channel is for); among those the first in the
order tried, which starts with the channel off. Only points that give cold posts at least the valid
recall@20 the channel off gives them are eligible (the channel off always is): the channel exists to
carry new posts, and where they are a small share of valid, burying them can win a few warm hits on
valid while the platform loses what it cannot measure offline (a post nobody is shown never gets
the interactions that would show it was wanted).
"""

from __future__ import annotations

import dataclasses
import logging

import numpy as np

logger = logging.getLogger(__name__)

RATIOS = (1.0, 0.25, 0.5, 0.75, 1.5, 2.0)  # lam / content_scale (1 first: with c = 0 the channel off)
OFFSETS = (0.0, -0.05, 0.025, 0.05, 0.1)  # c (scores <u, p> are cosines in [-1, 1])


MAX_RATIO = 8.0  # lam at most 8x the trained content scale
MAX_STEPS = 8  # rounds of edge extension


def score_points(run, scorer, data, split: str, points, ks=(20,)):
    """For each (r, c) of `points`: (lam, c, `recsys.evaluation.evaluate` result on `split`) of
    `scorer` (a `recsys.runs.RunScorer` of `run`, the channel off) with the channel at lam =
    r * content_scale, offset c. Post vectors are split from the scorer's; user vectors are
    recomputed per point. `run.model.cfg` is left as it was."""
    from recsys.cold_channel import split_posts
    from recsys.evaluation import evaluate
    from recsys.interactions import rows_of
    from recsys.runs import RunScorer

    if run.cold_channel or run.pop_weight > 0:
        raise ValueError(f"{run.run_dir}: the cold channel is chosen on a run without it and without the popularity blend")
    cfg = run.model.cfg
    s = float(cfg.content_scale)
    base = scorer.posts.numpy()  # (N, d)
    cold = rows_of(run.post_table_ids, np.asarray(data.post_ids, np.int64)) < 0  # (N,) no ID row
    try:
        for r, c in points:
            run.model.cfg = dataclasses.replace(cfg, cold_scale=float(r * s), cold_offset=float(c))
            fresh = RunScorer(scorer.name, run, data, scorer.latents, split_posts(base, cold, c), scorer.histories)
            yield float(r * s), float(c), evaluate(fresh.for_history(data.history_for(split), split), data, split, ks=ks)
    finally:
        run.model.cfg = cfg


def edge_points(tried, best) -> list[tuple[float, float]]:
    """The points past the edge of `tried` ((r, c) pairs scored so far) next to `best` (one of them):
    c doubled where best's c is the largest positive (smallest negative) offset tried, within
    |c| <= 1; r doubled where best's r is the largest ratio tried (up to MAX_RATIO), halved where it
    is the smallest. Points already tried are left out. [] = best is inside: the search stops."""
    r, c = best
    rs, cs = [t[0] for t in tried], [t[1] for t in tried]
    out = []
    if c > 0 and c >= max(cs) and 2 * c <= 1.0:
        out.append((r, 2 * c))
    if c < 0 and c <= min(cs) and 2 * c >= -1.0:
        out.append((r, 2 * c))
    if r >= max(rs) and 2 * r <= MAX_RATIO:
        out.append((2 * r, c))
    if r <= min(rs):
        out.append((r / 2, c))
    seen = set(tried)
    return [p for p in out if p not in seen]


def best_point(keys: list[tuple[float, float]]) -> int:
    """(valid recall@20, valid cold-post recall@20) per point in the order tried, keys[0] the channel
    off -> the index of the chosen point: among the points whose cold-post recall is at least the
    channel off's, the highest recall, then the highest cold-post recall, then the first tried."""
    floor = keys[0][1]
    return max((i for i, k in enumerate(keys) if k[1] >= floor), key=lambda i: (keys[i], -i))


def choose_cold_channel(run, scorer, data, ratios=RATIOS, offsets=OFFSETS) -> dict:
    """The grid scored on valid, extended past its edge where the best eligible point lies there
    (module docstring) -> {"cold_scale", "cold_offset" (cold_scale 0 = off), "valid_recall@20",
    "valid_cold_recall@20", "trained_cold_recall@20" (the channel off's: the floor), "grid": [[lam, c,
    recall, cold recall], ...] in the order tried}.
    `run.model.cfg` is left as it was."""
    s = float(run.model.cfg.content_scale)
    if s <= 0 or run.post_table is None:
        logger.info("cold channel: not chosen (content_scale %s, ID table %s)", s, run.post_table is not None)
        return {"cold_scale": 0.0, "cold_offset": 0.0, "valid_recall@20": None, "valid_cold_recall@20": None, "trained_cold_recall@20": None, "grid": []}
    grid, tried, keys = [], [], []  # keys: (valid recall@20, valid cold recall@20) per point tried

    def score(points):
        for (lam, c, res), (ratio, c0) in zip(score_points(run, scorer, data, "valid", points), points):  # generator first: it runs to its end
            key = (float(res["metrics"]["recall@20"]), float(res["buckets"]["items"]["cold"]["recall@20"] or 0.0))
            grid.append([lam, c, round(key[0], 6), round(key[1], 6)])
            tried.append((ratio, c0))
            keys.append(key)

    if (ratios[0], offsets[0]) != (1.0, 0.0):
        raise ValueError(f"the cold channel's grid starts with the channel off (r 1, c 0), got r {ratios[0]}, c {offsets[0]}")
    score([(r, c) for r in ratios for c in offsets])
    for _ in range(MAX_STEPS):
        before = best_point(keys)
        score(edge_points(tried, tried[before]))
        if best_point(keys) == before:
            break
    i = best_point(keys)
    (r, rc), (ratio, c) = keys[i], tried[i]
    lam = float(ratio * s)
    off = lam == s and c == 0.0
    top = max(range(len(keys)), key=lambda j: (keys[j], -j))
    logger.info(
        "cold channel on valid: lam=%s c=%s recall@20 %.4f cold %.4f (off: %.4f cold %.4f%s)", lam, c, r, rc, grid[0][2], grid[0][3],
        "" if top == i else f"; not eligible: lam={grid[top][0]} c={grid[top][1]} recall@20 {grid[top][2]:.4f} cold {grid[top][3]:.4f}",
    )
    return {
        "cold_scale": 0.0 if off else lam, "cold_offset": 0.0 if off else c, "valid_recall@20": r, "valid_cold_recall@20": rc,
        "trained_cold_recall@20": keys[0][1], "grid": grid,
    }
