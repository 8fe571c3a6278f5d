"""`recsys demo`: the whole job end to end on the built-in synthetic platform.

    synth -> encode -> split -> train -> evaluate (model vs baselines, valid-selected, test
    reported) -> build-index -> serve (prints a working curl example)

Every step is the same CLI subcommand a user would run by hand, so the demo is also the
walkthrough. Outputs go under --out (default ./demo-out):
    data/        the synthetic dataset (posts, interactions, media, features, splits)
    run/         the trained model run
    report/      the evaluation report (report.md, report.json, plots)
    index/       the published FAISS bundles
Re-running reuses the dataset (encoding is incremental) unless --fresh is given.

Training uses the `default` preset (training/train.py; `tiny` for --size tiny), the one a user
trains their own data with: on the synthetic platform it is higher on valid than the platform's
own `synth` preset in 8 runs of 9 (three draws x three seeds, README). Pass --preset to override.
"""

from __future__ import annotations

import argparse
import logging
import shutil
import time
from pathlib import Path

from recsys.errors import ConfigError

logger = logging.getLogger(__name__)

DEMO_BASELINES = ("popular", "itemknn", "lightgcn", "content-knn")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", type=Path, default=Path("demo-out"), help="output directory (default: demo-out)")
    p.add_argument("--size", default="default", choices=("tiny", "small", "default"), help="synthetic platform size")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--preset", default=None, help="training preset (default: tiny for --size tiny, else default)")
    p.add_argument("--fresh", action="store_true", help="delete --out first and regenerate everything")
    p.add_argument("--no-serve", action="store_true", help="stop after build-index instead of serving the API")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8000)


def _step(name: str, argv: list[str]) -> None:
    from recsys.cli import main

    print(f"\n=== {name}: recsys {' '.join(argv)}", flush=True)
    t0 = time.perf_counter()
    rc = main(argv)
    if rc != 0:
        raise ConfigError(f"demo step {name!r} failed with exit code {rc}: recsys {' '.join(argv)}")
    print(f"=== {name} done in {time.perf_counter() - t0:.1f} s", flush=True)


def run(args: argparse.Namespace) -> int:
    out: Path = args.out
    if args.fresh and out.exists():
        shutil.rmtree(out)
    data, run_dir, report, index = out / "data", out / "run", out / "report", out / "index"
    preset = args.preset or ("tiny" if args.size == "tiny" else "default")
    t0 = time.perf_counter()

    if (data / "posts.parquet").is_file():
        print(f"=== synth: reusing {data} (use --fresh to regenerate)")
    else:
        _step("synth", ["synth", "--out", str(data), "--size", args.size, "--seed", str(args.seed)])
    _step("encode", ["encode", "--data", str(data)])
    _step("split", ["split", "--data", str(data), "--force"])  # deterministic: a re-run rewrites the same split
    _step("info", ["info", "--data", str(data)])
    if run_dir.exists():
        shutil.rmtree(run_dir)
    _step("train", ["train", "--data", str(data), "--out", str(run_dir), "--preset", preset, "--seed", str(args.seed)])
    eval_argv = ["evaluate", "--data", str(data), "--run", str(run_dir), "--split", "test", "--out", str(report)]
    for b in DEMO_BASELINES:
        eval_argv += ["--baseline", b]
    _step("evaluate", eval_argv + ["--compare"])
    md = report / "report.md"
    if md.is_file():
        print("\n" + md.read_text())
    _step("build-index", ["build-index", "--run", str(run_dir), "--data", str(data), "--out", str(index)])
    print(f"\ndemo pipeline finished in {time.perf_counter() - t0:.0f} s; artifacts under {out}/")
    if args.no_serve:
        return 0
    key = _read_key()
    header = f"-H 'X-API-Key: {key}' " if key else ""
    page = f"http://{args.host}:{args.port}/ui/" + (f"#key={key}" if key else "")
    print(
        "\nServing the API. In another terminal try:\n"
        f"  curl -s -X POST http://{args.host}:{args.port}/v1/recommendations {header}"
        "-H 'content-type: application/json' -d '{\"user_id\": 1, \"k\": 5, \"filters\": {\"exclude_seen\": true}}'\n"
        f"or open {page} in a browser (the feed, why each post is there, similar posts).\n"
        "Ctrl-C stops the server.\n",
        flush=True,
    )
    from recsys.cli import main

    return main(["serve", "--index", str(index), "--host", args.host, "--port", str(args.port)])


def _read_key() -> str | None:
    """The key that opens the read endpoints (for the curl header and the page's #key=): the
    server's RECSYS_READ_API_KEY, generated for this demo run when neither key is set (reads need a
    key unless RECSYS_OPEN_READS=true; then None)."""
    import os
    import secrets

    if os.environ.get("RECSYS_OPEN_READS", "").lower() in ("1", "true", "yes", "on"):
        return None
    key = os.environ.get("RECSYS_READ_API_KEY") or os.environ.get("RECSYS_API_KEY")
    if not key:
        key = os.environ["RECSYS_READ_API_KEY"] = secrets.token_urlsafe(12)
        print(f"\nread key for this demo run (RECSYS_READ_API_KEY): {key}")
    return key
