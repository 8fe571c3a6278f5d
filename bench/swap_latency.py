"""Latency during hot swaps under load: p99 and max in the swap windows vs steady state.

    .venv/bin/python bench/swap_latency.py [--posts 50000] [--conns 32] [--swaps 4] [--port 18320]
        [--feed-env RECSYS_RELOAD_WARMUP_USERS=0]

Builds an INDEX_ROOT with two bundles of --posts synthetic posts (real untrained model, IVF),
starts the feed API (uvicorn, one worker) on loopback, keeps --conns keep-alive connections busy
with /v1/recommendations (users drawn from the stored ones, k=20) from an asyncio client that
records every request's start time, latency and status, and every --every seconds points CURRENT
at the other bundle and calls POST /v1/admin/reload. The swap window of a reload runs from the
reload call to one second after its answer; steady state is everything else after the warm-up.
Prints, for steady state and the swap windows: requests, p50, p99, max, non-200 answers, and
each reload's own seconds (load + warm-up + swap).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
KEY = "bench-key"


def build(root: Path, n: int) -> None:
    from index import bundle as B
    from index.from_vectors import build_from_latents, synthetic_catalogue

    if len(B.list_versions(root)) >= 2:
        return
    for seed in (0, 1):
        cat, _ = synthetic_catalogue(n, 32, n_users=5000, n_authors=500, seed=seed)
        build_from_latents(cat, root, factory=f"IVF{int(4 * n ** 0.5)},Flat", k=50, n_queries=200, keep=2)


async def client(port: int, users: int, stop: float, out: list, conns_ready: asyncio.Event) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    rng = random.Random()
    try:
        while time.perf_counter() < stop:
            body = json.dumps({"user_id": rng.randrange(users), "k": 20}).encode()
            req = (b"POST /v1/recommendations HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                   b"Content-Length: %d\r\n\r\n%s" % (len(body), body))
            t0 = time.perf_counter()
            writer.write(req)
            head = await reader.readuntil(b"\r\n\r\n")
            status = int(head[9:12])
            length = int(next(ln.split(b":")[1] for ln in head.split(b"\r\n") if ln.lower().startswith(b"content-length")))
            await reader.readexactly(length)
            out.append((t0, time.perf_counter() - t0, status))
    finally:
        writer.close()


async def reloads(port: int, index: Path, start: float, every: float, n: int, windows: list) -> None:
    from index import bundle as B

    loop = asyncio.get_running_loop()
    for i in range(n):
        await asyncio.sleep(max(0.0, start + every * (i + 1) - time.perf_counter()))
        cur = B.current_version(index)
        other = [v for v in B.list_versions(index) if v != cur][-1]
        await loop.run_in_executor(None, B.rollback, index, other)
        t0 = time.perf_counter()
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(f"POST /v1/admin/reload HTTP/1.1\r\nHost: x\r\nX-API-Key: {KEY}\r\nContent-Length: 0\r\n\r\n".encode())
        head = await reader.readuntil(b"\r\n\r\n")
        length = int(next(ln.split(b":")[1] for ln in head.split(b"\r\n") if ln.lower().startswith(b"content-length")))
        body = json.loads(await reader.readexactly(length))
        writer.close()
        t1 = time.perf_counter()
        windows.append((t0, t1 + 1.0, body))


def stats(rows: list) -> str:
    if not rows:
        return "no requests"
    lat = np.array([r[1] for r in rows]) * 1e3
    bad = sum(r[2] != 200 for r in rows)
    return (f"{len(rows):6d} req  p50 {np.percentile(lat, 50):6.1f} ms  p99 {np.percentile(lat, 99):6.1f} ms  "
            f"max {lat.max():6.1f} ms  non-200 {bad}")


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--index", type=Path, default=Path(tempfile.gettempdir()) / "recsys-bench" / "swap-index")
    ap.add_argument("--posts", type=int, default=50_000)
    ap.add_argument("--conns", type=int, default=32)
    ap.add_argument("--swaps", type=int, default=4)
    ap.add_argument("--every", type=float, default=6.0, help="seconds between reloads")
    ap.add_argument("--warmup", type=float, default=4.0, help="seconds of load before measuring")
    ap.add_argument("--port", type=int, default=18320)
    ap.add_argument("--feed-env", action="append", default=[], help="extra environment, e.g. RECSYS_RELOAD_WARMUP_USERS=0")
    args = ap.parse_args()

    build(args.index, args.posts)
    env = {**os.environ, "RECSYS_INDEX_ROOT": str(args.index), "RECSYS_API_KEY": KEY, "RECSYS_OPEN_READS": "true",
           **dict(kv.split("=", 1) for kv in args.feed_env)}
    cmd = [sys.executable, "-m", "uvicorn", "serving.main:app", "--host", "127.0.0.1", "--port", str(args.port),
           "--log-level", "warning", "--no-access-log"]
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stderr=subprocess.PIPE)
    try:
        import httpx

        for _ in range(600):
            try:
                if httpx.get(f"http://127.0.0.1:{args.port}/readyz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.5)
        rows: list = []
        windows: list = []
        begin = time.perf_counter()
        measure_from = begin + args.warmup
        stop = measure_from + args.every * (args.swaps + 1)

        async def run():
            ready = asyncio.Event()
            await asyncio.gather(*(client(args.port, 5000, stop, rows, ready) for _ in range(args.conns)),
                                 reloads(args.port, args.index, measure_from, args.every, args.swaps, windows))

        asyncio.run(run())
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
    rows = [r for r in rows if r[0] >= measure_from]
    in_swap = [r for r in rows if any(a <= r[0] <= b for a, b, _ in windows)]
    steady = [r for r in rows if not any(a <= r[0] <= b for a, b, _ in windows)]
    print(f"{args.posts} posts, {args.conns} connections, {len(windows)} reloads every {args.every} s, "
          f"env {args.feed_env or 'default'}")
    print(f"  steady       {stats(steady)}")
    print(f"  swap windows {stats(in_swap)}")
    print("  reloads: " + ", ".join(f"{w[2].get('previous_version')}->{w[2].get('bundle_version')} {w[2].get('seconds')} s"
                                    for w in windows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
