"""Build and search FAISS inner-product indexes (FAISS lives in `index/` only).

Labels are bundle *row numbers* (0..N-1), not post ids: `ids.npy` maps a row to its post id. Rows
are ordered by `created_at`, so an age filter is one `IDSelectorRange` and every other filter is a
small `IDSelectorBatch`; both run inside the search (see `selector`).

Shapes: N posts, d vector dim, Q queries, K top-k.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from dataclasses import dataclass
from typing import Any

import faiss
import numpy as np

from recsys.errors import ConfigError

logger = logging.getLogger(__name__)

EXACT_MAX = 100_000  # catalogues up to this size get an exact IndexFlatIP
METRIC = "inner_product"
REFINE_K_FACTOR = 4


def choose_factory(n: int, d: int) -> str:
    """Exact below EXACT_MAX posts; IVF with nlist ~ 4 sqrt(N) (a power of two) above."""
    if n <= EXACT_MAX:
        return "Flat"
    nlist = 2 ** int(round(math.log2(4 * math.sqrt(n))))
    return f"IVF{nlist},Flat"


def has_gpu() -> bool:
    """True when this faiss build has GPU support and sees at least one GPU."""
    try:
        return hasattr(faiss, "index_cpu_to_all_gpus") and faiss.get_num_gpus() > 0
    except Exception:  # CPU builds may lack get_num_gpus
        return False


def build_index(vectors: np.ndarray, factory: str, seed: int = 0, train_max: int | None = None) -> faiss.Index:
    """vectors float32 (N, d) -> a trained, filled inner-product index whose labels are rows 0..N-1.

    IVF training uses at most `train_max` rows (default 64 per list), sampled with `seed`. Trains
    and adds on all GPUs when faiss has them, then moves the index back to CPU (same layout)."""
    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    n, d = vectors.shape
    try:
        index = faiss.index_factory(d, factory, faiss.METRIC_INNER_PRODUCT)
    except RuntimeError as e:
        raise ConfigError(f"faiss could not parse factory string {factory!r}: {str(e).splitlines()[0]}") from e
    ivf = _find_ivf(index)
    if ivf is not None and n < ivf.nlist:
        raise ConfigError(f"factory {factory!r} has nlist={ivf.nlist} lists but the catalogue has only {n} posts")
    sample = vectors
    if not index.is_trained:
        cap = train_max or (64 * ivf.nlist if ivf is not None else 100_000)
        if n > cap:
            sample = vectors[np.sort(np.random.default_rng(seed).choice(n, cap, replace=False))]
        if ivf is not None:
            ivf.cp.seed = seed
    t0 = time.perf_counter()
    gpu_index = _to_gpu(index) if has_gpu() else None
    target = gpu_index if gpu_index is not None else index
    if not target.is_trained:
        target.train(sample)
    target.add(vectors)
    if gpu_index is not None:
        index = faiss.index_gpu_to_cpu(gpu_index)
    top = faiss.downcast_index(index)
    if isinstance(top, faiss.IndexRefine) and top.k_factor < REFINE_K_FACTOR:
        top.k_factor = REFINE_K_FACTOR  # re-rank 4k candidates exactly (the factory default is 1)
    logger.info("built %s over %d x %d in %.1f s%s", factory, n, d, time.perf_counter() - t0, " (GPU)" if gpu_index else "")
    return index


def _to_gpu(index: faiss.Index) -> Any | None:
    try:
        return faiss.index_cpu_to_all_gpus(index)
    except Exception as e:  # e.g. HNSW has no GPU version: build on CPU
        logger.info("faiss GPU build not available for this index (%s); building on CPU", e)
        return None


def _find_ivf(index: faiss.Index) -> Any | None:
    try:
        return faiss.extract_index_ivf(index)
    except (RuntimeError, AttributeError):
        return None


# --- search parameters -----------------------------------------------------------------------

def search_param_name(index: faiss.Index) -> str | None:
    """The knob that trades recall for speed: 'nprobe' (IVF), 'efSearch' (HNSW) or None (exact)."""
    idx = faiss.downcast_index(index)
    if isinstance(idx, faiss.IndexRefine):
        return search_param_name(idx.base_index)
    if isinstance(idx, faiss.IndexPreTransform):
        return search_param_name(idx.index)
    if isinstance(idx, faiss.IndexIVF):
        return "nprobe"
    if isinstance(idx, faiss.IndexHNSW):
        return "efSearch"
    return None


def search_param_candidates(index: faiss.Index, k: int) -> list[int]:
    """Increasing values of the knob to try when tuning (empty for exact indexes)."""
    name = search_param_name(index)
    if name == "nprobe":
        nlist = _find_ivf(index).nlist
        vals = [v for v in (1, 2, 4, 8, 16, 32, 64, 96, 128, 192, 256, 384, 512, 1024, 2048, 4096) if v < nlist]
        return vals + [nlist]
    if name == "efSearch":
        return sorted({max(k, v) for v in (16, 32, 64, 128, 192, 256, 384, 512, 1024, 2048)})
    return []


@dataclass
class SearchParams:
    """A faiss SearchParameters object plus the Python objects it points to (kept alive)."""

    params: Any
    keep: list


def make_params(index: faiss.Index, value: int | None, sel: Any | None = None) -> SearchParams | None:
    """Per-call search parameters: the tuned knob `value` and an optional IDSelector `sel`."""
    idx = faiss.downcast_index(index)
    keep: list = [sel]
    if isinstance(idx, faiss.IndexPreTransform):
        return make_params(idx.index, value, sel)
    if isinstance(idx, faiss.IndexRefine):
        inner = make_params(idx.base_index, value, sel)
        p = faiss.IndexRefineSearchParameters()
        p.k_factor = idx.k_factor
        if inner is not None:
            p.base_index_params = inner.params
            keep.append(inner)
        if sel is not None:
            p.sel = sel
        return SearchParams(p, keep)
    if isinstance(idx, faiss.IndexIVF):
        p = faiss.SearchParametersIVF()
        p.nprobe = int(value) if value is not None else int(idx.nprobe)
    elif isinstance(idx, faiss.IndexHNSW):
        p = faiss.SearchParametersHNSW()
        p.efSearch = int(value) if value is not None else int(idx.hnsw.efSearch)
    else:
        if sel is None:
            return None
        p = faiss.SearchParameters()
    if sel is not None:
        p.sel = sel
    return SearchParams(p, keep)


def set_default_param(index: faiss.Index, value: int | None) -> None:
    """Store the tuned knob on the index itself (so a plain `index.search` uses it too)."""
    if value is None:
        return
    name = search_param_name(index)
    if name == "nprobe":
        _find_ivf(index).nprobe = int(value)
    elif name == "efSearch":
        idx = faiss.downcast_index(index)
        while not isinstance(idx, faiss.IndexHNSW):
            idx = faiss.downcast_index(idx.base_index if isinstance(idx, faiss.IndexRefine) else idx.index)
        idx.hnsw.efSearch = int(value)


def selector(range_start: int = 0, n: int | None = None, exclude_rows: np.ndarray | None = None) -> Any | None:
    """IDSelector for rows in [range_start, n) minus `exclude_rows` (None when it selects all)."""
    parts = []
    if range_start > 0:
        parts.append(faiss.IDSelectorRange(int(range_start), int(n)))
    if exclude_rows is not None and len(exclude_rows):
        ex = np.ascontiguousarray(exclude_rows, dtype=np.int64)
        batch = faiss.IDSelectorBatch(ex)
        not_ = faiss.IDSelectorNot(batch)
        not_._keep = batch  # swig does not own the child
        parts.append(not_)
    if not parts:
        return None
    if len(parts) == 1:
        return parts[0]
    both = faiss.IDSelectorAnd(parts[0], parts[1])
    both._keep = parts
    return both


_threads = 0  # OpenMP threads for FAISS in every thread that searches (set_threads; 0 = faiss default)
_applied = threading.local()  # .n: the count this thread last gave OpenMP


def set_threads(n: int) -> None:
    """OpenMP threads FAISS uses in every thread that calls `search` (0 = leave faiss default).

    OpenMP keeps the thread count per calling thread: `faiss.omp_set_num_threads(1)` at start
    covers only the thread that called it, and a search from an executor thread would fan out to
    every core (and leave an OpenMP worker spinning after each call). So the count is stored here
    and each searching thread applies it once, on its first search."""
    global _threads
    _threads = int(n)
    if _threads:
        faiss.omp_set_num_threads(_threads)
        _applied.n = _threads


def _apply_threads() -> None:
    if _threads and getattr(_applied, "n", 0) != _threads:
        faiss.omp_set_num_threads(_threads)
        _applied.n = _threads


def search(index: faiss.Index, queries: np.ndarray, k: int, value: int | None = None, sel: Any | None = None,
           params: SearchParams | None = None) -> tuple[np.ndarray, np.ndarray]:
    """queries float32 (Q, d) -> (scores float32 (Q, K), rows int64 (Q, K)); rows are -1 where
    fewer than K posts pass the selector (callers drop them). `params`: a `make_params(index,
    value, sel)` made once and reused (searches only read it), instead of `value` / `sel`."""
    _apply_threads()
    queries = np.ascontiguousarray(queries, dtype=np.float32)
    k = int(min(k, index.ntotal)) if index.ntotal else 0
    if k == 0:
        return np.zeros((len(queries), 0), np.float32), np.zeros((len(queries), 0), np.int64)
    sp = params if params is not None else make_params(index, value, sel)
    if sp is None:
        return index.search(queries, k)
    return index.search(queries, k, params=sp.params)


def read_index(path) -> faiss.Index:
    return faiss.read_index(str(path))


def write_index(index: faiss.Index, path) -> None:
    faiss.write_index(index, str(path))
