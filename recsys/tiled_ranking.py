"""Top-K of inner-product scores without a (B, N) score block: column tiles that stay in cache.

    vals, idx, secs = factor_topk(q, pt, masked, k)
    # q float32 (B, d) user rows, pt float32 (d, N) post columns, masked csr (B, N) posts to leave
    # out -> vals float32 (B, k), idx int64 (B, k), ordered (score desc, column asc);
    # secs = {"score_s", "mask_s", "topk_s"}: the call's wall time split in the workers' proportions

At a million posts a (B, N) float32 block leaves every cache, so each pass over it (the product,
the mask, the selection) runs at memory speed, and a fresh block per chunk costs a page fault per
4 KiB (at 100k users x 1M posts: 122M minor faults, 216 s of system time, 532 s in all). Here the
product is taken `tile` columns at a time into one reused (B, tile) buffer; the tile is masked,
and only its entries above the row's running k-th best become candidates (strictly above: an
earlier column wins a tie). The first tile's threshold is its own k-th largest value (>=, so
ties at its cut enter too). The candidates are few (about k / t in the t-th tile), so they are
kept and merged into the running top-k every MERGE_EVERY candidates per row, not per tile (the
threshold between merges is a stale, lower one: a superset of what a merge per tile would take).

The rows are split over `workers` threads (default: torch's thread count), each with one thread
of its own for everything: the products through numpy's OpenBLAS (1.4x torch's MKL for this
sgemm on the AMD EPYC here: 75 vs 52 GFLOP/s per core, inner dimension 64) and the selection
through torch. One worker per core beats one multi-threaded loop, whose OpenMP and BLAS threads
spin against each other between the short calls of a tile.

The answer is `recsys.evaluation`'s canonical top-k of the full masked block: (score desc,
column asc), exact ties included (tests/unit/test_tiled_ranking.py). A row with fewer than k
finite unmasked scores ends with -inf values (columns then arbitrary): callers rank such rows on
the full path, which orders -inf slots by column. The products are OpenBLAS's, so a score can
differ in its last bit from a torch product of the same factors (and two near-equal posts swap).
"""

from __future__ import annotations

import math
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import scipy.sparse as sp
import torch
from threadpoolctl import ThreadpoolController

# One worker's (B, tile) float32 block this many bytes: the tiles and their post columns stay in
# the L2/L3 caches of a 2-core EPYC (1 MiB L2 per core, 16 MiB L3).
TILE_BYTES = 4 << 20
MIN_TILE = 256
GROUP = 64  # columns per group of the candidate pre-filter (a tile is a whole number of groups)
MERGE_EVERY = 8  # pending candidates per row (on average) that trigger a merge
MIN_ROWS_PER_WORKER = 32  # rows per worker thread at least (default `workers`)
_CONTROLLER: ThreadpoolController | None = None


def _blas() -> ThreadpoolController:
    """The process's BLAS pools (found once: a lookup costs ~1 ms)."""
    global _CONTROLLER
    if _CONTROLLER is None:
        _CONTROLLER = ThreadpoolController()
    return _CONTROLLER


def tile_width(b: int, n: int, tile_bytes: int | None = None) -> int:
    """Columns per tile for b user rows: a (b, tile) float32 block of about `tile_bytes`
    (default TILE_BYTES), a whole number of groups."""
    return max(MIN_TILE, min(n, (tile_bytes or TILE_BYTES) // max(4 * b, 1)) // GROUP * GROUP)


def factor_topk(
    q: torch.Tensor, pt: torch.Tensor, masked: sp.csr_matrix, k: int, tile: int | None = None, workers: int | None = None
) -> tuple[torch.Tensor, torch.Tensor, dict[str, float]]:
    """Canonical top-k of q @ pt with the `masked` (row, column) entries left out (module doc).
    `workers`: threads over the rows (None: torch's thread count, at least MIN_ROWS_PER_WORKER
    rows each)."""
    b, n = q.shape[0], pt.shape[1]
    if k > n:
        raise ValueError(f"k = {k} exceeds the {n} columns")
    workers = max(1, min(workers, b) if workers else min(torch.get_num_threads(), b // MIN_ROWS_PER_WORKER))
    qn = q.detach().to(torch.float32).contiguous().numpy()
    ptn = pt.detach().to(torch.float32).numpy()
    bounds = np.linspace(0, b, workers + 1).astype(np.int64)
    t0 = time.perf_counter()
    threads = torch.get_num_threads()

    def run(w: int):
        lo, hi = bounds[w], bounds[w + 1]
        torch.set_num_threads(1)  # this thread's OpenMP team (set per thread)
        return _rows_topk(qn[lo:hi], ptn, masked[lo:hi], k, tile)

    try:
        with _blas().limit(limits=1, user_api="blas"):
            if workers == 1:
                parts = [run(0)]
            else:
                with ThreadPoolExecutor(workers) as pool:
                    parts = list(pool.map(run, range(workers)))
    finally:
        torch.set_num_threads(threads)
    wall = time.perf_counter() - t0
    spent = {key: sum(p[2][key] for p in parts) for key in ("score_s", "mask_s", "topk_s")}
    total = sum(spent.values()) or 1.0
    secs = {key: wall * v / total for key, v in spent.items()}
    return torch.cat([p[0] for p in parts]), torch.cat([p[1] for p in parts]), secs


def _rows_topk(q: np.ndarray, pt: np.ndarray, masked: sp.csr_matrix, k: int, tile: int | None):
    """factor_topk on one thread: q (B, d), pt (d, N) numpy float32."""
    b, n = q.shape[0], pt.shape[1]
    tile = tile or tile_width(b, n)
    # masked entries by column, and where each tile's entries start
    m_rows = np.repeat(np.arange(b, dtype=np.int64), np.diff(masked.indptr))
    m_cols = masked.indices.astype(np.int64)
    order = np.argsort(m_cols, kind="stable")
    m_rows_t, m_cols_t = torch.from_numpy(m_rows[order]), torch.from_numpy(m_cols[order])
    starts = np.searchsorted(m_cols[order], np.arange(0, n + tile, tile))
    buf = np.empty(b * tile, dtype=np.float32)
    best_v = torch.full((b, k), -math.inf)
    best_i = torch.full((b, k), n, dtype=torch.int64)
    pending: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]] = []  # (rows, columns, values)
    n_pending = 0
    t_score = t_mask = t_top = 0.0
    for t, lo in enumerate(range(0, n, tile)):
        hi = min(lo + tile, n)
        c0 = time.perf_counter()
        sn = buf[: b * (hi - lo)].reshape(b, hi - lo)  # contiguous, also for the last, narrower tile
        np.matmul(q, pt[:, lo:hi], out=sn)
        s = torch.from_numpy(sn)
        c1 = time.perf_counter()
        a, z = starts[t], starts[t + 1]
        if z > a:
            s[m_rows_t[a:z], m_cols_t[a:z] - lo] = -math.inf
        c2 = time.perf_counter()
        if t == 0:  # every canonical top-k entry of the tile is >= its k-th largest value
            kk = min(k, hi - lo)
            thr = torch.topk(s, kk, dim=1, sorted=False).values.amin(1, keepdim=True)
            r, c = _above(s, thr, strict=False)
        else:  # strictly above the (possibly stale) running k-th best: an earlier column wins a tie
            r, c = _above(s, best_v[:, k - 1 :], strict=True)
        if len(r):
            pending.append((r, c + lo, s[r, c]))
            n_pending += len(r)
        if pending and (t == 0 or hi == n or n_pending >= MERGE_EVERY * b):
            best_v, best_i = _merge(best_v, best_i, pending, n)
            pending, n_pending = [], 0
        t_score += c1 - c0
        t_mask += c2 - c1
        t_top += time.perf_counter() - c2
    return best_v, best_i, {"score_s": t_score, "mask_s": t_mask, "topk_s": t_top}


def _above(s: torch.Tensor, thr: torch.Tensor, strict: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """(rows, columns) of the entries of s (B, w) above thr (B, 1), row-major (columns ascending
    per row). Groups of GROUP columns whose maximum does not pass are skipped: one reduction over
    the tile instead of a (B, w) mask and two passes of nonzero over it (3x faster measured on
    a (256, 8192) tile with ~15 candidates per row)."""
    cmp = torch.gt if strict else torch.ge
    b, w = s.shape
    if w % GROUP:
        return torch.nonzero(cmp(s, thr), as_tuple=True)
    blocks = s.view(b, w // GROUP, GROUP)
    r, g = torch.nonzero(cmp(blocks.amax(2), thr), as_tuple=True)  # groups that hold a candidate
    pr, pc = torch.nonzero(cmp(blocks[r, g], thr[r]), as_tuple=True)
    return r[pr], g[pr] * GROUP + pc


def _merge(best_v: torch.Tensor, best_i: torch.Tensor, pending: list, n: int):
    """Merge candidates (tiles in column order, each row-major) into the running lists (B, k) of
    the rows that have any. The running lists hold lower columns than the candidates, each
    ordered (value desc, column asc); a stable sort by row puts each row's candidates in column
    order, so a stable sort by value of [running, candidates] keeps ties in column order."""
    k = best_v.shape[1]
    r, c, v = (torch.cat(x) for x in zip(*pending))
    if len(pending) > 1:
        r, o = torch.sort(r, stable=True)
        c, v = c[o], v[o]
    rows, cnt = torch.unique_consecutive(r, return_counts=True)  # (S,) rows with candidates
    width = int(cnt.max())
    start = torch.cumsum(cnt, 0) - cnt
    slot = torch.repeat_interleave(torch.arange(len(rows)), cnt)  # (C,) candidate -> row slot
    pos = torch.arange(len(r)) - start[slot]
    cv = torch.full((len(rows), width), -math.inf)
    cc = torch.full((len(rows), width), n, dtype=torch.int64)
    cv[slot, pos] = v
    cc[slot, pos] = c
    vals, o = torch.sort(torch.cat([best_v[rows], cv], 1), dim=1, descending=True, stable=True)
    best_v[rows] = vals[:, :k]
    best_i[rows] = torch.gather(torch.cat([best_i[rows], cc], 1), 1, o[:, :k])
    return best_v, best_i
