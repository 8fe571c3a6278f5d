"""`recsys index list|rollback|compact-log --root INDEX_ROOT [--to VERSION]`: inspect and roll back
bundles; drop the online log's entries the CURRENT bundle covers."""

from __future__ import annotations

import argparse
from pathlib import Path


def add_arguments(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    ls = sub.add_parser("list", help="published bundle versions (* = CURRENT)")
    ls.add_argument("--root", type=Path, required=True, help="INDEX_ROOT")
    rb = sub.add_parser("rollback", help="point CURRENT at an older version (default: the previous one)")
    rb.add_argument("--root", type=Path, required=True, help="INDEX_ROOT")
    rb.add_argument("--to", default=None, help="version to make current (default: the one before CURRENT)")
    cl = sub.add_parser("compact-log", help="drop the online log's entries the CURRENT bundle covers (its log_seq); "
                        "run it once every worker serves that bundle")
    cl.add_argument("--root", type=Path, required=True, help="INDEX_ROOT")
    cl.add_argument("--log", default=None, help="the online log (default: ROOT/online_log.sqlite3)")


def run(args: argparse.Namespace) -> int:
    from index import bundle as B
    from recsys.io import read_json

    if args.action == "list":
        cur = B.current_version(args.root)
        versions = B.list_versions(args.root)
        if not versions:
            print(f"no bundles under {args.root}")
        for v in versions:
            m = read_json(B.bundles_dir(args.root) / v / B.MANIFEST)
            rec = m.get("recall", {})
            print(f"{'*' if v == cur else ' '} {v}  {m.get('created_at', '?')}  posts {m.get('n_posts')}  "
                  f"{m.get('factory')}  recall@{rec.get('k')} {rec.get('measured')}")
        return 0
    if args.action == "compact-log":
        from index.fold import compact

        dropped, through = compact(args.log or str(args.root / "online_log.sqlite3"), args.root)
        print(f"online log: dropped {dropped} entries up to seq {through} (covered by bundle {B.current_version(args.root)})")
        return 0
    to = B.rollback(args.root, args.to)
    print(f"CURRENT -> {to} (running servers pick it up on POST /v1/admin/reload)")
    return 0
