"""An independent brute-force oracle for the serving tests: the expected top-k under every
filter (exact scores, greedy author cap), and `check`, which compares an answer with it."""

from __future__ import annotations

import datetime as dt

import numpy as np

from serving.schemas import RecommendRequest
from serving.state import ServingState
from tests.unit.serving.conftest import NOW_US

NOW = dt.datetime.fromtimestamp(NOW_US / 1e6, dt.UTC)
DAY = 86400.0
MODES = {
    "shared": dict(microbatch=True, exact_max=0),
    "selector": dict(microbatch=False, exact_max=0),
    "exact": dict(microbatch=True, exact_max=10**9),
}


def oracle(st: ServingState, user: int, k: int, f: dict) -> tuple[list[int], int]:
    """Expected top-k post ids (exact scores, greedy author cap) and the number reachable."""
    b = st.bundle
    p = st.prepare(RecommendRequest(user_id=user, k=k))
    st.profiles([p], [False])
    scores = b.vectors @ p.query
    ok = np.ones(b.n, bool)
    h = b.histories.filter(b.histories["user_id"] == user)
    if f.get("exclude_seen", True) and len(h):
        ok &= ~np.isin(b.post_ids, np.asarray(h["seen"][0].to_list(), np.int64))
    ok &= ~np.isin(b.post_ids, np.asarray(f.get("exclude_post_ids", []), np.int64))
    ok &= ~np.isin(b.author_ids, np.asarray(f.get("exclude_authors", []), np.int64))
    ok &= ~np.isin(np.arange(b.n), st.tomb_rows)
    if f.get("max_age_seconds"):
        ok &= b.created_at_us >= NOW_US - int(f["max_age_seconds"] * 1e6)
    rows = np.flatnonzero(ok)
    rows = rows[np.argsort(-scores[rows], kind="stable")]
    cap, per, out = f.get("author_cap"), {}, []
    for r in rows:
        a = int(b.author_ids[r])
        if cap is not None and per.get(a, 0) >= cap:
            continue
        per[a] = per.get(a, 0) + 1
        out.append(int(b.post_ids[r]))
    return out[:k], min(k, len(out))


def check(st: ServingState, user: int, k: int, f: dict, exact: bool) -> list[int]:
    got = st.recommend([RecommendRequest(user_id=user, k=k, filters={**f, "now": NOW})])[0]
    ids = [it["post_id"] for it in got["items"]]
    want, reachable = oracle(st, user, k, f)
    assert len(ids) == reachable, f"{f}: got {len(ids)} items, {reachable} eligible"
    assert len(set(ids)) == len(ids)
    b = st.bundle
    rows = st.rows_of(np.asarray(ids, np.int64))
    _, _, seen = st.user_history(user)
    if f.get("exclude_seen", True):
        assert not np.isin(ids, seen).any()
    assert not np.isin(ids, f.get("exclude_post_ids", [])).any()
    assert not np.isin(b.author_ids[rows], f.get("exclude_authors", [])).any()
    if f.get("max_age_seconds"):
        assert (b.created_at_us[rows] >= NOW_US - f["max_age_seconds"] * 1e6).all()
    if f.get("author_cap"):
        assert np.bincount(b.author_ids[rows]).max() <= f["author_cap"]
    scores = [it["score"] for it in got["items"]]
    assert scores == sorted(scores, reverse=True)
    if exact:
        assert ids == want
    else:  # approximate index: most of the exact answer
        assert len(set(ids) & set(want)) >= 0.7 * len(want)
    return ids


FILTERS = {
    "none": {},
    "seen_kept": {"exclude_seen": False},
    "authors": {"exclude_authors": list(range(10))},
    "age": {"max_age_seconds": 30 * DAY},
    "age_selective": {"max_age_seconds": 0.5 * DAY},  # ~15 of 3000 posts: fewer than k exist
    "cap": {"author_cap": 1},
    "all": {"exclude_authors": [1, 2, 3], "max_age_seconds": 60 * DAY, "author_cap": 2, "exclude_seen": True},
}
