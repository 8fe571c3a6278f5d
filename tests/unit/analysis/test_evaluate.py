"""Scoring the analysis against the synthetic truth when bursts are of two kinds: topics, and new
cross-author themes whose posts may have a cluster of their own or land in a topic's."""

from __future__ import annotations

import datetime as dt

import numpy as np
import polars as pl

from recsys.analysis import evaluate as EV
from recsys.analysis import trends as T

H0 = 480_000  # an hour index (2024-10)


def _series(k: int, days: int, rate: float, seed: int = 0) -> T.Series:
    rng = np.random.default_rng(seed)
    ev = rng.poisson(rate, (k, 24 * days)).astype(np.float64)
    return T.Series(H0, ev, np.zeros_like(ev), np.zeros_like(ev))


def _ts(hour: int) -> dt.datetime:
    return dt.datetime.fromtimestamp(hour * 3600, dt.UTC)


def _truth():
    """Posts 1-30: cluster 10 = cooking; posts 31-60: cluster 11 = travel, 8 of them (51-58)
    heatwave posts; posts 61-70: cluster 12, 6 of them election posts (its majority)."""
    ids = np.arange(1, 71)
    posts = pl.DataFrame({"post_id": ids, "cluster_id": np.repeat([10, 11, 12], [30, 30, 10])})
    topic = ["cooking"] * 30 + ["travel"] * 40
    theme = [None] * 50 + ["heatwave"] * 8 + [None] * 6 + ["election"] * 6
    pt = pl.DataFrame({"post_id": ids, "topic": topic, "theme": pl.Series(theme, dtype=pl.String)})
    return posts, pt


def test_subjects_and_where_themes_land():
    posts, pt = _truth()
    mapping, purity = EV.cluster_topics(posts, pt)
    assert mapping == {10: "cooking", 11: "travel", 12: "election"}
    assert purity == (30 + 22 + 6) / 70  # heatwave posts in travel's cluster and travel posts in election's count as misses
    land = EV.theme_landing(posts, pt)
    assert land["heatwave"] == {"cluster_id": 11, "posts": 8, "share_of_theme": 1.0, "share_of_cluster": round(8 / 30, 4),
                                "own_cluster": False}
    assert land["election"]["cluster_id"] == 12 and land["election"]["own_cluster"]
    assert EV.theme_landing(posts, pt.drop("theme")) == {}
    # an old truth table (no theme column) maps by topic alone
    assert EV.cluster_topics(posts, pt.drop("theme"))[0][12] == "travel"


def test_burst_detection_scores_each_kind_and_finds_a_theme_where_it_landed():
    posts, pt = _truth()
    s = _series(3, 20, 6.0, seed=1)
    cooking, heat, elect = H0 + 24 * 6, H0 + 24 * 11, H0 + 24 * 16
    s.events[0, cooking - H0 : cooking - H0 + 12] += 15  # the topic burst (cluster 10)
    s.events[1, heat - H0 : heat - H0 + 12] += 15  # the heatwave, inside travel's cluster (11)
    s.events[2, elect - H0 : elect - H0 + 12] += 15  # the election, its own cluster (12)
    bursts = pl.DataFrame({
        "burst_id": [0, 1, 2], "kind": ["topic", "theme", "theme"], "topic": ["cooking", None, None],
        "theme": [None, "heatwave", "election"],
        "start": [_ts(cooking), _ts(heat), _ts(elect)], "end": [_ts(cooking + 12), _ts(heat + 12), _ts(elect + 12)],
    })
    mapping, _ = EV.cluster_topics(posts, pt)
    cids = np.array([10, 11, 12])
    r = EV.burst_detection(s, cids, mapping, bursts, 6, landing=EV.theme_landing(posts, pt))
    assert r["detected"] == 3 and r["precision"] == 1.0
    assert r["by_kind"]["topic"]["bursts"] == 1 and r["by_kind"]["topic"]["detected"] == 1
    assert r["by_kind"]["theme"]["bursts"] == 2 and r["by_kind"]["theme"]["detected"] == 2
    assert r["by_kind"]["theme"]["true_alarms"] >= 2 and r["by_kind"]["topic"]["true_alarms"] >= 1
    # without knowing where the heatwave landed, the alarm on travel's cluster is a false one
    # (of kind topic: travel is a topic's cluster) and the heatwave is missed
    r2 = EV.burst_detection(s, cids, mapping, bursts, 6)
    assert r2["by_kind"]["theme"]["detected"] == 1 and r2["by_kind"]["topic"]["precision"] < 1.0


def test_match_bursts_attributes_false_alarms_to_their_clusters_kind():
    stands = np.array([[True, False], [False, True], [False, False]])  # cluster 2 stands for nothing
    bursts = [(0, 100, 112), (1, 300, 312)]
    alarms = [(0, 102, 110), (1, 303, 305), (2, 500, 501), (1, 700, 700)]
    r = T.match_bursts(alarms, stands, bursts, 6, 80, 900, burst_kinds=["topic", "theme"],
                       cluster_kinds=["topic", "theme", "topic"])
    assert r["detected"] == 2 and r["true_alarms"] == 2 and r["false_alarms_quiet"] == 2
    topic, theme = r["by_kind"]["topic"], r["by_kind"]["theme"]
    assert (topic["alarms"], topic["true_alarms"], topic["false_alarms_quiet"], topic["delays_h"]) == (2, 1, 1, [2])
    assert (theme["alarms"], theme["true_alarms"], theme["false_alarms_quiet"], theme["delays_h"]) == (2, 1, 1, [3])
    assert topic["precision"] == theme["precision"] == 0.5
    assert r["by_kind"]["theme"]["false_alarms_per_quiet_day"] == r["by_kind"]["topic"]["false_alarms_per_quiet_day"] > 0
