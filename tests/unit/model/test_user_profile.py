import torch

from recsys.user_profile import IdTables, UserProfile, UserProfileConfig, id_bag


def test_profile_shapes_masking_and_empty_history():
    torch.manual_seed(0)
    prof = UserProfile(UserProfileConfig(latent_dim=8, dim=6, max_history=4, hidden=16, dropout=0.0)).eval()
    hist = torch.randn(3, 4, 8)
    mask = torch.tensor([[True] * 4, [False, False, True, True], [False] * 4])
    out = prof(hist, mask)
    assert out.shape == (3, 6) and out.dtype == torch.float32
    assert torch.equal(out[2], torch.zeros(6))  # no history -> zero profile
    hist2 = hist.clone()
    hist2[1, :2] = 1e3  # padding content must not matter
    assert torch.allclose(prof(hist2, mask)[1], out[1])


def test_id_tables_all_rows_match_weights():
    ids = IdTables(n_users=5, n_posts=7, dim=4)
    ids.reset_parameters(std=1.0, seed=1)
    u, p, a = ids.all_rows()
    assert u.shape == (5, 4) and p.shape == (7, 4) and a is None  # no author table unless asked
    assert torch.allclose(u, ids.ebc.embedding_bags["user"].weight)
    assert torch.allclose(p, ids.ebc.embedding_bags["post"].weight)
    (u.sum() + p.sum()).backward()  # differentiable through the EBC
    assert ids.ebc.embedding_bags["post"].weight.grad is not None


def test_id_tables_author_table_rows():
    ids = IdTables(n_users=5, n_posts=7, dim=4, n_authors=9)  # the largest table sets the KJT stride
    ids.reset_parameters(std=1.0, seed=1)
    u, p, a = ids.all_rows()
    assert (u.shape, p.shape, a.shape) == ((5, 4), (7, 4), (9, 4))
    assert torch.allclose(a, ids.ebc.embedding_bags["author"].weight)
    assert torch.allclose(p, ids.ebc.embedding_bags["post"].weight)
    a.sum().backward()
    assert ids.ebc.embedding_bags["author"].weight.grad is not None


def test_id_bag_means_valid_rows():
    table = torch.arange(12, dtype=torch.float32).view(6, 2)
    bag, has = id_bag(table, torch.tensor([[0, 2, -1], [-1, -1, -1], [-2, 5, 5]]))
    assert torch.allclose(bag[0], (table[0] + table[2]) / 2)
    assert torch.equal(bag[1], torch.zeros(2)) and not has[1] and has[0]
    assert torch.allclose(bag[2], table[5])


def test_item_graph_links_each_post_to_its_nearest_posts_by_content():
    import torch

    from recsys.model import item_graph

    x = torch.tensor([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0], [0.1, 0.9]])
    a = torch.tensor([[1.0], [1.0], [-1.0], [-1.0]])
    g = item_graph({"x": x}, {"x": torch.tensor([True, True, True, False])}, k=1).to_dense()
    assert g[0, 1] == 1 and g[1, 0] == 1 and g[2, 1] == 1  # nearest present post, never itself
    assert g[3].sum() == 0 and g[:, 3].sum() == 0 and g.diagonal().sum() == 0  # absent modality: no edge
    both = item_graph({"x": x, "a": a}, {"x": torch.ones(4, dtype=torch.bool), "a": torch.ones(4, dtype=torch.bool)}, k=1).to_dense()
    assert torch.allclose(both.sum(1), torch.ones(4))  # averaged over the post's modalities
    assert item_graph({"x": x}, {"x": torch.ones(4, dtype=torch.bool)}, k=0) is None
