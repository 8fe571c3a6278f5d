"""A small clustered world: users like the posts of one of 5 topics, with a popularity tilt
inside each topic; post features are the topic (one-hot + noise) in two modalities. Posts 95-99
are never in train (cold) but appear in valid/test."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from recsys.interactions import InteractionData

N_USERS, N_POSTS, N_TOPICS = 300, 100, 5
COLD = np.arange(95, 100)


def make_world(seed: int = 0) -> tuple[InteractionData, dict]:
    rng = np.random.default_rng(seed)
    topic = np.arange(N_POSTS) % N_TOPICS  # (N,)
    pop = 1.0 / (1 + np.arange(N_POSTS) // N_TOPICS) ** 0.7  # popularity tilt within a topic
    rows = {"train": [], "valid": [], "test": []}
    for u in range(N_USERS):
        t = u % N_TOPICS
        p = np.where(topic == t, pop, 0.01 * pop)
        p = p / p.sum()
        items = rng.choice(N_POSTS, size=10, replace=False, p=p)
        warm = [i for i in items if i not in COLD]
        cold = [i for i in items if i in COLD]
        held = cold + warm[: 2 - min(len(cold), 2)]  # 2 held-out items, cold ones first
        rest = [i for i in items if i not in held]
        rows["train"] += [(u, i) for i in rest]
        rows["valid"].append((u, held[0]))
        rows["test"].append((u, held[1]))
    mats = {
        s: sp.csr_matrix((np.ones(len(r), np.float32), tuple(np.array(r).T)), shape=(N_USERS, N_POSTS))
        for s, r in rows.items()
    }
    data = InteractionData(np.arange(N_USERS), np.arange(N_POSTS), dataset_name="world", fingerprint="w", **mats)
    onehot = np.eye(N_TOPICS, dtype=np.float32)[topic]
    feats = {
        "image": (onehot + 0.3 * rng.random((N_POSTS, N_TOPICS)).astype(np.float32), np.ones(N_POSTS, bool)),
        "audio": (np.hstack([onehot, rng.random((N_POSTS, 3)).astype(np.float32)]), np.arange(N_POSTS) % 7 != 0),
    }
    return data, feats


class RandomScorer:
    name = "random"

    def __init__(self, n_posts: int) -> None:
        self.g = torch.Generator().manual_seed(0)
        self.n = n_posts

    def score(self, u):
        return torch.rand(len(u), self.n, generator=self.g)


@pytest.fixture(scope="module")
def world():
    return make_world()
