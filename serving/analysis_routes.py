"""Analysis endpoints: trends and interest profiles, from the bundle's `analysis/`.

    GET /v1/trends?window=24h&k=10       top surging interest clusters (recsys.analysis.trends)
    GET /v1/users/{id}/profile           the user's interest profile (recsys.analysis.profiles)

`create_app` includes `router` and feeds `observe_events` from POST /v1/events, so trends count
online events on top of the bundle's hourly history (kept on the app: they survive a reload).
The per-bundle arrays (`AnalysisView`: post row -> cluster, sentiment, modalities; the dense
hourly series) are built once, on the first request to a bundle, and kept on the bundle.
A bundle built before clusters existed answers 404 with how to get them.
"""

from __future__ import annotations

import datetime as dt
import threading
import time
from dataclasses import dataclass

import numpy as np
from fastapi import APIRouter, HTTPException, Query, Request

from recsys.analysis import trends as T
from recsys.analysis.clusters import assign, unit
from recsys.analysis.profiles import ProfileView, interest_profile, profile_view
from serving import schemas as S

router = APIRouter(tags=["analysis"])

LIVE_MAX = 1_000_000  # online events kept for trends (oldest dropped first)
STATISTIC = ("z = (X - E) / sqrt(E + 1); X = events in the window, E = the cluster's exponentially weighted "
             "baseline share of all events (half-life 3 days) x all events in the window")


@dataclass
class AnalysisView:
    """A bundle's analysis as arrays (read-only once built)."""

    cluster_ids: np.ndarray  # int64 (K,)
    labels: list[str]
    representatives: list[list[int]]
    centroids: np.ndarray  # float32 (K, Z)
    row_cluster: np.ndarray  # int64 (N,) cluster position of each bundle row (-1: none)
    row_sentiment: np.ndarray  # float32 (N,)
    row_present: np.ndarray  # bool (N, M)
    cluster_sentiment: np.ndarray  # float32 (K,)
    series: T.Series
    profiles: ProfileView


def _build_view(st) -> AnalysisView:  # noqa: ANN001 - serving.state.ServingState
    a = st.bundle.extra.get("analysis")
    if a is None:
        raise HTTPException(404, f"bundle {st.version} has no interest clusters (built before they existed); "
                                 "rebuild it with `recsys build-index` to get trends and profiles")
    cids = a.clusters["cluster_id"].to_numpy().astype(np.int64)
    pos_of = {int(c): i for i, c in enumerate(cids)}
    rows = st.rows_of(a.posts["post_id"].to_numpy().astype(np.int64))
    ok = rows >= 0
    row_cluster = np.full(st.n, -1, np.int64)
    row_cluster[rows[ok]] = np.array([pos_of[int(c)] for c in a.posts["cluster_id"].to_numpy()[ok]], np.int64)
    row_sent = np.zeros(st.n, np.float32)
    row_sent[rows[ok]] = a.posts["sentiment"].to_numpy()[ok]
    pv = profile_view(a)
    row_present = np.zeros((st.n, len(pv.modalities)), bool)
    for j, m in enumerate(pv.modalities):
        row_present[rows[ok], j] = a.posts[f"has_{m}"].to_numpy()[ok]
    return AnalysisView(cids, a.clusters["label"].to_list(), a.clusters["representative_post_ids"].to_list(),
                        np.asarray(a.centroids, np.float32), row_cluster, row_sent, row_present,
                        a.clusters["sentiment"].to_numpy().astype(np.float32), T.series_from_table(a.activity, cids), pv)


_view_lock = threading.Lock()


def view(st) -> AnalysisView:  # noqa: ANN001
    v = st.bundle.extra.get("analysis_view")
    if v is None:
        with _view_lock:
            v = st.bundle.extra.get("analysis_view")
            if v is None:
                v = st.bundle.extra["analysis_view"] = _build_view(st)
    return v


def clusters_of(st, v: AnalysisView, post_ids: np.ndarray) -> np.ndarray:  # noqa: ANN001
    """Cluster positions of post ids: bundle posts by lookup, online posts by their nearest
    centroid (-1: unknown post)."""
    rows = st.rows_of(post_ids)
    out = np.where(rows >= 0, v.row_cluster[np.maximum(rows, 0)], -1)
    miss = np.flatnonzero(rows < 0)
    if len(miss):
        lat = st.latents_of(post_ids[miss])
        live = np.any(lat != 0, axis=1)
        if live.any():
            out[miss[live]] = assign(unit(lat[live]), v.centroids)
    return out


def _sentiment_of(v: AnalysisView, rows: np.ndarray, pos: np.ndarray) -> np.ndarray:
    """Bundle posts: their score; others: their cluster's mean."""
    return np.where(rows >= 0, v.row_sentiment[np.maximum(rows, 0)], v.cluster_sentiment[np.maximum(pos, 0)])


# --- online events ------------------------------------------------------------------------------

class LiveEvents:
    """Online engagement events (time, post id), appended by POST /v1/events."""

    def __init__(self, cap: int = LIVE_MAX) -> None:
        self.cap = cap
        self._ts = np.zeros(0, np.int64)
        self._pid = np.zeros(0, np.int64)
        self._lock = threading.Lock()

    def add(self, ts_us: np.ndarray, post_ids: np.ndarray) -> None:
        with self._lock:
            self._ts = np.concatenate([self._ts, ts_us])[-self.cap :]
            self._pid = np.concatenate([self._pid, post_ids])[-self.cap :]

    def snapshot(self) -> tuple[np.ndarray, np.ndarray]:
        with self._lock:
            return self._ts, self._pid


def live_events(app) -> LiveEvents:  # noqa: ANN001
    live = getattr(app.state, "live_events", None)
    if live is None:
        live = app.state.live_events = LiveEvents()
    return live


def observe_events(app, events: list) -> None:  # noqa: ANN001 - FastAPI app, [schemas.Event]
    """Count accepted events for trends (an event without `ts` happened now)."""
    now = time.time_ns() // 1000
    ts = np.array([now if e.ts is None else int(e.ts.timestamp() * 1_000_000) for e in events], np.int64)
    live_events(app).add(ts, np.array([e.post_id for e in events], np.int64))


def _live_series(st, v: AnalysisView, ts: np.ndarray, pids: np.ndarray, lo: int, hi: int) -> T.Series:  # noqa: ANN001
    """Online events and posts added online, binned over [lo, hi)."""
    k = len(v.cluster_ids)
    ev, sent, new = np.zeros((k, hi - lo)), np.zeros((k, hi - lo)), np.zeros((k, hi - lo))
    b = T.to_bin(ts)
    keep = (b >= lo) & (b < hi)
    if keep.any():
        p = pids[keep]
        pos = clusters_of(st, v, p)
        ok = pos >= 0
        s = _sentiment_of(v, st.rows_of(p), pos)
        np.add.at(ev, (pos[ok], b[keep][ok] - lo), 1.0)
        np.add.at(sent, (pos[ok], b[keep][ok] - lo), s[ok])
    d = st.delta
    if d.n:
        db = T.to_bin(d.created)
        inw = (db >= lo) & (db < hi)
        if inw.any():
            pos = assign(unit(d.latents[inw]), v.centroids)
            np.add.at(new, (pos, db[inw] - lo), 1.0)
    return T.Series(lo, ev, sent, new)


def _state(request: Request):  # noqa: ANN202
    st = request.app.state.holder.state
    if st is None:
        raise HTTPException(503, "no bundle loaded yet")
    return st


# --- routes -------------------------------------------------------------------------------------

@router.get("/v1/trends", response_model=S.TrendsResponse)
def trends(request: Request, window: str = Query("24h", description="recent window: 90m, 6h, 2d (whole hours)"),
           k: int = Query(10, ge=1, le=100, description="clusters to return"),
           flagged_only: bool = Query(False, description="only clusters over the surge thresholds"),
           now: dt.datetime | None = Query(None, description="window end (default: latest activity or the clock)")):
    """The top clusters by burst score in the window before `now`, with label, score,
    representative posts, new-post velocity, sentiment and a sparkline."""
    st = _state(request)
    w = T.parse_window(window)
    v = view(st)
    ts, pids = live_events(request.app).snapshot()
    if now is not None:
        if now.tzinfo is None:
            now = now.replace(tzinfo=dt.UTC)
        end = int(T.to_bin(int(now.timestamp() * 1_000_000))) + 1
    else:
        latest = max(v.series.end_bin, int(T.to_bin(ts.max())) + 1 if len(ts) else 0)
        end = min(latest, int(T.to_bin(time.time_ns() // 1000)) + 1)
    lo = end - max(T.BASELINE_HALF_LIVES * T.HALF_LIFE_BINS + w, T.SPARK_WINDOWS * w + T.SPARK_POINTS)
    extra = _live_series(st, v, ts, pids, lo, end) if len(ts) or st.delta.n else None
    items = T.trending(v.series, end, w, v.cluster_ids, v.labels, v.representatives, top=k, extra=extra,
                       only_flagged=flagged_only)
    for it in items:  # post ids in the caller's ids (strings where the deployment uses them)
        it["representative_post_ids"] = st.ids.posts_out(it["representative_post_ids"])
    as_of = dt.datetime.fromtimestamp(end * T.BIN_US / 1e6, dt.UTC)
    return {"bundle_version": st.version, "as_of": as_of, "window_hours": w, "live_events": int(len(ts)),
            "statistic": STATISTIC, "items": items}


@router.get("/v1/users/{user_id}/profile", response_model=S.ProfileResponse)
def profile(user_id: str, request: Request):
    """The user's top interest clusters (weights from their history and their user vector),
    labels, example posts, preferred modality, activity summary. A user without history
    gets `has_history: false` and a message."""
    st = _state(request)
    caller_id, user_id = st.ids.inward_path("user", user_id, "user_id")
    v = view(st)
    known, hist, seen = st.user_history(user_id)
    hist = np.asarray(hist, np.int64)
    uvec = None
    if len(hist):
        p = st.prepare(S.RecommendRequest(user_id=user_id, k=1))
        st.profiles([p])
        uvec = p.query
    pos = clusters_of(st, v, hist) if len(hist) else np.zeros(0, np.int64)
    rows = st.rows_of(hist) if len(hist) else np.zeros(0, np.int64)
    present = np.where((rows >= 0)[:, None], v.row_present[np.maximum(rows, 0)], False) if len(hist) else np.zeros((0, len(v.profiles.modalities)), bool)
    sent = _sentiment_of(v, rows, pos) if len(hist) else np.zeros(0)
    body = interest_profile(pos, hist, present, sent, len(np.unique(seen)), uvec, v.profiles)
    for c in body["clusters"]:
        c["example_post_ids"] = st.ids.posts_out(c["example_post_ids"])
    return {"user_id": caller_id, "bundle_version": st.version, **body}
