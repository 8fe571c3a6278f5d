"""Versioned, immutable index bundles and the CURRENT pointer. The one module that names the
bundle files and writes / reads `manifest.json`.

    INDEX_ROOT/
      CURRENT                  the live version's name (replaced atomically: temp file + os.replace)
      bundles/<version>/
        manifest.json          counts, dims, metric, factory, search params, recall, fingerprints
        index.faiss            labels are rows 0..N-1 (rows ordered by created_at, oldest first)
        ids.npy                int64 (N,)   row -> post_id
        posts.parquet          row order: post_id, author_id, created_at (filters)
        post_latents.npy       float32 (N, Z) autoencoder latents (user profiles, "why")
        post_vectors.npy       float32 (N, d) retrieval vectors (exact fallback, /similar)
        popularity.npy         float64 (N,) distinct users, recency-weighted with the dataset's half-life
                                            (recsys.prior; the population prior, the popularity blend)
        histories.parquet      user_id, history (recent post ids, most-recent-last), seen (all)
        online.parquet         (optional) the online log folded in up to manifest `log_seq` (index.fold)
        modality_codes.npy     float16 (N, M, Z) single-modality codes (optional; "why" modality,
                               recsys/explain.py), names in manifest["modality_codes"]
        run/                   copy of the trained run's files (self-contained bundle)
        analysis/              optional: interest clusters, post sentiment, hourly activity
                               (files named by recsys/analysis/store.py; index/clusters.py)

Publishing builds into `INDEX_ROOT/.tmp-*`, fsyncs every file, renames the directory into
`bundles/`, then swaps CURRENT. A crash at any point leaves the previous bundle live.

Pruning first unpublishes a version (one rename of `bundles/<version>` to `INDEX_ROOT/.trash-*`:
from then on it is neither listed nor loadable nor a rollback target), then deletes its files.
Publish, prune and rollback hold an exclusive lock on `INDEX_ROOT/.lock` (flock: released by the
kernel when the holder dies), so whatever the next publish finds of `.tmp-*`, `.trash-*`,
`.CURRENT.*.tmp` or incomplete entries in `bundles/` was left by a process that died: it removes
them (`clean_leftovers`).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import logging
import os
import re
import shutil
import tempfile
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from recsys.errors import ArtifactError, ConfigError, UnknownIdError
from recsys.ids import id_types, load_id_maps, save_id_maps
from recsys.io import atomic_path, read_json, write_json

logger = logging.getLogger(__name__)

FORMAT = 1
CURRENT = "CURRENT"
BUNDLES = "bundles"
MANIFEST = "manifest.json"
INDEX_FILE = "index.faiss"
IDS_FILE = "ids.npy"
POSTS_FILE = "posts.parquet"
LATENTS_FILE = "post_latents.npy"
VECTORS_FILE = "post_vectors.npy"
POPULARITY_FILE = "popularity.npy"
HISTORIES_FILE = "histories.parquet"
ONLINE_FILE = "online.parquet"  # optional: the online log folded in (index.fold), when built with one
CODES_FILE = "modality_codes.npy"  # optional
RUN_DIR = "run"
ANALYSIS_DIR = "analysis"
REQUIRED = (MANIFEST, INDEX_FILE, IDS_FILE, POSTS_FILE, LATENTS_FILE, VECTORS_FILE, POPULARITY_FILE, HISTORIES_FILE)
_VERSION_RE = re.compile(r"^v(\d{4,})$")
LOCK_FILE = ".lock"
TMP_PREFIX = ".tmp-"  # a bundle being written
TRASH_PREFIX = ".trash-"  # an unpublished bundle being deleted


# --- layout ------------------------------------------------------------------------------------

def bundles_dir(root: Path) -> Path:
    return Path(root) / BUNDLES


def is_complete(d: Path) -> bool:
    """A version directory holding every required file and every file its manifest lists (a
    manifest beside missing files is what a deletion killed half way leaves)."""
    if not (d.is_dir() and _VERSION_RE.match(d.name) and all((d / name).exists() for name in REQUIRED)):
        return False
    try:
        files = read_json(d / MANIFEST).get("files", [])
    except (ArtifactError, AttributeError):
        return False
    return all((d / name).exists() for name in files)


def list_versions(root: Path) -> list[str]:
    """Published versions, oldest first: complete `bundles/v*` directories only (temp, trash and
    half-deleted directories are not versions)."""
    d = bundles_dir(root)
    if not d.is_dir():
        return []
    return sorted((p.name for p in d.iterdir() if is_complete(p)), key=lambda v: int(v[1:]))


def current_version(root: Path) -> str | None:
    p = Path(root) / CURRENT
    if not p.is_file():
        return None
    v = p.read_text().strip()
    return v or None


def resolve(root: Path, version: str | None = None) -> Path:
    """Directory of `version` (default: CURRENT). ArtifactError / UnknownIdError when absent."""
    root = Path(root)
    version = version or current_version(root)
    if version is None:
        raise ArtifactError(f"no published bundle under {root} (no {CURRENT} file); run `recsys build-index` first")
    d = bundles_dir(root) / version
    if not is_complete(d):
        have = list_versions(root)
        raise UnknownIdError(f"bundle version {version!r} not found (or incomplete) under {bundles_dir(root)}; have {have}")
    return d


def next_version(root: Path) -> str:
    vs = list_versions(root)
    n = int(vs[-1][1:]) + 1 if vs else 1
    return f"v{n:04d}"


def set_current(root: Path, version: str) -> None:
    """Atomically point CURRENT at `version` (temp file + fsync + os.replace, then fsync the dir)."""
    with root_lock(root):
        _set_current(root, version)


def _set_current(root: Path, version: str) -> None:
    resolve(root, version)
    with atomic_path(Path(root) / CURRENT) as tmp:
        tmp.write_text(version + "\n")
    _fsync_dir(Path(root))


@contextlib.contextmanager
def root_lock(root: Path) -> Iterator[None]:
    """Exclusive lock on INDEX_ROOT for publish / prune / rollback (blocks until the holder is done;
    the kernel drops it when the holder dies, so a crash never leaves it held)."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    fd = os.open(root / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # releases the lock


# --- writing ----------------------------------------------------------------------------------

@dataclass
class BundleContent:
    """Everything a bundle holds, in memory, rows in final (created_at) order."""

    index: Any  # faiss.Index, labels = rows
    post_ids: np.ndarray  # int64 (N,)
    author_ids: np.ndarray  # int64 (N,), -1 unknown
    created_at_us: np.ndarray  # int64 (N,) microseconds since epoch, INT64_MIN unknown
    latents: np.ndarray  # float32 (N, Z)
    vectors: np.ndarray  # float32 (N, d)
    popularity: np.ndarray  # float64 (N,) (recsys.prior; int64 in bundles built before the half-life)
    histories: pl.DataFrame  # user_id, history list[i64], seen list[i64]
    manifest: dict
    run_dir: Path | None = None  # copied into the bundle's run/
    id_maps: dict = field(default_factory=dict)  # entity -> recsys.ids.IdMap (string-id entities only)
    online: pl.DataFrame | None = None  # the folded online log (ONLINE_FILE)
    modality_codes: np.ndarray | None = None  # float16 (N, M, Z), optional
    analysis: Any = None  # recsys.analysis.store.Analysis, written to analysis/


def publish(
    root: Path,
    content: BundleContent,
    keep: int = 5,
    version: str | None = None,
    on_file_written: Callable[[str], None] | None = None,
) -> Path:
    """Write `content` as a new immutable version, swap CURRENT to it, prune old versions.

    `on_file_written(name)` is called after each file lands in the temp dir (progress; tests use
    it to inject a crash). On any exception the temp dir is removed and CURRENT is untouched."""
    root = Path(root)
    with root_lock(root):
        return _publish(root, content, keep, version, on_file_written)


def _publish(root: Path, content: BundleContent, keep: int, version: str | None,
             on_file_written: Callable[[str], None] | None) -> Path:
    bundles_dir(root).mkdir(parents=True, exist_ok=True)
    clean_leftovers(root)
    version = version or next_version(root)
    if (bundles_dir(root) / version).exists():
        raise ConfigError(f"bundle version {version} already exists under {bundles_dir(root)}; bundles are immutable")
    tmp = Path(tempfile.mkdtemp(prefix=f"{TMP_PREFIX}{version}-", dir=root))
    hook = on_file_written or (lambda name: None)
    try:
        c = content
        n = len(c.post_ids)
        assert c.index.ntotal == n == len(c.latents) == len(c.vectors) == len(c.popularity), "bundle arrays disagree on N"
        from index.faiss_index import write_index

        write_index(c.index, tmp / INDEX_FILE); hook(INDEX_FILE)
        for name, arr in ((IDS_FILE, c.post_ids.astype(np.int64)), (LATENTS_FILE, c.latents.astype(np.float32)),
                          (VECTORS_FILE, c.vectors.astype(np.float32)), (POPULARITY_FILE, c.popularity.astype(np.float64))):
            np.save(tmp / name, arr); hook(name)
        created = pl.Series("created_at", c.created_at_us, pl.Int64)
        posts = pl.DataFrame({
            "post_id": pl.Series(c.post_ids, dtype=pl.Int64),
            "author_id": pl.Series(c.author_ids, dtype=pl.Int64).replace(-1, None),
            "created_at": created.replace(np.iinfo(np.int64).min, None).cast(pl.Datetime("us", "UTC")),
        })
        posts.write_parquet(tmp / POSTS_FILE); hook(POSTS_FILE)
        c.histories.write_parquet(tmp / HISTORIES_FILE); hook(HISTORIES_FILE)
        if c.modality_codes is not None:
            assert len(c.modality_codes) == n, "modality codes disagree on N"
            np.save(tmp / CODES_FILE, c.modality_codes.astype(np.float16)); hook(CODES_FILE)
        # the caller's string ids, for answers in their own ids (read back by load_id_maps)
        save_id_maps(tmp, c.id_maps, lambda path, df: (df.write_parquet(path), hook(path.name)))
        if c.online is not None:
            c.online.write_parquet(tmp / ONLINE_FILE); hook(ONLINE_FILE)
        if c.run_dir is not None:
            # the model files only: resume checkpoints (optimizer state) are not needed to serve
            shutil.copytree(c.run_dir, tmp / RUN_DIR, ignore=shutil.ignore_patterns("checkpoint*", ".*.tmp")); hook(RUN_DIR)
        if c.analysis is not None:
            from recsys.analysis.store import write_analysis

            write_analysis(tmp / ANALYSIS_DIR, c.analysis); hook(ANALYSIS_DIR)
        manifest = dict(c.manifest)
        manifest.setdefault("id_types", id_types(c.id_maps))
        manifest.update(format=FORMAT, version=version, n_posts=n, created_at=dt.datetime.now(dt.UTC).isoformat(),
                        files=sorted(p.name for p in tmp.iterdir()) + [MANIFEST])
        write_json(tmp / MANIFEST, manifest); hook(MANIFEST)
        _fsync_tree(tmp)
        final = bundles_dir(root) / version
        os.rename(tmp, final)
        _fsync_dir(bundles_dir(root))
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    _set_current(root, version)
    logger.info("published bundle %s (%d posts) under %s", version, n, root)
    _prune(root, keep)
    return final


def prune(root: Path, keep: int) -> list[str]:
    """Delete the oldest versions beyond `keep` (never CURRENT). Returns the removed versions."""
    with root_lock(root):
        return _prune(Path(root), keep)


def _prune(root: Path, keep: int) -> list[str]:
    if keep < 1:
        raise ConfigError(f"--keep must be >= 1, got {keep}")
    cur = current_version(root)
    vs = list_versions(root)
    removed = []
    for v in vs[: max(0, len(vs) - keep)]:
        if v == cur:
            continue
        # unpublish first (one atomic rename: unlisted, unloadable, no rollback target), then delete
        trash = root / f"{TRASH_PREFIX}{v}-{uuid.uuid4().hex[:8]}"
        os.rename(bundles_dir(root) / v, trash)
        _fsync_dir(bundles_dir(root))
        shutil.rmtree(trash, ignore_errors=True)
        removed.append(v)
    return removed


def rollback(root: Path, to: str | None = None) -> str:
    """Point CURRENT at `to` (default: the newest version older than CURRENT). Returns it."""
    with root_lock(root):
        vs = list_versions(root)
        cur = current_version(root)
        if to is None:
            older = [v for v in vs if cur is None or int(v[1:]) < int(cur[1:])]
            if not older:
                raise ArtifactError(f"nothing to roll back to under {root}: versions {vs}, current {cur}")
            to = older[-1]
        _set_current(root, to)
    logger.info("CURRENT %s -> %s", cur, to)
    return to


def clean_leftovers(root: Path) -> list[str]:
    """Remove what interrupted publishes and prunes left: temp and trash directories, CURRENT temp
    files, and entries of `bundles/` that are not complete versions (CURRENT's target is kept
    whatever its state). Call it holding `root_lock` (then none of them is in progress). Returns
    the removed names, relative to `root`."""
    root = Path(root)
    cur = current_version(root)
    gone = []
    leftovers = [p for p in root.iterdir() if p.name.startswith((TMP_PREFIX, TRASH_PREFIX, f".{CURRENT}."))]
    if bundles_dir(root).is_dir():
        leftovers += [p for p in bundles_dir(root).iterdir() if p.name != cur and not is_complete(p)]
    for p in leftovers:
        if p.is_dir() and not p.is_symlink():
            shutil.rmtree(p, ignore_errors=True)
        else:
            p.unlink(missing_ok=True)
        gone.append(str(p.relative_to(root)))
    if gone:
        logger.warning("removed leftovers of interrupted builds / prunes under %s: %s", root, gone)
    return gone


def _fsync_tree(d: Path) -> None:
    for p in sorted(d.rglob("*"), reverse=True):
        if p.is_file():
            with open(p, "rb") as f:
                os.fsync(f.fileno())
        elif p.is_dir():
            _fsync_dir(p)
    _fsync_dir(d)


def _fsync_dir(d: Path) -> None:
    fd = os.open(d, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


# --- reading ----------------------------------------------------------------------------------

@dataclass
class Bundle:
    """A loaded bundle (read-only arrays; never mutated after load)."""

    path: Path
    version: str
    manifest: dict
    index: Any
    post_ids: np.ndarray  # int64 (N,) row -> post id
    author_ids: np.ndarray  # int64 (N,), -1 unknown
    created_at_us: np.ndarray  # int64 (N,) non-decreasing; INT64_MIN unknown
    latents: np.ndarray  # float32 (N, Z)
    vectors: np.ndarray  # float32 (N, d)
    popularity: np.ndarray  # float64 (N,) (recsys.prior; int64 in bundles built before the half-life)
    histories: pl.DataFrame
    extra: dict = field(default_factory=dict)
    id_maps: dict = field(default_factory=dict)  # entity -> recsys.ids.IdMap (string-id entities only)
    modality_codes: np.ndarray | None = None  # float16 (N, M, Z) memory-mapped, optional

    @property
    def codes_names(self) -> list[str]:
        """Modality of each column of `modality_codes` (empty without them)."""
        return list(self.manifest.get("modality_codes", [])) if self.modality_codes is not None else []

    @property
    def n(self) -> int:
        return len(self.post_ids)

    @property
    def run_dir(self) -> Path | None:
        p = self.path / RUN_DIR
        return p if p.is_dir() else None


def load_bundle(root: Path, version: str | None = None, mmap: bool = False) -> Bundle:
    """Load and check a bundle (default: CURRENT). A broken bundle raises ArtifactError naming the file."""
    d = resolve(root, version)
    manifest = read_json(d / MANIFEST)
    if manifest.get("format") != FORMAT:
        raise ArtifactError(f"{d / MANIFEST}: bundle format {manifest.get('format')!r}, this code reads {FORMAT}")
    for name in REQUIRED:
        if not (d / name).exists():
            raise ArtifactError(f"bundle {d} is missing {name}")
    from index.faiss_index import read_index, set_default_param

    try:
        index = read_index(d / INDEX_FILE)
    except RuntimeError as e:
        raise ArtifactError(f"{d / INDEX_FILE} is not a readable faiss index: {str(e).splitlines()[0]}") from e
    mode = "r" if mmap else None
    post_ids = np.load(d / IDS_FILE)
    latents = np.load(d / LATENTS_FILE, mmap_mode=mode)
    vectors = np.load(d / VECTORS_FILE, mmap_mode=mode)
    popularity = np.load(d / POPULARITY_FILE)
    posts = pl.read_parquet(d / POSTS_FILE)
    n = len(post_ids)
    checks = [
        (index.ntotal == n, f"index has {index.ntotal} vectors but {IDS_FILE} has {n} ids"),
        (index.d == manifest["dim"], f"index dim {index.d} != manifest dim {manifest['dim']}"),
        (vectors.shape == (n, manifest["dim"]), f"{VECTORS_FILE} shape {vectors.shape} != ({n}, {manifest['dim']})"),
        (latents.shape == (n, manifest["latent_dim"]), f"{LATENTS_FILE} shape {latents.shape} != ({n}, {manifest['latent_dim']})"),
        (len(posts) == n and len(popularity) == n, f"{POSTS_FILE}/{POPULARITY_FILE} rows != {n}"),
        (n == manifest["n_posts"], f"manifest n_posts {manifest['n_posts']} != {n}"),
    ]
    codes = np.load(d / CODES_FILE, mmap_mode="r") if (d / CODES_FILE).is_file() else None  # only K rows are read per request
    if codes is not None:
        m = len(manifest.get("modality_codes", []))
        checks.append((codes.shape == (n, m, manifest["latent_dim"]),
                       f"{CODES_FILE} shape {codes.shape} != ({n}, {m}, {manifest['latent_dim']})"))
    for ok, msg in checks:
        if not ok:
            raise ArtifactError(f"bundle {d}: {msg}")
    set_default_param(index, manifest.get("search", {}).get("value"))
    created = posts["created_at"].cast(pl.Int64).fill_null(np.iinfo(np.int64).min).to_numpy()
    extra = {}
    if (d / ANALYSIS_DIR).is_dir():
        from recsys.analysis.store import read_analysis

        extra["analysis"] = read_analysis(d / ANALYSIS_DIR)  # a broken one stops loading, naming the file
    return Bundle(
        path=d, version=d.name, manifest=manifest, index=index, post_ids=post_ids,
        author_ids=posts["author_id"].fill_null(-1).to_numpy().astype(np.int64), created_at_us=created,
        latents=latents, vectors=vectors, popularity=popularity,
        histories=pl.read_parquet(d / HISTORIES_FILE), id_maps=load_id_maps(d), modality_codes=codes, extra=extra,
    )
