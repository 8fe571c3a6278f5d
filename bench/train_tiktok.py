"""Train the default preset on TikTok and print wall time, peak memory and the figures.

    .venv/bin/recsys import ../shared/data/tiktok --out /tmp/tiktok   # once
    .venv/bin/python bench/train_tiktok.py --data /tmp/tiktok [--out /tmp/run] [--set key=value ...]

Peak memory is ru_maxrss of this process (training runs in-process). Timings on a shared machine
are noisy: say how loaded it was (`uptime`) when quoting them.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import tempfile
import time
from pathlib import Path


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", required=True)
    p.add_argument("--out", default=None, help="run dir (default: a temporary one)")
    p.add_argument("--preset", default="default")
    p.add_argument("--set", dest="overrides", nargs="+", default=[])
    args = p.parse_args()
    os.environ.setdefault("TQDM_DISABLE", "1")
    import torch

    from training.train import TrainConfig, train

    out = Path(args.out) if args.out else Path(tempfile.mkdtemp(prefix="bench_train_")) / "run"
    cfg = TrainConfig.preset(args.preset, data=args.data, out=str(out)).with_overrides(args.overrides)
    load0 = os.getloadavg()[0]
    t0 = time.time()
    train(cfg)
    wall = time.time() - t0
    info = json.loads((out / "run.json").read_text())
    m = json.loads((out / "metrics.json").read_text())
    t = m["test"]
    cold = (m.get("test_buckets") or {}).get("items", {}).get("cold", {})
    print(f"run dir            {out}")
    print(f"threads            {torch.get_num_threads()} (load average at start {load0:.1f} on {os.cpu_count()} cores)")
    print(f"train wall time    {wall:.0f} s  ({info['epochs_run']} epochs, best epoch {info['best_epoch']}, incl. per-epoch validation)")
    print(f"peak memory        {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB (ru_maxrss)")
    print(f"valid recall@20    {m['valid']['recall@20']:.4f}")
    print(f"test  recall@20    {t['recall@20']:.4f}  ndcg@20 {t['ndcg@20']:.4f}  precision@20 {t['precision@20']:.4f}")
    if cold:
        print(f"test cold posts    recall@20 {cold.get('recall@20', float('nan')):.4f} over {cold.get('n_users')} users")


if __name__ == "__main__":
    main()
