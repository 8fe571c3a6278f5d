"""What "popular" means on a platform: each post's distinct users, each weighted by how recent
their interaction is, 2^(-age / half_life) (age = now - the user's latest interaction with the
post; no half-life = every user counts 1, the all-time count). The population prior (a user
nobody knows), the popular baseline and the popularity blend's z(p) rank by these counts
(`recsys.inference.post_popularity`); evaluation computes them for each split from the history
it is scored from, a bundle from every interaction it holds (`index.build`, `index.fold`).

The half-life is a property of the platform, chosen on VALID when `recsys split` makes the
temporal split (`choose_half_life`): the counts of train at train's end rank every post for every
valid user (their train posts masked), recall@20; the grid HALF_LIVES (no decay first), extended
past its short end by halving while valid rises. Ties keep the earlier (longer) point. Stored in
dataset.json under "popularity"; a dataset without timestamps, an imported benchmark with its
fixed protocol, or a split made before it keeps the all-time counts.

Why: on a platform whose interests move (trends, news, releases) what many people engage with
now predicts the next period better than what many engaged with ever; the synthetic platform's
bursts made the prior's valid recall@20 2-3x the all-time counts'. Where nothing moves, valid
keeps no decay.
"""

from __future__ import annotations

import logging

import numpy as np
import polars as pl
import scipy.sparse as sp

logger = logging.getLogger(__name__)

HOUR = 3600.0
# half-lives in seconds; None = no decay (the all-time counts), tried first
HALF_LIVES: tuple[float | None, ...] = (None, 90 * 24 * HOUR, 30 * 24 * HOUR, 7 * 24 * HOUR, 2 * 24 * HOUR,
                                         24 * HOUR, 12 * HOUR, 6 * HOUR, 3 * HOUR, HOUR)
MIN_HALF_LIFE = 60.0  # the extension past the grid's short end stops at a minute
K = 20


def decay_weights(ts_us: np.ndarray, now_us: int, half_life_s: float | None) -> np.ndarray:
    """float64 (E,) weights of interactions at times int64 µs (E,): 2^(-age / half_life), 1
    without a half-life; a missing time (the int64 minimum) counts as now."""
    ts = np.asarray(ts_us, np.int64)
    if half_life_s is None:
        return np.ones(len(ts))
    age_s = np.maximum(now_us - np.where(ts == np.iinfo(np.int64).min, now_us, ts), 0) / 1e6
    return np.exp2(-age_s / float(half_life_s))


def _ts_us(interactions: pl.DataFrame) -> pl.Expr:
    """The `ts` column as int64 µs (a datetime column, or int64 µs already)."""
    return pl.col("ts").dt.epoch("us") if interactions.schema["ts"] != pl.Int64 else pl.col("ts")


def latest_pairs(interactions: pl.DataFrame) -> pl.DataFrame:
    """Distinct (user_id, post_id) with the latest time of each (column `t`, int64 µs, the int64
    minimum where unknown), sorted by (post_id, user_id): group_by's own order varies between
    calls, and the weights are summed in this order, so the counts are the same to the bit."""
    return (interactions.select("user_id", "post_id", _ts_us(interactions).fill_null(np.iinfo(np.int64).min).alias("t"))
            .group_by("user_id", "post_id").agg(pl.col("t").max()).sort("post_id", "user_id"))


def now_of(interactions: pl.DataFrame) -> int | None:
    """The latest interaction time (int64 µs) or None where no interaction has a time."""
    if interactions.is_empty():
        return None
    m = interactions.select(_ts_us(interactions).max()).item()
    return None if m is None else int(m)


def recall_of_ranking(order: np.ndarray, history: sp.csr_matrix, target: sp.csr_matrix, k: int = K, chunk: int = 2048) -> float:
    """Mean recall@k over users with a target post, every user shown `order` (int64 (N,) post
    rows, best first) without the posts of their history. history, target: (U, N) binary; a target
    post already in the history is not relevant (`recsys.evaluation.relevant_items`)."""
    from recsys.evaluation import relevant_items

    h = history.tocsr()
    target = relevant_items(target, h)
    users = np.flatnonzero(np.diff(target.indptr) > 0)
    if not len(users):
        return 0.0
    out = []
    for s in range(0, len(users), chunk):
        u = users[s : s + chunk]
        depth = min(len(order), k + int(np.diff(h[u].indptr).max(initial=0)))
        top = order[:depth]  # no user loses more than their history's length from it
        seen = (h[u][:, top] != 0).toarray()  # (B, depth)
        keep = ~seen & (np.cumsum(~seen, axis=1) <= k)  # each user's first k unseen posts
        hits = (target[u][:, top].toarray() != 0) & keep
        out.append(hits.sum(1) / np.diff(target.indptr)[u])
    return float(np.concatenate(out).mean())


def choose_half_life(train: pl.DataFrame, history: sp.csr_matrix, target: sp.csr_matrix, post_ids: np.ndarray,
                     created_us: np.ndarray | None = None) -> dict:
    """The half-life of the popularity counts chosen on valid (module docstring).
    train: the train interactions (user_id, post_id, ts); history / target: binary (U, N) train /
    valid matrices over `post_ids`. -> {"half_life_s" (None = no decay), "valid_recall@20",
    "grid": [[half_life_s, recall], ...] in the order tried}."""
    from recsys.inference import popularity_order, post_popularity

    now = now_of(train)
    if now is None:
        return {"half_life_s": None, "valid_recall@20": None, "grid": [], "reason": "no timestamps"}
    pairs = latest_pairs(train)
    grid: list[list] = []

    def score(hl):
        counts = post_popularity(train, post_ids, hl, now, pairs=pairs)
        r = recall_of_ranking(popularity_order(counts, created_us), history, target)
        grid.append([hl, round(r, 6)])
        return r

    best = (None, score(None))
    for hl in HALF_LIVES[1:]:
        r = score(hl)
        if r > best[1] + 1e-12:
            best = (hl, r)
    while best[0] is not None and best[0] == min(g[0] for g in grid if g[0] is not None) and best[0] / 2 >= MIN_HALF_LIFE:
        hl = best[0] / 2
        r = score(hl)
        if r <= best[1] + 1e-12:
            break
        best = (hl, r)
    logger.info("popularity half-life on valid: %s (recall@20 %.4f; no decay %.4f)", best[0], best[1], grid[0][1])
    return {"half_life_s": best[0], "valid_recall@20": round(best[1], 6), "grid": grid}


def half_life_of(meta: dict) -> float | None:
    """The dataset's half-life (dataset.json "popularity"), None = the all-time counts.
    SchemaError when the file holds anything but null or a positive number of seconds."""
    from recsys.errors import SchemaError

    pop = meta.get("popularity") or {}
    hl = pop.get("half_life_s") if isinstance(pop, dict) else pop
    if hl is None:
        return None
    if isinstance(hl, bool) or not isinstance(hl, (int, float)) or not hl > 0:
        raise SchemaError(f"dataset.json: popularity.half_life_s must be null or a positive number of seconds, got {hl!r} "
                          "(`recsys split --force` chooses it again)")
    return float(hl)
