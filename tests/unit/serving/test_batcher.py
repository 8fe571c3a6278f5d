"""Combiner: concurrent callers share one search call and each gets its own rows back."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from index import faiss_index as fi
from serving.batcher import AsyncCombiner, Combiner
from tests.unit.index.helpers import clustered


@pytest.mark.parametrize("inflight", [1, 3])
def test_concurrent_callers_get_their_own_results_in_shared_batches(inflight):
    x = clustered(2000, 16)
    idx = fi.build_index(x, "Flat")
    sizes = []
    queued = threading.Event()

    def slow_search(q, fetch):
        # The first searches hold their slots until 8 callers queue behind them (2 s at most), so
        # batches form however slowly a loaded machine starts the threads.
        deadline = time.monotonic() + 2.0
        while not queued.is_set() and len(comb._pending) < 8 and time.monotonic() < deadline:
            time.sleep(0.001)
        queued.set()
        time.sleep(0.003)
        return fi.search(idx, q, fetch)

    comb = Combiner(slow_search, max_batch=8, on_batch=sizes.append, max_inflight=inflight)
    qs = clustered(64, 16, seed=7)
    want = fi.search(idx, qs, 30)[1]
    got = [None] * len(qs)

    def worker(i):
        got[i] = comb.search(qs[i], 10 + i % 20)[1]

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(len(qs))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    for i in range(len(qs)):
        f = 10 + i % 20
        np.testing.assert_array_equal(got[i], want[i, :f])
    assert sum(sizes) == len(qs) and max(sizes) > 1 and max(sizes) <= 8
    assert comb._active == 0 and not comb._pending  # every slot handed back


def test_errors_reach_every_waiter_and_the_combiner_recovers():
    calls = []

    def boom(q, fetch):
        calls.append(len(q))
        time.sleep(0.002)
        if len(calls) == 1:
            raise RuntimeError("faiss exploded")
        return np.zeros((len(q), fetch), np.float32), np.zeros((len(q), fetch), np.int64)

    comb = Combiner(boom, max_inflight=1)
    errors = []

    def worker():
        try:
            comb.search(np.zeros(4, np.float32), 3)
        except RuntimeError as e:
            errors.append(str(e))

    threads = [threading.Thread(target=worker) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(5)
    assert not any(t.is_alive() for t in threads), "a waiter hung"
    assert errors and all(e == "faiss exploded" for e in errors)
    assert comb.search(np.zeros(4, np.float32), 3)[1].shape == (3,)


def test_async_combiner_shares_batches_and_runs_a_lone_search_inline():
    import asyncio

    x = clustered(2000, 16)
    idx = fi.build_index(x, "Flat")
    threads, sizes = [], []

    def slow_search(q, fetch):
        threads.append(threading.current_thread().name)
        time.sleep(0.003)  # long enough for the queue to fill behind the running batch
        return fi.search(idx, q, fetch)

    comb = AsyncCombiner(slow_search, max_batch=8, on_batch=sizes.append, max_inflight=1)
    qs = clustered(40, 16, seed=7)
    want = fi.search(idx, qs, 30)[1]

    async def run():
        got = await asyncio.gather(*(comb.search(qs[i], 10 + i % 20) for i in range(len(qs))))
        comb.alone = lambda: True
        lone = await comb.search(qs[0], 5)
        return got, lone

    got, lone = asyncio.run(run())
    for i, (_, rows) in enumerate(got):
        np.testing.assert_array_equal(rows, want[i, : 10 + i % 20])
    np.testing.assert_array_equal(lone[1], want[0, :5])
    assert sum(sizes) == len(qs) + 1 and max(sizes) > 1 and max(sizes) <= 8
    assert threads[-1] == threading.main_thread().name  # the lone search ran on the loop thread
    assert threading.main_thread().name not in threads[:-1]  # the shared ones did not
    assert comb._active == 0 and not comb._pending


def test_async_combiner_errors_reach_every_waiter():
    import asyncio

    def boom(q, fetch):
        time.sleep(0.002)
        raise RuntimeError("faiss exploded")

    comb = AsyncCombiner(boom, max_inflight=1)

    async def run():
        return await asyncio.gather(*(comb.search(np.zeros(4, np.float32), 3) for _ in range(5)), return_exceptions=True)

    out = asyncio.run(run())
    assert all(isinstance(e, RuntimeError) and str(e) == "faiss exploded" for e in out)
    assert comb._active == 0 and not comb._pending


def test_async_combiner_finishes_each_batch_in_its_own_search_thread():
    """finish_fn sees a whole batch (items + each request's own first `fetch` hits) right after
    its search, in the combiner's thread; a lone request's finish runs inline."""
    import asyncio

    x = clustered(2000, 16)
    idx = fi.build_index(x, "Flat")
    batches = []

    def slow_search(q, fetch):
        time.sleep(0.003)
        return fi.search(idx, q, fetch)

    def finish(items, hits):
        batches.append((threading.current_thread().name, list(items)))
        return [(item, rows.tolist()) for item, (_, rows) in zip(items, hits)]

    comb = AsyncCombiner(slow_search, max_batch=8, max_inflight=1, finish_fn=finish)
    qs = clustered(24, 16, seed=3)
    want = fi.search(idx, qs, 20)[1]

    async def run():
        got = await asyncio.gather(*(comb.search(qs[i], 5 + i % 15, f"req{i}") for i in range(len(qs))))
        comb.alone = lambda: True
        return got, await comb.search(qs[1], 4, "lone")

    got, lone = asyncio.run(run())
    for i, (item, rows) in enumerate(got):
        assert item == f"req{i}" and rows == want[i, : 5 + i % 15].tolist()
    assert lone == ("lone", want[1, :4].tolist())
    shared = [name for name, _ in batches[:-1]]
    assert set(shared) == {"shared-search_0"}  # one warm thread of its own (max_inflight=1)
    assert max(len(items) for _, items in batches) > 1 and batches[-1] == (threading.main_thread().name, ["lone"])
    assert sorted(i for _, items in batches[:-1] for i in items) == sorted(f"req{i}" for i in range(len(qs)))
