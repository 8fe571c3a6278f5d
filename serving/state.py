"""Everything a running server holds for one bundle, and the recommendation logic.

    ServingState.load(settings)     bundle (immutable) + run model + online overlay
    .recommend([...])               profiles -> filtered FAISS search (+ delta) -> items with "why"
    .similar(post_id, k)
    .add_post / .delete_post / .add_events   online writes (under the app's write lock)

Immutable bundle arrays are shared read-only. Online state is copy-on-write: a write builds a new
delta snapshot / tombstone array and swaps one reference, so a request that already read the old
reference keeps a consistent view and never sees a half-applied write.

Filters run inside the search: exclusions (seen, posts, authors, deleted) become an IDSelector,
the age filter an IDSelectorRange (rows are ordered by created_at). Concurrent plain requests share
one FAISS call (serving.batcher) with over-fetch + exact post-filtering; a request that comes back
short (or is very selective) re-searches with the selector, then exactly over the eligible rows,
so the response has k posts whenever k eligible posts exist.

Shapes: N bundle posts, m delta posts, d retrieval dim, Z latent dim, L history, K top-k.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import math
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
from pydantic_core import to_json

from index import bundle as B
from index import faiss_index as fi
from recsys.inference import pad_histories
from recsys.errors import ArtifactError, SchemaError, UnknownIdError
from serving.batcher import AsyncCombiner, Combiner
from serving.schemas import Filters, NewPost, RecommendRequest
from serving.settings import Settings

logger = logging.getLogger(__name__)

NULL_TS = np.iinfo(np.int64).min
CAP_HEADROOM = 1.5  # over-fetch for an author cap before the state has measured what the cap drops
CAP_TRACK_MAX = 64  # caps above this keep CAP_HEADROOM (they rarely drop anything)
AUTHOR_ROWS_KEEP = 100_000  # authors whose bundle rows a state remembers (rows_of_author)
CREATED_STRIDE = 1024  # rows per block of the age filter's two-level search (first_row_at)
ID_ROWS_KEEP = 100_000  # excluded post ids whose bundle rows a state remembers (excluded_id_rows)
_EMPTY = np.zeros(0, np.int64)


class NotFound(UnknownIdError):
    """-> 404"""


class BadInput(SchemaError):
    """-> 422"""


def _now_us(now: dt.datetime | None) -> int:
    if now is None:
        return time.time_ns() // 1000
    if now.tzinfo is None:
        now = now.replace(tzinfo=dt.UTC)
    return int(now.timestamp() * 1_000_000)


def _ids(values, what: str) -> np.ndarray:
    return np.asarray(values, dtype=np.int64).reshape(-1) if len(values) else _EMPTY


@dataclass(frozen=True)
class Delta:
    """Posts added online (immutable snapshot; a write makes a new one)."""

    ids: np.ndarray = field(default_factory=lambda: _EMPTY)  # int64 (m,)
    vectors: np.ndarray | None = None  # float32 (m, d)
    latents: np.ndarray | None = None  # float32 (m, Z)
    authors: np.ndarray = field(default_factory=lambda: _EMPTY)  # int64 (m,)
    created: np.ndarray = field(default_factory=lambda: _EMPTY)  # int64 (m,) us
    features: tuple = ()  # per post: ({m: vec}, {m: present}) for replay onto a reloaded bundle

    @property
    def n(self) -> int:
        return len(self.ids)

    def find(self, pid: int) -> int:
        hit = np.flatnonzero(self.ids == pid)
        return int(hit[0]) if len(hit) else -1


@dataclass
class UserOverlay:
    history: list[int] = field(default_factory=list)  # online events, most-recent-last
    seen: set[int] = field(default_factory=set)
    version: int = 0


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


@dataclass
class Prepared:
    """One recommendation request resolved against the state."""

    k: int
    user_id: int | None
    user_known: bool
    hist: np.ndarray  # int64 (<=L,) post ids used for the profile, most recent last
    query: np.ndarray | None  # float32 (d,)
    excl_all: np.ndarray  # int64 bundle rows excluded (deleted, seen, ids, authors): unsorted, may repeat
    excl_ids: np.ndarray  # int64 post ids excluded by id (for the delta)
    excl_authors: set
    cutoff_row: int  # rows below are too old
    cutoff_us: int
    author_cap: int | None
    fallback_reason: str | None = None
    delta: Delta = field(default_factory=Delta)  # the delta snapshot this request sees
    n_direct: int = 0  # rows excluded by id (seen, exclude_post_ids): likely to rank high
    profile: UserProfile | None = None  # cached per-user work (known users without request history)

    # computed once each, on the paths that need them (all inputs are fixed after prepare)

    @cached_property
    def excl_rows(self) -> np.ndarray:
        """int64 sorted unique `excl_all` (FAISS selector, exact search, popular fallback)."""
        return _sorted_unique(self.excl_all)

    @cached_property
    def n_excl_in_range(self) -> int:
        """Excluded rows at or above `cutoff_row`."""
        return int(len(self.excl_rows) - np.searchsorted(self.excl_rows, self.cutoff_row))

    @cached_property
    def n_excl_in_range_max(self) -> int:
        """An upper bound of `n_excl_in_range` without the sort: a row excluded twice (seen, and
        by an excluded author) counts twice."""
        return int(np.count_nonzero(self.excl_all >= self.cutoff_row))


_ITEM_PARTS = [b'{"post_id":', b"", b',"score":', b"", b',"why":', b"", b',"why_similarity":', b"", b"},"]


@dataclass
class Reply:
    """One recommendation response, its K items as columns (best first).

    `to_dict()` is the RecommendResponse shape less `bundle_version`; `to_json(version)` is the
    whole body as JSON bytes, equal to `to_json({**to_dict(), "bundle_version": version})` but
    serialised column by column (pydantic-core) and spliced, without K item dicts (memoised: a
    shared search's worker renders it, the route sends it)."""

    post_ids: list[int]
    scores: list[float]
    why: list[int | None]
    why_similarity: list[float | None]
    fallback_reason: str | None
    user_known: bool
    _json: tuple[str, bytes] | None = field(default=None, repr=False, compare=False)  # (version, body)

    def items(self) -> list[dict]:
        return [{"post_id": a, "score": b, "why": c, "why_similarity": d}
                for a, b, c, d in zip(self.post_ids, self.scores, self.why, self.why_similarity)]

    def _meta(self) -> dict:
        return {"fallback": self.fallback_reason is not None, "fallback_reason": self.fallback_reason,
                "user_known": self.user_known}

    def to_dict(self) -> dict:
        return {"items": self.items(), **self._meta()}

    def to_json(self, bundle_version: str) -> bytes:
        if self._json is None or self._json[0] != bundle_version:
            self._json = (bundle_version, self._render(bundle_version))
        return self._json[1]

    def _render(self, bundle_version: str) -> bytes:
        tail = to_json({**self._meta(), "bundle_version": bundle_version})  # b'{"fallback":...}'
        if not self.post_ids:
            return b'{"items":[],' + tail[1:]
        parts = _ITEM_PARTS * len(self.post_ids)  # 9 pieces per item, values at 1, 3, 5, 7
        for j, col in enumerate((self.post_ids, self.scores, self.why, self.why_similarity)):
            parts[2 * j + 1 :: 9] = to_json(col)[1:-1].split(b",")  # numbers / null: no comma inside
        parts[-1] = b"}"
        return b'{"items":[' + b"".join(parts) + b"]," + tail[1:]


class Stats:
    """Counters the metrics module reads (plain ints; races only blur the counts)."""

    def __init__(self) -> None:
        self.overfetch: dict[str, int] = {"post_filter": 0, "selector_retry": 0, "exact": 0}
        self.fallbacks: dict[str, int] = {}
        self.on_batch = lambda n: None  # the app points this at a histogram

    def batch(self, n: int) -> None:
        self.on_batch(n)


class ServingState:
    def __init__(self, bundle: B.Bundle, model: Any, settings: Settings) -> None:
        self.bundle, self.model, self.settings = bundle, model, settings
        self.version = bundle.version
        self.loaded_at = time.time()
        self.n, self.d = bundle.n, int(bundle.manifest["dim"])
        self.search_value = bundle.manifest.get("search", {}).get("value")
        self._plain_params = fi.make_params(bundle.index, self.search_value)  # reused by every plain search
        self.max_history = int(getattr(model, "max_history", 50))
        self.stats = Stats()
        # id -> row
        self._id_order = np.argsort(bundle.post_ids, kind="stable")
        self._id_sorted = bundle.post_ids[self._id_order]
        # author -> rows: the rows of author _auth_keys[j] are _auth_order[_auth_start[j] : _auth_start[j + 1]]
        self._auth_order = np.argsort(bundle.author_ids, kind="stable")
        self._auth_keys, start = np.unique(bundle.author_ids[self._auth_order], return_index=True)
        self._auth_start = np.append(start, self.n).astype(np.int64)
        self._author_rows: dict[int, np.ndarray] = {}  # memo of rows_of_author
        self._id_rows: dict[int, int] = {}  # memo of excluded_id_rows
        # age filter: every CREATED_STRIDE-th created_at (a small array that stays in cache), see first_row_at
        self._created_coarse = np.ascontiguousarray(bundle.created_at_us[::CREATED_STRIDE])
        # popularity fallback order: most interactions, then newest
        self._pop_order = np.lexsort((-bundle.created_at_us, -bundle.popularity))
        # stored user histories, flattened (user_ids sorted)
        h = bundle.histories
        self._users = h["user_id"].to_numpy().astype(np.int64)
        self._h_off = np.concatenate([[0], np.cumsum(h["history"].list.len().to_numpy())]).astype(np.int64)
        self._h_val = h["history"].explode().drop_nulls().to_numpy().astype(np.int64)
        self._s_off = np.concatenate([[0], np.cumsum(h["seen"].list.len().to_numpy())]).astype(np.int64)
        self._s_val = h["seen"].explode().drop_nulls().to_numpy().astype(np.int64)
        # online state (copy-on-write references; writers hold the app write lock)
        self.delta = Delta(vectors=np.zeros((0, self.d), np.float32), latents=np.zeros((0, bundle.latents.shape[1]), np.float32))
        self.tomb_rows = _EMPTY  # sorted int64
        self.overlay: dict[int, UserOverlay] = {}
        self._overlay_lock = threading.Lock()
        self._cache: OrderedDict[int, UserProfile] = OrderedDict()
        self._cap_kept: dict[int, float] = {}  # author cap -> running share of hits it keeps (fetch sizing)
        self._cache_lock = threading.Lock()
        self._encoders: dict | None = None
        self._flags = RowFlags(self.n)  # excluded-row tests of post-filtered candidates
        self._mask_api = _takes_mask(model)
        self.combiner = Combiner(self._search_plain, settings.microbatch_max, on_batch=lambda n: self.stats.batch(n),
                                 max_inflight=settings.microbatch_inflight)
        self.async_combiner = AsyncCombiner(self._search_plain, settings.microbatch_max,
                                            on_batch=lambda n: self.stats.batch(n), max_inflight=settings.microbatch_inflight,
                                            finish_fn=self._finish_shared)

    # --- loading ---------------------------------------------------------------------------

    @classmethod
    def load(cls, settings: Settings, version: str | None = None) -> ServingState:
        bundle = B.load_bundle(settings.index_root, version)
        return cls(bundle, load_model(bundle), settings)

    # --- lookups ---------------------------------------------------------------------------

    def rows_of(self, post_ids: np.ndarray) -> np.ndarray:
        """Bundle rows of post ids, -1 where not in the bundle."""
        if len(post_ids) == 0 or self.n == 0:
            return np.full(len(post_ids), -1, np.int64)
        pos = np.searchsorted(self._id_sorted, post_ids)
        np.minimum(pos, self.n - 1, out=pos)
        rows = self._id_order[pos].astype(np.int64, copy=False)
        rows[self._id_sorted[pos] != post_ids] = -1
        return rows

    def excluded_id_rows(self, post_ids: list[int]) -> np.ndarray:
        """Bundle rows (int64) of the post ids a request excludes, ids not in the bundle dropped.
        Remembered per id: clients resend the same exclusions (posts already shown, "not
        interested"), and a dict lookup is a fraction of a binary search over N sorted ids that
        are cold in cache (at most ID_ROWS_KEEP ids are remembered; past that the memo starts over)."""
        memo = self._id_rows
        rows = [memo.get(i, -2) for i in post_ids]  # -2: not looked up yet, -1: not in the bundle
        if -2 in rows:
            miss = [i for i, r in zip(post_ids, rows) if r == -2]
            found = self.rows_of(np.array(miss, np.int64)).tolist()
            if len(memo) + len(miss) > ID_ROWS_KEEP:
                self._id_rows = memo = {}
            memo.update(zip(miss, found))
            rows = [memo[i] for i in post_ids]
        out = np.array(rows, np.int64)
        return out[out >= 0]

    def first_row_at(self, t_us: int) -> int:
        """The first bundle row created at or after `t_us` (rows are in created_at order). Two
        searches: among every CREATED_STRIDE-th timestamp, then inside one block; a single search
        over all N timestamps costs a cache miss per level."""
        b = int(self._created_coarse.searchsorted(t_us))  # row b * STRIDE is the first sampled one >= t
        lo, hi = max(b - 1, 0) * CREATED_STRIDE, min(b * CREATED_STRIDE, self.n)  # the answer is in (lo, hi]
        return lo + int(self.bundle.created_at_us[lo:hi].searchsorted(t_us))

    def rows_of_author(self, author: int) -> np.ndarray:
        """Bundle rows of one author (int64 ascending, a view; empty when unknown). Remembered per
        author, so an excluded author costs one dict lookup after the first time (at most
        AUTHOR_ROWS_KEEP authors are remembered; past that the memo starts over)."""
        rows = self._author_rows.get(author)
        if rows is None:
            keys = self._auth_keys
            j = int(np.searchsorted(keys, author))
            found = j < len(keys) and keys[j] == author
            rows = self._auth_order[self._auth_start[j] : self._auth_start[j + 1]] if found else _EMPTY
            if len(self._author_rows) >= AUTHOR_ROWS_KEEP:
                self._author_rows = {}
            self._author_rows[author] = rows
        return rows

    def is_deleted_row(self, rows: np.ndarray) -> np.ndarray:
        t = self.tomb_rows
        if len(t) == 0:
            return np.zeros(len(rows), bool)
        pos = np.clip(np.searchsorted(t, rows), 0, len(t) - 1)
        return t[pos] == rows

    def exists(self, pid: int) -> bool:
        r = self.rows_of(np.array([pid], np.int64))[0]
        if r >= 0 and not self.is_deleted_row(np.array([r]))[0]:
            return True
        return self.delta.find(pid) >= 0

    def known_mask(self, post_ids: np.ndarray, delta: Delta | None = None) -> np.ndarray:
        """True for ids that exist in the bundle (deleted ones too: still valid history) or delta."""
        return (self.rows_of(post_ids) >= 0) | np.isin(post_ids, (delta or self.delta).ids)

    def latents_of(self, post_ids: np.ndarray, delta: Delta | None = None) -> np.ndarray:
        """float32 (n, Z) latents for post ids (bundle or delta; zeros when unknown)."""
        out = np.zeros((len(post_ids), self.bundle.latents.shape[1]), np.float32)
        rows = self.rows_of(post_ids)
        ok = rows >= 0
        out[ok] = self.bundle.latents[rows[ok]]
        delta = delta or self.delta
        if delta.n and not ok.all():
            miss = np.flatnonzero(~ok)
            order = np.argsort(delta.ids, kind="stable")
            pos = np.minimum(np.searchsorted(delta.ids[order], post_ids[miss]), delta.n - 1)
            hit = delta.ids[order[pos]] == post_ids[miss]
            out[miss[hit]] = delta.latents[order[pos[hit]]]
        return out

    def user_history(self, user_id: int) -> tuple[bool, np.ndarray, np.ndarray]:
        """(known, history ids most-recent-last, seen ids) from the bundle plus online events."""
        i = np.searchsorted(self._users, user_id)
        known = bool(i < len(self._users) and self._users[i] == user_id)
        hist, seen = _EMPTY, _EMPTY
        if known:
            hist = self._h_val[self._h_off[i] : self._h_off[i + 1]]
            seen = self._s_val[self._s_off[i] : self._s_off[i + 1]]
        with self._overlay_lock:
            ov = self.overlay.get(user_id)
            if ov is not None:
                known = True
                extra = np.asarray(ov.history, np.int64)
                hist = np.concatenate([hist[~np.isin(hist, extra)], extra])[-self.settings.user_history_keep :]
                seen = np.concatenate([seen, np.fromiter(ov.seen, np.int64, len(ov.seen))])
        return known, hist, seen

    # --- recommendation --------------------------------------------------------------------

    def prepare(self, req: RecommendRequest) -> Prepared:
        s = self.settings
        k = s.k_default if req.k is None else req.k
        if not 1 <= k <= s.k_max:
            raise BadInput(f"`k` must be in [1, {s.k_max}], got {k}")
        f: Filters = req.filters
        if len(req.history) > s.history_max:
            raise BadInput(f"`history` must have at most {s.history_max} post ids, got {len(req.history)}")
        if len(f.exclude_post_ids) > s.exclude_max or len(f.exclude_authors) > s.exclude_max:
            raise BadInput(f"`exclude_post_ids` / `exclude_authors` must have at most {s.exclude_max} ids")
        delta, tomb = self.delta, self.tomb_rows  # one consistent snapshot per request
        req_hist = _ids(req.history, "history")
        if len(req_hist):
            unknown = req_hist[~self.known_mask(req_hist, delta)]
            if len(unknown):
                raise BadInput(
                    f"`history` must list known post ids; {len(unknown)} unknown, e.g. {unknown[:5].tolist()}"
                )
        prof = None
        if req.user_id is not None and not len(req_hist) and self.settings.profile_cache:
            prof = self._cached_profile(req.user_id)
        if prof is not None:
            known, hist, seen, seen_rows = prof.known, prof.hist, prof.seen, prof.seen_rows
        else:
            known, hist, seen = (False, _EMPTY, _EMPTY) if req.user_id is None else self.user_history(req.user_id)
            if len(req_hist):
                hist = np.concatenate([hist[~np.isin(hist, req_hist)], req_hist])
                seen = np.concatenate([seen, req_hist])
            hist = hist[-self.max_history :]
            seen_rows = self.rows_of(seen)
            seen_rows = seen_rows[seen_rows >= 0]
            if req.user_id is not None and not len(req_hist) and self.settings.profile_cache:
                prof = UserProfile(self._overlay_version(req.user_id), known, hist, seen, seen_rows)
        # exclusions -> bundle rows (+ ids for the delta)
        parts, id_parts = [tomb], []
        n_direct = 0
        if f.exclude_seen and len(seen):
            parts.append(seen_rows)
            id_parts.append(seen)
            n_direct += len(seen)
        if f.exclude_post_ids:
            parts.append(self.excluded_id_rows(f.exclude_post_ids))
            id_parts.append(np.array(f.exclude_post_ids, np.int64))
            n_direct += len(f.exclude_post_ids)
        excl_ids = np.concatenate(id_parts) if id_parts else _EMPTY
        excl_authors = set(f.exclude_authors)
        parts += [self.rows_of_author(a) for a in excl_authors]
        excl_all = np.concatenate(parts) if len(parts) > 1 else tomb
        cutoff_us, cutoff_row = NULL_TS, 0
        if f.max_age_seconds is not None:
            cutoff_us = _now_us(f.now) - int(f.max_age_seconds * 1_000_000)
            cutoff_row = self.first_row_at(cutoff_us)
        reason = None
        if req.user_id is not None and not known and len(hist):
            reason = "unknown_user_history_profile"
        return Prepared(
            k=k, user_id=req.user_id, user_known=known, hist=hist, query=None, excl_all=excl_all,
            excl_ids=excl_ids, excl_authors=excl_authors, cutoff_row=cutoff_row, cutoff_us=cutoff_us,
            author_cap=f.author_cap, fallback_reason=reason, delta=delta, n_direct=n_direct, profile=prof,
        )

    def _cached_profile(self, user_id: int) -> UserProfile | None:
        with self._cache_lock:
            hit = self._cache.get(user_id)
            if hit is None or hit.version != self._overlay_version(user_id):
                return None
            self._cache.move_to_end(user_id)
            return hit

    def _cache_put(self, user_id: int, prof: UserProfile) -> None:
        with self._cache_lock:
            self._cache[user_id] = prof
            while len(self._cache) > self.settings.profile_cache:
                self._cache.popitem(last=False)

    def profiles(self, preps: list[Prepared], cacheable: list[bool] | None = None) -> None:
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
        L = self.max_history
        hist_ids = pad_histories([p.hist for p, _ in todo], L)  # (B, L) -1 padded
        hist_lat = self.latents_of(hist_ids.reshape(-1), todo[0][0].delta).reshape(len(todo), L, -1)  # (B, L, Z)
        uids = np.array([p.user_id if p.user_id is not None else -1 for p, _ in todo], np.int64)
        if self._mask_api:
            vecs, has = self.model.user_vectors(hist_lat, hist_ids, uids, return_mask=True)
        else:
            vecs, has = self.model.user_vectors(hist_lat, hist_ids, uids), None
        vecs = np.asarray(vecs, np.float32)
        for i, (p, c) in enumerate(todo):
            q = vecs[i] if (has is None or has[i]) and np.any(vecs[i]) else None
            p.query = q
            if c and q is not None:
                p.profile.query = q
                self._cache_put(p.user_id, p.profile)

    def _overlay_version(self, user_id: int | None) -> int:
        ov = self.overlay.get(user_id) if user_id is not None else None
        return ov.version if ov is not None else 0

    def recommend(self, reqs: list[RecommendRequest], batched_call: bool = False) -> list[dict]:
        """Requests -> [{"items", "fallback", "fallback_reason", "user_known"}] (one FAISS call for
        all personalised requests of a batch call; single calls go through the combiner)."""
        return [r.to_dict() for r in self._recommend_prepared([self.prepare(r) for r in reqs], batched_call)]

    async def recommend_async(self, req: RecommendRequest) -> Reply:
        """One request from the event loop, same answer as `recommend([req])[0]` (as a Reply).

        The common case (a cached user vector, a filter that post-filters a shared search) is
        prepared on the loop and awaits the shared FAISS call (`AsyncCombiner`: concurrent
        requests share it, no request thread), whose executor job also post-filters, explains and
        renders the reply (`_finish_shared`). Everything else (a user vector to compute, the
        popular fallback, a selector or exact search, a short answer to widen) runs `recommend`'s
        path in a worker thread."""
        loop = asyncio.get_running_loop()
        p = self.prepare(req)
        prof = p.profile
        if prof is None or prof.query is None or not self._shared_search_ok(p):
            return (await loop.run_in_executor(None, self._recommend_prepared, [p]))[0]
        p.query = prof.query
        fetch = self._fetch(p)
        reply = await self.async_combiner.search(p.query, fetch, p)
        self.stats.overfetch["post_filter"] += int(fetch > p.k)
        if isinstance(reply, Exception):
            raise reply
        if reply is None:  # short after post-filtering: widen inside FAISS (worker thread)
            hits = await loop.run_in_executor(None, self._selector_search, p, fetch, self._eligible(p))
            reply = self._respond(p, hits)
        self._count_fallbacks([p])
        return reply

    def _finish_shared(self, preps: list[Prepared], hits: list[tuple[np.ndarray, np.ndarray]]) -> list[Reply | Exception | None]:
        """What follows a shared search, for its whole batch (run by the AsyncCombiner right after
        the search): per request post-filter to k (`_finish`), the reply with its "why", rendered
        to JSON. None for a request short of k after post-filtering (its caller widens); the
        exception for a request that failed (it fails alone, not its whole batch)."""
        out: list[Reply | Exception | None] = []
        for p, (scores, rows) in zip(preps, hits):
            try:
                found = self._finish(p, scores, rows, exhaustive=False, post_filter=True)
                reply = None if found is None else self._respond(p, found)
                if reply is not None:
                    reply.to_json(self.version)  # memoised for the route
            except Exception as e:
                reply = e
            out.append(reply)
        return out

    def _recommend_prepared(self, preps: list[Prepared], batched_call: bool = False) -> list[Reply]:
        self.profiles(preps)
        out: list[Reply | None] = [None] * len(preps)
        personal = [i for i, p in enumerate(preps) if p.query is not None]
        for i, p in enumerate(preps):
            if p.query is None:
                p.fallback_reason = "no_history_popular" if not len(p.hist) else "no_profile_popular"
                out[i] = self._popular(p)
        if personal:
            if batched_call and len(personal) > 1:
                results = self._search_many([preps[i] for i in personal])
            else:
                results = [self._search_one(preps[i]) for i in personal]
            for i, items in zip(personal, results):
                out[i] = self._respond(preps[i], items)
        self._count_fallbacks(preps)
        return out  # type: ignore[return-value]

    def _count_fallbacks(self, preps: list[Prepared]) -> None:
        for p in preps:
            if p.fallback_reason:
                self.stats.fallbacks[p.fallback_reason] = self.stats.fallbacks.get(p.fallback_reason, 0) + 1

    # --- search ----------------------------------------------------------------------------

    def _eligible(self, p: Prepared) -> int:
        return max(0, self.n - p.cutoff_row - p.n_excl_in_range)

    def _eligible_min(self, p: Prepared) -> int:
        """A lower bound of `_eligible` that needs no sort (see Prepared.n_excl_in_range_max)."""
        return max(0, self.n - p.cutoff_row - p.n_excl_in_range_max)

    def _fetch(self, p: Prepared) -> int:
        """Over-fetch for post-filtering. Posts excluded by id (the user's seen set, explicit ids)
        sit near the user's profile, so they may all rank first: count them in full. The other
        filters (age, authors, deleted) are independent of the query: divide by the fraction of
        rows they keep. An author cap gets the headroom `_cap_headroom` measures. A short answer is
        widened afterwards (selector search, then exact), so this only sets the common case's cost
        (and the eligible count is its sort-free lower bound)."""
        frac = max(self._eligible_min(p) / max(self.n, 1), 1e-6)
        f = math.ceil((p.k + p.n_direct) / frac * 1.15)
        if p.author_cap:
            f = math.ceil(f * self._cap_headroom(p.author_cap))
        return int(min(max(f, p.k), self.n))

    def _cap_headroom(self, cap: int) -> float:
        """Over-fetch factor for an author cap: 1.1 / (share of post-filtered hits the cap kept in
        recent shared searches with this cap), in [1.1, 4]; CAP_HEADROOM until measured."""
        kept = self._cap_kept.get(cap)
        return CAP_HEADROOM if kept is None else min(4.0, max(1.1, 1.1 / max(kept, 1e-3)))

    def _observe_cap(self, cap: int, kept: float) -> None:
        """Running share of hits an author cap keeps (caps up to CAP_TRACK_MAX; races only blur it)."""
        if cap <= CAP_TRACK_MAX:
            old = self._cap_kept.get(cap)
            self._cap_kept[cap] = kept if old is None else 0.9 * old + 0.1 * kept

    def _search_plain(self, queries: np.ndarray, fetch: int) -> tuple[np.ndarray, np.ndarray]:
        return fi.search(self.bundle.index, queries, fetch, params=self._plain_params)

    def _use_combiner(self, p: Prepared) -> bool:
        """Plain shared search + post-filter when the filter keeps most rows, else selector.
        (Each count test takes the sort-free bound first, the exact count only when that fails.)"""
        if not (self.settings.microbatch and p.cutoff_row <= self.n // 2):
            return False
        most = 4 * p.k + 1000
        return p.n_excl_in_range_max <= most or p.n_excl_in_range <= most

    def _shared_search_ok(self, p: Prepared) -> bool:
        """Too many eligible posts for exact search, and a filter loose enough to post-filter."""
        exact_max = self.settings.exact_max
        return self._use_combiner(p) and (self._eligible_min(p) > exact_max or self._eligible(p) > exact_max)

    def _search_one(self, p: Prepared) -> list[tuple]:
        eligible = self._eligible(p)
        if eligible <= self.settings.exact_max:
            self.stats.overfetch["exact"] += 1
            return self._finish(p, *self._exact(p, eligible), exhaustive=True)
        fetch = self._fetch(p)
        if self._use_combiner(p):
            scores, rows = self.combiner.search(p.query, fetch)
            self.stats.overfetch["post_filter"] += int(fetch > p.k)
            items = self._finish(p, scores, rows, exhaustive=False, post_filter=True)
            if items is not None:
                return items
        return self._selector_search(p, fetch, eligible)

    def _search_many(self, preps: list[Prepared]) -> list[list[tuple]]:
        """Batch call: one FAISS search for every request that can post-filter."""
        out: list = [None] * len(preps)
        shared = [i for i, p in enumerate(preps) if self._shared_search_ok(p)]
        if shared:
            fetch = max(self._fetch(preps[i]) for i in shared)
            scores, rows = self._search_plain(np.stack([preps[i].query for i in shared]), fetch)
            self.stats.batch(len(shared))
            for j, i in enumerate(shared):
                out[i] = self._finish(preps[i], scores[j], rows[j], exhaustive=False, post_filter=True)
        for i, p in enumerate(preps):
            if out[i] is None:
                out[i] = self._search_one(p)
        return out

    def _selector_search(self, p: Prepared, fetch: int, eligible: int) -> list[tuple]:
        """Filters inside FAISS (IDSelector); widen the fetch, then go exact, until k come back."""
        excl_in = p.excl_rows[np.searchsorted(p.excl_rows, p.cutoff_row):]
        sel = fi.selector(p.cutoff_row, self.n, excl_in)
        fetch = max(p.k * (2 if p.author_cap else 1), min(fetch, p.k * 4))
        for _ in range(3):
            self.stats.overfetch["selector_retry"] += 1
            scores, rows = fi.search(self.bundle.index, p.query[None], min(fetch, self.n), self.search_value, sel)
            items = self._finish(p, scores[0], rows[0], exhaustive=False)
            if items is not None:
                return items
            fetch *= 4
            if fetch >= eligible:
                break
        self.stats.overfetch["exact"] += 1
        return self._finish(p, *self._exact(p, eligible), exhaustive=True)

    def _exact(self, p: Prepared, eligible: int) -> tuple[np.ndarray, np.ndarray]:
        """Brute force over rows >= cutoff (contiguous) minus the excluded: top candidates sorted."""
        vec = self.bundle.vectors
        lo = p.cutoff_row
        scores = vec[lo:] @ p.query  # (N - lo,)
        excl = p.excl_rows[np.searchsorted(p.excl_rows, lo):] - lo
        scores[excl] = -np.inf
        m = min(len(scores), max(eligible, 0))
        # an author cap can reach arbitrarily deep: then sort every eligible row
        want = m if p.author_cap else min(m, p.k)
        if want <= 0:
            return np.zeros(0, np.float32), _EMPTY
        top = np.argpartition(-scores, want - 1)[:want] if want < len(scores) else np.arange(len(scores))
        top = top[np.argsort(-scores[top], kind="stable")]
        top = top[np.isfinite(scores[top])]
        return scores[top].astype(np.float32), (top + lo).astype(np.int64)

    def _delta_candidates(self, p: Prepared) -> tuple[np.ndarray, np.ndarray]:
        """(scores (c,), delta indices (c,)) of eligible delta posts, best first."""
        d = p.delta
        if d.n == 0 or p.query is None:
            return np.zeros(0, np.float32), _EMPTY
        ok = d.created >= p.cutoff_us
        if len(p.excl_ids):
            ok &= ~np.isin(d.ids, p.excl_ids)
        if p.excl_authors:
            ok &= ~np.isin(d.authors, np.fromiter(p.excl_authors, np.int64, len(p.excl_authors)))
        idx = np.flatnonzero(ok)
        s = d.vectors[idx] @ p.query
        order = np.argsort(-s, kind="stable")
        return s[order].astype(np.float32), idx[order]

    # Hits: (scores float32 (n,), src int64 (n,)) best first; src >= 0 is a bundle row, src < 0 is
    # delta index -(src + 1) in the request's delta snapshot `p.delta`.

    def _finish(self, p: Prepared, scores: np.ndarray, rows: np.ndarray, exhaustive: bool,
                post_filter: bool = False) -> tuple[np.ndarray, np.ndarray] | None:
        """Merge bundle hits with the delta, apply the author cap, take k. None when short of k
        and a wider search could still find more (the caller widens)."""
        keep = rows >= (p.cutoff_row if post_filter else 0)  # FAISS pads with -1; cutoff_row >= 0
        if post_filter and len(p.excl_all):
            keep[self._flags.isin(rows, p.excl_all)] = False
        scores, src = scores[keep], rows[keep]
        dscores, didx = self._delta_candidates(p)
        if len(didx):
            scores = np.concatenate([scores, dscores])
            src = np.concatenate([src, -(didx + 1)])
            order = np.argsort(-scores, kind="stable")
            scores, src = scores[order], src[order]
        if p.author_cap is not None and len(src):
            scores, src = self._apply_cap(p, scores, src, observe=post_filter)
        if len(src) >= p.k:
            return scores[: p.k], src[: p.k]
        return (scores, src) if exhaustive else None

    def _apply_cap(self, p: Prepared, scores: np.ndarray, src: np.ndarray, observe: bool) -> tuple[np.ndarray, np.ndarray]:
        """Hits (best first) less those over the author cap. A hit only ever goes because of better
        hits before it, so when the first k break no cap they are the answer as they stand: only
        their authors are looked up; otherwise the whole list is capped. `observe`: feed the share
        kept to the over-fetch estimate (1.0 when the first k passed: no headroom was needed)."""
        if _cap_keeps_all(self._authors(p, src[: p.k]), p.author_cap):
            kept = 1.0
        else:
            ok = _cap_mask(self._authors(p, src), p.author_cap)
            kept = float(np.count_nonzero(ok)) / len(ok)
            scores, src = scores[ok], src[ok]
        if observe:
            self._observe_cap(p.author_cap, kept)
        return scores, src

    def _authors(self, p: Prepared, src: np.ndarray) -> np.ndarray:
        if not p.delta.n:
            return self.bundle.author_ids[src]
        out = self.bundle.author_ids[np.maximum(src, 0)]
        if (src < 0).any():
            out = np.where(src >= 0, out, p.delta.authors[np.clip(-src - 1, 0, None)] if p.delta.n else -1)
        return out

    def _pids(self, p: Prepared, src: np.ndarray) -> np.ndarray:
        if not p.delta.n:  # no online posts: every hit is a bundle row
            return self.bundle.post_ids[src]
        out = self.bundle.post_ids[np.maximum(src, 0)]
        if (src < 0).any():
            out = np.where(src >= 0, out, p.delta.ids[np.clip(-src - 1, 0, None)])
        return out

    def _latents(self, p: Prepared, src: np.ndarray) -> np.ndarray:
        if not p.delta.n:
            return np.asarray(self.bundle.latents[src], np.float32)
        out = np.asarray(self.bundle.latents[np.maximum(src, 0)], np.float32)
        neg = src < 0
        if neg.any():
            out[neg] = p.delta.latents[-src[neg] - 1]
        return out

    def _respond(self, p: Prepared, hits: tuple[np.ndarray, np.ndarray]) -> Reply:
        """The reply: hits as post ids and scores, each with its "why" (`_why`)."""
        scores, src = hits
        if len(src) and len(p.hist):
            why, sim = self._why(p, src)
        else:
            why = sim = [None] * len(src)
        return Reply(self._pids(p, src).tolist(), np.asarray(scores, np.float64).tolist(), why, sim,
                     p.fallback_reason, p.user_known)

    def _why(self, p: Prepared, src: np.ndarray) -> tuple[list[int], list[float]]:
        """Per hit (src (K,), non-empty; p.hist non-empty): the history post with the highest latent
        cosine, and that cosine."""
        Ht = p.profile.hist_unit_t if p.profile is not None else None
        if Ht is None:
            H = self.latents_of(p.hist, p.delta)  # (L, Z)
            Ht = np.ascontiguousarray((H / (np.linalg.norm(H, axis=1, keepdims=True) + 1e-12)).T)
            if p.profile is not None:
                p.profile.hist_unit_t = Ht
        lat = self._latents(p, src)  # (K, Z)
        dots = lat @ Ht  # (K, L); the row norm of `lat` does not change the argmax
        best = dots.argmax(1)
        norm = np.sqrt(np.einsum("kz,kz->k", lat, lat)) + 1e-12  # (K,)
        sim = dots.ravel()[best + np.arange(0, dots.size, dots.shape[1])] / norm  # dots[k, best[k]]: one gather
        return p.hist[best].tolist(), sim.astype(np.float64).tolist()

    def _popular(self, p: Prepared) -> Reply:
        """Most-interacted posts (newest first among ties) passing the filters; then new posts."""
        b, d = self.bundle, p.delta
        got_s, got_src = [], []
        counts: dict[int, int] = {}
        need = p.k
        chunk = max(1024, 4 * p.k)
        for s in range(0, self.n, chunk):
            rows = self._pop_order[s : s + chunk]
            ok = rows >= p.cutoff_row
            if len(p.excl_all):
                ok &= ~self._flags.isin(rows, p.excl_all)
            rows = rows[ok]
            if p.author_cap is not None and len(rows):
                rows = rows[_cap_mask(b.author_ids[rows], p.author_cap, counts)]
            rows = rows[:need]
            got_s.append(b.popularity[rows].astype(np.float32))
            got_src.append(rows)
            need -= len(rows)
            if need == 0:
                break
        if need and d.n:
            t = np.argsort(-d.created, kind="stable")
            t = t[d.created[t] >= p.cutoff_us]
            if len(p.excl_ids):
                t = t[~np.isin(d.ids[t], p.excl_ids)]
            if p.excl_authors:
                t = t[~np.isin(d.authors[t], np.fromiter(p.excl_authors, np.int64, len(p.excl_authors)))]
            if p.author_cap is not None:
                t = t[_cap_mask(d.authors[t], p.author_cap, counts)]
            t = t[:need]
            got_s.append(np.zeros(len(t), np.float32))
            got_src.append(-(t + 1))
        scores = np.concatenate(got_s) if got_s else np.zeros(0, np.float32)
        src = np.concatenate(got_src).astype(np.int64) if got_src else _EMPTY
        return self._respond(p, (scores, src))

    # --- similar ---------------------------------------------------------------------------

    def similar(self, post_id: int, k: int) -> list[dict]:
        if not 1 <= k <= self.settings.k_max:
            raise BadInput(f"`k` must be in [1, {self.settings.k_max}], got {k}")
        row = int(self.rows_of(np.array([post_id], np.int64))[0])
        delta = self.delta
        if row >= 0 and not self.is_deleted_row(np.array([row]))[0]:
            q = np.asarray(self.bundle.vectors[row], np.float32)
        else:
            j = delta.find(post_id)
            if j < 0:
                raise NotFound(f"post {post_id} not found (unknown or deleted)")
            q = delta.vectors[j]
        excl = np.concatenate([self.tomb_rows, [row] if row >= 0 else _EMPTY]).astype(np.int64)
        p = Prepared(k=k, user_id=None, user_known=False, hist=_EMPTY, query=q, excl_all=excl,
                     excl_ids=np.array([post_id], np.int64), excl_authors=set(), cutoff_row=0, cutoff_us=NULL_TS, author_cap=None,
                     delta=delta)
        return self._respond(p, self._search_one(p)).items()

    # --- writes (callers hold the app's write lock) ------------------------------------------

    def add_post(self, post: NewPost) -> tuple[bool, list[str]]:
        """Encode and add to the delta; (created, modalities). Idempotent on post_id."""
        if self.exists(post.post_id):
            return False, []
        feats, present = self._post_features(post)
        self.add_encoded(post, feats, present)
        return True, sorted(m for m, v in present.items() if v.any())

    def add_encoded(self, post: NewPost, feats: dict, present: dict) -> None:
        """Add a post whose features were already validated / encoded (`_post_features`)."""
        self._add_encoded(post.post_id, post.author_id, _now_us(post.created_at), feats, present)

    def _add_encoded(self, pid: int, author: int | None, created_us: int, feats: dict, present: dict,
                     latent: np.ndarray | None = None, vector: np.ndarray | None = None) -> None:
        if latent is None:
            latent = np.asarray(self.model.post_latents(feats, present), np.float32).reshape(1, -1)
            authors = np.array([-1 if author is None else author], np.int64)  # a known author adds its ID row
            vector = np.asarray(self.model.post_vectors(latent, np.array([pid], np.int64), authors), np.float32).reshape(1, -1)
        if vector.shape[1] != self.d:
            raise ArtifactError(f"model vector dim {vector.shape[1]} != bundle dim {self.d}")
        d = self.delta
        self.delta = Delta(
            ids=np.append(d.ids, np.int64(pid)),
            vectors=np.concatenate([d.vectors, vector.reshape(1, -1)]),
            latents=np.concatenate([d.latents, latent.reshape(1, -1)]),
            authors=np.append(d.authors, np.int64(-1 if author is None else author)),
            created=np.append(d.created, np.int64(created_us)),
            features=d.features + ((feats, present),),
        )

    def _post_features(self, post: NewPost) -> tuple[dict, dict]:
        mods = dict(getattr(self.model, "modalities", {}))
        media = [post.text, post.image_path, post.video_path]
        if post.features is not None and any(v is not None for v in media):
            raise BadInput("give either `features` or media (`text` / `image_path` / `video_path`), not both")
        if post.features is not None:
            if not post.features:
                raise BadInput(f"`features` must map at least one modality of {sorted(mods)} to a vector")
            feats, present = {}, {}
            for m, vec in post.features.items():
                if m not in mods:
                    raise BadInput(f"`features` has unknown modality {m!r}; this model takes {mods}")
                if len(vec) != mods[m]:
                    raise BadInput(f"`features[{m!r}]` must have {mods[m]} values, got {len(vec)}")
                x = np.asarray(vec, np.float32).reshape(1, -1)
                if not np.isfinite(x).all():
                    raise BadInput(f"`features[{m!r}]` must be finite numbers")
                feats[m], present[m] = x, np.ones(1, bool)
            return feats, present
        if all(v is None for v in media):
            raise BadInput("a new post needs `features` ({modality: vector}) or media (`text`, `image_path`, `video_path`)")
        return self._encode_media(post)

    def _encode_media(self, post: NewPost) -> tuple[dict, dict]:
        s = self.settings
        paths = {}
        for name in ("image_path", "video_path"):
            v = getattr(post, name)
            if v is None:
                continue
            if not s.allow_media_paths:
                raise BadInput("media paths are disabled on this server (RECSYS_ALLOW_MEDIA_PATHS=false); send `features`")
            path = Path(v).resolve()
            if s.media_root is not None and not path.is_relative_to(Path(s.media_root).resolve()):
                raise BadInput(f"`{name}` must lie under {s.media_root}, got {v}")
            if not path.is_file():
                raise BadInput(f"`{name}` must be an existing file on the server, got {v}")
            paths[name] = path
        from recsys.encode import encode_post_content  # lazy: heavy encoders

        enc = encode_post_content(post.text, paths.get("image_path"), paths.get("video_path"), self._get_encoders())
        mods = dict(getattr(self.model, "modalities", {}))
        feats, present = {}, {}
        for m, (vec, ok) in enc.items():
            if m in mods:
                feats[m] = np.asarray(vec, np.float32).reshape(1, -1)
                present[m] = np.array([bool(ok)])
        if not any(v.any() for v in present.values()):
            raise BadInput(f"none of the given media could be encoded for the model's modalities {sorted(mods)}")
        return feats, present

    def _get_encoders(self) -> dict:
        """Encoders with the specs the run's feature store was built with (loaded once, lazily)."""
        if self._encoders is None:
            from recsys.encode import MODALITIES, build_encoders

            mods = [m for m in getattr(self.model, "modalities", {}) if m in MODALITIES]
            if not mods:
                raise BadInput(f"this model's modalities {sorted(self.model.modalities)} cannot be encoded from media; send `features`")
            specs = {m: v for m, v in (getattr(self.model, "encoders", {}) or {}).items() if m in mods and v}
            self._encoders = build_encoders(specs, mods)
        return self._encoders

    def delete_post(self, post_id: int) -> None:
        j = self.delta.find(post_id)
        if j >= 0:
            d = self.delta
            keep = np.arange(d.n) != j
            self.delta = Delta(ids=d.ids[keep], vectors=d.vectors[keep], latents=d.latents[keep],
                               authors=d.authors[keep], created=d.created[keep],
                               features=tuple(f for i, f in enumerate(d.features) if i != j))
            return
        row = int(self.rows_of(np.array([post_id], np.int64))[0])
        if row < 0 or self.is_deleted_row(np.array([row]))[0]:
            raise NotFound(f"post {post_id} not found (unknown or already deleted)")
        self.tomb_rows = np.union1d(self.tomb_rows, np.array([row], np.int64))

    def add_events(self, events: list) -> int:
        """Validate all, then apply all (nothing half-applied). Returns the number of users touched."""
        pids = np.array([e.post_id for e in events], np.int64)
        if len(pids):
            unknown = pids[~self.known_mask(pids)]
            if len(unknown):
                raise BadInput(f"events must reference known post ids; {len(unknown)} unknown, e.g. {unknown[:5].tolist()}")
        ordered = sorted(enumerate(events), key=lambda t: (t[1].ts is None, t[1].ts or dt.datetime.min.replace(tzinfo=dt.UTC), t[0]))
        touched = set()
        keep = self.settings.user_history_keep
        with self._overlay_lock:
            for _, e in ordered:
                ov = self.overlay.setdefault(e.user_id, UserOverlay())
                if e.post_id in ov.history:
                    ov.history.remove(e.post_id)
                ov.history.append(e.post_id)
                del ov.history[:-keep]
                ov.seen.add(e.post_id)
                touched.add(e.user_id)
            for u in touched:
                self.overlay[u].version += 1
        return len(touched)

    def absorb(self, old: ServingState) -> None:
        """Carry the online state of `old` (the previous bundle) over to this one before a swap."""
        same_model = getattr(old.model, "fingerprint", None) == getattr(self.model, "fingerprint", None)
        od = old.delta
        for j in range(od.n):
            pid = int(od.ids[j])
            if self.rows_of(np.array([pid]))[0] >= 0:
                continue  # the new bundle has it
            feats, present = od.features[j]
            try:
                if same_model and od.latents.shape[1] == self.bundle.latents.shape[1]:
                    self._add_encoded(pid, int(od.authors[j]), int(od.created[j]), feats, present,
                                      od.latents[j : j + 1], od.vectors[j : j + 1])
                else:
                    self._add_encoded(pid, int(od.authors[j]), int(od.created[j]), feats, present)
            except Exception as e:  # a post the new model cannot encode is dropped, loudly
                logger.warning("reload: dropping online post %d (%s)", pid, e)
        deleted_ids = old.bundle.post_ids[old.tomb_rows]
        rows = self.rows_of(deleted_ids)
        self.tomb_rows = np.unique(rows[rows >= 0]).astype(np.int64)
        with old._overlay_lock:
            self.overlay = {u: UserOverlay(list(o.history), set(o.seen), o.version + 1) for u, o in old.overlay.items()}


def _cap_mask(authors: np.ndarray, cap: int, counts: dict[int, int] | None = None) -> np.ndarray:
    """Keep-mask over a best-first list: at most `cap` per author (unknown authors < 0 uncapped).
    `counts` carries per-author totals across calls (chunked scans) and is updated."""
    a = np.asarray(authors, np.int64)
    n = len(a)
    if n == 0:
        return np.zeros(0, bool)
    if counts is None and _cap_keeps_all(a, cap):  # common case first
        return np.ones(n, bool)
    order = np.argsort(a, kind="stable")
    sa = a[order]
    new_group = np.empty(n, bool)
    new_group[0] = True
    np.not_equal(sa[1:], sa[:-1], out=new_group[1:])
    start = np.flatnonzero(new_group)
    idx = np.arange(n)
    rank = np.empty(n, np.int64)
    rank[order] = idx - start[np.cumsum(new_group) - 1]  # 0 for an author's first post in the list...
    if counts:
        rank += np.fromiter((counts.get(int(x), 0) for x in a), np.int64, n)
    keep = (rank < cap) | (a < 0)
    if counts is not None:
        for x in a[keep & (a >= 0)].tolist():
            counts[x] = counts.get(x, 0) + 1
    return keep


def _cap_keeps_all(authors: np.ndarray, cap: int) -> bool:
    """True when no known author (>= 0) has more than `cap` posts in `authors` (int64 (n,)):
    one sort and one shifted compare (the second test only runs on a repeat)."""
    if len(authors) <= cap:
        return True
    s = np.sort(authors)
    same = s[cap:] == s[:-cap]  # cap + 1 equal values in a row
    return not np.count_nonzero(same) or not np.count_nonzero(same & (s[cap:] >= 0))


def _sorted_unique(x: np.ndarray) -> np.ndarray:
    """np.unique for the small int arrays of one request (sort + neighbour compare: ~5x faster
    than numpy's hash-based unique on a few hundred ids)."""
    if len(x) < 2:
        return x.copy()
    s = np.sort(x)
    first = np.empty(len(s), bool)
    first[0] = True
    np.not_equal(s[1:], s[:-1], out=first[1:])
    return s[first]


class RowFlags:
    """Membership of candidate rows in a request's excluded rows, by flags over all N rows.

    `isin(rows, excluded)` marks the excluded rows in a zeroed bool (N,) array, reads the flags of
    the candidates and clears the marks again: O(excluded + candidates) with three numpy calls,
    where a sorted search costs a binary search per candidate. Concurrent callers (event loop,
    worker threads) each take their own array from a free list (list.pop / append are atomic), so
    there are as many 1 MB-per-million-rows arrays as callers ever ran at once."""

    def __init__(self, n: int) -> None:
        self.n = n
        self._free: list[np.ndarray] = []

    def isin(self, rows: np.ndarray, excluded: np.ndarray) -> np.ndarray:
        """bool (len(rows),): rows (int64, in [0, N); a negative row reads some row's flag, so the
        caller drops those itself) that are in `excluded` (int64 rows in [0, N))."""
        try:
            flags = self._free.pop()
        except IndexError:
            flags = np.zeros(self.n, bool)
        try:
            flags[excluded] = True
            return flags[rows]
        finally:
            flags[excluded] = False
            self._free.append(flags)


def _takes_mask(model: Any) -> bool:
    import inspect

    try:
        return "return_mask" in inspect.signature(model.user_vectors).parameters
    except (TypeError, ValueError):
        return False


def load_model(bundle: B.Bundle) -> Any:
    """The bundle's copy of the trained run (recsys.runs.load_run)."""
    if bundle.run_dir is None:
        raise ArtifactError(f"bundle {bundle.path} has no {B.RUN_DIR}/ (the model that computes user vectors)")
    from recsys.runs import load_run

    run = load_run(bundle.run_dir)
    if int(run.dim) != int(bundle.manifest["dim"]):
        raise ArtifactError(f"bundle {bundle.path}: model dim {run.dim} != index dim {bundle.manifest['dim']}")
    if int(run.latent_dim) != int(bundle.manifest["latent_dim"]):
        raise ArtifactError(f"bundle {bundle.path}: model latent dim {run.latent_dim} != bundle latent dim {bundle.manifest['latent_dim']}")
    return run
