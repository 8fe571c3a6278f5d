"""How well recommendations recover the synthetic platform's hidden preferences.

The synthetic platform (`recsys.data.synth`) records what drove each user's interactions in
`<dataset>/ground_truth/`: topic preference weights per user, favourite authors, each post's
topic. Recall@K only sees the sampled interactions; these measures look at the hidden cause:

    topic_affinity@K   mean over users of  mean_{p in top-K} w_u[topic(p)] / max_t w_u[t]
                       (1.0 = every recommended post is on the user's favourite topic)
    fav_author@K       fraction of recommended posts written by one of the user's favourite authors

Both are computed on the same masked top-K lists as the evaluation harness.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl

from recsys.interactions import InteractionData

GROUND_TRUTH_DIR = "ground_truth"


@dataclass
class GroundTruth:
    user_pref: dict[int, dict[str, float]]  # user_id -> {topic: weight}
    user_authors: dict[int, set[int]]
    post_topic: dict[int, str]
    post_author: dict[int, int]


def load_ground_truth(root: Path, posts: pl.DataFrame) -> GroundTruth | None:
    """None when the dataset has no ground truth (anything but the synthetic platform)."""
    d = Path(root) / GROUND_TRUTH_DIR
    if not (d / "user_preferences.parquet").is_file() or not (d / "post_topics.parquet").is_file():
        return None
    pref: dict[int, dict[str, float]] = {}
    for u, t, w in pl.read_parquet(d / "user_preferences.parquet").select("user_id", "topic", "weight").iter_rows():
        pref.setdefault(int(u), {})[str(t)] = float(w)
    authors: dict[int, set[int]] = {}
    if (d / "user_authors.parquet").is_file():
        for u, a in pl.read_parquet(d / "user_authors.parquet").select("user_id", "author_id").iter_rows():
            authors.setdefault(int(u), set()).add(int(a))
    topic = dict(pl.read_parquet(d / "post_topics.parquet").select("post_id", "topic").iter_rows())
    author = {int(p): int(a) for p, a in posts.select("post_id", "author_id").iter_rows() if a is not None}
    return GroundTruth(pref, authors, topic, author)


def preference_recovery(
    gt: GroundTruth, data: InteractionData, users: np.ndarray, idx: np.ndarray, valid: np.ndarray
) -> dict[str, float]:
    """users (U,) row positions, idx (U, K) post positions, valid (U, K) -> the measures above."""
    k = idx.shape[1]
    aff, fav = [], []
    for row, u in enumerate(users):
        uid = int(data.user_ids[u])
        w = gt.user_pref.get(uid)
        if not w:
            continue
        top = max(w.values()) or 1.0
        pids = data.post_ids[idx[row][valid[row]]]
        if len(pids) == 0:
            continue
        aff.append(np.mean([w.get(gt.post_topic.get(int(p), ""), 0.0) for p in pids]) / top)
        favs = gt.user_authors.get(uid, set())
        fav.append(np.mean([gt.post_author.get(int(p), -1) in favs for p in pids]))
    return {
        f"topic_affinity@{k}": float(np.mean(aff)) if aff else float("nan"),
        f"fav_author@{k}": float(np.mean(fav)) if fav else float("nan"),
        "n_users": len(aff),
    }
