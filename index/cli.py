"""`recsys build-index`: vectors of every post from a trained run -> FAISS -> recall gate -> bundle."""

from __future__ import annotations

import argparse
from pathlib import Path


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--run", type=Path, required=True, help="trained run directory (from `recsys train`)")
    p.add_argument("--data", type=Path, required=True, help="dataset directory with an encoded feature store")
    p.add_argument("--out", type=Path, required=True, help="INDEX_ROOT (bundles/<version>/ and CURRENT go here)")
    p.add_argument("--factory", default=None,
                   help="faiss index_factory string (default: Flat up to 100k posts, IVF<4 sqrt N>,Flat above)")
    p.add_argument("--target-recall", type=float, default=0.95, help="refuse to publish below this recall@K (default 0.95)")
    p.add_argument("--k", type=int, default=100, help="K of the recall gate (default 100)")
    p.add_argument("--keep", type=int, default=5, help="published versions to keep for rollback (default 5)")
    p.add_argument("--max-search-param", type=int, default=None,
                   help="cap on nprobe / efSearch while tuning (default: no cap)")
    p.add_argument("--queries", type=int, default=1000, help="held-out user queries for the recall gate (default 1000)")
    p.add_argument("--log", default=None,
                   help="online log to fold in (live posts, deletes, events): a SQLite path or postgresql:// URL; "
                        "default: OUT/online_log.sqlite3 when it exists; 'off' to ignore it")


def run(args: argparse.Namespace) -> int:
    from index.build import build_from_run

    log = args.log
    if log is None:
        default = args.out / "online_log.sqlite3"  # serving's default log (serving.journal.LOG_FILE)
        log = str(default) if default.is_file() else None
    elif log == "off":
        log = None
    path, gate = build_from_run(
        args.run, args.data, args.out, factory=args.factory, target_recall=args.target_recall, k=args.k,
        keep=args.keep, max_search_value=args.max_search_param, n_queries=args.queries, log=log,
    )
    param = f"{gate.param_name}={gate.param_value}" if gate.param_name else "exact"
    print(f"published {path.name} at {path} | recall@{gate.k} {gate.recall:.4f} ({param}, {gate.n_queries} queries) "
          f"| search p50 {gate.latency_ms_p50:.3f} ms p99 {gate.latency_ms_p99:.3f} ms")
    return 0
