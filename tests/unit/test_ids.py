"""Your own ids: string ids for users, posts and authors map to stable internal int64 ids once,
when a dataset is read; the files keep the caller's keys."""

from __future__ import annotations

from datetime import datetime

import numpy as np
import polars as pl
import pytest

from recsys.dataset import load_dataset, save_dataset
from recsys.errors import SchemaError, UnknownIdError
from recsys.ids import IdMap, internal_id, load_id_maps, save_id_maps
from recsys.io import write_parquet


def _tables(post_ids=("p-a", "p-b", "p-c"), users=("alice", "alice", "bob"), authors=("@x", None, "@y")):
    posts = pl.DataFrame({
        "post_id": list(post_ids), "author_id": pl.Series(list(authors), dtype=pl.String),
        "created_at": pl.Series([datetime(2024, 1, 1)] * len(post_ids), dtype=pl.Datetime("us", "UTC")),
        "text": ["a", "b", "c"][: len(post_ids)], "image_path": [None] * len(post_ids), "video_path": [None] * len(post_ids),
    }, schema_overrides={"image_path": pl.String, "video_path": pl.String})
    inter = pl.DataFrame({
        "user_id": list(users), "post_id": list(post_ids)[: len(users)],
        "ts": pl.Series([datetime(2024, 1, 2)] * len(users), dtype=pl.Datetime("us", "UTC")),
        "event": ["like"] * len(users), "weight": pl.Series([1.0] * len(users), dtype=pl.Float32),
    })
    return posts, inter


def test_internal_ids_are_stable_nonnegative_and_distinct() -> None:
    a, b = internal_id("alice"), internal_id("bob")
    assert a == internal_id("alice") and a != b
    assert 0 <= a < 2**63 and 0 <= b < 2**63
    m = IdMap.from_keys(["bob", "alice", "alice"])
    assert len(m) == 2
    assert m.to_external(m.to_internal(["alice", "bob"])) == ["alice", "bob"]
    assert m.to_external(np.array([12345], np.int64)) == [None]


def test_string_dataset_round_trips_with_internal_ids(tmp_path) -> None:
    posts, inter = _tables()
    ds = save_dataset(tmp_path / "d", posts, inter)
    back = load_dataset(tmp_path / "d")
    assert back.posts["post_id"].dtype == pl.Int64 and back.interactions["user_id"].dtype == pl.Int64
    assert back.posts["post_id"].to_list() == [internal_id(k) for k in ("p-a", "p-b", "p-c")]
    assert back.posts["author_id"].to_list() == [internal_id("@x"), None, internal_id("@y")]
    assert back.interactions["post_id"].to_list() == back.posts["post_id"].to_list()
    assert set(back.id_maps) == {"user", "post", "author"}
    assert back.id_maps["user"].to_external(back.interactions["user_id"].to_numpy()) == ["alice", "alice", "bob"]
    assert ds.fingerprint() == back.fingerprint()
    # the files keep the caller's keys
    assert pl.read_parquet(tmp_path / "d" / "posts.parquet")["post_id"].to_list() == ["p-a", "p-b", "p-c"]
    # maps survive a save / load
    save_id_maps(tmp_path / "m", back.id_maps, write_parquet)
    again = load_id_maps(tmp_path / "m")
    assert again["post"].to_external(back.posts["post_id"].to_numpy()) == ["p-a", "p-b", "p-c"]


def test_bad_string_ids_get_precise_errors(tmp_path) -> None:
    posts, inter = _tables(post_ids=("p-a", "p-a", "p-c"))
    with pytest.raises(SchemaError, match=r"posts: 1 duplicate post_id value\(s\), e.g. \['p-a'\]"):
        save_dataset(tmp_path / "a", posts, inter)
    posts, inter = _tables(post_ids=("p-a", "", "p-c"))
    with pytest.raises(SchemaError, match="posts.post_id: expected a non-empty string id"):
        save_dataset(tmp_path / "b", posts, inter)
    posts, inter = _tables()
    with pytest.raises(SchemaError, match="interactions: post_id is integer but posts.post_id is string"):
        save_dataset(tmp_path / "c", posts, inter.with_columns(pl.Series("post_id", [1, 2, 3])))
    with pytest.raises(UnknownIdError, match="reference post_id"):
        save_dataset(tmp_path / "e", posts, inter.with_columns(pl.Series("post_id", ["p-a", "p-zzz", "p-c"])))
    with pytest.raises(SchemaError, match="column 'user_id' has 1 null"):
        save_dataset(tmp_path / "f", posts, inter.with_columns(pl.Series("user_id", ["a", None, "b"], dtype=pl.String)))
