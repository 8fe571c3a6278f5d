"""uvicorn's standard extras (uvloop event loop, httptools parser) against its pure-Python
defaults (asyncio, h11), same feed API, same bundle, runs interleaved (A B A B) so that a busy
machine drifts both alike.

    .venv/bin/python bench/uvicorn_extras.py [--posts 20000] [--duration 8] [--conns 8] [--rounds 2]

Needs uvloop and httptools importable (`pip install uvloop httptools`, or a directory of them
in PYTHONPATH). Per configuration: single-request latency (1 connection, sequential: p50 / p99)
and throughput (--conns keep-alive clients: req/s, p99) of POST /v1/recommendations k=20.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
PY = sys.executable
CONFIGS = {"asyncio+h11": ["--loop", "asyncio", "--http", "h11"], "uvloop+httptools": ["--loop", "uvloop", "--http", "httptools"]}


def start(port: int, env: dict, flags: list[str]) -> subprocess.Popen:
    cmd = [PY, "-m", "uvicorn", "serving.main:app", "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning",
           "--no-access-log", *flags]
    return subprocess.Popen(cmd, cwd=ROOT, env={**os.environ, **env}, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def load(port: int, conns: int, duration: float, users: int) -> list[float]:
    import httpx

    lat: list[float] = []
    stop = time.time() + duration

    def worker(seed: int) -> None:
        r = np.random.default_rng(seed)
        with httpx.Client(base_url=f"http://127.0.0.1:{port}") as c:
            while time.time() < stop:
                body = b'{"user_id": %d, "k": 20}' % int(r.integers(0, users))
                t0 = time.perf_counter()
                assert c.post("/v1/recommendations", content=body, headers={"Content-Type": "application/json"}).status_code == 200
                lat.append((time.perf_counter() - t0) * 1e3)

    ts = [threading.Thread(target=worker, args=(s,)) for s in range(conns)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    return lat


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--posts", type=int, default=20_000)
    ap.add_argument("--duration", type=float, default=8.0)
    ap.add_argument("--conns", type=int, default=8)
    ap.add_argument("--rounds", type=int, default=2)
    args = ap.parse_args()
    import httpx

    from index.from_vectors import build_from_latents, synthetic_catalogue
    from tests.pg import free_port

    tmp = Path(tempfile.mkdtemp(prefix="recsys-bench-uv-"))
    cat, _ = synthetic_catalogue(args.posts, 16, n_users=2000, n_authors=100, seed=0, n_clusters=32)
    build_from_latents(cat, tmp / "index", factory="Flat", k=20, max_history=20, n_queries=50)
    env = {"RECSYS_INDEX_ROOT": str(tmp / "index"), "RECSYS_ONLINE_LOG": "off"}
    print(f"{args.posts} posts; load average {os.getloadavg()}", flush=True)
    res: dict[str, dict[str, list]] = {k: {"single": [], "rps": [], "p99": []} for k in CONFIGS}
    for rnd in range(args.rounds):
        for name, flags in CONFIGS.items():
            port = free_port()
            p = start(port, env, flags)
            try:
                t0 = time.time()
                while True:
                    try:
                        if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=1).status_code == 200:
                            break
                    except httpx.HTTPError:
                        pass
                    if p.poll() is not None or time.time() - t0 > 600:
                        raise RuntimeError(f"{name}: server failed: {p.stderr.read().decode()[-2000:]}")
                    time.sleep(0.2)
                load(port, args.conns, 2, 2000)  # warm-up (profile cache)
                single = load(port, 1, args.duration, 2000)
                many = load(port, args.conns, args.duration, 2000)
            finally:
                p.terminate()
                p.wait()
            r = res[name]
            r["single"] += single
            r["rps"].append(len(many) / args.duration)
            r["p99"].append(float(np.percentile(many, 99)))
            print(f"round {rnd} {name:17s}: single p50 {np.percentile(single, 50):.2f} ms p99 {np.percentile(single, 99):.2f} ms | "
                  f"{args.conns} conns {len(many) / args.duration:.0f} req/s p99 {np.percentile(many, 99):.2f} ms", flush=True)
    for name, r in res.items():
        print(f"{name:17s}: single p50 {np.percentile(r['single'], 50):.2f} ms p99 {np.percentile(r['single'], 99):.2f} ms | "
              f"req/s {np.mean(r['rps']):.0f} (runs {[round(x) for x in r['rps']]}) p99 {np.mean(r['p99']):.2f} ms")
    print(f"load average after: {os.getloadavg()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
