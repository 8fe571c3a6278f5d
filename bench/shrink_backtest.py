"""Choose `id_shrink` (recsys.model.ModelConfig) without looking at test: the platform moved one
period back (`bench/refit_backtest.py`'s dataset: test dropped, valid becomes the backtest's
test, the last slice of train as long as valid its valid), the preset trained there with the
shrinkage off, then every kappa of a grid scored on the backtest's test from train + valid
histories: ID rows that have not seen the user's latest period, as between two trainings on a
served platform. Valid cannot make this choice: there the rows have seen the whole history.

    .venv/bin/python bench/shrink_backtest.py --data D --out W [--preset default] [--seeds 0 1 2]
        [--kappas 0 2 5 10 20 50] [--set key=value ...]

Prints recall@20 per seed and kappa (overall and per history bucket) and the kappa with the best
median over the seeds (ties to the smaller kappa).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def _done(run_dir: Path) -> bool:
    info = run_dir / "run.json"
    return info.is_file() and json.loads(info.read_text()).get("status") == "done"


def main() -> None:
    from bench.refit_backtest import backtest_dataset
    from recsys.dataset import load_dataset
    from recsys.interactions import build_interaction_data
    from recsys.runs import load_run, scorer_from_run
    from training.shrink import score_kappas

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", type=Path, required=True)
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--preset", default="default")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--kappas", type=float, nargs="+", default=[0, 2, 5, 10, 20, 50])
    p.add_argument("--set", dest="overrides", nargs="*", default=[])
    args = p.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    data_dir = args.out / "data"
    if not (data_dir / "splits.parquet").is_file():
        print("backtest rows", backtest_dataset(args.data, data_dir), flush=True)
    ds = load_dataset(data_dir)
    data = build_interaction_data(ds)
    figures: dict[float, list[float]] = {float(k): [] for k in args.kappas}
    for seed in args.seeds:
        run_dir = args.out / f"run-s{seed}"
        if not _done(run_dir):
            cmd = [sys.executable, "-m", "recsys.cli", "train", "--data", str(data_dir), "--out", str(run_dir), "--preset",
                   args.preset, "--seed", str(seed), "--set", "id_shrink=0", "choose_id_shrink=false", "final_eval=false", *args.overrides]
            done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)  # progress bars kept out of the table
            if done.returncode:
                raise SystemExit(f"training seed {seed} failed:\n{done.stderr[-3000:]}")
        run = load_run(run_dir)
        for kappa, r in score_kappas(run, scorer_from_run(run, ds, data), data, "test", args.kappas):
            figures[kappa].append(r["metrics"]["recall@20"])
            buckets = "  ".join(f"{b} {v['recall@20']:.4f}" for b, v in r["buckets"]["history"].items())
            print(f"seed {seed} kappa {kappa:g}: recall@20 {r['metrics']['recall@20']:.4f} | {buckets}", flush=True)
    best = max(args.kappas, key=lambda k: (round(statistics.median(figures[k]), 9), -k))
    for k in args.kappas:
        print(f"kappa {k:g}: median {statistics.median(figures[k]):.4f} over seeds " + " / ".join(f"{x:.4f}" for x in figures[k])
              + ("  <- chosen" if k == best else ""))


if __name__ == "__main__":
    main()
