import numpy as np
import pytest

from recsys.baselines import get_baseline
from recsys.errors import ArtifactError, ConfigError
from recsys.evaluation import evaluate


@pytest.mark.parametrize("combine", ["mean", "concat"])
def test_content_knn_ranks_cold_posts_by_topic(world, combine):
    data, feats = world
    r = evaluate(get_baseline("content-knn")(data, feats, combine=combine), data, "test", ks=(20,))
    pop = evaluate(get_baseline("popular")(data), data, "test", ks=(20,))
    cold = r["buckets"]["items"]["cold"]
    assert cold["n_users"] > 0 and cold["recall@20"] > 0.3  # popularity can never reach them
    assert pop["buckets"]["items"]["cold"]["recall@20"] == 0.0
    assert r["metrics"]["recall@20"] > pop["metrics"]["recall@20"]


def test_content_knn_absent_rows_score_zero(world):
    data, feats = world
    scorer = get_baseline("content-knn")(data, {"audio": feats["audio"]})
    s = scorer.score(np.arange(5)).numpy()
    absent = ~feats["audio"][1]
    assert (s[:, absent] == 0).all() and (s[:, ~absent] != 0).any()


def test_content_knn_bad_input(world):
    data, feats = world
    with pytest.raises(ArtifactError, match="feature store"):
        get_baseline("content-knn")(data, {})
    with pytest.raises(ConfigError, match="combine must be one of"):
        get_baseline("content-knn")(data, feats, combine="max")
    with pytest.raises(ConfigError, match=r"\['text'\] not in the feature store"):
        get_baseline("content-knn")(data, feats, modalities=["text"])
