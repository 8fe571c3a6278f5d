"""Profiles: recency-weighted history plus the user vector; no history says so."""

from __future__ import annotations

import numpy as np

from recsys.analysis.profiles import ProfileView, cluster_weights, interest_profile


def view(k: int = 3, cv=None) -> ProfileView:
    return ProfileView(cluster_ids=np.arange(10, 10 + k), labels=[f"c{i}" for i in range(k)],
                       representatives=[[100 + i] for i in range(k)], centroid_vectors=cv,
                       modalities=["image", "video"], base_share=np.array([0.8, 0.1]))


def test_history_weights_favour_recent_posts():
    w = cluster_weights(np.array([0, 0, 0, 1]), None, view())
    # three older posts of cluster 0 vs the latest of cluster 1: 0 still leads, 1 gets its full weight
    assert w["history"][0] > w["history"][1] > 0 and w["history"][2] == 0 and np.isclose(w["history"].sum(), 1)
    assert w["vector"] is None and np.allclose(w["weight"], w["history"])


def test_user_vector_part_and_mix():
    cv = np.eye(3, dtype=np.float32)
    w = cluster_weights(np.array([0]), np.array([0.0, 0.0, 1.0], np.float32), view(cv=cv))
    assert np.argmax(w["vector"]) == 2 and np.isclose(w["weight"].sum(), 1)
    assert np.isclose(w["weight"][0], 0.5 * 1 + 0.5 * w["vector"][0])


def test_profile_body_examples_modality_and_no_history():
    hist_pos = np.array([1, 0, 1, -1])
    ids = np.array([5, 6, 7, 8])
    present = np.array([[True, True], [True, False], [False, True], [False, False]])
    p = interest_profile(hist_pos, ids, present, np.array([0.5, -0.5, 0.1, 0.0]), 9, None, view())
    assert p["has_history"] and [c["cluster_id"] for c in p["clusters"]] == [11, 10]
    assert p["clusters"][0]["example_post_ids"] == [7, 5] and p["clusters"][0]["sentiment"] == 0.3
    assert p["preferred_modality"]["modality"] == "video"  # 2 of 3 known posts have video vs 10% base
    assert p["activity"] == {"interactions": 9, "history_used": 3, "clusters_touched": 2, "mean_sentiment": 0.0333}
    empty = interest_profile(np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros((0, 2), bool), np.zeros(0), 0, None, view())
    assert empty["has_history"] is False and "no history" in empty["message"] and empty["clusters"] == []
