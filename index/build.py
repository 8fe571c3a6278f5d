"""Build a bundle: vectors -> FAISS index -> recall gate -> publish.

    build_from_run(run_dir, data_dir, out_root)      the `recsys build-index` path (trained run)
    build_bundle(catalogue, queries, out_root, ...)  the shared core (also used by bench/ with
                                                    vectors it generates itself)

Shapes: N posts, Z latent dim, d retrieval dim, Q queries, L history length.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl

from index import bundle as B
from index import faiss_index as fi
from index.recall import GateResult, tune
from recsys.errors import ArtifactError, RecsysError, SchemaError
from recsys.inference import NULL_TS, catalogue_vectors, history_table, latent_lookup, post_popularity, user_vectors
from recsys.prior import half_life_of, now_of

logger = logging.getLogger(__name__)



class RecallGateError(RecsysError):
    """The approximate index does not reach the target recall: nothing is published."""


@dataclass
class Catalogue:
    """Posts to index, any row order (build_bundle sorts rows by created_at)."""

    post_ids: np.ndarray  # int64 (N,)
    author_ids: np.ndarray  # int64 (N,), -1 unknown
    created_at_us: np.ndarray  # int64 (N,), NULL_TS unknown
    latents: np.ndarray  # float32 (N, Z)
    vectors: np.ndarray  # float32 (N, d)
    popularity: np.ndarray  # float64 (N,) distinct users, recency-weighted with a half-life (recsys.prior)
    histories: pl.DataFrame  # user_id i64, history list[i64] (most-recent-last), seen list[i64]
    id_maps: dict | None = None  # entity -> recsys.ids.IdMap for string-id entities (the dataset's)
    modality_codes: np.ndarray | None = None  # float16 (N, M, Z) single-modality codes (recsys.explain)
    half_life_s: float | None = None  # the popularity counts' half-life (None: all-time counts)
    popularity_now_us: int | None = None  # the time the counts are weighted at (the latest interaction)


def build_bundle(
    cat: Catalogue,
    queries: np.ndarray,
    out_root: Path,
    *,
    factory: str | None = None,
    target_recall: float = 0.95,
    k: int = 100,
    keep: int = 5,
    max_search_value: int | None = None,
    model: dict | None = None,
    run_dir: Path | None = None,
    manifest_extra: dict | None = None,
    on_file_written=None,
    online: pl.DataFrame | None = None,
    analysis=None,
) -> tuple[Path, GateResult]:
    """Index `cat`, check recall@k on `queries` float32 (Q, d) against exact search, publish.

    Raises RecallGateError (nothing written) when the best tried search parameter stays below
    `target_recall`."""
    n, d = cat.vectors.shape
    if n == 0:
        raise SchemaError("cannot build an index over 0 posts")
    if not 0.0 < target_recall <= 1.0:
        raise SchemaError(f"--target-recall must be in (0, 1], got {target_recall}")
    if k < 1:
        raise SchemaError(f"--k must be >= 1, got {k}")
    order = np.argsort(cat.created_at_us, kind="stable")  # rows oldest first: age filter = a row range
    vectors = np.ascontiguousarray(cat.vectors[order], dtype=np.float32)
    factory = factory or fi.choose_factory(n, d)
    t0 = time.perf_counter()
    index = fi.build_index(vectors, factory)
    build_s = time.perf_counter() - t0
    gate = tune(index, vectors, np.asarray(queries, np.float32), k=k, target=target_recall, max_value=max_search_value)
    if not gate.passed:
        raise RecallGateError(
            f"recall gate failed: {factory} reaches recall@{gate.k}={gate.recall:.4f} with "
            f"{gate.param_name}={gate.param_value} on {gate.n_queries} queries, target is {target_recall}; "
            f"nothing published (tried {[t['value'] for t in gate.tried]}; try a larger --factory or a lower --target-recall)"
        )
    fi.set_default_param(index, gate.param_value)
    manifest = {
        "n_posts": n,
        "dim": d,
        "latent_dim": int(cat.latents.shape[1]),
        "metric": fi.METRIC,
        "factory": factory,
        "exact": fi.search_param_name(index) is None,
        "search": {"param": gate.param_name, "value": gate.param_value},
        "recall": {"k": gate.k, "target": target_recall, "measured": round(gate.recall, 5), "n_queries": gate.n_queries,
                   "tried": gate.tried},
        "latency_ms": {"p50": round(gate.latency_ms_p50, 4), "p99": round(gate.latency_ms_p99, 4)},
        "build_seconds": round(build_s, 2),
        "n_users": len(cat.histories),
        "model": model or {"kind": "run"},
        "popularity": {"half_life_s": cat.half_life_s, "now_us": cat.popularity_now_us},
        **(manifest_extra or {}),
    }
    content = B.BundleContent(
        index=index,
        post_ids=cat.post_ids[order].astype(np.int64),
        author_ids=cat.author_ids[order].astype(np.int64),
        created_at_us=cat.created_at_us[order].astype(np.int64),
        latents=np.ascontiguousarray(cat.latents[order], dtype=np.float32),
        vectors=vectors,
        popularity=cat.popularity[order].astype(np.float64),
        histories=cat.histories,
        manifest=manifest,
        run_dir=run_dir,
        id_maps=dict(cat.id_maps or {}),
        online=online,
        modality_codes=None if cat.modality_codes is None else cat.modality_codes[order],
        analysis=analysis,  # recsys.analysis.store.Analysis (index/clusters.py) or None
    )
    path = B.publish(out_root, content, keep=keep, on_file_written=on_file_written)
    return path, gate


# --- from a trained run ------------------------------------------------------------------------

def build_from_run(
    run_dir: Path,
    data_dir: Path,
    out_root: Path,
    *,
    factory: str | None = None,
    target_recall: float = 0.95,
    k: int = 100,
    keep: int = 5,
    max_search_value: int | None = None,
    n_queries: int = 1000,
    seed: int = 0,
    on_file_written=None,
    log: str | None = None,
) -> tuple[Path, GateResult]:
    """Vectors of every post of `data_dir` from the run at `run_dir`, then `build_bundle`; with
    `log` (an online log), its posts, deletes and events folded in (index.fold)."""
    from recsys.dataset import load_dataset
    from recsys.features import load_features
    from recsys.runs import load_run

    run = load_run(Path(run_dir))
    ds = load_dataset(Path(data_dir))
    feats = load_features(Path(data_dir))
    post_ids = ds.posts["post_id"].to_numpy().astype(np.int64)
    usable = [m for m in run.modalities if m in feats]
    if not usable:
        raise ArtifactError(
            f"{data_dir}: the feature store has modalities {sorted(feats)} but the run at {run_dir} needs "
            f"{sorted(run.modalities)}; run `recsys encode --data {data_dir}` first"
        )
    for m in usable:
        if feats[m].dim != run.modalities[m]:
            raise SchemaError(f"features[{m}] dim {feats[m].dim} != run input dim {run.modalities[m]} ({data_dir})")
    authors = ds.posts["author_id"].fill_null(-1).to_numpy().astype(np.int64)
    inter = ds.interactions
    half_life, now = half_life_of(ds.meta), now_of(inter)
    popularity = post_popularity(inter, post_ids, half_life, now)  # (N,): the population prior and the popularity blend
    latents_a, vectors_a = catalogue_vectors(run, feats, post_ids, authors, popularity)  # (N, Z), (N, d)
    from recsys.explain import catalogue_codes

    codes = catalogue_codes(run, feats, post_ids)  # (N, M, Z) float16: the "why" modality

    history_max = run.max_history
    histories = history_table(inter, keep=history_max)
    created = ds.posts["created_at"].cast(pl.Int64).fill_null(NULL_TS).to_numpy().astype(np.int64)

    cat = Catalogue(post_ids, authors, created, latents_a, vectors_a, popularity, histories, id_maps=ds.id_maps, modality_codes=codes,
                    half_life_s=half_life, popularity_now_us=now)
    folded = None
    if log is not None:  # the online log: live posts in, deleted posts out, events into histories
        from index.fold import fold_into, fold_log, previous_fold

        folded = fold_log(log, post_ids, previous_fold(Path(out_root)))
        cat = fold_into(cat, folded, run, history_max)
    queries = _user_queries(run, cat.histories, cat.post_ids, cat.latents, cat.vectors, n_queries, seed)
    model = {
        "kind": "run",
        "fingerprint": str(getattr(run, "fingerprint", "")),
        "latent_dim": int(getattr(run, "latent_dim", latents_a.shape[1])),
        "dim": int(getattr(run, "dim", vectors_a.shape[1])),
        "max_history": history_max,
        "modalities": dict(run.modalities),
        "encoders": _jsonable(getattr(run, "encoders", {})),
        "dataset_fingerprint": str(getattr(run, "dataset_fingerprint", "")),
        "source_run": str(Path(run_dir).resolve()),
    }
    extra = {"modality_codes": list(run.modalities), "dataset": {"path": str(Path(data_dir).resolve()), "name": ds.name, "fingerprint": ds.fingerprint()},
             "feature_fingerprints": {m: feats[m].meta.get("fingerprint", "") for m in usable}}
    if folded is not None:
        extra["log_seq"] = folded.seq  # workers replay only the entries after this one
        extra["online"] = {"posts": len(folded.posts), "deleted": len(folded.deleted), "events": len(folded.events)}
    if model["dataset_fingerprint"] and model["dataset_fingerprint"] != extra["dataset"]["fingerprint"]:
        logger.warning("run was trained on dataset %s, indexing dataset %s (posts unseen in training are content-only)",
                       model["dataset_fingerprint"], extra["dataset"]["fingerprint"])
    from index.clusters import run_analysis

    analysis = run_analysis(out_root, run, ds, feats, post_ids, latents_a, vectors_a)  # interest clusters, sentiment, activity
    return build_bundle(
        cat, queries, out_root, factory=factory, target_recall=target_recall, k=k, keep=keep,
        max_search_value=max_search_value, model=model, run_dir=Path(run_dir), manifest_extra=extra,
        on_file_written=on_file_written, online=None if folded is None else folded.to_frame(), analysis=analysis,
    )


def _user_queries(run, histories, post_ids, latents, vectors, n_queries, seed) -> np.ndarray:
    """Held-out queries: vectors of users with history (sampled), else sampled post vectors."""
    rng = np.random.default_rng(seed)
    if len(histories):
        pick = np.sort(rng.choice(len(histories), min(n_queries, len(histories)), replace=False))
        h = histories.select(pl.all().gather(pick))
        hist = [np.asarray(x, np.int64) for x in h["history"].to_list()]
        q, has = user_vectors(run, hist, h["user_id"].to_numpy().astype(np.int64), latent_lookup(post_ids, latents))
        if has.any():
            return q[has]
    pick = rng.choice(len(vectors), min(n_queries, len(vectors)), replace=False)
    return run.post_query(vectors[pick])


def _jsonable(obj):
    import json

    try:
        json.dumps(obj)
        return obj
    except TypeError:
        return json.loads(json.dumps(obj, default=str))
