"""bench/encoders.py runs end to end (slow: off by default; `pytest -m slow`)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[3] / "bench" / "encoders.py"


@pytest.mark.slow
def test_bench_prints_posts_per_second(capsys):
    spec = importlib.util.spec_from_file_location("bench_encoders", BENCH)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    argv = ["--texts", "8", "--images", "2", "--videos", "1", "--video-seconds", "1", "--frames", "2", "--device", "cpu"]
    assert mod.main(argv) == 0
    out = capsys.readouterr().out
    for m in ("text", "image", "video"):
        assert any(line.strip().startswith(m) and "posts/s" in line for line in out.splitlines())
