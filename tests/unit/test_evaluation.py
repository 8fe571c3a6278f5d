"""Metric code on a hand-worked example (ties, empty history, several relevant items), chunked ==
unchunked == a per-user numpy reference, buckets, and bad input."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from recsys.errors import ConfigError, SchemaError
from recsys.evaluation import _topk_canonical, _topk_exact, evaluate, relevant_items
from recsys.interactions import InteractionData


def _csr(pairs: list[tuple[int, int]], shape: tuple[int, int]) -> sp.csr_matrix:
    r = [p[0] for p in pairs]
    c = [p[1] for p in pairs]
    return sp.csr_matrix((np.ones(len(pairs), np.float32), (r, c)), shape=shape)


class MatrixScorer:
    def __init__(self, scores: np.ndarray, name: str = "matrix") -> None:
        self.name = name
        self.scores = torch.as_tensor(scores, dtype=torch.float32)

    def score(self, user_idx: np.ndarray) -> torch.Tensor:
        return self.scores[torch.as_tensor(user_idx)]  # advanced indexing: a fresh tensor


def hand_data() -> tuple[InteractionData, np.ndarray]:
    """4 users x 6 posts. u0: train {0}, valid {1}, test {2, 4}; u1: no history, test {5};
    u2: train {1, 3}, valid {0}; u3: train {0, 1, 2}, test {3, 4, 5}. Cold posts: 4, 5."""
    shape = (4, 6)
    train = _csr([(0, 0), (2, 1), (2, 3), (3, 0), (3, 1), (3, 2)], shape)
    valid = _csr([(0, 1), (2, 0)], shape)
    test = _csr([(0, 2), (0, 4), (1, 5), (3, 3), (3, 4), (3, 5)], shape)
    scores = np.array(
        [
            [5, 3, 2, 3, 3, 0],  # test: 0, 1 masked; tie 3 == 4 -> post 3 first
            [0, 0, 0, 0, 0, 0],  # all tied: order 0, 1, 2, ...
            [1, 1, 1, 1, 1, 1],
            [9, 8, 7, 6, 5, 4],
        ],
        np.float32,
    )
    data = InteractionData(
        user_ids=np.arange(4, dtype=np.int64), post_ids=np.arange(100, 106, dtype=np.int64),
        train=train, valid=valid, test=test, dataset_name="hand", fingerprint="f",
    )
    return data, scores


def test_hand_worked_example_test_split():
    data, scores = hand_data()
    r = evaluate(MatrixScorer(scores), data, "test", ks=(2, 3))
    m = r["metrics"]
    l3, l4 = 1 / math.log2(3), 1 / math.log2(4)
    # u0 ranking 3, 4, 2, 5 (hits at ranks 1, 2); u1 ranking 0, 1, 2 (no hit); u3 ranking 3, 4, 5.
    assert r["n_users"] == 3 and r["split"] == "test"
    assert m["recall@2"] == pytest.approx((0.5 + 0 + 2 / 3) / 3)
    assert m["precision@2"] == pytest.approx((0.5 + 0 + 1) / 3)
    assert m["ndcg@2"] == pytest.approx((l3 / (1 + l3) + 0 + 1) / 3)
    assert m["hit@2"] == pytest.approx(2 / 3)
    assert m["mrr@2"] == pytest.approx((0.5 + 0 + 1) / 3)
    assert m["recall@3"] == pytest.approx((1 + 0 + 1) / 3)
    assert m["precision@3"] == pytest.approx((2 / 3 + 0 + 1) / 3)
    assert m["ndcg@3"] == pytest.approx(((l3 + l4) / (1 + l3) + 0 + 1) / 3)
    assert m["mrr@3"] == pytest.approx((0.5 + 0 + 1) / 3)
    assert m["coverage@2"] == pytest.approx(4 / 6)  # {3, 4} {0, 1} {3, 4}
    assert m["coverage@3"] == pytest.approx(1.0)
    assert r["coverage"]["coverage@2"] == m["coverage@2"]

    items = r["buckets"]["items"]  # cold posts 4, 5
    assert items["cold"]["n_users"] == 3 and items["cold"]["n_relevant"] == 4
    assert items["cold"]["recall@2"] == pytest.approx((1 + 0 + 0.5) / 3)
    assert items["warm"]["n_users"] == 2 and items["warm"]["recall@2"] == pytest.approx((0 + 1) / 2)
    hist = r["buckets"]["history"]
    assert set(hist) == {"0", "1-2", "3-5"}
    assert hist["0"]["n_users"] == 1 and hist["0"]["recall@3"] == 0.0
    assert hist["1-2"]["recall@2"] == pytest.approx(0.5)
    assert hist["3-5"]["ndcg@3"] == pytest.approx(1.0)


def test_valid_split_masks_train_only():
    data, scores = hand_data()
    r = evaluate(MatrixScorer(scores), data, "valid", ks=(1,))
    # u0: train {0} masked, post 1 (score 3, tied with 3 and 4, lowest index) ranks first -> hit
    # u2: train {1, 3} masked, all tied -> post 0 first -> hit
    assert r["n_users"] == 2
    assert r["metrics"]["recall@1"] == 1.0 and r["metrics"]["mrr@1"] == 1.0


def test_topk_canonical_breaks_ties_by_lower_index():
    s = torch.tensor([[1.0, 2.0, 2.0, 2.0, 0.0, 2.0], [0.0] * 6])
    vals, idx = _topk_canonical(s, 2)
    assert idx.tolist() == [[1, 2], [0, 1]]
    assert vals.tolist() == [[2.0, 2.0], [0.0, 0.0]]


@pytest.mark.parametrize("seed", [0, 1])
def test_fast_topk_equals_exact_topk_on_long_rows(seed):
    """The threshold path (rows of >= 8 groups) gives the exact canonical answer: heavy ties at
    the cut, rows almost all -inf (fewer than k finite groups: plain path), a row with more
    candidates than the cap (plain path), and plain float scores."""
    g = torch.Generator().manual_seed(seed)
    n, k = 5000, 10  # 19 groups of 256 >= k: the threshold path applies
    ties = torch.randint(0, 4, (6, n), generator=g).float()  # ~1/4 of each row ties at the top
    floats = torch.randn(6, n, generator=g)
    sparse = torch.full((3, n), -math.inf)
    sparse[0, torch.randperm(n, generator=g)[:5]] = 1.0  # fewer than k finite scores
    sparse[1, torch.randperm(n, generator=g)[:400]] = torch.randn(400, generator=g)
    sparse[2, :] = 0.0  # one value everywhere: every column a candidate, over the cap
    s = torch.cat([ties, floats, sparse])
    s[3, torch.randperm(n, generator=g)[:2000]] = -math.inf  # masked entries
    import recsys.evaluation as ev

    old, exact, widths = ev.TOPK_MAX_CANDIDATES, ev._topk_exact, []
    ev.TOPK_MAX_CANDIDATES = 2000  # below row 14's 5000 candidates, above the tie rows' ~1250
    ev._topk_exact = lambda x, kk: (widths.append(tuple(x.shape)), exact(x, kk))[1]
    try:
        fv, fi = _topk_canonical(s.clone(), k)
    finally:
        ev.TOPK_MAX_CANDIDATES, ev._topk_exact = old, exact
    assert widths[0][0] == 13 and widths[0][1] < n and widths[1] == (2, n)  # 13 rows fast, 2 plain
    ev_, ei = _topk_exact(s.clone(), k)
    assert torch.equal(fi, ei)
    assert torch.equal(fv, ev_)
    assert fi[14].tolist() == list(range(k))  # all equal: lowest columns first


def _reference(scores: np.ndarray, data: InteractionData, split: str, k: int) -> dict[str, float]:
    """Plain per-user loop: ranking by (score desc, post index asc)."""
    target, exclude = data.split(split).tolil(), data.exclude_for(split).tolil()
    out: dict[str, list[float]] = {"recall": [], "ndcg": [], "mrr": []}
    for u in range(data.n_users):
        rel = set(target.rows[u]) - set(exclude.rows[u])
        if not rel:
            continue
        s = scores[u].astype(np.float64).copy()
        s[list(exclude.rows[u])] = -np.inf
        order = np.lexsort((np.arange(len(s)), -s))[:k]
        hits = np.array([p in rel for p in order], float)
        out["recall"].append(hits.sum() / len(rel))
        disc = 1 / np.log2(np.arange(k) + 2)
        out["ndcg"].append((hits * disc).sum() / disc[: min(len(rel), k)].sum())
        first = np.flatnonzero(hits)
        out["mrr"].append(1 / (first[0] + 1) if len(first) else 0.0)
    return {m: float(np.mean(v)) for m, v in out.items()}


def random_data(seed: int, n_users: int = 60, n_posts: int = 40) -> tuple[InteractionData, np.ndarray]:
    rng = np.random.default_rng(seed)
    m = rng.random((n_users, n_posts))
    train = sp.csr_matrix((m < 0.15).astype(np.float32))
    valid = sp.csr_matrix(((m >= 0.15) & (m < 0.18)).astype(np.float32))
    test = sp.csr_matrix(((m >= 0.18) & (m < 0.23)).astype(np.float32))
    data = InteractionData(np.arange(n_users), np.arange(n_posts), train, valid, test, "rand", "x")
    scores = rng.integers(0, 4, size=(n_users, n_posts)).astype(np.float32)  # many ties
    return data, scores


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_chunked_equals_unchunked_equals_reference(seed):
    data, scores = random_data(seed)
    full = evaluate(MatrixScorer(scores), data, "test", ks=(5, 10))
    chunked = evaluate(MatrixScorer(scores), data, "test", ks=(5, 10), chunk_users=7)
    assert full["metrics"] == chunked["metrics"]
    assert full["buckets"] == chunked["buckets"]
    ref = _reference(scores, data, "test", 10)
    for m in ("recall", "ndcg", "mrr"):
        assert full["metrics"][f"{m}@10"] == pytest.approx(ref[m], abs=1e-12)


def test_scorer_views_are_not_modified():
    data, scores = hand_data()
    shared = torch.arange(6, dtype=torch.float32)

    class Expanded:
        name = "expanded"

        def score(self, u):
            return shared.expand(len(u), -1)

    evaluate(Expanded(), data, "test", ks=(2,))
    assert torch.isfinite(shared).all()


def test_bad_input_is_rejected():
    data, scores = hand_data()
    with pytest.raises(ConfigError, match="K values must be >= 1"):
        evaluate(MatrixScorer(scores), data, "test", ks=(0, 20))
    with pytest.raises(ConfigError, match="split must be one of"):
        evaluate(MatrixScorer(scores), data, "holdout")
    empty = InteractionData(data.user_ids, data.post_ids, data.train, data.valid, sp.csr_matrix(data.test.shape, dtype=np.float32))
    with pytest.raises(ConfigError, match="no users"):
        evaluate(MatrixScorer(scores), empty, "test")
    with pytest.raises(SchemaError, match=r"shape \(3, 5\), expected \(3, 6\)"):
        evaluate(MatrixScorer(scores[:, :5]), data, "test")


def test_k_larger_than_candidates():
    """K = N: masked (-inf) slots are never hits and never count as covered."""
    data, scores = hand_data()
    m = evaluate(MatrixScorer(scores), data, "test", ks=(6, 50))["metrics"]
    assert m["mrr@6"] == pytest.approx((0.5 + 1 / 6 + 1) / 3)
    assert m["precision@6"] == pytest.approx((2 / 6 + 1 / 6 + 3 / 6) / 3)
    assert m["recall@50"] == 1.0 and m["precision@50"] == pytest.approx(6 / 50 / 3)

    only_u0 = InteractionData(data.user_ids, data.post_ids, data.train, data.valid, _csr([(0, 2)], (4, 6)))
    cov = evaluate(MatrixScorer(scores), only_u0, "test", ks=(6,))["metrics"]["coverage@6"]
    assert cov == pytest.approx(4 / 6)  # posts 0, 1 masked for u0


class SharedScorer(MatrixScorer):
    """Every user gets row 0 of the matrix, said once through `shared_scores`."""

    def shared_scores(self):
        return self.scores[0]

    def score(self, user_idx):
        return self.scores[0].expand(len(user_idx), -1)


class Generic:
    """The same scorer seen without `shared_scores` (the (B, N) path)."""

    def __init__(self, inner) -> None:
        self.inner, self.name = inner, inner.name

    def score(self, u):
        return self.inner.score(u)

    def for_history(self, history, split):
        return Generic(self.inner.for_history(history, split)) if hasattr(self.inner, "for_history") else self


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_shared_row_ranking_equals_the_block_path(seed):
    """One row for every user, ranked once: the same lists as masking and ranking each row, with
    heavy ties, users with fewer than K unseen posts, users without a history (the prior) and
    the popular baseline itself."""
    from recsys.baselines.popular import fit as fit_popular

    data, scores = random_data(seed, n_users=50, n_posts=30)
    train = data.train.tolil()
    a, b, c = [u for u in range(50) if data.test[u].nnz][:3]
    for u in (a, b):  # everything seen but the valid and test posts and one more: fewer than K unseen
        keep = set(data.valid[u].indices) | set(data.test[u].indices) | {int(np.setdiff1d(np.arange(30), data.test[u].indices)[0])}
        train.rows[u] = [p for p in range(30) if p not in keep]
        train.data[u] = [1.0] * len(train.rows[u])
    train.rows[c], train.data[c] = [], []  # no history
    data = InteractionData(data.user_ids, data.post_ids, train.tocsr(), data.valid, data.test, "rand", "x")
    for scorer in (SharedScorer(scores), fit_popular(data)):
        for split in ("valid", "test"):
            fast = evaluate(scorer, data, split, ks=(5, 10), chunk_users=16, keep_lists=True)
            slow = evaluate(Generic(scorer), data, split, ks=(5, 10), chunk_users=16, keep_lists=True)
            for a, b in zip(fast["lists"], slow["lists"]):
                assert np.array_equal(a, b)
            assert fast["metrics"] == slow["metrics"] and fast["buckets"] == slow["buckets"]
    nonfinite = scores.copy()
    nonfinite[0, 4] = -np.inf  # not finite: the block path ranks it
    r = evaluate(SharedScorer(nonfinite), data, "test", ks=(10,), keep_lists=True)
    assert np.array_equal(r["lists"][1], evaluate(Generic(SharedScorer(nonfinite)), data, "test", ks=(10,), keep_lists=True)["lists"][1])


class FactorScorer:
    """score = users @ posts_t, said through `factors` (the column-tiled path)."""

    name = "factors"

    def __init__(self, users: torch.Tensor, posts_t: torch.Tensor) -> None:
        self.users, self.posts_t = users, posts_t

    def score(self, u):
        return self.users[torch.as_tensor(u)] @ self.posts_t

    def factors(self):
        return self.users, self.posts_t


@pytest.mark.parametrize("seed", [0, 1])
def test_column_tiled_ranking_equals_the_block_path(seed, monkeypatch):
    """Small-integer factors (exact products, many ties) over 3,000 posts in tiles of 256+: the
    same lists, metrics and buckets as the (B, N) block, with users without a history (the
    prior) and a user with fewer than K unseen posts (the full path)."""
    rng = np.random.default_rng(seed)
    n_users, n_posts = 40, 3000
    m = rng.random((n_users, n_posts))
    train = (m < 0.01).astype(np.float32)
    train[3, :] = 0.0  # no history
    test = ((m >= 0.01) & (m < 0.012)).astype(np.float32)
    train[5, :] = 1.0  # everything seen but 5 posts, 2 of them in test
    train[5, :5] = 0.0
    test[5, :] = 0.0
    test[5, [1, 3]] = 1.0
    test[3, 7] = 1.0
    data = InteractionData(np.arange(n_users), np.arange(n_posts), sp.csr_matrix(train), sp.csr_matrix((n_users, n_posts), dtype=np.float32),
                           sp.csr_matrix(test), "rand", "x")
    g = torch.Generator().manual_seed(seed)
    scorer = FactorScorer(torch.randint(-2, 3, (n_users, 8), generator=g).float(), torch.randint(-2, 3, (8, n_posts), generator=g).float())
    import recsys.tiled_ranking as tr

    calls, real = [], tr.factor_topk
    monkeypatch.setattr(tr, "TILE_BYTES", 16 * 4 * 256)  # 16 users: tiles of 256 columns, the last of 184
    monkeypatch.setattr(tr, "factor_topk", lambda *a, **kw: (calls.append(a[1].shape), real(*a, **kw))[1])
    tiled = evaluate(scorer, data, "test", ks=(10, 50), chunk_users=16, keep_lists=True, tiled=True)
    block = evaluate(scorer, data, "test", ks=(10, 50), chunk_users=16, keep_lists=True, tiled=False)
    for a, b in zip(tiled["lists"], block["lists"]):
        assert np.array_equal(a, b)
    assert tiled["metrics"] == block["metrics"] and tiled["buckets"] == block["buckets"]
    assert calls and all(shape == (8, n_posts) for shape in calls)  # the tiled path ran
    assert tiled["buckets"]["history"]["0"]["n_users"] == 1
    assert not tiled["lists"][2][list(tiled["lists"][0]).index(5)].all()  # user 5: -inf slots after its 5 posts
    # below TILED_MIN_POSTS the default is the block path
    assert evaluate(scorer, data, "test", ks=(10,))["metrics"] == evaluate(scorer, data, "test", ks=(10,), tiled=False)["metrics"]



@pytest.mark.parametrize("split", ["valid", "test"])
def test_per_user_recall_is_what_evaluate_averages(split):
    from recsys.evaluation import per_user_recall

    data, scores = random_data(3)
    res = evaluate(MatrixScorer(scores), data, split, ks=(5, 10), keep_lists=True)
    users, rec = per_user_recall(res, 10)
    assert len(users) == res["n_users"] and rec.mean() == pytest.approx(res["metrics"]["recall@10"], abs=1e-12)
    assert per_user_recall(res, 5)[1].mean() == pytest.approx(res["metrics"]["recall@5"], abs=1e-12)
    rel = relevant_items(data.split(split), data.exclude_for(split).tocsr())  # recall counted by hand, user by user
    _, idx, valid = res["lists"]
    by_hand = [np.isin(idx[j, :10][valid[j, :10]], rel[u].indices).sum() / rel[u].nnz for j, u in enumerate(users.tolist())]
    assert np.allclose(rec, by_hand, atol=1e-12)
    with pytest.raises(ConfigError, match=r"k=20 is not among the evaluated ks \[5, 10\]"):
        per_user_recall(res, 20)
    with pytest.raises(ConfigError, match="needs an evaluate"):
        per_user_recall(evaluate(MatrixScorer(scores), data, split, ks=(10,)), 10)
