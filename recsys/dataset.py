"""Load and save a dataset directory (layout in `recsys.schema`).

    ds = load_dataset(Path("data/synth"))
    ds.posts            polars DataFrame, POSTS_SCHEMA
    ds.interactions     polars DataFrame, INTERACTIONS_SCHEMA
    ds.splits           polars DataFrame (row, split) or None
    ds.meta             dict from dataset.json (name, source, protocol options, ...)
    ds.id_maps          {"user"|"post"|"author": recsys.ids.IdMap} for entities with string ids

In memory every id column is Int64: string ids (as written in the Parquet files) are mapped to
their internal ids by `recsys.ids` when the tables are read; the files keep the caller's keys.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import polars as pl

from recsys import schema
from recsys.errors import ArtifactError
from recsys.io import read_json, write_json, write_parquet

logger = logging.getLogger(__name__)


@dataclass
class Dataset:
    root: Path
    posts: pl.DataFrame
    interactions: pl.DataFrame
    splits: pl.DataFrame | None = None
    meta: dict[str, Any] = field(default_factory=dict)
    id_maps: dict[str, Any] = field(default_factory=dict)  # entity -> recsys.ids.IdMap (string ids only)

    @property
    def name(self) -> str:
        return str(self.meta.get("name", self.root.name))

    def interactions_with_split(self) -> pl.DataFrame:
        """Interactions with a `split` column (raises if the dataset has no splits)."""
        if self.splits is None:
            raise ArtifactError(
                f"{self.root}: dataset has no {schema.SPLITS_FILE}; run `recsys split --data {self.root}` first"
            )
        return self.interactions.with_columns(self.splits["split"])

    def fingerprint(self) -> str:
        """Short content hash of posts + interactions + splits (identifies the data a run used)."""
        h = hashlib.sha256()
        for df in (self.posts.select("post_id"), self.interactions.select("user_id", "post_id"), self.splits):
            if df is not None:
                h.update(df.hash_rows(seed=0).to_numpy().tobytes())
        return h.hexdigest()[:16]

    def media_path(self, rel: str | None) -> Path | None:
        return None if rel is None else self.root / rel


def load_dataset(root: Path) -> Dataset:
    """Read and validate a dataset directory. Raises ArtifactError / SchemaError / UnknownIdError."""
    root = Path(root)
    if not root.is_dir():
        raise ArtifactError(f"expected a dataset directory at {root}, found nothing")
    for name in (schema.POSTS_FILE, schema.INTERACTIONS_FILE):
        if not (root / name).is_file():
            raise ArtifactError(f"{root}: missing {name} (a dataset needs posts.parquet and interactions.parquet)")
    posts, interactions, id_maps = _validated(_read(root / schema.POSTS_FILE), _read(root / schema.INTERACTIONS_FILE))
    splits = None
    if (root / schema.SPLITS_FILE).is_file():
        splits = schema.validate_splits(_read(root / schema.SPLITS_FILE), len(interactions))
    meta = read_json(root / schema.DATASET_META_FILE) if (root / schema.DATASET_META_FILE).is_file() else {}
    return Dataset(root=root, posts=posts, interactions=interactions, splits=splits, meta=meta, id_maps=id_maps)


def _validated(posts: pl.DataFrame, interactions: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame, dict]:
    """Validate both tables (ids Int64 or String) and map string ids to internal Int64 ids."""
    from recsys.ids import encode_column

    posts = schema.validate_posts(posts)
    interactions = schema.validate_interactions(interactions, posts["post_id"])
    maps = {}
    for table, ent, col in (("posts", "post", "post_id"), ("posts", "author", "author_id"), ("interactions", "user", "user_id")):
        df = posts if table == "posts" else interactions
        new, m = encode_column(df[col], f"{table}.{col}")
        if m is not None:
            maps[ent] = m
            df = df.with_columns(new.alias(col))
            if table == "posts":
                posts = df
            else:
                interactions = df
    if "post" in maps:
        new, _ = encode_column(interactions["post_id"], "interactions.post_id")
        interactions = interactions.with_columns(new.alias("post_id"))
    return posts, interactions, maps


def save_dataset(
    root: Path,
    posts: pl.DataFrame,
    interactions: pl.DataFrame,
    splits: pl.DataFrame | None = None,
    meta: dict[str, Any] | None = None,
) -> Dataset:
    """Validate then write the tables atomically (each file via a temp file + rename)."""
    root = Path(root)
    posts = schema.validate_posts(posts)
    interactions = schema.validate_interactions(interactions, posts["post_id"])
    if splits is not None:
        splits = schema.validate_splits(splits, len(interactions))
    root.mkdir(parents=True, exist_ok=True)
    write_parquet(root / schema.POSTS_FILE, posts.select(list(schema.POSTS_SCHEMA)))
    write_parquet(root / schema.INTERACTIONS_FILE, interactions.select(list(schema.INTERACTIONS_SCHEMA)))
    posts, interactions, id_maps = _validated(posts, interactions)
    if splits is not None:
        write_parquet(root / schema.SPLITS_FILE, splits.select(list(schema.SPLITS_SCHEMA)))
    meta = dict(meta or {})
    meta.setdefault("name", root.name)
    write_json(root / schema.DATASET_META_FILE, meta)
    return Dataset(root=root, posts=posts, interactions=interactions, splits=splits, meta=meta, id_maps=id_maps)


def save_splits(root: Path, splits: pl.DataFrame, n_interactions: int) -> None:
    splits = schema.validate_splits(splits, n_interactions)
    write_parquet(Path(root) / schema.SPLITS_FILE, splits.select(list(schema.SPLITS_SCHEMA)))


def _read(path: Path) -> pl.DataFrame:
    try:
        return pl.read_parquet(path)
    except Exception as e:  # polars raises several types for corrupt files
        raise ArtifactError(f"{path} is not a readable Parquet file: {e}") from e
