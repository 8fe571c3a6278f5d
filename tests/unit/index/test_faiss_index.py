"""FAISS index construction, selectors and search on real FAISS with seeded numpy vectors."""

from __future__ import annotations

import numpy as np
import pytest

from index import faiss_index as fi
from recsys.errors import ConfigError
from tests.unit.index.helpers import clustered


def test_choose_factory_exact_small_ivf_large():
    assert fi.choose_factory(100_000, 64) == "Flat"
    assert fi.choose_factory(1_000_000, 64) == "IVF4096,Flat"
    assert fi.choose_factory(200_000, 64).startswith("IVF")


def test_flat_index_matches_brute_force():
    x, q = clustered(500, 8), clustered(5, 8, seed=1)
    idx = fi.build_index(x, "Flat")
    scores, rows = fi.search(idx, q, 10)
    want = np.argsort(-(q @ x.T), axis=1)[:, :10]
    np.testing.assert_array_equal(rows, want)  # labels are row numbers
    np.testing.assert_allclose(scores, np.take_along_axis(q @ x.T, want, 1), rtol=1e-5)


@pytest.mark.parametrize("factory", ["Flat", "IVF8,Flat", "HNSW8,Flat", "IVF8,PQ4,Refine(Flat)"])
def test_selector_range_and_exclusions_apply_inside_search(factory):
    x, q = clustered(2000, 8), clustered(3, 8, seed=2)
    idx = fi.build_index(x, factory)
    excluded = np.arange(1500, 1600)
    sel = fi.selector(1000, len(x), excluded)
    value = max(fi.search_param_candidates(idx, 50) or [None], key=lambda v: v or 0)
    _, rows = fi.search(idx, q, 50, value, sel)
    got = rows[rows >= 0]
    assert len(got) > 0
    assert (got >= 1000).all() and not np.isin(got, excluded).any()
    # with the largest search parameter every query still gets its 50
    assert (rows >= 0).sum(1).min() == 50


def test_search_returns_minus_one_when_fewer_pass_the_selector():
    x = clustered(100, 8)
    idx = fi.build_index(x, "Flat")
    _, rows = fi.search(idx, x[:1], 10, None, fi.selector(95, 100))
    assert sorted(rows[0][rows[0] >= 0].tolist()) == [95, 96, 97, 98, 99]
    assert (rows[0] == -1).sum() == 5


def test_selector_none_when_nothing_filtered():
    assert fi.selector(0, 10, np.zeros(0, np.int64)) is None


def test_bad_factory_and_too_many_lists_are_config_errors():
    x = clustered(50, 8)
    with pytest.raises(ConfigError, match="factory"):
        fi.build_index(x, "NotAnIndex")
    with pytest.raises(ConfigError, match="nlist=64"):
        fi.build_index(x, "IVF64,Flat")


def test_params_and_default_param_roundtrip():
    x = clustered(1000, 8)
    idx = fi.build_index(x, "IVF16,Flat")
    assert fi.search_param_name(idx) == "nprobe"
    fi.set_default_param(idx, 7)
    assert fi._find_ivf(idx).nprobe == 7
    h = fi.build_index(x, "HNSW8,Flat")
    assert fi.search_param_name(h) == "efSearch"
    assert fi.search_param_candidates(h, 100)[0] == 100  # efSearch never below k
    assert fi.search_param_name(fi.build_index(x, "Flat")) is None


def test_set_threads_reaches_every_searching_thread():
    """OpenMP counts threads per calling thread: a count set at start must also hold in a thread
    that only searches (an executor thread), or FAISS fans a batch out to every core there."""
    import threading

    import faiss

    x = clustered(500, 16, seed=0)
    index = fi.build_index(x, "Flat")
    want = faiss.omp_get_max_threads() + 1  # differs from the default of any fresh thread
    seen: list[int] = []

    def searching_thread() -> None:
        fi.search(index, x[:3], 5)
        seen.append(faiss.omp_get_max_threads())

    before = faiss.omp_get_max_threads()
    try:
        fi.set_threads(want)
        t = threading.Thread(target=searching_thread)
        t.start()
        t.join()
    finally:
        fi.set_threads(0)
        faiss.omp_set_num_threads(before)
    assert seen == [want]
