"""LightGCN (He et al. 2020): ego embeddings E0 for users and posts, K propagations over the
symmetric-normalised user-post graph A_hat = D^-1/2 A D^-1/2, final embedding = mean(E0..EK);
BPR loss with one uniform negative, L2 on the batch's ego embeddings, Adam. The epoch with the
best VALID recall@20 is kept. Shapes: U users, N posts, d dim; graph (U+N, U+N)."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
import torch
from torch import nn

from recsys.baselines._common import EmbeddingScorer, train_bpr
from recsys.graph import SparseOperator
from recsys.interactions import InteractionData

DEFAULTS = dict(dim=64, layers=3, lr=5e-3, reg=1e-4, batch_size=2048, epochs=50, patience=3, seed=0)


def normalized_adjacency(train: sp.csr_matrix) -> torch.Tensor:
    """Sparse COO float32 (U+N, U+N), coalesced: [[0, R], [R^T, 0]] scaled by D^-1/2 on both sides
    (its own transpose, to the bit: d_r * d_c = d_c * d_r)."""
    n_users, n_posts = train.shape
    r = (train > 0).astype(np.float32)
    a = sp.bmat([[None, r], [r.T, None]], format="coo", dtype=np.float32)
    deg = np.asarray(a.sum(axis=1)).ravel()
    d = np.where(deg > 0, 1.0 / np.sqrt(np.maximum(deg, 1e-12)), 0.0)
    vals = d[a.row] * a.data * d[a.col]
    idx = torch.from_numpy(np.vstack([a.row, a.col]).astype(np.int64))
    n = n_users + n_posts
    return torch.sparse_coo_tensor(idx, torch.from_numpy(vals.astype(np.float32)), (n, n), check_invariants=False).coalesce()


class LightGCN(nn.Module):
    def __init__(self, train: sp.csr_matrix, dim: int, layers: int, reg: float, seed: int) -> None:
        super().__init__()
        self.n_users, self.n_posts = train.shape
        self.layers, self.reg = layers, reg
        g = torch.Generator().manual_seed(seed)
        self.ego = nn.Parameter(torch.randn(self.n_users + self.n_posts, dim, generator=g) * 0.1)  # (U+N, d)
        self.adj = SparseOperator(normalized_adjacency(train), symmetric=True)  # CSR products (`recsys.graph`)

    def propagate(self) -> torch.Tensor:
        e, out = self.ego, [self.ego]
        for _ in range(self.layers):
            e = self.adj @ e  # (U+N, d)
            out.append(e)
        return torch.stack(out).mean(0)  # (U+N, d)

    def embeddings(self) -> tuple[torch.Tensor, torch.Tensor]:
        e = self.propagate()
        return e[: self.n_users], e[self.n_users :]

    def bpr_loss(self, u: torch.Tensor, i: torch.Tensor, j: torch.Tensor) -> torch.Tensor:
        e = self.propagate()
        i, j = i + self.n_users, j + self.n_users
        x = (e[u] * (e[i] - e[j])).sum(-1)  # (B,)
        l2 = (self.ego[u].pow(2).sum() + self.ego[i].pow(2).sum() + self.ego[j].pow(2).sum()) / (2 * len(u))
        return nn.functional.softplus(-x).mean() + self.reg * l2


def fit(data: InteractionData, features=None, **cfg) -> EmbeddingScorer:
    cfg = {**DEFAULTS, **cfg}
    model = LightGCN(data.train, cfg["dim"], cfg["layers"], cfg["reg"], cfg["seed"])
    return train_bpr(model, data, "lightgcn", cfg)
