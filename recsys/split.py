"""Global temporal split: the latest interactions are test, the ones just before are valid.

    splits, report = temporal_split(ds.interactions, valid_frac=0.1, test_frac=0.1)

Interactions are sorted by `ts`; two cut timestamps are taken at the (1 - valid_frac - test_frac)
and (1 - test_frac) quantiles of the interaction count: ts >= t_test -> test, t_valid <= ts <
t_test -> valid, the rest -> train. Interactions sharing a timestamp always land in the same
split, so nothing in train happens after anything in valid or test (no training on the future);
the fractions are therefore approximate when many interactions share the cut timestamps.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from recsys.dataset import load_dataset, save_splits
from recsys.errors import ArtifactError, ConfigError, SchemaError
from recsys.io import write_json
from recsys.schema import DATASET_META_FILE, SPLITS_FILE


def temporal_split(interactions: pl.DataFrame, valid_frac: float = 0.1, test_frac: float = 0.1) -> tuple[pl.DataFrame, dict[str, Any]]:
    """(splits DataFrame (row int64, split str) in row order, report dict)."""
    if not (0 < valid_frac < 1 and 0 < test_frac < 1 and valid_frac + test_frac < 1):
        raise ConfigError(
            f"valid and test fractions must be in (0, 1) with a sum below 1, got valid={valid_frac}, test={test_frac}"
        )
    n = len(interactions)
    if n == 0:
        raise SchemaError("interactions: the table is empty; nothing to split")
    nulls = interactions["ts"].null_count()
    if nulls:
        raise SchemaError(
            f"interactions: {nulls} of {n} row(s) have a null ts; a temporal split needs a timestamp on every "
            f"interaction (imported benchmark datasets such as DiffMM/TikTok ship their own split)"
        )
    ts = interactions["ts"].dt.epoch("us").to_numpy()  # int64 (n,)
    sorted_ts = np.sort(ts)
    t_valid = sorted_ts[min(int(np.floor(n * (1 - valid_frac - test_frac))), n - 1)]
    t_test = sorted_ts[min(int(np.floor(n * (1 - test_frac))), n - 1)]
    split = np.where(ts >= t_test, "test", np.where(ts >= t_valid, "valid", "train"))
    counts = {s: int((split == s).sum()) for s in ("train", "valid", "test")}
    empty = [s for s, c in counts.items() if c == 0]
    if empty:
        raise ConfigError(
            f"temporal split leaves {empty} empty ({counts}); the timestamps are too few or too tied to cut "
            f"at valid_frac={valid_frac}, test_frac={test_frac}"
        )
    splits = pl.DataFrame({"row": np.arange(n, dtype=np.int64), "split": split})
    users = {s: int(interactions.filter(pl.Series(split == s))["user_id"].n_unique()) for s in counts}
    fmt = lambda t: pl.Series([int(t)]).cast(pl.Datetime("us", "UTC"))[0].isoformat()  # noqa: E731
    report = {
        "method": "global_temporal",
        "valid_frac": valid_frac,
        "test_frac": test_frac,
        "valid_from": fmt(t_valid),
        "test_from": fmt(t_test),
        "interactions": counts,
        "users": users,
    }
    return splits, report


def split_dataset(root: Path, valid_frac: float = 0.1, test_frac: float = 0.1, force: bool = False) -> dict[str, Any]:
    """Write `root/splits.parquet` (atomically) and record the split in dataset.json."""
    root = Path(root)
    ds = load_dataset(root)
    if ds.splits is not None and not force:
        raise ArtifactError(f"{root / SPLITS_FILE} already exists; pass --force to replace it")
    splits, report = temporal_split(ds.interactions, valid_frac, test_frac)
    save_splits(root, splits, len(ds.interactions))
    meta = {k: v for k, v in ds.meta.items() if k != "popularity"}
    write_json(root / DATASET_META_FILE, {**meta, "split": report})
    popularity = choose_popularity(root)  # on the split just written: what "popular" means here
    write_json(root / DATASET_META_FILE, {**meta, "split": report, "popularity": popularity})
    return {**report, "popularity_half_life_s": popularity["half_life_s"]}


def choose_popularity(root: Path) -> dict:
    """The popularity half-life of the dataset at `root` chosen on its valid split
    (`recsys.prior.choose_half_life`)."""
    from recsys.interactions import build_interaction_data
    from recsys.prior import choose_half_life

    ds = load_dataset(root)
    data = build_interaction_data(ds)
    inter = ds.interactions_with_split()
    return choose_half_life(inter.filter(pl.col("split") == "train"), data.train, data.valid, data.post_ids, data.post_created_us)
