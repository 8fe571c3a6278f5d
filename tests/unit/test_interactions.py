"""build_interaction_data on a handmade dataset."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
import pytest

from recsys.data.common import bare_posts
from recsys.dataset import save_dataset
from recsys.errors import ArtifactError, ConfigError, UnknownIdError
from recsys.interactions import build_interaction_data

POSTS = [30, 10, 50, 20, 40]  # posts.parquet order (not sorted); 40 is cold (no interaction)
ROWS = [
    # user, post, split
    (9, 30, "train"),
    (9, 30, "train"),  # duplicate: collapses to one 1.0
    (9, 10, "train"),
    (3, 50, "train"),
    (9, 20, "valid"),
    (3, 10, "valid"),
    (9, 50, "test"),
    (7, 20, "test"),  # user 7 appears only in test
]


def make_dataset(root: Path, meta: dict | None = None, with_splits: bool = True):
    inter = pl.DataFrame(
        {"user_id": [r[0] for r in ROWS], "post_id": [r[1] for r in ROWS]},
        schema={"user_id": pl.Int64, "post_id": pl.Int64},
    ).with_columns(
        pl.lit(None, dtype=pl.Datetime("us", "UTC")).alias("ts"),
        pl.lit("view").alias("event"),
        pl.lit(1.0, dtype=pl.Float32).alias("weight"),
    )
    splits = pl.DataFrame({"row": np.arange(len(ROWS)), "split": [r[2] for r in ROWS]}) if with_splits else None
    return save_dataset(root, bare_posts(np.array(POSTS)), inter, splits, meta)


def dense(m) -> list[list[float]]:
    return m.toarray().tolist()


def test_matrices_have_sorted_users_and_posts_in_file_order(tmp_path: Path) -> None:
    data = build_interaction_data(make_dataset(tmp_path / "ds"))
    assert data.user_ids.tolist() == [3, 7, 9]
    assert data.post_ids.tolist() == POSTS
    assert (data.n_users, data.n_posts) == (3, 5)
    for m in (data.train, data.valid, data.test):
        assert m.shape == (3, 5) and m.dtype == np.float32
    #                   30   10   50   20   40
    assert dense(data.train) == [
        [0.0, 0.0, 1.0, 0.0, 0.0],  # user 3
        [0.0, 0.0, 0.0, 0.0, 0.0],  # user 7
        [1.0, 1.0, 0.0, 0.0, 0.0],  # user 9: duplicate (9, 30) is a single 1.0
    ]
    assert dense(data.valid) == [[0, 1, 0, 0, 0], [0, 0, 0, 0, 0], [0, 0, 0, 1, 0]]
    assert dense(data.test) == [[0, 0, 0, 0, 0], [0, 0, 0, 1, 0], [0, 0, 1, 0, 0]]
    cold = data.post_index(np.array([40]))[0]
    assert data.train[:, cold].nnz + data.valid[:, cold].nnz + data.test[:, cold].nnz == 0


def test_exclude_for_test_adds_valid_items_unless_the_protocol_says_not(tmp_path: Path) -> None:
    data = build_interaction_data(make_dataset(tmp_path / "a"))
    assert dense(data.exclude_for("valid")) == dense(data.train)
    assert dense(data.exclude_for("test")) == dense(data.train + data.valid)
    assert data.exclude_for("test").max() == 1.0

    mmrec_like = build_interaction_data(make_dataset(tmp_path / "b", meta={"protocol": {"mask_valid_on_test": False}}))
    assert dense(mmrec_like.exclude_for("test")) == dense(mmrec_like.train)


def test_index_lookups_and_split_names(tmp_path: Path) -> None:
    data = build_interaction_data(make_dataset(tmp_path / "ds"))
    assert data.user_index(np.array([9, 4, 3])).tolist() == [2, -1, 0]
    assert data.post_index(np.array([20, 40, 99])).tolist() == [3, 4, -1]
    with pytest.raises(UnknownIdError, match=r"1 unknown post id\(s\), e.g. \[99\]"):
        data.post_index_strict(np.array([10, 99]))
    assert data.split("valid") is data.valid
    with pytest.raises(ConfigError, match=r"split must be one of .*got 'holdout'"):
        data.split("holdout")


def test_a_dataset_without_splits_says_to_run_split(tmp_path: Path) -> None:
    ds = make_dataset(tmp_path / "nosplit", with_splits=False)
    with pytest.raises(ArtifactError, match=r"no splits\.parquet; run `recsys split --data"):
        build_interaction_data(ds)
