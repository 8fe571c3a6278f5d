"""`recsys evaluate --data DIR (--run RUN_DIR | --baseline NAME)... --split valid|test --out REPORT_DIR
[--k 10 20 50] [--compare]`: full-ranking offline evaluation, one table and plot for all models."""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def _kv(s: str) -> tuple[str, str, object]:
    """NAME.KEY=VALUE with VALUE parsed as JSON when it can be (numbers, true/false), else a string."""
    from recsys.errors import ConfigError

    try:
        lhs, value = s.split("=", 1)
        name, key = lhs.split(".", 1)
    except ValueError:
        raise ConfigError(f"--set expects BASELINE.KEY=VALUE (e.g. bpr.reg=0.1), got {s!r}") from None
    try:
        return name, key, json.loads(value)
    except json.JSONDecodeError:
        return name, key, value


def add_arguments(p: argparse.ArgumentParser) -> None:
    from recsys.baselines import BASELINES

    p.add_argument("--data", type=Path, required=True, help="dataset directory (with splits.parquet)")
    p.add_argument("--run", type=Path, action="append", default=[], help="trained run directory (repeatable)")
    p.add_argument("--baseline", action="append", default=[], metavar="NAME", help=f"baseline (repeatable): {', '.join(BASELINES)}")
    p.add_argument("--split", default="valid", help="valid (default; model selection) or test (final figures)")
    p.add_argument("--out", type=Path, required=True, help="report directory (report.json, report.md, PNGs)")
    p.add_argument("--k", type=int, nargs="+", default=[10, 20, 50], help="cut-offs (default 10 20 50)")
    p.add_argument("--compare", action="store_true", help="one table/plot for all models (always the case with several)")
    p.add_argument("--chunk-users", type=int, default=2048, help="users scored per chunk (memory bound)")
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads (0 = torch default; 1 is often faster on a busy machine)")
    p.add_argument("--set", action="append", default=[], metavar="BASELINE.KEY=VALUE", help="baseline option, e.g. bpr.reg=0.1")


def run(args: argparse.Namespace) -> int:
    from recsys.compare import compare
    from recsys.errors import ConfigError
    from recsys.report import headline_k, write_report

    if args.threads < 0:
        raise ConfigError(f"--threads must be >= 0, got {args.threads}")
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    if args.split not in ("valid", "test"):
        raise ConfigError(f"--split must be valid or test, got {args.split!r}")
    cfg: dict[str, dict] = {}
    for s in args.set:
        name, key, value = _kv(s)
        if name not in args.baseline:
            raise ConfigError(f"--set {s}: baseline {name!r} is not among --baseline {args.baseline}")
        cfg.setdefault(name, {})[key] = value
    report = compare(args.data, args.baseline, args.run, args.split, args.k, args.chunk_users, cfg)
    paths = write_report(args.out, report)
    k = headline_k(report["ks"])
    print(f"{report['dataset']['name']} / {report['split']}: {report['n_users']:,} users, full ranking over {report['dataset']['n_posts']:,} posts")
    for m in report["models"]:
        x = m["metrics"]
        print(f"  {m['id']:24s} recall@{k} {x[f'recall@{k}']:.4f}  ndcg@{k} {x[f'ndcg@{k}']:.4f}  "
              f"(fit {m['timings']['fit_s']:.1f} s, eval {m['timings']['eval_s']:.2f} s)")
    print(f"report: {', '.join(str(p) for p in paths)}")
    return 0
