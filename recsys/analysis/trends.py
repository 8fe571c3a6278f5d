"""Trends: which interest clusters surge now, against their own past.

Engagement is counted per cluster in hourly bins (`Series`). For a recent window of W bins
ending at `end`, each cluster gets

    X      its events in the window
    T      all clusters' events in the window
    s      its baseline share: exponentially weighted (half-life H bins) share of all events in the
           bins before the window (at most BASELINE_HALF_LIVES half-lives back), with a pseudo-count
           PRIOR spread evenly over the clusters so a new or quiet cluster has a share above 0
    E      = s * T, the events it would have had at its usual share
    z      = (X - E) / sqrt(E + 1)       the burst score
    ratio  = X / E

and is flagged as surging when z >= Z_MIN, ratio >= RATIO_MIN and X >= MIN_EVENTS.

Why this statistic: event counts in a bin are close to Poisson, so under "no trend" X is about
Poisson(E) and z is its standardised excess (the +1 keeps a cluster with a tiny baseline from
flagging on two events). Comparing a cluster's *share* of all activity with its own past share,
not its raw count, removes what moves every cluster at once: the platform growing, daily cycles,
an outage. A raw-count z-score reports every big cluster as trending when traffic doubles. The
exponential weighting lets the baseline follow slow drifts (a cluster growing for weeks is not a
burst) while a sudden burst is reported before it is absorbed. Nikolov & Shah (2012) match
recent count series against past trending and non-trending series instead; that needs labelled
trends, which a new platform does not have, and this test needs none.

Also per cluster: new-post velocity (posts created per hour in the window vs the baseline's
weighted rate), the mean sentiment of the posts engaged with in the window and in the baseline,
and a sparkline (events per step over the last SPARK_WINDOWS windows).

`scan` slides the window over the whole history (step one bin) for reports and for measuring the
detector against scheduled bursts (`alarms`, `match_bursts`).

Shapes: K clusters, B bins, E events.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from recsys.errors import SchemaError

BIN_US = 3_600 * 1_000_000  # one hour
HALF_LIFE_BINS = 72  # baseline half-life: 3 days
BASELINE_HALF_LIVES = 6
PRIOR = 1.0  # pseudo-events spread over the clusters' baseline shares
Z_MIN = 5.0  # chosen on synth seeds 100-103 (bench/analysis_synth.py --tune): 4.0 gave 0.1-0.3 false alarms a quiet day
RATIO_MIN = 1.5
MIN_EVENTS = 5
SPARK_POINTS = 24
SPARK_WINDOWS = 4
WINDOW_MAX_BINS = 24 * 90
_WINDOW_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([mhd])\s*$")


def parse_window(text: str) -> int:
    """"90m" | "6h" | "2d" -> whole hours (>= 1, minutes round up). SchemaError otherwise."""
    m = _WINDOW_RE.match(str(text))
    if not m:
        raise SchemaError(f"window must look like 90m, 6h or 2d, got {text!r}")
    v, unit = float(m.group(1)), m.group(2)
    hours = {"m": v / 60, "h": v, "d": v * 24}[unit]
    bins = max(1, int(np.ceil(hours - 1e-9)))
    if bins > WINDOW_MAX_BINS:
        raise SchemaError(f"window must be at most {WINDOW_MAX_BINS // 24}d, got {text!r}")
    return bins


def to_bin(ts_us: np.ndarray | int) -> np.ndarray:
    """Microseconds since the epoch -> int64 hour index (floor)."""
    return np.floor_divide(np.asarray(ts_us, np.int64), BIN_US)


@dataclass
class Series:
    """Dense hourly activity of K clusters over bins first_bin .. first_bin + B - 1."""

    first_bin: int
    events: np.ndarray  # float64 (K, B) engagement events
    sentiment_sum: np.ndarray  # float64 (K, B) sum of the engaged posts' sentiment
    new_posts: np.ndarray  # float64 (K, B) posts created

    @property
    def n_bins(self) -> int:
        return self.events.shape[1]

    @property
    def end_bin(self) -> int:
        """One past the last bin."""
        return self.first_bin + self.n_bins

    def window(self, lo: int, hi: int, which: str = "events") -> np.ndarray:
        """(K, hi - lo) copy of bins [lo, hi), zeros outside the series."""
        arr = getattr(self, which)
        out = np.zeros((arr.shape[0], max(hi - lo, 0)))
        a, b = max(lo, self.first_bin), min(hi, self.end_bin)
        if b > a:
            out[:, a - lo : b - lo] = arr[:, a - self.first_bin : b - self.first_bin]
        return out


def series_from_events(k: int, event_cluster: np.ndarray, event_us: np.ndarray, event_sentiment: np.ndarray,
                       post_cluster: np.ndarray, post_created_us: np.ndarray) -> Series:
    """Bin events (cluster index int64 (E,), time us (E,), sentiment of the engaged post (E,))
    and post creations (cluster index (N,), created us (N,), unknown times < 0 ignored)."""
    eb = to_bin(event_us)
    ok_p = np.asarray(post_created_us) > 0
    pb = to_bin(np.asarray(post_created_us)[ok_p])
    all_bins = np.concatenate([eb, pb])
    if len(all_bins) == 0:
        z = np.zeros((k, 0))
        return Series(0, z, z.copy(), z.copy())
    first, last = int(all_bins.min()), int(all_bins.max())
    B = last - first + 1
    events = np.zeros((k, B))
    sent = np.zeros((k, B))
    new = np.zeros((k, B))
    np.add.at(events, (event_cluster, eb - first), 1.0)
    np.add.at(sent, (event_cluster, eb - first), np.asarray(event_sentiment, np.float64))
    np.add.at(new, (np.asarray(post_cluster)[ok_p], pb - first), 1.0)
    return Series(first, events, sent, new)


def _decay(n: int, half_life: int) -> np.ndarray:
    """(n,) weights of bins, the last (most recent) weighing 1."""
    return 0.5 ** (np.arange(n - 1, -1, -1) / half_life)


def window_stats(s: Series, end: int, window: int, half_life: int = HALF_LIFE_BINS,
                 extra: Series | None = None) -> dict[str, np.ndarray]:
    """The statistics of the module docstring for the W = `window` bins before bin `end`
    (exclusive). `extra`: more activity to add (live events). Returns {name: (K,) array}:
    observed, expected, z, ratio, flagged, new_posts, velocity, velocity_ratio,
    sentiment_window, sentiment_baseline."""
    lo = end - window
    base_lo = lo - BASELINE_HALF_LIVES * half_life

    def get(which: str, a: int, b: int) -> np.ndarray:
        x = s.window(a, b, which)
        return x + extra.window(a, b, which) if extra is not None else x

    win_e, base_e = get("events", lo, end), get("events", base_lo, lo)  # (K, W), (K, Bb)
    w = _decay(base_e.shape[1], half_life)
    k = win_e.shape[0]
    X = win_e.sum(1)
    T = X.sum()
    base_w = base_e @ w  # (K,)
    share = (base_w + PRIOR / max(k, 1)) / (base_w.sum() + PRIOR)
    E = share * T
    z = (X - E) / np.sqrt(E + 1.0)
    ratio = X / np.maximum(E, 1e-9)
    flagged = (z >= Z_MIN) & (ratio >= RATIO_MIN) & (X >= MIN_EVENTS)
    win_p, base_p = get("new_posts", lo, end).sum(1), get("new_posts", base_lo, lo) @ w
    velocity = win_p / window  # posts per bin (hour)
    base_rate = base_p / max(w.sum(), 1e-9)
    win_s, base_s = get("sentiment_sum", lo, end).sum(1), get("sentiment_sum", base_lo, lo) @ w
    with np.errstate(invalid="ignore", divide="ignore"):
        sent_w = np.where(X > 0, win_s / np.maximum(X, 1e-9), np.nan)
        sent_b = np.where(base_w > 0, base_s / np.maximum(base_w, 1e-9), np.nan)
    return {
        "observed": X, "expected": E, "z": z, "ratio": ratio, "flagged": flagged,
        "new_posts": win_p, "velocity": velocity, "velocity_ratio": (velocity + 1e-3) / (base_rate + 1e-3),
        "sentiment_window": sent_w, "sentiment_baseline": sent_b,
    }


def sparkline(s: Series, end: int, window: int, points: int = SPARK_POINTS, extra: Series | None = None) -> tuple[int, np.ndarray]:
    """Events per step over the last SPARK_WINDOWS windows before `end`: (step in bins,
    float64 (K, points') counts, oldest first; points' <= points when the span is shorter)."""
    span = SPARK_WINDOWS * window
    step = max(1, int(np.ceil(span / points)))
    n = int(np.ceil(span / step))
    lo = end - n * step
    x = s.window(lo, end)
    if extra is not None:
        x = x + extra.window(lo, end)
    return step, x.reshape(x.shape[0], n, step).sum(2)


def scan(s: Series, window: int, start: int | None = None, half_life: int = HALF_LIFE_BINS) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Slide the window over the series, one bin at a time, from window end `start` (default:
    first_bin + window) to the series' end. Returns (ends int64 (T,), z float64 (T, K),
    flagged bool (T, K))."""
    start = s.first_bin + window if start is None else start
    ends = np.arange(start, s.end_bin + 1, dtype=np.int64)
    zs, fl = [], []
    for e in ends:
        st = window_stats(s, int(e), window, half_life)
        zs.append(st["z"])
        fl.append(st["flagged"])
    k = s.events.shape[0]
    return ends, np.array(zs).reshape(len(ends), k), np.array(fl, bool).reshape(len(ends), k)


def alarms(ends: np.ndarray, flagged: np.ndarray) -> list[tuple[int, int, int]]:
    """Runs of consecutive flagged window ends per cluster -> [(cluster, first end, last end)]
    (an alarm is raised at its first end; the run is one alarm however long it lasts)."""
    out = []
    for c in range(flagged.shape[1]):
        f = flagged[:, c].astype(np.int8)
        d = np.diff(np.concatenate([[0], f, [0]]))
        for a, b in zip(np.flatnonzero(d == 1), np.flatnonzero(d == -1) - 1):
            out.append((c, int(ends[a]), int(ends[b])))
    return sorted(out, key=lambda t: (t[1], t[0]))


def match_bursts(alarm_list: list[tuple[int, int, int]], cluster_topic: np.ndarray,
                 bursts: list[tuple[int, int, int]], window: int, first_end: int, last_end: int,
                 burst_kinds: list[str] | None = None, cluster_kinds: list[str] | None = None) -> dict:
    """Score alarms against known bursts.

    alarm_list: from `alarms`; cluster_topic: the subject (topic or theme) each cluster stands
    for, int64 (K,) (-1: none), or bool (K, S) when a cluster may stand for several (a topic's
    cluster that a new theme's posts landed in); bursts: [(subject, start bin, end bin exclusive)];
    window: W bins (an alarm up to W bins after a burst ends is still about it);
    [first_end, last_end]: the scanned window ends.
    An alarm is true when its cluster stands for a subject bursting at its time (start - 0 ..
    end + W); a burst is detected when some true alarm starts inside it (delay = alarm time -
    burst start, in bins). Quiet time: scanned bins farther than W from every burst; false
    alarms are counted there per day.
    burst_kinds (len(bursts)) and cluster_kinds (K): with both, the same figures per kind under
    "by_kind": a true alarm counts for the kind of the burst it hits, a false one for its
    cluster's kind."""
    stands = np.asarray(cluster_topic)
    if stands.ndim == 1:  # one subject per cluster -> (K, S) membership
        n_sub = max([int(stands.max(initial=-1)) + 1] + [bt + 1 for bt, _, _ in bursts])
        stands = (stands[:, None] == np.arange(n_sub)[None, :]) & (stands[:, None] >= 0)
    stands = stands.astype(bool)
    detected: list[int | None] = [None] * len(bursts)
    per_alarm = []  # (kind it counts for, true, in quiet time)
    for c, t0, _ in alarm_list:
        hit = [i for i, (bt, bs, be) in enumerate(bursts) if bt < stands.shape[1] and stands[c, bt] and bs <= t0 <= be + window]
        for i in hit:
            if detected[i] is None or t0 < detected[i]:
                detected[i] = t0
        quiet = all(not (bs - window <= t0 <= be + window) for _, bs, be in bursts)
        kind = (burst_kinds[hit[0]] if hit else cluster_kinds[c]) if burst_kinds is not None and cluster_kinds is not None else None
        per_alarm.append((kind, bool(hit), quiet and not hit))
    quiet = np.ones(last_end - first_end + 1, bool)
    for _, bs, be in bursts:
        quiet[max(bs - window - first_end, 0) : max(be + window - first_end + 1, 0)] = False
    quiet_days = float(quiet.sum()) / 24.0

    def score(alarm_rows: list[tuple], burst_ix: list[int]) -> dict:
        n_al, true = len(alarm_rows), sum(t for _, t, _ in alarm_rows)
        false_quiet = sum(q for _, _, q in alarm_rows)
        found = [i for i in burst_ix if detected[i] is not None]
        delays = [detected[i] - bursts[i][1] for i in found]
        return {
            "alarms": n_al, "true_alarms": true, "bursts": len(burst_ix), "detected": len(found),
            "precision": true / n_al if n_al else float("nan"),
            "recall": len(found) / len(burst_ix) if burst_ix else float("nan"),
            "delays_h": delays, "median_delay_h": float(np.median(delays)) if delays else float("nan"),
            "false_alarms_quiet": false_quiet, "quiet_days": round(quiet_days, 2),
            "false_alarms_per_quiet_day": false_quiet / quiet_days if quiet_days > 0 else float("nan"),
        }

    out = score(per_alarm, list(range(len(bursts))))
    if burst_kinds is not None and cluster_kinds is not None:
        out["by_kind"] = {k: score([a for a in per_alarm if a[0] == k], [i for i, bk in enumerate(burst_kinds) if bk == k])
                          for k in sorted(set(burst_kinds) | set(cluster_kinds))}
    return out


def series_from_table(activity, cluster_ids: np.ndarray) -> Series:
    """A store's activity table (cluster_id, hour, events, sentiment_sum, new_posts) -> Series
    with rows in `cluster_ids` order (a cluster id not in `cluster_ids` is dropped)."""
    cluster_ids = np.asarray(cluster_ids, np.int64)
    k = len(cluster_ids)
    if len(activity) == 0:
        z = np.zeros((k, 0))
        return Series(0, z, z.copy(), z.copy())
    order = np.argsort(cluster_ids, kind="stable")
    cid = activity["cluster_id"].to_numpy().astype(np.int64)
    pos = np.clip(np.searchsorted(cluster_ids[order], cid), 0, k - 1)
    ok = cluster_ids[order[pos]] == cid
    row = order[pos[ok]]
    hour = activity["hour"].to_numpy().astype(np.int64)[ok]
    first = int(hour.min()) if len(hour) else 0
    B = int(hour.max()) - first + 1 if len(hour) else 0
    out = []
    for col in ("events", "sentiment_sum", "new_posts"):
        m = np.zeros((k, B))
        m[row, hour - first] = activity[col].to_numpy().astype(np.float64)[ok]  # (cluster, hour) rows are unique
        out.append(m)
    return Series(first, *out)


def trending(s: Series, end: int, window: int, cluster_ids: np.ndarray, labels: list[str],
             representatives: list[list[int]], top: int = 10, extra: Series | None = None,
             only_flagged: bool = False) -> list[dict]:
    """The `top` clusters by burst score at window end `end` (bins), as dicts (the API's items
    and the report's rows): cluster_id, label, score (z), flagged, observed, expected, ratio,
    new_posts, new_post_velocity (posts / h), velocity_ratio, sentiment, sentiment_baseline,
    representative_post_ids, sparkline {step_hours, values}."""
    st = window_stats(s, end, window, extra=extra)
    step, spark = sparkline(s, end, window, extra=extra)
    order = np.argsort(-st["z"], kind="stable")
    if only_flagged:
        order = order[st["flagged"][order]]
    out = []

    def num(x: float) -> float | None:
        return None if not np.isfinite(x) else round(float(x), 4)

    for c in order[:top]:
        out.append({
            "cluster_id": int(cluster_ids[c]), "label": labels[c], "score": num(st["z"][c]), "flagged": bool(st["flagged"][c]),
            "observed": int(st["observed"][c]), "expected": num(st["expected"][c]), "ratio": num(st["ratio"][c]),
            "new_posts": int(st["new_posts"][c]), "new_post_velocity": num(st["velocity"][c]),
            "velocity_ratio": num(st["velocity_ratio"][c]),
            "sentiment": num(st["sentiment_window"][c]), "sentiment_baseline": num(st["sentiment_baseline"][c]),
            "representative_post_ids": [int(p) for p in representatives[c]],
            "sparkline": {"step_hours": int(step), "values": [int(v) for v in spark[c]]},
        })
    return out
