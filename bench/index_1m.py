"""1M-post index benchmark: build time, recall@100 vs exact, raw FAISS single-query latency.

    .venv/bin/python bench/index_1m.py [--n 1000000] [--dim 64] [--out bench-out/index-1m]

Builds (or reuses, with --reuse) a real bundle from seeded clustered latents and a freshly
initialised model (index.from_vectors): the same bundle `bench/http_1m.py` serves. Prints a table.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def build(out: Path, n: int, dim: int, users: int, factory: str | None, target: float, seed: int = 0) -> dict:
    from index.from_vectors import build_from_latents, synthetic_catalogue

    t0 = time.perf_counter()
    cat, _ = synthetic_catalogue(n, dim, n_users=users, n_authors=max(10, n // 100), seed=seed, n_clusters=1024)
    t_data = time.perf_counter() - t0
    t0 = time.perf_counter()
    path, gate = build_from_latents(cat, out, factory=factory, target_recall=target, k=100, n_queries=1000, keep=2)
    t_total = time.perf_counter() - t0
    return {"path": path, "gate": gate, "data_s": t_data, "bundle_s": t_total}


def raw_latency(root: Path, n_queries: int = 2000) -> dict:
    """Single-query and batched search latency on the loaded bundle index (tuned nprobe)."""
    from index import faiss_index as fi
    from index.bundle import load_bundle
    from index.recall import exact_topk, recall_at_k

    b = load_bundle(root)
    value = b.manifest["search"]["value"]
    rng = np.random.default_rng(1)
    q = b.vectors[rng.choice(b.n, n_queries, replace=False)] + 0.3 * rng.standard_normal((n_queries, b.vectors.shape[1])).astype(np.float32)
    q /= np.linalg.norm(q, axis=1, keepdims=True)
    for i in range(50):  # warm up
        fi.search(b.index, q[i : i + 1], 100, value)
    times = []
    for i in range(n_queries):
        t0 = time.perf_counter()
        fi.search(b.index, q[i : i + 1], 100, value)
        times.append((time.perf_counter() - t0) * 1e3)
    t0 = time.perf_counter()
    _, rows = fi.search(b.index, q[:1000], 100, value)
    batch_s = time.perf_counter() - t0
    ex, _ = exact_topk(b.vectors, q[:1000], 100)
    rec = recall_at_k(rows, b.vectors, q[:1000], ex, 100)
    return {"p50": float(np.percentile(times, 50)), "p99": float(np.percentile(times, 99)),
            "batch_qps": 1000 / batch_s, "recall_perturbed": rec, "manifest": b.manifest}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=1_000_000)
    ap.add_argument("--dim", type=int, default=64)
    ap.add_argument("--users", type=int, default=10_000)
    ap.add_argument("--factory", default=None, help="default: IVF4096,Flat at 1M (index.faiss_index.choose_factory)")
    ap.add_argument("--target-recall", type=float, default=0.95)
    ap.add_argument("--out", type=Path, default=Path("/tmp/recsys-bench/index-1m"))
    ap.add_argument("--reuse", action="store_true", help="skip the build when a bundle exists at --out")
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s", datefmt="%H:%M:%S")
    from index.bundle import current_version

    built = None
    if not (args.reuse and current_version(args.out)):
        built = build(args.out, args.n, args.dim, args.users, args.factory, args.target_recall)
    lat = raw_latency(args.out)
    m = lat["manifest"]
    rows = [
        ("posts x dim", f"{m['n_posts']:,} x {m['dim']}"),
        ("factory", m["factory"]),
        ("tuned " + str(m["search"]["param"]), str(m["search"]["value"])),
        ("recall@100 (1000 user queries, ties allowed)", f"{m['recall']['measured']:.4f}"),
        ("recall@100 (1000 perturbed post queries)", f"{lat['recall_perturbed']:.4f}"),
        ("index build (train + add) s", f"{m['build_seconds']:.1f}"),
    ]
    if built:
        rows += [("synthetic data s", f"{built['data_s']:.1f}"),
                 ("bundle total s (vectors + index + gate + publish)", f"{built['bundle_s']:.1f}")]
    rows += [
        ("raw FAISS search p50 ms (1 query, k=100)", f"{lat['p50']:.3f}"),
        ("raw FAISS search p99 ms (1 query, k=100)", f"{lat['p99']:.3f}"),
        ("raw FAISS batched qps (1000 queries, one call)", f"{lat['batch_qps']:,.0f}"),
    ]
    w = max(len(r[0]) for r in rows)
    print(f"\nindex benchmark ({args.out})")
    for k, v in rows:
        print(f"  {k:<{w}}  {v}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
