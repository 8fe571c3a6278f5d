"""ServingState against an independent brute-force oracle: every filter is honoured and k items
come back whenever k eligible posts exist, on each search path (shared search + post-filter,
FAISS selector, exact)."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest

from serving.schemas import Event, NewPost, RecommendRequest
from serving.state import BadInput, NotFound, ServingState
from tests.unit.serving.conftest import NOW_US, settings_for

NOW = dt.datetime.fromtimestamp(NOW_US / 1e6, dt.UTC)
DAY = 86400.0
MODES = {
    "shared": dict(microbatch=True, exact_max=0),
    "selector": dict(microbatch=False, exact_max=0),
    "exact": dict(microbatch=True, exact_max=10**9),
}


@pytest.fixture(scope="module")
def states(ivf_bundle):
    return {m: ServingState.load(settings_for(ivf_bundle, **kw)) for m, kw in MODES.items()}


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


@pytest.mark.parametrize("mode", list(MODES))
@pytest.mark.parametrize("name", list(FILTERS))
def test_filters_are_honoured_and_k_items_come_back(states, mode, name):
    st = states[mode]
    f = dict(FILTERS[name])
    for user in (0, 7):
        ids = check(st, user, 40, f, exact=mode == "exact")
        if name == "none":  # excluding the first 20 ids still gives 40
            check(st, user, 40, {"exclude_post_ids": ids[:20]}, exact=mode == "exact")


def test_search_paths_are_the_ones_claimed(states):
    for mode, key in (("shared", "post_filter"), ("selector", "selector_retry"), ("exact", "exact")):
        st = states[mode]
        before = dict(st.stats.overfetch)
        st.recommend([RecommendRequest(user_id=3, k=10)])
        assert st.stats.overfetch[key] == before[key] + 1, mode


def test_k_bounds_and_unknown_history(states):
    st = states["exact"]
    with pytest.raises(BadInput, match=r"`k` must be in \[1, 1000\], got 0"):
        st.recommend([RecommendRequest(user_id=1, k=0)])
    with pytest.raises(BadInput, match="unknown, e.g. \\[42\\]"):
        st.recommend([RecommendRequest(history=[42], k=5)])


def test_fallbacks(states):
    st = states["exact"]
    pop = st.recommend([RecommendRequest(k=10)])[0]
    assert pop["fallback"] and pop["fallback_reason"] == "no_history_popular" and len(pop["items"]) == 10
    want = st.bundle.post_ids[st._pop_order[:10]].tolist()
    assert [i["post_id"] for i in pop["items"]] == want
    capped = st.recommend([RecommendRequest(k=10, filters={"author_cap": 1, "max_age_seconds": 10 * DAY, "now": NOW})])[0]
    rows = st.rows_of(np.array([i["post_id"] for i in capped["items"]]))
    assert len(rows) == 10 and np.bincount(st.bundle.author_ids[rows]).max() == 1
    assert (st.bundle.created_at_us[rows] >= NOW_US - 10 * DAY * 1e6).all()
    hist = st.bundle.post_ids[:3].tolist()
    unk = st.recommend([RecommendRequest(user_id=10**9, history=hist, k=5)])[0]
    assert unk["fallback_reason"] == "unknown_user_history_profile" and not unk["user_known"]
    assert all(i["why"] in hist for i in unk["items"]) and not set(hist) & {i["post_id"] for i in unk["items"]}


def test_why_is_the_closest_history_post(states):
    st = states["exact"]
    r = st.recommend([RecommendRequest(user_id=5, k=5)])[0]
    _, hist, _ = st.user_history(5)
    H = st.latents_of(hist[-st.max_history:])
    H /= np.linalg.norm(H, axis=1, keepdims=True)
    for it in r["items"]:
        v = st.latents_of(np.array([it["post_id"]]))[0]
        cos = H @ (v / np.linalg.norm(v))
        assert it["why"] == int(hist[-st.max_history:][cos.argmax()])
        assert it["why_similarity"] == pytest.approx(cos.max(), abs=1e-5)


def test_delta_post_is_served_then_deleted_everywhere(ivf_bundle):
    st = ServingState.load(settings_for(ivf_bundle, exact_max=0, k_max=5000))
    feats = np.random.default_rng(0).standard_normal(16).tolist()
    created, mods = st.add_post(NewPost(post_id=77, author_id=999, features={"vec": feats}))
    assert created and mods == ["vec"]
    assert st.add_post(NewPost(post_id=77, features={"vec": feats})) == (False, [])  # idempotent
    assert st.delta.n == 1
    lat = st.latents_of(np.array([-1, 77, int(st.bundle.post_ids[3])]))
    np.testing.assert_array_equal(lat[0], 0)
    np.testing.assert_array_equal(lat[1], st.delta.latents[0])
    np.testing.assert_array_equal(lat[2], st.bundle.latents[3])
    r = st.recommend([RecommendRequest(user_id=10**9, history=[77], k=5)])[0]
    assert r["fallback_reason"] == "unknown_user_history_profile" and len(r["items"]) == 5
    assert all(i["why"] == 77 for i in r["items"]) and 77 not in [i["post_id"] for i in r["items"]]
    everything = dict(k=st.n + 1, filters={"exclude_seen": False})
    r = st.recommend([RecommendRequest(user_id=2, **everything)])[0]
    ids = [i["post_id"] for i in r["items"]]
    assert len(ids) == st.n + 1 and 77 in ids  # the new post is retrievable at once
    p = st.prepare(RecommendRequest(user_id=2, k=1))
    st.profiles([p], [False])
    pos = ids.index(77)
    assert r["items"][pos]["score"] == pytest.approx(float(st.delta.vectors[0] @ p.query), abs=1e-5)
    sim = [i["post_id"] for i in st.similar(77, 5)]
    assert len(sim) == 5 and 77 not in sim  # never itself
    nearest = sim[0]
    assert 77 in [i["post_id"] for i in st.similar(nearest, 3000)]
    assert 77 not in [i["post_id"] for i in st.recommend([RecommendRequest(
        user_id=2, k=st.n + 1, filters={"exclude_authors": [999]})])[0]["items"]]
    victim = ids[0] if ids[0] != 77 else ids[1]
    st.delete_post(77)
    st.delete_post(victim)
    for r in (st.recommend([RecommendRequest(user_id=2, **everything)])[0], st.recommend([RecommendRequest(k=st.n + 1)])[0]):
        got = {i["post_id"] for i in r["items"]}
        assert 77 not in got and victim not in got and len(got) == st.n - 1
    assert not {77, victim} & {i["post_id"] for i in st.similar(nearest, 3000)}
    with pytest.raises(NotFound):
        st.delete_post(victim)
    with pytest.raises(NotFound):
        st.similar(victim, 5)
    with pytest.raises(NotFound):
        st.delete_post(123456789)


def test_bad_features_are_rejected(states):
    st = states["exact"]
    with pytest.raises(BadInput, match=r"`features\['vec'\]` must have 16 values, got 3"):
        st.add_post(NewPost(post_id=5, features={"vec": [1.0, 2.0, 3.0]}))
    with pytest.raises(BadInput, match="unknown modality 'text'"):
        st.add_post(NewPost(post_id=5, features={"text": [1.0]}))
    with pytest.raises(BadInput, match="needs `features`"):
        st.add_post(NewPost(post_id=5))
    assert st.delta.n == 0


def test_events_update_history_seen_and_profile(ivf_bundle):
    st = ServingState.load(settings_for(ivf_bundle, exact_max=10**9))
    r0 = st.recommend([RecommendRequest(user_id=4, k=10)])[0]
    first = r0["items"][0]["post_id"]
    assert st.add_events([Event(user_id=4, post_id=first, event="like")]) == 1
    r1 = st.recommend([RecommendRequest(user_id=4, k=10)])[0]
    assert first not in {i["post_id"] for i in r1["items"]}  # now seen
    assert r1["items"][0]["why"] == first or first in st.user_history(4)[1]
    # the cached profile was invalidated: the query vector changed
    p = st.prepare(RecommendRequest(user_id=4, k=1))
    st.profiles([p], [True])
    q_new = p.query
    p_old = st.prepare(RecommendRequest(user_id=4, k=1))
    p_old.hist = p_old.hist[:-1]
    st.profiles([p_old], [False])
    assert not np.allclose(q_new, p_old.query)
    with pytest.raises(BadInput, match="unknown"):
        st.add_events([Event(user_id=4, post_id=first), Event(user_id=4, post_id=-5)])
    assert st.user_history(4)[1][-1] == first  # the bad batch changed nothing


def test_batch_call_equals_single_calls(states):
    st = states["shared"]
    reqs = [RecommendRequest(user_id=u, k=15, filters={"author_cap": 2}) for u in range(8)]
    batch = st.recommend(reqs, batched_call=True)
    single = [st.recommend([r])[0] for r in reqs]
    for b, s in zip(batch, single):
        assert [i["post_id"] for i in b["items"]] == [i["post_id"] for i in s["items"]]


def test_absorb_carries_online_state_over(ivf_bundle):
    old = ServingState.load(settings_for(ivf_bundle))
    old.add_post(NewPost(post_id=55, author_id=1, features={"vec": [0.1] * 16}))
    victim = int(old.bundle.post_ids[10])
    old.delete_post(victim)
    old.add_events([Event(user_id=3, post_id=victim)])
    new = ServingState.load(settings_for(ivf_bundle))
    new.absorb(old)
    assert new.exists(55) and not new.exists(victim)
    assert victim in new.user_history(3)[2]


@pytest.mark.parametrize("mode", list(MODES))
def test_async_path_equals_the_threaded_path(states, mode):
    """recommend_async (event loop + shared search, or its worker-thread fallback) answers like
    recommend, on every filter set and for the fallbacks (unknown user, request history)."""
    import asyncio

    st = states[mode]
    reqs = [RecommendRequest(user_id=u, k=25, filters={**f, "now": NOW}) for u in (0, 7) for f in FILTERS.values()]
    reqs += [RecommendRequest(user_id=10**9, k=5), RecommendRequest(user_id=10**9, history=[int(st.bundle.post_ids[3])], k=5)]
    for r in reqs:  # fill the profile cache first, so the loop path is taken where it can be
        st.recommend([r])

    async def run():
        return await asyncio.gather(*(st.recommend_async(r) for r in reqs))

    for reply, r in zip(asyncio.run(run()), reqs):
        got, want = reply.to_dict(), st.recommend([r])[0]
        assert [i["post_id"] for i in got["items"]] == [i["post_id"] for i in want["items"]], r
        assert [i["why"] for i in got["items"]] == [i["why"] for i in want["items"]]
        assert (got["fallback"], got["fallback_reason"], got["user_known"]) == (
            want["fallback"], want["fallback_reason"], want["user_known"])


def test_author_cap_headroom_follows_what_the_cap_drops(ivf_bundle):
    from serving.state import CAP_HEADROOM

    st = ServingState.load(settings_for(ivf_bundle, exact_max=0))
    assert st._cap_headroom(2) == CAP_HEADROOM  # prior until measured
    for _ in range(50):
        st._observe_cap(2, 1.0)  # the cap dropped nothing
    assert st._cap_headroom(2) == pytest.approx(1.1)
    for _ in range(50):
        st._observe_cap(2, 0.25)  # the cap dropped 3 of 4 hits
    assert st._cap_headroom(2) == pytest.approx(4.0, rel=0.05)
    assert st._cap_headroom(1) == CAP_HEADROOM  # per cap value
    # the shared path measures it, and answers stay complete and capped (check() asserts both)
    for user in range(6):
        check(st, user, 40, {"author_cap": 1}, exact=False)
    assert st._cap_kept[1] < 1.0


@pytest.mark.parametrize("req", [
    dict(user_id=3, k=12, filters={"author_cap": 1}),  # personal: "why" filled
    dict(k=6),  # popular fallback: no history, "why" null
    dict(user_id=2, k=5, filters={"max_age_seconds": 1e-3, "now": NOW}),  # nothing that young: no items
])
def test_reply_json_is_the_dict_rendering(states, req):
    """The column-spliced JSON body is byte for byte the dict path's (pydantic-core to_json)."""
    from pydantic_core import to_json

    from serving.state import Reply

    st = states["shared"]
    p = st.prepare(RecommendRequest(**req))
    reply = st._recommend_prepared([p])[0]
    assert isinstance(reply, Reply)
    assert reply.to_json("v7") == to_json({**reply.to_dict(), "bundle_version": "v7"})
    assert reply.to_json("v7") is reply.to_json("v7")  # memoised
    assert b'"bundle_version":"v8"' in reply.to_json("v8")


def test_row_flags_match_isin_and_clear_after_use():
    from serving.state import RowFlags

    rng = np.random.default_rng(0)
    flags = RowFlags(500)
    for _ in range(50):
        rows = rng.integers(0, 500, int(rng.integers(0, 300)))
        excluded = rng.integers(0, 500, int(rng.integers(0, 100)))  # repeats allowed
        np.testing.assert_array_equal(flags.isin(rows, excluded), np.isin(rows, excluded))
    assert len(flags._free) == 1 and not flags._free[0].any()  # one array, reused, left clear


def test_lookups_behind_the_filters(states, monkeypatch):
    """first_row_at (two-level search), rows_of_author and excluded_id_rows (memoised) against
    plain numpy."""
    import serving.state as S

    st = states["exact"]
    b = st.bundle
    created = b.created_at_us
    for t in np.concatenate([created[::37] - 1, created[::37], created[::37] + 1, [created[0] - 5, created[-1] + 5]]):
        assert st.first_row_at(int(t)) == int(np.searchsorted(created, t, "left"))
    for a in [*np.unique(b.author_ids)[:12].tolist(), 10**9]:
        np.testing.assert_array_equal(np.sort(st.rows_of_author(a)), np.flatnonzero(b.author_ids == a))
    ids = [int(b.post_ids[5]), 424242, int(b.post_ids[2]), int(b.post_ids[5])]
    np.testing.assert_array_equal(st.excluded_id_rows(ids), [5, 2, 5])  # unknown ids dropped
    np.testing.assert_array_equal(st.excluded_id_rows(ids), [5, 2, 5])  # from the memo
    monkeypatch.setattr(S, "ID_ROWS_KEEP", 3)
    np.testing.assert_array_equal(st.excluded_id_rows([int(b.post_ids[9])]), [9])
    assert len(st._id_rows) == 1  # the full memo started over


def test_exclusion_bound_leaves_the_decisions_exact(states):
    """A row excluded twice (seen, and by an excluded author) counts twice in the sort-free bound;
    the search decisions and the eligible count stay those of the exact count."""
    st = states["shared"]
    _, _, seen = st.user_history(0)
    rows = st.rows_of(np.asarray(seen, np.int64))
    authors = sorted({int(st.bundle.author_ids[r]) for r in rows[rows >= 0][:3]})
    p = st.prepare(RecommendRequest(user_id=0, k=10, filters={"exclude_authors": authors, "exclude_post_ids": seen[:2].tolist()}))
    assert p.n_excl_in_range_max > p.n_excl_in_range == len(np.unique(p.excl_all))
    assert st._eligible_min(p) < st._eligible(p) == st.n - p.n_excl_in_range
    for exact_max in (0, st._eligible_min(p), st._eligible(p) - 1, st._eligible(p)):
        st.settings.exact_max, saved = exact_max, st.settings.exact_max
        try:
            assert st._shared_search_ok(p) == (st._eligible(p) > exact_max and st._use_combiner(p))
        finally:
            st.settings.exact_max = saved


def test_author_cap_checks_only_the_first_k_when_they_pass(states):
    """The cap is decided by better hits only, so when the first k break no cap they stand as the
    answer (the deeper repeats are never looked at); otherwise the whole list is capped."""
    st = states["shared"]
    b = st.bundle
    by_author = {int(a): np.flatnonzero(b.author_ids == a) for a in np.unique(b.author_ids)[:6]}
    heads = np.array([rows[0] for rows in by_author.values()])  # 6 distinct authors
    tail = next(iter(by_author.values()))[1:4]  # 3 more of the first author
    src = np.concatenate([heads, tail]).astype(np.int64)
    scores = np.linspace(1, 0, len(src)).astype(np.float32)
    p = st.prepare(RecommendRequest(k=6, filters={"author_cap": 1}))
    s_out, src_out = st._apply_cap(p, scores, src, observe=False)
    np.testing.assert_array_equal(src_out, src)  # untouched: the first 6 pass
    p.k = 8
    s_out, src_out = st._apply_cap(p, scores, src, observe=False)
    np.testing.assert_array_equal(src_out, heads)  # the first 8 break the cap: all capped


def test_a_failing_request_fails_alone_in_its_batch(states):
    st = states["shared"]
    preps = [st.prepare(RecommendRequest(user_id=u, k=5)) for u in (0, 1)]
    st.profiles(preps, [False, False])
    hits = [st._search_plain(p.query[None], 50) for p in preps]
    preps[1].hist = None  # breaks its "why"
    out = st._finish_shared(preps, [(s[0], r[0]) for s, r in hits])
    assert len(out[0].post_ids) == 5 and isinstance(out[1], Exception)
