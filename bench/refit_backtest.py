"""Decide on VALID whether refitting on train + valid helps (`training.train`, `refit`), never
looking at test: the dataset is moved one period back. Its test rows are dropped, its valid
becomes the test of the backtest, and the last slice of train, as long as valid, becomes the
backtest's valid. Then one `recsys train --set refit=on` gives both candidates on the same
footing: the selection run (trained on the shortened train, as without a refit) and the refit
(trained on it + the backtest's valid), both scored on the original valid.

    .venv/bin/python bench/refit_backtest.py --data D --out W [--preset default] [--seeds 0 1 2]

Prints recall@20 per seed and per history bucket for both, and the median gain.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
from pathlib import Path

import numpy as np
import polars as pl

ROOT = Path(__file__).resolve().parents[1]


def backtest_dataset(src: Path, dst: Path) -> dict:
    """Write the dataset moved one period back to `dst` (features copied). -> row counts."""
    from recsys.dataset import load_dataset, save_dataset
    from recsys.schema import DATASET_META_FILE, INTERACTIONS_FILE, POSTS_FILE, SPLITS_FILE

    ds = load_dataset(src)
    meta = json.loads((src / DATASET_META_FILE).read_text())
    if meta.get("split", {}).get("method") != "global_temporal":
        raise SystemExit(f"{src}: the backtest needs a temporal split (`recsys split`), got {meta.get('split')}")
    inter = pl.read_parquet(src / INTERACTIONS_FILE).with_columns(pl.read_parquet(src / SPLITS_FILE)["split"])
    inter = inter.filter(pl.col("split") != "test")
    n_valid = int((inter["split"] == "valid").sum())
    train_ts = inter.filter(pl.col("split") == "train")["ts"].dt.epoch("us").to_numpy()
    cut = np.sort(train_ts)[len(train_ts) - n_valid]  # the last n_valid train rows (ties kept together)
    ts = inter["ts"].dt.epoch("us").to_numpy()
    split = np.where(inter["split"].to_numpy() == "valid", "test", np.where(ts >= cut, "valid", "train"))
    splits = pl.DataFrame({"row": np.arange(len(inter), dtype=np.int64), "split": split})
    if dst.exists():
        shutil.rmtree(dst)
    posts = pl.read_parquet(src / POSTS_FILE)
    new_meta = {**meta, "name": f"{meta.get('name', src.name)}-backtest",
                "split": {**meta["split"], "backtest_of": str(src)}}
    save_dataset(dst, posts, inter.drop("split"), splits, new_meta)
    for extra in ("features", "media", "ground_truth"):
        if (src / extra).is_dir():
            shutil.copytree(src / extra, dst / extra, symlinks=True)
    del ds
    return {s: int((split == s).sum()) for s in ("train", "valid", "test")}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", type=Path, required=True)
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--preset", default="default")
    p.add_argument("--seeds", type=int, nargs="+", default=[0])
    p.add_argument("--set", dest="overrides", nargs="*", default=[])
    args = p.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    data = args.out / "data"
    print("backtest rows", backtest_dataset(args.data, data), flush=True)
    gains = []
    for seed in args.seeds:
        run = args.out / f"run-s{seed}"
        if run.exists():
            shutil.rmtree(run)
        cmd = [sys.executable, "-m", "recsys.cli", "train", "--data", str(data), "--out", str(run), "--preset", args.preset,
               "--seed", str(seed), "--set", "refit=on", *args.overrides]
        subprocess.run(cmd, check=True, cwd=ROOT, stdout=subprocess.DEVNULL)
        m = json.loads((run / "metrics.json").read_text())
        with_refit, without = m["test"]["recall@20"], m["refit"]["selection"]["test_without_refit"]["recall@20"]
        gains.append(with_refit - without)
        print(f"seed {seed}: original-valid recall@20 without refit {without:.4f}, with refit {with_refit:.4f} "
              f"(gain {with_refit - without:+.4f})", flush=True)
        rep = args.out / f"report-s{seed}"
        subprocess.run([sys.executable, "-m", "recsys.cli", "evaluate", "--data", str(data), "--run", str(run),
                        "--run", str(run / "selection"), "--baseline", "popular", "--baseline", "itemknn",
                        "--split", "test", "--out", str(rep), "--threads", "1"], check=True, cwd=ROOT, stdout=subprocess.DEVNULL)
        r = json.loads((rep / "report.json").read_text())
        for mod in r["models"]:
            hb = mod.get("buckets", {}).get("history", {})
            print(f"  {mod['id']:22s} " + "  ".join(f"{b} {v['recall@20']:.4f}" for b, v in hb.items()), flush=True)
    print(f"median gain of the refit over {len(gains)} seed(s): {statistics.median(gains):+.4f} "
          f"(min {min(gains):+.4f}, max {max(gains):+.4f})")


if __name__ == "__main__":
    main()
