"""Scale check of `recsys.evaluation.evaluate`: full ranking of U users over N posts with a
random d-dim factor scorer, chunked so that one (B, N) score block stays under --chunk-mb.

    .venv/bin/python bench/eval_scale.py                          # 100k users x 1M posts, all measured
    .venv/bin/python bench/eval_scale.py --measure-users 8192     # a quick look (extrapolated)

Every user has --train items (masked) and one test item; only the first --measure-users users
get their test item, so only they are scored (with fewer than --users, the time for all U users
is extrapolated linearly: the cost is per user, one (1, N) score row, mask, top-K). Prints
seconds split into scoring, masking and top-K (the harness's own timings), users/s, the process CPU seconds (load-independent on a shared machine) and peak RSS.
"""

from __future__ import annotations

import argparse
import os
import resource
import time

import numpy as np
import scipy.sparse as sp
import torch

from recsys.evaluation import evaluate
from recsys.interactions import InteractionData


class FactorScorer:
    name = "random-factors"

    def __init__(self, users: torch.Tensor, posts: torch.Tensor) -> None:
        self.users, self.posts_t = users, posts.t().contiguous()  # (U, d), (d, N)

    def score(self, user_idx: np.ndarray) -> torch.Tensor:
        return self.users[torch.from_numpy(user_idx)] @ self.posts_t  # (B, N)

    def factors(self) -> tuple[torch.Tensor, torch.Tensor]:
        return self.users, self.posts_t


def peak_rss_gb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2  # Linux: KiB


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--users", type=int, default=100_000)
    ap.add_argument("--posts", type=int, default=1_000_000)
    ap.add_argument("--dim", type=int, default=64)
    ap.add_argument("--train", type=int, default=20, help="masked train items per user")
    ap.add_argument("--measure-users", type=int, default=100_000, help="users actually scored (fewer than --users: extrapolated)")
    ap.add_argument("--chunk-mb", type=int, default=512, help="bound on one (B, N) float32 score block")
    ap.add_argument("--ks", type=int, nargs="+", default=[10, 20, 50])
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0 = default)")
    ap.add_argument("--path", choices=("tiled", "block", "both"), default="tiled",
                    help="column tiles (the harness's path for factor scorers at this size), the (B, N) block path, "
                         "or both on the same users (their ratio, and whether the lists are identical)")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    rng = np.random.default_rng(0)
    g = torch.Generator().manual_seed(0)
    U, N, M = args.users, args.posts, min(args.measure_users, args.users)

    t0 = time.perf_counter()
    rows = np.repeat(np.arange(U), args.train)
    train = sp.csr_matrix((np.ones(len(rows), np.float32), (rows, rng.integers(0, N, len(rows)))), shape=(U, N))
    train.data[:] = 1.0
    test = sp.csr_matrix((np.ones(M, np.float32), (np.arange(M), rng.integers(0, N, M))), shape=(U, N))
    data = InteractionData(np.arange(U), np.arange(N), train, sp.csr_matrix((U, N), dtype=np.float32), test, "scale", "-")
    scorer = FactorScorer(torch.randn(U, args.dim, generator=g), torch.randn(N, args.dim, generator=g))
    setup_s = time.perf_counter() - t0
    rss_setup = peak_rss_gb()

    paths = ("tiled", "block") if args.path == "both" else (args.path,)
    results = {}
    for path in paths:
        load0, cpu0 = os.getloadavg()[0], time.process_time()
        r = evaluate(scorer, data, "test", ks=args.ks, chunk_users=2048, max_chunk_bytes=args.chunk_mb << 20,
                     keep_lists=args.path == "both", tiled=path == "tiled")
        cpu = time.process_time() - cpu0
        report(args, r, path, U, N, M, setup_s, rss_setup, load0, cpu)
        results[path] = r
    if args.path == "both":
        compare_paths(results["tiled"], results["block"], scorer)


def compare_paths(a, b, scorer) -> None:
    """The two paths' lists: the tiled path's products are OpenBLAS's, the block path's torch's,
    so two posts whose float32 scores differ in the last bits can swap. Prints the users whose
    list differs and, in float64, the largest gap between the K-th scores of a differing list."""
    users, ia, ib = a["lists"][0], a["lists"][1], b["lists"][1]
    diff = np.flatnonzero((ia != ib).any(1))
    gap = 0.0
    for row in diff:
        u = scorer.users[users[row]].double()
        sa = (u @ scorer.posts_t[:, torch.from_numpy(ia[row])].double()).sort(descending=True).values
        sb = (u @ scorer.posts_t[:, torch.from_numpy(ib[row])].double()).sort(descending=True).values
        gap = max(gap, float((sa - sb).abs().max() / sa.abs().max()))
    worst = max(abs(a["metrics"][m] - b["metrics"][m]) for m in a["metrics"])
    print(f"both paths: block / tiled wall = {b['timings']['total_s'] / a['timings']['total_s']:.2f}x; "
          f"lists differ for {len(diff):,} of {len(users):,} users, largest relative gap between their sorted float64 "
          f"scores {gap:.1e}; largest metric difference {worst:.1e}")


def report(args, r, path, U, N, M, setup_s, rss_setup, load0, cpu) -> None:
    t = r["timings"]
    per_user = t["total_s"] / r["n_users"]
    print(f"eval_scale [{path}]: {U:,} users x {N:,} posts, d={args.dim}, {args.train} masked items/user, K={args.ks}, "
          f"torch threads {torch.get_num_threads()}")
    print(f"  setup (data + factors): {setup_s:.1f} s, peak RSS after setup {rss_setup:.2f} GB")
    print(f"  measured: {r['n_users']:,} users in {t['total_s']:.1f} s wall: score {t['score_s']:.1f}, mask {t['mask_s']:.1f}, "
          f"top-K {t['topk_s']:.1f}, metrics {t['metrics_s']:.2f}; chunk {t['chunk_users']} users "
          + ("(column tiles)" if path == "tiled" else f"({t['chunk_users'] * N * 4 / 2**20:.0f} MB per score block)"))
    print(f"  process CPU {cpu:.0f} s over {t['total_s']:.0f} s wall ({cpu / max(t['total_s'], 1e-9):.2f} cores busy); "
          f"load average {load0:.1f} at start, {os.getloadavg()[0]:.1f} at end on {os.cpu_count()} cores")
    flops = 2.0 * r["n_users"] * N * args.dim
    print(f"  arithmetic: {flops / 1e12:.2f} TFLOP in the score products, {flops / 1e9 / max(t['score_s'], 1e-9):.0f} GFLOP/s achieved")
    print(f"  {r['n_users'] / t['total_s']:,.0f} users/s -> all {U:,} users: "
          f"{'measured' if M == U else 'extrapolated'} {per_user * U:,.0f} s ({per_user * U / 60:.1f} min)")
    print(f"  peak RSS so far: {peak_rss_gb():.2f} GB")
    print(f"  sanity: recall@{args.ks[-1]} {r['metrics'][f'recall@{args.ks[-1]}']:.5f} (random: {args.ks[-1] / N:.5f})")


if __name__ == "__main__":
    main()
