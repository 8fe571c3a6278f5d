"""Importer for the MMRec layout (github.com/enoche/MMRec, `src/utils/dataset.py`):

    <name>.inter        tab-separated, header line; columns userID, itemID, [rating], [timestamp],
                        x_label with 0 / 1 / 2 = train / valid / test
    <modality>_feat.npy (items, D) features, row i = itemID i (MMRec: image_feat.npy, text_feat.npy)

MMRec's column names are configurable there (USER_ID_FIELD, ITEM_ID_FIELD, inter_splitting_label);
pass them as `user_field`, `item_field`, `split_field` when a file uses others. RecBole-style
typed headers (`userID:token`) are accepted too (the `:type` part is ignored).

Ids are kept as they are: post ids are itemIDs 0..N-1 (N = feature rows, or max itemID + 1
without feature files, as MMRec counts items), user ids are userIDs. Every row becomes an
interaction (duplicates included, counted in the report); weight = rating when there is one
(null ratings -> 1.0, counted), ts = timestamp (unix seconds) when there is one.

Protocol recorded in dataset.json as MMRec evaluates: test scoring masks train items only
(`mask_valid_on_test: false`). MMRec also drops valid/test rows of users with no train row
(`filter_out_cod_start_users`); they are kept here and counted in the report (`cold_users`).
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import polars as pl

from recsys.data.common import (
    bare_posts,
    feature_files,
    find_inter_file,
    read_feature_file,
    read_header,
    read_table,
    save_precomputed_modality,
    seconds_to_ts,
    to_float_column,
    to_int_column,
)
from recsys.dataset import Dataset, save_dataset
from recsys.errors import ArtifactError, ConfigError, SchemaError
from recsys.schema import TS

logger = logging.getLogger(__name__)

SPLIT_LABELS = {0: "train", 1: "valid", 2: "test"}
USER_FIELD, ITEM_FIELD, SPLIT_FIELD = "userID", "itemID", "x_label"
RATING_FIELD, TIME_FIELD = "rating", "timestamp"


def is_mmrec(src: Path) -> bool:
    """A `.inter` file whose header has the split label column (x_label)."""
    try:
        path = find_inter_file(src)
    except (ArtifactError, ConfigError):
        return False
    return SPLIT_FIELD in [c.split(":")[0] for c in read_header(path)]


def import_mmrec(
    src: Path,
    out: Path,
    name: str | None = None,
    *,
    user_field: str = USER_FIELD,
    item_field: str = ITEM_FIELD,
    split_field: str = SPLIT_FIELD,
) -> tuple[Dataset, dict]:
    """Convert `src` (MMRec layout) into a recsys dataset at `out`. Returns (dataset, report)."""
    src, out = Path(src), Path(out)
    if not src.is_dir():
        raise ArtifactError(f"expected an MMRec directory at {src}, found nothing")
    path = find_inter_file(src, name)
    raw = read_table(path)
    raw = raw.rename({c: c.split(":")[0] for c in raw.columns})  # typed headers: keep the name
    missing = [c for c in (user_field, item_field, split_field) if c not in raw.columns]
    if missing:
        raise SchemaError(
            f"{path}: missing column(s) {missing}; expected {user_field}, {item_field}, [rating], [timestamp], "
            f"{split_field}; got {raw.columns} (other names: pass user_field/item_field/split_field)"
        )

    cols = {
        "user_id": to_int_column(raw, user_field, path, "user id"),
        "post_id": to_int_column(raw, item_field, path, "item id"),
        "label": to_int_column(raw, split_field, path, "split label 0/1/2"),
    }
    has_rating, has_time = RATING_FIELD in raw.columns, TIME_FIELD in raw.columns
    used = {user_field, item_field, split_field, RATING_FIELD, TIME_FIELD}
    if has_rating:
        cols["rating"] = to_float_column(raw, RATING_FIELD, path, "rating")
    if has_time:
        cols["seconds"] = to_float_column(raw, TIME_FIELD, path, "unix seconds")
    df = pl.DataFrame(cols)

    null_ids = df.filter(pl.any_horizontal(pl.col("user_id", "post_id", "label").is_null()))
    df = df.drop_nulls(["user_id", "post_id", "label"])
    if len(null_ids):
        logger.warning("%s: skipped %d row(s) with an empty id or split label", path.name, len(null_ids))
    bad = df.filter(~pl.col("label").is_in(list(SPLIT_LABELS)))
    if len(bad):
        counts = dict(bad.group_by("label").len().sort("label").iter_rows())
        raise SchemaError(
            f"{path}: column {split_field!r} must be 0 (train), 1 (valid) or 2 (test); "
            f"got other values {counts} (value: rows)"
        )
    for col, field in (("user_id", user_field), ("post_id", item_field)):
        if len(df) and df[col].min() < 0:
            raise SchemaError(f"{path}: column {field!r} must be >= 0, got {df[col].min()}")
    if has_rating and not df["rating"].drop_nulls().is_finite().all():
        raise SchemaError(f"{path}: column {RATING_FIELD!r} has non-finite values")
    if has_time and not df["seconds"].drop_nulls().is_finite().all():
        raise SchemaError(f"{path}: column {TIME_FIELD!r} has non-finite values")

    # Items: feature rows when there are feature files (all must agree), else max itemID + 1.
    feats = {f: read_feature_file(f) for f in feature_files(src)}
    rows = {f.name: a.shape[0] for f, a in feats.items()}
    if len(set(rows.values())) > 1:
        raise SchemaError(f"{src}: feature files disagree on the number of items (rows): {rows}")
    max_item = int(df["post_id"].max()) if len(df) else -1
    if feats:
        n_items = next(iter(rows.values()))
        if max_item >= n_items:
            outside = df.filter(pl.col("post_id") >= n_items)["post_id"].unique().sort().head(5).to_list()
            raise SchemaError(
                f"{path}: {item_field} must be in 0..{n_items - 1} (rows of {sorted(rows)}), "
                f"got {outside} in {(df['post_id'] >= n_items).sum()} row(s)"
            )
    else:
        n_items = max_item + 1

    weight = pl.col("rating").fill_null(1.0) if has_rating else pl.lit(1.0)
    ts = seconds_to_ts(pl.col("seconds")) if has_time else pl.lit(None, dtype=TS)
    inter = df.with_columns(
        weight.cast(pl.Float32).alias("weight"),
        ts.alias("ts"),
        pl.lit("interact").alias("event"),
        pl.col("label").replace_strict(SPLIT_LABELS, return_dtype=pl.String).alias("split"),
    )
    splits = pl.DataFrame({"row": np.arange(len(inter), dtype=np.int64), "split": inter["split"]})
    meta = {
        "name": name or path.stem,
        "source": {"format": "mmrec", "path": str(src.resolve()), "inter_file": path.name},
        "protocol": {"mask_valid_on_test": False, "ks": [10, 20, 50], "headline_k": 20},
    }
    ds = save_dataset(out, bare_posts(np.arange(n_items)), inter.drop("split"), splits, meta)

    modalities = {}
    for f, arr in feats.items():
        modality, dim = save_precomputed_modality(out, f, arr, np.arange(n_items))
        modalities[modality] = dim

    train_users = inter.filter(pl.col("split") == "train")["user_id"].unique()
    cold = inter.filter((pl.col("split") != "train") & ~pl.col("user_id").is_in(train_users.implode()))
    report = {
        "format": "mmrec",
        "users": int(inter["user_id"].n_unique()),
        "user_rows": int(inter["user_id"].max()) + 1 if len(inter) else 0,
        "posts": n_items,
        "interactions": {s: int((inter["split"] == s).sum()) for s in SPLIT_LABELS.values()},
        "modalities": modalities,
        "skipped": {"null_ids": len(null_ids)},
        "duplicates_kept": len(inter) - inter.select("user_id", "post_id", "split").n_unique(),
        "null_ratings_as_1": int(inter["rating"].null_count()) if has_rating else 0,
        "cold_users": {s: int((cold["split"] == s).sum()) for s in ("valid", "test")},
        "ignored": {"inter_fields": [c for c in raw.columns if c not in used]},
    }
    return ds, report
