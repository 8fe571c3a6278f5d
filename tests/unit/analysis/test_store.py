"""Analysis files round-trip; a missing file is named."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from recsys.analysis.store import CENTROIDS_FILE, Analysis, read_analysis, write_analysis
from recsys.errors import ArtifactError


def test_roundtrip_and_missing_file(tmp_path):
    a = Analysis(
        clusters=pl.DataFrame({"cluster_id": [3, 5], "size": [2, 1], "label": ["a", "b"]}),
        centroids=np.eye(2, dtype=np.float32), posts=pl.DataFrame({"post_id": [1, 2, 3], "cluster_id": [3, 3, 5]}),
        activity=pl.DataFrame({"cluster_id": [3], "hour": [10], "events": [4]}), info={"k": 2},
        centroid_vectors=np.ones((2, 4), np.float32),
    )
    write_analysis(tmp_path / "a", a)
    b = read_analysis(tmp_path / "a")
    assert b.k == 2 and b.info == {"k": 2} and b.posts.equals(a.posts) and np.array_equal(b.centroid_vectors, a.centroid_vectors)
    (tmp_path / "a" / CENTROIDS_FILE).unlink()
    with pytest.raises(ArtifactError, match="centroids.npy"):
        read_analysis(tmp_path / "a")
