"""`recsys import SRC --out DIR [--format auto|diffmm|mmrec|recbole]`."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from recsys.errors import ConfigError

FORMATS = ("auto", "diffmm", "mmrec", "recbole")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("src", type=Path, help="source directory (e.g. ../shared/data/tiktok)")
    p.add_argument("--out", type=Path, required=True, help="dataset directory to write")
    p.add_argument("--format", choices=FORMATS, default="auto", help="source layout (default: detect)")
    p.add_argument("--name", default=None, help="dataset name (default: source folder name)")
    p.add_argument("--json", action="store_true", help="print the report as JSON")


def detect_format(src: Path) -> str:
    from recsys.data import diffmm

    if diffmm.is_diffmm(src):
        return "diffmm"
    if any(src.glob("*.item")):
        return "recbole"
    if any(src.glob("*.inter")):
        return "mmrec"
    raise ConfigError(
        f"{src}: cannot detect the format; expected trnMat.pkl/valMat.pkl/tstMat.pkl (diffmm), "
        f"<name>.inter with x_label (mmrec) or <name>.inter + <name>.item (recbole)"
    )


def run(args: argparse.Namespace) -> int:
    src: Path = args.src
    if not src.is_dir():
        raise ConfigError(f"source must be a directory, got {src}")
    fmt = detect_format(src) if args.format == "auto" else args.format
    if fmt == "diffmm":
        from recsys.data.diffmm import import_diffmm as importer
    elif fmt == "mmrec":
        from recsys.data.mmrec import import_mmrec as importer
    else:
        from recsys.data.recbole import import_recbole as importer
    _, report = importer(src, args.out, name=args.name)
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        it = report["interactions"]
        mods = ", ".join(f"{m} ({d}-d)" for m, d in report["modalities"].items()) or "none"
        print(f"imported {fmt} dataset {src} -> {args.out}")
        print(f"  users: {report['users']:,}  posts: {report['posts']:,}")
        print(f"  interactions train / valid / test: {it.get('train', 0):,} / {it.get('valid', 0):,} / {it.get('test', 0):,}")
        print(f"  modalities: {len(report['modalities'])}: {mods}")
        skipped = {k: v for k, v in report.get("skipped", {}).items() if v}
        if skipped:
            print(f"  skipped: {skipped}")
    return 0
