"""Pieces shared by the importers (DiffMM, MMRec, RecBole): bare posts tables, precomputed
`.npy` feature files into the feature store, unix seconds into timestamps, and the tab-separated
header reader."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import polars as pl

from recsys.errors import ArtifactError, ConfigError, SchemaError
from recsys.features import ModalityFeatures, save_modality
from recsys.io import sha256_file
from recsys.schema import TS

logger = logging.getLogger(__name__)

FEAT_SUFFIX = "_feat.npy"
BENCHMARK_PARTS = {"train", "valid", "test"}  # RecBole's <name>.train.inter files, not read here


def bare_posts(post_ids: np.ndarray) -> pl.DataFrame:
    """Posts table with only ids (imported datasets carry no raw content)."""
    return pl.DataFrame({"post_id": np.asarray(post_ids, dtype=np.int64)}).with_columns(
        pl.lit(None, dtype=pl.Int64).alias("author_id"),
        pl.lit(None, dtype=TS).alias("created_at"),
        pl.lit(None, dtype=pl.String).alias("text"),
        pl.lit(None, dtype=pl.String).alias("image_path"),
        pl.lit(None, dtype=pl.String).alias("video_path"),
    )


def seconds_to_ts(expr: pl.Expr) -> pl.Expr:
    """Unix seconds (int or float) -> Datetime(us, UTC), rounded to the microsecond; null stays null."""
    return (expr.cast(pl.Float64) * 1e6).round().cast(pl.Int64).cast(pl.Datetime("us")).dt.replace_time_zone("UTC")


def feature_files(src: Path) -> list[Path]:
    """`<modality>_feat.npy` files of `src`, sorted by name."""
    return sorted(Path(src).glob(f"*{FEAT_SUFFIX}"))


def read_feature_file(path: Path) -> np.ndarray:
    """A plain numeric 2-D `.npy` array (pickled object arrays are refused)."""
    try:
        arr = np.load(path, allow_pickle=False)
    except ValueError as e:
        raise ArtifactError(f"{path}: not a plain numeric .npy file: {e}") from e
    except OSError as e:
        raise ArtifactError(f"{path}: unreadable .npy file: {e}") from e
    if arr.ndim != 2 or not (np.issubdtype(arr.dtype, np.floating) or np.issubdtype(arr.dtype, np.integer)):
        raise SchemaError(f"{path}: expected a numeric (items, D) matrix, got {arr.dtype} {arr.shape}")
    return arr


def save_precomputed_modality(out: Path, path: Path, arr: np.ndarray, post_ids: np.ndarray) -> tuple[str, int]:
    """Store rows of `arr` (N, D) for `post_ids` (N,) as modality `<stem of path without _feat>`.
    Rows with non-finite values are stored absent (zeros, present False). Returns (name, dim)."""
    modality = path.name[: -len(FEAT_SUFFIX)]
    data = arr.astype(np.float32)
    finite = np.isfinite(data).all(axis=1)
    if not finite.all():
        logger.warning("%s: %d row(s) with non-finite values marked absent", path.name, int((~finite).sum()))
    data[~finite] = 0.0
    digest = sha256_file(path)
    save_modality(
        out,
        ModalityFeatures(
            name=modality,
            post_ids=np.asarray(post_ids, dtype=np.int64),
            data=data,
            present=finite,
            content_hash=np.where(finite, f"import:{digest[:16]}", "!non-finite"),
            meta={"encoder": "precomputed", "source": path.name, "sha256": digest},
        ),
    )
    return modality, int(data.shape[1])


def read_header(path: Path, separator: str = "\t") -> list[str]:
    """Column names on the first line of a delimited text file."""
    try:
        with open(path, encoding="utf-8") as f:
            first = f.readline()
    except (OSError, UnicodeDecodeError) as e:
        raise ArtifactError(f"{path}: unreadable text file: {e}") from e
    return first.rstrip("\r\n").split(separator) if first.strip() else []


def read_table(path: Path, separator: str = "\t") -> pl.DataFrame:
    """Every column as String (types are applied by the importer, which names bad columns)."""
    try:
        return pl.read_csv(path, separator=separator, infer_schema=False, quote_char='"')
    except pl.exceptions.NoDataError as e:
        raise SchemaError(f"{path}: empty file; expected a header line and rows") from e
    except (pl.exceptions.PolarsError, OSError) as e:
        raise ArtifactError(f"{path}: not a readable tab-separated file: {e}") from e


def _parse_column(df: pl.DataFrame, col: str, path: Path, what: str, dtype: pl.DataType, kind: str) -> pl.Series:
    """Parse a String column into `dtype` (nulls kept); SchemaError names the first bad values."""
    s = df[col].str.strip_chars()
    parsed = s.cast(dtype, strict=False)
    bad = s.is_not_null() & parsed.is_null()
    if bad.any():
        example = s.filter(bad).head(3).to_list()
        raise SchemaError(f"{path}: column {col!r} ({what}) must hold {kind}, got {example}")
    return parsed


def to_int_column(df: pl.DataFrame, col: str, path: Path, what: str) -> pl.Series:
    return _parse_column(df, col, path, what, pl.Int64, "integers")


def to_float_column(df: pl.DataFrame, col: str, path: Path, what: str) -> pl.Series:
    return _parse_column(df, col, path, what, pl.Float64, "numbers")


def find_inter_file(src: Path, name: str | None = None) -> Path:
    """`<name>.inter` if given and present, else the only `*.inter` (ignoring RecBole's
    `<name>.train.inter`-style benchmark files), else `<folder name>.inter`."""
    src = Path(src)
    if name and (src / f"{name}.inter").is_file():
        return src / f"{name}.inter"
    found = sorted(p for p in src.glob("*.inter") if p.is_file() and not _is_benchmark_part(p))
    if len(found) == 1:
        return found[0]
    if (src / f"{src.name}.inter").is_file():
        return src / f"{src.name}.inter"
    if not found:
        parts = sorted(p.name for p in src.glob("*.inter") if _is_benchmark_part(p))
        hint = f" (only pre-split benchmark files {parts}, which are not supported: concatenate them)" if parts else ""
        raise ArtifactError(f"{src}: no <name>.inter file found{hint}")
    raise ConfigError(f"{src}: several .inter files {[p.name for p in found]}; pass --name to pick one")


def _is_benchmark_part(path: Path) -> bool:
    stem = path.stem
    return "." in stem and stem.rsplit(".", 1)[1] in BENCHMARK_PARTS
