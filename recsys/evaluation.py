"""Full-ranking offline evaluation (pure numpy/torch; no I/O).

    result = evaluate(scorer, data, split="valid", ks=(10, 20, 50))
    result["metrics"]["recall@20"], result["buckets"]["items"]["cold"]["recall@20"], ...

Shapes: B users in a chunk, N posts (ALL posts of the dataset), K = max(ks).

Protocol (the DiffMM/MMSSL protocol, see ../shared/data/tiktok/README.md):
- Every post is scored (never sampled negatives). Posts in `data.exclude_for(split)` (train, plus
  valid when scoring test) are set to -inf before the top-K.
- Relevant items of a user = target-split items that are not excluded (identical to the target
  split when splits do not overlap, as on TikTok). Users evaluated = users with >= 1 relevant item.
- Ranking ties are broken deterministically: equal scores -> lower post index (column) first.
  `torch.topk` alone does not promise that, so the top-K set and order are canonicalised
  (`_topk_canonical`); the chunked path and the per-user reference in the tests agree exactly.
- Per user, at each K (rank r is 0-based):
    recall@K    = hits in top-K / |relevant|
    precision@K = hits in top-K / K
    ndcg@K      = sum_{hit r < K} 1/log2(r+2)  /  sum_{r < min(|relevant|, K)} 1/log2(r+2)
    hit@K       = 1 if any hit in top-K
    mrr@K       = 1/(r+1) of the FIRST relevant item within the top-K, 0 if none (truncated MRR)
  averaged over evaluated users. coverage@K = fraction of ALL posts that appear in at least one
  evaluated user's top-K (recommendation slots holding an excluded post, -inf, count for none).
- History (what the server would hold when the split begins, `InteractionData.history_splits`):
  train when scoring valid; train + valid when scoring test on a temporal split (imported
  benchmarks: train, their fixed protocol). A scorer with `for_history(history csr (U, N), split)`
  is re-based on it first (user profiles, item-kNN sums, ID bags). Users with an empty history
  are answered by every scorer alike with the population prior (`recsys.inference
  .population_prior` over the history's counts), as the server answers them.
- Buckets (beside the totals):
    items: "cold" = relevant posts with no train interaction, "warm" = the rest.
           recall_<bucket>@K = relevant <bucket> posts hit in top-K / relevant <bucket> posts,
           averaged over users with >= 1 relevant <bucket> post (n_users, n_relevant reported).
    history: users by number of history items (above): "0", "1-2", "3-5", "6-10", ">10"; recall/ndcg/hit
           averaged over the users of each group (groups with no users are left out).

A scorer is any object with `name: str` and `score(user_idx: int64 (B,)) -> float32 (B, N)`
(higher is better, columns in `data.post_ids` order, rows = user positions in `data.user_ids`).
The harness masks the returned tensor in place: return a fresh tensor (views are copied first).
A scorer whose rows are one and the same for every user (most popular) may say so with
`shared_scores() -> float32 (N,)`: the row is then ranked once, and a user's top-K is the first K
posts of that ranking the user has not seen (masking only removes posts), O(K + seen) per user
instead of O(N); the lists are the same as the (B, N) path's (tested; non-finite rows and users
with fewer than K unseen posts take that path).
A scorer whose score is an inner product may expose `factors() -> (users float32 (U, d),
posts_t float32 (d, N))` with score(u) == users[u] @ posts_t. From TILED_MIN_POSTS posts on, the
harness then never forms a (B, N) block: `recsys.tiled_ranking` takes the product in column
tiles that stay in cache, masking and selecting as it goes (the same canonical lists; at 1M
posts a (B, N) block per chunk made the passes memory-bound and cost a page fault per 4 KiB).
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Sequence
from typing import Any, Protocol

import numpy as np
import scipy.sparse as sp
import torch

from recsys.errors import ConfigError, SchemaError
from recsys.inference import population_prior
from recsys.interactions import InteractionData

logger = logging.getLogger(__name__)

HISTORY_BUCKETS: tuple[tuple[str, int, int], ...] = (
    ("0", 0, 0),
    ("1-2", 1, 2),
    ("3-5", 3, 5),
    ("6-10", 6, 10),
    (">10", 11, 2**62),
)
DEFAULT_KS = (10, 20, 50)
# Upper bound for one (B, N) float32 score chunk; chunk_users is lowered to stay under it.
MAX_CHUNK_BYTES = 1 << 30
# Factor scorers are ranked in column tiles from this many posts on (below it a (B, N) block is
# small), TILED_USERS users at a time.
TILED_MIN_POSTS = 1 << 16
TILED_USERS = 256


class Scorer(Protocol):
    name: str

    def score(self, user_idx: np.ndarray) -> torch.Tensor: ...


def check_ks(ks: Sequence[int]) -> tuple[int, ...]:
    """Sorted unique positive ints; ConfigError otherwise."""
    try:
        out = sorted({int(k) for k in ks})
    except (TypeError, ValueError) as e:
        raise ConfigError(f"K values must be integers, got {list(ks)!r}") from e
    if not out or out[0] <= 0:
        raise ConfigError(f"K values must be >= 1, got {list(ks)}")
    return tuple(out)


def evaluate(
    scorer: Scorer,
    data: InteractionData,
    split: str = "valid",
    ks: Sequence[int] = DEFAULT_KS,
    chunk_users: int = 2048,
    max_chunk_bytes: int = MAX_CHUNK_BYTES,
    keep_lists: bool = False,
    tiled: bool | None = None,
) -> dict[str, Any]:
    """Full-ranking evaluation of `scorer` on `split` (see the module docstring for the protocol).

    Returns {"metrics": {"recall@K", "ndcg@K", "precision@K", "hit@K", "mrr@K", "coverage@K"},
    "coverage": {"coverage@K"}, "buckets": {"items": {...}, "history": {...}}, "n_users",
    "n_posts", "split", "ks", "scorer", "dataset", "dataset_fingerprint",
    "timings": {"score_s", "rank_s" (= "mask_s" + "topk_s"), "metrics_s", "total_s"}}. With `keep_lists`, also "lists":
    (users int64 (U',), idx int64 (U', K) post positions, valid bool (U', K)), the masked top-K
    lists that were scored (K = max(ks); `valid` is False where fewer posts were left after masking),
    and "per_user": {"recall@K", "ndcg@K", ...: float64 (U',)}, each user's value in the order of
    `users` (the metrics are their means).
    `tiled`: rank a factor scorer in column tiles (None: from TILED_MIN_POSTS posts on).
    """
    t_start = time.perf_counter()
    ks = check_ks(ks)
    if chunk_users < 1:
        raise ConfigError(f"chunk_users must be >= 1, got {chunk_users}")
    target = data.split(split)
    exclude = data.exclude_for(split).tocsr()
    n_posts = data.n_posts
    relevant = relevant_items(target, exclude)  # csr (U, N) bool-ish
    n_rel = np.diff(relevant.indptr)
    users = np.flatnonzero(n_rel > 0).astype(np.int64)
    if len(users) == 0:
        raise ConfigError(
            f"split {split!r} of dataset {data.dataset_name!r} has no users with a relevant item "
            f"({target.nnz} interaction(s)); nothing to evaluate"
        )
    kmax = min(ks[-1], n_posts)
    cold = np.asarray(data.train.sum(axis=0)).ravel() == 0  # (N,) no train interaction
    history = data.history_for(split).tocsr()
    if hasattr(scorer, "for_history"):
        scorer = scorer.for_history(history, split)
    hist_len = np.diff(history.indptr)  # (U,)
    prior = torch.from_numpy(population_prior(data.popularity_for(split), data.post_created_us))  # (N,)
    chunk = max(1, min(chunk_users, max_chunk_bytes // max(4 * n_posts, 1)))
    shared = _shared_ranking(scorer, n_posts)
    if shared is not None:  # no (B, N) block: a user is O(K + seen posts)
        chunk = max(1, chunk_users)
        rankings = {False: shared, True: _SharedRanking(prior)}  # by "has no history"
    factors = None
    if shared is None and (tiled or (tiled is None and n_posts >= TILED_MIN_POSTS)) and bool(torch.isfinite(prior).all()):
        factors = _factors(scorer, n_posts)
    if factors is not None:  # no (B, N) block: column tiles
        chunk = max(1, min(chunk_users, TILED_USERS))
        prior_ranking = _SharedRanking(prior)

    acc = _Accumulator(ks, n_posts, cold)
    lists_idx: list[np.ndarray] = []
    lists_valid: list[np.ndarray] = []
    t_score = t_rank = t_mask = t_metrics = 0.0
    for start in range(0, len(users), chunk):
        u = users[start : start + chunk]  # (B,)
        t0 = time.perf_counter()
        score_s = mask_s = 0.0  # of this chunk; the rest of its ranking time is top-K
        if shared is not None:
            nob = hist_len[u] == 0  # users without a history: the prior
            vals = torch.empty((len(u), kmax), dtype=torch.float32)
            idx = torch.empty((len(u), kmax), dtype=torch.int64)
            for flag in (False, True):
                sel = np.flatnonzero(nob == flag)
                if len(sel):
                    vals[sel], idx[sel] = rankings[flag].topk(exclude[u[sel]], kmax)
        elif factors is not None:
            vals, idx, secs = _tiled_topk(factors, prior_ranking, exclude[u], u, hist_len[u] == 0, kmax)
            score_s, mask_s = secs["score_s"], secs["mask_s"]
        else:
            with torch.no_grad():
                s = _as_scores(scorer.score(u), len(u), n_posts, getattr(scorer, "name", "scorer"))
                nobody = np.flatnonzero(hist_len[u] == 0)  # (b,) users without a history: the prior
                if len(nobody):
                    s[torch.from_numpy(nobody)] = prior
            t1 = time.perf_counter()
            _mask_inplace(s, exclude, u)
            mask_s = time.perf_counter() - t1
            vals, idx = _topk_canonical(s, kmax)  # (B, K)
            vals, idx = vals.cpu(), idx.cpu()  # scorers may return CUDA tensors
            del s
            score_s = t1 - t0
        t2 = time.perf_counter()
        finite = torch.isfinite(vals).numpy()
        acc.add(u, idx.numpy(), finite, relevant, hist_len)
        if keep_lists:
            lists_idx.append(idx.numpy())
            lists_valid.append(finite)
        t_score += score_s
        t_rank += t2 - t0 - score_s
        t_mask += mask_s
        t_metrics += time.perf_counter() - t2

    metrics, coverage, buckets = acc.result()
    total = time.perf_counter() - t_start
    extra = {"lists": (users, np.concatenate(lists_idx), np.concatenate(lists_valid)), "per_user": acc.columns()} if keep_lists else {}
    logger.debug("evaluated %s on %s: %d users in %.2f s", getattr(scorer, "name", "?"), split, len(users), total)
    return {
        "metrics": metrics,
        "coverage": coverage,
        "buckets": buckets,
        "n_users": int(len(users)),
        "n_posts": int(n_posts),
        "split": split,
        "history": {"splits": list(data.history_splits(split)), "no_history": "population prior"},
        "ks": list(ks),
        "scorer": str(getattr(scorer, "name", type(scorer).__name__)),
        "dataset": data.dataset_name,
        "dataset_fingerprint": data.fingerprint,
        "timings": {
            "score_s": round(t_score, 4),
            "rank_s": round(t_rank, 4),  # = mask_s + topk_s
            "mask_s": round(t_mask, 4),
            "topk_s": round(t_rank - t_mask, 4),
            "metrics_s": round(t_metrics, 4),
            "total_s": round(total, 4),
            "chunk_users": int(chunk),
        },
        **extra,
    }


# --------------------------------------------------------------------------- ranking


def relevant_items(target: sp.csr_matrix, exclude: sp.csr_matrix) -> sp.csr_matrix:
    """Target items minus excluded ones (a post already seen is not a new relevant item)."""
    rel = target.tocsr().astype(np.float32)
    rel.data[:] = 1.0
    if exclude.nnz and rel.nnz:
        rel = rel - rel.multiply(exclude > 0)
        rel.eliminate_zeros()
    rel = rel.tocsr()
    rel.sort_indices()
    return rel


def per_user_recall(res: dict[str, Any], k: int) -> tuple[np.ndarray, np.ndarray]:
    """`evaluate(..., keep_lists=True)` result -> (users int64 (U',), recall@k float64 (U',)): each
    scored user's recall@k as `evaluate` counted it (its mean is res["metrics"][f"recall@{k}"]).
    For paired comparisons over users; k must be one of the evaluated ks."""
    per_user = res.get("per_user")
    if per_user is None:
        raise ConfigError("per_user_recall needs an evaluate(..., keep_lists=True) result")
    if f"recall@{k}" not in per_user:
        raise ConfigError(f"per_user_recall: k={k} is not among the evaluated ks {res['ks']}")
    return res["lists"][0], per_user[f"recall@{k}"]


def _shared_ranking(scorer: Any, n: int) -> "_SharedRanking | None":
    """The scorer's one row for every user (`shared_scores`), when it has one and it is finite."""
    if not callable(getattr(scorer, "shared_scores", None)):
        return None
    row = torch.as_tensor(scorer.shared_scores()).to(torch.float32)
    if row.shape != (n,) or not bool(torch.isfinite(row).all()):
        return None  # the (B, N) path checks and ranks it
    return _SharedRanking(row)


class _SharedRanking:
    """One finite score row (N,) for many users: its canonical order (score desc, column asc)
    once; masking only removes posts, so a user's top-K is the first K posts of that order the
    user has not seen, found among the first K + (seen posts) of it."""

    def __init__(self, row: torch.Tensor) -> None:
        self.row = row.to(torch.float32).contiguous().cpu()
        self.order = torch.sort(self.row, descending=True, stable=True).indices  # (N,) stable: ties by column
        self.rank = torch.empty_like(self.order)
        self.rank[self.order] = torch.arange(len(self.order))

    def topk(self, ex: sp.csr_matrix, k: int) -> tuple[torch.Tensor, torch.Tensor]:
        """ex: csr (b, N) posts masked per user -> (values float32 (b, k), columns int64 (b, k)),
        the (B, N) path's canonical answer."""
        b, n = ex.shape[0], len(self.order)
        n_ex = np.diff(ex.indptr)
        width = min(n, k + int(n_ex.max(initial=0)))
        rows = torch.from_numpy(np.repeat(np.arange(b), n_ex))
        rk = self.rank[torch.from_numpy(ex.indices.astype(np.int64))]
        near = rk < width
        free = torch.ones((b, width), dtype=torch.bool)
        free[rows[near], rk[near]] = False
        cum = torch.cumsum(free, 1)  # (b, width) unseen posts so far
        vals = torch.empty((b, k), dtype=torch.float32)
        idx = torch.empty((b, k), dtype=torch.int64)
        ok = torch.nonzero(cum[:, -1] >= k).squeeze(1)
        if len(ok):
            pos = torch.nonzero((free & (cum <= k))[ok])[:, 1].view(len(ok), k)  # ascending rank
            idx[ok] = self.order[pos]
            vals[ok] = self.row[idx[ok]]
        short = torch.nonzero(cum[:, -1] < k).squeeze(1)
        if len(short):  # fewer than k unseen posts: -inf slots in column order, as the (B, N) path
            s = self.row.expand(len(short), -1).clone()
            sub = ex[short.numpy()]
            s[torch.from_numpy(np.repeat(np.arange(len(short)), np.diff(sub.indptr))), torch.from_numpy(sub.indices.astype(np.int64))] = -math.inf
            vals[short], idx[short] = _topk_canonical(s, k)
        return vals, idx


def _factors(scorer: Any, n: int) -> tuple[torch.Tensor, torch.Tensor] | None:
    """The scorer's (users (U, d), posts_t (d, N)) when it has them, float32, finite and on the
    CPU (the tiles are CPU buffers; other devices take the (B, N) path)."""
    if not callable(getattr(scorer, "factors", None)):
        return None
    users, posts_t = (torch.as_tensor(x) for x in scorer.factors())
    if users.device.type != "cpu" or posts_t.device.type != "cpu":
        return None
    users, posts_t = users.to(torch.float32), posts_t.to(torch.float32)
    if users.dim() != 2 or posts_t.shape != (users.shape[1], n):
        raise SchemaError(f"scorer {getattr(scorer, 'name', 'scorer')!r} returned factors of shapes {tuple(users.shape)} and "
                          f"{tuple(posts_t.shape)}, expected (U, d) and (d, {n})")
    if not (bool(torch.isfinite(users).all()) and bool(torch.isfinite(posts_t).all())):
        return None  # the (B, N) path checks the scores themselves
    return users, posts_t


@torch.no_grad()
def _tiled_topk(factors, prior: "_SharedRanking", ex: sp.csr_matrix, u: np.ndarray, nobody: np.ndarray, k: int):
    """Masked canonical top-k of a chunk of users u (B,) from factors: users with a history by
    column tiles, users without one from the population prior's ranking, and any row with
    fewer than k finite unmasked scores on the full block (its -inf slots in column order).
    -> (vals (B, k), idx (B, k), seconds {"score_s", "mask_s", "topk_s"})."""
    from recsys.tiled_ranking import factor_topk

    users, posts_t = factors
    vals = torch.empty((len(u), k), dtype=torch.float32)
    idx = torch.empty((len(u), k), dtype=torch.int64)
    secs = {"score_s": 0.0, "mask_s": 0.0, "topk_s": 0.0}
    some = np.flatnonzero(~nobody)
    if len(some):
        q = users[torch.from_numpy(u[some])]
        v, i, secs = factor_topk(q, posts_t, ex[some], k)
        vals[some], idx[some] = v, i
        short = some[~torch.isfinite(v[:, -1]).numpy()]
        if len(short):
            s = users[torch.from_numpy(u[short])] @ posts_t
            _mask_inplace(s, ex, short)
            vals[short], idx[short] = _topk_canonical(s, k)
    none = np.flatnonzero(nobody)
    if len(none):
        vals[none], idx[none] = prior.topk(ex[none], k)
    return vals, idx, secs


def _as_scores(s: Any, b: int, n: int, name: str) -> torch.Tensor:
    s = torch.as_tensor(s)
    if s.shape != (b, n):
        raise SchemaError(f"scorer {name!r} returned scores of shape {tuple(s.shape)}, expected ({b}, {n})")
    if s.dtype != torch.float32:
        s = s.to(torch.float32)
    elif s._base is not None or not s.is_contiguous():
        s = s.contiguous().clone()  # never write into the scorer's own storage
    if s.numel() and torch.isnan(s.amax(1)).any():  # a row's max is NaN iff the row holds one; no (B, N) mask
        raise SchemaError(f"scorer {name!r} returned NaN scores")
    return s


def _mask_inplace(s: torch.Tensor, exclude: sp.csr_matrix, users: np.ndarray) -> None:
    """Set excluded (user, post) entries of s (B, N) to -inf."""
    ex = exclude[users]  # (B, N) csr
    if ex.nnz == 0:
        return
    rows = np.repeat(np.arange(len(users)), np.diff(ex.indptr))
    r = torch.from_numpy(rows).to(s.device)
    c = torch.from_numpy(ex.indices.astype(np.int64)).to(s.device)
    s[r, c] = -math.inf


# Fast top-k: group width of the threshold pass, and the candidate cap per row (beyond it a row
# goes through the plain path).
TOPK_GROUP = 256
TOPK_MAX_CANDIDATES = 1 << 14


def _topk_canonical(s: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Top-k of each row of s (B, N) with ties broken by lower column index first; the same
    answer as `_topk_exact`, faster on long rows.

    A full `torch.topk` over a million columns per row is most of an evaluation's time. Here a
    threshold comes first: tau = the k-th largest of the row's group maxima (groups of
    TOPK_GROUP columns), so at least k entries are >= tau, and every entry of the top-k, ties
    at the cut included, is >= tau. The candidates s >= tau (a few k per row), kept in column
    order, go through `_topk_exact`, whose tie-break by position is then the tie-break by
    column. Rows where tau is -inf (fewer than k groups with a finite score) or with more than
    TOPK_MAX_CANDIDATES candidates take the plain path.
    """
    B, n = s.shape
    g = TOPK_GROUP
    if n < 8 * g or n // g < k or B == 0:
        return _topk_exact(s, k)
    n0 = (n // g) * g
    gmax = s[:, :n0].view(B, n0 // g, g).amax(2)  # (B, G)
    if n0 < n:
        gmax = torch.cat([gmax, s[:, n0:].amax(1, keepdim=True)], 1)
    tau = torch.topk(gmax, k, dim=1, sorted=False).values.amin(1, keepdim=True)  # (B, 1)
    cand = s >= tau  # (B, N)
    # A row's candidates lie in its groups that reach tau: at most g per such group. Only rows
    # whose bound passes the cap are counted exactly (a count over the whole (B, N) mask costs
    # more than the rest of the top-k).
    over = torch.zeros(B, dtype=torch.bool, device=s.device)
    maybe = torch.nonzero((gmax >= tau).sum(1) * g > TOPK_MAX_CANDIDATES).squeeze(1)
    if len(maybe):
        over[maybe] = cand[maybe].sum(1) > TOPK_MAX_CANDIDATES
    plain = ~torch.isfinite(tau.squeeze(1)) | over
    fast = torch.nonzero(~plain).squeeze(1)
    vals = torch.empty((B, k), dtype=s.dtype, device=s.device)
    idx = torch.empty((B, k), dtype=torch.int64, device=s.device)
    if len(fast):
        cf = cand[fast] if len(fast) < B else cand
        rows, cols = torch.nonzero(cf, as_tuple=True)  # row-major: columns ascending per row
        cnt = torch.bincount(rows, minlength=len(fast))  # (F,) candidates per fast row
        width = int(cnt.max())
        start = torch.cumsum(cnt, 0) - cnt  # (F,)
        pos = torch.arange(len(rows), device=s.device) - start[rows]
        cv = torch.full((len(fast), width), -math.inf, dtype=s.dtype, device=s.device)
        cc = torch.full((len(fast), width), n, dtype=torch.int64, device=s.device)
        cv[rows, pos] = s[fast[rows], cols]
        cc[rows, pos] = cols
        v, j = _topk_exact(cv, k)  # positions in column order -> columns
        vals[fast], idx[fast] = v, torch.gather(cc, 1, j)
    slow = torch.nonzero(plain).squeeze(1)
    if len(slow):
        vals[slow], idx[slow] = _topk_exact(s[slow], k)
    return vals, idx


def _topk_exact(s: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Top-k of each row of s (B, N) with ties broken by lower column index first.

    Returns (values float32 (B, k), indices int64 (B, k)) ordered by (score desc, index asc).
    torch.topk's choice among equal scores is unspecified. Rows whose (k+1)-th value equals the
    k-th (ties straddle the cut) are rebuilt from `s > kth` plus the lowest-index ties; then the
    k winners are ordered by (value desc, index asc).
    """
    n = s.shape[1]
    vals, idx = torch.topk(s, min(k + 1, n), dim=1, largest=True, sorted=True)  # (B, k+1)
    if n > k:
        # ties straddle the cut iff the (k+1)-th value equals the k-th one
        amb = torch.nonzero(vals[:, k] == vals[:, k - 1]).squeeze(1)
        vals, idx = vals[:, :k].contiguous(), idx[:, :k].contiguous()
    else:
        amb = torch.zeros(0, dtype=torch.int64, device=s.device)
    if len(amb):
        sa, ka = s[amb], vals[amb, k - 1 :]  # (R, N), (R, 1)
        gt = sa > ka
        n_gt = gt.sum(dim=1, keepdim=True, dtype=torch.int32)  # (R, 1)
        tie = sa == ka
        take = tie & (torch.cumsum(tie, dim=1, dtype=torch.int32) <= (k - n_gt))
        cols = torch.nonzero(gt | take)[:, 1].view(len(amb), k)  # exactly k per row, ascending
        idx[amb] = cols
        vals[amb] = torch.gather(sa, 1, cols)
    # order: index asc, then a stable sort by value desc
    idx, order = torch.sort(idx, dim=1)
    vals = torch.gather(vals, 1, order)
    vals, order = torch.sort(vals, dim=1, descending=True, stable=True)
    idx = torch.gather(idx, 1, order)
    return vals, idx


# --------------------------------------------------------------------------- metrics


class _Accumulator:
    """Sums per-user metrics over chunks; result() averages them."""

    def __init__(self, ks: tuple[int, ...], n_posts: int, cold: np.ndarray) -> None:
        self.ks = ks
        self.n_posts = n_posts
        self.cold = cold
        self.kmax = min(ks[-1], n_posts)
        self.disc = 1.0 / np.log2(np.arange(self.kmax) + 2.0)  # (K,)
        self.idcg_prefix = np.concatenate([[0.0], np.cumsum(self.disc)])  # (K+1,)
        self.per_user: dict[str, list[np.ndarray]] = {}
        self.covered = {k: np.zeros(n_posts, bool) for k in ks}
        self.hist: list[np.ndarray] = []
        self.cold_rel: list[np.ndarray] = []  # (B,) count of cold relevant items
        self.warm_rel: list[np.ndarray] = []
        self.cold_hits: dict[int, list[np.ndarray]] = {k: [] for k in ks}
        self.warm_hits: dict[int, list[np.ndarray]] = {k: [] for k in ks}

    def add(self, users: np.ndarray, idx: np.ndarray, valid: np.ndarray, relevant: sp.csr_matrix, hist_len: np.ndarray) -> None:
        """users (B,), idx int64 (B, K) ranked posts, valid bool (B, K) (False = -inf slot)."""
        b = len(users)
        rel = relevant[users]  # (B, N) csr, sorted indices
        n_rel = np.diff(rel.indptr)  # (B,)
        # hit[i, r]: is idx[i, r] relevant for user i (searchsorted on row*N + col keys)
        rel_rows = np.repeat(np.arange(b), n_rel)
        rel_keys = rel_rows * self.n_posts + rel.indices.astype(np.int64)  # sorted
        keys = np.arange(b)[:, None] * self.n_posts + idx  # (B, K)
        pos = np.clip(np.searchsorted(rel_keys, keys), 0, len(rel_keys) - 1)
        hit = (rel_keys[pos] == keys) & valid  # (B, K)
        cold_hit = hit & self.cold[idx]
        cold_rel = np.bincount(rel_rows, weights=self.cold[rel.indices], minlength=b).astype(np.int64)
        self.cold_rel.append(cold_rel)
        self.warm_rel.append(n_rel - cold_rel)
        self.hist.append(hist_len[users])

        first = np.where(hit.any(1), hit.argmax(1), self.kmax)  # (B,) rank of first hit
        for k in self.ks:
            kk = min(k, self.kmax)
            h = hit[:, :kk]
            n_hit = h.sum(1)
            dcg = (h * self.disc[:kk]).sum(1)
            idcg = self.idcg_prefix[np.minimum(n_rel, kk)]
            self._put(f"recall@{k}", n_hit / n_rel)
            self._put(f"ndcg@{k}", dcg / idcg)
            self._put(f"precision@{k}", n_hit / k)
            self._put(f"hit@{k}", (n_hit > 0).astype(np.float64))
            self._put(f"mrr@{k}", np.where(first < kk, 1.0 / (first + 1.0), 0.0))
            self.covered[k][idx[:, :kk][valid[:, :kk]]] = True
            ch = cold_hit[:, :kk].sum(1)
            self.cold_hits[k].append(ch)
            self.warm_hits[k].append(n_hit - ch)

    def _put(self, key: str, v: np.ndarray) -> None:
        self.per_user.setdefault(key, []).append(np.asarray(v, np.float64))

    def columns(self) -> dict[str, np.ndarray]:
        """Each per-user metric ("recall@K", ...) float64 (U',), users in the order added."""
        return {key: np.concatenate(v) for key, v in self.per_user.items()}

    def result(self) -> tuple[dict, dict, dict]:
        cols = self.columns()
        metrics = {key: float(v.mean()) for key, v in cols.items()}
        coverage = {f"coverage@{k}": float(self.covered[k].mean()) for k in self.ks}
        metrics.update(coverage)

        items = {}
        for name, rel, hits in (("cold", self.cold_rel, self.cold_hits), ("warm", self.warm_rel, self.warm_hits)):
            r = np.concatenate(rel)
            has = r > 0
            entry: dict[str, Any] = {"n_users": int(has.sum()), "n_relevant": int(r.sum())}
            for k in self.ks:
                h = np.concatenate(hits[k])
                entry[f"recall@{k}"] = float((h[has] / r[has]).mean()) if has.any() else None
                entry[f"hits@{k}"] = int(h.sum())
            items[name] = entry

        hist = np.concatenate(self.hist)
        history = {}
        for label, lo, hi in HISTORY_BUCKETS:
            sel = (hist >= lo) & (hist <= hi)
            if not sel.any():
                continue
            entry = {"n_users": int(sel.sum())}
            for k in self.ks:
                for m in ("recall", "ndcg", "hit"):
                    entry[f"{m}@{k}"] = float(cols[f"{m}@{k}"][sel].mean())
            history[label] = entry
        return metrics, coverage, {"items": items, "history": history}
