"""A platform-scale synthetic dataset without media (`recsys synth --size scale`).

    ds = synthesize_scale(Path("data/scale"), ScaleConfig())   # 1M posts, 100k users, 10M events

The small synthetic platform (`recsys.data.synth`) renders real media and simulates every choice
against every post, which is O(users x posts x history): fine for 2,000 posts, hours at 1M. This
generator draws the same kind of world with vectorised numpy and writes feature vectors instead
of media, so that training and evaluation can be measured at the size of a real platform.

The world (seeded; same seed -> identical tables and features):
  topics   `n_topics`; each modality m has a centroid c_m[t] (unit-variance Gaussian, D_m)
  authors  a main topic, a popularity and a posting rate (log-normal), a style vector s_m[a]
  posts    an author (by posting rate), a topic (the author's with `author_focus`, else random),
           a popularity (author popularity x log-normal), a creation time (sorted: post ids
           follow creation order; `pre_window_frac` of them before the window), features
               x_m = c_m[topic] + style_scale * s_m[author] + noise_scale * N(0, I)
           and a missing modality for `missing_frac` of posts (never both)
  users    1-3 preferred topics (Dirichlet weights), 1-3 favourite authors among those topics,
           a join time in the first half of the window and a log-normal activity
  events   user ~ activity, time ~ U(join, end). With `fav_prob` a post of a favourite author,
           otherwise a topic (the user's with `1 - explore_prob`, else uniform) and a post of
           that topic created in the `fresh_days` before the event, both with probability
           proportional to post popularity (all of that author's / topic's earlier posts when
           none is fresh). Repeated (user, post) pairs are dropped; exactly `n_interactions`
           rows are kept. Reactions view/like/comment/share.

Output (a temporary sibling renamed into place, like every dataset writer):
    posts.parquet (no text / media paths), interactions.parquet, splits.parquet (global
    temporal split, as `recsys split`), dataset.json, features/{image,text}.npz
"""

from __future__ import annotations

import dataclasses
import logging
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from recsys.data.synth import EVENTS, US_PER_DAY, _check_out
from recsys.dataset import Dataset, save_dataset, save_splits
from recsys.errors import ConfigError
from recsys.features import ModalityFeatures, save_modality
from recsys.io import atomic_dir, write_json
from recsys.schema import DATASET_META_FILE

logger = logging.getLogger(__name__)



@dataclass(frozen=True)
class ScaleConfig:
    seed: int = 0
    n_posts: int = 1_000_000
    n_users: int = 100_000
    n_interactions: int = 10_000_000
    n_authors: int = 50_000
    n_topics: int = 64
    modalities: tuple[tuple[str, int], ...] = (("image", 64), ("text", 64))
    start: str = "2025-03-01T00:00:00+00:00"
    days: float = 30.0
    pre_window_frac: float = 0.2
    pre_window_days: float = 14.0
    author_focus: float = 0.85
    style_scale: float = 0.5  # author style in the features (a learnable author signal)
    noise_scale: float = 1.0  # per-post noise in the features
    missing_frac: float = 0.1  # per modality: posts without it (never without both)
    fav_prob: float = 0.25
    explore_prob: float = 0.15
    fresh_days: float = 7.0
    activity_sigma: float = 1.0
    max_user_events: int = 1000  # cap on a user's interactions (bounds training's history matrix)
    valid_frac: float = 0.1
    test_frac: float = 0.1

    def __post_init__(self) -> None:
        checks = [
            (self.n_posts >= 10, f"n_posts must be >= 10, got {self.n_posts}"),
            (self.n_users >= 1, f"n_users must be >= 1, got {self.n_users}"),
            (1 <= self.n_authors <= self.n_posts, f"n_authors must be in [1, n_posts={self.n_posts}], got {self.n_authors}"),
            (2 <= self.n_topics <= self.n_authors, f"n_topics must be in [2, n_authors={self.n_authors}], got {self.n_topics}"),
            (self.n_interactions >= self.n_users, f"n_interactions must be >= n_users={self.n_users}, got {self.n_interactions}"),
            (self.n_interactions <= self.n_users * self.max_user_events // 2,
             f"n_interactions {self.n_interactions} needs more users or a larger max_user_events "
             f"(at most n_users * max_user_events / 2 = {self.n_users * self.max_user_events // 2})"),
            (0 <= self.missing_frac <= 0.5, f"missing_frac must be in [0, 0.5], got {self.missing_frac}"),
        ]
        for ok, msg in checks:
            if not ok:
                raise ConfigError(f"ScaleConfig: {msg}")

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["modalities"] = [list(m) for m in self.modalities]
        return d


def _draw_in_ranges(rng: np.random.Generator, cum: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """One position per row in [lo, hi) with probability proportional to the weights whose
    cumulative sum (with a leading 0) is `cum`. lo < hi assumed. -> int64 positions."""
    r = cum[lo] + rng.random(len(lo)) * (cum[hi] - cum[lo])
    return np.clip(np.searchsorted(cum, r, side="right") - 1, lo, hi - 1)


def build_scale(cfg: ScaleConfig) -> dict[str, Any]:
    """Draw the world and the events (in memory). -> dict of numpy arrays (see the module doc)."""
    rng = np.random.default_rng([cfg.seed, 15])
    T, A, N, U = cfg.n_topics, cfg.n_authors, cfg.n_posts, cfg.n_users
    window = int(cfg.days * US_PER_DAY)

    author_topic = np.concatenate([rng.permutation(T), rng.integers(0, T, A - T)]).astype(np.int64)
    author_pop = rng.lognormal(0.0, 0.7, A)
    rate = rng.lognormal(0.0, 0.8, A)
    post_author = rng.permutation(np.concatenate([np.arange(A), rng.choice(A, N - A, p=rate / rate.sum())])).astype(np.int64)
    post_topic = np.where(rng.random(N) < cfg.author_focus, author_topic[post_author], rng.integers(0, T, N)).astype(np.int64)
    post_pop = author_pop[post_author] * rng.lognormal(0.0, 0.8, N)
    pre = rng.random(N) < cfg.pre_window_frac
    created = np.where(pre, -rng.uniform(0, cfg.pre_window_days * US_PER_DAY, N), rng.uniform(0, 0.97 * window, N))
    created = np.sort(created.astype(np.int64))  # post index = creation order

    # users: 1-3 topics with Dirichlet weights, 1-3 favourite authors of those topics
    n_top = rng.integers(1, 4, U)
    pref_topic = rng.integers(0, T, (U, 3))  # (U, 3); only the first n_top count
    pref_w = rng.dirichlet(np.ones(3), U) * (np.arange(3)[None, :] < n_top[:, None])
    pref_w /= pref_w.sum(1, keepdims=True)
    by_topic = np.argsort(author_topic, kind="stable")
    topic_start = np.searchsorted(author_topic[by_topic], np.arange(T + 1))
    n_fav = rng.integers(1, 4, U)
    fav_topic = pref_topic[np.arange(U)[:, None], np.minimum(rng.integers(0, 3, (U, 3)), n_top[:, None] - 1)]  # (U, 3)
    cum_pop = np.concatenate([[0.0], np.cumsum(author_pop[by_topic])])
    fav = by_topic[_draw_in_ranges(rng, cum_pop, topic_start[fav_topic].ravel(), topic_start[fav_topic + 1].ravel())].reshape(U, 3)
    join = rng.uniform(0, 0.5 * window, U).astype(np.int64)
    act = rng.lognormal(0.0, cfg.activity_sigma, U)
    share = act / act.sum()  # (U,) each user's share of the events

    order_a = np.lexsort((created, post_author))  # posts by (author, time)
    order_t = np.lexsort((created, post_topic))  # posts by (topic, time)
    span = int(window - created.min()) + 1
    key_a = post_author[order_a] * span + (created[order_a] - created.min())
    key_t = post_topic[order_t] * span + (created[order_t] - created.min())
    cum_a = np.concatenate([[0.0], np.cumsum(post_pop[order_a])])
    cum_t = np.concatenate([[0.0], np.cumsum(post_pop[order_t])])
    fresh = int(cfg.fresh_days * US_PER_DAY)

    def draw(quota: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """quota int64 (U,) events per user -> (user, post, ts) of the events that found a post."""
        ev_user = np.repeat(np.arange(U, dtype=np.int64), quota)
        M = len(ev_user)
        ev_t = join[ev_user] + (rng.random(M) * (window - join[ev_user])).astype(np.int64)
        choice = rng.random(M)
        post = np.full(M, -1, np.int64)
        # favourite author: posts sorted by (author, time); any earlier post of that author
        is_fav = choice < cfg.fav_prob
        a = fav[ev_user[is_fav], rng.integers(0, 3, int(is_fav.sum())) % n_fav[ev_user[is_fav]]]
        t_rel = ev_t[is_fav] - created.min()
        lo = np.searchsorted(key_a, a * span)
        hi = np.searchsorted(key_a, a * span + t_rel, side="right")
        ok = hi > lo
        pa = np.full(len(a), -1, np.int64)
        pa[ok] = order_a[_draw_in_ranges(rng, cum_a, lo[ok], hi[ok])]
        post[is_fav] = pa
        # topic: the user's (or exploring), a fresh post of it (any earlier one when none is fresh)
        rest = ~is_fav
        u = ev_user[rest]
        cw = np.cumsum(pref_w[u], 1)
        k = (rng.random(len(u))[:, None] > cw).sum(1).clip(0, 2)
        topic = np.where(rng.random(len(u)) < cfg.explore_prob, rng.integers(0, T, len(u)), pref_topic[u, k])
        t_rel = ev_t[rest] - created.min()
        hi = np.searchsorted(key_t, topic * span + t_rel, side="right")
        lo = np.searchsorted(key_t, topic * span + np.maximum(t_rel - fresh, 0))
        lo = np.where(hi > lo, lo, np.searchsorted(key_t, topic * span))
        ok = hi > lo
        pt = np.full(len(u), -1, np.int64)
        pt[ok] = order_t[_draw_in_ranges(rng, cum_t, lo[ok], hi[ok])]
        post[rest] = pt

        keep = post >= 0
        return ev_user[keep], post[keep], ev_t[keep]

    # events: draw, drop repeated (user, post) pairs, draw more for the shortfall, then trim
    users_, posts_, ts_ = [], [], []
    need, got = cfg.n_interactions * 1.08, 0
    for _ in range(8):
        quota = np.minimum(np.maximum(1, np.round(share * need)), cfg.max_user_events).astype(np.int64)
        u_, p_, t_ = draw(quota)
        users_.append(u_), posts_.append(p_), ts_.append(t_)
        ev_user, post, ev_t = np.concatenate(users_), np.concatenate(posts_), np.concatenate(ts_)
        first = np.unique(ev_user * N + post, return_index=True)[1]  # one row per (user, post), by user
        fu = ev_user[first]
        rank = np.arange(len(fu)) - np.searchsorted(fu, fu)  # position within the user's events
        first = first[rank < cfg.max_user_events]
        got = len(first)
        if got >= cfg.n_interactions:
            break
        need = (cfg.n_interactions - got) * 1.3 * len(ev_user) / max(got, 1)
    if len(first) < cfg.n_interactions:
        raise ConfigError(f"ScaleConfig: drew only {len(first):,} distinct (user, post) pairs for {cfg.n_interactions:,} interactions; add users or posts")
    first = np.sort(rng.choice(first, cfg.n_interactions, replace=False))
    ev_user, post, ev_t = ev_user[first], post[first], ev_t[first]
    # engagement: stronger reactions to posts of a favourite author or a main topic
    is_fav_post = (fav[ev_user] == post_author[post][:, None]).any(1)
    match = is_fav_post | ((pref_w[ev_user] * (pref_topic[ev_user] == post_topic[post][:, None])).sum(1) > 0.3)
    pe = np.where(match[:, None], [0.55, 0.3, 0.07, 0.08], [0.8, 0.14, 0.03, 0.03])
    event = (rng.random(len(post))[:, None] > np.cumsum(pe, 1)).sum(1).clip(0, 3)

    feats, present = {}, {}
    miss = rng.random(N)
    for j, (m, dim) in enumerate(cfg.modalities):
        g = np.random.default_rng([cfg.seed, 15, 1 + j])
        centroid = g.standard_normal((T, dim)).astype(np.float32)
        style = g.standard_normal((A, dim)).astype(np.float32)
        x = g.standard_normal((N, dim), dtype=np.float32)
        x *= cfg.noise_scale
        x += centroid[post_topic]
        x += cfg.style_scale * style[post_author]
        # modality j is missing where miss falls in its own band (bands never overlap)
        present[m] = ~((miss >= j * cfg.missing_frac) & (miss < (j + 1) * cfg.missing_frac))
        x[~present[m]] = 0.0
        feats[m] = x
    return {
        "post_author": post_author, "post_topic": post_topic, "created_us": created,
        "user": ev_user, "post": post, "ts_us": ev_t, "event": event, "feats": feats, "present": present,
    }


def synthesize_scale(out: Path, cfg: ScaleConfig | None = None, overwrite: bool = False) -> Dataset:
    """Write the scale dataset (tables, temporal split, feature store) to `out` atomically."""
    from recsys.split import temporal_split

    cfg = cfg or ScaleConfig()
    out = Path(out)
    _check_out(out, overwrite)
    with atomic_dir(out, "scale") as tmp:
        t0 = time.perf_counter()
        w = build_scale(cfg)
        logger.info("scale world drawn in %.1f s", time.perf_counter() - t0)
        start = datetime.fromisoformat(cfg.start)
        t0_us = int(start.timestamp()) * 1_000_000
        N = cfg.n_posts
        post_ids = np.arange(1, N + 1, dtype=np.int64)
        posts = pl.DataFrame({
            "post_id": post_ids,
            "author_id": w["post_author"] + 1,
            "created_at": pl.Series(t0_us + w["created_us"]).cast(pl.Datetime("us", "UTC")),
            "text": pl.Series([None] * N, dtype=pl.String),
            "image_path": pl.Series([None] * N, dtype=pl.String),
            "video_path": pl.Series([None] * N, dtype=pl.String),
        })
        weights = np.asarray((1.0, 2.0, 3.0, 4.0), np.float32)
        inter = pl.DataFrame({
            "user_id": w["user"] + 1,
            "post_id": post_ids[w["post"]],
            "ts": pl.Series(t0_us + w["ts_us"]).cast(pl.Datetime("us", "UTC")),
            "event": pl.Series(w["event"]).replace_strict(dict(enumerate(EVENTS)), return_dtype=pl.String),
            "weight": weights[w["event"]],
        }).sort("ts", "user_id", "post_id")
        meta = {
            "name": "scale",
            "source": {"format": "scale", "seed": cfg.seed, "config": cfg.to_dict()},
            "protocol": {"mask_valid_on_test": True, "ks": [10, 20, 50], "headline_k": 20},
        }
        ds = save_dataset(tmp, posts, inter, meta=meta)
        splits, report = temporal_split(inter, cfg.valid_frac, cfg.test_frac)
        save_splits(tmp, splits, len(inter))
        meta["split"] = report
        write_json(tmp / DATASET_META_FILE, meta)
        for m, x in w["feats"].items():
            save_modality(tmp, ModalityFeatures(
                name=m, post_ids=post_ids, data=x, present=w["present"][m],
                content_hash=np.where(w["present"][m], f"scale-{cfg.seed}", ""),
                meta={"encoder": "scale-topic-model", "fingerprint": f"scale-{cfg.seed}", "source": "recsys.data.scale"},
            ))
    ds.root = out
    ds.splits, ds.meta = splits, meta
    return ds
