"""Hidden-preference recovery on the synthetic platform: an oracle that ranks by the hidden
topic weights must score near 1 on topic affinity, and clearly above popularity; lists ranked by
the full hidden choice weights capture all of the preference mass (1.0), others less."""

from __future__ import annotations

import shutil

import numpy as np
import torch

from recsys.baselines import get_baseline
from recsys.dataset import load_dataset
from recsys.evaluation import evaluate
from recsys.ground_truth import load_ground_truth, oracle_lists, preference_recovery
from recsys.interactions import build_interaction_data
from recsys.split import split_dataset


class Oracle:
    name = "oracle"

    def __init__(self, gt, data):
        topics = sorted({t for w in gt.user_pref.values() for t in w})
        post_t = np.array([topics.index(gt.post_topic[int(p)]) for p in data.post_ids])
        w = np.array([[gt.user_pref.get(int(u), {}).get(t, 0.0) for t in topics] for u in data.user_ids])
        self.s = torch.tensor(w[:, post_t], dtype=torch.float32)  # (U, N)

    def score(self, users):
        return self.s[torch.as_tensor(users)]


def test_oracle_recovers_hidden_preferences(tiny_synth, tmp_path):
    root = tmp_path / "d"
    shutil.copytree(tiny_synth, root)
    split_dataset(root)
    ds = load_dataset(root)
    data = build_interaction_data(ds)
    gt = load_ground_truth(root, ds.posts, ds.meta)
    assert gt is not None and gt.choice["author_boost"] == 3.0 and len(gt.post_pop) == len(gt.post_topic)
    known = np.diff(data.history_for("test").indptr) > 0  # users the harness answers with the scorer (the others: the prior)

    def lists(scorer):
        users, idx, valid = evaluate(scorer, data, "test", ks=(5,), keep_lists=True)["lists"]
        k = known[users]
        return users[k], idx[k], valid[k]

    oracle = preference_recovery(gt, data, *lists(Oracle(gt, data)), "test")
    pop = preference_recovery(gt, data, *lists(get_baseline("popular")(data)), "test")
    assert oracle["n_users"] > 0 and oracle["n_users"] == pop["n_users"]
    assert oracle["topic_affinity@5"] > 0.8  # < 1 only where train masking removes favourite-topic posts
    assert oracle["topic_affinity@5"] > pop["topic_affinity@5"] + 0.2
    assert 0.0 <= pop["fav_author@5"] <= 1.0
    users = lists(Oracle(gt, data))[0]
    ref_lists = oracle_lists(gt, data, users, "test", 5)
    ref = preference_recovery(gt, data, *ref_lists, "test")
    assert ref["pref_capture@5"] == 1.0  # the best K by construction
    assert pop["pref_capture@5"] < 0.95 and oracle["pref_capture@5"] < 0.95
    # the choice weights trade topic against popularity / authors: the topic-only oracle is more topical
    assert oracle["topic_affinity@5"] >= ref["topic_affinity@5"]
    excl = data.exclude_for("test").tocsr()
    for row, u in enumerate(ref_lists[0]):  # masked (already seen) posts are never in the best K
        assert not set(ref_lists[1][row][ref_lists[2][row]]) & set(excl.indices[excl.indptr[u] : excl.indptr[u + 1]])


def test_no_ground_truth_outside_synth(tmp_path):
    import polars as pl

    assert load_ground_truth(tmp_path, pl.DataFrame({"post_id": [1], "author_id": [2]})) is None
