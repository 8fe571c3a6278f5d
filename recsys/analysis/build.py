"""One pass over a catalogue: clusters, sentiment, activity -> `Analysis` (store.py).

    a = analyse(post_ids, latents, texts, present, created_us, events, head_latents=..., vectors=...,
                previous=read_analysis(prev_dir), same_space=True)

Called by `recsys build-index` (index/clusters.py, the bundle's `analysis/`) and by
`recsys trends` (recsys/commands/trends.py). Inputs come from `inputs_from_run` (a trained run's
latents, and its latents without the text modality for the sentiment head) or
`inputs_from_features` (no run: the feature store's modalities, each scaled to unit length, side
by side).

Shapes: N posts, Z latent dim, d retrieval dim, E events, K clusters.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

import numpy as np
import polars as pl

from recsys.analysis import clusters as C
from recsys.analysis.sentiment import post_sentiment
from recsys.analysis.store import Analysis
from recsys.analysis.trends import BIN_US, to_bin
from recsys.errors import SchemaError

logger = logging.getLogger(__name__)

TEXT = "text"
CHUNK = 8192


@dataclass
class Inputs:
    post_ids: np.ndarray  # int64 (N,)
    latents: np.ndarray  # float32 (N, Z)
    head_latents: np.ndarray | None  # float32 (N, Z) without the text modality (None: no head)
    present: dict[str, np.ndarray]  # modality -> bool (N,)
    texts: list[str | None]
    created_us: np.ndarray  # int64 (N,), <= 0 unknown
    space: str  # what the latents are ("run <fingerprint>" / "features"): same space -> comparable centroids


def _dataset_columns(ds, post_ids: np.ndarray) -> tuple[list[str | None], np.ndarray]:
    posts = ds.posts
    order = {int(p): i for i, p in enumerate(posts["post_id"].to_list())}
    rows = np.array([order[int(p)] for p in post_ids], np.int64)
    texts = posts["text"].to_list()
    created = posts["created_at"].cast(pl.Int64).fill_null(0).to_numpy().astype(np.int64)
    return [texts[r] for r in rows], created[rows]


def inputs_from_run(run, ds, feats, post_ids: np.ndarray, latents: np.ndarray | None = None) -> Inputs:
    """A trained run's latents (given, or computed here) and, for posts with text, their latents
    with the text modality marked absent (what the sentiment head is trained on)."""
    usable = [m for m in run.modalities if m in feats]
    lat, head = [], []
    present = {m: np.zeros(len(post_ids), bool) for m in usable}
    for s in range(0, len(post_ids), CHUNK):
        ids = post_ids[s : s + CHUNK]
        f, p = {}, {}
        for m in usable:
            f[m], p[m] = feats[m].aligned(ids)
            present[m][s : s + len(ids)] = p[m]
        if latents is None:
            lat.append(np.asarray(run.post_latents(f, p), np.float32))
        if TEXT in usable:
            p_no_text = {**p, TEXT: np.zeros(len(ids), bool)}
            head.append(np.asarray(run.post_latents(f, p_no_text), np.float32))
    latents = np.concatenate(lat) if latents is None else np.asarray(latents, np.float32)
    texts, created = _dataset_columns(ds, post_ids)
    return Inputs(post_ids, latents, np.concatenate(head) if head else None, present, texts, created,
                  f"run {getattr(run, 'fingerprint', '')}")


def inputs_from_features(ds, feats, post_ids: np.ndarray) -> Inputs:
    """No run: each modality's features scaled to unit length (zeros when absent), side by side."""
    if not feats:
        raise SchemaError(f"{ds.root}: no feature store; run `recsys encode --data {ds.root}` first (or pass --run)")
    blocks, head_blocks, present = [], [], {}
    for m in sorted(feats):
        x, p = feats[m].aligned(post_ids)
        x = C.unit(x) * p[:, None]
        blocks.append(x)
        present[m] = p
        if m != TEXT:
            head_blocks.append(x)
    texts, created = _dataset_columns(ds, post_ids)
    head = np.concatenate(head_blocks, 1).astype(np.float32) if TEXT in feats and head_blocks else None
    return Inputs(post_ids, np.concatenate(blocks, 1).astype(np.float32), head, present, texts, created, "features")


def analyse(inp: Inputs, events: pl.DataFrame, *, vectors: np.ndarray | None = None, previous: Analysis | None = None,
            previous_space: str | None = None, k: int | None = None, seed: int = 0) -> Analysis:
    """Cluster, label, score sentiment and bin activity.

    events: post_id, ts (Datetime; null ts rows are not binned). vectors: float32 (N, d)
    retrieval vectors (centroid vectors for profiles). previous / previous_space: the last
    analysis and the space its latents were in (stable ids)."""
    t0 = time.perf_counter()
    n = len(inp.post_ids)
    if n == 0:
        raise SchemaError("cannot analyse 0 posts")
    x = C.unit(inp.latents)
    k_scores: dict = {}
    if k is None:
        k, k_scores = C.choose_k(x, seed=seed)
    k = min(int(k), n)
    t_k = time.perf_counter()
    centroids, assign = C.kmeans(x, k, seed=seed)
    t_km = time.perf_counter()
    prev = None
    if previous is not None:
        prev = C.Previous(
            cluster_ids=previous.clusters["cluster_id"].to_numpy().astype(np.int64), centroids=previous.centroids,
            post_ids=previous.posts["post_id"].to_numpy().astype(np.int64),
            post_cluster=previous.posts["cluster_id"].to_numpy().astype(np.int64),
            next_id=int(previous.info.get("next_cluster_id", int(previous.clusters["cluster_id"].max()) + 1)),
            same_space=previous_space == inp.space,
        )
    ids, match = C.match_ids(prev, inp.post_ids, assign, centroids)
    sentiment, source, s_report = post_sentiment(inp.texts, assign, k, inp.head_latents, seed=seed)
    words = C.label_clusters(inp.texts, assign, k)
    reps = C.representatives(x, assign, centroids)
    mix = C.modality_mix(inp.present, assign, k)
    size = np.bincount(assign, minlength=k)
    sent_mean = np.bincount(assign, weights=sentiment, minlength=k) / np.maximum(size, 1)
    labels = []
    for c in range(k):
        if words[c]:
            labels.append(", ".join(words[c][:3]))
        else:
            top = max(mix, key=lambda m: mix[m][c]) if mix else "posts"
            labels.append(f"cluster {ids[c]} ({top} {mix[top][c]:.0%})" if mix else f"cluster {ids[c]}")
    cl = pl.DataFrame({
        "cluster_id": ids, "size": size.astype(np.int64), "label": labels,
        "words": pl.Series(words, dtype=pl.List(pl.String)),
        "representative_post_ids": pl.Series([inp.post_ids[r].tolist() for r in reps], dtype=pl.List(pl.Int64)),
        "sentiment": sent_mean.astype(np.float32),
        **{f"share_{m}": v for m, v in sorted(mix.items())},
    })
    posts = pl.DataFrame({"post_id": inp.post_ids.astype(np.int64), "cluster_id": ids[assign],
                          "sentiment": sentiment, "sentiment_source": source,
                          **{f"has_{m}": p.astype(bool) for m, p in sorted(inp.present.items())}})
    cvec = None
    if vectors is not None:
        v = C.unit(vectors)
        cvec = np.zeros((k, v.shape[1]), np.float32)
        np.add.at(cvec, assign, v)
        cvec = C.unit(cvec)
    activity = activity_table(posts, events, inp.created_us)
    info = {
        "k": k, "k_rule": "max silhouette (cosine) over a geometric grid of k" if k_scores else "fixed",
        "silhouette": {str(kk): v for kk, v in k_scores.items()}, "space": inp.space, "n_posts": n,
        "id_matching": match, "next_cluster_id": int(match["next_id"]), "sentiment": s_report,
        "bin_seconds": BIN_US // 1_000_000,
        "seconds": {"choose_k": round(t_k - t0, 2), "kmeans": round(t_km - t_k, 2), "total": round(time.perf_counter() - t0, 2)},
    }
    logger.info("analysis: %d clusters over %d posts (%s) in %.1f s; ids %s", k, n, info["k_rule"],
                info["seconds"]["total"], match["method"])
    return Analysis(cl, centroids, posts, activity, info, cvec)


def activity_table(posts: pl.DataFrame, events: pl.DataFrame, created_us: np.ndarray) -> pl.DataFrame:
    """Hourly events, sentiment sum and new posts per cluster. posts: post_id, cluster_id,
    sentiment (row order = created_us order); events: post_id, ts."""
    schema = {"cluster_id": pl.Int64, "hour": pl.Int64, "events": pl.Int64, "sentiment_sum": pl.Float64, "new_posts": pl.Int64}
    ev = (events.select("post_id", "ts").drop_nulls("ts")
          .join(posts.select("post_id", "cluster_id", "sentiment"), on="post_id", how="inner")
          .with_columns((pl.col("ts").cast(pl.Int64) // BIN_US).alias("hour"))
          .group_by("cluster_id", "hour").agg(pl.len().cast(pl.Int64).alias("events"), pl.col("sentiment").sum().cast(pl.Float64).alias("sentiment_sum")))
    created = np.asarray(created_us, np.int64)
    ok = created > 0
    new = (pl.DataFrame({"cluster_id": posts["cluster_id"].filter(pl.Series(ok)), "hour": to_bin(created[ok])})
           .group_by("cluster_id", "hour").agg(pl.len().cast(pl.Int64).alias("new_posts")))
    if ev.is_empty() and new.is_empty():
        return pl.DataFrame(schema=schema)
    out = ev.join(new, on=["cluster_id", "hour"], how="full", coalesce=True)
    return out.select(
        pl.col("cluster_id").cast(pl.Int64), pl.col("hour").cast(pl.Int64), pl.col("events").fill_null(0).cast(pl.Int64),
        pl.col("sentiment_sum").fill_null(0.0).cast(pl.Float64), pl.col("new_posts").fill_null(0).cast(pl.Int64),
    ).sort("cluster_id", "hour")
