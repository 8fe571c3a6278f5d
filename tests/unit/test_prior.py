"""recsys.prior: what "popular" means (distinct users weighted by recency), the half-life chosen
on valid, the ranking's recall with each user's history masked, and the fold's decayed counts."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from types import SimpleNamespace

import numpy as np
import polars as pl
import pytest
import scipy.sparse as sp

from recsys.inference import post_popularity
from recsys.errors import SchemaError
from recsys.prior import HALF_LIVES, choose_half_life, half_life_of, recall_of_ranking

T0 = datetime(2025, 1, 1, tzinfo=timezone.utc)


def _inter(rows: list[tuple[int, int, float]]) -> pl.DataFrame:
    """(user, post, hours after T0) -> interactions frame."""
    return pl.DataFrame({"user_id": [r[0] for r in rows], "post_id": [r[1] for r in rows],
                         "ts": [T0 + timedelta(hours=r[2]) for r in rows]},
                        schema={"user_id": pl.Int64, "post_id": pl.Int64, "ts": pl.Datetime("us", "UTC")})


def test_popularity_counts_distinct_users_weighted_by_the_age_of_their_latest_interaction():
    inter = _inter([(1, 10, 0), (2, 10, 0), (2, 10, 0), (3, 11, 48), (1, 11, 24)])  # post 10: 2 users two days ago
    ids = np.array([10, 11, 12])
    np.testing.assert_array_equal(post_popularity(inter, ids), [2, 2, 0])  # all-time: distinct users
    day = post_popularity(inter, ids, half_life_s=24 * 3600.0)  # now = the latest interaction (48 h)
    np.testing.assert_allclose(day, [2 * 0.25, 1 + 0.5, 0])
    later = post_popularity(inter, ids, half_life_s=24 * 3600.0, now_us=int((T0 + timedelta(hours=72)).timestamp() * 1e6))
    np.testing.assert_allclose(later, day / 2)  # a day later every count halves: the ranking is the same
    rng = np.random.default_rng(1)  # many pairs: the sums do not depend on the order polars groups them in
    big = _inter([(int(u), int(p), float(h)) for u, p, h in zip(rng.integers(0, 300, 5000), rng.integers(0, 40, 5000), rng.uniform(0, 500, 5000))])
    runs = [post_popularity(big, np.arange(40), half_life_s=3600.0 * 7) for _ in range(5)]
    assert all(np.array_equal(runs[0], r) for r in runs[1:])


def test_recall_of_a_shared_ranking_masks_each_users_history():
    order = np.array([0, 1, 2, 3])
    history = sp.csr_matrix(np.array([[1, 0, 0, 0], [0, 0, 0, 0]]))
    target = sp.csr_matrix(np.array([[0, 0, 1, 1], [0, 0, 0, 1]]))
    # k=2: user 0 sees posts 1, 2 (0 is theirs) -> 1 of 2; user 1 sees 0, 1 -> 0 of 1
    assert recall_of_ranking(order, history, target, k=2) == pytest.approx(0.25)
    assert recall_of_ranking(order, history, target, k=3, chunk=1) == pytest.approx((1.0 + 0.0) / 2)
    again = sp.csr_matrix(np.array([[1, 0, 1, 0], [0, 0, 0, 1]]))  # post 0 again: not a new relevant post
    assert recall_of_ranking(order, history, again, k=2) == pytest.approx((1.0 + 0.0) / 2)


def _platform(moving: bool) -> tuple[pl.DataFrame, sp.csr_matrix, sp.csr_matrix, np.ndarray]:
    """60 users over 10 days; posts 0-19 (old favourites) and 20-39 (the last days' favourites
    where interests move). Valid: each user's next posts."""
    rng = np.random.default_rng(0)
    rows = []
    for u in range(60):
        for _ in range(8):
            h = rng.uniform(0, 240)
            p = int(rng.integers(0, 20)) if (not moving or h < 200) else int(rng.integers(20, 40))
            rows.append((u, p, h))
    train = _inter(rows)
    ids = np.arange(50)
    valid_posts = [[int(rng.integers(20, 40)) if moving else int(rng.integers(0, 20)) for _ in range(3)] for _ in range(60)]
    hist = sp.csr_matrix((np.ones(len(rows)), ([r[0] for r in rows], [r[1] for r in rows])), shape=(60, 50))
    val = sp.csr_matrix((np.ones(180), (np.repeat(np.arange(60), 3), np.ravel(valid_posts))), shape=(60, 50))
    hist.data[:] = 1
    val.data[:] = 1
    return train, (hist > 0).astype(np.float32).tocsr(), ((val > 0).astype(np.float32) - (hist > 0).multiply(val > 0)).tocsr(), ids


def test_valid_chooses_recency_where_interests_move_and_all_time_counts_where_they_do_not():
    moving = choose_half_life(*_platform(moving=True))
    assert moving["half_life_s"] is not None and moving["grid"][0][0] is None  # no decay is always tried first
    assert moving["valid_recall@20"] > moving["grid"][0][1]
    still = choose_half_life(*_platform(moving=False))
    best = max(r for _, r in still["grid"])
    assert still["grid"][0][1] >= best - 0.02  # stationary: the all-time counts are (about) as good as any
    assert [g[0] for g in still["grid"][: len(HALF_LIVES)]] == list(HALF_LIVES)
    no_ts = _platform(moving=True)[0].with_columns(pl.lit(None, pl.Datetime("us", "UTC")).alias("ts"))
    assert choose_half_life(no_ts, *_platform(moving=True)[1:])["half_life_s"] is None  # nothing to weigh by


def test_the_fold_decays_the_counts_to_its_latest_event_and_adds_new_pairs():
    from index.fold import _folded_popularity

    hour = 3600 * 10**6
    hist = pl.DataFrame({"user_id": [1], "history": [[10]], "seen": [[10]]},
                        schema={"user_id": pl.Int64, "history": pl.List(pl.Int64), "seen": pl.List(pl.Int64)})
    cat = SimpleNamespace(popularity=np.array([4.0, 2.0]), half_life_s=3600.0, popularity_now_us=0, histories=hist)
    ids = np.array([10, 11, 12])  # 12: a post added live
    events = [(1, 10, "like", 2 * hour), (2, 11, "like", hour), (2, 12, "view", 2 * hour), (3, 12, "like", 2 * hour)]
    pop, now = _folded_popularity(cat, ids, np.array([True, True]), 1, events)
    assert now == 2 * hour
    np.testing.assert_allclose(pop, [4.0 / 4, 2.0 / 4 + 0.5, 2.0])  # (1, 10) is held already: no new user
    flat = SimpleNamespace(popularity=np.array([4.0, 2.0]), half_life_s=None, popularity_now_us=None, histories=hist)
    np.testing.assert_allclose(_folded_popularity(flat, ids, np.array([True, True]), 1, events)[0], [4.0, 3.0, 2.0])


def test_a_bad_half_life_in_dataset_json_is_refused_with_the_field_named():
    assert half_life_of({}) is None and half_life_of({"popularity": {"half_life_s": None}}) is None
    assert half_life_of({"popularity": {"half_life_s": 3600}}) == 3600.0
    for bad in ("6h", -1, 0, True, [1]):
        with pytest.raises(SchemaError, match=r"popularity.half_life_s must be null or a positive number.*got"):
            half_life_of({"popularity": {"half_life_s": bad}})
