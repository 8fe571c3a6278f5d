"""`recsys gallery --data DIR --run RUN --baseline NAME --out FILE.html [--split test] [--users 8]
[--k 20] [--seed 0]`: an HTML page of sampled users' history, the run's top-k and the baseline's
top-k side by side, hits marked (recsys/gallery.py)."""

from __future__ import annotations

import argparse
from pathlib import Path


def add_arguments(p: argparse.ArgumentParser) -> None:
    from recsys.baselines import BASELINES

    p.add_argument("--data", type=Path, required=True, help="dataset directory (with splits.parquet)")
    p.add_argument("--run", type=Path, required=True, help="trained run directory")
    p.add_argument("--baseline", default="popular", help=f"baseline beside it (default popular): {', '.join(BASELINES)}")
    p.add_argument("--split", default="test", help="valid or test (default test): whose interactions are the hits")
    p.add_argument("--users", type=int, default=8, help="users sampled (default 8)")
    p.add_argument("--k", type=int, default=20, help="list length (default 20)")
    p.add_argument("--seed", type=int, default=0, help="user sample seed")
    p.add_argument("--out", type=Path, required=True, help="HTML file to write")


def run(args: argparse.Namespace) -> int:
    from recsys.gallery import gallery_lists, write_gallery

    lists = gallery_lists(args.data, args.run, args.baseline, args.split, args.users, args.k, args.seed)
    path = write_gallery(args.out, lists)
    for m in lists["models"]:
        hits = sum(len(set(u["lists"][m]) & set(u["hits"])) for u in lists["users"])
        print(f"  {m:24s} recall@{args.k} {lists['recall'][m]:.4f} (all evaluated users); {hits} hits in the {len(lists['users'])} shown")
    print(f"gallery: {path}")
    return 0
