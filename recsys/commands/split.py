"""`recsys split --data DIR [--valid-frac 0.1] [--test-frac 0.1] [--force]`: global temporal split."""

from __future__ import annotations

import argparse
from pathlib import Path


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data", type=Path, required=True, help="dataset directory")
    p.add_argument("--valid-frac", type=float, default=0.1, help="fraction of interactions (by time) for valid")
    p.add_argument("--test-frac", type=float, default=0.1, help="latest fraction of interactions for test")
    p.add_argument("--force", action="store_true", help="replace an existing splits.parquet")


def run(args: argparse.Namespace) -> int:
    from recsys.split import split_dataset

    r = split_dataset(args.data, args.valid_frac, args.test_frac, force=args.force)
    c, u = r["interactions"], r["users"]
    print(f"split {args.data}: global temporal, valid from {r['valid_from']}, test from {r['test_from']}")
    for s in ("train", "valid", "test"):
        print(f"  {s:5s}: {c[s]:,} interactions, {u[s]:,} users")
    hl = r["popularity_half_life_s"]
    print("  popularity (chosen on valid, recsys/prior.py): " + ("all-time counts" if hl is None else f"recency-weighted, half-life {hl / 3600:g} h"))
    return 0
