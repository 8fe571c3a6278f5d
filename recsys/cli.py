"""`recsys` command line: one command, subcommands registered by module name.

Each command module defines `add_arguments(parser)` and `run(args) -> int`. Modules are imported
only when their subcommand runs, so `recsys --help` is fast and the core never imports the
training / index / serving packages at import time.

Exit codes: 0 success; 2 bad input (flags, files, ids: the message says what was expected);
1 unexpected failure.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

from recsys.errors import RecsysError

OWN_PACKAGES = ("recsys", "training", "index", "serving")

# name -> (module, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "synth": ("recsys.commands.synth", "write a synthetic social-platform dataset (posts with real media files)"),
    "import": ("recsys.commands.import_", "import a DiffMM/MMSSL, MMRec or RecBole dataset into the recsys layout"),
    "encode": ("recsys.commands.encode", "encode post text/images/videos into the feature store (incremental)"),
    "info": ("recsys.commands.info", "summarise a dataset and its feature store"),
    "split": ("recsys.commands.split", "assign a global temporal train/valid/test split"),
    "evaluate": ("recsys.commands.evaluate", "full-ranking offline evaluation of a run or baseline"),
    "gallery": ("recsys.commands.gallery", "HTML page of sampled users: history, a run's and a baseline's top-k, hits marked"),
    "train": ("training.cli", "train the multimodal autoencoder + user profile model"),
    "trends": ("recsys.commands.trends", "interest clusters, sentiment and burst alarms over a dataset's history (report + plot)"),
    "build-index": ("index.cli", "build and publish a versioned FAISS bundle from a trained run"),
    "index": ("index.admin_cli", "list / roll back published index bundles"),
    "serve": ("serving.cli", "serve the recommendation API (FastAPI + uvicorn)"),
    "export-events": ("recsys.commands.export_events", "append the events the API served (online log) to a dataset's interactions"),
    "demo": ("recsys.commands.demo", "run the whole job end to end on the synthetic platform"),
}


def _available() -> dict[str, tuple[str, str]]:
    out = {}
    for name, (mod, help_) in COMMANDS.items():
        if importlib.util.find_spec(mod.rsplit(".", 1)[0]) is None:
            continue
        try:
            if importlib.util.find_spec(mod) is not None:
                out[name] = (mod, help_)
        except ModuleNotFoundError:
            continue
    return out


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="recsys",
        description="Multimodal recommendation engine: posts -> encoders -> autoencoder -> user profiles -> FAISS -> API",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, (mod, help_) in _available().items():
        p = sub.add_parser(name, help=help_, description=help_)
        p.set_defaults(_module=mod)
        importlib.import_module(mod).add_arguments(p)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.WARNING,  # third-party libraries: warnings only
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        datefmt="%H:%M:%S",
    )
    for pkg in OWN_PACKAGES:
        logging.getLogger(pkg).setLevel(logging.DEBUG if args.verbose else logging.INFO)
    try:
        return int(importlib.import_module(args._module).run(args) or 0)
    except RecsysError as e:
        print(f"recsys {args.command}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
