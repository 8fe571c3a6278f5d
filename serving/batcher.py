"""Micro-batching: concurrent requests share FAISS search calls.

Leader / follower combining, no extra thread: up to `max_inflight` searches run at once (FAISS
releases the GIL, so they use separate cores); a request that arrives while a slot is free
searches at once (a lone request pays no wait). When every slot is busy, requests queue; when a
search ends, its thread hands the whole queue (up to `max_batch`) to the head of the queue, which
searches for all of them in one call. Results are split back per request.

`Combiner` serves callers on request threads; `AsyncCombiner` does the same for callers on the
event loop (the single-recommendation route), where the search itself goes to an executor thread,
together with the per-request work that follows it (`finish_fn`: filter, "why", JSON).

Shapes: Q queued queries, d dim, F fetch (the largest k asked in the batch).
"""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import numpy as np


class _Req:
    __slots__ = ("vec", "fetch", "event", "result", "error", "batch")

    def __init__(self, vec: np.ndarray, fetch: int) -> None:
        self.vec, self.fetch = vec, fetch
        self.event = threading.Event()
        self.result = None
        self.error: BaseException | None = None
        self.batch: list[_Req] | None = None  # set when this request is promoted to run a batch


class Combiner:
    """`search(vec (d,), fetch) -> (scores (F,), rows (F,))` through shared batched searches.

    `search_fn(queries float32 (Q, d), fetch) -> (scores (Q, F), rows (Q, F))`.
    `max_inflight` concurrent search calls (0 = one per CPU core); `on_batch(size)` per call."""

    def __init__(self, search_fn: Callable, max_batch: int = 64, on_batch: Callable[[int], None] | None = None,
                 max_inflight: int = 0) -> None:
        self.search_fn, self.max_batch = search_fn, max_batch
        self.max_inflight = max_inflight or max(1, os.cpu_count() or 1)
        self.on_batch = on_batch or (lambda n: None)
        self._lock = threading.Lock()
        self._pending: list[_Req] = []
        self._active = 0  # search calls running (invariant: pending non-empty => active == max_inflight)

    def search(self, vec: np.ndarray, fetch: int) -> tuple[np.ndarray, np.ndarray]:
        me = _Req(vec, fetch)
        with self._lock:
            if self._active < self.max_inflight:
                self._active += 1
                batch = [me]
            else:
                self._pending.append(me)
                batch = None
        if batch is None:
            me.event.wait()
            if me.batch is None:  # served by another thread's batch
                if me.error is not None:
                    raise me.error
                return me.result
            batch = me.batch
        assert batch[0] is me, "a combiner leader must head its batch"
        try:
            fetch_all = max(r.fetch for r in batch)
            scores, rows = self.search_fn(np.stack([r.vec for r in batch]), fetch_all)
            self.on_batch(len(batch))
            for i, r in enumerate(batch):
                r.result = (scores[i, : r.fetch], rows[i, : r.fetch])
        except BaseException as e:  # every waiter gets the error, nobody hangs
            for r in batch:
                r.error = e
        finally:
            nxt = None
            with self._lock:
                if self._pending:  # hand the queue to its head, which keeps this slot
                    nb = self._pending[: self.max_batch]
                    del self._pending[: self.max_batch]
                    nxt = nb[0]
                    nxt.batch = nb
                else:
                    self._active -= 1
            for r in batch[1:]:
                r.event.set()
            if nxt is not None:
                nxt.event.set()
        if me.error is not None:
            raise me.error
        return me.result


class AsyncCombiner:
    """`await search(vec (d,), fetch, item) -> finish_fn([item], [(scores (F,), rows (F,))])[0]`
    from one event loop; without a `finish_fn`, the (scores (F,), rows (F,)) themselves.

    The same combining as `Combiner`, for callers that run on the event loop (no request thread
    per search): up to `max_inflight` batches run at once, each in one of as many threads of its
    own (FAISS releases the GIL); requests that arrive meanwhile queue and go together in the
    next batch when one ends. The executor job also runs `finish_fn` over the whole batch right
    after the search, so the per-request work that follows a search runs back to back for the
    batch, off the loop thread (which keeps parsing and writing HTTP meanwhile). All bookkeeping
    happens on the loop thread, so it needs no lock. A request cancelled while queued (client
    gone) is skipped when results come back. When `alone()` says no other request is being served
    and nothing is searching, a small search (fetch <= `inline_max`) and its finish run on the
    loop thread itself: a lone request pays no thread hop.

    `search_fn(queries float32 (Q, d), fetch) -> (scores (Q, F), rows (Q, F))` (F = the largest
    fetch of the batch; each request gets its own first `fetch` columns);
    `finish_fn(items: list (Q,), hits: list of (scores (F_i,), rows (F_i,))) -> list (Q,)`;
    `on_batch(size)` per search call."""

    def __init__(self, search_fn: Callable, max_batch: int = 64, on_batch: Callable[[int], None] | None = None,
                 max_inflight: int = 0, inline_max: int = 1024, finish_fn: Callable | None = None) -> None:
        self.search_fn, self.max_batch, self.finish_fn = search_fn, max_batch, finish_fn
        self.max_inflight = max_inflight or max(1, os.cpu_count() or 1)
        self.on_batch = on_batch or (lambda n: None)
        self.inline_max = inline_max
        self.alone: Callable[[], bool] = lambda: False  # the app points this at its in-flight count
        self._pending: list[tuple[np.ndarray, int, object, asyncio.Future]] = []
        self._active = 0  # batches running in the executor
        self._executor: ThreadPoolExecutor | None = None  # started on the first shared batch

    async def search(self, vec: np.ndarray, fetch: int, item: object = None):
        if self._active == 0 and not self._pending and fetch <= self.inline_max:
            await asyncio.sleep(0)  # let requests that are ready to run start (and count themselves)
            if self._active == 0 and not self._pending and self.alone():
                # a lone request: nothing to overlap with or share, so skip the thread hop (~0.1 ms)
                return self._run(vec[None], [fetch], [item])[0]
        loop = asyncio.get_running_loop()
        fut = loop.create_future()
        self._pending.append((vec, fetch, item, fut))
        if self._active < self.max_inflight:
            self._launch(loop)
        return await fut

    def _run(self, queries: np.ndarray, fetches: list[int], items: list) -> list:
        """One search for the batch (queries (Q, d)), then its finish: one result per request."""
        scores, rows = self.search_fn(queries, max(fetches))
        self.on_batch(len(fetches))
        hits = [(scores[i, :f], rows[i, :f]) for i, f in enumerate(fetches)]
        return hits if self.finish_fn is None else self.finish_fn(items, hits)

    def _launch(self, loop: asyncio.AbstractEventLoop) -> None:
        batch = self._pending[: self.max_batch]
        del self._pending[: self.max_batch]
        self._active += 1
        queries = np.stack([b[0] for b in batch])  # (Q, d)
        if self._executor is None:  # its own max_inflight threads stay warm (the loop's pool spreads jobs over several)
            self._executor = ThreadPoolExecutor(self.max_inflight, thread_name_prefix="shared-search")
        job = loop.run_in_executor(self._executor, self._run, queries, [b[1] for b in batch], [b[2] for b in batch])
        job.add_done_callback(lambda j: self._done(loop, batch, j))

    def _done(self, loop: asyncio.AbstractEventLoop, batch: list, job: asyncio.Future) -> None:
        self._active -= 1
        try:
            results = job.result()
        except BaseException as e:  # every waiter gets the error, nobody hangs
            for b in batch:
                if not b[3].done():
                    b[3].set_exception(e)
        else:
            for b, r in zip(batch, results):
                if not b[3].done():
                    b[3].set_result(r)
        if self._pending and self._active < self.max_inflight:
            self._launch(loop)
