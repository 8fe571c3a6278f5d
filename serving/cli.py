"""`recsys serve --index INDEX_ROOT`: the feed API under uvicorn (`serve`, also used by the benches)."""

from __future__ import annotations

import argparse
import logging
import os
import socket
from pathlib import Path
from typing import Any


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--index", type=Path, default=None, help="INDEX_ROOT (default: $RECSYS_INDEX_ROOT)")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--workers", type=int, default=1, help="uvicorn worker processes (each loads the bundle)")
    p.add_argument("--log-level", default="info")


def run(args: argparse.Namespace) -> int:
    from index.bundle import resolve

    if args.index is not None:
        os.environ["RECSYS_INDEX_ROOT"] = str(args.index.resolve())
    from serving.settings import get_settings

    get_settings.cache_clear()
    resolve(get_settings().index_root)  # fail fast (exit 2) when there is no bundle
    if args.workers > 1:  # workers re-import the app by name; settings come from the environment
        app: Any = "serving.main:app"
    else:
        from serving.app import create_app

        app = create_app(get_settings())
    serve(app, args.host, args.port, args.workers, log_level=args.log_level)
    return 0


def listen(host: str, port: int) -> socket.socket:
    """The listening TCP socket, with TCP_NODELAY, which every accepted connection inherits.

    uvicorn binds its own socket as `socket.socket(family)` (protocol 0) when it runs several
    workers, and asyncio sets TCP_NODELAY only on connections whose socket says IPPROTO_TCP. A
    response goes out as two writes (head, then body), so without it Nagle holds the body until
    the client acknowledges the head, which a client delays by up to 40 ms: every sequential
    request on a kept-alive connection took 44 ms with `--workers 2`."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.bind((host, port))
    sock.set_inheritable(True)  # uvicorn's worker processes serve on it
    return sock


def serve(app: Any, host: str, port: int, workers: int = 1, **options: Any) -> None:
    """uvicorn on `listen(host, port)`, in this process or in `workers` processes (then `app`
    must be an import string such as "serving.main:app"). `options`: uvicorn.Config's (log_level,
    access_log, loop, http, ...)."""
    import uvicorn
    from uvicorn.supervisors import Multiprocess

    config = uvicorn.Config(app, host=host, port=port, workers=workers, **options)  # configures uvicorn's logging
    sock = listen(host, port)
    logging.getLogger("uvicorn.error").info("Uvicorn running on http://%s:%d (Press CTRL+C to quit)",
                                            f"[{host}]" if ":" in host else host, sock.getsockname()[1])
    if workers > 1:
        Multiprocess(config, sockets=[sock]).run()
    else:
        uvicorn.Server(config).run(sockets=[sock])
