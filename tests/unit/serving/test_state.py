"""ServingState against an independent brute-force oracle: every filter is honoured and k items
come back whenever k eligible posts exist, on each search path (shared search + post-filter,
FAISS selector, exact); online writes are served at once; the async route answers like the
threaded one."""

from __future__ import annotations

import numpy as np
import pytest

from serving.schemas import Event, NewPost, RecommendRequest
from serving.state import BadInput, NotFound, ServingState
from tests.unit.serving.conftest import NOW_US, settings_for
from tests.unit.serving.oracle import DAY, FILTERS, MODES, NOW, check


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
    want = st.bundle.post_ids[st.catalogue.pop_order[:10]].tolist()
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


def test_a_failing_request_fails_alone_in_its_batch(states):
    st = states["shared"]
    preps = [st.prepare(RecommendRequest(user_id=u, k=5)) for u in (0, 1)]
    st.profiles(preps, [False, False])
    hits = [st.search.search_plain(p.query[None], 50) for p in preps]
    preps[1].hist = None  # breaks its "why"
    out = st.finish_shared(preps, [(s[0], r[0]) for s, r in hits])
    assert len(out[0].post_ids) == 5 and isinstance(out[1], Exception)
