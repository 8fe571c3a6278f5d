"""The online log's costs, on loopback: how soon a write is visible on another worker, and what
logging does to write throughput.

    .venv/bin/python bench/online_log.py [--posts 20000] [--writes 200] [--duration 10] [--conns 8]

1. Visibility: a post written through one worker (its 2xx received), then polled on another
   worker (GET /v1/posts/{id}/similar until 200): p50 / p99 of that time.
   - SQLite: one `recsys serve --workers 2` (the default log file, shared)
   - PostgreSQL: two separate server processes on one throw-away PostgreSQL (tests/pg.py)
   Keep-alive connections stay with one worker process; /readyz names the worker (log.worker_pid).
2. Write throughput: --conns clients sending POST /v1/events (one event each) for --duration s to
   one worker, with the log off (memory only), on SQLite, on PostgreSQL: writes/s, p50, p99.
Prints the load average beside the figures (a shared machine inflates them).
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
KEY = "bench-key"


def start(port: int, env: dict, workers: int = 1) -> subprocess.Popen:
    """`recsys serve` as an operator starts it (serving.cli: uvicorn on a TCP_NODELAY socket,
    `workers` processes); the bundle from RECSYS_INDEX_ROOT in `env`."""
    cmd = [PY, "-m", "recsys.cli", "serve", "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning",
           "--workers", str(workers)]
    return subprocess.Popen(cmd, cwd=ROOT, env={**os.environ, "RECSYS_API_KEY": KEY, **env},
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)


def wait_ready(port: int, proc: subprocess.Popen, workers: int = 1, timeout: float = 600) -> None:
    import httpx

    t0, pids = time.time(), set()
    while time.time() - t0 < timeout:
        if proc.poll() is not None:
            raise RuntimeError(f"server on {port} died: {proc.stderr.read().decode()[-2000:]}")
        try:
            with httpx.Client(timeout=2) as c:  # a new connection each time: reaches either worker
                r = c.get(f"http://127.0.0.1:{port}/readyz")
            if r.status_code == 200:
                pids.add(r.json()["log"]["worker_pid"])
                if len(pids) >= workers:
                    return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"server on {port}: {len(pids)} of {workers} workers ready after {timeout} s")


def stop(proc: subprocess.Popen) -> None:
    os.killpg(proc.pid, 15)
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, 9)
        proc.wait()


def clients_by_worker(ports: list[int], want: int = 2, tries: int = 64) -> list:
    """Keep-alive clients, one per distinct worker process (over `ports`)."""
    import httpx

    found: dict[int, httpx.Client] = {}
    for i in range(tries):
        port = ports[i % len(ports)]
        c = httpx.Client(base_url=f"http://127.0.0.1:{port}", headers={"X-API-Key": KEY}, timeout=30,
                         limits=httpx.Limits(max_connections=1, max_keepalive_connections=1))
        pid = c.get("/readyz").json()["log"]["worker_pid"]
        if pid in found:
            c.close()
        else:
            found[pid] = c
        if len(found) >= want:
            return list(found.values())
    raise RuntimeError(f"reached only {len(found)} worker(s) in {tries} connections")


def visibility(writer, reader, n: int, dim: int, first_id: int) -> np.ndarray:
    """ms from a post's 2xx on `writer` to its first 200 on `reader`, n posts."""
    rng = np.random.default_rng(0)
    out = []
    for i in range(n):
        pid = first_id + i
        r = writer.post("/v1/posts", json={"post_id": pid, "features": {"vec": rng.standard_normal(dim).tolist()}})
        assert r.status_code == 201, r.text
        t0 = time.perf_counter()
        while reader.get(f"/v1/posts/{pid}/similar", params={"k": 1}).status_code != 200:
            pass
        out.append((time.perf_counter() - t0) * 1e3)
    return np.array(out)


def write_load(port: int, post_ids: np.ndarray, conns: int, duration: float) -> dict:
    import httpx

    lat: list[float] = []
    bad = [0]
    stop_at = time.time() + duration

    def worker(seed: int) -> None:
        r = np.random.default_rng(seed)
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", headers={"X-API-Key": KEY}, timeout=30) as c:
            while time.time() < stop_at:
                body = {"events": [{"user_id": int(r.integers(0, 1_000_000)), "post_id": int(r.choice(post_ids))}]}
                t0 = time.perf_counter()
                resp = c.post("/v1/events", json=body)
                lat.append((time.perf_counter() - t0) * 1e3)
                bad[0] += resp.status_code != 200

    ts = [threading.Thread(target=worker, args=(s,)) for s in range(conns)]
    t0 = time.time()
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    return {"wps": len(lat) / (time.time() - t0), "p50": float(np.percentile(lat, 50)), "p99": float(np.percentile(lat, 99)),
            "non2xx": bad[0]}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--posts", type=int, default=20_000)
    ap.add_argument("--writes", type=int, default=200, help="posts per visibility measurement")
    ap.add_argument("--duration", type=float, default=10.0, help="seconds per write-throughput run")
    ap.add_argument("--conns", type=int, default=8)
    ap.add_argument("--poll-ms", type=int, default=10, help="RECSYS_LOG_POLL_MS of the servers")
    ap.add_argument("--only", default="vis_sqlite,vis_pg,writes", help="comma list: vis_sqlite, vis_pg, writes")
    args = ap.parse_args()
    from index.bundle import load_bundle
    from index.from_vectors import build_from_latents, synthetic_catalogue
    from tests.pg import binaries, free_port, throwaway_postgres

    only = set(args.only.split(","))
    tmp = Path(tempfile.mkdtemp(prefix="recsys-bench-log-"))
    root = tmp / "index"
    cat, _ = synthetic_catalogue(args.posts, 16, n_users=200, n_authors=100, seed=0, n_clusters=32)
    build_from_latents(cat, root, factory="Flat", k=20, max_history=20, n_queries=50)
    post_ids = load_bundle(root).post_ids
    base = {"RECSYS_INDEX_ROOT": str(root), "RECSYS_LOG_POLL_MS": str(args.poll_ms)}
    print(f"bundle: {args.posts} posts x 16; poll {args.poll_ms} ms; load average {os.getloadavg()}", flush=True)
    pg = throwaway_postgres() if binaries() is not None and ({"vis_pg", "writes"} & only) else None
    server = pg.__enter__() if pg is not None else None
    results = {}
    try:
        if "vis_sqlite" in only:
            port = free_port()
            p = start(port, {**base, "RECSYS_ONLINE_LOG": str(tmp / "vis.sqlite3")}, workers=2)
            try:
                wait_ready(port, p, workers=2)
                w, r = clients_by_worker([port])
                ms = visibility(w, r, args.writes, 16, 10**9)
                results["visibility sqlite --workers 2"] = ms
            finally:
                stop(p)
        if "vis_pg" in only and server is not None:
            url = server.new_database()
            ports = [free_port(), free_port()]
            while ports[1] == ports[0]:
                ports[1] = free_port()
            ps = [start(pt, {**base, "RECSYS_ONLINE_LOG": url}) for pt in ports]
            try:
                for pt, p in zip(ports, ps):
                    wait_ready(pt, p)
                w, r = clients_by_worker(ports)
                results["visibility postgres 2 servers"] = visibility(w, r, args.writes, 16, 2 * 10**9)
            finally:
                for p in ps:
                    stop(p)
        for name, ms in results.items():
            print(f"{name}: p50 {np.percentile(ms, 50):.2f} ms, p99 {np.percentile(ms, 99):.2f} ms, max {ms.max():.2f} ms "
                  f"({len(ms)} writes)", flush=True)
        if "writes" in only:
            engines = {"off": "off", "sqlite": str(tmp / "w.sqlite3")}
            if server is not None:
                engines["postgres"] = server.new_database()
            for name, log in engines.items():
                port = free_port()
                p = start(port, {**base, "RECSYS_ONLINE_LOG": log})
                try:
                    wait_ready(port, p)
                    write_load(port, post_ids, args.conns, 2)  # warm-up
                    w = write_load(port, post_ids, args.conns, args.duration)
                finally:
                    stop(p)
                print(f"writes, log {name:8s}: {w['wps']:7.0f} writes/s, p50 {w['p50']:.2f} ms, p99 {w['p99']:.2f} ms, "
                      f"non-2xx {w['non2xx']} ({args.conns} conns, {args.duration:.0f} s)", flush=True)
        print(f"load average after: {os.getloadavg()}")
    finally:
        if pg is not None:
            pg.__exit__(None, None, None)
    return 0


if __name__ == "__main__":
    sys.exit(main())
