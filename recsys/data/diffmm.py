"""Importer for the DiffMM / MMSSL layout:
    trnMat.pkl, valMat.pkl, tstMat.pkl   pickled scipy coo_matrix (users x items)
    <modality>_feat.npy                  (items, D) features, e.g. image_feat.npy, audio_feat.npy

Post ids are the item column indexes, user ids the row indexes. The three matrices become one
interactions table plus splits; each feature file becomes a modality of the feature store
(content_hash = the .npy file's sha256, so re-importing identical files changes nothing).
Test scoring masks train and validation items (identical figures to masking train only here,
since each validation item is one per user and disjoint from test).
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import polars as pl
import scipy.sparse as sp

from recsys.data.common import bare_posts, feature_files, read_feature_file, save_precomputed_modality
from recsys.data.safe_pickle import safe_load
from recsys.dataset import Dataset, save_dataset
from recsys.errors import SchemaError

logger = logging.getLogger(__name__)

SPLIT_FILES = {"train": "trnMat.pkl", "valid": "valMat.pkl", "test": "tstMat.pkl"}


def is_diffmm(src: Path) -> bool:
    return all((Path(src) / f).is_file() for f in SPLIT_FILES.values())


def import_diffmm(src: Path, out: Path, name: str | None = None) -> tuple[Dataset, dict]:
    """Convert `src` (DiffMM layout) into a recsys dataset at `out`. Returns (dataset, report)."""
    src, out = Path(src), Path(out)
    mats = {}
    for split, fname in SPLIT_FILES.items():
        m = safe_load(src / fname)
        if not sp.issparse(m):
            raise SchemaError(f"{src / fname}: expected a scipy sparse matrix, got {type(m).__name__}")
        mats[split] = sp.coo_matrix(m)
    shapes = {s: m.shape for s, m in mats.items()}
    if len(set(shapes.values())) != 1:
        raise SchemaError(f"{src}: split matrices disagree on shape: {shapes}")
    n_users, n_items = mats["train"].shape
    feats = {f: read_feature_file(f) for f in feature_files(src)}  # checked before anything is written
    for f, arr in feats.items():
        if arr.shape[0] != n_items:
            raise SchemaError(f"{f}: expected ({n_items}, D) features, got {arr.shape}")

    frames, split_col = [], []
    for split, m in mats.items():
        m.sum_duplicates()
        keep = m.data != 0
        frames.append(
            pl.DataFrame(
                {
                    "user_id": m.row[keep].astype(np.int64),
                    "post_id": m.col[keep].astype(np.int64),
                    "weight": m.data[keep].astype(np.float32),
                }
            )
        )
        split_col += [split] * int(keep.sum())
    inter = pl.concat(frames).with_columns(
        pl.lit(None, dtype=pl.Datetime("us", "UTC")).alias("ts"),
        pl.lit("interact").alias("event"),
    )
    splits = pl.DataFrame({"row": np.arange(len(inter), dtype=np.int64), "split": split_col})
    meta = {
        "name": name or src.name,
        "source": {"format": "diffmm", "path": str(src.resolve())},
        "protocol": {"mask_valid_on_test": True, "ks": [10, 20, 50], "headline_k": 20},
    }
    ds = save_dataset(out, bare_posts(np.arange(n_items)), inter, splits, meta)

    modalities = {}
    for f, arr in feats.items():
        modality, dim = save_precomputed_modality(out, f, arr, np.arange(n_items, dtype=np.int64))
        modalities[modality] = dim

    counts = {s: int((splits["split"] == s).sum()) for s in SPLIT_FILES}
    report = {
        "format": "diffmm",
        "users": int(inter["user_id"].n_unique()),
        "user_rows": n_users,
        "posts": n_items,
        "interactions": counts,
        "modalities": modalities,
        "skipped": {"zero_entries": int(sum((m.data == 0).sum() for m in mats.values()))},
    }
    return ds, report
