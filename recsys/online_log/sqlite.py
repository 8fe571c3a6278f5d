"""The online log in one SQLite file (WAL mode, synchronous=FULL: a committed append survives a
crash of the process and of the machine). Every worker process on the machine opens the same
file; `BEGIN IMMEDIATE` serialises writers, readers never block. One connection per thread."""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from recsys.errors import ArtifactError
from recsys.online_log import META, TABLE, Entry, LogStats, OnlineLog, Writer, check_kind

SCHEMA = f"""
CREATE TABLE IF NOT EXISTS {TABLE} (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,  -- never reused, also after compaction
    kind TEXT NOT NULL,
    payload TEXT NOT NULL,
    written_us INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS {META} (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
"""


class _SqliteWriter(Writer):
    def __init__(self, con: sqlite3.Connection) -> None:
        self.con = con

    def read_after(self, seq: int) -> list[Entry]:
        rows = self.con.execute(f"SELECT seq, kind, payload, written_us FROM {TABLE} WHERE seq > ? ORDER BY seq", (seq,))
        return [Entry.from_row(r) for r in rows]

    def append(self, kind: str, payload: dict) -> int:
        check_kind(kind)
        cur = self.con.execute(f"INSERT INTO {TABLE} (kind, payload, written_us) VALUES (?, ?, ?)",
                               (kind, json.dumps(payload, separators=(",", ":")), time.time_ns() // 1000))
        return int(cur.lastrowid)


class SqliteLog(OnlineLog):
    def __init__(self, path: Path, busy_timeout_s: float = 30.0) -> None:
        self.path = Path(path)
        self.url = str(self.path)
        self._busy_ms = int(busy_timeout_s * 1000)
        self._local = threading.local()
        self._all: list[sqlite3.Connection] = []  # every thread's connection (closed by close())
        self.path.parent.mkdir(parents=True, exist_ok=True)
        con = self._con()
        try:
            con.execute("PRAGMA journal_mode=WAL")
            con.execute("BEGIN IMMEDIATE")
            for stmt in filter(None, (s.strip() for s in SCHEMA.split(";"))):
                con.execute(stmt)
            con.execute("COMMIT")
        except sqlite3.DatabaseError as e:
            raise ArtifactError(f"online log {self.path}: cannot open as SQLite ({e})") from e

    def _con(self) -> sqlite3.Connection:
        con = getattr(self._local, "con", None)
        if con is None:
            con = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False, timeout=self._busy_ms / 1000)
            con.execute(f"PRAGMA busy_timeout={self._busy_ms}")
            con.execute("PRAGMA synchronous=FULL")
            self._local.con = con
            self._all.append(con)
        return con

    @contextmanager
    def writing(self) -> Iterator[Writer]:
        con = self._con()
        con.execute("BEGIN IMMEDIATE")  # the write lock now, not at the first INSERT: reads see the latest
        try:
            yield _SqliteWriter(con)
        except BaseException:
            con.execute("ROLLBACK")
            raise
        con.execute("COMMIT")

    def read_after(self, seq: int, limit: int = 1000) -> list[Entry]:
        rows = self._con().execute(
            f"SELECT seq, kind, payload, written_us FROM {TABLE} WHERE seq > ? ORDER BY seq LIMIT ?", (seq, limit))
        return [Entry.from_row(r) for r in rows]

    def stats(self) -> LogStats:
        con = self._con()
        n, last = con.execute(f"SELECT COUNT(*), COALESCE(MAX(seq), 0) FROM {TABLE}").fetchone()
        seqrow = con.execute("SELECT seq FROM sqlite_sequence WHERE name = ?", (TABLE,)).fetchone()
        done = con.execute(f"SELECT value FROM {META} WHERE key = 'compacted_through'").fetchone()
        size = sum(p.stat().st_size for p in (self.path, Path(f"{self.path}-wal")) if p.exists())
        return LogStats(int(n), int(size), max(int(last), int(seqrow[0]) if seqrow else 0), int(done[0]) if done else 0)

    def compact(self, through: int) -> int:
        with self.writing() as w:
            cur = w.con.execute(f"DELETE FROM {TABLE} WHERE seq <= ?", (through,))
            w.con.execute(f"INSERT INTO {META} (key, value) VALUES ('compacted_through', ?) "
                          "ON CONFLICT(key) DO UPDATE SET value = MAX(value, excluded.value)", (through,))
            return int(cur.rowcount)

    def wait(self, timeout: float) -> None:
        time.sleep(timeout)

    def close(self) -> None:
        for con in self._all:
            con.close()
        self._all.clear()
        self._local = threading.local()
