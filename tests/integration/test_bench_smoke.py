"""Smoke runs of the benchmark scripts at a small size (slow: run with -m slow)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_index_and_http_bench_scripts_run(tmp_path):
    out = tmp_path / "index"
    r = subprocess.run([sys.executable, str(ROOT / "bench" / "index_1m.py"), "--n", "20000", "--users", "300", "--out", str(out)],
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
    assert "recall@100 (1000 user queries, ties allowed)" in r.stdout and "raw FAISS search p50" in r.stdout
    if shutil.which("wrk") is None:
        pytest.skip("wrk not installed")
    r = subprocess.run([sys.executable, str(ROOT / "bench" / "http_1m.py"), "--index", str(out), "--duration", "2",
                        "--users", "300"], capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
    assert "feed API, every filter on" in r.stdout and "non-2xx" in r.stdout
    rows = [line for line in r.stdout.splitlines() if line.strip().startswith(("bare FAISS", "feed API, "))]
    assert rows and all(line.split()[-1] == "0" for line in rows if "x bare" not in line), rows  # no failed requests
