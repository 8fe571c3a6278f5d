"""A small handmade dataset for model/training tests: clustered users and posts, two modalities
(`image` present everywhere, `audio` missing on some posts), a per-user leave-last-out split and
a few cold posts (content only). With `authors=True` every post names one of two authors of its
topic, so the cold posts are by authors known from train."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl

from recsys.dataset import save_dataset
from recsys.features import ModalityFeatures, save_modality


def make_dataset(root: Path, n_users: int = 96, n_posts: int = 240, n_topics: int = 12, per_user: int = 8, seed: int = 0,
                 authors: bool = False, test_history: str | None = None) -> Path:
    """A handmade dataset: users of one topic each, leave-last-out split. test_history: the
    protocol's `test_history` ("train+valid" makes it behave like a temporal split's)."""
    rng = np.random.default_rng(seed)
    topic = rng.integers(0, n_topics, n_posts)
    centers = {"image": rng.normal(size=(n_topics, 24)), "audio": rng.normal(size=(n_topics, 12))}
    cold = np.arange(n_posts - 4, n_posts)  # never in train
    rows = []
    t0 = np.datetime64("2024-01-01T00:00:00")
    for u in range(n_users):
        t = u % n_topics
        pool = np.flatnonzero((topic == t) & ~np.isin(np.arange(n_posts), cold))
        picks = rng.choice(pool, size=min(per_user, len(pool)), replace=False)
        cold_t = cold[topic[cold] == t]
        if len(cold_t) and u % 3 == 0:  # some users end on a cold post (test)
            picks = np.append(picks[:-1], cold_t[0])
        for k, p in enumerate(picks):
            rows.append((u + 100, int(p) + 1000, t0 + np.timedelta64(u * 100 + k, "s")))
    inter = pl.DataFrame(
        {
            "user_id": np.array([r[0] for r in rows], np.int64),
            "post_id": np.array([r[1] for r in rows], np.int64),
            "ts": np.array([r[2] for r in rows], dtype="datetime64[us]"),
        }
    ).with_columns( pl.lit("view").alias("event"), pl.lit(1.0).alias("weight"))
    # leave-last-out: last interaction of each user = test, second last = valid
    order = inter.with_row_index("row").with_columns(pl.col("ts").rank("ordinal", descending=True).over("user_id").alias("r"))
    split = order.select(
        pl.col("row").cast(pl.Int64),
        pl.when(pl.col("r") == 1).then(pl.lit("test")).when(pl.col("r") == 2).then(pl.lit("valid")).otherwise(pl.lit("train")).alias("split"),
    )
    posts = pl.DataFrame({"post_id": np.arange(n_posts, dtype=np.int64) + 1000}).with_columns(
        (pl.Series(500 + 2 * topic + np.arange(n_posts) % 2, dtype=pl.Int64) if authors else pl.lit(None, dtype=pl.Int64)).alias("author_id"),
        pl.lit(None, dtype=pl.Datetime("us", "UTC")).alias("created_at"),
        pl.lit(None, dtype=pl.String).alias("text"),
        pl.lit(None, dtype=pl.String).alias("image_path"),
        pl.lit(None, dtype=pl.String).alias("video_path"),
    )
    meta = {"name": "small"} if test_history is None else {"name": "small", "protocol": {"test_history": test_history}}
    save_dataset(root, posts, inter, split, meta)
    pids = posts["post_id"].to_numpy()
    for m, c in centers.items():
        x = (c[topic] + 0.3 * rng.normal(size=(n_posts, c.shape[1]))).astype(np.float32)
        present = np.ones(n_posts, bool) if m == "image" else rng.random(n_posts) > 0.25
        x[~present] = 0
        save_modality(
            root,
            ModalityFeatures(name=m, post_ids=pids, data=x, present=present, content_hash=np.where(present, "h", ""), meta={"encoder": f"test-{m}"}),
        )
    return Path(root)
