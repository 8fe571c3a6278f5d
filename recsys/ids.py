"""Your own ids: users, posts and authors identified by strings (UUIDs, handles, slugs) or integers.

Inside the project every id is an int64 (ID tables, FAISS ids, sparse matrices). An entity whose
ids are integers keeps them as they are. An entity whose ids are strings gets, once, at the
edge where the table is read, a stable internal id per key:

    internal_id("alice") = first 8 bytes of blake2b(utf-8 key), little-endian, top bit cleared

so the same key maps to the same int64 in every process, every run and every bundle, with no
shared counter to coordinate (a live post added on one API worker gets the id every other
worker and the next build compute). Two distinct keys of one dataset that collide are refused
(`SchemaError`; at 2^63 ids that is about 1e-7 for a billion keys). The mapping is stored where
a reader needs the keys back: the bundle keeps `id_map_<entity>.parquet` (key, id) so the API
answers in the caller's ids, and the dataset's own tables keep the keys.

    m = IdMap.from_keys(["alice", "bob"])
    m.to_internal(["bob"])        -> int64 [..]
    m.to_external(np.array([..])) -> ["bob"]
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

import numpy as np
import polars as pl

from recsys.errors import ArtifactError, SchemaError

ENTITIES = ("user", "post", "author")
ID_COLUMN = {"user": "user_id", "post": "post_id", "author": "author_id"}
MAX_KEY_LEN = 256
_MASK = (1 << 63) - 1


def internal_id(key: str) -> int:
    """Stable non-negative int64 for a string key."""
    return int.from_bytes(hashlib.blake2b(key.encode("utf-8"), digest_size=8).digest(), "little") & _MASK


def check_key(key: str, what: str) -> str:
    if not key:
        raise SchemaError(f"{what}: expected a non-empty string id, got ''")
    if len(key) > MAX_KEY_LEN:
        raise SchemaError(f"{what}: string ids may have at most {MAX_KEY_LEN} characters, got {len(key)}")
    return key


@dataclass
class IdMap:
    """Keys of one string-id entity and their internal ids. keys: object (K,), ids: int64 (K,),
    sorted by id (so `to_external` is a binary search)."""

    keys: np.ndarray
    ids: np.ndarray

    @classmethod
    def from_keys(cls, keys: Iterable[str], what: str = "ids") -> "IdMap":
        uniq = sorted({check_key(str(k), what) for k in keys})
        ids = np.fromiter((internal_id(k) for k in uniq), np.int64, len(uniq))
        order = np.argsort(ids, kind="stable")
        ids, keys_a = ids[order], np.asarray(uniq, dtype=object)[order]
        if len(ids) > 1 and (np.diff(ids) == 0).any():
            j = int(np.flatnonzero(np.diff(ids) == 0)[0])
            raise SchemaError(f"{what}: string ids {keys_a[j]!r} and {keys_a[j + 1]!r} map to the same internal id; rename one")
        return cls(keys_a, ids)

    def __len__(self) -> int:
        return len(self.ids)

    def to_internal(self, keys: Iterable[str]) -> np.ndarray:
        """Internal ids of `keys` (known or not: the mapping is a function)."""
        return np.fromiter((internal_id(str(k)) for k in keys), np.int64)

    def to_external(self, ids: np.ndarray) -> list:
        """Keys of internal `ids`; None where the map does not hold the id."""
        ids = np.asarray(ids, np.int64)
        if not len(self.ids):
            return [None] * len(ids)
        pos = np.clip(np.searchsorted(self.ids, ids), 0, len(self.ids) - 1)
        hit = self.ids[pos] == ids
        return [self.keys[p] if h else None for p, h in zip(pos.tolist(), hit.tolist())]

    def merged(self, other: "IdMap") -> "IdMap":
        return IdMap.from_keys(list(self.keys) + list(other.keys))

    def to_frame(self) -> pl.DataFrame:
        return pl.DataFrame({"key": pl.Series(list(self.keys), dtype=pl.String), "id": self.ids})


def encode_column(col: pl.Series, what: str) -> tuple[pl.Series, IdMap | None]:
    """An id column as read -> (Int64 column, IdMap or None). Integer columns pass through;
    String / Categorical columns are mapped with `internal_id` (nulls stay null)."""
    if col.dtype == pl.Categorical:
        col = col.cast(pl.String)
    if col.dtype != pl.String:
        return col, None
    keys = col.drop_nulls().unique().to_list()
    m = IdMap.from_keys(keys, what)
    lut = dict(zip(m.keys.tolist(), m.ids.tolist()))
    return col.replace_strict(lut, default=None, return_dtype=pl.Int64), m


def save_id_maps(root: Path, maps: dict[str, IdMap], write) -> None:
    """`id_map_<entity>.parquet` for each string-id entity (write = recsys.io.write_parquet)."""
    for ent, m in maps.items():
        write(Path(root) / f"id_map_{ent}.parquet", m.to_frame())


def load_id_maps(root: Path) -> dict[str, IdMap]:
    out = {}
    for ent in ENTITIES:
        p = Path(root) / f"id_map_{ent}.parquet"
        if p.is_file():
            try:
                df = pl.read_parquet(p)
                ids = df["id"].to_numpy().astype(np.int64)
                order = np.argsort(ids, kind="stable")
                out[ent] = IdMap(np.asarray(df["key"].to_list(), dtype=object)[order], ids[order])
            except Exception as e:  # polars raises several types for corrupt files
                raise ArtifactError(f"{p}: not a readable id map: {e}") from e
    return out


def id_types(maps: dict[str, IdMap]) -> dict[str, str]:
    """{"user": "string"|"int", ...} for manifests and run.json."""
    return {e: ("string" if e in maps else "int") for e in ENTITIES}
