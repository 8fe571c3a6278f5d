"""Interest profiles against the synthetic platform's hidden topic preferences, with a trained run.

    D=/tmp/p; recsys synth --out $D/data && recsys encode --data $D/data && recsys split --data $D/data
    recsys train --data $D/data --out $D/run --preset synth
    recsys build-index --run $D/run --data $D/data --out $D/index
    .venv/bin/python bench/profiles_synth.py --data $D/data --run $D/run --index $D/index

precision@3: a user's top 3 profile clusters, each named by its majority topic (distinct topics,
best first; a cluster whose majority is a new theme names no preference and is skipped), against
the user's 3 largest hidden topic weights; weight capture@3: the hidden weight those topics hold
over the best 3's. Rankings of the bundle's clusters (recsys.analysis.profiles.cluster_weights):
  history   the user's bundle history alone (recency-weighted counts per cluster)
  vector    the run's user vector alone (softmax of its cosine to each cluster's mean post vector)
  blend     their mean, as `GET /v1/users/{id}/profile` serves it: asked of the real app for every
            user (its top clusters), and computed offline from the same pieces over all clusters
            (agreement of the two is printed)
References: the true topics of each user's own history (the best a history-only profile can do
with perfect clusters) and the globally most engaged topics for everyone.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", type=Path, required=True)
    p.add_argument("--run", type=Path, required=True)
    p.add_argument("--index", type=Path, required=True, help="INDEX_ROOT that `recsys build-index` published to")
    p.add_argument("--out", type=Path, default=None, help="write the figures as JSON here too")
    a = p.parse_args()

    import polars as pl
    from fastapi.testclient import TestClient

    from index import bundle as B
    from recsys.analysis import evaluate as EV
    from recsys.analysis.build import inputs_from_run
    from recsys.analysis.report import profile_topics
    from recsys.analysis.store import read_analysis
    from recsys.dataset import load_dataset
    from recsys.features import load_features
    from recsys.inference import history_table, latent_lookup, user_vectors
    from recsys.runs import load_run
    from serving.app import create_app
    from serving.settings import Settings

    t0 = time.perf_counter()
    ds, feats, run = load_dataset(a.data), load_features(a.data), load_run(a.run)
    bundle = B.resolve(a.index)
    an = read_analysis(bundle / B.ANALYSIS_DIR)
    gt = ds.root / "ground_truth"
    pt, up = pl.read_parquet(gt / "post_topics.parquet"), pl.read_parquet(gt / "user_preferences.parquet")
    mapping, purity = EV.cluster_topics(an.posts, pt)
    topics = set(up["topic"].unique().to_list())
    topic_of = {c: t for c, t in mapping.items() if t in topics}

    # the bundle's histories (recsys build-index keeps the last run.max_history of each user's)
    hist = history_table(ds.interactions, keep=run.max_history).select("user_id", "history")
    post_ids = ds.posts["post_id"].to_numpy().astype(np.int64)
    inp = inputs_from_run(run, ds, feats, post_ids)
    lists = [np.asarray(h, np.int64) for h in hist["history"].to_list()]
    uvecs, _ = user_vectors(run, lists, hist["user_id"].to_numpy().astype(np.int64), latent_lookup(post_ids, inp.latents))

    out: dict = {"bundle": bundle.name, "k": an.info["k"], "purity": round(purity, 4), "users": len(hist)}
    offline = {}
    for use in ("history", "vector", "both"):
        offline[use] = profile_topics(an, hist, topic_of, uvecs, use)
        out[{"both": "blend (offline, all clusters)"}.get(use, use)] = EV.profile_precision(offline[use], up)

    served = {}
    t1 = time.perf_counter()
    with TestClient(create_app(Settings(index_root=a.index, open_reads=True))) as c:
        for u in hist["user_id"].to_list():
            r = c.get(f"/v1/users/{u}/profile")
            r.raise_for_status()
            ranked = [topic_of.get(int(x["cluster_id"])) for x in r.json()["clusters"]]  # weight order
            served[int(u)] = EV.top_distinct(ranked)
    t_served = time.perf_counter() - t1
    out["blend (served, GET /v1/users/{id}/profile)"] = EV.profile_precision(served, up)
    same = [set(served[u]) == set(offline["both"][u]) for u in served]
    out["served == offline blend (top-3 topic sets)"] = round(float(np.mean(same)), 4)

    full = history_table(ds.interactions).select("user_id", "history")
    tp = dict(zip(pt["post_id"].to_list(), pt["topic"].to_list()))
    own = {}
    for u, h in full.iter_rows():
        c: dict[str, int] = {}
        for pid in h:
            c[tp[pid]] = c.get(tp[pid], 0) + 1
        own[int(u)] = sorted(c, key=lambda t: -c[t])[:3]
    out["reference: true topics of the history"] = EV.profile_precision(own, up)
    glob = ds.interactions.join(pt, on="post_id").group_by("topic").len().sort("len", descending=True)["topic"].to_list()[:3]
    out["reference: globally top topics"] = EV.profile_precision({int(u): glob for u in full["user_id"].to_list()}, up)
    out["seconds"] = {"total": round(time.perf_counter() - t0, 1), "served profiles": round(t_served, 1)}
    print(json.dumps(out, indent=1))
    if a.out:
        Path(a.out).write_text(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
