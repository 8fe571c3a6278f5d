"""Recall@K with ties, and tuning of nprobe / efSearch up to a target."""

from __future__ import annotations

import numpy as np

from index import faiss_index as fi
from index.recall import exact_topk, recall_at_k, tune
from tests.unit.index.helpers import clustered


def test_recall_counts_ties_as_correct():
    # 4 posts, 1-d: scores for query [1] are 3, 2, 2, 1. Exact top-2 = {0, 1 or 2}.
    v = np.array([[3.0], [2.0], [2.0], [1.0]], np.float32)
    q = np.array([[1.0]], np.float32)
    ex, _ = exact_topk(v, q, 2)
    assert recall_at_k(np.array([[0, 2]]), v, q, ex, 2) == 1.0  # tie with row 1: correct
    assert recall_at_k(np.array([[0, 3]]), v, q, ex, 2) == 0.5  # row 3 scores below the 2nd best
    assert recall_at_k(np.array([[0, -1]]), v, q, ex, 2) == 0.5  # nothing returned = miss
    assert recall_at_k(np.array([[0, 0]]), v, q, ex, 2) == 0.5  # a duplicate counts once


def test_tune_raises_nprobe_until_target():
    x, q = clustered(4000, 16, n_clusters=64), clustered(200, 16, n_clusters=64, seed=3)
    idx = fi.build_index(x, "IVF64,Flat")
    g = tune(idx, x, q, k=50, target=0.95)
    assert g.passed and g.recall >= 0.95 and g.param_name == "nprobe"
    assert [t["value"] for t in g.tried] == sorted(t["value"] for t in g.tried)
    assert all(t["recall"] < 0.95 for t in g.tried[:-1])  # stopped at the first value that passes
    assert g.latency_ms_p50 > 0


def test_tune_fails_when_capped():
    x, q = clustered(4000, 16, n_clusters=64), clustered(200, 16, n_clusters=64, seed=3)
    idx = fi.build_index(x, "IVF64,Flat")
    g = tune(idx, x, q, k=50, target=0.99, max_value=1)
    assert not g.passed and g.param_value == 1 and g.recall < 0.99


def test_exact_index_passes_with_recall_one():
    x, q = clustered(500, 8), clustered(20, 8, seed=4)
    g = tune(fi.build_index(x, "Flat"), x, q, k=10, target=1.0)
    assert g.passed and g.recall == 1.0 and g.param_name is None
