"""Web page load time at scale: the feed viewer (`/ui/`) with 20 cards, in headless Chromium,
against `serving.main:app` (one uvicorn worker) on an N-post bundle with post text and media.

    .venv/bin/python bench/ui_page.py [--n 1000000] [--out /tmp/recsys-bench/ui-1m] [--loads 10]

Builds (or reuses) a bundle from seeded clustered latents (index.from_vectors) whose data root
(`write_posts_dataset`) gives every post a text and two of three an image or video (copies of the
tiny synthetic platform's media). Then, per page load (a fresh navigation, another user each
time): the time from navigation start until 20 cards are in the DOM and every thumbnail has
decoded (naturalWidth > 0), and the browser's own timings of the two API calls behind it
(POST /v1/recommendations, POST /v1/posts:lookup). The first load is reported apart: it includes
reading the data root's posts.parquet (once per bundle). Needs Debian's chromium + chromium-driver.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.http_1m import free_port, start, wait_ready  # noqa: E402

DONE = """const cards = document.querySelectorAll('#feed .card');
  const imgs = [...document.querySelectorAll('#feed img')];
  return cards.length === arguments[0] && imgs.every(i => i.complete && i.naturalWidth > 0) ? performance.now() : null;"""
API = """const e = performance.getEntriesByType('resource');
  const d = (p) => Math.max(0, ...e.filter(x => x.name.includes(p)).map(x => x.duration));
  return [d('/v1/recommendations'), d('/v1/posts:lookup'), document.querySelectorAll('#feed img').length];"""


def build(out: Path, n: int, dim: int, users: int) -> Path:
    from index.from_vectors import build_from_latents, synthetic_catalogue, write_posts_dataset
    from recsys.data.synth import SynthConfig, synthesize

    root = out / "index"
    if (root / "CURRENT").is_file():
        print(f"reusing {root}")
        return root
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        synth = Path(tmp) / "synth"
        synthesize(synth, SynthConfig.preset("tiny", seed=0))
        import polars as pl

        p = pl.read_parquet(synth / "posts.parquet")
        media = [synth / x for x in p["image_path"].drop_nulls().head(12).to_list() + p["video_path"].drop_nulls().head(3).to_list()]
        cat, _ = synthetic_catalogue(n, dim, n_users=users, n_authors=max(10, n // 100), seed=0, n_clusters=1024)
        data = write_posts_dataset(cat, out / "data", media)
    build_from_latents(cat, root, k=100, n_queries=1000, keep=1, dataset=data)
    print(f"built {n:,}-post bundle + data root in {time.perf_counter() - t0:.0f} s under {out}")
    return root


def browser():
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    o = webdriver.ChromeOptions()
    o.binary_location = "/usr/bin/chromium"
    for a in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu", "--window-size=1366,1000"):
        o.add_argument(a)
    return webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=o)


def load(d, url: str, k: int, timeout: float = 120) -> tuple[float, float, float, int]:
    """(page ms until k cards with decoded thumbnails, recommendations ms, lookup ms, images)."""
    d.get(url)
    t_end = time.time() + timeout
    while True:
        t = d.execute_script(DONE, k)
        if t:
            rec, look, n_img = d.execute_script(API)
            return float(t), float(rec), float(look), int(n_img)
        if time.time() > t_end:
            raise RuntimeError(f"page did not show {k} cards in {timeout} s: {d.find_element('id', 'status').text}")
        time.sleep(0.005)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=1_000_000)
    ap.add_argument("--dim", type=int, default=64)
    ap.add_argument("--users", type=int, default=10_000)
    ap.add_argument("--out", type=Path, default=Path("/tmp/recsys-bench/ui-1m"))
    ap.add_argument("--loads", type=int, default=10, help="warm page loads (each a different user)")
    ap.add_argument("--k", type=int, default=20)
    a = ap.parse_args()
    root = build(a.out, a.n, a.dim, a.users)
    port = free_port()
    proc = start("serving.main:app", port, {"RECSYS_INDEX_ROOT": str(root)})
    try:
        t0 = time.perf_counter()
        wait_ready(port, "/readyz", proc)
        print(f"server ready in {time.perf_counter() - t0:.1f} s")
        d = browser()
        try:
            base = f"http://127.0.0.1:{port}/ui/"
            rows = [load(d, f"{base}?0#user=0", a.k)]
            for u in range(1, a.loads + 1):
                rows.append(load(d, f"{base}?{u}#user={u}", a.k))
        finally:
            d.quit()
    finally:
        proc.terminate()
        proc.wait(30)
    first, warm = rows[0], np.array(rows[1:])
    print(f"\nfeed viewer, {a.k} cards, {a.n:,} posts, one uvicorn worker, headless Chromium, {os.cpu_count()} CPUs")
    print("| load | page ms (cards + thumbnails decoded) | POST /v1/recommendations ms | POST /v1/posts:lookup ms | images |")
    print("|---|---|---|---|---|")
    print(f"| first (reads posts.parquet) | {first[0]:.0f} | {first[1]:.0f} | {first[2]:.0f} | {first[3]} |")
    med, p90 = np.median(warm, 0), np.percentile(warm, 90, 0)
    print(f"| next {len(warm)}, median | {med[0]:.0f} | {med[1]:.1f} | {med[2]:.1f} | {int(med[3])} |")
    print(f"| next {len(warm)}, p90 | {p90[0]:.0f} | {p90[1]:.1f} | {p90[2]:.1f} | |")


if __name__ == "__main__":
    main()
