import torch

from recsys.borrow import TEMPERATURE, borrow_keys, borrowed_rows
from recsys.model import ModelConfig, Recommender


def test_borrowed_rows_weight_the_k_nearest_and_can_exclude_a_row():
    keys = borrow_keys(torch.tensor([[1.0, 0.0], [0.8, 0.6], [0.0, 1.0], [-1.0, 0.0]]), torch.zeros(2))["post_keys"]
    rows = torch.arange(8.0).reshape(4, 2)  # row i = [2i, 2i + 1]
    q = keys[:1]  # the first post's own key
    got = borrowed_rows(q, keys, rows, k=2)
    w = torch.softmax(torch.tensor([1.0, 0.8]) / TEMPERATURE, 0)  # itself (cos 1) and post 1 (cos 0.8)
    assert torch.allclose(got[0], w[0] * rows[0] + w[1] * rows[1])
    # excluded: itself may not donate; the next nearest take its place
    ex = borrowed_rows(q, keys, rows, k=2, exclude=torch.tensor([0]))
    w = torch.softmax(torch.tensor([0.8, 0.0]) / TEMPERATURE, 0)
    assert torch.allclose(ex[0], w[0] * rows[1] + w[1] * rows[2])
    assert torch.allclose(borrowed_rows(q, keys, rows, k=10, exclude=torch.tensor([-1])), borrowed_rows(q, keys, rows, k=4))  # k clamps
    assert borrowed_rows(q[:0], keys, rows, k=2).shape == (0, 2)


def test_a_dropped_positive_borrows_like_a_cold_post_without_itself():
    torch.manual_seed(0)
    cfg = ModelConfig(modalities=(("x", 4),), n_users=3, n_posts=6, dim=4, latent_dim=4, hidden=8, cold_knn=2, borrow_dropped=True)
    model = Recommender(cfg)
    model.set_graph(torch.tensor([0, 0, 1, 2, 2]), torch.tensor([0, 1, 2, 3, 4]))  # post 5 has no ID row
    latents = torch.randn(6, 4)
    p_tab = torch.randn(6, 4, requires_grad=True)
    posts = torch.tensor([1, 2, 3])
    got = model._borrowed_for_dropped(latents, p_tab, posts, torch.tensor([True, False, True]))
    assert torch.equal(got[1], torch.zeros(4))  # kept: nothing borrowed
    keys = borrow_keys(latents[:5])  # the ID-row posts' keys, centred on them (as exported)
    for b, post in ((0, 1), (2, 3)):
        q = borrow_keys(latents[post : post + 1], keys["key_mean"])["post_keys"]
        others = [i for i in range(5) if i != post]
        want = borrowed_rows(q, keys["post_keys"][others], p_tab[others], 2)
        assert torch.allclose(got[b], want[0], atol=1e-6)
    got.sum().backward()  # the donors' rows learn
    assert p_tab.grad[:5].abs().sum() > 0 and torch.equal(p_tab.grad[5], torch.zeros(4))
