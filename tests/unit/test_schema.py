"""Validation of the dataset tables: every bad input names the table and column."""

from __future__ import annotations

from datetime import datetime

import polars as pl
import pytest

from recsys.errors import SchemaError, UnknownIdError
from recsys.schema import (
    INTERACTIONS_SCHEMA,
    POSTS_SCHEMA,
    validate_interactions,
    validate_posts,
    validate_splits,
)


def posts(**overrides) -> pl.DataFrame:
    cols = {
        "post_id": pl.Series([1, 2, 3], dtype=pl.Int64),
        "author_id": pl.Series([10, None, 10], dtype=pl.Int64),
        "created_at": pl.Series([datetime(2024, 1, 1)] * 3, dtype=pl.Datetime("us", "UTC")),
        "text": pl.Series(["a", None, "c"], dtype=pl.String),
        "image_path": pl.Series([None, "media/2.jpg", None], dtype=pl.String),
        "video_path": pl.Series([None, None, None], dtype=pl.String),
    }
    cols.update(overrides)
    return pl.DataFrame({k: v for k, v in cols.items() if v is not None})


def interactions(**overrides) -> pl.DataFrame:
    cols = {
        "user_id": pl.Series([7, 7, 8], dtype=pl.Int64),
        "post_id": pl.Series([1, 2, 3], dtype=pl.Int64),
        "ts": pl.Series([datetime(2024, 1, 2)] * 3, dtype=pl.Datetime("us", "UTC")),
        "event": pl.Series(["view", "like", "view"]),
        "weight": pl.Series([1.0, 2.0, 1.0], dtype=pl.Float32),
    }
    cols.update(overrides)
    return pl.DataFrame({k: v for k, v in cols.items() if v is not None})


def splits(rows: list[int], names: list[str] | None = None) -> pl.DataFrame:
    names = names or ["train"] * len(rows)
    return pl.DataFrame({"row": pl.Series(rows, dtype=pl.Int64), "split": names})


def test_valid_tables_pass_with_the_exact_schemas() -> None:
    p = validate_posts(posts())
    i = validate_interactions(interactions(), p["post_id"])
    assert dict(p.schema) == POSTS_SCHEMA
    assert dict(i.schema) == INTERACTIONS_SCHEMA


def test_lossless_casts_are_applied() -> None:
    p = validate_posts(
        posts(
            post_id=pl.Series([1, 2, 3], dtype=pl.Int32),
            author_id=pl.Series([None, None, None], dtype=pl.Null),
            created_at=pl.Series([datetime(2024, 1, 1)] * 3, dtype=pl.Datetime("ms")),  # naive -> UTC
            text=pl.Series(["a", "b", "a"], dtype=pl.Categorical),
        )
    )
    assert dict(p.schema) == POSTS_SCHEMA
    assert p["created_at"][0] == datetime.fromisoformat("2024-01-01T00:00:00+00:00")
    assert p["text"].to_list() == ["a", "b", "a"]

    i = validate_interactions(interactions(user_id=pl.Series([7, 7, 8], dtype=pl.UInt16), weight=pl.Series([1, 2, 3])))
    assert dict(i.schema) == INTERACTIONS_SCHEMA
    assert i["weight"].to_list() == [1.0, 2.0, 3.0]


def test_missing_columns_are_named() -> None:
    with pytest.raises(SchemaError, match=r"posts: missing column\(s\) \['text'\]"):
        validate_posts(posts().drop("text"))
    with pytest.raises(SchemaError, match=r"interactions: missing column\(s\) \['user_id', 'weight'\]"):
        validate_interactions(interactions().drop("user_id", "weight"))


@pytest.mark.parametrize(
    ("table", "override", "match"),
    [
        ("posts", {"post_id": pl.Series([True, False, True])}, r"posts: column 'post_id' must be Int64 or String, got Boolean"),
        ("posts", {"post_id": pl.Series([1.0, 2.0, 3.0])}, r"column 'post_id' must be Int64 or String, got Float64"),
        ("posts", {"created_at": pl.Series([1, 2, 3])}, r"column 'created_at' must be Datetime.*got Int64"),
        ("interactions", {"weight": pl.Series(["1", "1", "1"])}, r"interactions: column 'weight' must be Float32, got String"),
        ("interactions", {"user_id": pl.Series([1.5, 2.0, 3.0])}, r"column 'user_id' must be Int64 or String, got Float64"),
    ],
)
def test_mistyped_columns_are_refused(table: str, override: dict, match: str) -> None:
    with pytest.raises(SchemaError, match=match):
        if table == "posts":
            validate_posts(posts(**override))
        else:
            validate_interactions(interactions(**override))


def test_duplicate_post_ids_are_listed() -> None:
    with pytest.raises(SchemaError, match=r"posts: 2 duplicate post_id value\(s\), e.g. \[1, 3\]"):
        validate_posts(pl.concat([posts(), posts().filter(pl.col("post_id") != 2)]))


def test_interactions_on_unknown_posts_are_refused() -> None:
    with pytest.raises(UnknownIdError, match=r"2 row\(s\) reference post_id\(s\) not in posts, e.g. \[9\]"):
        validate_interactions(interactions(post_id=pl.Series([1, 9, 9])), pl.Series([1, 2, 3]))
    with pytest.raises(KeyError):  # also the builtin it mirrors
        validate_interactions(interactions(post_id=pl.Series([4, 1, 1])), pl.Series([1, 2, 3]))


@pytest.mark.parametrize("col", ["user_id", "post_id", "event", "weight"])
def test_nulls_in_required_interaction_columns_are_refused(col: str) -> None:
    df = interactions().with_columns(pl.when(pl.int_range(pl.len()) == 1).then(None).otherwise(pl.col(col)).alias(col))
    with pytest.raises(SchemaError, match=rf"interactions: column '{col}' has 1 null value\(s\)"):
        validate_interactions(df)


def test_null_post_id_in_posts_is_refused_but_nullable_columns_accept_nulls() -> None:
    with pytest.raises(SchemaError, match=r"posts: column 'post_id' has 1 null value"):
        validate_posts(posts(post_id=pl.Series([1, None, 3], dtype=pl.Int64)))
    ok = validate_interactions(interactions(ts=pl.Series([None, None, None], dtype=pl.Datetime("us", "UTC"))))
    assert ok["ts"].null_count() == 3


def test_splits_must_be_a_permutation_of_the_rows() -> None:
    got = validate_splits(splits([2, 0, 1], ["test", "train", "valid"]), 3)
    assert got["split"].to_list() == ["train", "valid", "test"]  # sorted by row

    with pytest.raises(SchemaError, match=r"splits: 2 rows but interactions has 3"):
        validate_splits(splits([0, 1]), 3)
    with pytest.raises(SchemaError, match=r"'row' must be a permutation of 0\.\.2"):
        validate_splits(splits([0, 1, 1]), 3)
    with pytest.raises(SchemaError, match=r"'row' must be a permutation of 0\.\.2"):
        validate_splits(splits([1, 2, 3]), 3)
    with pytest.raises(SchemaError, match=r"split must be one of \['train', 'valid', 'test'\], got \['holdout'\]"):
        validate_splits(splits([0, 1, 2], ["train", "holdout", "test"]), 3)
    with pytest.raises(SchemaError, match=r"splits: column 'split' has 1 null"):
        validate_splits(pl.DataFrame({"row": [0, 1], "split": ["train", None]}), 2)


def test_an_empty_split_of_no_interactions_is_valid() -> None:
    assert validate_splits(splits([]), 0).is_empty()
