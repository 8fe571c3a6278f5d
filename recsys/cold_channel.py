"""The cold channel: posts without an ID row (no train interaction: new posts, posts added live)
are scored by a user vector of their own, still with one inner product, so one FAISS index serves
both kinds of post.

Why: a user vector weighs its content part by `content_scale` s (recsys/model.py). A post the
model has ID rows for is matched on both parts; a cold post has only its content (and the ID rows
it borrows, `recsys.borrow`), and the weight that serves warm posts best is not the one that ranks
cold posts best among them and against the warm ones. The cold channel gives cold posts the user
vector combined with `cold_scale` (lam) on the user side, plus an offset `cold_offset` (c), and,
with `cold_key_weight` (beta) > 0, the content key match of item-based content kNN:

    user       [u, u_lam, beta h, 1]
    warm post  [p, 0,     0,      0]     score <u, p>
    cold post  [0, p,     k,      c]     score <u_lam, p> + beta cos(h, k) + c

k is the post's content key (its centred, L2-normalised latent, `recsys.borrow.borrow_keys`, the
key cold posts borrow ID rows by) and h the unit sum of the keys of the user's history
(`history_keys`): cos(h, k) ranks a new post by how close its content lies to what the user
engaged with, which the model's own vectors rank worse among new posts (TikTok valid, README).
Retrieval dims: 2d + 1, or 2d + Z + 1 with beta > 0 (the popularity blend's coordinate, if any,
comes after these). With lam = s, beta = 0 and c = 0 every score equals the channel-off score.
lam, beta and c are chosen on valid after training (`training/cold.py`); `ModelConfig.cold_scale`
0 = off: vectors keep d dims.

Shapes: N posts, B users, L history, d the model's dim, Z the latent (key) dim.
"""

from __future__ import annotations

import numpy as np


def retrieval_dim(d: int, z: int, key_weight: float) -> int:
    """The channel's retrieval dims for model dim d and latent dim z: 2d + 1, + z with beta > 0."""
    return 2 * d + 1 + (z if key_weight > 0 else 0)


def split_posts(vectors: np.ndarray, cold: np.ndarray, offset: float, keys: np.ndarray | None = None) -> np.ndarray:
    """Model post vectors float32 (N, d) + cold bool (N,) (no ID row) -> (N, 2d + 1): warm posts
    [p, 0, 0], cold posts [0, p, offset]; with the posts' content keys float32 (N, Z) (beta > 0)
    -> (N, 2d + Z + 1): warm [p, 0, 0, 0], cold [0, p, k, offset]."""
    v = np.asarray(vectors, np.float32)
    cold = np.asarray(cold, bool).reshape(-1, 1)
    parts = [np.where(cold, 0, v), np.where(cold, v, 0)]
    if keys is not None:
        parts.append(np.where(cold, np.asarray(keys, np.float32), 0))
    return np.concatenate(parts + [cold * np.float32(offset)], axis=1).astype(np.float32)


def join_users(users: np.ndarray, cold_users: np.ndarray, has_profile: np.ndarray,
               history_keys: np.ndarray | None = None, key_weight: float = 0.0) -> np.ndarray:
    """User vectors float32 (B, d) with `content_scale`, (B, d) with `cold_scale`, has_profile
    bool (B,) -> (B, 2d + 1) [u, u_lam, 1] (all zero without a profile: the population prior
    answers those users); with `history_keys` (B, Z) (beta = key_weight > 0) -> (B, 2d + Z + 1)
    [u, u_lam, beta h, 1]."""
    has = np.asarray(has_profile, np.float32).reshape(-1, 1)
    parts = [users, cold_users]
    if history_keys is not None:
        parts.append(np.float32(key_weight) * np.asarray(history_keys, np.float32) * has)
    return np.concatenate(parts + [has], axis=1).astype(np.float32)


def history_keys(keys: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """The content keys of B users' histories float32 (B, L, Z), mask bool (B, L) (False =
    padding) -> h float32 (B, Z): the unit sum of the keys (zero without history), so that
    <h, k> is the cosine of a post's key with the history's mean key."""
    s = (np.asarray(keys, np.float32) * np.asarray(mask, bool)[..., None]).sum(1)
    n = np.linalg.norm(s, axis=1, keepdims=True)
    return (s / np.maximum(n, 1e-12)).astype(np.float32)


def offsets_by_counts(vectors: np.ndarray, d: int, z: int, key_weight: float, offset: float, counts: np.ndarray) -> np.ndarray:
    """With the popularity blend on: retrieval post vectors (N, 2d [+ Z] + 1 + 1) with the offset
    column set to c for cold posts without counts float (N,), 0 for cold posts with counts (a
    copy). c is the prior of a new post nobody has engaged with: valid chooses it on cold posts,
    none of which has counts when valid is scored; once a post has counts, the blend's coordinate
    carries it on them, as it carries every post (offline and served alike)."""
    v = np.array(vectors, np.float32)
    _, cold = model_part(v, d)
    v[:, retrieval_dim(d, z, key_weight) - 1] = np.where(cold & ~(np.asarray(counts, np.float64) > 0), np.float32(offset), 0)
    return v


def model_part(vectors: np.ndarray, d: int) -> tuple[np.ndarray, np.ndarray]:
    """Retrieval post vectors (N, 2d + 1 [+ Z] [+ more]) -> (the model's post vectors (N, d), cold
    bool (N,)): the inverse of `split_posts`."""
    v = np.asarray(vectors, np.float32)
    warm, cold_part = v[:, :d], v[:, d:2 * d]
    cold = ~np.any(warm != 0, axis=1) & np.any(cold_part != 0, axis=1)
    return warm + cold_part, cold


def post_query(vectors: np.ndarray, d: int) -> np.ndarray:
    """Retrieval post vectors (N, D = 2d + 1 [+ Z] [+ more]) -> query vectors (N, D) whose inner
    product with any retrieval post vector is the cosine of the two posts' model vectors:
    [p, p, 0, ...] (for "similar posts", where no user vector is involved)."""
    p, _ = model_part(vectors, d)
    out = np.zeros_like(np.asarray(vectors, np.float32))
    out[:, :d], out[:, d:2 * d] = p, p
    return out
