"""The tiled top-k (`recsys.tiled_ranking.factor_topk`) gives the full block's canonical answer."""

import math

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from recsys.evaluation import _topk_canonical
from recsys.tiled_ranking import factor_topk


def _case(b, n, d, seed, levels):
    """Small-integer factors: every product is exact in float32, so the tiled and the full
    products are bit-equal and ties are plentiful (`levels` values per coordinate)."""
    g = torch.Generator().manual_seed(seed)
    q = torch.randint(-levels, levels + 1, (b, d), generator=g).float()
    pt = torch.randint(-levels, levels + 1, (d, n), generator=g).float()
    rng = np.random.default_rng(seed)
    dense = rng.random((b, n)) < 0.05  # about 5% of each row masked, spread over every tile
    dense[0, :] = False  # a row with nothing masked
    return q, pt, sp.csr_matrix(dense)


def _full(q, pt, masked, k):
    s = q @ pt
    rows = np.repeat(np.arange(s.shape[0]), np.diff(masked.indptr))
    s[torch.from_numpy(rows), torch.from_numpy(masked.indices.astype(np.int64))] = -math.inf
    return _topk_canonical(s, k)


@pytest.mark.parametrize("workers", [1, 3])
@pytest.mark.parametrize("b,n,d,k,tile,levels", [
    (37, 5000, 8, 50, 700, 2),    # heavy ties, a narrower last tile (5000 = 7 x 700 + 100)
    (16, 3000, 16, 20, 256, 3),
    (5, 1200, 4, 10, 1200, 1),    # one tile: the first tile's threshold alone
    (9, 2048, 8, 64, 256, 50),    # few ties, k larger than in the evaluation's defaults
])
def test_factor_topk_equals_the_full_block(b, n, d, k, tile, levels, workers):
    """One thread, and rows split over three (each its own tiles, candidates and merges)."""
    q, pt, masked = _case(b, n, d, b + n + k, levels)
    fv, fi = _full(q, pt, masked, k)
    tv, ti, secs = factor_topk(q, pt, masked, k, tile=tile, workers=workers)
    assert torch.equal(tv, fv)
    assert torch.equal(ti, fi)
    assert set(secs) == {"score_s", "mask_s", "topk_s"} and all(v >= 0 for v in secs.values())
    # a masked post never comes back
    for row in range(b):
        assert not set(ti[row].tolist()) & set(masked[row].indices.tolist())


def test_factor_topk_ties_go_to_the_lower_column_across_tiles():
    """All scores equal: the answer is the first k unmasked columns, whatever the tiling."""
    q, pt = torch.ones(3, 2), torch.ones(2, 1000)
    masked = sp.csr_matrix((np.ones(3), ([0, 1, 2], [0, 5, 999])), shape=(3, 1000))
    v, i, _ = factor_topk(q, pt, masked, 10, tile=256)
    assert i[0].tolist() == list(range(1, 11))
    assert i[1].tolist() == [0, 1, 2, 3, 4, 6, 7, 8, 9, 10]
    assert i[2].tolist() == list(range(10))
    assert torch.all(v == 2.0)


def test_a_row_with_fewer_than_k_unmasked_posts_ends_with_minus_inf():
    """The caller's cue to rank that row on the full path."""
    q, pt = torch.ones(2, 1), torch.arange(300, dtype=torch.float32)[None, :]
    dense = np.zeros((2, 300), bool)
    dense[1, 5:] = True  # row 1 keeps 5 posts
    v, i, _ = factor_topk(q, pt, sp.csr_matrix(dense), 10, tile=256)
    assert torch.isfinite(v[0]).all() and i[0].tolist() == list(range(299, 289, -1))
    assert torch.isfinite(v[1, :5]).all() and i[1, :5].tolist() == [4, 3, 2, 1, 0]
    assert torch.isinf(v[1, 5:]).all()
