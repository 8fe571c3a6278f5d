from __future__ import annotations

from datetime import datetime, timedelta, timezone

import numpy as np
import polars as pl
import pytest

from recsys.cli import main
from recsys.dataset import load_dataset, save_dataset
from recsys.errors import ArtifactError, ConfigError, SchemaError
from recsys.split import split_dataset, temporal_split

T0 = datetime(2025, 1, 1, tzinfo=timezone.utc)


def interactions(ts: list[int | None]) -> pl.DataFrame:
    n = len(ts)
    return pl.DataFrame(
        {
            "user_id": np.arange(n) % 7,
            "post_id": np.arange(n) % 5,
            "ts": [None if t is None else T0 + timedelta(hours=t) for t in ts],
            "event": ["view"] * n,
            "weight": np.ones(n, np.float32),
        },
        schema_overrides={"ts": pl.Datetime("us", "UTC")},
    )


def write(root, inter: pl.DataFrame):
    posts = pl.DataFrame({"post_id": np.arange(5, dtype=np.int64)})
    posts = posts.with_columns(
        pl.lit(None, pl.Int64).alias("author_id"), pl.lit(None, pl.Datetime("us", "UTC")).alias("created_at"),
        *[pl.lit(None, pl.String).alias(c) for c in ("text", "image_path", "video_path")],
    )
    return save_dataset(root, posts, inter, meta={"name": "t"})


def test_latest_interactions_go_to_test_and_no_future_in_train():
    rng = np.random.default_rng(0)
    ts = rng.permutation(100).tolist()  # row order != time order
    splits, report = temporal_split(interactions(ts), 0.1, 0.2)
    s = splits["split"].to_numpy()
    t = np.array(ts)
    assert report["interactions"] == {"train": 70, "valid": 10, "test": 20}
    assert t[s == "train"].max() < t[s == "valid"].min() <= t[s == "valid"].max() < t[s == "test"].min()
    assert splits["row"].to_list() == list(range(100))


def test_tied_timestamps_stay_on_one_side():
    ts = [0] * 15 + [1] * 3 + [2] * 2  # the valid cut (row 16 of 20 in time order) falls inside the tie at 1
    splits, report = temporal_split(interactions(ts), 0.1, 0.1)
    s, t = splits["split"].to_numpy(), np.array(ts)
    assert set(s[t == 1]) == {"valid"} and set(s[t == 2]) == {"test"} and set(s[t == 0]) == {"train"}
    assert report["interactions"] == {"train": 15, "valid": 3, "test": 2}


def test_rejects_null_ts_and_bad_fractions():
    with pytest.raises(SchemaError, match="1 of 3 row\\(s\\) have a null ts"):
        temporal_split(interactions([0, None, 2]))
    with pytest.raises(ConfigError, match="sum below 1"):
        temporal_split(interactions([0, 1, 2]), 0.5, 0.5)
    with pytest.raises(ConfigError, match="empty"):
        temporal_split(interactions([3] * 10))


def test_split_dataset_writes_splits_and_refuses_overwrite(tmp_path):
    root = tmp_path / "ds"
    write(root, interactions(list(range(50))))
    report = split_dataset(root)
    ds = load_dataset(root)
    assert ds.splits is not None and ds.splits["split"].value_counts().sort("split")["count"].to_list() == [5, 40, 5]  # test, train, valid
    assert ds.meta["split"]["method"] == "global_temporal" and report["interactions"]["test"] == 5
    pop = ds.meta["popularity"]  # what "popular" means here, chosen on the valid split just written
    assert pop["grid"][0][0] is None and report["popularity_half_life_s"] == pop["half_life_s"]
    with pytest.raises(ArtifactError, match="--force"):
        split_dataset(root)
    split_dataset(root, 0.2, 0.2, force=True)
    assert (load_dataset(root).splits["split"] == "test").sum() == 10


def test_cli(tmp_path, capsys):
    root = tmp_path / "ds"
    write(root, interactions(list(range(50))))
    assert main(["split", "--data", str(root), "--test-frac", "0.2"]) == 0
    out = capsys.readouterr().out
    assert "test :" in out.replace("test:", "test :") and "popularity (chosen on valid" in out
    assert main(["info", "--data", str(root)]) == 0 and "popularity: " in capsys.readouterr().out
    write(tmp_path / "nots", interactions([None] * 4))
    assert main(["split", "--data", str(tmp_path / "nots")]) == 2
    assert "null ts" in capsys.readouterr().err
