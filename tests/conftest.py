"""Shared fixtures.

- `tiktok_src`: ../shared/data/tiktok (skips when absent); `tiktok`: it imported once per session.
- `tiny_synth`: a seeded tiny synthetic platform (real media files), written once per session.
- `tiny_encoded`: a copy of it with the feature store encoded by the real pretrained encoders.
Tests must not modify session fixtures in place: copy them (`copy_dataset`) first.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TQDM_DISABLE", "1")

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("RECSYS_SHARED", ROOT.parent / "shared"))
TIKTOK_SRC = SHARED / "data" / "tiktok"


@pytest.fixture(scope="session")
def tiktok_src() -> Path:
    if not (TIKTOK_SRC / "trnMat.pkl").is_file():
        pytest.skip(f"shared TikTok data not found at {TIKTOK_SRC}")
    return TIKTOK_SRC


@pytest.fixture(scope="session")
def tiktok(tiktok_src: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    from recsys.data.diffmm import import_diffmm

    out = tmp_path_factory.mktemp("tiktok") / "tiktok"
    import_diffmm(tiktok_src, out)
    return out


@pytest.fixture(scope="session")
def tiny_synth(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from recsys.data.synth import SynthConfig, synthesize

    out = tmp_path_factory.mktemp("synth") / "tiny"
    synthesize(out, SynthConfig.preset("tiny", seed=0))
    return out


@pytest.fixture(scope="session")
def tiny_encoded(tiny_synth: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    from recsys.encode import encode_dataset

    out = tmp_path_factory.mktemp("encoded") / "tiny"
    shutil.copytree(tiny_synth, out)
    encode_dataset(out)
    return out


def copy_dataset(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return dst


@pytest.fixture(scope="session")
def postgres():
    """A throw-away PostgreSQL server for the session (tests/pg.py); skips where none is installed."""
    from tests.pg import binaries, throwaway_postgres

    if binaries() is None:
        pytest.skip("no PostgreSQL server binaries (initdb) on this machine; .ci/run installs the Debian package postgresql")
    with throwaway_postgres() as server:
        yield server


@pytest.fixture(params=["sqlite", "postgres"])
def log_url(request, tmp_path) -> str:
    """An empty online log of each engine: a SQLite file, or a fresh PostgreSQL database."""
    if request.param == "sqlite":
        return str(tmp_path / "online_log.sqlite3")
    return request.getfixturevalue("postgres").new_database()
