"""Crash test, both log engines: concurrent clients send posts, deletes and event batches to a
real `recsys serve` (uvicorn) process, which is killed with SIGKILL mid-stream; after a restart
every acknowledged write is there, every acknowledged delete still in force, and each event
batch (one request) is there as a whole or not at all."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import numpy as np
import pytest

from tests.pg import free_port

KEY = {"X-API-Key": "k"}
N = 20  # acknowledged writes of each kind before the kill
N_POSTS = 1500


@pytest.fixture(scope="module")
def bundle_root(tmp_path_factory) -> Path:
    from index.from_vectors import build_from_latents, synthetic_catalogue

    root = tmp_path_factory.mktemp("crash") / "index"
    cat, _ = synthetic_catalogue(N_POSTS, 16, n_users=40, n_authors=30, seed=3, n_clusters=8)
    build_from_latents(cat, root, factory="Flat", k=20, max_history=20, n_queries=20)
    return root


def start_server(root: Path, log: str, port: int) -> subprocess.Popen:
    env = {**os.environ, "RECSYS_API_KEY": "k", "RECSYS_OPEN_READS": "true", "RECSYS_ONLINE_LOG": log, "RECSYS_K_MAX": "5000", "RECSYS_LOG_POLL_MS": "5"}
    proc = subprocess.Popen([sys.executable, "-m", "recsys.cli", "serve", "--index", str(root), "--port", str(port),
                             "--log-level", "warning"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    t0 = time.time()
    while time.time() - t0 < 120:
        if proc.poll() is not None:
            raise RuntimeError(f"server died: {proc.stderr.read().decode()[-3000:]}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=1).status_code == 200:
                return proc
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    proc.kill()
    raise RuntimeError("server not ready after 120 s")


@pytest.mark.parametrize("engine", ["sqlite", "postgres"])
def test_kill_9_loses_no_acknowledged_write(bundle_root, tmp_path, request, engine):
    log = str(tmp_path / "log.sqlite3") if engine == "sqlite" else request.getfixturevalue("postgres").new_database()
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    proc = start_server(bundle_root, log, port)
    with httpx.Client(base_url=base, timeout=10) as c:
        bundle_ids = [i["post_id"] for i in c.post("/v1/recommendations", json={"k": N_POSTS}).json()["items"]]
    victims, event_posts = bundle_ids[: N_POSTS // 2], bundle_ids[N_POSTS // 2 :]  # disjoint
    acked: dict[str, list] = {"post": [], "delete": [], "events": []}
    stop = threading.Event()
    refused: list[str] = []

    def client(kind: str, wid: int) -> None:
        rng = np.random.default_rng(wid)
        with httpx.Client(base_url=base, timeout=10, headers=KEY) as c:
            for i in range(10_000):
                if stop.is_set() or (kind == "delete" and i >= 300):
                    return
                try:
                    if kind == "post":
                        pid = 10**9 + wid * 100_000 + i
                        r = c.post("/v1/posts", json={"post_id": pid, "author_id": 7,
                                                      "features": {"vec": rng.standard_normal(16).tolist()}})
                        ok, what = r.status_code == 201, pid
                    elif kind == "delete":
                        pid = victims[wid * 300 + i]
                        r = c.delete(f"/v1/posts/{pid}")
                        ok, what = r.status_code == 200, pid
                    else:
                        user = 10**8 + wid * 100_000 + i
                        batch = [int(x) for x in rng.choice(event_posts, 3, replace=False)]
                        r = c.post("/v1/events", json={"events": [{"user_id": user, "post_id": p} for p in batch]})
                        ok, what = r.status_code == 200, (user, batch)
                except httpx.HTTPError:
                    return  # the server is gone
                if not ok:
                    refused.append(f"{kind}: {r.status_code} {r.text}")
                    return
                acked[kind].append(what)

    threads = [threading.Thread(target=client, args=(k, w)) for k in acked for w in (0, 1)]
    for t in threads:
        t.start()
    t0 = time.time()
    while min(len(v) for v in acked.values()) < N and time.time() - t0 < 120:
        time.sleep(0.01)
    os.kill(proc.pid, signal.SIGKILL)  # mid-stream: the clients are still writing
    proc.wait()
    stop.set()
    for t in threads:
        t.join()
    print({k: len(v) for k, v in acked.items()}, "acknowledged before the kill")
    assert not refused, refused
    assert min(len(v) for v in acked.values()) >= N, {k: len(v) for k, v in acked.items()}

    proc = start_server(bundle_root, log, port)
    try:
        with httpx.Client(base_url=base, timeout=30) as c:
            for pid in acked["post"]:
                assert c.get(f"/v1/posts/{pid}/similar?k=1").status_code == 200, f"acknowledged post {pid} lost"
            for pid in acked["delete"]:
                assert c.get(f"/v1/posts/{pid}/similar?k=1").status_code == 404, f"deleted post {pid} is back"
            served = {i["post_id"] for i in c.post("/v1/recommendations", json={"k": 5000}).json()["items"]}
            assert not served & set(acked["delete"]) and set(acked["post"]) <= served
            users = {u: b for u, b in acked["events"]}
            # every user of a batch that was written at all: its whole batch is seen, never a part
            from recsys.online_log import open_log, records

            with open_log(log) as lg:
                logged = [records.read_events(e.payload) for e in lg.read_after(0, 100_000) if e.kind == "events"]
            assert all(len(b) == 3 for b in logged)
            logged_users = {b[0][0]: [p for _, p, _, _ in b] for b in logged}
            assert set(users) <= set(logged_users)  # every acknowledged batch is in the log
            for u, batch in list(logged_users.items())[-10:] + [(u, users[u]) for u in list(users)[:10]]:
                r = c.post("/v1/recommendations", json={"user_id": u, "k": 5000}).json()
                shown = {i["post_id"] for i in r["items"]}
                assert r["user_known"] and not shown & set(batch), f"user {u}: batch {batch} not (all) applied"
    finally:
        proc.kill()
        proc.wait()
