"""Seeded clustered vectors and a Catalogue built from them (real FAISS, no model)."""

from __future__ import annotations

import numpy as np
import polars as pl

from index.build import Catalogue


def clustered(n: int, d: int, n_clusters: int = 32, seed: int = 0, noise: float = 0.35) -> np.ndarray:
    """float32 (n, d) unit vectors around `n_clusters` random centres."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((n_clusters, d)).astype(np.float32)
    x = centres[rng.integers(0, n_clusters, n)] + noise * rng.standard_normal((n, d)).astype(np.float32)
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def catalogue(n: int = 2000, d: int = 16, z: int = 8, n_users: int = 50, seed: int = 0) -> Catalogue:
    rng = np.random.default_rng(seed)
    vectors = clustered(n, d, seed=seed)
    post_ids = rng.permutation(np.arange(1000, 1000 + n)).astype(np.int64)
    created = (1_700_000_000_000_000 + rng.integers(0, 10**12, n)).astype(np.int64)
    hist = [rng.choice(post_ids, rng.integers(1, 20), replace=False).tolist() for _ in range(n_users)]
    histories = pl.DataFrame(
        {"user_id": np.arange(n_users, dtype=np.int64), "history": hist, "seen": [sorted(h) for h in hist]},
        schema={"user_id": pl.Int64, "history": pl.List(pl.Int64), "seen": pl.List(pl.Int64)},
    )
    return Catalogue(
        post_ids=post_ids,
        author_ids=rng.integers(0, 40, n).astype(np.int64),
        created_at_us=created,
        latents=vectors[:, :z].copy(),
        vectors=vectors,
        popularity=rng.integers(0, 100, n).astype(np.int64),
        histories=histories,
    )
