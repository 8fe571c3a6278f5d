"""A small real bundle for the serving unit tests: seeded clustered latents, a real (untrained)
`recsys.model.Recommender` as the run, real FAISS (IVF so the approximate paths run)."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest

N, Z = 3000, 16
NOW_US = int(time.time() * 1e6)


@pytest.fixture(scope="session")
def ivf_bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from index.from_vectors import build_from_latents, synthetic_catalogue

    root = tmp_path_factory.mktemp("serving") / "index"
    cat, _ = synthetic_catalogue(N, Z, n_users=60, n_authors=40, seed=1, n_clusters=16, span_days=100, now_us=NOW_US)
    build_from_latents(cat, root, factory="IVF16,Flat", k=50, max_history=20, n_queries=60)
    return root


KEY = {"X-API-Key": "secret"}  # write / admin key of `settings_for` (opens reads too)
READ = {"X-API-Key": "reader"}  # its read-only key


def settings_for(root: Path, **kw):
    from serving.settings import Settings

    kw.setdefault("api_key", "secret")
    kw.setdefault("read_api_key", "reader")
    kw.setdefault("online_log", "off")  # the bundle is shared by the session: tests that log give their own log
    return Settings(index_root=root, **kw)


@pytest.fixture(scope="module")
def states(ivf_bundle):
    """One ServingState per search mode (shared search, selector, exact) over the same bundle."""
    from serving.state import ServingState
    from tests.unit.serving.oracle import MODES

    return {m: ServingState.load(settings_for(ivf_bundle, **kw)) for m, kw in MODES.items()}
