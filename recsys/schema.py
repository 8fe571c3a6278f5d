"""Column names, polars schemas and validation of the dataset tables.

A dataset is a directory (see `recsys.dataset`):
    posts.parquet         post_id, author_id, created_at, text, image_path, video_path
    interactions.parquet  user_id, post_id, ts, event, weight
    splits.parquet        row, split      (optional; row indexes interactions.parquet)
    features/<m>.npz      per-modality feature store (see `recsys.features`)

Ids are int64 or strings (UUIDs, handles, slugs; one type per entity across the tables):
`recsys.ids` maps string ids to internal int64 ids when the dataset is loaded. Media paths are relative to the dataset directory. `author_id`, `created_at`
and `ts` may be null for imported datasets that do not carry them; `text`, `image_path`,
`video_path` are null where a post lacks that modality.
"""

from __future__ import annotations

import polars as pl

from recsys.errors import SchemaError, UnknownIdError

POSTS_FILE = "posts.parquet"
INTERACTIONS_FILE = "interactions.parquet"
SPLITS_FILE = "splits.parquet"
DATASET_META_FILE = "dataset.json"
FEATURES_DIR = "features"

TS = pl.Datetime("us", "UTC")

POSTS_SCHEMA: dict[str, pl.DataType] = {
    "post_id": pl.Int64(),
    "author_id": pl.Int64(),
    "created_at": TS,
    "text": pl.String(),
    "image_path": pl.String(),
    "video_path": pl.String(),
}
INTERACTIONS_SCHEMA: dict[str, pl.DataType] = {
    "user_id": pl.Int64(),
    "post_id": pl.Int64(),
    "ts": TS,
    "event": pl.String(),
    "weight": pl.Float32(),
}
SPLITS_SCHEMA: dict[str, pl.DataType] = {"row": pl.Int64(), "split": pl.String()}
SPLIT_NAMES = ("train", "valid", "test")
NOT_NULL = {"post_id", "user_id", "row", "split", "weight", "event"}
ID_COLUMNS = {"post_id", "user_id", "author_id"}  # Int64 or String (see recsys.ids)


def _conform(df: pl.DataFrame, schema: dict[str, pl.DataType], table: str) -> pl.DataFrame:
    """Check columns and types; apply lossless widening casts (any int -> Int64, any float ->
    Float32, any datetime -> Datetime(us, UTC)). Extra columns are kept as they are."""
    missing = [c for c in schema if c not in df.columns]
    if missing:
        raise SchemaError(
            f"{table}: missing column(s) {missing}; expected {list(schema)}, got {df.columns}"
        )
    casts = []
    for col, want in schema.items():
        got = df.schema[col]
        if got == want or (col in ID_COLUMNS and got in (pl.String, pl.Categorical)):
            continue
        ok = (
            got == pl.Null
            or (want == pl.Int64 and got.is_integer())
            or (want == pl.Float32 and (got.is_float() or got.is_integer()))
            or (isinstance(want, pl.Datetime) and isinstance(got, pl.Datetime))
            or (want == pl.String and got == pl.Categorical)
        )
        if not ok:
            alt = " or String" if col in ID_COLUMNS else ""
            raise SchemaError(f"{table}: column {col!r} must be {want}{alt}, got {got}")
        expr = pl.col(col)
        if isinstance(want, pl.Datetime) and isinstance(got, pl.Datetime) and got.time_zone is None:
            expr = expr.dt.replace_time_zone("UTC")
        casts.append(expr.cast(want))
    if casts:
        df = df.with_columns(casts)
    for col in schema:
        if col in NOT_NULL and df[col].null_count():
            raise SchemaError(f"{table}: column {col!r} has {df[col].null_count()} null value(s); nulls are not allowed there")
    return df


def validate_posts(df: pl.DataFrame) -> pl.DataFrame:
    """Return posts conformed to POSTS_SCHEMA; raise SchemaError on bad columns or duplicate ids."""
    df = _conform(df, POSTS_SCHEMA, "posts")
    dup = df.filter(pl.col("post_id").is_duplicated())["post_id"].unique().sort()
    if len(dup):
        raise SchemaError(f"posts: {len(dup)} duplicate post_id value(s), e.g. {dup.head(5).to_list()}")
    return df


def validate_interactions(df: pl.DataFrame, post_ids: pl.Series | None = None) -> pl.DataFrame:
    """Return interactions conformed to INTERACTIONS_SCHEMA. With `post_ids`, every interaction
    must reference a known post (UnknownIdError lists how many and which)."""
    df = _conform(df, INTERACTIONS_SCHEMA, "interactions")
    if post_ids is not None:
        a, b = _id_kind(df["post_id"].dtype), _id_kind(post_ids.dtype)
        if a != b:
            raise SchemaError(f"interactions: post_id is {a} but posts.post_id is {b}; an entity has one id type in every table")
        unknown = df.filter(~pl.col("post_id").is_in(post_ids.implode()))
        if len(unknown):
            ids = unknown["post_id"].unique().sort().head(5).to_list()
            raise UnknownIdError(
                f"interactions: {len(unknown)} row(s) reference post_id(s) not in posts, e.g. {ids}"
            )
    return df


def validate_splits(df: pl.DataFrame, n_interactions: int) -> pl.DataFrame:
    """A split assigns every interaction row exactly once to train, valid or test."""
    df = _conform(df, SPLITS_SCHEMA, "splits")
    bad = df.filter(~pl.col("split").is_in(list(SPLIT_NAMES)))["split"].unique().to_list()
    if bad:
        raise SchemaError(f"splits: split must be one of {list(SPLIT_NAMES)}, got {bad[:5]}")
    if len(df) != n_interactions:
        raise SchemaError(f"splits: {len(df)} rows but interactions has {n_interactions}; one per interaction expected")
    rows = df["row"]
    if n_interactions and (rows.n_unique() != n_interactions or rows.min() != 0 or rows.max() != n_interactions - 1):
        raise SchemaError(f"splits: column 'row' must be a permutation of 0..{n_interactions - 1}")
    return df.sort("row")


def _id_kind(dtype: pl.DataType) -> str:
    return "string" if dtype in (pl.String, pl.Categorical) else "integer"
