"""A cold-post channel, scored offline (diagnostic; nothing here is served yet): posts with an ID
row are scored by the run's user vectors as served; posts without one (cold) by user vectors
built with another user-side content scale `lam` (the model key `content_scale`, which serving
uses for both), plus an offset `c`. It is still one inner product, so a FAISS index could serve it:

    user  [u, u_lam, 1]     warm post  [p, 0, 0]     cold post  [0, p, c]

    .venv/bin/python bench/cold_channel.py --data D --run R0 [--run R1 ...] [--lams 0.2 0.3 0.4 0.5] [--offsets 0 0.025 0.05]

Prints valid and test recall@20, overall and on cold posts, for every (lam, c); the run's own
content scale with c = 0 is the run as served. Read valid to choose; test is printed beside it.
"""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

import numpy as np
import torch

from recsys.dataset import load_dataset
from recsys.evaluation import evaluate
from recsys.interactions import build_interaction_data, rows_of
from recsys.runs import RunScorer, VectorScorer, load_run, scorer_from_run

SPLITS = ("valid", "test")


def user_vectors(run, base: RunScorer, data, content_scale: float) -> dict[str, torch.Tensor]:
    """{split: user vectors (U, d)} of `run` built with `content_scale` on the user side."""
    cfg = run.model.cfg
    try:
        run.model.cfg = dataclasses.replace(cfg, content_scale=float(content_scale))
        sc = RunScorer(base.name, run, data, base.latents, base.posts.numpy(), base.histories)
        return {s: sc.for_history(data.history_for(s), s).users for s in SPLITS}
    finally:
        run.model.cfg = cfg


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, required=True)
    ap.add_argument("--run", type=Path, action="append", required=True)
    ap.add_argument("--lams", type=float, nargs="+", default=[0.2, 0.3, 0.4, 0.5])
    ap.add_argument("--offsets", type=float, nargs="+", default=[0.0, 0.025, 0.05])
    args = ap.parse_args()
    ds = load_dataset(args.data)
    data = build_interaction_data(ds)
    for run_dir in args.run:
        run = load_run(run_dir)
        if run.pop_weight > 0:
            raise SystemExit(f"{run_dir}: a run with the popularity blend is not handled here (its extra coordinate)")
        base = scorer_from_run(run, ds, data)
        cold = torch.from_numpy(rows_of(run.post_table_ids, np.asarray(data.post_ids, np.int64)) < 0)  # (N,) no ID row
        posts = base.posts
        warm_posts = torch.where(cold[:, None], torch.zeros_like(posts), posts)
        cold_posts = torch.where(cold[:, None], posts, torch.zeros_like(posts))
        served = {s: base.for_history(data.history_for(s), s).users for s in SPLITS}
        print(f"{run_dir}: {int(cold.sum())} cold posts of {len(cold)}; served content scale {run.model.cfg.content_scale}", flush=True)
        for lam in args.lams:
            cold_users = user_vectors(run, base, data, lam)
            for c in args.offsets:
                figs = []
                for s in SPLITS:
                    users = torch.cat([served[s], cold_users[s], torch.ones(len(served[s]), 1)], 1)
                    items = torch.cat([warm_posts, cold_posts, (cold.float() * c)[:, None]], 1)
                    r = evaluate(VectorScorer("cold-channel", users, items), data, s, ks=(20,))
                    figs += [r["metrics"]["recall@20"], r["buckets"]["items"]["cold"]["recall@20"] or 0.0]
                print(f"  lam {lam:g} c {c:g}: valid {figs[0]:.4f} cold {figs[1]:.4f} | test {figs[2]:.4f} cold {figs[3]:.4f}", flush=True)


if __name__ == "__main__":
    main()
