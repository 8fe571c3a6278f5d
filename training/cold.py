"""Choose the cold channel of a trained run on VALID (`recsys.cold_channel`): a post without an ID
row is scored <u_lam, p> + beta cos(h, k) + c, u_lam the user's vector with `cold_scale` lam on
the user side, cos(h, k) the match of its content key with the user's history keys.

Why: cold posts are ranked by their content (and the ID rows they borrow) only; how much of the
user's content profile and of the content-key match should meet them, and how far they should be
lifted or lowered against posts the model has ID rows for, depends on the dataset: chosen here on
valid, never on test. Two questions, each asked of the valid figure that answers it:

1. Order among new posts: (lam, beta). Scored with every cold post placed above every warm one
   (c = `FIRST`: the cold-post recall@20 is then the recall of the cold posts ranked among
   themselves), the highest valid recall@20 on cold posts; among equal ones the first in the
   order tried (beta 0 and the trained lam first). Only users whose valid posts include a cold one
   count here, and c cannot move it, so overall recall (where they are ~7% on TikTok) would
   drown it in the warm users' noise.
2. Place against warm posts: c, with (lam, beta) fixed. Offsets over `OFFSETS` x (1 + beta) (a
   cold post's score spans 1 + beta times the cosines' range), beyond them by doubling while the
   channel's best offset by valid recall@20 lies on the edge (|c| <= 2 + beta). The best valid
   recall@20 overall sets the bar; among the points within one standard error of the paired
   per-user difference from it (the one-standard-error rule of the popularity blend: a maximum
   over a noisy valid set is partly noise), the one with the highest valid recall@20 on cold
   posts; then the higher recall, then the first tried. Only points that
   give cold posts at least the valid recall@20 the channel off gives them are eligible (the
   channel off, lam = content_scale, beta = 0, c = 0, always is): the channel exists to carry new
   posts, and where they are a small share of valid, burying them can win a few warm hits on
   valid while the platform loses what it cannot measure offline (a post nobody is shown never
   gets the interactions that would show it was wanted).
"""

from __future__ import annotations

import dataclasses
import logging

import numpy as np

logger = logging.getLogger(__name__)

RATIOS = (1.0, 0.5, 0.25, 0.125, 0.0625, 1.5, 2.0)  # lam / content_scale (1 first: the trained user vector)
MAX_RATIO = 8.0  # lam at most 8x the trained content scale
KEY_WEIGHTS = (0.0, 0.25, 0.5, 1.0, 2.0, 4.0)  # beta (0 first: no content-key match)
OFFSETS = (0.0, -0.05, 0.025, 0.05, 0.1, -0.1, 0.2, -0.2, 0.3, -0.3, 0.4, -0.4, 0.6, -0.6, 0.8, -0.8)  # c, before extension
FIRST = 3.0  # + beta: a cold post's score then exceeds every warm post's (cosines: |<u, p>| <= 1)
MAX_STEPS = 8  # rounds of edge extension


def score_points(run, scorer, data, split: str, points, ks=(20,)):
    """For each (r, beta, c) of `points`: ((lam, beta, c), `recsys.evaluation.evaluate` result on
    `split`, kept lists and per-user figures included) of `scorer` (a `recsys.runs.RunScorer` of
    `run`, the channel off) with the channel at lam = r * content_scale, key weight beta, offset
    c. Post vectors are split from the scorer's; user vectors are recomputed per (r, beta) (c does
    not change them). `run.model.cfg` is left as it was."""
    import torch

    from recsys.cold_channel import split_posts
    from recsys.evaluation import evaluate
    from recsys.interactions import rows_of
    from recsys.runs import RunScorer, VectorScorer

    if run.cold_channel or run.pop_weight > 0:
        raise ValueError(f"{run.run_dir}: the cold channel is chosen on a run without it and without the popularity blend")
    cfg = run.model.cfg
    s = float(cfg.content_scale)
    base = scorer.posts.numpy()  # (N, d)
    cold = rows_of(run.post_table_ids, np.asarray(data.post_ids, np.int64)) < 0  # (N,) no ID row
    keys, users = None, (None, None)  # users: ((r, beta), their user vectors): c does not change them
    try:
        for r, beta, c in points:
            if beta > 0 and keys is None:
                keys = run.content_keys(scorer.latents)  # (N, Z)
            run.model.cfg = dataclasses.replace(cfg, cold_scale=float(r * s), cold_offset=float(c), cold_key_weight=float(beta))
            posts = split_posts(base, cold, c, keys if beta > 0 else None)
            if users[0] != (r, beta):
                fresh = RunScorer(scorer.name, run, data, scorer.latents, posts, scorer.histories)
                users = ((r, beta), fresh.for_history(data.history_for(split), split).users)
            res = evaluate(VectorScorer(scorer.name, users[1], torch.from_numpy(posts)), data, split, ks=ks, keep_lists=True)
            yield (float(r * s), float(beta), float(c)), res
    finally:
        run.model.cfg = cfg


def _key(res) -> tuple[float, float]:
    """(recall@20, recall@20 on cold posts) of an `evaluate` result."""
    return float(res["metrics"]["recall@20"]), float(res["buckets"]["items"]["cold"]["recall@20"] or 0.0)


def order_points(tried: list[tuple[float, float]], cold_recall: list[float]) -> list[tuple[float, float]]:
    """Stage 1's extension: the (r, beta) pairs next to the best of `tried` (highest cold recall,
    the first of equal ones) past the edge of what was tried: r halved where it is the smallest
    ratio, doubled where it is the largest (up to MAX_RATIO), beta doubled where it is the
    largest positive weight. [] = the best is inside."""
    i = max(range(len(tried)), key=lambda j: (cold_recall[j], -j))
    r, b = tried[i]
    out = []
    if r <= min(t[0] for t in tried):
        out.append((r / 2, b))
    if r >= max(t[0] for t in tried) and 2 * r <= MAX_RATIO:
        out.append((2 * r, b))
    if b > 0 and b >= max(t[1] for t in tried):
        out.append((r, 2 * b))
    return [p for p in out if p not in tried]


def offset_points(tried: list[float], best: float, limit: float) -> list[float]:
    """Stage 2's extension: c doubled past the edge of `tried` where `best` (one of them) is the
    largest positive or the most negative offset tried, within |c| <= limit. [] = best is inside
    (no refinement between grid points: at a finer step valid's curve is mostly noise)."""
    cs = sorted(set(tried))
    out = []
    if best > 0 and best >= cs[-1] and 2 * best <= limit:
        out.append(2 * best)
    if best < 0 and best <= cs[0] and -2 * best <= limit:
        out.append(2 * best)
    return [c for c in out if c not in tried]


def one_se_cold(per_user: list[np.ndarray], keys: list[tuple[float, float]]) -> tuple[int, int, float]:
    """Stage 2's choice: per-user valid recall@20 of each point (order tried, [0] the channel off)
    and their (recall@20, cold recall@20) -> (chosen, best, se). `best`: the highest recall among
    the eligible points (cold recall at least the channel off's); `chosen`: among eligible points
    within one standard error of the per-user difference from best, the highest cold recall, then
    the higher recall, then the first tried."""
    from training.blend import paired_se

    floor = keys[0][1]
    eligible = [i for i, k in enumerate(keys) if k[1] >= floor]
    best = max(eligible, key=lambda i: (keys[i][0], -i))
    band = [i for i in eligible if keys[i][0] >= keys[best][0] - paired_se(per_user[best], per_user[i])]
    chosen = max(band, key=lambda i: (keys[i][1], keys[i][0], -i))
    return chosen, best, paired_se(per_user[best], per_user[chosen])


def choose_cold_channel(run, scorer, data, ratios=RATIOS, key_weights=KEY_WEIGHTS, offsets=OFFSETS) -> dict:
    """The two stages of the module docstring, on valid -> {"cold_scale", "cold_key_weight",
    "cold_offset" (cold_scale 0 = off), "valid_recall@20", "valid_cold_recall@20",
    "trained_cold_recall@20" (the channel off's: the floor), "best" ([lam, beta, c, recall, cold
    recall] of stage 2's highest eligible recall), "se" (of the chosen point against it),
    "order": [[lam, beta, cold recall among cold posts], ...] (stage 1), "grid": [[lam, beta, c,
    recall, cold recall], ...] (stage 2, the channel off first), both in the order tried}.
    `run.model.cfg` is left as it was."""
    from recsys.evaluation import per_user_recall

    s = float(run.model.cfg.content_scale)
    off = {"cold_scale": 0.0, "cold_key_weight": 0.0, "cold_offset": 0.0, "valid_recall@20": None, "valid_cold_recall@20": None,
           "trained_cold_recall@20": None, "best": None, "se": None, "order": [], "grid": []}
    if s <= 0 or run.post_table is None:
        logger.info("cold channel: not chosen (content_scale %s, ID table %s)", s, run.post_table is not None)
        return off
    if ratios[0] != 1.0 or key_weights[0] != 0.0 or offsets[0] != 0.0:
        raise ValueError(f"the cold channel's grids start with the channel off (r 1, beta 0, c 0), got {ratios[0]}, {key_weights[0]}, {offsets[0]}")
    # stage 1: the order among cold posts
    tried, within = [], []

    def order(points):
        for _, res in score_points(run, scorer, data, "valid", [(r, b, FIRST + b) for r, b in points]):
            within.append(_key(res)[1])
        tried.extend(points)

    order([(r, b) for b in key_weights for r in ratios])
    for _ in range(MAX_STEPS):
        more = order_points(tried, within)
        if not more:
            break
        order(more)
    i = max(range(len(tried)), key=lambda j: (within[j], -j))
    ratio, beta = tried[i]
    # stage 2: the place against warm posts
    grid, per_user, keys, cs = [], [], [], []

    def place(points):
        for (lam, b, c), res in score_points(run, scorer, data, "valid", points):
            k = _key(res)
            grid.append([lam, b, c, round(k[0], 6), round(k[1], 6)])
            per_user.append(per_user_recall(res, 20)[1])
            keys.append(k)
            cs.append(c)

    scale = 1.0 + beta  # cold scores span (1 + beta) times the cosines' range: so do the offsets tried
    place([(1.0, 0.0, 0.0)] + [(ratio, beta, round(c * scale, 6)) for c in offsets])  # the channel off, then (lam, beta)'s offsets
    limit = 2.0 + beta  # past it every cold post lies above (below) every warm one
    for _ in range(MAX_STEPS):
        top = max(range(1, len(keys)), key=lambda i: (keys[i][0], -i))  # the channel's best offset, eligible or not
        more = offset_points(cs[1:], cs[top], limit)
        if not more:
            break
        place([(ratio, beta, c) for c in more])
    chosen, best, se = one_se_cold(per_user, keys)
    lam, b, c, r, rc = grid[chosen]
    is_off = chosen == 0 or (lam == s and b == 0.0 and c == 0.0)
    logger.info(
        "cold channel on valid: lam=%s beta=%s c=%s recall@20 %.4f cold %.4f (off: %.4f cold %.4f; best lam=%s beta=%s c=%s %.4f cold %.4f, "
        "one standard error %.4f)", lam, b, c, r, rc, grid[0][3], grid[0][4], *grid[best], se,
    )
    return {
        "cold_scale": 0.0 if is_off else lam, "cold_key_weight": 0.0 if is_off else b, "cold_offset": 0.0 if is_off else c,
        "valid_recall@20": r, "valid_cold_recall@20": rc, "trained_cold_recall@20": keys[0][1], "best": grid[best], "se": round(se, 6),
        "order": [[r_ * s, b_, round(w, 6)] for (r_, b_), w in zip(tried, within)], "grid": grid,
    }
