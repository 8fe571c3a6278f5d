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


def test_id_shrink_leans_a_little_known_user_on_their_history():
    """id_shrink = kappa: a known user's ID part is w unit(row) + (1 - w) unit(bag), w = n / (n + kappa)
    (n = the row's train interactions); kappa = 0 keeps the row alone; unknown users get the bag."""
    import dataclasses

    import pytest
    import torch.nn.functional as F

    from recsys.model import ModelConfig, Recommender, combine_user, user_parts

    torch.manual_seed(0)
    model = Recommender(ModelConfig(modalities=(("x", 4),), n_users=3, n_posts=5, latent_dim=4, dim=6, max_history=3)).eval()
    user_table, post_table = torch.randn(3, 6), torch.randn(5, 6)
    support = torch.tensor([1.0, 30.0, 4.0])
    hist_rows = torch.tensor([[0, 2, -2], [1, 3, 4], [-2, -2, -2]])
    lat = torch.randn(3, 3, 4)
    users = torch.tensor([0, 1, 2])

    def id_part(kappa: float) -> torch.Tensor:
        """The ID part the model combined with the content part (content_scale 0 isolates it)."""
        model.cfg = dataclasses.replace(model.cfg, id_shrink=kappa, content_scale=0.0)
        content, ids, has = user_parts(model, lat, hist_rows, users, user_table, post_table, support)
        assert has.all()
        return combine_user(model, content, ids)

    bag = torch.stack([post_table[[0, 2]].mean(0), post_table[[1, 3, 4]].mean(0)])
    row = user_table[:2]
    for kappa in (0.0, 5.0):
        w = torch.ones(2, 1) if kappa == 0 else (support[:2] / (support[:2] + kappa)).unsqueeze(1)
        want = F.normalize(w * F.normalize(row, dim=-1) + (1 - w) * F.normalize(bag, dim=-1), dim=-1)
        got = id_part(kappa)
        torch.testing.assert_close(got[:2], want, atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(got[2], F.normalize(user_table[2], dim=-1), atol=1e-5, rtol=1e-5)  # no bag: the row
    model.cfg = dataclasses.replace(model.cfg, id_shrink=5.0)
    with pytest.raises(ValueError, match="user_support"):
        user_parts(model, lat, hist_rows, users, user_table, post_table)


def test_training_shrinks_a_known_users_id_part_as_inference_does():
    """train_id_shrink = kappa: the training loss sees the ID part `shrink_id` gives (the function
    `user_parts` serves with), in both propagation modes: kappa -> infinity is the bag alone
    (as if the row were always dropped), kappa = 0 the row alone."""
    from recsys.model import Batch, ModelConfig, Recommender

    feats = {"x": torch.randn(6, 4, generator=torch.Generator().manual_seed(1))}
    present = {"x": torch.ones(6, dtype=torch.bool)}
    users, posts = torch.tensor([0, 0, 1, 1, 1, 2, 2]), torch.tensor([0, 1, 2, 3, 4, 0, 5])
    batch = Batch(users=torch.tensor([0, 1, 2]), posts=torch.tensor([1, 4, 5]),
                  history=torch.tensor([[-1, 0], [2, 3], [-1, 0]]), edge_idx=torch.tensor([1, 4, 6]))

    def loss(mode: str, **kw) -> torch.Tensor:
        kw = {"dropout": 0.0, "modality_dropout": 0.0, "post_id_dropout": 0.0, "user_id_dropout": 0.0, **kw}
        cfg = ModelConfig(modalities=(("x", 4),), n_users=3, n_posts=6, dim=4, latent_dim=4, hidden=8, max_history=2, propagation=mode, **kw)
        torch.manual_seed(0)
        model = Recommender(cfg)
        model.ids.reset_parameters(seed=0)
        model.set_graph(users, posts)
        model.train()
        model.before_step(0)  # cached mode: the snapshot of the propagation
        torch.manual_seed(0)
        return model.losses(batch, feats, present)["retrieval"]

    for mode in ("full", "cached"):
        row_alone = loss(mode)
        assert torch.equal(loss(mode, train_id_shrink=0.0), row_alone)
        bag_alone = loss(mode, user_id_dropout=1.0)  # every user's ID part = the ID bag of their history
        assert not torch.allclose(bag_alone, row_alone)
        torch.testing.assert_close(loss(mode, train_id_shrink=1e9), bag_alone)
        between = loss(mode, train_id_shrink=1.0)
        assert not torch.allclose(between, row_alone) and not torch.allclose(between, bag_alone)
