"""serving.search: fetch sizing for the author cap, the sort-free exclusion bound, the cap
applied to hits, and the excluded-row flags, each against plain numpy or the oracle."""

from __future__ import annotations

import numpy as np
import pytest

from serving.schemas import RecommendRequest
from serving.search import CAP_HEADROOM, RowFlags, cap_mask
from serving.state import ServingState
from tests.unit.serving.conftest import settings_for
from tests.unit.serving.oracle import check


def test_author_cap_headroom_follows_what_the_cap_drops(ivf_bundle):
    st = ServingState.load(settings_for(ivf_bundle, exact_max=0))
    assert st.search.cap_headroom(2) == CAP_HEADROOM  # prior until measured
    for _ in range(50):
        st.search.observe_cap(2, 1.0)  # the cap dropped nothing
    assert st.search.cap_headroom(2) == pytest.approx(1.1)
    for _ in range(50):
        st.search.observe_cap(2, 0.25)  # the cap dropped 3 of 4 hits
    assert st.search.cap_headroom(2) == pytest.approx(4.0, rel=0.05)
    assert st.search.cap_headroom(1) == CAP_HEADROOM  # per cap value
    # the shared path measures it, and answers stay complete and capped (check() asserts both)
    for user in range(6):
        check(st, user, 40, {"author_cap": 1}, exact=False)
    assert st.search.cap_headroom(1) > 1.1  # measured: the cap dropped hits


def test_row_flags_match_isin_and_clear_after_use():
    rng = np.random.default_rng(0)
    flags = RowFlags(500)
    for _ in range(50):
        rows = rng.integers(0, 500, int(rng.integers(0, 300)))
        excluded = rng.integers(0, 500, int(rng.integers(0, 100)))  # repeats allowed
        np.testing.assert_array_equal(flags.isin(rows, excluded), np.isin(rows, excluded))
    assert len(flags.arrays) == 1 and not flags.arrays[0].any()  # one array, reused, left clear


def test_exclusion_bound_leaves_the_decisions_exact(states):
    """A row excluded twice (seen, and by an excluded author) counts twice in the sort-free bound;
    the search decisions and the eligible count stay those of the exact count."""
    st = states["shared"]
    _, _, seen = st.user_history(0)
    rows = st.rows_of(np.asarray(seen, np.int64))
    authors = sorted({int(st.bundle.author_ids[r]) for r in rows[rows >= 0][:3]})
    p = st.prepare(RecommendRequest(user_id=0, k=10, filters={"exclude_authors": authors, "exclude_post_ids": seen[:2].tolist()}))
    assert p.n_excl_in_range_max > p.n_excl_in_range == len(np.unique(p.excl_all))
    assert st.search.eligible_min(p) < st.search.eligible(p) == st.n - p.n_excl_in_range
    for exact_max in (0, st.search.eligible_min(p), st.search.eligible(p) - 1, st.search.eligible(p)):
        st.settings.exact_max, saved = exact_max, st.settings.exact_max
        try:
            assert st.search.shared_ok(p) == (st.search.eligible(p) > exact_max and st.search.use_combiner(p))
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
    s_out, src_out = st.search.apply_cap(p, scores, src, observe=False)
    np.testing.assert_array_equal(src_out, src)  # untouched: the first 6 pass
    p.k = 8
    s_out, src_out = st.search.apply_cap(p, scores, src, observe=False)
    np.testing.assert_array_equal(src_out, heads)  # the first 8 break the cap: all capped


def test_cap_mask_keeps_the_first_posts_of_each_author_across_chunks():
    authors = np.array([1, 2, 1, 1, -1, -1, 2, 3], np.int64)
    np.testing.assert_array_equal(cap_mask(authors, 2), [1, 1, 1, 0, 1, 1, 1, 1])  # unknown authors (-1) uncapped
    counts: dict[int, int] = {}
    first = cap_mask(authors[:4], 2, counts)  # a chunked scan carries the counts over
    second = cap_mask(authors[4:], 2, counts)
    np.testing.assert_array_equal(np.concatenate([first, second]), cap_mask(authors, 2))
    assert counts == {1: 2, 2: 2, 3: 1}
