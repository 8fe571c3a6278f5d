"""What batching saves FAISS itself: CPU time per query of IndexIVFFlat searches by batch size.

    .venv/bin/python bench/faiss_batch.py [--n 1000000 --dim 64 --nlist 4096 --nprobe 16 48 --batch 1 2 4 8 16 64]

The question it answers: how much cheaper can the feed API's shared search (`serving.batcher`,
concurrent requests in one FAISS call) make a query than the bare endpoint's one-query search?
Clustered random unit vectors (2,000 centres + noise) stand in for post vectors, queries are
perturbed posts; one FAISS thread (as both servers run it), k = 100, 2,048 queries per batch size.
Prints process CPU ms per query for each (nprobe, batch).
"""

from __future__ import annotations

import argparse
import time

import numpy as np


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=1_000_000)
    ap.add_argument("--dim", type=int, default=64)
    ap.add_argument("--nlist", type=int, default=4096)
    ap.add_argument("--nprobe", type=int, nargs="+", default=[16, 48])
    ap.add_argument("--batch", type=int, nargs="+", default=[1, 2, 4, 8, 16, 64])
    ap.add_argument("--queries", type=int, default=2048)
    a = ap.parse_args()
    import faiss

    faiss.omp_set_num_threads(1)
    rng = np.random.default_rng(0)
    centres = rng.standard_normal((2000, a.dim)).astype(np.float32)
    x = (centres[rng.integers(0, len(centres), a.n)] + 0.5 * rng.standard_normal((a.n, a.dim))).astype(np.float32)
    faiss.normalize_L2(x)
    q = (x[rng.integers(0, a.n, a.queries)] + 0.1 * rng.standard_normal((a.queries, a.dim))).astype(np.float32)
    faiss.normalize_L2(q)
    index = faiss.index_factory(a.dim, f"IVF{a.nlist},Flat", faiss.METRIC_INNER_PRODUCT)
    index.train(x[: min(a.n, 200_000)])
    index.add(x)
    print(f"IVF{a.nlist},Flat over {a.n:,} x {a.dim}, k 100, 1 thread, {a.queries:,} queries per row")
    for nprobe in a.nprobe:
        index.nprobe = nprobe
        base = None
        for b in a.batch:
            t = time.process_time()
            for i in range(0, a.queries, b):
                index.search(q[i : i + b], 100)
            ms = (time.process_time() - t) / a.queries * 1e3
            base = base or ms
            print(f"  nprobe {nprobe:>3}  batch {b:>3}: {ms:.3f} ms CPU / query ({ms / base:.2f}x batch {a.batch[0]})", flush=True)


if __name__ == "__main__":
    main()
