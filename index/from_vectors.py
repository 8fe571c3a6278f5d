"""Bundles from given post latents and a freshly initialised model (benchmarks, unit tests).

The bundle is a normal bundle: it carries a real `run/` (a `recsys.model.Recommender` saved with
`recsys.runs.save_model`, weights seeded but untrained), post vectors computed by that model from
the given latents, and user histories; so the serving code that runs on it is the production
code path (profiles through the real user tower, FAISS, filters, delta, "why").

Shapes: N posts, Z latent dim, d retrieval dim, U users.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import polars as pl

from index.build import Catalogue, build_bundle
from recsys.inference import latent_lookup, user_vectors
from index.recall import GateResult

MODALITY = "vec"  # the one input modality of the synthetic model (its input dim = Z)


def make_run(run_dir: Path, latent_dim: int, dim: int, max_history: int = 50, hidden: int = 64, seed: int = 0) -> Path:
    """Write a run dir with an untrained content-only model (no ID tables)."""
    import torch

    from recsys.model import ModelConfig, Recommender
    from recsys.runs import save_model

    torch.manual_seed(seed)
    cfg = ModelConfig(modalities=((MODALITY, latent_dim),), hidden=hidden, latent_dim=latent_dim, dim=dim,
                      max_history=max_history, use_id=False, graph_layers=0)
    model = Recommender(cfg).eval()
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    save_model(run_dir / "model.pt", model, export={}, meta={"dataset_fingerprint": "", "encoders": {}, "synthetic": True})
    return run_dir


def synthetic_catalogue(
    n: int, latent_dim: int, n_users: int, n_authors: int, seed: int = 0, n_clusters: int = 256,
    history_len: tuple[int, int] = (5, 50), span_days: float = 365.0, now_us: int | None = None,
) -> tuple[Catalogue, np.ndarray]:
    """Clustered unit latents (N, Z), ids, authors, created_at over `span_days` before `now_us`,
    popularity, and user histories drawn mostly from one cluster each. Returns (catalogue without
    vectors, cluster of each post)."""
    import time

    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((n_clusters, latent_dim)).astype(np.float32)
    cl = rng.integers(0, n_clusters, n)
    lat = np.empty((n, latent_dim), np.float32)
    for s in range(0, n, 100_000):  # bounded temporaries
        e = min(n, s + 100_000)
        x = centres[cl[s:e]] + 0.6 * rng.standard_normal((e - s, latent_dim)).astype(np.float32)
        lat[s:e] = x / np.linalg.norm(x, axis=1, keepdims=True)
    post_ids = (np.arange(n, dtype=np.int64) * 7 + 1_000_003)  # not row numbers
    now_us = now_us or int(time.time() * 1e6)
    created = now_us - rng.integers(0, int(span_days * 86400e6), n).astype(np.int64)
    by_cluster = np.argsort(cl, kind="stable")
    starts = np.searchsorted(cl[by_cluster], np.arange(n_clusters + 1))
    hist, seen = [], []
    for _ in range(n_users):
        c = rng.integers(0, n_clusters)
        pool = by_cluster[starts[c] : starts[c + 1]]
        m = int(rng.integers(*history_len))
        h = post_ids[rng.choice(pool, min(m, len(pool)), replace=False)] if len(pool) else post_ids[:0]
        hist.append(h.tolist())
        seen.append(np.unique(h).tolist())
    histories = pl.DataFrame(
        {"user_id": np.arange(n_users, dtype=np.int64), "history": hist, "seen": seen},
        schema={"user_id": pl.Int64, "history": pl.List(pl.Int64), "seen": pl.List(pl.Int64)},
    )
    cat = Catalogue(
        post_ids=post_ids, author_ids=rng.integers(0, n_authors, n).astype(np.int64), created_at_us=created,
        latents=lat, vectors=np.zeros((n, 0), np.float32),
        popularity=rng.zipf(1.5, n).clip(0, 10**6).astype(np.int64), histories=histories,
    )
    return cat, cl


def build_from_latents(
    cat: Catalogue, out_root: Path, dim: int | None = None, max_history: int = 50, n_queries: int = 1000,
    factory: str | None = None, target_recall: float = 0.95, k: int = 100, keep: int = 5, seed: int = 0,
    max_search_value: int | None = None, dataset: Path | None = None, events: pl.DataFrame | None = None,
    n_clusters: int | None = None,
) -> tuple[Path, GateResult]:
    """Fill `cat.vectors` with the synthetic model's post vectors and publish a bundle (naming
    `dataset` as its data root, e.g. one written by `write_posts_dataset`, when given). With
    `events` (post_id, ts), the bundle also gets its interest clusters (`n_clusters`, default:
    the k rule) and hourly activity (index/clusters.py)."""
    from recsys.runs import load_run

    z = cat.latents.shape[1]
    with tempfile.TemporaryDirectory() as tmp:
        run_dir = make_run(Path(tmp) / "run", z, dim or z, max_history=max_history, seed=seed)
        run = load_run(run_dir)
        vecs = [run.post_vectors(cat.latents[s : s + 65536], cat.post_ids[s : s + 65536]) for s in range(0, len(cat.post_ids), 65536)]
        cat.vectors = np.concatenate(vecs).astype(np.float32)
        rng = np.random.default_rng(seed)
        h = cat.histories
        pick = np.sort(rng.choice(len(h), min(n_queries, len(h)), replace=False)) if len(h) else np.zeros(0, np.int64)
        if len(pick):
            sub = h.select(pl.all().gather(pick))
            hist = [np.asarray(x, np.int64) for x in sub["history"].to_list()]
            queries, _ = user_vectors(run, hist, sub["user_id"].to_numpy().astype(np.int64), latent_lookup(cat.post_ids, cat.latents))
        else:
            queries = cat.vectors[rng.choice(len(cat.vectors), min(n_queries, len(cat.vectors)), replace=False)]
        model = {"kind": "run", "fingerprint": run.fingerprint, "latent_dim": z, "dim": run.dim,
                 "max_history": max_history, "modalities": dict(run.modalities), "synthetic": True}
        analysis = None
        if events is not None:
            from index.clusters import bundle_analysis
            from recsys.analysis.build import Inputs

            n = len(cat.post_ids)
            inp = Inputs(cat.post_ids, cat.latents, None, {MODALITY: np.ones(n, bool)}, [None] * n, cat.created_at_us, "synthetic")
            analysis = bundle_analysis(out_root, inp, events, vectors=cat.vectors, k=n_clusters, seed=seed)
        return build_bundle(cat, queries, out_root, factory=factory, target_recall=target_recall, k=k, keep=keep,
                            max_search_value=max_search_value, model=model, run_dir=run_dir,
                            manifest_extra={"dataset": {"path": str(Path(dataset).resolve())}} if dataset else None,
                            analysis=analysis)


def write_posts_dataset(cat: Catalogue, root: Path, media: list[Path]) -> Path:
    """A data root for a synthetic catalogue: posts.parquet (post_id, author_id, created_at, a
    text, image_path / video_path relative to `root`) whose media cycle over copies of the given
    files (images and videos; every third post is text only). Returns `root`."""
    import shutil

    from recsys.thumbnails import VIDEO_EXT

    root = Path(root)
    (root / "media").mkdir(parents=True, exist_ok=True)
    rel = []
    for i, f in enumerate(media):
        dst = root / "media" / f"{i:03d}{Path(f).suffix.lower()}"
        shutil.copyfile(f, dst)
        rel.append(dst.relative_to(root).as_posix())
    n = len(cat.post_ids)
    pick = np.arange(n) % max(len(rel), 1)
    has = (np.arange(n) % 3 != 2) & (len(rel) > 0)
    paths = np.array(rel or [""], dtype=object)[pick]
    is_video = np.array([Path(r).suffix in VIDEO_EXT for r in (rel or [""])])[pick]
    posts = pl.DataFrame({
        "post_id": pl.Series(cat.post_ids, dtype=pl.Int64),
        "author_id": pl.Series(cat.author_ids, dtype=pl.Int64),
        "created_at": pl.Series(cat.created_at_us, dtype=pl.Int64).cast(pl.Datetime("us", "UTC")),
        "text": [f"synthetic post {i}" for i in range(n)],
        "image_path": pl.Series(np.where(has & ~is_video, paths, None).tolist(), dtype=pl.String),
        "video_path": pl.Series(np.where(has & is_video, paths, None).tolist(), dtype=pl.String),
    })
    posts.write_parquet(root / "posts.parquet")
    return root
