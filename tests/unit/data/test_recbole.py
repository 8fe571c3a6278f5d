"""RecBole atomic-files importer on tiny `.inter` / `.item` files written here."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from recsys.cli import main
from recsys.data.recbole import import_recbole
from recsys.dataset import load_dataset
from recsys.errors import SchemaError
from recsys.features import load_features
from recsys.schema import SPLITS_FILE

INTER = """user_id:token\titem_id:token\trating:float\ttimestamp:float\treview:token_seq
1\t1193\t5\t978300760\tgreat film
1\t661\t3\t978302109.5\tok
2\t1193\t\t978300761\t
2\t2000\t4\t978300762\tnot in .item
"""
ITEM = """item_id:token\tmovie_title:token_seq\trelease_year:token\tgenre:token_seq\tvec:float_seq
1193\tOne Flew Over the Cuckoo's Nest\t1975\tDrama\t0.5 1.5
661\tJames and the Giant Peach\t1996\tAnimation Children's\t
914\tMy Fair Lady\t1964\tMusical Romance\t2 -1
"""


def write_atomic(root: Path, inter: str = INTER, item: str | None = ITEM) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / f"{root.name}.inter").write_text(inter)
    if item is not None:
        (root / f"{root.name}.item").write_text(item)
    return root


def test_integer_tokens_keep_their_values_and_items_get_text_and_vectors(tmp_path: Path) -> None:
    src = write_atomic(tmp_path / "ml")
    (src / "ml.user").write_text("user_id:token\tage:token\n1\t25\n")
    ds, report = import_recbole(src, tmp_path / "out")

    assert report["users"] == 2
    assert report["posts"] == 4  # 3 in .item + 2000 only in .inter
    assert report["interactions"] == {"unsplit": 4}
    assert report["items_without_metadata"] == 1
    assert report["id_schemes"] == {"users": "integer", "posts": "integer"}
    assert report["text_fields"] == ["movie_title"]
    assert report["modalities"] == {"vec": 2}
    assert report["ignored"] == {"inter_fields": ["review"], "empty_item_fields": [], "files": ["ml.user"]}

    loaded = load_dataset(tmp_path / "out")
    assert not (tmp_path / "out" / SPLITS_FILE).exists() and loaded.splits is None
    posts = loaded.posts
    assert posts["post_id"].to_list() == [661, 914, 1193, 2000]
    assert posts["text"].to_list() == ["James and the Giant Peach", "My Fair Lady", "One Flew Over the Cuckoo's Nest", None]
    inter = loaded.interactions
    assert inter["user_id"].to_list() == [1, 1, 2, 2]
    assert inter["post_id"].to_list() == [1193, 661, 1193, 2000]
    assert inter["weight"].to_list() == [5.0, 3.0, 1.0, 4.0]  # empty rating -> 1.0
    assert inter["ts"][1] == datetime(2000, 12, 31, 22, 35, 9, 500000, tzinfo=timezone.utc)  # 978302109.5

    vec = load_features(tmp_path / "out")["vec"]
    data, present = vec.aligned(np.array([1193, 661, 914, 2000]))
    assert present.tolist() == [True, False, True, False]
    np.testing.assert_array_equal(data, [[0.5, 1.5], [0, 0], [2, -1], [0, 0]])

    attrs = pl.read_parquet(tmp_path / "out" / "item_attributes.parquet")
    assert attrs.columns == ["post_id", "movie_title", "release_year", "genre", "vec"]
    assert attrs.filter(pl.col("post_id") == 914)["genre"].item() == "Musical Romance"


def test_string_tokens_map_to_sorted_ranks_and_the_maps_are_written(tmp_path: Path) -> None:
    inter = "user_id:token\titem_id:token\nbob\tB00X\nalice\tA01\nbob\t007\n"
    src = write_atomic(tmp_path / "amz", inter=inter, item=None)
    _, report = import_recbole(src, tmp_path / "out")
    assert report["id_schemes"] == {"users": "sorted", "posts": "sorted"}  # "007" is not a plain integer

    users = pl.read_parquet(tmp_path / "out" / "id_map_users.parquet")
    posts = pl.read_parquet(tmp_path / "out" / "id_map_posts.parquet")
    assert dict(users.iter_rows()) == {"alice": 0, "bob": 1}
    assert dict(posts.iter_rows()) == {"007": 0, "A01": 1, "B00X": 2}
    inter_df = load_dataset(tmp_path / "out").interactions
    assert list(zip(inter_df["user_id"], inter_df["post_id"])) == [(1, 2), (0, 1), (1, 0)]
    assert inter_df["ts"].null_count() == 3 and inter_df["weight"].to_list() == [1.0, 1.0, 1.0]

    # Deterministic: a second import gives the same maps.
    import_recbole(src, tmp_path / "again")
    assert pl.read_parquet(tmp_path / "again" / "id_map_posts.parquet").equals(posts)


def test_cli_detects_recbole_without_an_item_file_and_says_to_split(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    src = write_atomic(tmp_path / "ml", item=None)
    assert main(["import", str(src), "--out", str(tmp_path / "out")]) == 0
    out = capsys.readouterr().out
    assert "imported recbole dataset" in out
    assert "users: 2  posts: 3" in out
    assert "interactions: 4 (no split: run `recsys split" in out


def test_title_and_description_join_into_text_and_bad_vectors_are_absent(tmp_path: Path) -> None:
    item = (
        "item_id:token\tdescription:token_seq\ttitle:token_seq\tcreated_at:float\temb:float_seq\n"
        "1\tA long read.\tFirst post\t1700000000\t1 2 3\n"
        "2\t\tSecond post\t\tnan 0 0\n"
        "3\t\t\t\t\n"
    )
    src = write_atomic(tmp_path / "news", inter="user_id:token\titem_id:token\nu\t1\nu\t1\nv\t3\n", item=item)
    _, report = import_recbole(src, tmp_path / "out")
    assert report["text_fields"] == ["title", "description"]
    assert report["duplicates_kept"] == 1
    assert report["id_schemes"] == {"users": "sorted", "posts": "integer"}

    posts = load_dataset(tmp_path / "out").posts
    assert posts["text"].to_list() == ["First post\nA long read.", "Second post", None]
    assert posts["created_at"].to_list()[0] == datetime.fromtimestamp(1700000000, tz=timezone.utc)
    assert posts["created_at"].null_count() == 2

    emb = load_features(tmp_path / "out")["emb"]
    assert emb.present.tolist() == [True, False, False]
    assert emb.content_hash.tolist() == ["import:recbole", "!non-finite", ""]
    assert not emb.data[1:].any()


def test_cli_json_report_with_an_explicit_format(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    src = write_atomic(tmp_path / "ml")
    assert main(["import", str(src), "--out", str(tmp_path / "out"), "--format", "recbole", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["format"] == "recbole" and report["interactions"] == {"unsplit": 4}


def test_rows_with_empty_tokens_are_skipped_and_counted(tmp_path: Path) -> None:
    src = write_atomic(tmp_path / "ml", inter="user_id:token\titem_id:token\n1\t2\n\t3\n4\t\n", item=None)
    _, report = import_recbole(src, tmp_path / "out")
    assert report["skipped"] == {"null_ids": 2}
    assert report["interactions"] == {"unsplit": 1}


@pytest.mark.parametrize(
    ("inter", "match"),
    [
        ("user:token\titem_id:token\n1\t2\n", r"missing user id field 'user_id'; header has \['user:token', 'item_id:token'\]"),
        ("user_id:token\titem_id\n1\t2\n", r"header entry 'item_id' must be field:type"),
        ("user_id:token\titem_id:int\n1\t2\n", r"header entry 'item_id:int' must be field:type"),
        ("user_id:float\titem_id:token\n1\t2\n", r"user id field 'user_id' must be of type token, got float"),
        ("user_id:token\titem_id:token\trating:float\n1\t2\tfive\n", r"'rating' \(float\) must hold numbers, got \['five'\]"),
        ("user_id:token\titem_id:token\ttimestamp:token\n1\t2\t3\n", r"'timestamp' must be of type float, got token"),
        ("user_id:token\titem_id:token\ttimestamp:float\n1\t2\tinf\n", r"'timestamp' has non-finite values"),
    ],
)
def test_bad_inter_files_are_schema_errors(tmp_path: Path, inter: str, match: str) -> None:
    src = write_atomic(tmp_path / "bad", inter=inter, item=None)
    with pytest.raises(SchemaError, match=match):
        import_recbole(src, tmp_path / "out")
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    ("item", "match"),
    [
        ("id:token\ttitle:token_seq\n1\tx\n", r"bad\.item: missing item id field 'item_id'"),
        ("item_id:token\ttitle:token_seq\n1\tx\n1\ty\n", r"duplicate 'item_id' token\(s\), e.g. \['1'\]"),
        ("item_id:token\tvec:float_seq\n1\t1 2\n2\t1 2 3\n", r"float_seq field 'vec' must have one length on every row, got lengths \[2, 3\]"),
        ("item_id:token\tvec:float_seq\n1\t1 a\n", r"float_seq field 'vec' holds non-numbers"),
    ],
)
def test_bad_item_files_are_schema_errors(tmp_path: Path, item: str, match: str) -> None:
    src = write_atomic(tmp_path / "bad", inter="user_id:token\titem_id:token\n1\t1\n", item=item)
    with pytest.raises(SchemaError, match=match):
        import_recbole(src, tmp_path / "out")
