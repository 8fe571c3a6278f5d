"""Per-history-bucket test R@20 pooled over several draws of the synthetic platform: one
`recsys evaluate --compare` report per draw (same baselines, one or more model seeds each), users
of a bucket pooled over the draws (each bucket holds 20-60 users in one draw: too few to rank
models by), the model rows averaged over their seeds.

    for D in 0 1 2; do
      recsys synth --out data-$D --seed $D && recsys encode --data data-$D && recsys split --data data-$D
      for s in 0 1 2; do recsys train --data data-$D --out run-$D-$s --seed $s; done
      recsys evaluate --data data-$D --run run-$D-0 --run run-$D-1 --run run-$D-2 --baseline popular \\
          --baseline itemknn --baseline lightgcn --baseline content-knn --split test --compare --out rep-$D
    done
    .venv/bin/python bench/synth_draws.py rep-0/report.json rep-1/report.json rep-2/report.json

Prints one table per draw and the pooled table (users weighted; "model" = the mean of the run rows).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

MODEL = "model (mean of seeds)"


def rows(report: dict) -> dict[str, dict[str, tuple[float, float]]]:
    """{row: {bucket or "all": (recall@20 x users, users)}}; run rows averaged into MODEL."""
    out: dict[str, dict[str, list[float]]] = {}
    runs = [m for m in report["models"] if m["kind"] == "run"]
    for m in report["models"]:
        is_run = m["kind"] == "run"
        name, w = (MODEL, 1.0 / len(runs)) if is_run else (m["id"].removeprefix("baseline:"), 1.0)
        acc = out.setdefault(name, {})
        for b, v in [*m["buckets"]["history"].items(), ("all", {"recall@20": m["metrics"]["recall@20"], "n_users": m["n_users"]})]:
            s = acc.setdefault(b, [0.0, 0.0])
            s[0] += w * v["recall@20"] * v["n_users"]
            s[1] += w * v["n_users"]
    return {k: {b: (s[0], s[1]) for b, s in v.items()} for k, v in out.items()}


def table(title: str, t: dict[str, dict[str, tuple[float, float]]]) -> str:
    buckets = [b for b in next(iter(t.values())) if b != "all"]
    ref = next(iter(t.values()))
    lines = [title, "| model | overall | " + " | ".join(f"{b} ({ref[b][1]:.0f} users)" for b in buckets) + " |",
             "|---" * (len(buckets) + 2) + "|"]
    for name, acc in t.items():
        lines.append(f"| {name} | " + " | ".join(f"{acc[b][0] / max(acc[b][1], 1e-12):.4f}" for b in ["all", *buckets]) + " |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("reports", type=Path, nargs="+", help="report.json of `recsys evaluate --compare`, one per draw")
    args = ap.parse_args()
    pooled: dict[str, dict[str, list[float]]] = {}
    for p in args.reports:
        t = rows(json.loads(p.read_text()))
        print(table(f"\n{p}", t))
        for name, acc in t.items():
            for b, (s, n) in acc.items():
                q = pooled.setdefault(name, {}).setdefault(b, [0.0, 0.0])
                q[0] += s
                q[1] += n
    print(table(f"\npooled over {len(args.reports)} draws", {k: {b: tuple(v) for b, v in acc.items()} for k, acc in pooled.items()}))


if __name__ == "__main__":
    main()
