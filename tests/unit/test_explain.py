"""recsys.explain: the score's ID / content split against the model's own combine(), the content
modality."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from recsys import explain
from recsys.model import ModelConfig, Recommender


@pytest.mark.parametrize("scale", [0.5, 1.0, 2.0])
def test_id_share_matches_the_models_decomposition(scale):
    rng = np.random.default_rng(0)
    model = Recommender(ModelConfig(modalities=(("text", 8),), latent_dim=8, dim=16, content_scale=scale, use_id=False))
    content = torch.from_numpy(rng.standard_normal((6, 16)).astype(np.float32))  # un-normalised content parts
    id_part = torch.from_numpy(rng.standard_normal((6, 16)).astype(np.float32))
    id_part[0] = 0  # a post without an ID part
    p = model.norm_post(model.combine(content, id_part)).numpy()  # what the bundle stores
    u = rng.standard_normal(16).astype(np.float32)
    got = explain.id_share(u, p, content.numpy(), scale)
    # the truth from the known parts: p = (s c^ + i^) / ||s c^ + i^||
    c_hat = content.numpy() / np.linalg.norm(content.numpy(), axis=1, keepdims=True)
    i_hat = id_part.numpy() / np.maximum(np.linalg.norm(id_part.numpy(), axis=1, keepdims=True), 1e-12)
    lam = np.linalg.norm(scale * c_hat + i_hat, axis=1)
    t_c, t_i = scale * (c_hat @ u) / lam, (i_hat @ u) / lam
    np.testing.assert_allclose(t_c + t_i, p @ u, atol=1e-5)
    np.testing.assert_allclose(got, np.abs(t_i) / (np.abs(t_c) + np.abs(t_i)), atol=1e-4)
    assert got[0] == 0.0 and (got[1:] > 0).all()
    # one query per post (the cold channel's cold posts meet another user vector): row by row the same
    qs = rng.standard_normal((6, 16)).astype(np.float32)
    per_row = explain.id_share(qs, p, content.numpy(), scale)
    np.testing.assert_allclose(per_row, [explain.id_share(q, p[k:k + 1], content.numpy()[k:k + 1], scale)[0] for k, q in enumerate(qs)], atol=1e-6)
    # a content term outside <u, p> (the cold channel's content-key match) counts as content
    extra = rng.standard_normal(6).astype(np.float32)
    np.testing.assert_allclose(explain.id_share(u, p, content.numpy(), scale, extra), np.abs(t_i) / (np.abs(t_c + extra) + np.abs(t_i)), atol=1e-4)


def test_content_modality_picks_the_code_closest_to_the_history_post():
    rng = np.random.default_rng(1)
    names = ["text", "image", "video"]
    hist = np.zeros((3, 3, 8), np.float32)
    hist[:, 0] = rng.standard_normal(8)  # the history post has text only
    item = rng.standard_normal((3, 3, 8)).astype(np.float32)
    item[0, 1] = hist[0, 0] * 3  # item 0: its image code points where the history text does
    item[1, 2] = hist[1, 0] + 0.01  # item 1: its video code
    item[2] = 0  # item 2: no codes (an online post)
    item[1, 0] = -hist[1, 0]  # and item 1's text points away
    assert explain.content_modality(item, hist, names) == ["image", "video", "content"]
    # an absent modality never wins, however close its (zero) code
    item[0, 1] = 0
    assert explain.content_modality(item, hist, names)[0] != "image"


def test_dominant_modality():
    assert explain.dominant_modality(np.array([0.7, 0.2, np.nan]), ["text", "image", "video"]) == ["id", "image", "video"]
