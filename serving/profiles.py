"""User vectors: the run's user tower over a request's history (one batched model call for a
batch of requests), and the per-user cache of that work, valid until the user's next event.

Shapes: B requests, L history, Z latent dim, d retrieval dim.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from recsys.inference import user_vectors

if TYPE_CHECKING:
    from serving.online import Online
    from serving.requests import Prepared


@dataclass
class UserProfile:
    """Per-user work reused across requests until the user's next event (cache entry)."""

    version: int
    known: bool
    hist: np.ndarray  # int64 (<=L,) profile history
    seen: np.ndarray  # int64 seen post ids
    seen_rows: np.ndarray  # int64 bundle rows of `seen` (-1 dropped)
    query: np.ndarray | None = None  # float32 (d,)
    hist_unit_t: np.ndarray | None = None  # float32 (Z, L) L2-normalised history latents, transposed ("why")


class Profiles:
    """The model's user vectors for prepared requests, with an LRU cache of `cache_size` users
    keyed by the user's online version (an event batch invalidates the entry)."""

    def __init__(self, model: Any, online: Online, cache_size: int) -> None:
        self.model, self.online, self.cache_size = model, online, cache_size
        self.max_history = int(getattr(model, "max_history", 50))
        self._cache: OrderedDict[int, UserProfile] = OrderedDict()
        self._lock = threading.Lock()

    def cached(self, user_id: int) -> UserProfile | None:
        """The user's cache entry if it is still current, else None."""
        with self._lock:
            hit = self._cache.get(user_id)
            if hit is None or hit.version != self.online.version_of(user_id):
                return None
            self._cache.move_to_end(user_id)
            return hit

    def put(self, user_id: int, prof: UserProfile) -> None:
        with self._lock:
            self._cache[user_id] = prof
            while len(self._cache) > self.cache_size:
                self._cache.popitem(last=False)

    def fill(self, preps: list[Prepared], cacheable: list[bool] | None = None) -> None:
        """Fill `.query` (user vectors, one batched model call for the cache misses). Known users
        without request history reuse / fill the profile cache (`cacheable` is kept for callers
        that want to force a fresh computation: False there skips the cache)."""
        todo = []
        for i, p in enumerate(preps):
            if cacheable is not None and not cacheable[i]:
                p.profile = None
            if not len(p.hist):
                continue
            if p.profile is not None and p.profile.query is not None:
                p.query = p.profile.query
                continue
            todo.append((p, p.profile is not None))
        if not todo:
            return
        delta = todo[0][0].delta
        uids = np.array([p.user_id if p.user_id is not None else -1 for p, _ in todo], np.int64)
        vecs, has = user_vectors(self.model, [p.hist for p, _ in todo], uids, lambda ids: self.online.latents_of(ids, delta))
        for i, (p, c) in enumerate(todo):
            q = vecs[i] if has[i] and np.any(vecs[i]) else None
            p.query = q
            if c and q is not None:
                p.profile.query = q
                self.put(p.user_id, p.profile)
