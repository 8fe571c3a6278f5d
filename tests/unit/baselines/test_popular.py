import numpy as np
import pytest

from recsys.baselines import BASELINES, get_baseline
from recsys.errors import UnknownIdError
from recsys.evaluation import evaluate

from .conftest import RandomScorer


def test_popular_beats_random_and_never_hits_cold(world):
    data, _ = world
    pop = evaluate(get_baseline("popular")(data), data, "test", ks=(10,))
    rnd = evaluate(RandomScorer(data.n_posts), data, "test", ks=(10,))
    assert pop["metrics"]["recall@10"] > rnd["metrics"]["recall@10"] + 0.05
    assert pop["buckets"]["items"]["cold"]["recall@10"] == 0.0
    assert pop["buckets"]["items"]["cold"]["n_users"] > 0


def test_unknown_baseline_lists_known_ones():
    with pytest.raises(UnknownIdError, match="unknown baseline 'svd'.*popular, itemknn, bpr, lightgcn, content-knn"):
        get_baseline("svd")
    assert set(BASELINES) == {"popular", "itemknn", "bpr", "lightgcn", "content-knn"}


@pytest.mark.shared
def test_popular_tiktok_matches_published_protocol_figure(tiktok):
    from recsys.dataset import load_dataset
    from recsys.interactions import build_interaction_data

    data = build_interaction_data(load_dataset(tiktok))
    r = evaluate(get_baseline("popular")(data), data, "test", ks=(20,))
    assert r["n_users"] == 6130
    assert round(r["metrics"]["recall@20"], 4) == 0.0597
    assert round(r["metrics"]["ndcg@20"], 4) == 0.0255
    assert r["buckets"]["items"]["cold"]["n_relevant"] == 449  # README: 449 cold test interactions
    assert np.isclose(r["metrics"]["precision@20"], r["metrics"]["recall@20"] / 20)  # one test item per user
