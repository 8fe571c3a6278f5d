"""MMRec importer on tiny `.inter` + `*_feat.npy` directories written here."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pytest

from recsys.cli import main
from recsys.data.mmrec import import_mmrec
from recsys.dataset import load_dataset
from recsys.errors import ArtifactError, SchemaError
from recsys.features import load_features
from recsys.interactions import build_interaction_data

N_ITEMS = 6
HEADER = "userID\titemID\trating\ttimestamp\tx_label"
ROWS = [
    # user, item, rating, timestamp, x_label
    (0, 0, "5.0", 1328140800, 0),
    (0, 1, "4.0", 1330387200, 0),
    (0, 1, "4.0", 1330387200, 0),  # duplicate row: kept, counted
    (0, 2, "", 1330387201, 1),  # empty rating -> weight 1.0
    (1, 3, "3.0", 1366675200, 0),
    (1, 4, "2.0", 1366675300, 2),
    (2, 5, "1.0", 1400000000, 2),  # user 2 has no train row (MMRec drops it; kept here)
]


def write_mmrec(root: Path, rows=ROWS, header: str = HEADER, feat_rows: dict[str, int] | None = None) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    lines = [header] + ["\t".join(str(v) for v in r) for r in rows]
    (root / f"{root.name}.inter").write_text("\n".join(lines) + "\n")
    rng = np.random.default_rng(1)
    for modality, (n, d) in {"image": (N_ITEMS, 4), "text": (N_ITEMS, 3), **(feat_rows or {})}.items():
        np.save(root / f"{modality}_feat.npy", rng.random((n, d)).astype(np.float32))
    return root


def test_tiny_mmrec_imports_splits_ratings_timestamps_and_features(tmp_path: Path) -> None:
    src = write_mmrec(tmp_path / "baby")
    ds, report = import_mmrec(src, tmp_path / "out")

    assert report["posts"] == N_ITEMS
    assert report["users"] == 3
    assert report["interactions"] == {"train": 4, "valid": 1, "test": 2}
    assert report["modalities"] == {"image": 4, "text": 3}
    assert report["skipped"] == {"null_ids": 0}
    assert report["duplicates_kept"] == 1
    assert report["null_ratings_as_1"] == 1
    assert report["cold_users"] == {"valid": 0, "test": 1}
    assert report["ignored"] == {"inter_fields": []}

    loaded = load_dataset(tmp_path / "out")
    assert loaded.name == "baby"
    assert loaded.meta["protocol"]["mask_valid_on_test"] is False  # MMRec masks train only
    inter = loaded.interactions_with_split()
    assert inter["split"].to_list() == ["train", "train", "train", "valid", "train", "test", "test"]
    assert inter["weight"].to_list() == [5.0, 4.0, 4.0, 1.0, 3.0, 2.0, 1.0]
    assert inter["ts"][0] == datetime(2012, 2, 2, tzinfo=timezone.utc)  # 1328140800
    assert inter["ts"][3] == datetime.fromtimestamp(1330387201, tz=timezone.utc)

    feats = load_features(tmp_path / "out")
    text = np.load(src / "text_feat.npy")
    data, present = feats["text"].aligned(np.arange(N_ITEMS))
    np.testing.assert_array_equal(data, text)
    assert present.all()

    data = build_interaction_data(loaded)
    assert data.train.shape == (3, N_ITEMS)
    assert data.train.nnz == 3  # 4 train rows; the duplicate (0, 1) collapses


def test_cli_detects_mmrec_and_prints_the_counts(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    src = write_mmrec(tmp_path / "sports")
    assert main(["import", str(src), "--out", str(tmp_path / "out")]) == 0
    out = capsys.readouterr().out
    assert "imported mmrec dataset" in out
    assert "users: 3  posts: 6" in out
    assert "train / valid / test: 4 / 1 / 2" in out
    assert "modalities: 2: image (4-d), text (3-d)" in out


def test_without_feature_files_items_are_max_item_id_plus_one(tmp_path: Path) -> None:
    src = tmp_path / "nofeat"
    src.mkdir()
    (src / "nofeat.inter").write_text("userID\titemID\tx_label\tclicks\n0\t3\t0\t1\n1\t9\t2\t5\n")
    _, report = import_mmrec(src, tmp_path / "out")
    assert report["ignored"] == {"inter_fields": ["clicks"]}
    assert report["posts"] == 10
    assert report["modalities"] == {}
    assert report["interactions"] == {"train": 1, "valid": 0, "test": 1}
    assert load_dataset(tmp_path / "out").interactions["ts"].null_count() == 2


def test_typed_headers_and_custom_column_names(tmp_path: Path) -> None:
    src = tmp_path / "typed"
    src.mkdir()
    (src / "typed.inter").write_text("uid:token\tiid:token\tsplit:token\n0\t0\t0\n0\t1\t1\n")
    np.save(src / "image_feat.npy", np.ones((2, 2), np.float32))
    with pytest.raises(SchemaError, match=r"missing column\(s\) \['userID', 'itemID', 'x_label'\]"):
        import_mmrec(src, tmp_path / "out")
    _, report = import_mmrec(src, tmp_path / "out", user_field="uid", item_field="iid", split_field="split")
    assert report["interactions"] == {"train": 1, "valid": 1, "test": 0}


def test_rows_with_empty_ids_are_skipped_and_counted(tmp_path: Path) -> None:
    rows = ROWS + [("", 1, "1.0", 1, 0), (1, "", "1.0", 1, 0)]
    src = write_mmrec(tmp_path / "holes", rows=rows)
    _, report = import_mmrec(src, tmp_path / "out")
    assert report["skipped"] == {"null_ids": 2}
    assert sum(report["interactions"].values()) == len(ROWS)


def test_missing_split_label_column_is_a_schema_error(tmp_path: Path) -> None:
    src = tmp_path / "nolabel"
    src.mkdir()
    (src / "nolabel.inter").write_text("userID\titemID\trating\n0\t0\t1\n")
    with pytest.raises(SchemaError, match=r"missing column\(s\) \['x_label'\]"):
        import_mmrec(src, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_unknown_split_labels_are_refused_with_their_counts(tmp_path: Path) -> None:
    src = write_mmrec(tmp_path / "badlabel", rows=ROWS + [(1, 1, "1", 1, 3), (1, 2, "1", 1, 3), (2, 0, "1", 1, -1)])
    with pytest.raises(SchemaError, match=r"'x_label' must be 0 \(train\), 1 \(valid\) or 2 \(test\).*\{-1: 1, 3: 2\}"):
        import_mmrec(src, tmp_path / "out")


def test_non_integer_ids_are_refused(tmp_path: Path) -> None:
    src = write_mmrec(tmp_path / "strid", rows=ROWS + [("u7", 1, "1", 1, 0)])
    with pytest.raises(SchemaError, match=r"'userID' \(user id\) must hold integers, got \['u7'\]"):
        import_mmrec(src, tmp_path / "out")


def test_feature_files_disagreeing_on_rows_are_refused(tmp_path: Path) -> None:
    src = write_mmrec(tmp_path / "ragged", feat_rows={"text": (N_ITEMS + 2, 3)})
    with pytest.raises(SchemaError, match=r"disagree on the number of items.*'text_feat.npy': 8"):
        import_mmrec(src, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_item_outside_the_feature_rows_is_refused(tmp_path: Path) -> None:
    src = write_mmrec(tmp_path / "outside", rows=ROWS + [(1, N_ITEMS, "1", 1, 0)])
    with pytest.raises(SchemaError, match=r"itemID must be in 0\.\.5 .*got \[6\] in 1 row"):
        import_mmrec(src, tmp_path / "out")


def test_object_feature_arrays_are_refused(tmp_path: Path) -> None:
    src = write_mmrec(tmp_path / "objfeat")
    np.save(src / "image_feat.npy", np.array([[object()]] * N_ITEMS, dtype=object), allow_pickle=True)
    with pytest.raises(ArtifactError, match="image_feat.npy: not a plain numeric .npy file"):
        import_mmrec(src, tmp_path / "out")


def test_missing_directory_and_missing_inter_file(tmp_path: Path) -> None:
    with pytest.raises(ArtifactError, match="expected an MMRec directory"):
        import_mmrec(tmp_path / "nope", tmp_path / "out")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ArtifactError, match=r"no <name>\.inter file"):
        import_mmrec(tmp_path / "empty", tmp_path / "out")


def test_a_dataset_written_in_mmrec_layout_imports_back(tiny_encoded, tmp_path):
    """bench/mmrec_layout.py (the whole job tried on MMRec-format data) writes what this importer
    reads: per user a chronological 8:1:1 split, features row for row."""
    import subprocess
    import sys

    import polars as pl

    root = Path(__file__).resolve().parents[3]
    src = tmp_path / "synthmm"
    r = subprocess.run([sys.executable, str(root / "bench" / "mmrec_layout.py"), "--data", str(tiny_encoded), "--out", str(src)],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    ds, _ = import_mmrec(src, tmp_path / "data")
    orig = load_dataset(tiny_encoded)
    n = orig.interactions.group_by("user_id").len()
    kept = int(n.filter(pl.col("len") >= 5)["len"].sum())
    assert len(ds.interactions) == kept > 0
    s = ds.interactions_with_split()
    per_user = s.group_by("user_id", "split").agg(pl.col("ts").min().alias("first"), pl.col("ts").max().alias("last"))
    wide = {(u, sp): (a, b) for u, sp, a, b in per_user.iter_rows()}
    for u in s["user_id"].unique().to_list():  # train before valid before test, per user
        tr, va, te = wide.get((u, "train")), wide.get((u, "valid")), wide.get((u, "test"))
        assert tr is not None and va is not None and te is not None
        assert tr[1] <= va[0] and va[1] <= te[0]
    post_ids = orig.posts["post_id"].sort().to_numpy()  # itemID i = the i-th smallest post id
    new, old = load_features(ds.root), load_features(orig.root)
    assert sorted(new) == sorted(old)
    for m in old:
        want, present = old[m].aligned(post_ids)
        got, _ = new[m].aligned(np.arange(len(post_ids)))
        assert np.array_equal(got[present], want[present])
