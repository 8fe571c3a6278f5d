"""The online log: every write the API acknowledges (a new post, a delete, a batch of events),
appended in one transaction before the 2xx, in one total order (`seq`, increasing in commit
order; gaps allowed). Workers serve from memory and apply entries in `seq` order; a restarted
worker replays the entries after its bundle's watermark (manifest `log_seq`); `recsys
build-index` folds the log into the next bundle.

Two engines behind one interface (`OnlineLog`), same schema:
    SQLite (WAL), one file on the machine, shared by every worker process: `open_log("path.sqlite3")`
    PostgreSQL (psycopg 3), for replicas on several machines: `open_log("postgresql://...")`

    with log.writing() as w:        # writers serialised (BEGIN IMMEDIATE / LOCK TABLE), one transaction
        w.read_after(applied)       # what other workers wrote since (apply before checking the write)
        seq = w.append("post", payload)
    log.read_after(seq, limit)      # [Entry] in seq order
    log.wait(timeout)               # until new entries may exist (PostgreSQL: LISTEN/NOTIFY) or timeout
    log.compact(through)            # drop entries a bundle covers

Payloads are JSON objects built by `recsys.online_log.records`.
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path

from recsys.errors import ConfigError

KINDS = ("post", "delete", "events")
TABLE, META = "online_log", "online_log_meta"


@dataclass(frozen=True)
class Entry:
    seq: int
    kind: str  # one of KINDS
    payload: dict
    written_us: int  # server time of the append (us since the epoch)

    @classmethod
    def from_row(cls, row) -> Entry:
        seq, kind, payload, written = row
        return cls(int(seq), kind, json.loads(payload), int(written))


@dataclass(frozen=True)
class LogStats:
    entries: int
    bytes: int  # storage the log takes (SQLite: file + WAL; PostgreSQL: table + index)
    last_seq: int  # 0 when nothing was ever written
    compacted_through: int  # entries at or below this seq were dropped (a bundle covers them)


class Writer(ABC):
    """One write transaction (the log's writers are serialised while it is open)."""

    @abstractmethod
    def read_after(self, seq: int) -> list[Entry]: ...

    @abstractmethod
    def append(self, kind: str, payload: dict) -> int:
        """Add one entry; its seq (the entry is durable once the transaction commits)."""


class OnlineLog(ABC):
    url: str

    @abstractmethod
    def writing(self) -> AbstractContextManager[Writer]:
        """A write transaction: commits when the block ends, rolls back (nothing appended) on an exception."""

    @abstractmethod
    def read_after(self, seq: int, limit: int = 1000) -> list[Entry]:
        """Up to `limit` entries with seq > `seq`, in seq order."""

    @abstractmethod
    def stats(self) -> LogStats: ...

    @abstractmethod
    def compact(self, through: int) -> int:
        """Drop entries with seq <= `through` (a bundle covers them); the number dropped."""

    @abstractmethod
    def wait(self, timeout: float) -> None:
        """Return when new entries may exist, at the latest after `timeout` seconds."""

    @abstractmethod
    def close(self) -> None: ...

    def __enter__(self) -> OnlineLog:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def check_kind(kind: str) -> None:
    if kind not in KINDS:
        raise ConfigError(f"online log entry kind must be one of {KINDS}, got {kind!r}")


def open_log(spec: str | Path) -> OnlineLog:
    """`postgresql://...` (or `postgres://`) -> PostgreSQL; anything else is a SQLite file path."""
    s = str(spec)
    if s.startswith(("postgresql://", "postgres://")):
        from recsys.online_log.postgres import PostgresLog

        return PostgresLog(s)
    from recsys.online_log.sqlite import SqliteLog

    return SqliteLog(Path(s))
