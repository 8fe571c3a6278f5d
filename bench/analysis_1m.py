"""Interest clusters at 1M posts: the build-time cost of clustering, and the latency of
GET /v1/trends and GET /v1/users/{id}/profile on a real server.

    .venv/bin/python bench/analysis_1m.py [--n 1000000] [--dim 64] [--events 3000000] [--out /tmp/bench/analysis-1m]

The bundle: seeded clustered latents and a freshly initialised model (index.from_vectors), plus
`--events` engagement events spread over 60 days (each on a post of a user's history cluster,
a few clusters surging in the last day), so the bundle's hourly activity has the shape of a
real one. Clustering runs the k rule (unless --clusters) and k-means over all latents.
The server: `recsys serve` (uvicorn, one worker) on 127.0.0.1:--port; latency measured by one
sequential client (httpx, keep-alive) after a warm-up. Prints a table.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def events_for(cat, n_events: int, days: float, now_us: int, seed: int = 0):
    import polars as pl

    rng = np.random.default_rng(seed)
    pid = cat.post_ids[rng.integers(0, len(cat.post_ids), n_events)]
    ts = now_us - rng.integers(0, int(days * 86400e6), n_events).astype(np.int64)
    # 20 random posts' neighbourhoods surge in the last day: 2% of the events, recent
    hot = cat.post_ids[rng.integers(0, len(cat.post_ids), 20)]
    m = n_events // 50
    pid[:m] = hot[rng.integers(0, 20, m)]
    ts[:m] = now_us - rng.integers(0, int(86400e6), m)
    return pl.DataFrame({"post_id": pid, "ts": pl.Series(ts).cast(pl.Datetime("us", "UTC"))})


def serve_and_time(root: Path, port: int, users: list[int], n: int) -> dict:
    import httpx

    env = {**os.environ, "RECSYS_INDEX_ROOT": str(root), "RECSYS_API_KEY": "bench"}
    proc = subprocess.Popen([sys.executable, "-m", "recsys.cli", "serve", "--index", str(root), "--host", "127.0.0.1",
                             "--port", str(port)], cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    out = {}
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=120) as c:
            for _ in range(600):
                try:
                    if c.get("/readyz").status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                time.sleep(1)
            t0 = time.perf_counter()
            first = c.get("/v1/trends", params={"window": "24h"})
            out["first_trends_ms (builds the per-bundle view)"] = round(1000 * (time.perf_counter() - t0), 1)
            assert first.status_code == 200, first.text
            out["top_trend"] = {k: first.json()["items"][0][k] for k in ("cluster_id", "score", "observed", "expected")}
            for name, make in (("trends 24h", lambda i: ("/v1/trends", {"window": "24h"})),
                               ("trends 6h", lambda i: ("/v1/trends", {"window": "6h"})),
                               ("profile", lambda i: (f"/v1/users/{users[i % len(users)]}/profile", None))):
                for i in range(20):  # warm-up
                    path, params = make(i)
                    c.get(path, params=params)
                lat = []
                for i in range(n):
                    path, params = make(i)
                    t0 = time.perf_counter()
                    r = c.get(path, params=params)
                    lat.append(1000 * (time.perf_counter() - t0))
                    assert r.status_code == 200, r.text
                out[name] = {"p50_ms": round(float(np.percentile(lat, 50)), 2), "p99_ms": round(float(np.percentile(lat, 99)), 2)}
    finally:
        proc.terminate()
        proc.wait(30)
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--n", type=int, default=1_000_000)
    p.add_argument("--dim", type=int, default=64)
    p.add_argument("--users", type=int, default=100_000)
    p.add_argument("--events", type=int, default=3_000_000)
    p.add_argument("--clusters", type=int, default=None, help="fix k (default: the k rule)")
    p.add_argument("--out", type=Path, default=Path("/tmp/bench/analysis-1m"))
    p.add_argument("--port", type=int, default=18201)
    p.add_argument("--requests", type=int, default=200)
    a = p.parse_args()
    from index.from_vectors import build_from_latents, synthetic_catalogue
    from recsys.analysis.store import read_analysis

    now_us = int(time.time() * 1e6)
    cat, _ = synthetic_catalogue(a.n, a.dim, n_users=a.users, n_authors=max(10, a.n // 100), seed=0, n_clusters=1024,
                                 span_days=60, now_us=now_us)
    ev = events_for(cat, a.events, 60, now_us)
    t0 = time.perf_counter()
    path, _ = build_from_latents(cat, a.out, k=100, n_queries=1000, keep=2, events=ev, n_clusters=a.clusters)
    total = time.perf_counter() - t0
    info = read_analysis(path / "analysis").info
    res = {"posts": a.n, "events": a.events, "k": info["k"], "silhouette": info["silhouette"],
           "analysis_seconds": info["seconds"], "whole_bundle_seconds": round(total, 1)}
    users = [int(u) for u in cat.histories["user_id"].to_numpy()[:: max(1, a.users // 500)]]
    res["http"] = serve_and_time(a.out, a.port, users, a.requests)
    print(json.dumps(res, indent=1))


if __name__ == "__main__":
    main()
