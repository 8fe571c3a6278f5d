"""recsys.online_log on both engines (a SQLite file, a throw-away PostgreSQL server): order,
all-or-nothing transactions, two handles on one log (two workers), concurrent writers, the codec,
and compaction."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from recsys.errors import ConfigError
from recsys.online_log import open_log, records


def test_append_read_and_rollback(log_url):
    with open_log(log_url) as log:
        assert log.read_after(0) == [] and log.stats().last_seq == 0
        with log.writing() as w:
            a = w.append("delete", records.delete_payload(5))
            b = w.append("events", records.events_payload([(1, 5, "like", None)]))
        assert b > a > 0
        with pytest.raises(RuntimeError, match="boom"):
            with log.writing() as w:
                w.append("delete", records.delete_payload(6))
                raise RuntimeError("boom")  # a request that fails half-way
        with pytest.raises(ConfigError, match="kind must be one of"):
            with log.writing() as w:
                w.append("nope", {})
        got = log.read_after(0)
        assert [(e.seq, e.kind, e.payload) for e in got] == [
            (a, "delete", {"post_id": 5}), (b, "events", {"events": [[1, 5, "like", None]]})]
        assert log.read_after(a) == got[1:] and log.read_after(0, limit=1) == got[:1]
        assert got[0].written_us > time.time_ns() // 1000 - 60_000_000


def test_two_handles_see_each_other_and_writers_serialise(log_url):
    """Two handles (two worker processes) with 4 threads each append 25 entries: every entry is
    there once, in seq order, and a reader inside a write transaction sees all earlier ones."""
    logs = [open_log(log_url), open_log(log_url)]
    seen_before: list[tuple[int, int]] = []

    def writer(log, wid: int) -> None:
        for i in range(25):
            with log.writing() as w:
                before = len(w.read_after(0))
                seq = w.append("delete", records.delete_payload(wid * 1000 + i))
            seen_before.append((seq, before))

    threads = [threading.Thread(target=writer, args=(logs[t % 2], t)) for t in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    entries = logs[1].read_after(0, limit=10_000)
    assert len(entries) == 200 and len({e.payload["post_id"] for e in entries}) == 200
    seqs = [e.seq for e in entries]
    assert seqs == sorted(seqs)
    rank = {s: i for i, s in enumerate(seqs)}
    assert all(before == rank[seq] for seq, before in seen_before)  # serialised: each saw exactly its predecessors
    for log in logs:
        log.close()


def test_post_record_round_trips_exactly():
    rng = np.random.default_rng(0)
    feats = {"text": rng.standard_normal((1, 7)).astype(np.float32), "image": np.zeros((1, 3), np.float32)}
    present = {"text": np.array([True]), "image": np.array([False])}
    lat, vec = rng.standard_normal((1, 4)).astype(np.float32), rng.standard_normal((1, 6)).astype(np.float32)
    import json

    p = json.loads(json.dumps(records.post_payload(9, None, 123, "fp", feats, present, lat, vec)))
    r = records.read_post(p)
    assert (r.post_id, r.author_id, r.created_us, r.model) == (9, None, 123, "fp")
    np.testing.assert_array_equal(r.features["text"], feats["text"])
    np.testing.assert_array_equal(r.latent, lat)
    np.testing.assert_array_equal(r.vector, vec)
    assert r.present == {"text": np.array([True]), "image": np.array([False])}
    assert records.read_events(records.events_payload([(1, 2, "view", 5), (3, 4, "like", None)])) == [
        (1, 2, "view", 5), (3, 4, "like", None)]


def test_compaction_drops_covered_entries_and_keeps_counting(log_url):
    with open_log(log_url) as log:
        for i in range(5):
            with log.writing() as w:
                w.append("delete", records.delete_payload(i))
        s = log.stats()
        assert (s.entries, s.last_seq, s.compacted_through) == (5, 5, 0) and s.bytes > 0
        assert log.compact(3) == 3
        assert [e.payload["post_id"] for e in log.read_after(0)] == [3, 4]
        assert log.compact(1) == 0 and log.stats().compacted_through == 3  # never moves back
        log.compact(5)
        with log.writing() as w:
            seq = w.append("delete", records.delete_payload(9))
        assert seq == 6 and log.stats().last_seq == 6  # a seq is never reused


def test_wait_returns_early_on_postgres_notify(postgres):
    url = postgres.new_database()
    reader, writer = open_log(url), open_log(url)
    reader.wait(0.01)  # LISTEN now
    threading.Timer(0.2, _append, args=(writer,)).start()
    t0 = time.perf_counter()
    reader.wait(5.0)
    assert time.perf_counter() - t0 < 2.0
    reader.close()
    writer.close()


def _append(log) -> None:
    with log.writing() as w:
        w.append("delete", records.delete_payload(1))
