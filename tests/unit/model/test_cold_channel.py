"""The cold channel's layout (recsys.cold_channel): one inner product gives warm posts <u, p>, cold
posts <u_lam, p> + c, and post-as-query vectors give the cosine of the model's post vectors."""

from __future__ import annotations

import numpy as np

from recsys.cold_channel import join_users, model_part, post_query, split_posts


def _unit(x: np.ndarray) -> np.ndarray:
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def test_one_inner_product_scores_each_kind_of_post_by_its_user_vector():
    rng = np.random.default_rng(0)
    p, u, u_cold = _unit(rng.normal(size=(7, 5))), _unit(rng.normal(size=(3, 5))), _unit(rng.normal(size=(3, 5)))
    cold = np.array([0, 1, 0, 0, 1, 1, 0], bool)
    has = np.array([1, 1, 0], bool)
    posts, users = split_posts(p, cold, 0.07), join_users(u * has[:, None], u_cold * has[:, None], has)
    assert posts.shape == (7, 11) and users.shape == (3, 11)
    s = users @ posts.T
    want = np.where(cold[None, :], u_cold @ p.T + 0.07, u @ p.T) * has[:, None]  # no profile: all zero
    assert np.allclose(s, want, atol=1e-6)
    back, found = model_part(posts, 5)
    assert np.array_equal(found, cold) and np.allclose(back, p)


def test_a_post_query_gives_the_cosine_whatever_the_channels():
    rng = np.random.default_rng(1)
    p = _unit(rng.normal(size=(6, 4)))
    cold = np.array([1, 0, 1, 0, 0, 1], bool)
    v = np.concatenate([split_posts(p, cold, 0.1), np.full((6, 1), 0.3, np.float32)], axis=1)  # + a popularity coordinate
    q = post_query(v, 4)
    assert q.shape == v.shape and np.all(q[:, 8:] == 0)  # neither the offset nor the popularity counts
    assert np.allclose(q @ v.T, p @ p.T, atol=1e-6)


def test_the_content_key_block_adds_the_history_key_match_to_cold_posts_only():
    from recsys.cold_channel import history_keys, retrieval_dim

    rng = np.random.default_rng(2)
    p, u, u_cold = _unit(rng.normal(size=(6, 5))), _unit(rng.normal(size=(3, 5))), _unit(rng.normal(size=(3, 5)))
    keys = _unit(rng.normal(size=(6, 4)))  # the posts' content keys (Z = 4)
    cold = np.array([1, 0, 1, 0, 0, 1], bool)
    hist = _unit(rng.normal(size=(3 * 2, 4))).reshape(3, 2, 4)  # each user's history keys (L = 2)
    mask = np.array([[1, 1], [1, 0], [0, 0]], bool)  # the third user has no history
    h = history_keys(hist, mask)
    assert np.allclose(h[0], _unit(hist[0].sum(0, keepdims=True))[0]) and np.allclose(h[1], hist[1, 0]) and not h[2].any()
    has = np.array([1, 1, 1], bool)
    posts, users = split_posts(p, cold, -0.4, keys), join_users(u, u_cold, has, h, 0.5)
    assert posts.shape == users.shape[:1] * 0 + (6, retrieval_dim(5, 4, 0.5)) == (6, 15) and users.shape == (3, 15)
    want = np.where(cold[None, :], u_cold @ p.T + 0.5 * h @ keys.T - 0.4, u @ p.T)
    assert np.allclose(users @ posts.T, want, atol=1e-6)
    back, found = model_part(posts, 5)  # the inverse and post-as-query ignore the key block
    assert np.array_equal(found, cold) and np.allclose(back, p)
    assert np.allclose(post_query(posts, 5) @ posts.T, p @ p.T, atol=1e-6)
    assert retrieval_dim(5, 4, 0.0) == 11  # no key weight: the 2d + 1 layout


def test_stage_one_extends_past_the_edge_of_the_order_grid():
    from training.cold import KEY_WEIGHTS, MAX_RATIO, RATIOS, order_points

    grid = [(r, b) for b in KEY_WEIGHTS for r in RATIOS]
    best = lambda i: [1.0 if j == i else 0.0 for j in range(len(grid))]  # noqa: E731
    assert order_points(grid, best(grid.index((0.5, 1.0)))) == []  # inside: stop
    assert order_points(grid, best(grid.index((min(RATIOS), 1.0)))) == [(min(RATIOS) / 2, 1.0)]  # smallest ratio: halved
    assert order_points(grid, best(grid.index((0.5, max(KEY_WEIGHTS))))) == [(0.5, 2 * max(KEY_WEIGHTS))]  # largest weight: doubled
    assert order_points(grid, best(grid.index((max(RATIOS), 0.0)))) == [(2 * max(RATIOS), 0.0)]  # largest ratio: doubled
    assert order_points([(MAX_RATIO, 0.0), (1.0, 0.0)], [1.0, 0.0]) == []  # at MAX_RATIO: no further
    assert order_points(grid, [0.0] * len(grid)) == []  # all equal: the first tried (r 1, beta 0), inside


def test_stage_two_offsets_go_past_the_edge_within_the_limit_and_stop_inside():
    from training.cold import offset_points

    tried = [0.0, -0.1, 0.1, -0.4]
    assert offset_points(tried, -0.4, limit=3.0) == [-0.8]  # most negative: doubled
    assert offset_points(tried, -0.4, limit=0.5) == []  # past the limit: stop
    assert offset_points(tried, 0.1, limit=3.0) == [0.2]
    assert offset_points(tried, -0.1, limit=3.0) == []  # inside: no refinement
    assert offset_points(tried, 0.0, limit=3.0) == []


def test_stage_two_takes_the_most_cold_recall_within_one_standard_error_and_never_buries_cold_posts():
    from training.cold import one_se_cold

    n = 4000

    def hits(*ranges):  # per-user recall@20: 1 for the users in the ranges
        r = np.zeros(n)
        for lo, hi in ranges:
            r[lo:hi] = 1.0
        return r

    off = hits((0, 480))  # the channel off: 480 hits
    per = [off, hits((0, 490)), hits((0, 500)), hits((0, 470), (1000, 1018)), hits((0, 400))]
    keys = [(float(x.mean()), c) for x, c in zip(per, (0.05, 0.08, 0.03, 0.085, 0.09))]
    chosen, best, se = one_se_cold(per, keys)
    # point 2 has the most hits but buries cold posts below the channel off (0.03 < 0.05): not
    # eligible. The best eligible is 1 (490); 3 has 2 hits fewer, 20 users apart: within one standard
    # error (sqrt(28) / n > 2 / n), and carries more cold posts than 1; 4 is 90 hits below: outside
    assert best == 1 and chosen == 3 and keys[3][0] >= keys[1][0] - se
    chosen, best, _ = one_se_cold(per[:3], keys[:3])  # without 3: the best eligible itself
    assert (best, chosen) == (1, 1)
    chosen, best, _ = one_se_cold([off, per[2]], [keys[0], keys[2]])  # nothing else eligible: the channel off
    assert (best, chosen) == (0, 0)


def test_with_the_blend_the_offset_is_the_prior_of_cold_posts_without_counts():
    from recsys.cold_channel import offsets_by_counts

    rng = np.random.default_rng(4)
    p, keys = _unit(rng.normal(size=(5, 3))), _unit(rng.normal(size=(5, 2)))
    cold = np.array([1, 1, 0, 1, 0], bool)
    counts = np.array([0.0, 2.5, 3.0, 0.0, 0.0])
    for k, beta in ((None, 0.0), (keys, 0.7)):
        v = np.concatenate([split_posts(p, cold, 0.2, k), np.full((5, 1), 0.4, np.float32)], axis=1)  # + the blend's coordinate
        got = offsets_by_counts(v, 3, 2, beta, 0.2, counts)
        col = v.shape[1] - 2
        assert np.allclose(got[:, col], [0.2, 0.0, 0.0, 0.2, 0.0])  # cold with counts: the blend carries it
        assert np.array_equal(np.delete(got, col, axis=1), np.delete(v, col, axis=1))  # nothing else moves
        assert np.allclose(offsets_by_counts(got, 3, 2, beta, 0.2, np.zeros(5))[:, col], 0.2 * cold)  # counts gone: the prior again
