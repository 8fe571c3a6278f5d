"""The training graphs (`recsys.graph`): the masked adjacency gives the numbers the plain
construction gives, and the content item-item graph links nearest posts."""

import torch

from recsys.graph import TrainGraph, item_graph, normalized_adjacency, propagate


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
        assert torch.allclose(g.without(drop).to_dense(), want, atol=1e-7, rtol=0)


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
