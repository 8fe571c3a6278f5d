"""kill -9 during build, publish and prune (a real subprocess, tests/unit/index/publish_child.py):
afterwards every bundle `recsys index list` shows loads and serves, CURRENT is one of them and a
fresh server starts on it, and the next build leaves no leftovers.

The default suite kills at three moments (mid-write, at the CURRENT swap, mid-deletion after the
unpublish); `-m slow` kills at every other step of each phase plus at staggered wall-clock times.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from index import bundle as B
from recsys.cli import main as recsys_main
from tests.unit.index.publish_child import publish_from, write_material

ROOT = Path(__file__).resolve().parents[3]
CHILD = [sys.executable, "-m", "tests.unit.index.publish_child"]


@pytest.fixture(scope="module")
def material(tmp_path_factory) -> Path:
    """Catalogues 0-1 seed the root, 2-4 are what the child publishes, 5 is the next build."""
    return write_material(tmp_path_factory.mktemp("crash-material"), 6)


@pytest.fixture(scope="module")
def seeded(material, tmp_path_factory) -> Path:
    """An INDEX_ROOT with two published versions (so the next publish prunes one)."""
    root = tmp_path_factory.mktemp("crash") / "seed"
    for i in (0, 1):
        publish_from(material, i, root)
    assert B.list_versions(root) == ["v0001", "v0002"]
    return root


def _child(root: Path, material: Path, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([*CHILD, str(root), str(material), *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=timeout, env={**os.environ, "PYTHONPATH": str(ROOT)})


def listed(root: Path, capsys) -> list[str]:
    """Versions as `recsys index list` prints them."""
    capsys.readouterr()
    assert recsys_main(["index", "list", "--root", str(root)]) == 0
    return re.findall(r"^[ *] (v\d{4,}) ", capsys.readouterr().out, flags=re.M)


def check_after_crash(root: Path, capsys) -> list[str]:
    """Every listed bundle loads and serves; CURRENT is listed and a fresh app starts on it."""
    from fastapi.testclient import TestClient

    from serving.app import create_app
    from serving.schemas import RecommendRequest
    from serving.settings import Settings
    from serving.state import ServingState

    versions = listed(root, capsys)
    assert versions, f"nothing listed under {root}: {sorted(p.name for p in root.rglob('*'))[:20]}"
    settings = Settings(index_root=root, api_key="k", open_reads=True)
    for v in versions:
        st = ServingState.load(settings, v)
        (r,) = st.recommend([RecommendRequest(user_id=1, k=5)])
        assert len(r["items"]) == 5, (v, r)
    cur = B.current_version(root)
    assert cur in versions, f"CURRENT {cur} is not a listed version {versions}"
    with TestClient(create_app(settings)) as c:
        r = c.post("/v1/recommendations", json={"user_id": 2, "k": 3})
        assert r.status_code == 200 and r.json()["bundle_version"] == cur, r.text
    return versions


def check_next_build_cleans(root: Path, material: Path) -> None:
    publish_from(material, 5, root)
    # the online log beside the bundles (serving.journal) is state, not a leftover
    assert sorted(p.name for p in root.iterdir() if not p.name.startswith("online_log.sqlite3")) == [B.LOCK_FILE, B.CURRENT, B.BUNDLES]
    entries = sorted(p.name for p in B.bundles_dir(root).iterdir())
    assert entries == B.list_versions(root) and len(entries) == 2, entries


def _kill_and_check(seeded: Path, material: Path, tmp_path: Path, capsys, phase: str, n: int) -> bool:
    """Kill the child at step n of `phase`; False when that phase had fewer steps (it finished)."""
    root = tmp_path / f"{phase}-{n}"
    shutil.copytree(seeded, root)
    p = _child(root, material, "--kill-at", f"{phase}:{n}")
    if p.returncode == 0:
        return False
    assert p.returncode == -signal.SIGKILL, (p.returncode, p.stderr[-2000:])
    check_after_crash(root, capsys)
    check_next_build_cleans(root, material)
    return True


@pytest.mark.parametrize("phase,n", [("publish", 5), ("publish", 20), ("prune", 3)])
def test_kill9_at_chosen_moments(seeded, material, tmp_path, capsys, phase, n):
    assert _kill_and_check(seeded, material, tmp_path, capsys, phase, n), f"the child finished before step {n} of {phase}"


def test_half_deleted_bundle_is_not_listed_nor_a_rollback_target(seeded, material, tmp_path, capsys):
    """What an interrupted deletion by older code (or by hand) leaves: a manifest beside missing files."""
    root = tmp_path / "root"
    shutil.copytree(seeded, root)
    (B.bundles_dir(root) / "v0001" / B.INDEX_FILE).unlink()
    (B.bundles_dir(root) / "v0003").mkdir()  # a directory without a manifest
    (root / ".CURRENT.abc123.tmp").write_text("v0001\n")
    assert listed(root, capsys) == ["v0002"]
    with pytest.raises(B.UnknownIdError, match="not found .or incomplete."):
        B.rollback(root, "v0001")
    check_after_crash(root, capsys)
    check_next_build_cleans(root, material)


@pytest.mark.slow
def test_kill9_at_every_other_step_and_at_staggered_times(seeded, material, tmp_path, capsys):
    killed = {}
    for phase in ("publish", "prune"):
        n = 1
        while _kill_and_check(seeded, material, tmp_path, capsys, phase, n):
            killed.setdefault(phase, []).append(n)
            n += 2 if phase == "publish" else 1
    # wall-clock kills of a child publishing three bundles in a row
    for i, delay in enumerate((0.5, 1.0, 1.5, 2.0, 2.5, 3.0)):
        root = tmp_path / f"timed-{i}"
        shutil.copytree(seeded, root)
        proc = subprocess.Popen([*CHILD, str(root), str(material), "--publishes", "3"], cwd=ROOT, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL, env={**os.environ, "PYTHONPATH": str(ROOT)})
        time.sleep(delay)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        check_after_crash(root, capsys)
        check_next_build_cleans(root, material)
        killed.setdefault("timed", []).append(delay)
    print("killed at", killed)
    assert sum(len(v) for v in killed.values()) >= 20 and {"publish", "prune", "timed"} <= set(killed), killed
