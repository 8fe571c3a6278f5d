"""`recsys trends --data DIR --out REPORT [--run RUN] [--window 6h] [--k K]`: interest clusters,
sentiment and burst alarms over a dataset's history, as report.md / report.json / trends.png."""

from __future__ import annotations

import argparse
from pathlib import Path


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data", type=Path, required=True, help="dataset directory with an encoded feature store")
    p.add_argument("--out", type=Path, required=True, help="report directory")
    p.add_argument("--run", type=Path, default=None,
                   help="trained run: its latents, the sentiment head and user vectors (default: the feature store alone)")
    p.add_argument("--window", default="6h", help="burst window: 90m, 6h, 2d (default 6h)")
    p.add_argument("--k", type=int, default=None, help="number of clusters (default: chosen by silhouette)")
    p.add_argument("--seed", type=int, default=0)


def run(args: argparse.Namespace) -> int:
    from recsys.analysis.report import write_trends_report

    rep = write_trends_report(args.data, args.out, run_dir=args.run, window=args.window, k=args.k, seed=args.seed)
    info = rep["analysis"]
    print(f"trends report -> {args.out}/report.md | {info['k']} clusters ({info['k_rule']}) | "
          f"alarms: {len(rep.get('alarms', [])) if 'alarms' in rep else 'n/a (no timestamps)'}")
    truth = rep.get("truth", {})
    if "bursts" in truth:
        b = truth["bursts"]
        print(f"  bursts: precision {b['precision']:.2f} recall {b['recall']:.2f} median delay {b['median_delay_h']} h "
              f"false alarms / quiet day {b['false_alarms_per_quiet_day']:.3f}")
        for kind, k in b.get("by_kind", {}).items():
            print(f"    {kind:5s}: {k['detected']} of {k['bursts']} bursts, precision {k['precision']:.2f} "
                  f"({k['true_alarms']} of {k['alarms']} alarms), median delay {k['median_delay_h']} h, "
                  f"false alarms / quiet day {k['false_alarms_per_quiet_day']:.3f}")
    return 0
