"""The analysis files (clusters, post sentiment, activity) and their one reader / writer.

    DIR/                         a bundle's `analysis/`, or a `recsys trends` report's
      analysis.json              k rule and silhouettes, id matching, sentiment head report, bin size
      clusters.parquet           cluster_id, size, label, words, representative_post_ids,
                                 sentiment (mean of its posts), share_<modality> (posts having it)
      centroids.npy              float32 (K, Z) unit centroids in the latent space, rows = clusters.parquet rows
      centroid_vectors.npy       float32 (K, d) unit mean post vector per cluster (optional: profiles)
      post_clusters.parquet      post_id, cluster_id, sentiment, sentiment_source (text | head | cluster | none),
                                 has_<modality>
      activity.parquet           cluster_id, hour (hours since the epoch), events, sentiment_sum, new_posts

Every file is written through `recsys.io` (temporary file + rename).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl

from recsys.errors import ArtifactError
from recsys.io import atomic_path, read_json, write_json, write_parquet

INFO_FILE = "analysis.json"
CLUSTERS_FILE = "clusters.parquet"
CENTROIDS_FILE = "centroids.npy"
CENTROID_VECTORS_FILE = "centroid_vectors.npy"
POSTS_FILE = "post_clusters.parquet"
ACTIVITY_FILE = "activity.parquet"
REQUIRED = (INFO_FILE, CLUSTERS_FILE, CENTROIDS_FILE, POSTS_FILE, ACTIVITY_FILE)


@dataclass
class Analysis:
    clusters: pl.DataFrame  # one row per cluster (see the module docstring)
    centroids: np.ndarray  # float32 (K, Z)
    posts: pl.DataFrame  # post_id, cluster_id, sentiment, sentiment_source
    activity: pl.DataFrame  # cluster_id, hour, events, sentiment_sum, new_posts
    info: dict
    centroid_vectors: np.ndarray | None = None  # float32 (K, d)

    @property
    def k(self) -> int:
        return len(self.clusters)


def _save_npy(path: Path, arr: np.ndarray) -> None:
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            np.save(f, arr)


def write_analysis(d: Path, a: Analysis) -> Path:
    d = Path(d)
    d.mkdir(parents=True, exist_ok=True)
    write_parquet(d / CLUSTERS_FILE, a.clusters)
    _save_npy(d / CENTROIDS_FILE, np.asarray(a.centroids, np.float32))
    if a.centroid_vectors is not None:
        _save_npy(d / CENTROID_VECTORS_FILE, np.asarray(a.centroid_vectors, np.float32))
    write_parquet(d / POSTS_FILE, a.posts)
    write_parquet(d / ACTIVITY_FILE, a.activity)
    write_json(d / INFO_FILE, a.info)
    return d


def read_analysis(d: Path) -> Analysis:
    """ArtifactError naming the directory when a file is missing or the files disagree."""
    d = Path(d)
    missing = [n for n in REQUIRED if not (d / n).is_file()]
    if missing:
        raise ArtifactError(f"analysis {d}: missing {missing}")
    clusters = pl.read_parquet(d / CLUSTERS_FILE)
    centroids = np.load(d / CENTROIDS_FILE)
    cv = np.load(d / CENTROID_VECTORS_FILE) if (d / CENTROID_VECTORS_FILE).is_file() else None
    if len(centroids) != len(clusters) or (cv is not None and len(cv) != len(clusters)):
        raise ArtifactError(f"analysis {d}: {len(clusters)} clusters but {len(centroids)} centroids")
    return Analysis(clusters, centroids, pl.read_parquet(d / POSTS_FILE), pl.read_parquet(d / ACTIVITY_FILE),
                    read_json(d / INFO_FILE), cv)
