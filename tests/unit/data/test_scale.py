"""The platform-scale generator at a small size: layout, exact counts, causality, determinism,
features that carry the topic signal, and bad sizes."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from recsys.data.scale import ScaleConfig, synthesize_scale
from recsys.dataset import load_dataset
from recsys.errors import ConfigError
from recsys.features import load_features
from recsys.interactions import build_interaction_data

SMALL = dict(n_posts=4000, n_users=500, n_interactions=20_000, n_authors=300, n_topics=16, max_user_events=200)


@pytest.fixture(scope="module")
def scale_ds(tmp_path_factory):
    return synthesize_scale(tmp_path_factory.mktemp("scale") / "ds", ScaleConfig(**SMALL))


def test_layout_counts_and_split(scale_ds):
    ds = load_dataset(scale_ds.root)  # validated like any dataset
    assert len(ds.posts) == 4000 and len(ds.interactions) == 20_000
    assert ds.splits is not None and set(ds.splits["split"].unique()) == {"train", "valid", "test"}
    pairs = ds.interactions.select("user_id", "post_id")
    assert pairs.n_unique() == len(pairs)  # no repeated (user, post)
    per_user = ds.interactions.group_by("user_id").len()["len"]
    assert per_user.max() <= 200
    store = load_features(ds.root)
    assert sorted(store) == ["image", "text"] and store["image"].dim == 64
    both_missing = ~store["image"].present & ~store["text"].present
    assert not both_missing.any() and (~store["image"].present).mean() == pytest.approx(0.1, abs=0.02)
    build_interaction_data(ds)  # the matrices every consumer builds


def test_no_interaction_before_its_post(scale_ds):
    ds = load_dataset(scale_ds.root)
    j = ds.interactions.join(ds.posts.select("post_id", "created_at"), on="post_id")
    assert (j["ts"] >= j["created_at"]).all()


def test_same_seed_same_data_other_seed_other_data(scale_ds, tmp_path):
    again = synthesize_scale(tmp_path / "again", ScaleConfig(**SMALL))
    assert again.interactions.equals(scale_ds.interactions)
    assert np.array_equal(load_features(again.root)["text"].data, load_features(scale_ds.root)["text"].data)
    other = synthesize_scale(tmp_path / "other", ScaleConfig(**SMALL, seed=1))
    assert not other.interactions.equals(scale_ds.interactions)


def test_features_carry_the_users_topics(scale_ds):
    """Posts a user interacted with are closer to each other in feature space than random posts:
    the signal a content model can learn."""
    ds = load_dataset(scale_ds.root)
    x = load_features(ds.root)["image"]
    rows = {int(p): i for i, p in enumerate(x.post_ids)}
    v = x.data / np.maximum(np.linalg.norm(x.data, axis=1, keepdims=True), 1e-9)
    by_user = ds.interactions.group_by("user_id").agg(pl.col("post_id")).filter(pl.col("post_id").list.len() >= 5)
    rng = np.random.default_rng(0)
    same, rand = [], []
    for posts in by_user["post_id"].to_list()[:200]:
        i = np.array([rows[p] for p in posts[:5]])
        same.append(float((v[i] @ v[i].T)[np.triu_indices(5, 1)].mean()))
        j = rng.integers(0, len(v), 5)
        rand.append(float((v[j] @ v[j].T)[np.triu_indices(5, 1)].mean()))
    assert np.mean(same) > np.mean(rand) + 0.1


def test_bad_sizes_are_config_errors(tmp_path):
    with pytest.raises(ConfigError, match="n_interactions"):
        ScaleConfig(**{**SMALL, "n_interactions": 10})
    with pytest.raises(ConfigError, match="n_authors"):
        ScaleConfig(**{**SMALL, "n_authors": 10_000})
