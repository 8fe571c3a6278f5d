"""DiffMM importer and the restricted unpickler, on tiny files written here (and on the shared
TikTok data when it is there)."""

from __future__ import annotations

import collections
import os
import pickle
from pathlib import Path

import numpy as np
import polars as pl
import pytest
import scipy.sparse as sp

from recsys.cli import main
from recsys.data.diffmm import import_diffmm
from recsys.data.safe_pickle import safe_load
from recsys.dataset import load_dataset
from recsys.errors import ArtifactError, SchemaError, UnsafePickleError
from recsys.features import load_features

N_USERS, N_ITEMS = 4, 5
TRAIN = [(0, 0), (0, 1), (1, 1), (1, 2), (2, 3)]
VALID = [(0, 2), (1, 3)]
TEST = [(0, 3), (2, 4)]


def _coo(pairs: list[tuple[int, int]], extra_zero: bool = False) -> sp.coo_matrix:
    rows, cols = [r for r, _ in pairs], [c for _, c in pairs]
    data = [1.0] * len(pairs)
    if extra_zero:  # an explicitly stored zero: not an interaction
        rows, cols, data = rows + [3], cols + [0], data + [0.0]
    return sp.coo_matrix((np.array(data, np.float32), (rows, cols)), shape=(N_USERS, N_ITEMS))


def write_diffmm(root: Path, image_rows: int = N_ITEMS) -> Path:
    root.mkdir(parents=True)
    for fname, pairs in (("trnMat.pkl", TRAIN), ("valMat.pkl", VALID), ("tstMat.pkl", TEST)):
        with open(root / fname, "wb") as f:
            pickle.dump(_coo(pairs, extra_zero=fname == "trnMat.pkl"), f)
    rng = np.random.default_rng(0)
    np.save(root / "image_feat.npy", rng.random((image_rows, 3)).astype(np.float16))
    np.save(root / "audio_feat.npy", rng.random((N_ITEMS, 2)).astype(np.float32))
    return root


class _RunsShell:
    """Pickles into a call of os.system (what a malicious pickle does on plain pickle.load)."""

    def __init__(self, cmd: str) -> None:
        self.cmd = cmd

    def __reduce__(self):
        return (os.system, (self.cmd,))


def test_tiny_diffmm_imports_every_interaction_and_feature(tmp_path: Path) -> None:
    src = write_diffmm(tmp_path / "src")
    ds, report = import_diffmm(src, tmp_path / "out", name="tiny")

    assert report["users"] == 3  # user 3 has only an explicit zero
    assert report["user_rows"] == N_USERS
    assert report["posts"] == N_ITEMS
    assert report["interactions"] == {"train": 5, "valid": 2, "test": 2}
    assert report["modalities"] == {"audio": 2, "image": 3}
    assert report["skipped"] == {"zero_entries": 1}

    loaded = load_dataset(tmp_path / "out")
    assert loaded.name == "tiny"
    assert loaded.posts["post_id"].to_list() == list(range(N_ITEMS))
    got = loaded.interactions_with_split()
    for split, pairs in (("train", TRAIN), ("valid", VALID), ("test", TEST)):
        part = got.filter(pl.col("split") == split)
        assert sorted(zip(part["user_id"], part["post_id"])) == sorted(pairs)

    feats = load_features(tmp_path / "out")
    image = np.load(src / "image_feat.npy").astype(np.float32)
    data, present = feats["image"].aligned(np.array([4, 0, 99]))
    np.testing.assert_array_equal(data[:2], image[[4, 0]])
    assert present.tolist() == [True, True, False]
    assert data[2].tolist() == [0.0, 0.0, 0.0]


def test_feature_rows_disagreeing_with_the_matrices_fail_before_writing(tmp_path: Path) -> None:
    src = write_diffmm(tmp_path / "src", image_rows=N_ITEMS + 1)
    with pytest.raises(SchemaError, match=r"image_feat\.npy.*\(5, D\)"):
        import_diffmm(src, tmp_path / "out")
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("protocol", [2, 4, 5])
def test_matrices_pickled_by_this_numpy_load_with_every_protocol(tmp_path: Path, protocol: int) -> None:
    path = tmp_path / "m.pkl"
    path.write_bytes(pickle.dumps(_coo(TRAIN), protocol=protocol))
    got = safe_load(path)
    assert isinstance(got, sp.coo_matrix)
    np.testing.assert_array_equal(got.toarray(), _coo(TRAIN).toarray())


def test_pickle_calling_os_system_is_refused_and_nothing_runs(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.pkl"
    path.write_bytes(pickle.dumps(_RunsShell(f"touch {marker}")))
    assert b"system" in path.read_bytes()

    with pytest.raises(UnsafePickleError, match=r"refusing to unpickle global (posix|os|nt)\.system"):
        safe_load(path)
    assert not marker.exists()


def test_pickle_of_an_ordered_dict_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "od.pkl"
    path.write_bytes(pickle.dumps(collections.OrderedDict(a=1)))
    with pytest.raises(UnsafePickleError, match=r"collections\.OrderedDict"):
        safe_load(path)


def test_import_refuses_a_malicious_matrix_file(tmp_path: Path) -> None:
    src = write_diffmm(tmp_path / "src")
    marker = tmp_path / "pwned"
    (src / "valMat.pkl").write_bytes(pickle.dumps(_RunsShell(f"touch {marker}")))
    with pytest.raises(UnsafePickleError, match="valMat.pkl"):
        import_diffmm(src, tmp_path / "out")
    assert not marker.exists()
    assert not (tmp_path / "out").exists()


def test_non_matrix_and_truncated_pickles_are_artifact_errors(tmp_path: Path) -> None:
    src = write_diffmm(tmp_path / "src")
    with open(src / "tstMat.pkl", "wb") as f:
        pickle.dump(np.zeros(3), f)  # allowed globals, wrong object
    with pytest.raises(SchemaError, match="tstMat.pkl: expected a scipy sparse matrix, got ndarray"):
        import_diffmm(src, tmp_path / "out")

    good = pickle.dumps(_coo(TEST))
    (src / "tstMat.pkl").write_bytes(good[: len(good) // 2])
    with pytest.raises(ArtifactError, match="not a readable pickle"):
        import_diffmm(src, tmp_path / "out")


@pytest.mark.shared
def test_cli_import_of_shared_tiktok_reports_the_published_counts(
    tiktok_src: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "tiktok"
    assert main(["import", str(tiktok_src), "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "imported diffmm dataset" in text
    assert "users: 9,308  posts: 6,710" in text
    assert "interactions train / valid / test: 59,541 / 3,051 / 6,130" in text
    assert "modalities: 2: audio (128-d), image (128-d)" in text

    feats = load_features(out)
    assert {m: f.dim for m, f in feats.items()} == {"audio": 128, "image": 128}
    assert all(f.present.all() for f in feats.values())
