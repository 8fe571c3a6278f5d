"""HTTP benchmark on loopback: the feed API vs a bare FAISS endpoint, same index, same run.

    .venv/bin/python bench/http_1m.py [--index /tmp/recsys-bench/index-1m] [--duration 15] [--conns 16]
                                      [--workers 2] [--rounds 3]
                                      [--loop uvloop --http httptools]

Needs the 1M bundle (`bench/index_1m.py` builds it; this script builds it too when absent) and
`wrk` (Debian: apt-get install -y wrk; a Python thread-pool client is used when wrk is missing).
Starts two servers on 127.0.0.1, both the way `recsys serve` starts the feed API
(`serving.cli.serve`: uvicorn on a TCP_NODELAY socket, --workers processes, the same --loop and
--http): `serving.main:app` (the real feed API, RECSYS_INDEX_ROOT=the bundle) and
`bench.bare_app:app` (only `index.search`), then measures for each of: the framework floor
(/noop: same request model, no search); bare /search k=100; /v1/recommendations k=100 without
filters; the same with every filter on (exclude_seen, exclude_authors, exclude_post_ids,
max_age_seconds, author_cap):
  - single-request latency: 1 connection, sequential (p50 / p99)
  - throughput: --conns concurrent connections (req/s, p50 / p99, non-2xx count)
  - the server's CPU time per request (all its processes), which a busy machine disturbs less
    than wall-clock figures
and prints a table with the ratios the targets are stated in, and the load average.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import socket
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


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


WORKERS = 1  # uvicorn worker processes per server (--workers; both servers alike)
UVICORN: dict = {}  # uvicorn options for both servers (--loop, --http)
SERVE = ("import sys; from serving.cli import serve; "
         "serve(sys.argv[1], '127.0.0.1', int(sys.argv[2]), int(sys.argv[3]), log_level='warning', access_log=False, "
         "**dict(a.split('=', 1) for a in sys.argv[4:]))")


def start(app: str, port: int, env: dict) -> subprocess.Popen:
    """One server, launched as `recsys serve` launches the feed API (serving.cli.serve: TCP_NODELAY
    on the listening socket, one process or WORKERS processes), with UVICORN's options."""
    cmd = [PY, "-c", SERVE, app, str(port), str(WORKERS), *(f"{k}={v}" for k, v in UVICORN.items())]
    return subprocess.Popen(cmd, cwd=ROOT, env={**os.environ, **env}, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def wait_ready(port: int, path: str, proc: subprocess.Popen, timeout: float = 300) -> None:
    import httpx

    t0 = time.time()
    while time.time() - t0 < timeout:
        if proc.poll() is not None:
            raise RuntimeError(f"server on {port} died: {proc.stderr.read().decode()[-2000:]}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}{path}", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise RuntimeError(f"server on {port} not ready after {timeout} s")


def worker_clients(port: int, workers: int, tries: int = 200) -> list:
    """One keep-alive httpx client connected to each worker process of the feed API (a kept-alive
    connection stays with the worker that accepted it; /readyz names that worker's pid)."""
    import httpx

    by_pid: dict[int, httpx.Client] = {}
    for _ in range(tries):
        c = httpx.Client(base_url=f"http://127.0.0.1:{port}")
        pid = c.get("/readyz").json()["log"]["worker_pid"]
        if pid in by_pid:
            c.close()
        else:
            by_pid[pid] = c
        if len(by_pid) == workers:
            return list(by_pid.values())
    raise RuntimeError(f"reached {len(by_pid)} of {workers} workers in {tries} connections")


def user_vectors(root: Path, n_users: int) -> np.ndarray:
    """Query vectors of the bench users through the real user tower (what the feed API computes)."""
    from serving.schemas import RecommendRequest
    from serving.settings import Settings
    from serving.state import ServingState

    st = ServingState.load(Settings(index_root=root, profile_cache=0))
    out = np.zeros((n_users, st.d), np.float32)
    for s in range(0, n_users, 512):
        preps = [st.prepare(RecommendRequest(user_id=u, k=1)) for u in range(s, min(n_users, s + 512))]
        st.profiles(preps, [False] * len(preps))
        for i, p in enumerate(preps):
            out[s + i] = p.query if p.query is not None else 0
    return out


LUA = """
math.randomseed(%(seed)d)
local bodies = {}
for i = 1, 4096 do
  local u = math.random(0, %(users)d - 1)
  bodies[i] = string.format(%(template)s, u)
end
local n = 0
request = function()
  n = n %% 4096 + 1
  return wrk.format("POST", "%(path)s", {["Content-Type"] = "application/json"}, bodies[n])
end
"""


def _ms(v: str) -> float:
    m = re.match(r"([\d.]+)(us|ms|s)", v)
    x, u = float(m.group(1)), m.group(2)
    return x / 1000 if u == "us" else x * 1000 if u == "s" else x


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process and its descendants (the worker processes), seconds (Linux
    /proc): CPU per request survives a busy machine better than wall-clock latency does."""
    tick = os.sysconf("SC_CLK_TCK")
    stats = {}
    for p in Path("/proc").iterdir():
        if p.name.isdigit():
            try:
                f = (p / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:  # gone meanwhile
                continue
            stats[int(p.name)] = (int(f[1]), (int(f[11]) + int(f[12])) / tick)  # ppid, cpu s
    total, todo = 0.0, [pid]
    while todo:
        q = todo.pop()
        total += stats.get(q, (0, 0.0))[1]
        todo += [c for c, (ppid, _) in stats.items() if ppid == q]
    return total


def run_wrk(port: int, path: str, template: str, users: int, conns: int, threads: int, duration: int) -> dict:
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as f:
        f.write(LUA % {"seed": 1, "users": users, "template": json.dumps(template), "path": path})
        script = f.name
    cmd = ["wrk", f"-t{threads}", f"-c{conns}", f"-d{duration}s", "--latency", "-s", script, f"http://127.0.0.1:{port}"]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=duration + 60).stdout
    os.unlink(script)
    lat = dict(re.findall(r"^\s+(50|75|90|99)%\s+(\S+)", out, re.M))
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errs = re.search(r"Socket errors: (.*)", out)
    return {"rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)), "p50": _ms(lat["50"]), "p99": _ms(lat["99"]),
            "non2xx": int(non2xx.group(1)) if non2xx else 0, "errors": errs.group(1) if errs else "", "raw": out}


def run_py(port: int, path: str, template: str, users: int, conns: int, duration: int) -> dict:
    """Fallback load generator: `conns` threads, each a keep-alive httpx client, for `duration` s."""
    import httpx

    lat, bad, stop = [], [0], time.time() + duration
    rng = np.random.default_rng(1)

    def worker(seed: int) -> None:
        r = np.random.default_rng(seed)
        with httpx.Client(base_url=f"http://127.0.0.1:{port}") as c:
            while time.time() < stop:
                body = template % int(r.integers(0, users))
                t0 = time.perf_counter()
                resp = c.post(path, content=body, headers={"Content-Type": "application/json"})
                lat.append((time.perf_counter() - t0) * 1e3)
                bad[0] += resp.status_code != 200

    ts = [threading.Thread(target=worker, args=(int(rng.integers(1 << 30)),)) for _ in range(conns)]
    t0 = time.time()
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    return {"rps": len(lat) / (time.time() - t0), "p50": float(np.percentile(lat, 50)), "p99": float(np.percentile(lat, 99)),
            "non2xx": bad[0], "errors": ""}


def measure(port: int, pid: int, path: str, tmpl: str, users: int, args: argparse.Namespace, use_wrk: bool) -> tuple[dict, dict]:
    """Single-request latency (1 connection), then throughput (--conns connections), each with the
    server's CPU time per request."""
    import httpx

    for i in range(200):  # warm-up
        httpx.post(f"http://127.0.0.1:{port}{path}", content=tmpl % i, headers={"Content-Type": "application/json"})
    c0 = cpu_seconds(pid)
    if use_wrk:
        single = run_wrk(port, path, tmpl, users, 1, 1, args.duration)
        c1 = cpu_seconds(pid)
        conc = run_wrk(port, path, tmpl, users, args.conns, args.threads, args.duration)
    else:
        single = run_py(port, path, tmpl, users, 1, args.duration)
        c1 = cpu_seconds(pid)
        conc = run_py(port, path, tmpl, users, args.conns, args.duration)
    c2 = cpu_seconds(pid)
    single["cpu_ms"] = (c1 - c0) * 1e3 / max(single["rps"] * args.duration, 1)
    conc["cpu_ms"] = (c2 - c1) * 1e3 / max(conc["rps"] * args.duration, 1)
    return single, conc


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--index", type=Path, default=Path("/tmp/recsys-bench/index-1m"))
    ap.add_argument("--duration", type=int, default=15, help="seconds per wrk run")
    ap.add_argument("--conns", type=int, default=16)
    ap.add_argument("--threads", type=int, default=2, help="wrk threads")
    ap.add_argument("--users", type=int, default=10_000)
    ap.add_argument("--k", type=int, default=100)
    ap.add_argument("--faiss-threads", type=int, default=1,
                    help="OpenMP threads for FAISS in BOTH servers (0 = faiss default = all cores)")
    ap.add_argument("--feed-env", action="append", default=[], metavar="KEY=VALUE",
                    help="extra environment for the feed API server, e.g. RECSYS_MICROBATCH=false")
    ap.add_argument("--only", default=None, help="comma list of configs to run (floor,bare,plain,filters)")
    ap.add_argument("--workers", type=int, default=1, help="uvicorn workers per server, the same for both")
    ap.add_argument("--rounds", type=int, default=1, help="measure every endpoint this many times, interleaved; "
                    "figures are medians, ratios are taken per round")
    ap.add_argument("--loop", default="auto", help="uvicorn event loop for both servers (auto, asyncio, uvloop)")
    ap.add_argument("--http", default="auto", help="uvicorn HTTP parser for both servers (auto, h11, httptools)")
    args = ap.parse_args()
    global WORKERS
    WORKERS = args.workers
    UVICORN.update(loop=args.loop, http=args.http)
    load0 = os.getloadavg()[0]
    from index.bundle import current_version, load_bundle

    if not current_version(args.index):
        print(f"no bundle at {args.index}: building it (bench/index_1m.py)", flush=True)
        subprocess.run([PY, str(ROOT / "bench" / "index_1m.py"), "--out", str(args.index)], check=True)
    b = load_bundle(args.index, mmap=True)
    users = min(args.users, len(b.histories))
    print(f"bundle {b.version}: {b.n:,} posts x {b.manifest['dim']}, {b.manifest['factory']} "
          f"{b.manifest['search']['param']}={b.manifest['search']['value']}, recall@100 {b.manifest['recall']['measured']}", flush=True)
    np.save(args.index / "bench_users.npy", user_vectors(args.index, users))
    # filters: the newest 75% of posts (age), 3 authors, 5 posts, the user's seen set, 2 per author
    age_s = (time.time() * 1e6 - np.quantile(b.created_at_us, 0.25)) / 1e6
    authors = [int(a) for a in b.author_ids[:3]]
    posts = [int(p) for p in b.post_ids[-5:]]
    filters = json.dumps({"exclude_seen": True, "exclude_authors": authors, "exclude_post_ids": posts,
                          "max_age_seconds": round(age_s), "author_cap": 2})
    configs = {
        "floor": ("bare", "/noop", '{"user_id": %d, "k": ' + str(args.k) + "}"),
        "bare": ("bare", "/search", '{"user_id": %d, "k": ' + str(args.k) + "}"),
        "plain": ("feed", "/v1/recommendations", '{"user_id": %d, "k": ' + str(args.k) + ', "filters": {"exclude_seen": false}}'),
        "filters": ("feed", "/v1/recommendations", '{"user_id": %d, "k": ' + str(args.k) + ', "filters": ' + filters.replace("%", "%%") + "}"),
    }
    if args.only:
        configs = {k: v for k, v in configs.items() if k in args.only.split(",")}
    ports = {"feed": free_port(), "bare": free_port()}
    procs = {
        "feed": start("serving.main:app", ports["feed"], {"RECSYS_INDEX_ROOT": str(args.index), "RECSYS_API_KEY": KEY,
                                                         "RECSYS_OPEN_READS": "true",  # loopback bench
                                                         "RECSYS_FAISS_THREADS": str(args.faiss_threads),
                                                         **dict(kv.split("=", 1) for kv in args.feed_env)}),
        "bare": start("bench.bare_app:app", ports["bare"], {"BENCH_INDEX_ROOT": str(args.index),
                                                            "BENCH_FAISS_THREADS": str(args.faiss_threads)}),
    }
    try:
        wait_ready(ports["feed"], "/readyz", procs["feed"])
        wait_ready(ports["bare"], "/docs", procs["bare"])
        import httpx

        # the two servers answer the same search: compare the top-k ids for a few users
        overlap = []
        for u in range(20):
            a = httpx.post(f"http://127.0.0.1:{ports['bare']}/search", json={"user_id": u, "k": args.k}).json()["ids"]
            r = httpx.post(f"http://127.0.0.1:{ports['feed']}/v1/recommendations",
                           json={"user_id": u, "k": args.k, "filters": {"exclude_seen": False}}).json()
            overlap.append(len(set(a) & {i["post_id"] for i in r["items"]}) / max(len(a), 1))
        print(f"feed vs bare top-{args.k} id overlap (no filters): {np.mean(overlap):.3f}", flush=True)
        # steady state: the feed API's profile cache holds the bench users (the bare endpoint reads
        # precomputed vectors); the cold cost is one user-tower call per user, reported separately
        # (each worker process has its own cache: warm it through a connection to each of them)
        t0 = time.perf_counter()
        clients = worker_clients(ports["feed"], WORKERS)
        for s in range(0, users, 256):
            for c in clients:
                c.post("/v1/recommendations:batch", timeout=60,
                       json={"requests": [{"user_id": u, "k": 1} for u in range(s, min(users, s + 256))]})
        for c in clients:
            c.close()
        print(f"warmed the feed API's profile cache for {users} users in {WORKERS} worker(s) in {time.perf_counter() - t0:.1f} s "
              f"({(time.perf_counter() - t0) / users / WORKERS * 1e3:.2f} ms per user, batched by 256)", flush=True)
        use_wrk = shutil.which("wrk") is not None
        results: dict[str, list[tuple[dict, dict]]] = {name: [] for name in configs}
        for r in range(args.rounds):  # interleaved: a busy machine drifts every endpoint alike
            order = list(configs) if r % 2 == 0 else list(configs)[::-1]
            for name in order:
                srv, path, tmpl = configs[name]
                results[name].append(measure(ports[srv], procs[srv].pid, path, tmpl, users, args, use_wrk))
                single, conc = results[name][-1]
                print(f"  round {r + 1} {name:8s} single p50 {single['p50']:.2f} ms p99 {single['p99']:.2f} ms | "
                      f"{args.conns} conns {conc['rps']:.0f} req/s p50 {conc['p50']:.2f} p99 {conc['p99']:.2f} "
                      f"non-2xx {single['non2xx'] + conc['non2xx']} {conc['errors']} | load average {os.getloadavg()[0]:.2f}",
                      flush=True)
        metrics = httpx.get(f"http://127.0.0.1:{ports['feed']}/metrics").text
    finally:
        for p in procs.values():
            p.send_signal(signal.SIGINT)
        for p in procs.values():
            try:
                p.wait(20)
            except subprocess.TimeoutExpired:
                p.kill()
    strategies = dict(re.findall(r'recsys_filter_searches_total\{strategy="(\w+)"\} ([\d.e+]+)', metrics))
    batch = re.search(r"recsys_search_batch_size_sum ([\d.e+]+)\nrecsys_search_batch_size_count ([\d.e+]+)", metrics)
    if not batch:
        s = re.search(r"recsys_search_batch_size_sum ([\d.e+]+)", metrics)
        c = re.search(r"recsys_search_batch_size_count ([\d.e+]+)", metrics)
        batch = (s, c) if s and c else None
        mean_batch = float(s.group(1)) / max(float(c.group(1)), 1) if batch else float("nan")
    else:
        mean_batch = float(batch.group(1)) / max(float(batch.group(2)), 1)
    print(f"\nHTTP benchmark, 127.0.0.1, {WORKERS} uvicorn worker(s) each (loop {args.loop}, http {args.http}), k={args.k}, "
          f"faiss threads {args.faiss_threads or 'default'}, load average {os.getloadavg()[0]:.2f} (start {load0:.2f}), "
          f"{'wrk' if use_wrk else 'python client'}, "
          f"{args.duration} s per run; mean queries per FAISS call in the feed API: {mean_batch:.2f}")
    print("  feed API search strategies (whole run): " + ", ".join(f"{k} {float(v):.0f}" for k, v in strategies.items()))
    print(f"  medians over {args.rounds} round(s):")
    print(f"  {'endpoint':34s} {'p50 ms':>7s} {'p99 ms':>7s} {'cpu ms':>7s} | {'req/s @' + str(args.conns):>10s} {'p50 ms':>7s} "
          f"{'p99 ms':>7s} {'cpu ms':>7s} {'non-2xx':>7s}   (cpu ms = server CPU time per request)")
    names = {"floor": "FastAPI floor (/noop, no search)", "bare": "bare FAISS endpoint (/search)", "plain": "feed API, no filters", "filters": "feed API, every filter on"}
    def med(rows: list, i: int, key: str) -> float:  # i: 0 single, 1 concurrent
        return float(np.median([row[i][key] for row in rows]))

    for name, rows in results.items():
        print(f"  {names[name]:34s} {med(rows, 0, 'p50'):7.2f} {med(rows, 0, 'p99'):7.2f} {med(rows, 0, 'cpu_ms'):7.3f} | "
              f"{med(rows, 1, 'rps'):10.0f} {med(rows, 1, 'p50'):7.2f} {med(rows, 1, 'p99'):7.2f} {med(rows, 1, 'cpu_ms'):7.3f} "
              f"{sum(a['non2xx'] + b['non2xx'] for a, b in rows):7d}")
    if "bare" in results:
        def ratio(name: str, i: int, key: str) -> str:  # per round (bare measured beside it), median [min-max]
            v = [row[i][key] / b[i][key] for row, b in zip(results[name], results["bare"])]
            return f"{np.median(v):.2f}x" + (f" [{min(v):.2f}-{max(v):.2f}]" if len(v) > 1 else "")

        for name in ("plain", "filters"):
            if name in results:
                print(f"  {names[name]} / bare, median over {args.rounds} round(s) [range]: single p99 {ratio(name, 0, 'p99')} "
                      f"(target <= 1.0x), throughput {ratio(name, 1, 'rps')} (target >= 1.5x); CPU per request "
                      f"{ratio(name, 0, 'cpu_ms')} single, {ratio(name, 1, 'cpu_ms')} at {args.conns} conns")
    return 0


if __name__ == "__main__":
    sys.exit(main())
