"""Micro-batching: concurrent requests share one FAISS search call.

Leader / follower combining, no extra thread: the first request that arrives while no search is
running becomes the leader and searches at once (a lone request pays no wait); requests that
arrive while a search runs queue up, and when it ends the head of the queue is promoted to
leader and searches for the whole queue in one call (FAISS releases the GIL, so the queue fills
while it runs). Results are split back per request.

Shapes: Q queued queries, d dim, F fetch (the largest k asked in the batch).
"""

from __future__ import annotations

import threading
from collections.abc import Callable

import numpy as np


class _Req:
    __slots__ = ("vec", "fetch", "event", "result", "error", "promoted")

    def __init__(self, vec: np.ndarray, fetch: int) -> None:
        self.vec, self.fetch = vec, fetch
        self.event = threading.Event()
        self.result = None
        self.error: BaseException | None = None
        self.promoted = False


class Combiner:
    """`search(vec (d,), fetch) -> (scores (F,), rows (F,))` through a shared batched search.

    `search_fn(queries float32 (Q, d), fetch) -> (scores (Q, F), rows (Q, F))`.
    `on_batch(size)` is called with each batch size (metrics)."""

    def __init__(self, search_fn: Callable, max_batch: int = 64, on_batch: Callable[[int], None] | None = None) -> None:
        self.search_fn, self.max_batch = search_fn, max_batch
        self.on_batch = on_batch or (lambda n: None)
        self._lock = threading.Lock()
        self._pending: list[_Req] = []
        self._busy = False

    def search(self, vec: np.ndarray, fetch: int) -> tuple[np.ndarray, np.ndarray]:
        me = _Req(vec, fetch)
        with self._lock:
            self._pending.append(me)
            lead = not self._busy
            self._busy = True
        if not lead:
            me.event.wait()
            if not me.promoted:
                if me.error is not None:
                    raise me.error
                return me.result
        # leader: I am at the head of the queue (nobody else is searching)
        with self._lock:
            batch = self._pending[: self.max_batch]
            del self._pending[: self.max_batch]
        assert batch and batch[0] is me, "combiner leader must head its batch"
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
            with self._lock:
                nxt = self._pending[0] if self._pending else None
                if nxt is None:
                    self._busy = False
                else:
                    nxt.promoted = True
            for r in batch[1:]:
                r.event.set()
            if nxt is not None:
                nxt.event.set()
        if me.error is not None:
            raise me.error
        return me.result
