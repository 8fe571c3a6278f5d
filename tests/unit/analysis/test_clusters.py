"""k-means + the k rule, c-TF-IDF labels, representatives, and ids that survive a rebuild."""

from __future__ import annotations

import numpy as np
import pytest

from recsys.analysis import clusters as C
from recsys.errors import ConfigError


def blobs(k: int, per: int, z: int = 16, seed: int = 0, spread: float = 0.15):
    rng = np.random.default_rng(seed)
    centres = C.unit(rng.standard_normal((k, z)))
    lab = np.repeat(np.arange(k), per)
    return C.unit(centres[lab] + spread * rng.standard_normal((k * per, z)).astype(np.float32)), lab


def _same_partition(a: np.ndarray, b: np.ndarray) -> bool:
    pairs = set(zip(a.tolist(), b.tolist()))
    return len(pairs) == len(set(a.tolist())) == len(set(b.tolist()))


def test_kmeans_recovers_blobs_and_the_rule_finds_their_number():
    x, lab = blobs(6, 80)
    k, scores = C.choose_k(x)
    assert k == 6, scores
    cent, assign = C.kmeans(x, 6)
    assert cent.shape == (6, 16) and np.allclose(np.linalg.norm(cent, axis=1), 1, atol=1e-5)
    assert _same_partition(assign, lab)
    with pytest.raises(ConfigError, match="k must be in"):
        C.kmeans(x, 0)


def test_ctfidf_labels_pick_each_clusters_own_words():
    texts = ["the striker scored a goal", "goal by the striker again", "my kitten purred", "the kitten napped",
             None, "the kitten and the goal"]
    assign = np.array([0, 0, 1, 1, 1, 1])
    words = C.label_clusters(texts, assign, 3)
    assert words[0][:2] == ["striker", "goal"] or set(words[0][:2]) == {"striker", "goal"}
    assert words[1][0] == "kitten" and "the" not in words[1]  # stop words dropped
    assert words[2] == []  # no text


def test_representatives_are_nearest_the_centroid_and_mix_counts_modalities():
    x, lab = blobs(3, 20)
    cent, assign = C.kmeans(x, 3)
    reps = C.representatives(x, assign, cent, n=4)
    for c, r in enumerate(reps):
        assert len(r) == 4 and (assign[r] == c).all()
        sims = x[assign == c] @ cent[c]
        assert np.isclose(x[r[0]] @ cent[c], sims.max())
    present = {"video": np.arange(60) % 2 == 0}
    mix = C.modality_mix(present, np.repeat([0, 1, 2], 20), 3)
    assert mix["video"].tolist() == [0.5, 0.5, 0.5]


def test_ids_survive_a_rebuild_with_other_cluster_order():
    x, lab = blobs(5, 40, seed=1)
    ids0, rep0 = C.match_ids(None, np.arange(200), lab, np.zeros((5, 16), np.float32))
    assert ids0.tolist() == [0, 1, 2, 3, 4] and rep0["method"] == "fresh"
    prev = C.Previous(ids0 + 10, np.zeros((5, 16), np.float32), np.arange(200), lab + 10, next_id=15, same_space=False)
    perm = np.array([3, 0, 4, 1, 2])  # the new run numbers the same clusters differently
    ids, rep = C.match_ids(prev, np.arange(200), perm[lab], np.zeros((5, 16), np.float32))
    assert rep["method"] == "jaccard" and rep["matched"] == 5 and rep["new"] == 0
    assert [ids[perm[c]] for c in range(5)] == [10, 11, 12, 13, 14]


def test_a_new_cluster_gets_a_fresh_id_and_ids_are_never_reused():
    lab = np.repeat(np.arange(4), 50)
    prev = C.Previous(np.array([0, 1, 2, 3]), np.zeros((4, 8), np.float32), np.arange(200), lab, next_id=7, same_space=False)
    new = lab.copy()
    new[150:] = 4  # cluster 3's posts now form another cluster, with 60 new posts added to it
    ids, rep = C.match_ids(prev, np.concatenate([np.arange(200), np.arange(1000, 1060)]),
                           np.concatenate([new, np.full(60, 4)]), np.zeros((5, 8), np.float32))
    assert ids[:3].tolist() == [0, 1, 2]
    assert ids[4] == 3  # the moved posts are still cluster 3's posts: same id
    assert ids[3] == 7 and rep["new"] == 1 and rep["next_id"] == 8  # empty old slot -> fresh id 7 (not 3, not 4)


def test_centroid_matching_when_few_posts_are_shared():
    x, lab = blobs(4, 30, seed=2)
    cent, assign = C.kmeans(x, 4)
    prev = C.Previous(np.array([5, 6, 7, 8]), cent, np.arange(10_000, 10_120), assign, next_id=9, same_space=True)
    ids, rep = C.match_ids(prev, np.arange(120), assign, cent[[2, 0, 3, 1]])
    assert rep["method"] == "centroid-cosine" and ids.tolist() == [7, 5, 8, 6]
    prev.same_space = False  # another model: centroids are not comparable, ids start afresh
    ids, rep = C.match_ids(prev, np.arange(120), assign, cent)
    assert ids.tolist() == [9, 10, 11, 12] and rep["matched"] == 0
