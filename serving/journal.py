"""The online log (recsys.online_log) bound to a running app: the write path, replay on start and
on a bundle swap, and the poller that applies other workers' entries.

A write, under the app's write lock and inside one log transaction (writers of every worker
serialised by the log): apply what other workers appended since this worker's applied seq, check
the write against that up-to-date state (404 / 422 leave the log untouched), append, commit;
only then apply it in memory and answer 2xx. So an acknowledged write is durable, each worker
applies the same entries in the same order, and a check never passes on a stale view.

The poller (one thread per worker) waits `log_poll_ms` (PostgreSQL: or until NOTIFY), reads the
entries after the applied seq and applies them under the write lock.
"""

from __future__ import annotations

import logging
import os
import re
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from recsys.errors import ArtifactError
from recsys.online_log import Entry, OnlineLog, open_log, records
from serving.online import event_tuples
from serving.requests import NotFound, now_us
from serving.settings import Settings

logger = logging.getLogger(__name__)

LOG_FILE = "online_log.sqlite3"  # the default SQLite log, inside INDEX_ROOT beside CURRENT and bundles/
BATCH = 1000  # entries read per query while replaying


def log_location(settings: Settings) -> str | None:
    """Where the app's online log lives: None when off, a postgresql:// URL, or a SQLite path."""
    spec = (settings.online_log or "").strip()
    if spec.lower() == "off":
        return None
    return spec or str(Path(settings.index_root) / LOG_FILE)


class Journal:
    def __init__(self, holder: Any, log: OnlineLog | None, poll_s: float = 0.01) -> None:
        self.holder, self.log, self.poll_s = holder, log, poll_s
        self.replay_seconds = 0.0  # the last full replay (start or swap)
        self.replayed = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @classmethod
    def open(cls, holder: Any, settings: Settings) -> Journal:
        where = log_location(settings)
        return cls(holder, None if where is None else open_log(where), settings.log_poll_ms / 1000)

    # --- replay ----------------------------------------------------------------------------

    def replay(self, state, timed: bool = True) -> int:
        """Apply every entry after `state`'s applied seq (its bundle's watermark on a fresh state);
        `timed`: report it as the replay (replay_seconds, the start's or the swap's)."""
        if self.log is None:
            return 0
        t0 = time.perf_counter()
        done = self.log.stats().compacted_through
        if done > state.online.applied_seq:
            raise ArtifactError(
                f"online log {self.log.url} was compacted through seq {done}, but bundle {state.version} covers only "
                f"up to seq {state.online.applied_seq}: serve a bundle built with the log folded in (recsys build-index --log)")
        n = 0
        while entries := self.log.read_after(state.online.applied_seq, BATCH):
            n += state.apply_entries(entries)
        if not timed:
            return n
        self.replay_seconds, self.replayed = time.perf_counter() - t0, n
        logger.info("online log %s: replayed %d entries onto bundle %s in %.3f s (applied seq %d)",
                    self.log.url, n, state.version, self.replay_seconds, state.online.applied_seq)
        return n

    def catch_up(self) -> int:
        """Apply what other workers appended (the poller's step; cheap when there is nothing)."""
        st = self.holder.state
        if self.log is None or st is None:
            return 0
        entries = self.log.read_after(st.online.applied_seq, BATCH)  # outside the lock: usually empty
        if not entries:
            return 0
        with self.holder.write_lock:
            st = self.holder.state
            return st.apply_entries(entries) if st is not None else 0

    # --- writes ----------------------------------------------------------------------------

    def _write(self, kind: str, payload: dict, check: Callable[[Any], Any]) -> Any:
        """check(state) -> result (truthy: append the entry), or raises (nothing appended)."""
        with self.holder.write_lock:
            st = self.holder.state
            if self.log is None:
                result = check(st)
                if result:
                    st.apply_entries([Entry(st.online.applied_seq + 1, kind, payload, now_us(None))])
                return result
            with self.log.writing() as w:
                st.apply_entries(w.read_after(st.online.applied_seq))
                result = check(st)
                if not result:
                    return result
                seq = w.append(kind, payload)
            st.apply_entries([Entry(seq, kind, payload, now_us(None))])  # durable now: apply, then answer
            return result

    def add_post(self, post, features: dict, present: dict, latent: np.ndarray, vector: np.ndarray, model: str | None,
                 key=None) -> bool:
        """True when added, False when the post exists already (nothing written). `key`: the
        caller's post id when it is a string (answers name the post by it on every worker)."""
        payload = records.post_payload(post.post_id, post.author_id, now_us(post.created_at), model, features, present,
                                       latent, vector, key=key if isinstance(key, str) else None)
        return self._write("post", payload, lambda st: not st.exists(post.post_id))

    def delete_post(self, post_id: int) -> None:
        def check(st) -> bool:
            if not st.exists(post_id):
                raise NotFound(f"post {post_id} not found (unknown or already deleted)")
            return True

        self._write("delete", records.delete_payload(post_id), check)

    def add_events(self, events: list) -> int:
        """One entry for the whole batch (all or nothing); the number of users it touches."""
        tuples = event_tuples(events)

        def check(st) -> int:
            st.online.check_events(np.array([t[1] for t in tuples], np.int64))
            return len({t[0] for t in tuples})

        return self._write("events", records.events_payload(tuples), check)

    def status(self, state) -> dict:
        """What /readyz and /metrics say about the log for this worker."""
        url = None if self.log is None else re.sub(r"://([^:/@]+):[^@]*@", r"://\1:***@", self.log.url)
        return {"worker_pid": os.getpid(), "location": url, "applied_seq": state.online.applied_seq,
                "bundle_seq": int(state.bundle.manifest.get("log_seq", 0)), "replayed": self.replayed,
                "replay_seconds": round(self.replay_seconds, 6)}

    # --- the poller ------------------------------------------------------------------------

    def start(self) -> None:
        if self.log is None or self._thread is not None:
            return
        self._thread = threading.Thread(target=self._poll, name="online-log-poller", daemon=True)
        self._thread.start()

    def _poll(self) -> None:
        while not self._stop.is_set():
            try:
                self.log.wait(self.poll_s)
                if not self._stop.is_set():
                    self.catch_up()
            except Exception:  # a lost connection: keep serving what is applied, retry
                logger.exception("online log %s: poll failed; retrying", self.log.url)
                self._stop.wait(1.0)

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        if self.log is not None:
            self.log.close()
