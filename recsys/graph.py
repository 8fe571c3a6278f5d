"""The training graphs of the model (`recsys.model`): the user-post bipartite graph, its
LightGCN propagation, and the content item-item graph.

Shape legend: E train edges (user row, post row), U users, N posts, d dim, n = U + N nodes.

Training with full propagation (`ModelConfig.propagation`) propagates every ID row over the
whole graph at every step, without the batch's own edges (`mask_target_edges`).
`TrainGraph.without(drop)` builds that masked adjacency from the full graph's sorted entries (the
batch's entries left out, the degrees of their nodes lowered) instead of sorting 2E entries
again: the same matrix to the bit, 0.30-0.39 s -> 0.055 s per step at 800k edges (of a ~2 s
step), 0.021 s -> 0.005 s at TikTok's 60k (`bench/graph_step.py`).

Products with a graph go through `SparseOperator`: CSR kernels forward and backward (the backward
multiplies by the transpose, which for the symmetric adjacency is the matrix itself) instead of
`torch.sparse.mm` on COO, whose backward transposes and sorts the matrix again at every step. Same
numbers to the bit; three layers forward + backward at 256-d 2.4x faster at TikTok's size (0.202 ->
0.084 s), 2.2x at 237k edges, 3.8x at 787k edges (`bench/graph_step.py`, docs/scaling.md).
"""

from __future__ import annotations

import warnings

import torch


def normalized_adjacency(users: torch.Tensor, posts: torch.Tensor, n_users: int, n_posts: int) -> torch.Tensor:
    """Symmetric-normalised bipartite adjacency D^-1/2 A D^-1/2, sparse float32 (U+N, U+N)."""
    n = n_users + n_posts
    rows = torch.cat([users, posts + n_users])
    cols = torch.cat([posts + n_users, users])
    deg = torch.bincount(rows, minlength=n).float()
    dinv = deg.clamp_min(1).pow(-0.5)
    vals = dinv[rows] * dinv[cols]
    return torch.sparse_coo_tensor(torch.stack([rows, cols]), vals, (n, n), check_invariants=False).coalesce()


class _Product(torch.autograd.Function):
    """a @ x with the gradient flowing to the dense x only: a, a_t CSR (n, m), (m, n); x (m, d)."""

    @staticmethod
    def forward(ctx, a: torch.Tensor, a_t: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        ctx.a_t = a_t
        return torch.sparse.mm(a, x)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        return None, None, torch.sparse.mm(ctx.a_t, grad)


class SparseOperator:
    """A fixed sparse matrix (n, m) for `op @ x`, x dense (m, d) -> (n, d), differentiable in x.

    Built from a coalesced COO matrix; `symmetric=True` says the matrix is its own transpose (the
    normalised adjacency of `normalized_adjacency` and `TrainGraph.without`), so the backward needs
    no transposed copy. Gives the numbers `torch.sparse.mm(coo, x)` and its gradient give, to the bit
    where x has 32 columns or more (every model width; with 8 or 16 torch's kernels sum in another
    order and the last bit may differ): tests/unit/model/test_graph.py."""

    def __init__(self, coo: torch.Tensor, symmetric: bool = False) -> None:
        if coo.layout != torch.sparse_coo or coo.dim() != 2:
            raise ValueError(f"SparseOperator needs a 2-d sparse COO matrix, got layout {coo.layout}, {coo.dim()} dims")
        if symmetric and coo.shape[0] != coo.shape[1]:
            raise ValueError(f"a symmetric SparseOperator needs a square matrix, got shape {tuple(coo.shape)}")
        coo = coo.coalesce()
        with warnings.catch_warnings():  # "sparse CSR support is in beta": the kernels used here are the stable ones
            warnings.simplefilter("ignore", UserWarning)
            self.csr = coo.to_sparse_csr()
            self.csr_t = self.csr if symmetric else coo.t().coalesce().to_sparse_csr()
        self.shape = tuple(coo.shape)

    def __matmul__(self, x: torch.Tensor) -> torch.Tensor:
        return _Product.apply(self.csr, self.csr_t, x)

    def __deepcopy__(self, memo: dict) -> "SparseOperator":
        return self  # never changed after it is built, and CSR tensors cannot be deep-copied (a model copy shares it)


def propagate(adj: torch.Tensor | None, user: torch.Tensor, post: torch.Tensor, layers: int) -> tuple[torch.Tensor, torch.Tensor]:
    """LightGCN: mean of E, AE, ..., A^k E. user (U, d), post (N, d) -> same shapes; `adj` a
    normalised adjacency (`normalized_adjacency`, `TrainGraph`: symmetric, sparse COO)."""
    if adj is None or layers <= 0:
        return user, post
    op = SparseOperator(adj, symmetric=True)
    e = torch.cat([user, post])  # (U+N, d)
    acc = e
    for _ in range(layers):
        e = op @ e
        acc = acc + e
    acc = acc / (layers + 1)
    pu, pp = torch.split(acc, [len(user), len(post)])  # one cat in the backward (slices zero-fill (U+N, d) each)
    return pu, pp


class TrainGraph:
    """The train edges as a normalised adjacency, and the same adjacency without some of them.

    users, posts: int64 (E,) edge list (user rows, post rows). `adj` equals
    `normalized_adjacency(users, posts, ...)`; `without(drop)` equals it over the edges whose
    positions are not in `drop` (the same entries, values and products)."""

    def __init__(self, users: torch.Tensor, posts: torch.Tensor, n_users: int, n_posts: int) -> None:
        self.users, self.posts, self.n_users, self.n = users, posts, n_users, n_users + n_posts
        self.adj = normalized_adjacency(users, posts, n_users, n_posts)
        self._mask: tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None = None  # built by the first `without`

    def _mask_state(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(entry int64 (2E,): the adjacency entry of each directed edge, count float (nnz,): edges
        per entry, deg float (n,): node degrees), built once (cached propagation never needs it)."""
        if self._mask is None:
            idx = self.adj.indices()  # (2, nnz) sorted row-major
            rows = torch.cat([self.users, self.posts + self.n_users])  # (2E,) both directions
            cols = torch.cat([self.posts + self.n_users, self.users])
            entry = torch.searchsorted(idx[0] * self.n + idx[1], rows * self.n + cols)
            count = torch.bincount(entry, minlength=idx.shape[1]).float()
            self._mask = (entry, count, torch.bincount(rows, minlength=self.n).float())
        return self._mask

    def without(self, drop: torch.Tensor) -> torch.Tensor:
        """drop: int64 (B,) positions in the edge list -> the normalised adjacency of the other
        edges, sparse float32 (n, n), coalesced: the same entries and values as building it from
        those edges (`normalized_adjacency`)."""
        entry, count, deg = self._mask_state()
        idx, e = self.adj.indices(), len(self.users)
        gone = torch.cat([entry[drop], entry[drop + e]])  # (2B,)
        count = count - torch.bincount(gone, minlength=len(count)).float()
        nodes = torch.cat([self.users[drop], self.posts[drop] + self.n_users])
        dinv = (deg - torch.bincount(nodes, minlength=self.n).float()).clamp_min(1).pow(-0.5)
        keep = count > 0  # the dropped entries leave (a subset keeps the sorted order: no sort)
        idx, count = idx[:, keep], count[keep]
        vals = dinv[idx[0]] * dinv[idx[1]] * count
        return torch.sparse_coo_tensor(idx, vals, (self.n, self.n), is_coalesced=True, check_invariants=False)


def item_graph(feats: dict[str, torch.Tensor], present: dict[str, torch.Tensor], k: int, chunk: int = 2048) -> torch.Tensor | None:
    """Frozen content item-item graph, sparse float32 (N, N): for each modality, each post with it
    links to its k nearest posts with it (cosine of the features, itself excluded), weight 1/k;
    the modality graphs are averaged over the modalities a post has. None when k <= 0.
    O(N^2 D) in `chunk`-row blocks: meant for graphs trained with full propagation."""
    if k <= 0 or not feats:
        return None
    n = len(next(iter(present.values())))
    rows, cols, vals = [], [], []
    n_mod = torch.zeros(n)
    for m, x in feats.items():
        have = torch.nonzero(present[m]).squeeze(1)
        if len(have) <= 1:
            continue
        kk = min(k, len(have) - 1)
        xm = torch.nn.functional.normalize(x[have].float(), dim=1)  # (n_m, D)
        n_mod[have] += 1
        for s in range(0, len(have), chunk):
            sim = xm[s : s + chunk] @ xm.T  # (c, n_m)
            sim[torch.arange(len(sim)), torch.arange(s, s + len(sim))] = -2.0  # not itself
            nb = sim.topk(kk, dim=1).indices  # (c, kk)
            rows.append(have[s : s + len(sim)].repeat_interleave(kk))
            cols.append(have[nb.reshape(-1)])
            vals.append(torch.full((len(sim) * kk,), 1.0 / kk))
    if not rows:
        return None
    r, c, v = torch.cat(rows), torch.cat(cols), torch.cat(vals)
    v = v / n_mod[r].clamp_min(1)
    return torch.sparse_coo_tensor(torch.stack([r, c]), v, (n, n), check_invariants=False).coalesce()
