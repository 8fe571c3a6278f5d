import numpy as np
import pytest
import torch

from recsys.baselines import get_baseline
from recsys.baselines.lightgcn import normalized_adjacency
from recsys.evaluation import evaluate


def test_normalized_adjacency_is_symmetric_with_degree_scaling(world):
    data, _ = world
    a = normalized_adjacency(data.train).to_dense()
    assert torch.equal(a, a.T)  # to the bit: its SparseOperator's backward multiplies by the matrix itself
    u, i = data.train.nonzero()
    du, di = np.diff(data.train.indptr)[u[0]], data.train[:, i[0]].sum()
    assert a[u[0], data.n_users + i[0]].item() == pytest.approx(1 / np.sqrt(du * di))


def test_lightgcn_learns(world):
    data, _ = world
    scorer = get_baseline("lightgcn")(data, dim=16, lr=0.05, epochs=30, patience=4)
    assert scorer.info["selected_on"] == "valid" and scorer.info["best_epoch"] >= 1
    gcn = evaluate(scorer, data, "test", ks=(10,))["metrics"]["recall@10"]
    pop = evaluate(get_baseline("popular")(data), data, "test", ks=(10,))["metrics"]["recall@10"]
    assert gcn > pop + 0.05


@pytest.mark.slow  # ~2 s alone, minutes on a loaded 2-core machine
@pytest.mark.shared
def test_lightgcn_tiktok_two_epochs_beats_popular(tiktok):
    from recsys.dataset import load_dataset
    from recsys.interactions import build_interaction_data

    data = build_interaction_data(load_dataset(tiktok))
    scorer = get_baseline("lightgcn")(data, epochs=2)
    r = evaluate(scorer, data, "valid", ks=(20,))["metrics"]["recall@20"]
    assert r > 0.0626  # most-popular on TikTok valid
