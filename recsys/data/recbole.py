"""Importer for RecBole atomic files (recbole.io, "Atomic Files"):

    <name>.inter   tab-separated; header `field:type` with type token | token_seq | float | float_seq,
                   e.g. `user_id:token  item_id:token  rating:float  timestamp:float`
    <name>.item    optional: `item_id:token` plus item fields, e.g. `title:token_seq`

Mapping into the recsys layout:
- Tokens (strings in RecBole) become int64 ids: when every token of a kind is a plain decimal
  integer ("0", "1193"; no sign, no leading zero) the id is that integer, otherwise ids are
  0..n-1 in sorted token order. Either way the mapping is written beside the dataset:
  `id_map_users.parquet` (token, user_id) and `id_map_posts.parquet` (token, post_id).
- Posts: every item of `.item` and every item that `.inter` references (sorted by post_id).
  posts.text = the first title-like field (title, movie_title, name, ...) and the first
  description-like field (description, text, ...), joined by a newline; posts.created_at = a
  `created_at` / `timestamp` float field. All `.item` columns are kept, typed, in
  `item_attributes.parquet` (post_id + the columns).
- `float_seq` item fields of one fixed length D become feature-store modalities named after the
  field (rows with an empty value are absent).
- Interactions: weight = rating (1.0 when there is no rating or it is empty), ts = timestamp
  (float unix seconds -> Datetime(us, UTC)), event "interact".
- Atomic files carry no split: no splits.parquet is written (run `recsys split`).
Rows with an empty user or item token are skipped and counted in the report; other `.inter`
columns, and `.user` / `.kg` / `.link` / `.net` files, are listed in the report as ignored.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import polars as pl

from recsys.data.common import find_inter_file, read_header, read_table, seconds_to_ts, to_float_column
from recsys.dataset import Dataset, save_dataset
from recsys.errors import ArtifactError, RecsysError, SchemaError
from recsys.features import ModalityFeatures, save_modality
from recsys.io import write_parquet
from recsys.schema import TS

logger = logging.getLogger(__name__)

FIELD_TYPES = ("token", "token_seq", "float", "float_seq")
USER_FIELD, ITEM_FIELD, RATING_FIELD, TIME_FIELD = "user_id", "item_id", "rating", "timestamp"
TITLE_FIELDS = ("title", "movie_title", "item_title", "name", "item_name", "headline")
BODY_FIELDS = ("description", "desc", "text", "content", "summary", "body", "abstract")
CREATED_FIELDS = ("created_at", "timestamp")
ID_MAP_USERS, ID_MAP_POSTS, ITEM_ATTRIBUTES = "id_map_users.parquet", "id_map_posts.parquet", "item_attributes.parquet"
_PLAIN_INT = r"^(0|[1-9][0-9]{0,17})$"  # at most 18 digits: always fits int64


def parse_header(path: Path) -> dict[str, str]:
    """`field:type` header of an atomic file -> {field: type}; SchemaError names a bad entry."""
    out: dict[str, str] = {}
    for entry in read_header(path):
        field, sep, ftype = entry.rpartition(":")
        if not sep or not field or ftype not in FIELD_TYPES:
            raise SchemaError(f"{path}: header entry {entry!r} must be field:type with type in {list(FIELD_TYPES)}")
        if field in out:
            raise SchemaError(f"{path}: field {field!r} appears twice in the header")
        out[field] = ftype
    if not out:
        raise SchemaError(f"{path}: empty file; expected a `field:type` header line")
    return out


def is_recbole(src: Path) -> bool:
    """A `.inter` file whose header is entirely `field:type` entries."""
    try:
        parse_header(find_inter_file(src))
    except RecsysError:
        return False
    return True


def token_ids(tokens: pl.Series) -> tuple[pl.DataFrame, str]:
    """Distinct non-null tokens -> DataFrame(token, id int64) sorted by token, and the scheme used
    ("integer": the token's own value; "sorted": rank in sorted token order)."""
    uniq = tokens.drop_nulls().unique().sort()
    if uniq.str.contains(_PLAIN_INT).all():
        return pl.DataFrame({"token": uniq, "id": uniq.cast(pl.Int64)}), "integer"
    return pl.DataFrame({"token": uniq, "id": np.arange(len(uniq), dtype=np.int64)}), "sorted"


def _typed(raw: pl.DataFrame, types: dict[str, str], path: Path) -> pl.DataFrame:
    """Header-named columns with floats parsed (tokens and sequences stay strings)."""
    if len(raw.columns) != len(types):
        raise SchemaError(f"{path}: header has {len(types)} fields but the table reads as {len(raw.columns)} columns")
    df = raw.rename(dict(zip(raw.columns, types)))
    floats = [to_float_column(df, f, path, "float").alias(f) for f, t in types.items() if t == "float"]
    return df.with_columns(floats) if floats else df


def _require(types: dict[str, str], field: str, path: Path, what: str) -> None:
    if field not in types:
        raise SchemaError(f"{path}: missing {what} field {field!r}; header has {[f'{k}:{v}' for k, v in types.items()]}")
    if types[field] != "token":
        raise SchemaError(f"{path}: {what} field {field!r} must be of type token, got {types[field]}")


def _float_seq_matrix(col: pl.Series, path: Path, field: str) -> tuple[np.ndarray, np.ndarray] | None:
    """Space-separated floats per row -> (data float32 (N, D), present bool (N,)); None when
    every row is empty."""
    present = (col.is_not_null() & (col.str.strip_chars() != "")).fill_null(False)
    if not present.any():
        return None
    parts = col.str.strip_chars().str.split(" ").list.eval(pl.element().filter(pl.element() != ""))
    lengths = parts.filter(present).list.len().unique().to_list()
    if len(lengths) != 1:
        raise SchemaError(
            f"{path}: float_seq field {field!r} must have one length on every row, got lengths {sorted(lengths)[:5]}"
        )
    dim = lengths[0]
    values = parts.filter(present).explode().cast(pl.Float64, strict=False)
    if values.null_count():
        raise SchemaError(f"{path}: float_seq field {field!r} holds non-numbers")
    data = np.zeros((len(col), dim), np.float32)
    data[present.to_numpy()] = values.to_numpy().reshape(-1, dim)
    return data, present.to_numpy()


def import_recbole(
    src: Path,
    out: Path,
    name: str | None = None,
    *,
    user_field: str = USER_FIELD,
    item_field: str = ITEM_FIELD,
    rating_field: str = RATING_FIELD,
    time_field: str = TIME_FIELD,
) -> tuple[Dataset, dict]:
    """Convert `src` (RecBole atomic files) into a recsys dataset at `out`. Returns (dataset, report)."""
    src, out = Path(src), Path(out)
    if not src.is_dir():
        raise ArtifactError(f"expected a RecBole atomic-files directory at {src}, found nothing")
    inter_path = find_inter_file(src, name)
    stem = inter_path.stem
    types = parse_header(inter_path)
    _require(types, user_field, inter_path, "user id")
    _require(types, item_field, inter_path, "item id")
    for field in (rating_field, time_field):
        if field in types and types[field] != "float":
            raise SchemaError(f"{inter_path}: field {field!r} must be of type float, got {types[field]}")
    inter_raw = _typed(read_table(inter_path), types, inter_path)

    null_ids = inter_raw.filter(pl.col(user_field).is_null() | pl.col(item_field).is_null())
    inter_raw = inter_raw.drop_nulls([user_field, item_field])
    if len(null_ids):
        logger.warning("%s: skipped %d row(s) with an empty user or item token", inter_path.name, len(null_ids))
    for field in (rating_field, time_field):
        if field in types and not inter_raw[field].drop_nulls().is_finite().all():
            raise SchemaError(f"{inter_path}: field {field!r} has non-finite values")

    item_path = src / f"{stem}.item"
    items_raw, item_types = None, {}
    if item_path.is_file():
        item_types = parse_header(item_path)
        _require(item_types, item_field, item_path, "item id")
        items_raw = _typed(read_table(item_path), item_types, item_path)
        n_null = items_raw[item_field].null_count()
        if n_null:
            raise SchemaError(f"{item_path}: {n_null} row(s) with an empty {item_field!r}")
        dup = items_raw.filter(pl.col(item_field).is_duplicated())[item_field].unique().sort().head(5).to_list()
        if dup:
            raise SchemaError(f"{item_path}: duplicate {item_field!r} token(s), e.g. {dup}")

    # Token -> int64 id maps.
    user_map, user_scheme = token_ids(inter_raw[user_field])
    item_tokens = [inter_raw[item_field]] + ([items_raw[item_field]] if items_raw is not None else [])
    item_map, item_scheme = token_ids(pl.concat(item_tokens))
    user_map = user_map.rename({"id": "user_id"})
    item_map = item_map.rename({"id": "post_id"})

    weight = pl.col(rating_field).fill_null(1.0) if rating_field in types else pl.lit(1.0)
    ts = seconds_to_ts(pl.col(time_field)) if time_field in types else pl.lit(None, dtype=TS)
    inter = inter_raw.select(
        pl.col(user_field).replace_strict(user_map["token"], user_map["user_id"]).alias("user_id"),
        pl.col(item_field).replace_strict(item_map["token"], item_map["post_id"]).alias("post_id"),
        ts.alias("ts"),
        pl.lit("interact").alias("event"),
        weight.cast(pl.Float32).alias("weight"),
    )

    # Posts, sorted by post_id; content from .item where present.
    posts = item_map.select("post_id", "token").sort("post_id")
    text_fields: list[str] = []
    if items_raw is not None:
        items = items_raw.join(item_map, left_on=item_field, right_on="token", how="left", maintain_order="left")
        text_like = [f for f, t in item_types.items() if t in ("token", "token_seq") and f != item_field]
        title = next((f for f in TITLE_FIELDS if f in text_like), None)
        body = next((f for f in BODY_FIELDS if f in text_like and f != title), None)
        text_fields = [f for f in (title, body) if f]
        created = next((f for f in CREATED_FIELDS if item_types.get(f) == "float"), None)
        extra = []
        if text_fields:
            extra.append(pl.concat_str([pl.col(f) for f in text_fields], separator="\n", ignore_nulls=True).alias("text"))
        if created:
            if not items[created].drop_nulls().is_finite().all():
                raise SchemaError(f"{item_path}: field {created!r} has non-finite values")
            extra.append(seconds_to_ts(pl.col(created)).alias("created_at"))
        if extra:
            posts = posts.join(items.select("post_id", *extra), on="post_id", how="left")
    if "text" not in posts.columns:
        posts = posts.with_columns(pl.lit(None, dtype=pl.String).alias("text"))
    if "created_at" not in posts.columns:
        posts = posts.with_columns(pl.lit(None, dtype=TS).alias("created_at"))
    posts = posts.with_columns(
        pl.when(pl.col("text").str.strip_chars() == "").then(None).otherwise(pl.col("text")).alias("text"),
        pl.lit(None, dtype=pl.Int64).alias("author_id"),
        pl.lit(None, dtype=pl.String).alias("image_path"),
        pl.lit(None, dtype=pl.String).alias("video_path"),
    )

    # float_seq item fields -> feature-store modalities (checked before anything is written).
    stores, empty_seq_fields = [], []
    for field in (f for f, t in item_types.items() if t == "float_seq"):
        matrix = _float_seq_matrix(items[field], item_path, field)
        if matrix is None:
            logger.warning("%s: float_seq field %r is empty on every row; not imported", item_path.name, field)
            empty_seq_fields.append(field)
            continue
        data, has_value = matrix
        present = has_value & np.isfinite(data).all(axis=1)
        data[~present] = 0.0
        stores.append(
            ModalityFeatures(
                name=field,
                post_ids=items["post_id"].to_numpy(),
                data=data,
                present=present,
                content_hash=np.where(present, "import:recbole", np.where(has_value, "!non-finite", "")),
                meta={"encoder": "precomputed", "source": f"{item_path.name}:{field}"},
            )
        )

    meta = {
        "name": name or stem,
        "source": {
            "format": "recbole",
            "path": str(src.resolve()),
            "inter_file": inter_path.name,
            "item_file": item_path.name if items_raw is not None else None,
        },
        "id_maps": {"users": ID_MAP_USERS, "posts": ID_MAP_POSTS, "users_scheme": user_scheme, "posts_scheme": item_scheme},
        "item_attributes": ITEM_ATTRIBUTES if items_raw is not None else None,
        "text_fields": text_fields,
    }
    ds = save_dataset(out, posts, inter, None, meta)

    write_parquet(out / ID_MAP_USERS, user_map)
    write_parquet(out / ID_MAP_POSTS, item_map)
    if items_raw is not None:
        attributes = items.select("post_id", *[f for f in item_types if f != item_field]).sort("post_id")
        write_parquet(out / ITEM_ATTRIBUTES, attributes)
    for feats in stores:
        save_modality(out, feats)
    modalities = {f.name: f.dim for f in stores}

    known_inter = {user_field, item_field, rating_field, time_field}
    other_files = sorted(p.name for p in src.iterdir() if p.suffix in (".user", ".kg", ".link", ".net"))
    report = {
        "format": "recbole",
        "users": int(inter["user_id"].n_unique()),
        "posts": len(posts),
        "interactions": {"unsplit": len(inter)},
        "modalities": modalities,
        "skipped": {"null_ids": len(null_ids)},
        "duplicates_kept": len(inter) - inter.select("user_id", "post_id").n_unique(),
        "items_without_metadata": len(item_map) - (len(items_raw) if items_raw is not None else 0),
        "text_fields": text_fields,
        "id_schemes": {"users": user_scheme, "posts": item_scheme},
        "ignored": {
            "inter_fields": [f for f in types if f not in known_inter],
            "empty_item_fields": empty_seq_fields,
            "files": other_files,
        },
    }
    return ds, report
