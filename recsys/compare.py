"""Evaluate several baselines and trained runs on one dataset split (the work behind
`recsys evaluate`); `recsys.report` writes the result.

    report = compare(Path("data/tiktok"), baselines=["popular", "lightgcn"], split="test")

Trained baselines pick their epoch on VALID (early stopping inside `fit`); runs come with their
valid-selected checkpoint. When the split is test, each model is also evaluated on valid, so the
report shows the selection figure beside the reported one.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import torch

from recsys.baselines import NEEDS_FEATURES, aligned_features, get_baseline
from recsys.dataset import Dataset, load_dataset
from recsys.errors import ArtifactError, ConfigError
from recsys.evaluation import DEFAULT_KS, check_ks, evaluate, relevant_items
from recsys.ground_truth import load_ground_truth, oracle_lists, preference_recovery
from recsys.interactions import InteractionData, build_interaction_data
from recsys.io import read_json
from recsys.published import published_for

logger = logging.getLogger(__name__)
TRAINED = {"bpr", "lightgcn"}
RUN_FILE = "run.json"


def compare(
    data_dir: Path,
    baselines: Sequence[str] = (),
    runs: Sequence[Path] = (),
    split: str = "valid",
    ks: Sequence[int] = DEFAULT_KS,
    chunk_users: int = 2048,
    baseline_cfg: dict[str, dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """Fit/load every model, evaluate it on `split`; return the report dict (see recsys.report)."""
    ks = check_ks(ks)
    if not baselines and not runs:
        raise ConfigError("nothing to evaluate: pass at least one --baseline NAME or --run RUN_DIR")
    fits = {b: get_baseline(b) for b in baselines}  # unknown names fail before any work
    ds = load_dataset(data_dir)
    if ds.splits is None:
        raise ArtifactError(f"{ds.root} has no splits.parquet; run `recsys split --data {ds.root}` first")
    data = build_interaction_data(ds)
    n_eval = _check_split(data, split)
    for r in runs:
        check_run_dataset(Path(r), ds)  # a run from other data fails before any training
    features = aligned_features(ds.root, data.post_ids) if NEEDS_FEATURES & set(baselines) else None

    gt = load_ground_truth(ds.root, ds.posts, ds.meta)
    models = []
    for name, fit in fits.items():
        t0 = time.perf_counter()
        scorer = fit(data, features if name in NEEDS_FEATURES else None, **(baseline_cfg or {}).get(name, {}))
        fit_s = time.perf_counter() - t0
        info = getattr(scorer, "info", {})
        if name in TRAINED:
            selection = f"selected on valid (best epoch {info.get('best_epoch')}), reported on {split}"
        elif name == "popular":
            selection = f"no parameters, reported on {split}"
        else:
            selection = f"no training; defaults chosen on valid, reported on {split}"
        models.append(_evaluate_model(f"baseline:{name}", "baseline", scorer, data, split, ks, chunk_users, fit_s, selection, info, gt))
    for r in runs:
        scorer, load_s, info = _load_run_scorer(Path(r), ds, data, split)
        best = info.get("best_epoch")
        selection = f"run checkpoint selected on valid{f' (best epoch {best})' if best else ''}, reported on {split}"
        if info.get("refit"):
            selection = (
                f"epochs selected on valid ({best}); refit on {' + '.join(info['refit'])} for that many epochs, reported on {split}"
                if split == "test" else f"the refit run's selection run (train only, best epoch {best}), reported on {split}"
            )
        models.append(_evaluate_model(f"run:{Path(r).name}", "run", scorer, data, split, ks, chunk_users, load_s, selection, info, gt))

    return {
        "dataset": {
            "name": ds.name,
            "fingerprint": ds.fingerprint(),
            "root": str(ds.root),
            "source": ds.meta.get("source"),
            "n_users": data.n_users,
            "n_posts": data.n_posts,
        },
        "split": split,
        "ks": list(ks),
        "n_users": n_eval,
        "protocol": (
            "full ranking over all posts; train items masked (train + valid when scoring test); user histories "
            f"when scoring {split}: {' + '.join(data.history_splits(split))} (what the server holds then; users "
            "without history get the population prior, for every model alike); popularity (the prior, the popular "
            "baseline, the popularity blend): distinct users"
            + ("" if data.half_life_s is None else f" weighted by recency, half-life {data.half_life_s / 3600:g} h (chosen on valid by `recsys split`)")
            + " in that history; relevant = "
            "target-split items not masked; users with >= 1 relevant item; ties broken by lower post index; "
            "NDCG with log2(rank + 2), ideal DCG over min(|relevant|, K); MRR of the first relevant item within "
            "the top-K (0 if none); coverage = fraction of all posts in at least one user's top-K"
        ),
        "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "machine": {"cpus": os.cpu_count(), "torch_threads": torch.get_num_threads(), "note": "timings on a shared CPU are noisy"},
        "models": models,
        "hidden_reference": _hidden_reference(gt, data, split, ks),
        "published": published_for(ds.meta, split),
    }


def _hidden_reference(gt, data: InteractionData, split: str, ks) -> dict | None:
    """The hidden-preference measures of lists ranked by the ground truth's own choice weights
    (synthetic platform only): the ceiling of pref_capture, and what a perfect recovery scores on
    the partial measures (topic affinity, favourite-author share)."""
    if gt is None:
        return None
    k = 20 if 20 in ks else ks[-1]
    relevant = relevant_items(data.split(split), data.exclude_for(split).tocsr())
    users = np.flatnonzero(np.diff(relevant.indptr) > 0).astype(np.int64)  # the evaluated users
    return preference_recovery(gt, data, *oracle_lists(gt, data, users, split, k), split)


def _evaluate_model(model_id, kind, scorer, data, split, ks, chunk_users, fit_s, selection, info, gt=None):
    res = evaluate(scorer, data, split, ks, chunk_users=chunk_users, keep_lists=gt is not None)
    hidden = None
    if gt is not None:  # synthetic platform: how well the lists recover the hidden preferences
        k = 20 if 20 in ks else ks[-1]
        users, idx, valid = res.pop("lists")  # top-max(ks), ordered: the top-k is its prefix
        hidden = preference_recovery(gt, data, users, idx[:, :k], valid[:, :k], split)
    valid_res = evaluate(scorer, data, "valid", ks, chunk_users=chunk_users) if split == "test" else None
    valid = valid_res["metrics"] if valid_res else None
    logger.info("%s: %s recall@%d %.4f (fit %.1f s, eval %.2f s)", model_id, split, ks[-1], res["metrics"][f"recall@{ks[-1]}"], fit_s, res["timings"]["total_s"])
    return {
        "id": model_id,
        "kind": kind,
        "name": scorer.name,
        "selection": selection,
        "config": info.get("config", {}),
        "info": {k: v for k, v in info.items() if k != "config"},
        "metrics": res["metrics"],
        "valid_metrics": valid,
        "buckets": res["buckets"],
        "history": res["history"],
        "hidden_preferences": hidden,
        "n_users": res["n_users"],
        "timings": {
            "fit_s": round(fit_s, 3),
            "eval_s": res["timings"]["total_s"],
            "eval": res["timings"],
            "valid_eval_s": valid_res["timings"]["total_s"] if valid_res else None,
        },
    }


def _check_split(data: InteractionData, split: str) -> int:
    target = data.split(split)  # ConfigError for an unknown split name
    rel = target - target.multiply(data.exclude_for(split) > 0)
    n = int((np.diff(rel.tocsr().indptr) > 0).sum())
    if n == 0:
        raise ConfigError(f"split {split!r} of dataset {data.dataset_name!r} has no users with an item to predict; nothing to evaluate")
    return n


def run_dataset_fingerprint(run_dir: Path) -> str | None:
    info = read_json(run_dir / RUN_FILE)
    fp = info.get("dataset_fingerprint") or (info.get("dataset") or {}).get("fingerprint")
    return str(fp) if fp else None


def check_run_dataset(run_dir: Path, ds: Dataset) -> None:
    """ArtifactError unless `run_dir` is a run trained on `ds` (run.json dataset fingerprint)."""
    if not (run_dir / RUN_FILE).is_file():
        raise ArtifactError(f"{run_dir} is not a run directory (no {RUN_FILE}); train one with `recsys train --out {run_dir}`")
    fp, want = run_dataset_fingerprint(run_dir), ds.fingerprint()
    if fp is not None and fp != want:
        raise ArtifactError(
            f"run {run_dir} was trained on a dataset with fingerprint {fp}, but {ds.root} ({ds.name}) has "
            f"fingerprint {want}; evaluate a run on the dataset it was trained on"
        )


def _load_run_scorer(run_dir: Path, ds: Dataset, data: InteractionData, split: str):
    try:
        from recsys.runs import load_scorer, run_for_split
    except ImportError as e:
        raise ArtifactError(f"cannot evaluate runs: recsys.runs.load_scorer is not available ({e})") from e
    t0 = time.perf_counter()
    scored = run_for_split(run_dir, split)  # a refit run is scored on valid by its selection run
    scorer = load_scorer(scored, ds, data)
    load_s = time.perf_counter() - t0
    info = read_json(run_dir / RUN_FILE)
    refit = info.get("trained_on") if info.get("selection") else None
    best = info["selection"]["best_epoch"] if refit else info.get("best_epoch")
    return scorer, load_s, {"config": info.get("config", {}), "run_dir": str(scored), "best_epoch": best, "refit": refit}
