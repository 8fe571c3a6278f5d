"""index.fold: the net effect of a log over a catalogue, with the serving rules, on top of a
previous fold; histories extended as serving extends them; a compacted log is refused."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from index.fold import Folded, fold_log, merge_events
from recsys.errors import ArtifactError
from recsys.online_log import open_log, records


def _post(pid: int) -> dict:
    z = np.zeros((1, 2), np.float32)
    return records.post_payload(pid, None, 5, "fp", {"vec": z}, {"vec": np.array([True])}, z, z)


def test_fold_follows_the_serving_rules(tmp_path):
    spec = str(tmp_path / "log.sqlite3")
    with open_log(spec) as log:
        for kind, payload in [("post", _post(100)), ("post", _post(100)),  # the second add changes nothing
                              ("delete", records.delete_payload(1)), ("post", _post(1)),  # deleted, then added again live
                              ("post", _post(101)), ("delete", records.delete_payload(101)),  # added then deleted: gone
                              ("delete", records.delete_payload(999)),  # unknown: nothing
                              ("events", records.events_payload([(7, 2, "like", 50), (7, 100, "view", None)]))]:
            with log.writing() as w:
                w.append(kind, payload)
    f = fold_log(spec, np.array([1, 2, 3]))
    assert f.seq == 8 and list(f.posts) == [100, 1] and f.deleted == {1}
    assert [(u, p, e) for u, p, e, _ in f.events] == [(7, 2, "like"), (7, 100, "view")] and f.events[0][3] == 50
    again = Folded.from_frame(f.to_frame(), f.seq)
    assert (list(again.posts), again.deleted, again.events) == (list(f.posts), f.deleted, f.events)
    with open_log(spec) as log:
        with log.writing() as w:
            w.append("delete", records.delete_payload(100))
        log.compact(8)
    g = fold_log(spec, np.array([1, 2, 3]), again)  # on top of the previous fold: only entry 9
    assert g.seq == 9 and list(g.posts) == [1]
    with pytest.raises(ArtifactError, match="compacted through seq 8"):
        fold_log(spec, np.array([1, 2, 3]))


def test_merge_events_moves_repeats_to_the_end_and_keeps_the_last():
    h = pl.DataFrame({"user_id": [1], "history": [[10, 11, 12]], "seen": [[10, 11, 12]]},
                     schema={"user_id": pl.Int64, "history": pl.List(pl.Int64), "seen": pl.List(pl.Int64)})
    out = merge_events(h, [(1, 10, "v", 3), (2, 5, "v", 1), (1, 13, "v", 2)], history_max=3)
    assert out.rows() == [(1, [12, 13, 10], [10, 11, 12, 13]), (2, [5], [5])]


def test_live_posts_string_keys_join_the_post_id_map():
    from index.fold import _with_live_keys
    from recsys.ids import IdMap, internal_id

    z = np.zeros((1, 2), np.float32)
    rec = records.read_post(records.post_payload(internal_id("new-post"), None, 5, "fp", {"vec": z}, {"vec": np.array([True])},
                                                 z, z, key="new-post"))
    maps = _with_live_keys({"post": IdMap.from_keys(["a", "b"])}, [rec])
    assert maps["post"].to_external(np.array([internal_id("new-post"), internal_id("a")])) == ["new-post", "a"]
    assert _with_live_keys(None, []) is None
