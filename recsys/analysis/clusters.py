"""Interest clusters over the post latents: k-means, labels, representative posts, stable ids.

    x = unit(latents)                                   # clusters live on the unit sphere (cosine)
    k, scores = choose_k(x)                             # the rule below
    centroids, assign = kmeans(x, k)                    # FAISS spherical k-means
    words = label_clusters(texts, assign, k)            # c-TF-IDF top words per cluster
    reps = representatives(x, assign, centroids)        # posts nearest each centroid
    mix = modality_mix(present, assign, k)              # share of posts with each modality
    ids, report = match_ids(prev, post_ids, assign, centroids)   # stable ids across rebuilds

The k rule: k-means on a sample for each k of a geometric grid from K_MIN up to
min(K_MAX, sqrt(N)); the k with the largest mean silhouette (cosine) on a held-out sample wins
(silhouette = how much closer a post is to its own cluster than to the next one; it peaks where
the clustering follows the data's own groups rather than cutting them). A caller may fix k.

Labels: class-based TF-IDF (BERTopic's c-TF-IDF): the texts of a cluster form one document;
a word's weight is its frequency in the cluster times log(1 + A / f), where A is the average
number of words per cluster and f the word's frequency over all clusters, so words frequent in
one cluster and rare elsewhere come first. Tokenising and stop words: scikit-learn's
CountVectorizer. A cluster without text has no words.

Stable ids (BERTopic's known pain is topic ids that change between updates): a new cluster keeps
the id of the previous bundle's cluster it matches. Similarity = Jaccard overlap of the two
clusters' posts among the posts both bundles hold (model-independent: a retrained model moves
the latent space, the posts stay); with too few shared posts and the same latent space, the
cosine of the centroids instead. Hungarian assignment (scipy.optimize.linear_sum_assignment)
maximises the total similarity; a pair below the threshold is no match, and an unmatched new
cluster gets a fresh id (ids are never reused).

Shapes: N posts, Z latent dim, K clusters.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

import numpy as np

from recsys.errors import ConfigError

logger = logging.getLogger(__name__)

K_MIN, K_MAX = 4, 256
CHOOSE_SAMPLE = 10_000  # posts k-means sees while choosing k
CHOOSE_NITER = 10
SILHOUETTE_SAMPLE = 2_000
JACCARD_MIN = 0.3  # a pair of clusters sharing less than this is not "the same cluster"
CENTROID_COS_MIN = 0.8
SHARED_MIN = 0.5  # fraction of new posts the previous bundle must hold to match by membership


def unit(x: np.ndarray) -> np.ndarray:
    """float32 (N, Z) rows scaled to length 1 (zero rows stay zero)."""
    x = np.asarray(x, np.float32)
    n = np.linalg.norm(x, axis=1, keepdims=True)
    return np.ascontiguousarray(x / np.maximum(n, 1e-12), dtype=np.float32)


def kmeans(x: np.ndarray, k: int, seed: int = 0, niter: int = 20, max_points_per_centroid: int = 256) -> tuple[np.ndarray, np.ndarray]:
    """Spherical k-means (FAISS). x float32 (N, Z) unit rows -> (centroids float32 (k, Z) unit,
    assign int64 (N,)). FAISS trains on at most k * max_points_per_centroid sampled rows, then
    every row is assigned to its nearest centroid."""
    import faiss

    n, d = x.shape
    if not 1 <= k <= n:
        raise ConfigError(f"k must be in [1, N={n}], got {k}")
    km = faiss.Kmeans(d, k, niter=niter, seed=seed, spherical=True, verbose=False,
                      max_points_per_centroid=max_points_per_centroid, min_points_per_centroid=1)
    km.train(np.ascontiguousarray(x, dtype=np.float32))
    c = unit(km.centroids)
    return c, assign(x, c)


def assign(x: np.ndarray, centroids: np.ndarray, chunk: int = 65_536) -> np.ndarray:
    """x float32 (N, Z), centroids float32 (K, Z) -> int64 (N,) index of the most similar centroid."""
    out = np.empty(len(x), np.int64)
    for s in range(0, len(x), chunk):
        out[s : s + chunk] = np.argmax(x[s : s + chunk] @ centroids.T, axis=1)  # (n, K)
    return out


def k_grid(n: int) -> list[int]:
    """Candidate ks: K_MIN, x1.5 each step, up to min(K_MAX, sqrt(N)) (x2 beyond 32: fewer
    k-means runs where each costs more)."""
    top = max(K_MIN, min(K_MAX, int(math.sqrt(n))))
    ks, k = [], float(K_MIN)
    while round(k) <= top:
        if not ks or round(k) != ks[-1]:
            ks.append(int(round(k)))
        k *= 1.5 if k < 32 else 2.0
    return ks or [min(K_MIN, n)]


def choose_k(x: np.ndarray, seed: int = 0) -> tuple[int, dict[int, float]]:
    """The k rule (module docstring). x float32 (N, Z) unit rows -> (k, {k: silhouette})."""
    from sklearn.metrics import silhouette_score

    n = len(x)
    if n < 2 * K_MIN:
        return max(1, min(n, 2)), {}
    rng = np.random.default_rng(seed)
    fit = x[rng.choice(n, min(n, CHOOSE_SAMPLE), replace=False)]
    held = x[rng.choice(n, min(n, SILHOUETTE_SAMPLE), replace=False)]
    scores = {}
    for k in k_grid(n):
        if k >= len(fit):
            break
        c, _ = kmeans(fit, k, seed=seed, niter=CHOOSE_NITER)
        lab = assign(held, c)
        if len(np.unique(lab)) < 2:
            continue
        scores[k] = round(float(silhouette_score(held, lab, metric="cosine")), 4)
    if not scores:
        return min(K_MIN, n), scores
    best = max(scores, key=lambda kk: (scores[kk], -kk))  # ties: the smaller k
    return best, scores


def label_clusters(texts: list[str | None], assign_: np.ndarray, k: int, n_words: int = 5) -> list[list[str]]:
    """c-TF-IDF top words of each cluster (module docstring) -> k lists (empty: no text)."""
    from sklearn.feature_extraction.text import CountVectorizer

    docs = [[] for _ in range(k)]
    for t, c in zip(texts, assign_):
        if t:
            docs[int(c)].append(t)
    joined = [" ".join(d) for d in docs]
    if not any(joined):
        return [[] for _ in range(k)]
    vec = CountVectorizer(stop_words="english", token_pattern=r"(?u)\b[a-zA-Z][a-zA-Z-]+\b")
    try:
        tf = vec.fit_transform(joined).astype(np.float64).toarray()  # (K, V)
    except ValueError:  # only stop words
        return [[] for _ in range(k)]
    words = np.asarray(vec.get_feature_names_out())
    per_cluster = tf.sum(1, keepdims=True)
    avg = per_cluster[per_cluster > 0].mean()
    idf = np.log1p(avg / np.maximum(tf.sum(0), 1.0))  # (V,)
    ctfidf = tf / np.maximum(per_cluster, 1.0) * idf  # (K, V)
    out = []
    for c in range(k):
        top = np.argsort(-ctfidf[c], kind="stable")[:n_words]
        out.append([str(words[j]) for j in top if ctfidf[c, j] > 0])
    return out


def representatives(x: np.ndarray, assign_: np.ndarray, centroids: np.ndarray, n: int = 5) -> list[np.ndarray]:
    """Rows of the `n` posts most similar to each centroid, best first -> K int64 arrays."""
    sim = np.einsum("nz,nz->n", x, centroids[assign_])  # (N,) cosine to own centroid
    order = np.lexsort((-sim, assign_))  # by cluster, then most similar first
    starts = np.searchsorted(assign_[order], np.arange(len(centroids) + 1))
    return [order[starts[c] : min(starts[c] + n, starts[c + 1])].astype(np.int64) for c in range(len(centroids))]


def modality_mix(present: dict[str, np.ndarray], assign_: np.ndarray, k: int) -> dict[str, np.ndarray]:
    """{modality: float32 (K,) share of the cluster's posts that have it}."""
    size = np.maximum(np.bincount(assign_, minlength=k), 1)
    return {m: (np.bincount(assign_, weights=p.astype(np.float64), minlength=k) / size).astype(np.float32)
            for m, p in present.items()}


@dataclass
class Previous:
    """The previous bundle's clustering, as `match_ids` needs it."""

    cluster_ids: np.ndarray  # int64 (K0,) its cluster ids
    centroids: np.ndarray  # float32 (K0, Z)
    post_ids: np.ndarray  # int64 (N0,)
    post_cluster: np.ndarray  # int64 (N0,) cluster id of each post
    next_id: int  # the first id never used
    same_space: bool  # the centroids are comparable (same model)


def match_ids(prev: Previous | None, post_ids: np.ndarray, assign_: np.ndarray, centroids: np.ndarray) -> tuple[np.ndarray, dict]:
    """Cluster ids for the new clusters (module docstring). post_ids int64 (N,), assign_ int64 (N,)
    new cluster index, centroids float32 (K, Z). Returns (ids int64 (K,), report)."""
    from scipy.optimize import linear_sum_assignment

    k = len(centroids)
    if prev is None or len(prev.cluster_ids) == 0:
        return np.arange(k, dtype=np.int64), {"method": "fresh", "matched": 0, "new": k, "next_id": k}
    k0 = len(prev.cluster_ids)
    order = np.argsort(prev.post_ids, kind="stable")
    pos = np.clip(np.searchsorted(prev.post_ids[order], post_ids), 0, len(order) - 1)
    shared = prev.post_ids[order[pos]] == post_ids  # (N,)
    old_index = {int(c): i for i, c in enumerate(prev.cluster_ids)}
    if shared.mean() >= SHARED_MIN:
        method, thr = "jaccard", JACCARD_MIN
        old = np.array([old_index.get(int(c), -1) for c in prev.post_cluster[order[pos[shared]]]], np.int64)
        new = assign_[shared]
        ok = old >= 0
        inter = np.zeros((k, k0))
        np.add.at(inter, (new[ok], old[ok]), 1.0)
        sim = inter / (np.bincount(new[ok], minlength=k)[:, None] + np.bincount(old[ok], minlength=k0)[None, :] - inter + 1e-12)
    elif prev.same_space and prev.centroids.shape[1] == centroids.shape[1]:
        method, thr = "centroid-cosine", CENTROID_COS_MIN
        sim = centroids @ prev.centroids.T  # (K, K0)
    else:
        nxt = prev.next_id
        return np.arange(nxt, nxt + k, dtype=np.int64), {
            "method": "none (few shared posts, another latent space)", "matched": 0, "new": k, "next_id": nxt + k}
    rows, cols = linear_sum_assignment(-sim)
    ids = np.full(k, -1, np.int64)
    good = sim[rows, cols] >= thr
    ids[rows[good]] = prev.cluster_ids[cols[good]]
    fresh = np.flatnonzero(ids < 0)
    ids[fresh] = prev.next_id + np.arange(len(fresh))
    report = {"method": method, "threshold": thr, "matched": int(good.sum()), "new": int(len(fresh)),
              "retired": int(k0 - good.sum()), "mean_similarity_matched": round(float(sim[rows[good], cols[good]].mean()), 4) if good.any() else None,
              "next_id": int(prev.next_id + len(fresh))}
    return ids, report
