"""Per-modality feature store: `<dataset>/features/<modality>.npz`, one file per modality.

Each file holds, aligned row by row (N rows):
    post_id       int64   (N,)
    data          float32 (N, D)   zeros where the modality is absent
    present       bool    (N,)     presence mask
    content_hash  str     (N,)     hash of the raw content + encoder fingerprint ("" when absent
                                   because the post has no such content; "!<reason>" when the
                                   content was there but could not be decoded)
    meta_json     str     ()       {"modality", "dim", "encoder", "fingerprint", "source", ...}

Files are written atomically; incremental encoders reuse rows whose content_hash is unchanged.
"""

from __future__ import annotations

import json
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from recsys.errors import ArtifactError, SchemaError
from recsys.io import write_npz
from recsys.schema import FEATURES_DIR


@dataclass
class ModalityFeatures:
    name: str
    post_ids: np.ndarray  # int64 (N,)
    data: np.ndarray  # float32 (N, D)
    present: np.ndarray  # bool (N,)
    content_hash: np.ndarray  # str (N,)
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.post_ids = np.asarray(self.post_ids, dtype=np.int64)
        self.data = np.asarray(self.data, dtype=np.float32)
        self.present = np.asarray(self.present, dtype=bool)
        self.content_hash = np.asarray(self.content_hash, dtype=str)
        n = len(self.post_ids)
        if self.data.ndim != 2 or self.data.shape[0] != n:
            raise SchemaError(f"features[{self.name}]: data must be (N={n}, D), got {self.data.shape}")
        if self.present.shape != (n,) or self.content_hash.shape != (n,):
            raise SchemaError(
                f"features[{self.name}]: present/content_hash must be ({n},), got {self.present.shape}/{self.content_hash.shape}"
            )
        dim = self.meta.get("dim")
        if dim is not None and dim != self.data.shape[1]:
            raise SchemaError(f"features[{self.name}]: rows have dimension {self.data.shape[1]} but the store says dim={dim}")
        self.meta["dim"] = int(self.data.shape[1])
        self.meta["modality"] = self.name
        if len(np.unique(self.post_ids)) != n:
            raise SchemaError(f"features[{self.name}]: duplicate post ids")

    @property
    def dim(self) -> int:
        return int(self.data.shape[1])

    def aligned(self, post_ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Rows for `post_ids` (M,) in that order -> (data float32 (M, D), present bool (M,)).
        Ids the store does not have come back absent (zeros, False)."""
        post_ids = np.asarray(post_ids, dtype=np.int64)
        data = np.zeros((len(post_ids), self.dim), np.float32)
        present = np.zeros(len(post_ids), bool)
        if len(self.post_ids) == 0:
            return data, present
        order = np.argsort(self.post_ids, kind="stable")
        sorted_ids = self.post_ids[order]
        pos = np.searchsorted(sorted_ids, post_ids)
        pos = np.clip(pos, 0, len(sorted_ids) - 1)
        found = sorted_ids[pos] == post_ids
        rows = order[pos]
        data[found] = self.data[rows[found]]
        present[found] = self.present[rows[found]]
        return data, present


def features_dir(dataset_root: Path) -> Path:
    return Path(dataset_root) / FEATURES_DIR


def save_modality(dataset_root: Path, feats: ModalityFeatures) -> Path:
    path = features_dir(dataset_root) / f"{feats.name}.npz"
    write_npz(
        path,
        post_id=feats.post_ids,
        data=feats.data,
        present=feats.present,
        content_hash=feats.content_hash,
        meta_json=np.array(json.dumps(feats.meta, sort_keys=True)),
    )
    return path


def load_modality(dataset_root: Path, name: str) -> ModalityFeatures:
    path = features_dir(dataset_root) / f"{name}.npz"
    if not path.is_file():
        have = list_modalities(dataset_root)
        raise ArtifactError(f"no feature store for modality {name!r} at {path}; have {have}")
    try:
        with np.load(path, allow_pickle=False) as z:
            return ModalityFeatures(
                name=name,
                post_ids=z["post_id"],
                data=z["data"],
                present=z["present"],
                content_hash=z["content_hash"],
                meta=json.loads(str(z["meta_json"])),
            )
    except (KeyError, ValueError, OSError, EOFError, zipfile.BadZipFile) as e:  # SchemaError too: a broken file
        raise ArtifactError(f"{path} is not a valid feature store file: {type(e).__name__}: {e}") from e


def list_modalities(dataset_root: Path) -> list[str]:
    d = features_dir(dataset_root)
    return sorted(p.stem for p in d.glob("*.npz")) if d.is_dir() else []


def load_features(dataset_root: Path) -> dict[str, ModalityFeatures]:
    """Every modality of the store, by name (sorted)."""
    return {m: load_modality(dataset_root, m) for m in list_modalities(dataset_root)}
