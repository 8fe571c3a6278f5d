"""`recsys serve --index INDEX_ROOT`: the feed API under uvicorn."""

from __future__ import annotations

import argparse
import os
from pathlib import Path


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--index", type=Path, default=None, help="INDEX_ROOT (default: $RECSYS_INDEX_ROOT)")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--workers", type=int, default=1, help="uvicorn worker processes (each loads the bundle)")
    p.add_argument("--log-level", default="info")


def run(args: argparse.Namespace) -> int:
    import uvicorn

    from index.bundle import resolve

    if args.index is not None:
        os.environ["RECSYS_INDEX_ROOT"] = str(args.index.resolve())
    from serving.settings import get_settings

    get_settings.cache_clear()
    resolve(get_settings().index_root)  # fail fast (exit 2) when there is no bundle
    if args.workers > 1:  # workers re-import the app by name; settings come from the environment
        uvicorn.run("serving.main:app", host=args.host, port=args.port, workers=args.workers, log_level=args.log_level)
    else:
        from serving.app import create_app

        uvicorn.run(create_app(get_settings()), host=args.host, port=args.port, log_level=args.log_level)
    return 0
