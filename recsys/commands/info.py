"""`recsys info --data DIR [--json]`: summary of a dataset and its feature store."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from recsys.summary import format_summary, summarize


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data", type=Path, required=True, help="dataset directory")
    p.add_argument("--json", action="store_true", help="print JSON instead of text")


def run(args: argparse.Namespace) -> int:
    s = summarize(args.data)
    print(json.dumps(s, indent=2, default=str) if args.json else format_summary(s))
    return 0
