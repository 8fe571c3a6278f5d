"""Micro-batching: concurrent requests share FAISS search calls.

Leader / follower combining, no extra thread: up to `max_inflight` searches run at once (FAISS
releases the GIL, so they use separate cores); a request that arrives while a slot is free
searches at once (a lone request pays no wait). When every slot is busy, requests queue; when a
search ends, its thread hands the whole queue (up to `max_batch`) to the head of the queue, which
searches for all of them in one call. Results are split back per request.

Shapes: Q queued queries, d dim, F fetch (the largest k asked in the batch).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable

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
