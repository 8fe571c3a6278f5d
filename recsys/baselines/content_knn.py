"""Content-only kNN: a user is the mean of the content features of their train posts; posts are
ranked by cosine similarity to it, so posts with no train interaction (cold) rank like any other.

Per modality m: post features X_m (N, D_m), optionally centred (mean over present posts
subtracted; non-negative features such as TikTok's otherwise give every pair a high cosine),
L2-normalised, zero where absent. Two ways to combine modalities:
    "mean":   score = mean_m cos(profile_m, x_m)        (profile_m = mean of history rows of X_m)
    "concat": score = cos(profile, [x_1, ..., x_M] / sqrt(M))   (one joint profile)
A user's profile is rebuilt from the history the evaluation holds for the split (`for_history`:
train, or train + valid on a temporal test); users with no history get the population prior.
"""

from __future__ import annotations

import time

import numpy as np
import scipy.sparse as sp
import torch

from recsys.baselines._common import EmbeddingScorer
from recsys.errors import ArtifactError, ConfigError
from recsys.interactions import InteractionData

COMBINE = ("mean", "concat")


def _normalize(x: np.ndarray) -> np.ndarray:
    n = np.linalg.norm(x, axis=1, keepdims=True)
    return np.where(n > 0, x / np.maximum(n, 1e-12), 0.0).astype(np.float32)


def fit(
    data: InteractionData,
    features: dict[str, tuple[np.ndarray, np.ndarray]] | None = None,
    combine: str = "concat",
    center: bool = True,
    modalities: list[str] | None = None,
) -> EmbeddingScorer:
    """features: {modality: (data float32 (N, D), present bool (N,))} aligned with data.post_ids."""
    if not features:
        raise ArtifactError("content-knn needs post features; the dataset has no feature store (run `recsys encode`)")
    if combine not in COMBINE:
        raise ConfigError(f"content-knn: combine must be one of {COMBINE}, got {combine!r}")
    names = sorted(features) if modalities is None else list(modalities)
    unknown = [m for m in names if m not in features]
    if unknown:
        raise ConfigError(f"content-knn: modalities {unknown} not in the feature store {sorted(features)}")
    t0 = time.perf_counter()
    item_parts = []
    for m in names:
        x, present = features[m]
        x = np.asarray(x, np.float32).copy()  # (N, D)
        if len(x) != data.n_posts:
            raise ConfigError(f"content-knn: features[{m}] has {len(x)} rows, expected {data.n_posts} posts")
        if center and present.any():
            x[present] -= x[present].mean(axis=0)
        x[~present] = 0.0
        item_parts.append(_normalize(x))
    item = np.concatenate(item_parts, axis=1)
    if combine == "concat":
        item = item / np.sqrt(len(names))

    def users(history: sp.csr_matrix) -> torch.Tensor:
        """(U, N) history -> (U, D) profiles: the mean of the history posts' normalised features."""
        h = history.tocsr().astype(np.float32)
        h.data[:] = 1.0
        h = sp.diags(1.0 / np.maximum(np.diff(h.indptr), 1)) @ h  # row-mean operator
        parts = [np.asarray(h @ item_parts[i], np.float32) for i in range(len(item_parts))]  # (U, D_m)
        if combine == "mean":
            return torch.from_numpy(np.concatenate([_normalize(p) / len(names) for p in parts], axis=1))
        return torch.from_numpy(_normalize(np.concatenate(parts, axis=1)))

    user = users(data.train)
    info = {
        "config": {"combine": combine, "center": center, "modalities": names},
        "fit_s": round(time.perf_counter() - t0, 3),
    }
    return EmbeddingScorer("content-knn", user, torch.from_numpy(item.astype(np.float32)), info, rebase=users)
