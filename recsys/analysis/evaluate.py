"""The analysis against the synthetic platform's hidden truth (ground_truth/, recsys/data/synth*.py).

    cluster_topics(posts, post_topics)                -> majority topic of each cluster, purity
    burst_detection(series, ..., bursts, window)      -> precision, recall, delay, false alarms / quiet day
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
from recsys.data.synth_text import TONE_NEUTRAL


def cluster_topics(posts: pl.DataFrame, post_topics: pl.DataFrame) -> tuple[dict[int, str], float]:
    """posts: post_id, cluster_id; post_topics: post_id, topic -> ({cluster_id: majority topic},
    purity = share of posts whose cluster's majority topic is their own)."""
    j = posts.select("post_id", "cluster_id").join(post_topics.select("post_id", "topic"), on="post_id")
    counts = j.group_by("cluster_id", "topic").len().sort(["cluster_id", "len", "topic"], descending=[False, True, False])
    top = counts.group_by("cluster_id", maintain_order=True).first()
    mapping = dict(zip(top["cluster_id"].to_list(), top["topic"].to_list()))
    purity = float(top["len"].sum() / max(len(j), 1))
    return mapping, purity


def burst_detection(s: T.Series, cluster_ids: np.ndarray, mapping: dict[int, str], bursts: pl.DataFrame,
                    window: int, warmup_bins: int = 72) -> dict:
    """Scan the series with `window` and score the alarms against ground_truth/bursts.parquet
    (topic, start, end). Alarms are counted from `warmup_bins` after the series starts (a
    baseline needs history)."""
    topics = sorted(set(mapping.values()) | set(bursts["topic"].to_list()))
    tix = {t: i for i, t in enumerate(topics)}
    cluster_topic = np.array([tix.get(mapping.get(int(c), ""), -1) for c in cluster_ids], np.int64)
    start = s.first_bin + warmup_bins
    ends, z, fl = T.scan(s, window, start=start)
    al = T.alarms(ends, fl)
    b = [(tix[t], int(T.to_bin(st)), int(T.to_bin(en))) for t, st, en in
         bursts.select("topic", pl.col("start").cast(pl.Int64), pl.col("end").cast(pl.Int64)).iter_rows()]
    out = T.match_bursts(al, cluster_topic, b, window, int(ends[0]), int(ends[-1]))
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
