"""Where cold posts (no train interaction) are lost: for each run, valid and test R@20 overall and
on cold posts with a score offset c added to every cold post (c = 0: the run as served), the c
that valid would pick (best valid R@20, ties to the smaller c), and how well the run orders cold
posts among themselves (c large: every cold post ahead of every warm one) beside content-kNN.

    .venv/bin/python bench/cold_posts.py --data D --run R0 [--run R1 ...] [--offsets 0 0.05 0.1]

Diagnostic only: it separates "cold posts score too low against warm ones" (an offset lifts cold
recall) from "the cold vectors order cold posts badly" (the cold-first column).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch

from recsys.baselines import aligned_features, get_baseline
from recsys.dataset import load_dataset
from recsys.evaluation import evaluate
from recsys.interactions import build_interaction_data
from recsys.runs import load_scorer, run_for_split

COLD_FIRST = 100.0  # larger than any spread of inner products of unit vectors


class _Offset:
    """Scores of `score` (B -> (B, N)) + c on the cold posts, from the split's history."""

    name = "offset"

    def __init__(self, score, cold: torch.Tensor, c: float) -> None:
        self.inner, self.cold, self.c = score, cold, c

    def score(self, user_idx: np.ndarray) -> torch.Tensor:
        return torch.as_tensor(self.inner(np.asarray(user_idx))).float() + self.c * self.cold[None, :]


def recall(data, scorer, split: str) -> tuple[float, float]:
    r = evaluate(scorer, data, split, ks=(20,))
    cold = r["buckets"]["items"]["cold"]["recall@20"]  # None: no cold relevant post in the split
    return r["metrics"]["recall@20"], float("nan") if cold is None else cold


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, required=True)
    ap.add_argument("--run", type=Path, action="append", required=True)
    ap.add_argument("--offsets", type=float, nargs="+", default=[0.0, 0.025, 0.05, 0.075, 0.1, 0.125, 0.15])
    args = ap.parse_args()
    ds = load_dataset(args.data)
    data = build_interaction_data(ds)
    cold = torch.from_numpy((np.asarray(data.train.sum(axis=0)).ravel() == 0).astype(np.float32))  # (N,)
    print(f"{int(cold.sum())} cold posts of {len(cold)}")
    knn = get_baseline("content-knn")(data, aligned_features(ds.root, data.post_ids))
    for split in ("valid", "test"):
        ck = knn.for_history(data.history_for(split), split)
        _, first = recall(data, _Offset(ck.score, cold, COLD_FIRST), split)
        print(f"content-knn {split}: cold-first cold R@20 {first:.4f}")
    for run in args.run:
        figures, loaded = {}, {}
        for split in ("valid", "test"):
            scored = run_for_split(run, split)  # differs from `run` for a refit's valid only
            if scored not in loaded:
                loaded[scored] = load_scorer(scored, ds, data)
            score = loaded[scored].for_history(data.history_for(split), split).score
            figures[split] = [recall(data, _Offset(score, cold, c), split) for c in args.offsets]
            figures[split + "_first"] = recall(data, _Offset(score, cold, COLD_FIRST), split)[1]
        pick = max(range(len(args.offsets)), key=lambda i: (round(figures["valid"][i][0], 9), -i))
        print(f"{run}: cold-first cold R@20 valid {figures['valid_first']:.4f} test {figures['test_first']:.4f}; "
              f"valid picks c = {args.offsets[pick]}")
        for i, c in enumerate(args.offsets):
            (va, vc), (ta, tc) = figures["valid"][i], figures["test"][i]
            print(f"  c={c:.3f}  valid R@20 {va:.4f} cold {vc:.4f} | test R@20 {ta:.4f} cold {tc:.4f}" + ("  <- valid" if i == pick else ""))


if __name__ == "__main__":
    main()
