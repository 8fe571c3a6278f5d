"""Interest profiles: a readable picture of a user from their history and their user vector.

    p = interest_profile(hist_pos, hist_ids, user_vector, view)    # -> dict (the API's body)

A cluster's weight for a user mixes two views (equal parts when both exist):
    history  the user's interactions per cluster, each weighted by recency
             (0.5 ** (steps back / HISTORY_HALF_LIFE); most recent = 1), normalised to sum 1
    vector   softmax over clusters of cos(user vector, cluster's mean post vector) / TAU: what the
             model would recommend, which also reflects the ID tables (co-engagement), not
             only the content of the posts seen
Preferred modality: for each modality, the share of the user's posts that have it over its
share in the whole catalogue (lift); the highest lift wins (a user who engages with video posts
at 3x their base rate "responds to video"). Sentiment: mean score of the posts they engaged with.

Shapes: L history length, K clusters, d retrieval dim.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

HISTORY_HALF_LIFE = 20.0  # interactions
TAU = 0.05
TOP = 5
EXAMPLES = 3


@dataclass
class ProfileView:
    """What profiles need from an analysis, as arrays (built once per bundle)."""

    cluster_ids: np.ndarray  # int64 (K,)
    labels: list[str]
    representatives: list[list[int]]
    centroid_vectors: np.ndarray | None  # float32 (K, d)
    modalities: list[str]
    base_share: np.ndarray  # float64 (M,) share of catalogue posts having each modality

    @property
    def k(self) -> int:
        return len(self.cluster_ids)


def cluster_weights(hist_pos: np.ndarray, user_vector: np.ndarray | None, view: ProfileView) -> dict[str, np.ndarray | None]:
    """hist_pos int64 (L,) cluster positions of the history, most recent last (-1: unknown post);
    user_vector float32 (d,) or None -> {"history": (K,) | None, "vector": (K,) | None,
    "weight": (K,)} (each sums to 1; weight all zeros when both are None)."""
    k = view.k
    hist = None
    ok = hist_pos >= 0
    if ok.any():
        back = np.arange(len(hist_pos) - 1, -1, -1, dtype=np.float64)  # steps back from the latest
        w = 0.5 ** (back / HISTORY_HALF_LIFE)
        hist = np.bincount(hist_pos[ok], weights=w[ok], minlength=k)
        hist /= hist.sum()
    vec = None
    if user_vector is not None and view.centroid_vectors is not None and np.any(user_vector):
        u = np.asarray(user_vector, np.float64)
        cos = view.centroid_vectors.astype(np.float64) @ (u / np.linalg.norm(u))  # (K,)
        e = np.exp((cos - cos.max()) / TAU)
        vec = e / e.sum()
    parts = [p for p in (hist, vec) if p is not None]
    weight = np.mean(parts, axis=0) if parts else np.zeros(k)
    return {"history": hist, "vector": vec, "weight": weight}


def interest_profile(hist_pos: np.ndarray, hist_ids: np.ndarray, hist_present: np.ndarray, hist_sentiment: np.ndarray,
                     n_seen: int, user_vector: np.ndarray | None, view: ProfileView, top: int = TOP) -> dict:
    """The profile body. hist_pos int64 (L,) (see cluster_weights), hist_ids int64 (L,) post ids,
    hist_present bool (L, M) modalities of those posts (M = view.modalities), hist_sentiment
    float (L,) their sentiment, n_seen: all posts the user interacted with."""
    known = hist_pos >= 0
    if not known.any() and (user_vector is None or not np.any(user_vector)):
        return {"has_history": False, "message": "no history for this user: nothing to profile yet",
                "clusters": [], "preferred_modality": None,
                "activity": {"interactions": int(n_seen), "history_used": 0, "clusters_touched": 0, "mean_sentiment": None}}
    w = cluster_weights(hist_pos, user_vector, view)
    order = [int(c) for c in np.argsort(-w["weight"], kind="stable")[:top] if w["weight"][c] > 0]
    items = []
    for c in order:
        mine = np.flatnonzero(hist_pos == c)[::-1]  # most recent first
        ex = [int(hist_ids[i]) for i in mine[:EXAMPLES]] or list(view.representatives[c][:EXAMPLES])
        items.append({
            "cluster_id": int(view.cluster_ids[c]), "label": view.labels[c], "weight": round(float(w["weight"][c]), 4),
            "from_history": round(float(w["history"][c]), 4) if w["history"] is not None else None,
            "from_vector": round(float(w["vector"][c]), 4) if w["vector"] is not None else None,
            "interactions": int(len(mine)), "example_post_ids": ex,
            "sentiment": round(float(np.mean(hist_sentiment[mine])), 4) if len(mine) else None,
        })
    pref = None
    if known.any() and len(view.modalities):
        share = hist_present[known].mean(0)  # (M,)
        lift = share / np.maximum(view.base_share, 1e-9)
        j = int(np.argmax(lift))
        pref = {"modality": view.modalities[j], "lift": round(float(lift[j]), 3),
                "shares": {m: round(float(s), 4) for m, s in zip(view.modalities, share)}}
    return {
        "has_history": bool(known.any()),
        "message": None if known.any() else "no interactions in the bundle's posts; clusters come from the user vector only",
        "clusters": items, "preferred_modality": pref,
        "activity": {"interactions": int(n_seen), "history_used": int(known.sum()),
                     "clusters_touched": int(len(np.unique(hist_pos[known]))),
                     "mean_sentiment": round(float(np.mean(hist_sentiment[known])), 4) if known.any() else None},
    }


def profile_view(a) -> ProfileView:  # noqa: ANN001 - store.Analysis
    """The arrays profiles need, from an analysis."""
    mods = [c[len("has_"):] for c in a.posts.columns if c.startswith("has_")]
    base = np.array([a.posts[f"has_{m}"].mean() for m in mods], np.float64) if mods else np.zeros(0)
    return ProfileView(
        cluster_ids=a.clusters["cluster_id"].to_numpy().astype(np.int64), labels=a.clusters["label"].to_list(),
        representatives=a.clusters["representative_post_ids"].to_list(), centroid_vectors=a.centroid_vectors,
        modalities=mods, base_share=base,
    )
