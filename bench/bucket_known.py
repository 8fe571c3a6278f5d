"""Where a history bucket is won or lost: per bucket, users the run knows (train interactions, an
ID row) apart from users who joined later, for the run, the run with every ID row withheld (as the
server scores an unknown user: history profile + ID bag) and a baseline. Test R@20 per group.

    .venv/bin/python bench/bucket_known.py --data D --run RUN [--baseline itemknn] [--split test]

Diagnostic only (nothing here selects a model): it says whether a bucket's loss sits with users
whose ID rows have not seen their recent history.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch

from recsys.baselines import get_baseline
from recsys.dataset import load_dataset
from recsys.evaluation import HISTORY_BUCKETS, evaluate, per_user_recall
from recsys.inference import latent_lookup, user_vectors
from recsys.interactions import build_interaction_data
from recsys.runs import VectorScorer, load_scorer, run_for_split


class _Fixed:
    """A VectorScorer kept as it is (evaluate re-bases scorers on the split's history)."""

    def __init__(self, inner: VectorScorer) -> None:
        self.inner, self.name = inner, inner.name

    def for_history(self, history, split):
        return self.inner


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, required=True)
    ap.add_argument("--run", type=Path, required=True)
    ap.add_argument("--baseline", default="itemknn")
    ap.add_argument("--split", default="test")
    args = ap.parse_args()
    ds = load_dataset(args.data)
    data = build_interaction_data(ds)
    scorer = load_scorer(run_for_split(args.run, args.split), ds, data)  # a RunScorer
    key = data.history_splits(args.split)
    hist_ids = [data.post_ids[r] for r in scorer.histories(key)]
    anon, _ = user_vectors(scorer.run, hist_ids, np.full(len(data.user_ids), -1, np.int64), latent_lookup(data.post_ids, scorer.latents))
    models = {
        "run": scorer,
        # the split's post vectors (the popularity blend's counts of its history), users without their rows
        "run, ID rows withheld": _Fixed(VectorScorer("anonymous", torch.from_numpy(anon), scorer.for_history(None, args.split).posts)),
        args.baseline: get_baseline(args.baseline)(data, None),
    }
    hist_len = np.diff(data.history_for(args.split).tocsr().indptr)
    known = np.diff(data.train.tocsr().indptr) > 0
    rows = {name: per_user_recall(evaluate(m, data, args.split, ks=(20,), keep_lists=True), 20) for name, m in models.items()}
    print(f"{args.split} R@20 by history bucket, known users (train interactions) / joined later; {args.run}")
    for label, lo, hi in HISTORY_BUCKETS:
        for group, want in (("known", True), ("joined later", False)):
            cells = []
            for name, (users, rec) in rows.items():
                sel = (hist_len[users] >= lo) & (hist_len[users] <= hi) & (known[users] == want)
                cells.append(f"{name} {rec[sel].mean():.4f}" if sel.any() else f"{name} -")
            n = int(((hist_len[rows['run'][0]] >= lo) & (hist_len[rows['run'][0]] <= hi) & (known[rows['run'][0]] == want)).sum())
            if n:
                print(f"  {label:>5} {group:12s} n={n:4d} | " + " | ".join(cells))


if __name__ == "__main__":
    main()
