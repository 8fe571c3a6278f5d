"""The burst statistic: a surge is flagged, platform-wide growth is not; alarms scored against bursts."""

from __future__ import annotations

import numpy as np
import pytest

from recsys.analysis import trends as T
from recsys.errors import SchemaError

H0 = 480_000  # an hour index (2024-10)


def poisson_series(k: int, bins: int, rate: np.ndarray, seed: int = 0) -> T.Series:
    rng = np.random.default_rng(seed)
    ev = rng.poisson(rate[:, None] * np.ones((k, bins))).astype(np.float64)
    return T.Series(H0, ev, np.zeros_like(ev), np.zeros_like(ev))


def test_parse_window():
    assert T.parse_window("6h") == 6 and T.parse_window("2d") == 48 and T.parse_window("90m") == 2
    for bad in ("6", "h", "-1h", "6 weeks"):
        with pytest.raises(SchemaError, match="window must look like"):
            T.parse_window(bad)
    with pytest.raises(SchemaError, match="at most"):
        T.parse_window("400d")


def test_surge_is_flagged_and_quiet_clusters_are_not():
    s = poisson_series(6, 24 * 20, np.array([5.0, 5, 2, 2, 1, 1]))
    end = s.end_bin
    s.events[2, -6:] += 10  # cluster 2: 2/h -> 12/h for the last 6 hours
    st = T.window_stats(s, end, 6)
    assert st["flagged"].tolist() == [False, False, True, False, False, False]
    assert st["z"][2] > 10 and st["ratio"][2] > 3
    assert st["expected"].sum() == pytest.approx(st["observed"].sum())  # shares sum to one


def test_platform_wide_growth_is_not_a_trend():
    s = poisson_series(5, 24 * 20, np.array([8.0, 4, 4, 2, 2]), seed=1)
    s.events[:, -12:] *= 3  # every cluster triples at once (traffic spike)
    st = T.window_stats(s, s.end_bin, 6)
    assert not st["flagged"].any(), st["z"]


def test_velocity_sentiment_and_sparkline():
    s = poisson_series(2, 24 * 10, np.array([4.0, 4.0]), seed=2)
    s.new_posts[0, -6:] = 3.0  # 3 new posts an hour in the window, none before
    s.sentiment_sum[1] = s.events[1] * -0.5
    st = T.window_stats(s, s.end_bin, 6)
    assert st["velocity"][0] == pytest.approx(3.0) and st["velocity_ratio"][0] > 100
    assert st["sentiment_window"][1] == pytest.approx(-0.5)
    step, sp = T.sparkline(s, s.end_bin, 6)
    assert step == 1 and sp.shape == (2, 24) and sp[0].tolist() == s.events[0, -24:].tolist()


def test_series_from_events_and_table_agree():
    import polars as pl

    ts = (np.array([H0, H0, H0 + 2, H0 + 5]) * T.BIN_US + 1).astype(np.int64)
    s = T.series_from_events(2, np.array([0, 1, 1, 0]), ts, np.array([0.5, -1, 1, 0.5]),
                             np.array([0, 1]), np.array([H0 * T.BIN_US, -1]))
    assert s.first_bin == H0 and s.events.tolist() == [[1, 0, 0, 0, 0, 1], [1, 0, 1, 0, 0, 0]]
    assert s.new_posts[:, 0].tolist() == [1, 0]
    tab = pl.DataFrame({"cluster_id": [7, 9, 9, 7], "hour": [H0, H0, H0 + 2, H0 + 5], "events": [1, 1, 1, 1],
                        "sentiment_sum": [0.5, -1.0, 1.0, 0.5], "new_posts": [1, 0, 0, 0]})
    s2 = T.series_from_table(tab, np.array([7, 9]))
    assert s2.first_bin == H0 and np.array_equal(s2.events, s.events) and np.array_equal(s2.sentiment_sum, s.sentiment_sum)


def test_scan_alarms_and_scoring_against_bursts():
    rate = np.array([6.0, 6, 6, 6])
    s = poisson_series(4, 24 * 20, rate, seed=3)
    b0 = H0 + 24 * 10
    s.events[1, 24 * 10 : 24 * 10 + 12] += 15  # a 12-hour burst of cluster 1 at day 10
    ends, z, fl = T.scan(s, 6, start=H0 + 24 * 3)
    al = T.alarms(ends, fl)
    assert al and all(c == 1 for c, _, _ in al)
    r = T.match_bursts(al, np.arange(4), [(1, b0, b0 + 12), (3, H0 + 24 * 15, H0 + 24 * 15 + 6)], 6, int(ends[0]), int(ends[-1]))
    assert r["precision"] == 1.0 and r["recall"] == 0.5 and r["detected"] == 1
    assert 0 < r["median_delay_h"] <= 3 and r["false_alarms_quiet"] == 0
    # an alarm of cluster 0 far from any burst is a quiet-period false alarm
    r2 = T.match_bursts(al + [(0, H0 + 24 * 5, H0 + 24 * 5)], np.arange(4), [(1, b0, b0 + 12)], 6, int(ends[0]), int(ends[-1]))
    assert r2["false_alarms_quiet"] == 1 and r2["precision"] == pytest.approx(len(al) / (len(al) + 1))
