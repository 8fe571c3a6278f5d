"""Burst detection against the synthetic platform's scheduled bursts, over many seeds.

    .venv/bin/python bench/analysis_synth.py --seeds 0-9 [--size default] [--window 6]
    .venv/bin/python bench/analysis_synth.py --seeds 100-103 --tune     # how Z_MIN was chosen

Isolates the detector: the platform's world and events are simulated (recsys.data.synth, no
media), and clusters are the true topics, so the figures say how well the statistic finds the
scheduled bursts when the clustering is perfect. The end-to-end figures, with clusters learned
from the encoded posts, come from `recsys trends --data DIR --run RUN` (its report's `truth`).
Alarms are counted from day 3 (a baseline needs history). Prints pooled precision, recall,
median detection delay and false alarms per quiet day.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def seeds_of(text: str) -> list[int]:
    if "-" in text:
        a, b = text.split("-")
        return list(range(int(a), int(b) + 1))
    return [int(x) for x in text.split(",")]


def simulate(size: str, seed: int):
    from recsys.analysis import trends as T
    from recsys.data.synth import SynthConfig, build_world, simulate_interactions
    from recsys.data.synth_bursts import schedule_bursts

    cfg = SynthConfig.preset(size, seed=seed)
    w = build_world(cfg)
    ev = simulate_interactions(cfg, w)
    base = 1_740_787_200 * 1_000_000  # 2025-03-01, an hour boundary
    s = T.series_from_events(cfg.n_topics, w.post_topic[ev["post"]], base + ev["ts_us"], np.zeros(len(ev["post"])),
                             w.post_topic, base + w.post_created_us)
    bursts = [(b.topic, int(T.to_bin(base + b.start_us)), int(T.to_bin(base + b.end_us))) for b in schedule_bursts(cfg)]
    return cfg, s, bursts, int(T.to_bin(base)) + 72


def pooled(rs: list[dict]) -> dict:
    A = sum(r["alarms"] for r in rs)
    delays = [d for r in rs for d in r["delays_h"]]
    qd = sum(r["quiet_days"] for r in rs)
    return {"runs": len(rs), "bursts": sum(r["bursts"] for r in rs), "alarms": A,
            "precision": round(sum(r["true_alarms"] for r in rs) / A, 3) if A else None,
            "recall": round(sum(r["detected"] for r in rs) / sum(r["bursts"] for r in rs), 3),
            "median_delay_h": float(np.median(delays)) if delays else None,
            "false_alarms_per_quiet_day": round(sum(r["false_alarms_quiet"] for r in rs) / qd, 4), "quiet_days": round(qd, 1)}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seeds", default="0-9")
    p.add_argument("--size", default="default")
    p.add_argument("--window", type=int, default=6, help="window in hours")
    p.add_argument("--tune", action="store_true", help="grid over Z_MIN and the window")
    a = p.parse_args()
    from recsys.analysis import trends as T

    grid = [(z, w) for z in (3.0, 4.0, 5.0, 6.0) for w in (3, 6, 12)] if a.tune else [(T.Z_MIN, a.window)]
    results: dict = {g: [] for g in grid}
    for seed in seeds_of(a.seeds):
        cfg, s, bursts, start = simulate(a.size, seed)
        for z, w in grid:
            T.Z_MIN = z
            ends, _, fl = T.scan(s, w, start=start)
            results[(z, w)].append(T.match_bursts(T.alarms(ends, fl), np.arange(cfg.n_topics), bursts, w,
                                                  int(ends[0]), int(ends[-1])))
    for (z, w), rs in results.items():
        print(json.dumps({"z_min": z, "window_h": w, **pooled(rs)}))


if __name__ == "__main__":
    main()
