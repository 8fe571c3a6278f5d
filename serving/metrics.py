"""Prometheus metrics, one registry per app (tests build many apps in one process)."""

from __future__ import annotations

import time

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

# the HTTP methods that get their own `method` label; any other is counted as "other" (the label
# comes from the request line: taking it as sent would let clients add series without bound)
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


def method_label(method: str) -> str:
    return method if method in METHODS else "other"


BUCKETS = (0.0005, 0.001, 0.0015, 0.002, 0.003, 0.005, 0.0075, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0, 2.5)


class Metrics:
    def __init__(self, holder) -> None:
        self.registry = r = CollectorRegistry()
        self.latency = Histogram("recsys_request_seconds", "request latency by route", ["route", "method", "status"],
                                 buckets=BUCKETS, registry=r)
        self.bundle = Gauge("recsys_bundle_info", "served bundle version (value 1)", ["version"], registry=r)
        self.bundle_age = Gauge("recsys_bundle_age_seconds", "seconds since the served bundle was built", registry=r)
        self.recall = Gauge("recsys_bundle_recall", "recall@K measured at build time", ["k"], registry=r)
        self.delta = Gauge("recsys_delta_posts", "posts added online (not yet in a bundle)", registry=r)
        self.deleted = Gauge("recsys_deleted_posts", "bundle posts deleted online", registry=r)
        self.overfetch = Counter("recsys_filter_searches_total",
                                 "filtered searches by strategy (post_filter over-fetch, selector_retry, exact)",
                                 ["strategy"], registry=r)
        self.fallbacks = Counter("recsys_fallbacks_total", "non-personalised or history-only responses", ["reason"], registry=r)
        self.batch = Histogram("recsys_search_batch_size", "queries per FAISS search call", buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256),
                               registry=r)
        self.reloads = Counter("recsys_reloads_total", "bundle hot swaps", registry=r)
        self.log_entries = Gauge("recsys_log_entries", "entries in the online log (all workers' writes not compacted)", registry=r)
        self.log_bytes = Gauge("recsys_log_bytes", "storage the online log takes (SQLite file + WAL, or PostgreSQL table)", registry=r)
        self.log_last = Gauge("recsys_log_last_seq", "last seq appended to the online log", registry=r)
        self.log_applied = Gauge("recsys_log_applied_seq", "last online-log entry this worker applied", ["worker_pid"], registry=r)
        self.log_bundle = Gauge("recsys_log_bundle_seq", "last online-log entry the served bundle covers", registry=r)
        self.log_replay = Gauge("recsys_log_replay_seconds", "time of the last replay (start or swap)", registry=r)
        self.in_flight = 0  # HTTP requests being served (updated on the event loop by the app's middleware)
        Gauge("recsys_requests_in_flight", "HTTP requests being served", registry=r).set_function(lambda: self.in_flight)
        self._holder = holder
        from serving.search import Stats

        self.stats = Stats()  # shared by every state this app serves
        self._seen: dict = {}
        self._version = None
        self.bundle_age.set_function(self._age)

    def _age(self) -> float:
        st = self._holder.state
        if st is None:
            return float("nan")
        import datetime as dt

        created = st.bundle.manifest.get("created_at")
        try:
            return time.time() - dt.datetime.fromisoformat(created).timestamp()
        except (TypeError, ValueError):
            return float("nan")

    def collect_state(self) -> None:
        """Copy the state's plain counters into the registry (at scrape time)."""
        st = self._holder.state
        if st is None:
            return
        if st.version != self._version:
            self.bundle.clear()
            self.bundle.labels(st.version).set(1)
            rec = st.bundle.manifest.get("recall", {})
            self.recall.clear()
            self.recall.labels(str(rec.get("k"))).set(float(rec.get("measured", float("nan"))))
            self._version = st.version
        self.delta.set(st.delta.n)
        self.deleted.set(len(st.tomb_rows))
        journal = self._holder.journal
        if journal is not None and journal.log is not None:
            status, stats = journal.status(st), journal.log.stats()
            self.log_entries.set(stats.entries)
            self.log_bytes.set(stats.bytes)
            self.log_last.set(stats.last_seq)
            self.log_applied.labels(str(status["worker_pid"])).set(status["applied_seq"])
            self.log_bundle.set(status["bundle_seq"])
            self.log_replay.set(status["replay_seconds"])
        for name, v in list(self.stats.overfetch.items()):
            self._bump(self.overfetch.labels(name), ("o", name), v)
        for name, v in list(self.stats.fallbacks.items()):
            self._bump(self.fallbacks.labels(name), ("f", name), v)

    def _bump(self, counter, key, total: int) -> None:
        prev = self._seen.get(key, 0)
        if total > prev:
            counter.inc(total - prev)
        self._seen[key] = total
