"""`recsys import SRC --out DIR [--format auto|diffmm|mmrec|recbole]`."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from recsys.errors import ArtifactError, ConfigError

FORMATS = ("auto", "diffmm", "mmrec", "recbole")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("src", type=Path, help="source directory (e.g. ../shared/data/tiktok)")
    p.add_argument("--out", type=Path, required=True, help="dataset directory to write")
    p.add_argument("--format", choices=FORMATS, default="auto", help="source layout (default: detect)")
    p.add_argument("--name", default=None, help="dataset name (default: source folder name)")
    p.add_argument("--json", action="store_true", help="print the report as JSON")


def detect_format(src: Path) -> str:
    """diffmm: trnMat.pkl/valMat.pkl/tstMat.pkl; mmrec: a .inter whose header has x_label;
    recbole: a .inter whose header is all `field:type` entries."""
    from recsys.data import diffmm, mmrec, recbole

    if diffmm.is_diffmm(src):
        return "diffmm"
    if mmrec.is_mmrec(src):
        return "mmrec"
    if recbole.is_recbole(src):
        return "recbole"
    raise ConfigError(
        f"{src}: cannot detect the format; expected trnMat.pkl/valMat.pkl/tstMat.pkl (diffmm), "
        f"<name>.inter with an x_label column (mmrec) or <name>.inter with field:type headers (recbole); "
        f"found {sorted(p.name for p in src.iterdir())[:10]} (or pass --format)"
    )


def run(args: argparse.Namespace) -> int:
    src: Path = args.src
    if not src.is_dir():
        found = "a file" if src.exists() else "nothing"
        raise ArtifactError(f"source must be a dataset directory, found {found} at {src}")
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
        if "unsplit" in it:
            print(f"  interactions: {it['unsplit']:,} (no split: run `recsys split --data {args.out}`)")
        else:
            print(f"  interactions train / valid / test: {it.get('train', 0):,} / {it.get('valid', 0):,} / {it.get('test', 0):,}")
        print(f"  modalities: {len(report['modalities'])}: {mods}")
        skipped = {k: v for k, v in report.get("skipped", {}).items() if v}
        if skipped:
            print(f"  skipped: {skipped}")
    return 0
