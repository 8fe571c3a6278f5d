"""The training graphs (`recsys.graph`): the masked adjacency gives the numbers the plain
construction gives, products through `SparseOperator` give torch.sparse.mm's numbers, and the
content item-item graph links nearest posts."""

import torch

from recsys.graph import SparseOperator, TrainGraph, item_graph, normalized_adjacency, propagate


def _edges(seed: int, n_users: int, n_posts: int, n: int) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, n_users, (n,), generator=g), torch.randint(0, n_posts, (n,), generator=g)


def test_the_train_graph_without_edges_is_the_adjacency_of_the_rest():
    """Dropped edges (a batch's targets) leave the graph and lower their nodes' degrees, exactly as
    building the adjacency of the remaining edges does; repeated edges drop one at a time."""
    users, posts = _edges(0, 30, 20, 400)  # repeats included
    g = TrainGraph(users, posts, 30, 20)
    assert torch.equal(g.adj.to_dense(), normalized_adjacency(users, posts, 30, 20).to_dense())
    for drop in (torch.tensor([0, 5, 17]), torch.arange(0, 400, 3), torch.tensor([], dtype=torch.int64)):
        keep = torch.ones(400, dtype=torch.bool)
        keep[drop] = False
        want = normalized_adjacency(users[keep], posts[keep], 30, 20).to_dense()
        masked = g.without(drop).to_dense()
        assert torch.allclose(masked, want, atol=1e-7, rtol=0)
        assert torch.equal(masked, masked.T)  # to the bit: propagation's backward multiplies by the matrix itself


def test_masked_propagation_and_its_gradient_are_bit_identical_to_a_rebuilt_graph():
    """Training's numbers do not move: unique edges (training's histories have no repeats),
    two layers over `TrainGraph.without` against the adjacency rebuilt from the kept edges."""
    users, posts = _edges(1, 50, 40, 600)
    key = torch.unique(users * 40 + posts)
    users, posts = key // 40, key % 40
    drop = torch.arange(0, len(users), 7)
    keep = torch.ones(len(users), dtype=torch.bool)
    keep[drop] = False
    plain = normalized_adjacency(users[keep], posts[keep], 50, 40)
    masked = TrainGraph(users, posts, 50, 40).without(drop)
    x0 = torch.randn(90, 8, generator=torch.Generator().manual_seed(2))
    xa, xb = x0.clone().requires_grad_(), x0.clone().requires_grad_()
    ya = torch.sparse.mm(plain, torch.sparse.mm(plain, xa))
    yb = torch.sparse.mm(masked, torch.sparse.mm(masked, xb))
    w = torch.randn_like(ya)
    (ya * w).sum().backward()
    (yb * w).sum().backward()
    assert torch.equal(ya, yb) and torch.equal(xa.grad, xb.grad)
    pu, pp = propagate(masked, x0[:50], x0[50:], 3)
    assert pu.shape == (50, 8) and pp.shape == (40, 8)


def test_item_graph_links_each_post_to_its_nearest_posts_by_content():
    import torch

    from recsys.graph import item_graph

    x = torch.tensor([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0], [0.1, 0.9]])
    a = torch.tensor([[1.0], [1.0], [-1.0], [-1.0]])
    g = item_graph({"x": x}, {"x": torch.tensor([True, True, True, False])}, k=1).to_dense()
    assert g[0, 1] == 1 and g[1, 0] == 1 and g[2, 1] == 1  # nearest present post, never itself
    assert g[3].sum() == 0 and g[:, 3].sum() == 0 and g.diagonal().sum() == 0  # absent modality: no edge
    both = item_graph({"x": x, "a": a}, {"x": torch.ones(4, dtype=torch.bool), "a": torch.ones(4, dtype=torch.bool)}, k=1).to_dense()
    assert torch.allclose(both.sum(1), torch.ones(4))  # averaged over the post's modalities
    assert item_graph({"x": x}, {"x": torch.ones(4, dtype=torch.bool)}, k=0) is None


def _layers_and_grad(product, x0: torch.Tensor, w: torch.Tensor, layers: int) -> tuple[torch.Tensor, torch.Tensor]:
    """sum of A^i x0 over i = 1..layers, `product(x)` = A x, and d(<., w>)/dx0."""
    x = x0.clone().requires_grad_()
    e, acc = x, 0
    for _ in range(layers):
        e = product(e)
        acc = acc + e
    (acc * w).sum().backward()
    return acc.detach(), x.grad


def test_the_sparse_operator_gives_sparse_mm_numbers_and_gradients_to_the_bit():
    """Training's numbers do not move with the CSR kernels: the masked adjacency (symmetric, the
    backward reuses the matrix) and the item graph (not symmetric: its transpose), 3 products, at a
    model's width (64; rows of 8 or 16 floats take another summation order in torch's kernels and
    may differ in the last bit)."""
    users, posts = _edges(3, 60, 45, 700)
    key = torch.unique(users * 45 + posts)
    users, posts = key // 45, key % 45
    adj = TrainGraph(users, posts, 60, 45).without(torch.arange(0, len(users), 5))
    feats = torch.randn(45, 6, generator=torch.Generator().manual_seed(4))
    items = item_graph({"x": feats}, {"x": torch.ones(45, dtype=torch.bool)}, k=3)
    gen = torch.Generator().manual_seed(5)
    for a, sym in ((adj, True), (items, False)):
        x0, w = torch.randn(a.shape[1], 64, generator=gen), torch.randn(a.shape[0], 64, generator=gen)
        want, want_grad = _layers_and_grad(lambda e, a=a: torch.sparse.mm(a, e), x0, w, 3)
        op = SparseOperator(a, symmetric=sym)
        got, got_grad = _layers_and_grad(op.__matmul__, x0, w, 3)
        assert torch.equal(got, want) and torch.equal(got_grad, want_grad)
    assert not torch.equal(items.to_dense(), items.to_dense().T)  # the item graph case does need its transpose
    import copy

    assert copy.deepcopy({"op": op})["op"] is op  # a model copy (training's EMA evaluation) shares it


def test_propagation_is_the_mean_of_the_layers():
    users, posts = _edges(6, 20, 10, 80)
    adj = normalized_adjacency(users, posts, 20, 10)
    x = torch.randn(30, 4, generator=torch.Generator().manual_seed(7))
    dense = adj.to_dense()
    want = (x + dense @ x + dense @ dense @ x) / 3
    pu, pp = propagate(adj, x[:20], x[20:], 2)
    assert torch.allclose(torch.cat([pu, pp]), want, atol=1e-6)


def test_a_sparse_operator_refuses_what_it_cannot_multiply():
    import pytest

    with pytest.raises(ValueError, match="sparse COO"):
        SparseOperator(torch.eye(3))
    with pytest.raises(ValueError, match="square"):
        SparseOperator(torch.ones(2, 3).to_sparse(), symmetric=True)
