"""Bundle publish / load / prune / rollback, crash safety and the recall gate (real FAISS)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from index import bundle as B
from index.build import RecallGateError, build_bundle
from recsys.cli import main as recsys_main
from recsys.errors import ArtifactError, UnknownIdError
from tests.unit.index.helpers import catalogue, clustered


@pytest.fixture(scope="module")
def cat():
    return catalogue(n=1500, d=16)


def _build(cat, root, **kw):
    kw.setdefault("factory", "Flat")
    return build_bundle(cat, clustered(100, 16, seed=9), root, k=20, **kw)


def test_publish_writes_every_file_and_points_current(cat, tmp_path):
    path, gate = _build(cat, tmp_path)
    assert path == tmp_path / "bundles" / "v0001" and B.current_version(tmp_path) == "v0001"
    for name in B.REQUIRED:
        assert (path / name).exists(), name
    m = json.loads((path / B.MANIFEST).read_text())
    assert m["n_posts"] == 1500 and m["dim"] == 16 and m["latent_dim"] == 8 and m["metric"] == "inner_product"
    assert m["recall"]["measured"] == 1.0 and m["factory"] == "Flat" and m["version"] == "v0001"
    b = B.load_bundle(tmp_path)
    assert (np.diff(b.created_at_us) >= 0).all(), "rows must be ordered by created_at"
    assert sorted(b.post_ids.tolist()) == sorted(cat.post_ids.tolist())
    # rows stay aligned: the vector of each post id is the one given for it
    src = {int(p): i for i, p in enumerate(cat.post_ids)}
    for r in (0, 700, 1499):
        np.testing.assert_array_equal(b.vectors[r], cat.vectors[src[int(b.post_ids[r])]])
        assert b.author_ids[r] == cat.author_ids[src[int(b.post_ids[r])]]
    assert not list(tmp_path.glob(".tmp-*"))


def test_crash_mid_build_leaves_previous_bundle_live(cat, tmp_path):
    _build(cat, tmp_path)
    written = []

    def crash(name):
        written.append(name)
        if name == B.POSTS_FILE:
            raise RuntimeError("disk on fire")

    with pytest.raises(RuntimeError, match="disk on fire"):
        _build(cat, tmp_path, on_file_written=crash)
    assert B.INDEX_FILE in written and B.MANIFEST not in written  # it really died half way
    assert B.current_version(tmp_path) == "v0001" and B.list_versions(tmp_path) == ["v0001"]
    assert not list(tmp_path.glob(".tmp-*")) and B.load_bundle(tmp_path).version == "v0001"
    # a temp dir left by a killed process is not a version
    (tmp_path / ".tmp-v0002-dead").mkdir()
    assert B.list_versions(tmp_path) == ["v0001"]
    assert _build(cat, tmp_path)[0].name == "v0002"


def test_recall_gate_refuses_to_publish(cat, tmp_path):
    _build(cat, tmp_path)
    with pytest.raises(RecallGateError, match=r"recall gate failed: IVF32,Flat .* nprobe=1 .* target is 0.999"):
        _build(cat, tmp_path, factory="IVF32,Flat", target_recall=0.999, max_search_value=1)
    assert B.list_versions(tmp_path) == ["v0001"] and B.current_version(tmp_path) == "v0001"


def test_prune_keeps_newest_and_rollback(cat, tmp_path):
    for _ in range(4):
        _build(cat, tmp_path, keep=3)
    assert B.list_versions(tmp_path) == ["v0002", "v0003", "v0004"]
    assert B.rollback(tmp_path) == "v0003" and B.current_version(tmp_path) == "v0003"
    assert B.rollback(tmp_path) == "v0002"
    with pytest.raises(ArtifactError, match="nothing to roll back"):
        B.rollback(tmp_path)
    assert B.rollback(tmp_path, "v0004") == "v0004"
    with pytest.raises(UnknownIdError, match="v0001"):
        B.rollback(tmp_path, "v0001")
    # pruning never removes CURRENT even when it is the oldest
    B.rollback(tmp_path, "v0002")
    assert B.prune(tmp_path, keep=1) == ["v0003"]
    assert B.list_versions(tmp_path) == ["v0002", "v0004"]


def test_load_rejects_inconsistent_bundle(cat, tmp_path):
    path, _ = _build(cat, tmp_path)
    np.save(path / B.IDS_FILE, np.arange(10, dtype=np.int64))
    with pytest.raises(ArtifactError, match="index has 1500 vectors but ids.npy has 10"):
        B.load_bundle(tmp_path)
    with pytest.raises(ArtifactError, match="no published bundle"):
        B.load_bundle(tmp_path / "elsewhere")


def test_index_admin_cli_list_and_rollback(cat, tmp_path, capsys):
    _build(cat, tmp_path)
    _build(cat, tmp_path)
    assert recsys_main(["index", "list", "--root", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "* v0002" in out and "  v0001" in out
    assert recsys_main(["index", "rollback", "--root", str(tmp_path)]) == 0
    assert B.current_version(tmp_path) == "v0001"
    assert recsys_main(["index", "rollback", "--root", str(tmp_path), "--to", "v0009"]) == 2
