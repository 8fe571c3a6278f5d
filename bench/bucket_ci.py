"""Is a per-bucket difference real? Paired bootstrap over users of recall@K: a run against
baselines, per history bucket, on one split (the same masked top-K lists `recsys evaluate`
scores, `recsys.evaluation.evaluate(keep_lists=True)`).

    .venv/bin/python bench/bucket_ci.py --data D --run R --baseline itemknn --baseline popular [--split test]

Prints, per bucket, n users, the run's and each baseline's recall@K and the 95% interval of
(run - baseline) over --resamples resamples of the bucket's users. An interval that contains 0 says
the bucket is too small to tell the two apart.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", type=Path, required=True)
    p.add_argument("--run", type=Path, required=True)
    p.add_argument("--baseline", action="append", default=[])
    p.add_argument("--split", default="test")
    p.add_argument("--k", type=int, default=20)
    p.add_argument("--resamples", type=int, default=2000)
    args = p.parse_args()
    import torch

    torch.set_num_threads(1)
    from recsys.baselines import NEEDS_FEATURES, aligned_features, get_baseline
    from recsys.dataset import load_dataset
    from recsys.evaluation import HISTORY_BUCKETS, evaluate, per_user_recall
    from recsys.interactions import build_interaction_data
    from recsys.runs import load_scorer, run_for_split

    ds = load_dataset(args.data)
    data = build_interaction_data(ds)
    scorers = {"run": load_scorer(run_for_split(args.run, args.split), ds, data)}
    for b in args.baseline:
        feats = aligned_features(ds.root, data.post_ids) if b in NEEDS_FEATURES else None
        scorers[b] = get_baseline(b)(data, feats)
    recall, users = {}, None
    for name, sc in scorers.items():
        res = evaluate(sc, data, args.split, ks=(args.k,), keep_lists=True)
        users, recall[name] = per_user_recall(res, args.k)
    hist_len = np.diff(data.history_for(args.split).tocsr().indptr)[users]
    rng = np.random.default_rng(0)
    print(f"{ds.name} / {args.split}: recall@{args.k}, run {args.run}; 95% paired-bootstrap interval of run - baseline")
    for label, lo, hi in (("all", 0, 2**62), *HISTORY_BUCKETS):
        sel = np.flatnonzero((hist_len >= lo) & (hist_len <= hi))
        if not len(sel):
            continue
        boot = rng.integers(0, len(sel), (args.resamples, len(sel)))
        parts = [f"{label:>5s} n={len(sel):5d}  run {recall['run'][sel].mean():.4f}"]
        for b in args.baseline:
            d = recall["run"][sel] - recall[b][sel]
            ci = np.percentile(d[boot].mean(1), [2.5, 97.5])
            parts.append(f"{b} {recall[b][sel].mean():.4f} diff {d.mean():+.4f} [{ci[0]:+.4f}, {ci[1]:+.4f}]")
        print("  ".join(parts), flush=True)


if __name__ == "__main__":
    main()
