"""The analysis against the synthetic platform's hidden truth (ground_truth/, recsys/data/synth*.py).

    cluster_topics(posts, post_topics)                -> majority subject (topic or theme) of each cluster, purity
    theme_landing(posts, post_topics)                 -> the cluster each new theme's posts went to
    burst_detection(series, ..., bursts, window)      -> precision, recall, delay, false alarms / quiet day,
                                                         overall and per kind (topic | theme)
    sentiment_truth(posts, tones)                     -> agreement with the hidden tone, text / no text
    profile_precision(top_topics, user_preferences)   -> precision@3 of profile topics vs hidden top-3

Pure functions over polars tables and numpy arrays; `recsys trends` and bench/analysis_synth.py
call them.
"""

from __future__ import annotations

import numpy as np
import polars as pl

from recsys.analysis import trends as T
from recsys.analysis.sentiment import agreement
from recsys.data.synth_text import THEME_NAMES, TONE_NEUTRAL


def post_subjects(post_topics: pl.DataFrame) -> pl.DataFrame:
    """post_topics (post_id, topic[, theme]) -> post_id, subject: a theme post's subject is its
    theme (what its content is about), any other post's its topic."""
    subj = pl.coalesce("theme", "topic") if "theme" in post_topics.columns else pl.col("topic")
    return post_topics.select("post_id", subj.alias("subject"))


def cluster_topics(posts: pl.DataFrame, post_topics: pl.DataFrame) -> tuple[dict[int, str], float]:
    """posts: post_id, cluster_id; post_topics: post_id, topic[, theme] -> ({cluster_id: majority
    subject (a topic, or a theme when its posts are the cluster's majority)}, purity = share of
    posts whose cluster's majority subject is their own)."""
    j = posts.select("post_id", "cluster_id").join(post_subjects(post_topics), on="post_id")
    counts = j.group_by("cluster_id", "subject").len().sort(["cluster_id", "len", "subject"], descending=[False, True, False])
    top = counts.group_by("cluster_id", maintain_order=True).first()
    mapping = dict(zip(top["cluster_id"].to_list(), top["subject"].to_list()))
    purity = float(top["len"].sum() / max(len(j), 1))
    return mapping, purity


def theme_landing(posts: pl.DataFrame, post_topics: pl.DataFrame) -> dict[str, dict]:
    """Where each theme's posts went: {theme: {cluster_id (the cluster holding most of them),
    posts, share_of_theme (its posts in that cluster), share_of_cluster (the cluster's posts that
    are the theme's), own_cluster (the theme is that cluster's majority)}}. Empty without themes."""
    if "theme" not in post_topics.columns:
        return {}
    j = posts.select("post_id", "cluster_id").join(post_topics.select("post_id", "theme"), on="post_id")
    size = dict(j.group_by("cluster_id").len().iter_rows())
    mapping, _ = cluster_topics(posts, post_topics)
    out = {}
    th = j.drop_nulls("theme")
    for name in sorted(th["theme"].unique().to_list()):
        mine = th.filter(pl.col("theme") == name)
        c, n = mine.group_by("cluster_id").len().sort(["len", "cluster_id"], descending=[True, False]).row(0)
        out[name] = {"cluster_id": int(c), "posts": len(mine), "share_of_theme": round(n / len(mine), 4),
                     "share_of_cluster": round(n / size[c], 4), "own_cluster": mapping.get(c) == name}
    return out


def burst_subjects(bursts: pl.DataFrame) -> tuple[list[str], list[str]]:
    """ground_truth/bursts.parquet -> (subject per burst: its topic or its theme, kind per burst).
    A table from before themes existed (no `kind`) holds topic bursts only."""
    if "kind" not in bursts.columns:
        return bursts["topic"].to_list(), ["topic"] * len(bursts)
    return bursts.select(pl.coalesce("theme", "topic").alias("subject"))["subject"].to_list(), bursts["kind"].to_list()


def burst_detection(s: T.Series, cluster_ids: np.ndarray, mapping: dict[int, str], bursts: pl.DataFrame,
                    window: int, warmup_bins: int = 72, landing: dict[str, dict] | None = None) -> dict:
    """Scan the series with `window` and score the alarms against ground_truth/bursts.parquet,
    overall and per kind (topic | theme; "by_kind"). Alarms are counted from `warmup_bins` after
    the series starts (a baseline needs history).

    A burst stands on the clusters whose majority subject is its subject (`mapping`, from
    `cluster_topics`); a theme that is no cluster's majority stands on the cluster most of its
    posts landed in (`landing`, from `theme_landing`), where its burst shows as that cluster's."""
    subj, kinds = burst_subjects(bursts)
    themes = {t for t, k in zip(subj, kinds) if k == "theme"} | set(THEME_NAMES)
    subjects = sorted(set(mapping.values()) | set(subj))
    six = {t: i for i, t in enumerate(subjects)}
    stands = np.zeros((len(cluster_ids), len(subjects)), bool)  # (K, S)
    row = {int(c): i for i, c in enumerate(cluster_ids)}
    for c, t in mapping.items():
        if int(c) in row:
            stands[row[int(c)], six[t]] = True
    for t, where in (landing or {}).items():
        if t in six and not stands[:, six[t]].any() and where["cluster_id"] in row:
            stands[row[where["cluster_id"]], six[t]] = True
    cluster_kinds = ["theme" if mapping.get(int(c)) in themes else "topic" for c in cluster_ids]
    start = s.first_bin + warmup_bins
    ends, z, fl = T.scan(s, window, start=start)
    al = T.alarms(ends, fl)
    b = [(six[t], int(T.to_bin(st)), int(T.to_bin(en))) for t, (st, en) in
         zip(subj, bursts.select(pl.col("start").cast(pl.Int64), pl.col("end").cast(pl.Int64)).iter_rows())]
    out = T.match_bursts(al, stands, b, window, int(ends[0]), int(ends[-1]), burst_kinds=kinds, cluster_kinds=cluster_kinds)
    out["window_hours"] = window
    out["alarm_list"] = [{"cluster_id": int(cluster_ids[c]), "topic": mapping.get(int(cluster_ids[c])),
                          "first_hour": a, "last_hour": e} for c, a, e in al]
    return out


def sentiment_truth(posts: pl.DataFrame, tones: pl.DataFrame) -> dict:
    """posts: post_id, sentiment, sentiment_source; tones: post_id, tone -> agreement per source
    (text = VADER; head / cluster = posts without text), the truth's neutral band TONE_NEUTRAL."""
    j = posts.join(tones.select("post_id", "tone"), on="post_id")
    out = {}
    for src in ("text", "head", "cluster"):
        sub = j.filter(pl.col("sentiment_source") == src)
        if len(sub):
            out[src] = agreement(sub["sentiment"].to_numpy(), sub["tone"].to_numpy(), target_neutral=TONE_NEUTRAL)
    no_text = j.filter(pl.col("sentiment_source") != "text")
    if len(no_text):
        out["without_text"] = agreement(no_text["sentiment"].to_numpy(), no_text["tone"].to_numpy(), target_neutral=TONE_NEUTRAL)
    return out


def top_distinct(ranked_topics: list[str | None], n: int = 3) -> list[str]:
    out: list[str] = []
    for t in ranked_topics:
        if t is not None and t not in out:
            out.append(t)
        if len(out) == n:
            break
    return out


def profile_precision(predicted: dict[int, list[str]], user_preferences: pl.DataFrame, n: int = 3) -> dict:
    """predicted {user_id: topics, best first (distinct)}; user_preferences: user_id, topic,
    weight -> mean precision@n against each user's n topics of largest hidden weight, and the
    mean hidden weight the predicted topics capture relative to the best n."""
    prefs: dict[int, dict[str, float]] = {}
    for u, t, w in user_preferences.select("user_id", "topic", "weight").iter_rows():
        prefs.setdefault(int(u), {})[t] = float(w)
    p_at, cap = [], []
    for u, pred in predicted.items():
        w = prefs.get(int(u))
        if not w or not pred:
            continue
        best = sorted(w, key=lambda t: -w[t])[:n]
        p_at.append(len(set(pred[:n]) & set(best)) / n)
        cap.append(sum(w.get(t, 0.0) for t in pred[:n]) / max(sum(w[t] for t in best), 1e-12))
    return {"users": len(p_at), f"precision@{n}": float(np.mean(p_at)) if p_at else float("nan"),
            f"weight_capture@{n}": float(np.mean(cap)) if cap else float("nan")}
