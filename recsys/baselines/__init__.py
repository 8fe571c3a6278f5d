"""Baselines for offline evaluation. Each module has `fit(data, features=None, **cfg) -> scorer`
(a scorer as in `recsys.evaluation`, plus an `info` dict: config, fit seconds, selection).

    from recsys.baselines import get_baseline
    scorer = get_baseline("lightgcn")(data)              # valid-selected checkpoint
    evaluate(scorer, data, "test")

`features` (content-knn only): {modality: (data float32 (N, D), present bool (N,))} aligned with
`data.post_ids` (see `aligned_features`). Modules are imported only when their baseline is used.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from recsys.errors import UnknownIdError

# name -> module under recsys.baselines
BASELINES: dict[str, str] = {
    "popular": "popular",
    "itemknn": "itemknn",
    "bpr": "bpr",
    "lightgcn": "lightgcn",
    "content-knn": "content_knn",
}
# baselines that need the feature store
NEEDS_FEATURES = {"content-knn"}


def get_baseline(name: str) -> Callable[..., Any]:
    """The `fit` function of baseline `name`; UnknownIdError lists the known names."""
    if name not in BASELINES:
        raise UnknownIdError(f"unknown baseline {name!r}; known baselines: {', '.join(BASELINES)}")
    return importlib.import_module(f"recsys.baselines.{BASELINES[name]}").fit


def aligned_features(dataset_root: Path, post_ids: np.ndarray) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Every modality of the dataset's feature store, rows aligned with `post_ids`."""
    from recsys.features import load_features

    return {m: f.aligned(post_ids) for m, f in load_features(dataset_root).items()}
