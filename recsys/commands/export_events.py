"""`recsys export-events --log LOG --data DIR`: served events -> interactions of the dataset."""

from __future__ import annotations

import argparse
from pathlib import Path


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--log", required=True, help="the online log: a SQLite path (INDEX_ROOT/online_log.sqlite3) or postgresql:// URL")
    p.add_argument("--data", type=Path, required=True, help="dataset directory whose interactions.parquet gets the events")


def run(args: argparse.Namespace) -> int:
    from recsys.online_log.export import export_events

    r = export_events(args.log, args.data)
    print(f"export-events {args.data}: {r['events']} events in the log, {r['added']} added, {r['already']} already there, "
          f"{r['unknown_posts']} on posts not in the dataset (added live)")
    if r["split_removed"]:
        print(f"  the split no longer matches: run `recsys split --data {args.data}` before `recsys train`")
    return 0
