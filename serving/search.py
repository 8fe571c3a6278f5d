"""Filtered top-k search over the bundle's FAISS index plus the online delta.

Filters run inside the search: exclusions (seen, posts, authors, deleted) become an IDSelector,
the age filter an IDSelectorRange (rows are ordered by created_at). Concurrent plain requests share
one FAISS call (serving.batcher) with over-fetch + exact post-filtering; a request that comes back
short (or is very selective) re-searches with the selector, then exactly over the eligible rows,
so the response has k posts whenever k eligible posts exist.

Hits: (scores float32 (n,), src int64 (n,)) best first; src >= 0 is a bundle row, src < 0 is
delta index -(src + 1) in the request's delta snapshot `p.delta`.

Shapes: N bundle posts, m delta posts, d retrieval dim, K top-k.
"""

from __future__ import annotations

import math

import numpy as np

from index import faiss_index as fi
from serving.batcher import Combiner
from serving.catalogue import EMPTY, Catalogue
from serving.requests import Prepared
from serving.settings import Settings

CAP_HEADROOM = 1.5  # over-fetch for an author cap before the search has measured what the cap drops
CAP_TRACK_MAX = 64  # caps above this keep CAP_HEADROOM (they rarely drop anything)


class Stats:
    """Counters the metrics module reads (plain ints; races only blur the counts)."""

    def __init__(self) -> None:
        self.overfetch: dict[str, int] = {"post_filter": 0, "selector_retry": 0, "exact": 0}
        self.fallbacks: dict[str, int] = {}
        self.on_batch = lambda n: None  # the app points this at a histogram

    def batch(self, n: int) -> None:
        self.on_batch(n)


class Search:
    """Fetch sizing, the three strategies (shared search + post-filter, selector, exact), the
    merge with the delta, the author cap and the popular fallback, for one catalogue."""

    def __init__(self, cat: Catalogue, settings: Settings, stats: Stats) -> None:
        self.cat, self.settings, self.stats = cat, settings, stats
        self.bundle, self.n = cat.bundle, cat.n
        self.search_value = cat.bundle.manifest.get("search", {}).get("value")
        self._plain_params = fi.make_params(cat.bundle.index, self.search_value)  # reused by every plain search
        self._cap_kept: dict[int, float] = {}  # author cap -> running share of hits it keeps (fetch sizing)
        self.flags = RowFlags(self.n)  # excluded-row tests of post-filtered candidates
        self.combiner = Combiner(self.search_plain, settings.microbatch_max, on_batch=lambda n: self.stats.batch(n),
                                 max_inflight=settings.microbatch_inflight)

    # --- sizing ----------------------------------------------------------------------------

    def eligible(self, p: Prepared) -> int:
        return max(0, self.n - p.cutoff_row - p.n_excl_in_range)

    def eligible_min(self, p: Prepared) -> int:
        """A lower bound of `eligible` that needs no sort (see Prepared.n_excl_in_range_max)."""
        return max(0, self.n - p.cutoff_row - p.n_excl_in_range_max)

    def fetch(self, p: Prepared) -> int:
        """Over-fetch for post-filtering. Posts excluded by id (the user's seen set, explicit ids)
        sit near the user's profile, so they may all rank first: count them in full. The other
        filters (age, authors, deleted) are independent of the query: divide by the fraction of
        rows they keep. An author cap gets the headroom `cap_headroom` measures. A short answer is
        widened afterwards (selector search, then exact), so this only sets the common case's cost
        (and the eligible count is its sort-free lower bound)."""
        frac = max(self.eligible_min(p) / max(self.n, 1), 1e-6)
        f = math.ceil((p.k + p.n_direct) / frac * 1.15)
        if p.author_cap:
            f = math.ceil(f * self.cap_headroom(p.author_cap))
        return int(min(max(f, p.k), self.n))

    def cap_headroom(self, cap: int) -> float:
        """Over-fetch factor for an author cap: 1.1 / (share of post-filtered hits the cap kept in
        recent shared searches with this cap), in [1.1, 4]; CAP_HEADROOM until measured."""
        kept = self._cap_kept.get(cap)
        return CAP_HEADROOM if kept is None else min(4.0, max(1.1, 1.1 / max(kept, 1e-3)))

    def observe_cap(self, cap: int, kept: float) -> None:
        """Running share of hits an author cap keeps (caps up to CAP_TRACK_MAX; races only blur it)."""
        if cap <= CAP_TRACK_MAX:
            old = self._cap_kept.get(cap)
            self._cap_kept[cap] = kept if old is None else 0.9 * old + 0.1 * kept

    # --- strategies ------------------------------------------------------------------------

    def search_plain(self, queries: np.ndarray, fetch: int) -> tuple[np.ndarray, np.ndarray]:
        """Unfiltered FAISS search: queries float32 (B, d) -> (scores (B, fetch), rows (B, fetch), -1 padded)."""
        return fi.search(self.bundle.index, queries, fetch, params=self._plain_params)

    def use_combiner(self, p: Prepared) -> bool:
        """Plain shared search + post-filter when the filter keeps most rows, else selector.
        (Each count test takes the sort-free bound first, the exact count only when that fails.)"""
        if not (self.settings.microbatch and p.cutoff_row <= self.n // 2):
            return False
        most = 4 * p.k + 1000
        return p.n_excl_in_range_max <= most or p.n_excl_in_range <= most

    def shared_ok(self, p: Prepared) -> bool:
        """Too many eligible posts for exact search, and a filter loose enough to post-filter."""
        exact_max = self.settings.exact_max
        return self.use_combiner(p) and (self.eligible_min(p) > exact_max or self.eligible(p) > exact_max)

    def search_one(self, p: Prepared) -> tuple[np.ndarray, np.ndarray]:
        eligible = self.eligible(p)
        if eligible <= self.settings.exact_max:
            self.stats.overfetch["exact"] += 1
            return self.finish(p, *self.exact(p, eligible), exhaustive=True)
        fetch = self.fetch(p)
        if self.use_combiner(p):
            scores, rows = self.combiner.search(p.query, fetch)
            self.stats.overfetch["post_filter"] += int(fetch > p.k)
            items = self.finish(p, scores, rows, exhaustive=False, post_filter=True)
            if items is not None:
                return items
        return self.selector_search(p, fetch, eligible)

    def search_many(self, preps: list[Prepared]) -> list[tuple[np.ndarray, np.ndarray]]:
        """Batch call: one FAISS search for every request that can post-filter."""
        out: list = [None] * len(preps)
        shared = [i for i, p in enumerate(preps) if self.shared_ok(p)]
        if shared:
            fetch = max(self.fetch(preps[i]) for i in shared)
            scores, rows = self.search_plain(np.stack([preps[i].query for i in shared]), fetch)
            self.stats.batch(len(shared))
            for j, i in enumerate(shared):
                out[i] = self.finish(preps[i], scores[j], rows[j], exhaustive=False, post_filter=True)
        for i, p in enumerate(preps):
            if out[i] is None:
                out[i] = self.search_one(p)
        return out

    def selector_search(self, p: Prepared, fetch: int, eligible: int) -> tuple[np.ndarray, np.ndarray]:
        """Filters inside FAISS (IDSelector); widen the fetch, then go exact, until k come back."""
        excl_in = p.excl_rows[np.searchsorted(p.excl_rows, p.cutoff_row):]
        sel = fi.selector(p.cutoff_row, self.n, excl_in)
        fetch = max(p.k * (2 if p.author_cap else 1), min(fetch, p.k * 4))
        for _ in range(3):
            self.stats.overfetch["selector_retry"] += 1
            scores, rows = fi.search(self.bundle.index, p.query[None], min(fetch, self.n), self.search_value, sel)
            items = self.finish(p, scores[0], rows[0], exhaustive=False)
            if items is not None:
                return items
            fetch *= 4
            if fetch >= eligible:
                break
        self.stats.overfetch["exact"] += 1
        return self.finish(p, *self.exact(p, eligible), exhaustive=True)

    def exact(self, p: Prepared, eligible: int) -> tuple[np.ndarray, np.ndarray]:
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
            return np.zeros(0, np.float32), EMPTY
        top = np.argpartition(-scores, want - 1)[:want] if want < len(scores) else np.arange(len(scores))
        top = top[np.argsort(-scores[top], kind="stable")]
        top = top[np.isfinite(scores[top])]
        return scores[top].astype(np.float32), (top + lo).astype(np.int64)

    def delta_candidates(self, p: Prepared) -> tuple[np.ndarray, np.ndarray]:
        """(scores (c,), delta indices (c,)) of eligible delta posts, best first."""
        d = p.delta
        if d.n == 0 or p.query is None:
            return np.zeros(0, np.float32), EMPTY
        ok = d.created >= p.cutoff_us
        if len(p.excl_ids):
            ok &= ~np.isin(d.ids, p.excl_ids)
        if p.excl_authors:
            ok &= ~np.isin(d.authors, np.fromiter(p.excl_authors, np.int64, len(p.excl_authors)))
        idx = np.flatnonzero(ok)
        s = d.vectors[idx] @ p.query
        order = np.argsort(-s, kind="stable")
        return s[order].astype(np.float32), idx[order]

    def finish(self, p: Prepared, scores: np.ndarray, rows: np.ndarray, exhaustive: bool,
               post_filter: bool = False) -> tuple[np.ndarray, np.ndarray] | None:
        """Merge bundle hits with the delta, apply the author cap, take k. None when short of k
        and a wider search could still find more (the caller widens)."""
        keep = rows >= (p.cutoff_row if post_filter else 0)  # FAISS pads with -1; cutoff_row >= 0
        if post_filter and len(p.excl_all):
            keep[self.flags.isin(rows, p.excl_all)] = False
        scores, src = scores[keep], rows[keep]
        dscores, didx = self.delta_candidates(p)
        if len(didx):
            scores = np.concatenate([scores, dscores])
            src = np.concatenate([src, -(didx + 1)])
            order = np.argsort(-scores, kind="stable")
            scores, src = scores[order], src[order]
        if p.author_cap is not None and len(src):
            scores, src = self.apply_cap(p, scores, src, observe=post_filter)
        if len(src) >= p.k:
            return scores[: p.k], src[: p.k]
        return (scores, src) if exhaustive else None

    def apply_cap(self, p: Prepared, scores: np.ndarray, src: np.ndarray, observe: bool) -> tuple[np.ndarray, np.ndarray]:
        """Hits (best first) less those over the author cap. A hit only ever goes because of better
        hits before it, so when the first k break no cap they are the answer as they stand: only
        their authors are looked up; otherwise the whole list is capped. `observe`: feed the share
        kept to the over-fetch estimate (1.0 when the first k passed: no headroom was needed)."""
        if cap_keeps_all(self.authors(p, src[: p.k]), p.author_cap):
            kept = 1.0
        else:
            ok = cap_mask(self.authors(p, src), p.author_cap)
            kept = float(np.count_nonzero(ok)) / len(ok)
            scores, src = scores[ok], src[ok]
        if observe:
            self.observe_cap(p.author_cap, kept)
        return scores, src

    def authors(self, p: Prepared, src: np.ndarray) -> np.ndarray:
        """Author ids (int64) of hits `src` (bundle rows or delta indices)."""
        if not p.delta.n:
            return self.bundle.author_ids[src]
        out = self.bundle.author_ids[np.maximum(src, 0)]
        if (src < 0).any():
            out = np.where(src >= 0, out, p.delta.authors[np.clip(-src - 1, 0, None)] if p.delta.n else -1)
        return out

    def popular(self, p: Prepared) -> tuple[np.ndarray, np.ndarray]:
        """Most-interacted posts (newest first among ties) passing the filters; then new posts."""
        b, d = self.bundle, p.delta
        got_s, got_src = [], []
        counts: dict[int, int] = {}
        need = p.k
        chunk = max(1024, 4 * p.k)
        for s in range(0, self.n, chunk):
            rows = self.cat.pop_order[s : s + chunk]
            ok = rows >= p.cutoff_row
            if len(p.excl_all):
                ok &= ~self.flags.isin(rows, p.excl_all)
            rows = rows[ok]
            if p.author_cap is not None and len(rows):
                rows = rows[cap_mask(b.author_ids[rows], p.author_cap, counts)]
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
                t = t[cap_mask(d.authors[t], p.author_cap, counts)]
            t = t[:need]
            got_s.append(np.zeros(len(t), np.float32))
            got_src.append(-(t + 1))
        scores = np.concatenate(got_s) if got_s else np.zeros(0, np.float32)
        src = np.concatenate(got_src).astype(np.int64) if got_src else EMPTY
        return scores, src


def cap_mask(authors: np.ndarray, cap: int, counts: dict[int, int] | None = None) -> np.ndarray:
    """Keep-mask over a best-first list: at most `cap` per author (unknown authors < 0 uncapped).
    `counts` carries per-author totals across calls (chunked scans) and is updated."""
    a = np.asarray(authors, np.int64)
    n = len(a)
    if n == 0:
        return np.zeros(0, bool)
    if counts is None and cap_keeps_all(a, cap):  # common case first
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


def cap_keeps_all(authors: np.ndarray, cap: int) -> bool:
    """True when no known author (>= 0) has more than `cap` posts in `authors` (int64 (n,)):
    one sort and one shifted compare (the second test only runs on a repeat)."""
    if len(authors) <= cap:
        return True
    s = np.sort(authors)
    same = s[cap:] == s[:-cap]  # cap + 1 equal values in a row
    return not np.count_nonzero(same) or not np.count_nonzero(same & (s[cap:] >= 0))


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

    @property
    def arrays(self) -> list[np.ndarray]:
        """The flag arrays not in use now (each all False between calls)."""
        return list(self._free)

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
