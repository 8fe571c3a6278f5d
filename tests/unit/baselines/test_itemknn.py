import pytest

from recsys.baselines import get_baseline
from recsys.errors import ConfigError
from recsys.evaluation import evaluate


def test_itemknn_beats_popular_on_topical_users(world):
    data, _ = world
    knn = evaluate(get_baseline("itemknn")(data, neighbours=20, shrink=10.0), data, "valid", ks=(10,))["metrics"]
    pop = evaluate(get_baseline("popular")(data), data, "valid", ks=(10,))["metrics"]
    assert knn["recall@10"] > pop["recall@10"] + 0.1


def test_itemknn_keeps_at_most_k_neighbours_and_no_self_similarity(world):
    data, _ = world
    sim = get_baseline("itemknn")(data, neighbours=3).sim.tocsc()
    assert (sim.diagonal() == 0).all()
    assert max(sim.indptr[1:] - sim.indptr[:-1]) <= 3


def test_itemknn_rejects_bad_config(world):
    with pytest.raises(ConfigError, match="neighbours >= 1"):
        get_baseline("itemknn")(world[0], neighbours=0)

