"""`recsys trends`: clusters, sentiment and trends over a dataset's whole history, as a report.

    write_trends_report(data_dir, out_dir, run_dir=None, window="6h")

    OUT/report.md      clusters (label, size, modality mix, sentiment), alarms over time, the top
                       trends at the end of the history; on the synthetic platform also the
                       measures against its hidden truth (bursts, sentiment, profiles)
    OUT/report.json    the same figures
    OUT/trends.png     time on x, the clusters' hourly engagement (6 h sums), alarms marked
    OUT/analysis/      the analysis files (recsys/analysis/store.py): per-post cluster and sentiment

Latents: a trained run's (`--run`: also gives the sentiment head its text-free latents and the
profiles their user vectors), else the feature store's modalities side by side.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from pathlib import Path

import numpy as np
import polars as pl

from recsys.analysis import evaluate as EV
from recsys.analysis import trends as T
from recsys.analysis.build import Inputs, analyse, inputs_from_features, inputs_from_run
from recsys.analysis.profiles import cluster_weights, profile_view
from recsys.analysis.store import Analysis, write_analysis
from recsys.inference import history_table, latent_lookup, user_vectors
from recsys.io import write_json

logger = logging.getLogger(__name__)

PLOT_CLUSTERS = 8


def _hour(b: int) -> str:
    return dt.datetime.fromtimestamp(b * T.BIN_US / 1e6, dt.UTC).strftime("%Y-%m-%d %H:00")


def _histories(ds, max_len: int | None = None) -> pl.DataFrame:
    """user_id, history: the one history semantics (recsys.inference)."""
    return history_table(ds.interactions, keep=max_len).select("user_id", "history")


def _user_vectors(run, inp: Inputs, hist: pl.DataFrame) -> np.ndarray:
    """float32 (U, d) user vectors of the run (recsys.inference.user_vectors)."""
    lists = [np.asarray(h, np.int64) for h in hist["history"].to_list()]
    vecs, _ = user_vectors(run, lists, hist["user_id"].to_numpy().astype(np.int64), latent_lookup(inp.post_ids, inp.latents))
    return vecs


def profile_topics(a: Analysis, hist: pl.DataFrame, mapping: dict[int, str], uvecs: np.ndarray | None,
                   use: str = "both") -> dict[int, list[str]]:
    """Each user's profile ranked clusters -> their majority topics (distinct, best first).
    use: "both" | "history" | "vector"."""
    pv = profile_view(a)
    pos_of = {int(c): i for i, c in enumerate(pv.cluster_ids)}
    pc = dict(zip(a.posts["post_id"].to_list(), a.posts["cluster_id"].to_list()))
    out = {}
    for i, (u, h) in enumerate(hist.iter_rows()):
        hp = np.array([pos_of.get(pc.get(p, -1), -1) for p in h], np.int64)
        uv = uvecs[i] if uvecs is not None and use != "history" else None
        w = cluster_weights(hp if use != "vector" else np.zeros(0, np.int64), uv, pv)["weight"]
        ranked = [mapping.get(int(pv.cluster_ids[c])) for c in np.argsort(-w, kind="stable") if w[c] > 0]
        out[int(u)] = EV.top_distinct(ranked)
    return out


def write_trends_report(data_dir: Path, out: Path, run_dir: Path | None = None, window: str = "6h",
                        k: int | None = None, seed: int = 0, top: int = 10) -> dict:
    from recsys.dataset import load_dataset
    from recsys.features import load_features

    ds = load_dataset(Path(data_dir))
    feats = load_features(Path(data_dir))
    post_ids = ds.posts["post_id"].to_numpy().astype(np.int64)
    run = vectors = None
    if run_dir is not None:
        from recsys.runs import load_run, post_authors

        run = load_run(Path(run_dir))
        inp = inputs_from_run(run, ds, feats, post_ids)
        vectors = np.concatenate([np.asarray(run.post_vectors(inp.latents[s : s + 8192], post_ids[s : s + 8192],
                                                              post_authors(ds, post_ids[s : s + 8192])), np.float32)
                                  for s in range(0, len(post_ids), 8192)])
    else:
        inp = inputs_from_features(ds, feats, post_ids)
    a = analyse(inp, ds.interactions.select("post_id", "ts"), vectors=vectors, k=k, seed=seed)
    out = Path(out)
    write_analysis(out / "analysis", a)
    w = T.parse_window(window)
    cids = a.clusters["cluster_id"].to_numpy().astype(np.int64)
    s = T.series_from_table(a.activity, cids)
    has_time = s.events.sum() > 0
    rep: dict = {"dataset": str(data_dir), "run": str(run_dir) if run_dir else None, "latents": inp.space,
                 "window_hours": w, "analysis": a.info, "clusters": a.clusters.drop("representative_post_ids").to_dicts()}
    if has_time:
        ends, z, fl = T.scan(s, w, start=s.first_bin + 3 * 24)
        al = T.alarms(ends, fl) if len(ends) else []
        rep["alarms"] = [{"cluster_id": int(cids[c]), "label": a.clusters["label"][c], "first": _hour(f), "last": _hour(e)}
                         for c, f, e in al]
        rep["trends_at_end"] = T.trending(s, s.end_bin, w, cids, a.clusters["label"].to_list(),
                                          a.clusters["representative_post_ids"].to_list(), top=top)
    else:
        al = []
        rep["trends"] = "unavailable: the interactions carry no timestamps"
    gt = ds.root / "ground_truth"
    if (gt / "post_topics.parquet").is_file():
        rep["truth"] = _truth(ds, a, s, cids, w, run, inp, gt, has_time)
    _plot(out / "trends.png", s, a, al, rep.get("truth", {}).get("burst_spans"))
    write_json(out / "report.json", rep)
    (out / "report.md").write_text(_markdown(rep))
    return rep


def _truth(ds, a: Analysis, s: T.Series, cids, w: int, run, inp: Inputs, gt: Path, has_time: bool) -> dict:
    pt = pl.read_parquet(gt / "post_topics.parquet")
    mapping, purity = EV.cluster_topics(a.posts, pt)
    landing = EV.theme_landing(a.posts, pt)
    out: dict = {"cluster_topic": {str(c): t for c, t in mapping.items()}, "purity": round(purity, 4)}
    if landing:
        out["themes"] = landing
    if has_time and (gt / "bursts.parquet").is_file():
        bursts = pl.read_parquet(gt / "bursts.parquet")
        if len(bursts):
            r = EV.burst_detection(s, cids, mapping, bursts, w, landing=landing)
            out["bursts"] = {k: v for k, v in r.items() if k != "alarm_list"}
            out["burst_spans"] = [(int(T.to_bin(b)), int(T.to_bin(e))) for b, e in
                                  bursts.select(pl.col("start").cast(pl.Int64), pl.col("end").cast(pl.Int64)).iter_rows()]
    if (gt / "post_tones.parquet").is_file():
        out["sentiment"] = EV.sentiment_truth(a.posts, pl.read_parquet(gt / "post_tones.parquet"))
    prefs = gt / "user_preferences.parquet"
    if prefs.is_file():
        up = pl.read_parquet(prefs)
        hist = _histories(ds)
        uvecs = _user_vectors(run, inp, _histories(ds, run.max_history)) if run is not None and a.centroid_vectors is not None else None
        prof = {}
        topic_of = {c: t for c, t in mapping.items() if t in set(up["topic"].unique().to_list())}  # a theme cluster names no preference
        for use in (("both", "history", "vector") if uvecs is not None else ("history",)):
            prof[use] = EV.profile_precision(profile_topics(a, hist, topic_of, uvecs, use), up)
        # references: the true topics of each user's own history (best a history-only profile can
        # do with perfect clusters) and the globally most engaged topics for everyone
        tp = dict(zip(pt["post_id"].to_list(), pt["topic"].to_list()))
        own = {}
        for u, h in hist.iter_rows():
            c = {}
            for p in h:
                c[tp[p]] = c.get(tp[p], 0) + 1
            own[int(u)] = sorted(c, key=lambda t: -c[t])[:3]
        prof["reference: true topics of the history"] = EV.profile_precision(own, up)
        glob = ds.interactions.join(pt, on="post_id").group_by("topic").len().sort("len", descending=True)["topic"].to_list()[:3]
        prof["reference: globally top topics"] = EV.profile_precision({int(u): glob for u in hist["user_id"].to_list()}, up)
        out["profiles"] = prof
    return out


def _plot(path: Path, s: T.Series, a: Analysis, al, spans) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(12, 5))
    if s.n_bins == 0:
        ax.text(0.5, 0.5, "no timestamps: no engagement over time", ha="center", va="center", transform=ax.transAxes)
    else:
        t = np.array([np.datetime64(int((s.first_bin + i) * T.BIN_US), "us") for i in range(s.n_bins)])
        kern = np.ones(6)
        top = np.argsort(-s.events.sum(1))[:PLOT_CLUSTERS]
        for c in top:
            ax.plot(t, np.convolve(s.events[c], kern)[: s.n_bins], lw=1.2, label=a.clusters["label"][int(c)][:40])
        for c, f, e in al:
            ax.axvspan(np.datetime64(int(f * T.BIN_US), "us"), np.datetime64(int((e + 1) * T.BIN_US), "us"), color="red", alpha=0.12)
        for b, e in spans or []:
            ax.axvline(np.datetime64(int(b * T.BIN_US), "us"), color="black", ls="--", lw=0.8)
        ax.set_ylabel("engagement events (last 6 h)")
        ax.legend(fontsize=7, loc="upper left")
        ax.set_title("clusters' engagement; red: alarms" + ("; dashed: scheduled burst starts" if spans else ""))
    fig.autofmt_xdate()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _markdown(rep: dict) -> str:
    info = rep["analysis"]
    L = [f"# Trends report: {rep['dataset']}", "",
         f"Latents: {rep['latents']}; {info['k']} clusters ({info['k_rule']}); window {rep['window_hours']} h.", "",
         "## Clusters", "", "| id | size | label | sentiment | modality shares |", "|---|---|---|---|---|"]
    for c in rep["clusters"]:
        shares = ", ".join(f"{k[6:]} {v:.0%}" for k, v in c.items() if k.startswith("share_"))
        L.append(f"| {c['cluster_id']} | {c['size']} | {c['label']} | {c['sentiment']:+.2f} | {shares} |")
    sh = info["sentiment"]
    L += ["", f"Sentiment: {sh['n_text']} posts scored by VADER from text, {sh['n_without_text']} without text; head: "
          + json.dumps(sh.get("head", {})), ""]
    if "alarms" in rep:
        L += ["## Alarms over the history", "", "| cluster | label | first | last |", "|---|---|---|---|"]
        L += [f"| {x['cluster_id']} | {x['label']} | {x['first']} | {x['last']} |" for x in rep["alarms"]]
        L += ["", "## Top clusters by burst score at the end of the history", "", "| cluster | label | z | X | E | sentiment |",
              "|---|---|---|---|---|---|"]
        for x in rep["trends_at_end"]:
            L.append(f"| {x['cluster_id']} | {x['label']} | {x['score']} | {x['observed']} | {x['expected']} | {x['sentiment']} |")
    else:
        L += ["## Trends", "", rep["trends"]]
    if "truth" in rep:
        L += ["", "## Against the synthetic platform's hidden truth", "", "```json", json.dumps(
            {k: v for k, v in rep["truth"].items() if k not in ("cluster_topic", "burst_spans")}, indent=1), "```"]
    L += ["", "![trends](trends.png)", ""]
    return "\n".join(L)
