"""Feature store: round trip, alignment, validation, corrupt files, atomic writes."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from recsys.errors import ArtifactError, SchemaError
from recsys.features import (
    ModalityFeatures,
    features_dir,
    list_modalities,
    load_features,
    load_modality,
    save_modality,
)
from recsys.io import atomic_path, write_npz


def store(name: str = "image", ids=(30, 10, 20), dim: int = 4, **kw) -> ModalityFeatures:
    n = len(ids)
    rng = np.random.default_rng(0)
    args = dict(
        name=name,
        post_ids=np.array(ids, np.int64),
        data=rng.random((n, dim)).astype(np.float32),
        present=np.array([True] * (n - 1) + [False]),
        content_hash=np.array([f"h{i}" for i in range(n - 1)] + [""]),
        meta={"encoder": "test"},
    )
    args.update(kw)
    return ModalityFeatures(**args)


def test_save_then_load_round_trips_every_field(tmp_path: Path) -> None:
    a, b = store("image"), store("text", ids=(1, 2), dim=2)
    path = save_modality(tmp_path, a)
    save_modality(tmp_path, b)
    assert path == features_dir(tmp_path) / "image.npz"
    assert list_modalities(tmp_path) == ["image", "text"]

    got = load_features(tmp_path)
    assert list(got) == ["image", "text"]
    g = got["image"]
    np.testing.assert_array_equal(g.post_ids, a.post_ids)
    np.testing.assert_array_equal(g.data, a.data)
    np.testing.assert_array_equal(g.present, a.present)
    np.testing.assert_array_equal(g.content_hash, a.content_hash)
    assert g.data.dtype == np.float32 and g.post_ids.dtype == np.int64
    assert g.meta == {"encoder": "test", "dim": 4, "modality": "image"}


def test_aligned_follows_the_requested_order_and_marks_unknown_ids_absent() -> None:
    s = store(ids=(30, 10, 20))  # row for 20 is stored absent
    data, present = s.aligned(np.array([10, 99, 30, 20, -5, 10]))
    assert present.tolist() == [True, False, True, False, False, True]
    np.testing.assert_array_equal(data[0], s.data[1])
    np.testing.assert_array_equal(data[2], s.data[0])
    np.testing.assert_array_equal(data[5], s.data[1])
    assert not data[[1, 4]].any()
    assert data.shape == (6, 4) and data.dtype == np.float32


def test_aligned_on_an_empty_store_is_all_absent() -> None:
    empty = ModalityFeatures("image", np.zeros(0, np.int64), np.zeros((0, 3)), np.zeros(0, bool), np.zeros(0, str))
    data, present = empty.aligned(np.array([1, 2]))
    assert data.shape == (2, 3) and not present.any()


def test_rows_whose_dimension_disagrees_with_the_meta_are_refused(tmp_path: Path) -> None:
    with pytest.raises(SchemaError, match=r"features\[image\]: rows have dimension 4 but the store says dim=8"):
        store(meta={"dim": 8})

    # Same mismatch read back from a file: a broken artifact (callers such as the encoder treat
    # ArtifactError as "rebuild the store"), with the reason in the message.
    s = store()
    write_npz(
        features_dir(tmp_path) / "image.npz",
        post_id=s.post_ids, data=s.data, present=s.present, content_hash=s.content_hash,
        meta_json=np.array(json.dumps({"dim": 8})),
    )
    with pytest.raises(ArtifactError, match=r"image\.npz is not a valid feature store file: SchemaError: .*rows have dimension 4 but the store says dim=8"):
        load_modality(tmp_path, "image")


@pytest.mark.parametrize(
    ("overrides", "match"),
    [
        ({"ids": (1, 2, 1)}, r"features\[image\]: duplicate post ids"),
        ({"data": np.zeros((2, 4))}, r"data must be \(N=3, D\), got \(2, 4\)"),
        ({"data": np.zeros(3)}, r"data must be \(N=3, D\), got \(3,\)"),
        ({"present": np.ones(2, bool)}, r"present/content_hash must be \(3,\), got \(2,\)/\(3,\)"),
    ],
)
def test_inconsistent_stores_are_refused(overrides: dict, match: str) -> None:
    with pytest.raises(SchemaError, match=match):
        store(**overrides)


def test_missing_and_corrupt_files_are_artifact_errors(tmp_path: Path) -> None:
    with pytest.raises(ArtifactError, match=r"no feature store for modality 'audio'.*have \[\]"):
        load_modality(tmp_path, "audio")

    path = save_modality(tmp_path, store())
    good = path.read_bytes()
    path.write_bytes(b"this is not an npz file at all")
    with pytest.raises(ArtifactError, match=r"image\.npz is not a valid feature store file"):
        load_modality(tmp_path, "image")

    path.write_bytes(good[: len(good) // 2])  # truncated zip
    with pytest.raises(ArtifactError, match=r"image\.npz is not a valid feature store file"):
        load_modality(tmp_path, "image")

    s = store()
    write_npz(path, post_id=s.post_ids, data=s.data)  # keys missing
    with pytest.raises(ArtifactError, match=r"image\.npz is not a valid feature store file"):
        load_modality(tmp_path, "image")


class _FailsToPickle:
    def __reduce__(self):
        raise RuntimeError("writer died mid-way")


def test_atomic_write_leaves_no_temp_and_no_partial_file_when_the_writer_raises(tmp_path: Path) -> None:
    d = features_dir(tmp_path)
    target = d / "image.npz"
    big = np.zeros((256, 256), np.float32)
    # np.savez writes `big` first, then fails while pickling the object array.
    with pytest.raises(RuntimeError, match="writer died mid-way"):
        write_npz(target, a=big, b=np.array([_FailsToPickle()], dtype=object))
    assert not target.exists()
    assert list(d.iterdir()) == []

    # An existing file stays as it was.
    save_modality(tmp_path, store())
    before = target.read_bytes()
    with pytest.raises(RuntimeError):
        write_npz(target, a=big, b=np.array([_FailsToPickle()], dtype=object))
    assert target.read_bytes() == before
    assert [p.name for p in d.iterdir()] == ["image.npz"]


def test_atomic_path_writes_through_a_temp_sibling(tmp_path: Path) -> None:
    target = tmp_path / "sub" / "x.bin"
    with atomic_path(target) as tmp:
        assert tmp.parent == target.parent and tmp != target
        tmp.write_bytes(b"partial")
        assert not target.exists()  # nothing visible before the block ends
    assert target.read_bytes() == b"partial"
    assert [p.name for p in target.parent.iterdir()] == ["x.bin"]
