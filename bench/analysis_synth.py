"""Burst detection against the synthetic platform's scheduled bursts, over many seeds, per kind:
topic bursts (a topic surges) and theme bursts (a new cross-author theme appears and surges).

    .venv/bin/python bench/analysis_synth.py --seeds 0-9 [--size default] [--window 6] [--set n_themes=0]
    .venv/bin/python bench/analysis_synth.py --seeds 100-103 --tune     # how Z_MIN was chosen
    .venv/bin/python bench/analysis_synth.py --seeds 0-2 --e2e DIR      # learned clusters, end to end

Default (true labels): the platform's world and events are simulated (recsys.data.synth, no
media) and the clusters are the true subjects: one per topic, one per theme (a theme's posts are
its cluster, the rest go by topic). This isolates the statistic: how well it finds the scheduled
bursts when the clustering is perfect.

--e2e DIR: the whole platform with media per seed (DIR/seed-N: `recsys synth`, then `recsys
encode`, both skipped when already there), clusters learned from the feature-store latents (the
k rule), two ways:
  rebuilt  clusters from every post, as `recsys build-index` / `recsys trends` build them once a
           theme's posts exist (the theme may get a cluster of its own, or land in one)
  frozen   clusters built from the posts that existed at the end of the warm-up (day 5, before
           any burst), never rebuilt; every later post joins its nearest centroid, as posts added
           online do. A new theme can only show as a burst of the clusters its posts land in.
`--k K` adds both with K clusters fixed instead of the k rule's.
A theme burst counts as detected on a cluster whose majority it is, else on the cluster holding
most of its posts (recsys.analysis.evaluate.burst_detection); "landing" says where they went.

Alarms are counted from day 3 (a baseline needs history). Prints pooled precision, recall,
median detection delay and false alarms per quiet day, overall and per kind, one JSON line per
configuration.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from datetime import datetime
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def seeds_of(text: str) -> list[int]:
    if "-" in text:
        a, b = text.split("-")
        return list(range(int(a), int(b) + 1))
    return [int(x) for x in text.split(",")]


def preset(size: str, seed: int, overrides: list[str]):
    """SynthConfig.preset with `--set key=value` overrides (numbers parsed)."""
    from recsys.data.synth import SynthConfig

    kw = {}
    for o in overrides:
        k, _, v = o.partition("=")
        kw[k] = float(v) if "." in v else int(v)
    return SynthConfig.preset(size, seed=seed, **kw)


def simulate(cfg):
    """-> (cfg, series over true subjects, bursts [(subject, start bin, end bin)], burst kinds,
    subject kinds, first window end to count)."""
    from recsys.analysis import trends as T
    from recsys.data.synth import build_world, simulate_interactions
    from recsys.data.synth_bursts import schedule_bursts
    from recsys.data.synth_text import THEME_NAMES

    w = build_world(cfg)
    ev = simulate_interactions(cfg, w)
    subject = np.where(w.post_theme >= 0, cfg.n_topics + w.post_theme, w.post_topic)  # (N,) topics, then themes
    k = cfg.n_topics + len(THEME_NAMES)
    base = 1_740_787_200 * 1_000_000  # 2025-03-01, an hour boundary
    s = T.series_from_events(k, subject[ev["post"]], base + ev["ts_us"], np.zeros(len(ev["post"])),
                             subject, base + w.post_created_us)
    sched = schedule_bursts(cfg)
    bursts = [(b.topic if b.kind == "topic" else cfg.n_topics + b.theme, int(T.to_bin(base + b.start_us)),
               int(T.to_bin(base + b.end_us))) for b in sched]
    kinds = ["topic"] * cfg.n_topics + ["theme"] * len(THEME_NAMES)
    return cfg, s, bursts, [b.kind for b in sched], kinds, int(T.to_bin(base)) + 72


def pooled(rs: list[dict]) -> dict:
    A = sum(r["alarms"] for r in rs)
    delays = [d for r in rs for d in r["delays_h"]]
    qd = sum(r["quiet_days"] for r in rs)
    B = sum(r["bursts"] for r in rs)
    return {"runs": len(rs), "bursts": B, "alarms": A,
            "precision": round(sum(r["true_alarms"] for r in rs) / A, 3) if A else None,
            "recall": round(sum(r["detected"] for r in rs) / B, 3) if B else None,
            "median_delay_h": float(np.median(delays)) if delays else None,
            "false_alarms_per_quiet_day": round(sum(r["false_alarms_quiet"] for r in rs) / qd, 4), "quiet_days": round(qd, 1)}


def pooled_by_kind(rs: list[dict]) -> dict:
    out = {"all": pooled(rs)}
    for kind in sorted({k for r in rs for k in r.get("by_kind", {})}):
        out[kind] = pooled([r["by_kind"][kind] for r in rs if kind in r.get("by_kind", {})])
    return out


def true_labels(a: argparse.Namespace) -> None:
    from recsys.analysis import trends as T

    grid = [(z, w) for z in (3.0, 4.0, 5.0, 6.0) for w in (3, 6, 12)] if a.tune else [(T.Z_MIN, a.window)]
    results: dict = {g: [] for g in grid}
    for seed in seeds_of(a.seeds):
        cfg, s, bursts, burst_kinds, cluster_kinds, start = simulate(preset(a.size, seed, a.set))
        for z, w in grid:
            T.Z_MIN = z
            ends, _, fl = T.scan(s, w, start=start)
            results[(z, w)].append(T.match_bursts(T.alarms(ends, fl), np.arange(len(cluster_kinds)), bursts, w,
                                                  int(ends[0]), int(ends[-1]), burst_kinds, cluster_kinds))
    for (z, w), rs in results.items():
        print(json.dumps({"clusters": "true labels", "z_min": z, "window_h": w, **pooled_by_kind(rs)}))


# ---------------------------------------------------------------- end to end (learned clusters)
def dataset(root: Path, cfg):
    from recsys.data.synth import synthesize
    from recsys.dataset import load_dataset
    from recsys.features import load_features

    d = root / f"seed-{cfg.seed}"
    if not (d / "dataset.json").is_file():
        synthesize(d, cfg, progress=False)
    if not load_features(d):
        subprocess.run([sys.executable, "-m", "recsys.cli", "encode", "--data", str(d), "--no-progress"], cwd=ROOT, check=True)
    return load_dataset(d), load_features(d)


def frozen_analysis(inp, events, cutoff_us: int, k: int | None = None, seed: int = 0):
    """Clusters from the posts created before `cutoff_us` (k: the k rule's, unless given), every
    post assigned to its nearest centroid -> (posts table post_id, cluster_id; activity table;
    cluster ids; k)."""
    import polars as pl

    from recsys.analysis import clusters as C
    from recsys.analysis.build import activity_table

    x = C.unit(inp.latents)
    early = inp.created_us < cutoff_us
    if k is None:
        k, _ = C.choose_k(x[early], seed=seed)
    centroids, _ = C.kmeans(x[early], k, seed=seed)
    assign = np.argmax(x @ centroids.T, axis=1).astype(np.int64)  # (N,) nearest centroid (unit rows: cosine)
    posts = pl.DataFrame({"post_id": inp.post_ids, "cluster_id": assign, "sentiment": np.zeros(len(assign))})
    return posts, activity_table(posts, events, inp.created_us), np.arange(k, dtype=np.int64), k


def end_to_end(a: argparse.Namespace) -> None:
    import polars as pl

    from recsys.analysis import evaluate as EV
    from recsys.analysis import trends as T
    from recsys.analysis.build import analyse, inputs_from_features
    from recsys.data.synth_bursts import WARMUP_DAYS

    root = Path(a.e2e)
    root.mkdir(parents=True, exist_ok=True)
    ways = [("rebuilt", None), ("frozen", None)] + [(f"{how} k={k}", k) for k in a.k for how in ("rebuilt", "frozen")]
    results: dict[str, list] = {how: [] for how, _ in ways}
    detail = []
    for seed in seeds_of(a.seeds):
        ds, feats = dataset(root, preset(a.size, seed, a.set))
        gt = ds.root / "ground_truth"
        pt, bursts = pl.read_parquet(gt / "post_topics.parquet"), pl.read_parquet(gt / "bursts.parquet")
        inp = inputs_from_features(ds, feats, ds.posts["post_id"].to_numpy().astype(np.int64))
        events = ds.interactions.select("post_id", "ts")
        t0 = int(datetime.fromisoformat(ds.meta["window"]["start"]).timestamp()) * 1_000_000  # us
        for how, k_fixed in ways:
            if how.startswith("rebuilt"):
                an = analyse(inp, events, k=k_fixed, seed=0)
                posts, act, cids, k = an.posts, an.activity, an.clusters["cluster_id"].to_numpy().astype(np.int64), an.info["k"]
            else:
                posts, act, cids, k = frozen_analysis(inp, events, t0 + int(WARMUP_DAYS * 86_400e6), k=k_fixed)
            mapping, purity = EV.cluster_topics(posts, pt)
            landing = EV.theme_landing(posts, pt)
            s = T.series_from_table(act, cids)
            r = EV.burst_detection(s, cids, mapping, bursts, a.window, landing=landing)
            results[how].append(r)
            detail.append({"seed": seed, "clusters": how, "k": int(k), "purity": round(purity, 3), "landing": landing,
                           **{kind: {x: r["by_kind"][kind][x] for x in ("bursts", "detected", "alarms", "true_alarms", "delays_h", "false_alarms_quiet")}
                              for kind in r["by_kind"]}})
            print(json.dumps(detail[-1]), flush=True)
    for how, rs in results.items():
        print(json.dumps({"clusters": f"learned, {how}", "window_h": a.window, **pooled_by_kind(rs)}))
    (root / "results.json").write_text(json.dumps({"detail": detail, "pooled": {h: pooled_by_kind(rs) for h, rs in results.items()}}, indent=1))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seeds", default="0-9")
    p.add_argument("--size", default="default")
    p.add_argument("--window", type=int, default=6, help="window in hours")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="SynthConfig override, e.g. n_themes=0")
    p.add_argument("--tune", action="store_true", help="grid over Z_MIN and the window (true labels)")
    p.add_argument("--e2e", type=Path, default=None, metavar="DIR", help="learned clusters over datasets kept in DIR")
    p.add_argument("--k", type=int, action="append", default=[], help="--e2e: also with this fixed number of clusters (repeatable)")
    a = p.parse_args()
    if a.e2e is not None:
        end_to_end(a)
    else:
        true_labels(a)


if __name__ == "__main__":
    main()
