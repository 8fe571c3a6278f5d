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


def test_the_cold_channel_search_goes_past_the_edge_of_what_it_tried_and_stops_inside():
    from training.cold import MAX_RATIO, OFFSETS, RATIOS, edge_points

    grid = [(r, c) for r in RATIOS for c in OFFSETS]
    assert edge_points(grid, (1.0, 0.0)) == []  # the channel off lies inside the grid
    assert edge_points(grid, (0.5, 0.05)) == []
    assert edge_points(grid, (0.5, max(OFFSETS))) == [(0.5, 2 * max(OFFSETS))]  # largest offset: doubled
    assert edge_points(grid, (0.5, min(OFFSETS))) == [(0.5, 2 * min(OFFSETS))]  # most negative: doubled
    assert edge_points(grid, (max(RATIOS), 0.0)) == [(2 * max(RATIOS), 0.0)]
    assert edge_points(grid, (min(RATIOS), max(OFFSETS))) == [(min(RATIOS), 2 * max(OFFSETS)), (min(RATIOS) / 2, max(OFFSETS))]
    # an extension is an edge only against everything tried, and never repeats a point
    tried = grid + [(0.5, 0.2)]
    assert edge_points(tried, (0.5, 0.1)) == []
    assert edge_points(tried, (0.5, 0.2)) == [(0.5, 0.4)]
    # bounds: offsets stay cosines (|c| <= 1), the ratio at most MAX_RATIO
    assert edge_points([(1.0, 0.0), (1.0, 0.8)], (1.0, 0.8)) == [(2.0, 0.8), (0.5, 0.8)]
    assert edge_points([(MAX_RATIO, 0.0), (1.0, 0.0)], (MAX_RATIO, 0.0)) == []


def test_the_channel_may_not_bury_cold_posts_to_win_warm_hits():
    from training.cold import best_point

    off = (0.120, 0.050)  # (valid recall@20, valid cold-post recall@20) of the channel off
    # the highest recall sinks cold posts below the channel off: not eligible
    assert best_point([off, (0.125, 0.0), (0.122, 0.060), (0.121, 0.050)]) == 2
    assert best_point([off, (0.125, 0.049)]) == 0  # nothing else is eligible: the channel stays off
    # equal recall: more cold-post recall; equal keys: the first tried (the channel off first)
    assert best_point([off, (0.122, 0.050), (0.122, 0.070), (0.122, 0.070)]) == 2
    assert best_point([off, (0.120, 0.050)]) == 0
