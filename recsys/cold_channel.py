"""The cold channel: posts without an ID row (no train interaction: new posts, posts added live)
are scored by a user vector of their own, still with one inner product, so one FAISS index serves
both kinds of post.

Why: a user vector weighs its content part by `content_scale` s (recsys/model.py). A post the
model has ID rows for is matched on both parts; a cold post has only its content (and the ID rows
it borrows, `recsys.borrow`), and the weight that serves warm posts best is not the one that ranks
cold posts best among them and against the warm ones. The cold channel gives cold posts the user
vector combined with `cold_scale` (lam) on the user side, plus an offset `cold_offset` (c):

    user       [u, u_lam, 1]
    warm post  [p, 0, 0]        score <u, p>
    cold post  [0, p, c]        score <u_lam, p> + c

(d -> 2d + 1 retrieval dims; the popularity blend's coordinate, if any, comes after these.) With
lam = s and c = 0 every score equals the channel-off score. lam and c are chosen on valid after
training (`training/cold.py`); `ModelConfig.cold_scale` 0 = off: vectors keep d dims.

Shapes: N posts, B users, d the model's dim.
"""

from __future__ import annotations

import numpy as np


def split_posts(vectors: np.ndarray, cold: np.ndarray, offset: float) -> np.ndarray:
    """Model post vectors float32 (N, d) + cold bool (N,) (no ID row) -> (N, 2d + 1): warm posts
    [p, 0, 0], cold posts [0, p, offset]."""
    v = np.asarray(vectors, np.float32)
    cold = np.asarray(cold, bool).reshape(-1, 1)
    return np.concatenate([np.where(cold, 0, v), np.where(cold, v, 0), cold * np.float32(offset)], axis=1).astype(np.float32)


def join_users(users: np.ndarray, cold_users: np.ndarray, has_profile: np.ndarray) -> np.ndarray:
    """User vectors float32 (B, d) with `content_scale`, (B, d) with `cold_scale`, has_profile
    bool (B,) -> (B, 2d + 1) [u, u_lam, 1] (all zero without a profile: the population prior
    answers those users)."""
    ones = np.asarray(has_profile, np.float32).reshape(-1, 1)
    return np.concatenate([users, cold_users, ones], axis=1).astype(np.float32)


def model_part(vectors: np.ndarray, d: int) -> tuple[np.ndarray, np.ndarray]:
    """Retrieval post vectors (N, 2d + 1 [+ more]) -> (the model's post vectors (N, d), cold bool
    (N,)): the inverse of `split_posts`."""
    v = np.asarray(vectors, np.float32)
    warm, cold_part = v[:, :d], v[:, d:2 * d]
    cold = ~np.any(warm != 0, axis=1) & np.any(cold_part != 0, axis=1)
    return warm + cold_part, cold


def post_query(vectors: np.ndarray, d: int) -> np.ndarray:
    """Retrieval post vectors (N, D = 2d + 1 [+ more]) -> query vectors (N, D) whose inner product
    with any retrieval post vector is the cosine of the two posts' model vectors: [p, p, 0, ...]
    (for "similar posts", where no user vector is involved)."""
    p, _ = model_part(vectors, d)
    out = np.zeros_like(np.asarray(vectors, np.float32))
    out[:, :d], out[:, d:2 * d] = p, p
    return out
