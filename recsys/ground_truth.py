"""How well recommendations recover the synthetic platform's hidden preferences.

The synthetic platform (`recsys.data.synth`) records what drove each user's interactions in
`<dataset>/ground_truth/`: topic preference weights per user, favourite authors, each post's
topic and hidden popularity. A user picks post p with probability proportional to

    pi_u(p) = (w_u[topic(p)] + topic_floor) * (1 + author_boost * [author(p) in fav_u])
              * popularity(p) ** popularity_exp                       (the static choice weight)

times a recency factor (a property of the moment, not of the user; left out here). Recall@K only
sees the sampled interactions; these measures look at the hidden cause:

    pref_capture@K     mean over users of  sum_{p in top-K} pi_u(p) / sum_{p in best K} pi_u(p)
                       (best K = the K unmasked posts with the largest pi_u; 1.0 = the list is
                       exactly what the hidden preferences rank highest). The full measure.
    topic_affinity@K   mean over users of  mean_{p in top-K} w_u[topic(p)] / max_t w_u[t]
                       (1.0 = every recommended post is on the user's favourite topic)
    fav_author@K       fraction of recommended posts written by one of the user's favourite authors

topic_affinity and fav_author are partial views: a list ranked by pi_u itself (`oracle_lists`,
shown as a reference row in reports) does not maximise either, because the choice weight also
trades topic against popularity and favourite authors. All are computed on the same masked top-K
lists as the evaluation harness.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl

from recsys.interactions import InteractionData

GROUND_TRUTH_DIR = "ground_truth"
CHOICE_DEFAULTS = {"topic_floor": 0.02, "author_boost": 3.0, "popularity_exp": 1.0}  # SynthConfig's


@dataclass
class GroundTruth:
    user_pref: dict[int, dict[str, float]]  # user_id -> {topic: weight}
    user_authors: dict[int, set[int]]
    post_topic: dict[int, str]
    post_author: dict[int, int]
    post_pop: dict[int, float]  # post_id -> hidden popularity (empty in old datasets)
    choice: dict[str, float]  # topic_floor, author_boost, popularity_exp of the simulator


def load_ground_truth(root: Path, posts: pl.DataFrame, meta: dict | None = None) -> GroundTruth | None:
    """None when the dataset has no ground truth (anything but the synthetic platform).
    meta: the dataset's metadata (`Dataset.meta`); its source config gives the choice parameters."""
    d = Path(root) / GROUND_TRUTH_DIR
    if not (d / "user_preferences.parquet").is_file() or not (d / "post_topics.parquet").is_file():
        return None
    pref: dict[int, dict[str, float]] = {}
    for u, t, w in _read(d / "user_preferences.parquet").select("user_id", "topic", "weight").iter_rows():
        pref.setdefault(int(u), {})[str(t)] = float(w)
    authors: dict[int, set[int]] = {}
    if (d / "user_authors.parquet").is_file():
        for u, a in _read(d / "user_authors.parquet").select("user_id", "author_id").iter_rows():
            authors.setdefault(int(u), set()).add(int(a))
    pt = _read(d / "post_topics.parquet")
    topic = dict(pt.select("post_id", "topic").iter_rows())
    pop = dict(pt.select("post_id", "popularity").iter_rows()) if "popularity" in pt.columns else {}
    author = {int(p): int(a) for p, a in posts.select("post_id", "author_id").iter_rows() if a is not None}
    cfg = ((meta or {}).get("source") or {}).get("config") or {}
    choice = {k: float(cfg.get(k, v)) for k, v in CHOICE_DEFAULTS.items()}
    return GroundTruth(pref, authors, topic, author, pop, choice)


def _read(path: Path) -> pl.DataFrame:
    """A ground-truth table with string ids (a `string_ids` synthetic platform) mapped to the
    internal ids the dataset's tables get (`recsys.ids`)."""
    from recsys.ids import encode_column

    df = pl.read_parquet(path)
    for col in ("user_id", "post_id", "author_id"):
        if col in df.columns:
            df = df.with_columns(encode_column(df[col], f"{path.name}.{col}")[0].alias(col))
    return df


class _Aligned:
    """Ground truth laid out on the rows of `data`: topic index (N,), author (N,), popularity (N,),
    and the posts `split` masks per user (not eligible for a list)."""

    def __init__(self, gt: GroundTruth, data: InteractionData, split: str) -> None:
        self.gt = gt
        self.exclude = data.exclude_for(split).tocsr()
        self.topics = sorted({t for w in gt.user_pref.values() for t in w} | set(gt.post_topic.values()))
        tix = {t: i for i, t in enumerate(self.topics)}
        self.post_topic = np.array([tix.get(gt.post_topic.get(int(p), ""), -1) for p in data.post_ids], np.int64)
        self.post_author = np.array([gt.post_author.get(int(p), -1) for p in data.post_ids], np.int64)
        self.post_pop = np.array([gt.post_pop.get(int(p), 1.0) for p in data.post_ids], np.float64)
        self.user_ids = data.user_ids

    def pref(self, u: int) -> np.ndarray | None:
        """Topic weights of user row u, (T + 1,) with 0 for "no topic" (index -1), or None."""
        w = self.gt.user_pref.get(int(self.user_ids[u]))
        if not w:
            return None
        return np.array([w.get(t, 0.0) for t in self.topics] + [0.0])

    def fav(self, u: int) -> np.ndarray:
        """bool (N,): posts by user row u's favourite authors."""
        return np.isin(self.post_author, list(self.gt.user_authors.get(int(self.user_ids[u]), ())))

    def choice_weights(self, u: int, w: np.ndarray, fav: np.ndarray, masked: float) -> np.ndarray:
        """pi_u over every post, (N,) float64 (see the module docstring), `masked` where the split
        masks the post for user row u. w: `pref(u)`, fav: `fav(u)`."""
        c = self.gt.choice
        pi = (w[self.post_topic] + c["topic_floor"]) * (1.0 + c["author_boost"] * fav) * self.post_pop ** c["popularity_exp"]
        pi[self.exclude.indices[self.exclude.indptr[u] : self.exclude.indptr[u + 1]]] = masked
        return pi


def preference_recovery(
    gt: GroundTruth, data: InteractionData, users: np.ndarray, idx: np.ndarray, valid: np.ndarray, split: str
) -> dict[str, float]:
    """users (U,) row positions, idx (U, K) post positions, valid (U, K); split = the split the
    lists were ranked for (its masked posts are not eligible for the best K) -> the measures above."""
    k = idx.shape[1]
    al = _Aligned(gt, data, split)
    aff, fav, cap = [], [], []
    for row, u in enumerate(users):
        w = al.pref(u)
        if w is None:
            continue
        rec = idx[row][valid[row]]
        if len(rec) == 0:
            continue
        aff.append(float(np.mean(w[al.post_topic[rec]]) / (w.max() or 1.0)))
        is_fav = al.fav(u)
        fav.append(float(np.mean(is_fav[rec])))
        pi = al.choice_weights(u, w, is_fav, masked=0.0)
        best = np.partition(pi, len(pi) - k)[len(pi) - k :].sum() if len(pi) > k else pi.sum()
        cap.append(float(pi[rec].sum() / best) if best > 0 else float("nan"))
    return {
        f"pref_capture@{k}": float(np.nanmean(cap)) if cap else float("nan"),
        f"topic_affinity@{k}": float(np.mean(aff)) if aff else float("nan"),
        f"fav_author@{k}": float(np.mean(fav)) if fav else float("nan"),
        "n_users": len(aff),
    }


def oracle_lists(gt: GroundTruth, data: InteractionData, users: np.ndarray, split: str, k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Top-k of each user row in `users` ranked by the hidden choice weight pi_u, with the
    split's masked posts removed (ties -> lower post index, as in the evaluation).
    -> (users (U,), idx int64 (U, k), valid bool (U, k)); users without preferences get no list."""
    al = _Aligned(gt, data, split)
    idx = np.zeros((len(users), k), np.int64)
    valid = np.zeros((len(users), k), bool)
    for row, u in enumerate(users):
        w = al.pref(u)
        if w is None:
            continue
        pi = al.choice_weights(u, w, al.fav(u), masked=-np.inf)
        top = np.lexsort((np.arange(len(pi)), -pi))[:k]  # by weight, then lower index
        n = int(np.isfinite(pi[top]).sum())
        idx[row, :n], valid[row, :n] = top[:n], True
    return users, idx, valid
