"""What one full-propagation training step spends on the graph (`recsys.graph`): the adjacency
without the batch's edges rebuilt (sorted again) beside `TrainGraph.without`, and forward +
backward of the propagation over it, with torch.sparse.mm on COO beside `SparseOperator` (CSR
kernels, the operator built inside the timing), on random unique edges; checks the gradients are
equal to the bit.

    .venv/bin/python bench/graph_step.py [--users 6000 --posts 4000 --edges 800000 --dim 256 --batch 2048 --rounds 5]

Prints medians over --rounds of: each masked adjacency, and forward + backward of --layers layers over each.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from recsys.graph import SparseOperator, TrainGraph, normalized_adjacency


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--users", type=int, default=6000)
    ap.add_argument("--posts", type=int, default=4000)
    ap.add_argument("--edges", type=int, default=800_000)
    ap.add_argument("--dim", type=int, default=256)
    ap.add_argument("--batch", type=int, default=2048)
    ap.add_argument("--layers", type=int, default=3)
    ap.add_argument("--rounds", type=int, default=5)
    a = ap.parse_args()
    g = torch.Generator().manual_seed(0)
    key = torch.unique(torch.randint(0, a.users * a.posts, (a.edges,), generator=g))
    users, posts = key // a.posts, key % a.posts
    graph = TrainGraph(users, posts, a.users, a.posts)
    graph.without(torch.zeros(1, dtype=torch.int64))  # builds its entry index once
    x0 = torch.randn(a.users + a.posts, a.dim, generator=g)
    times: dict[str, list[float]] = {k: [] for k in ("rebuilt adjacency", "masked adjacency", "layers over rebuilt", "layers over masked", "layers, SparseOperator")}
    for _ in range(a.rounds):
        drop = torch.randperm(len(users), generator=g)[: a.batch]
        t = time.perf_counter()
        keep = torch.ones(len(users), dtype=torch.bool)
        keep[drop] = False
        plain = normalized_adjacency(users[keep], posts[keep], a.users, a.posts)
        times["rebuilt adjacency"].append(time.perf_counter() - t)
        t = time.perf_counter()
        masked = graph.without(drop)
        times["masked adjacency"].append(time.perf_counter() - t)
        grads = []
        ways = (  # name, () -> the product x -> A x (built inside the timing)
            ("layers over rebuilt", lambda: lambda e: torch.sparse.mm(plain, e)),
            ("layers over masked", lambda: lambda e: torch.sparse.mm(masked, e)),
            ("layers, SparseOperator", lambda: SparseOperator(masked, symmetric=True).__matmul__),
        )
        for name, product in ways:
            x = x0.clone().requires_grad_()
            t = time.perf_counter()
            mm = product()
            e = x
            for _ in range(a.layers):
                e = mm(e)
            e.sum().backward()
            times[name].append(time.perf_counter() - t)
            grads.append(x.grad)
        assert torch.equal(grads[0], grads[1]) and torch.equal(grads[1], grads[2]), "the ways disagree"
    print(f"{len(users):,} unique edges, {a.users:,} users, {a.posts:,} posts, d {a.dim}, batch {a.batch}, "
          f"{a.layers} layers, {torch.get_num_threads()} threads; medians of {a.rounds} rounds, gradients equal")
    for k, v in times.items():
        print(f"  {k:>22}: {statistics.median(v):.3f} s")


if __name__ == "__main__":
    main()
