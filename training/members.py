"""`recsys train --set members=K`: K runs of one config from seeds seed, seed + 1, ..., served as
one ensemble run (layout and vectors: `recsys.ensemble`).

Each member is an ordinary run in `out/members/<k>/` (its own epoch selection on valid and its
own popularity blend); a member already trained there (status "done") is kept, so an
interrupted ensemble resumes with the member it stopped in. The ensemble's figures are measured
like one run's: valid-selected test figures in metrics.json, from the histories the server would
hold (`recsys.inference`). Training time is the members' sum.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import time
from pathlib import Path

from recsys.ensemble import ENSEMBLE_FILE, ENSEMBLE_FORMAT, MEMBERS_DIR
from recsys.errors import ArtifactError, ConfigError
from recsys.io import read_json, write_json
from recsys.runs import CHECKPOINT_FILE, METRICS_FILE, MODEL_FILE, RUN_FILE, load_run, scorer_from_run

logger = logging.getLogger(__name__)


def train_members(cfg, ds, data) -> Path:
    """Train `cfg.members` member runs and write the ensemble run at `cfg.out` -> its directory."""
    from training.train import _evaluate, _now, refits, summary_line, train

    k = int(cfg.members)
    if k < 1:
        raise ConfigError(f"members must be >= 1, got {k}")
    if refits(cfg, data):
        raise ConfigError("members > 1 with a refit is not supported: train the ensemble with refit=off")
    out = Path(cfg.out)
    if (out / MODEL_FILE).exists():
        raise ArtifactError(f"{out} already holds a single trained run; choose another --out for an ensemble")
    t0, start = time.time(), _now()
    dirs, infos = [], []  # member directories (relative) and their run.json
    for j in range(k):
        d = out / MEMBERS_DIR / str(j)
        info = read_json(d / RUN_FILE) if (d / RUN_FILE).is_file() else {}
        if not (info.get("status") == "done" and (d / MODEL_FILE).is_file()):
            logger.info("ensemble member %d of %d (seed %d) -> %s", j + 1, k, cfg.seed + j, d)
            resume = cfg.resume and (d / CHECKPOINT_FILE).is_file()
            train(dataclasses.replace(cfg, out=str(d), seed=cfg.seed + j, members=1, resume=resume))
            info = read_json(d / RUN_FILE)
        dirs.append(f"{MEMBERS_DIR}/{j}")
        infos.append(info)
    if int(os.environ.get("RANK", 0)) != 0:
        return out
    write_json(out / ENSEMBLE_FILE, {"format": ENSEMBLE_FORMAT, "members": dirs})
    run = load_run(out)
    first = infos[0]
    info = {
        "config": {**first.get("config", {}), "members": k, "seed": cfg.seed},
        "model_config": first.get("model_config"),
        "preset": cfg.preset,
        "dataset": first.get("dataset"),
        "versions": first.get("versions"),
        "trained_on": first.get("trained_on"),
        "members": [{"dir": d, "seed": cfg.seed + j, "best_epoch": m.get("best_epoch")} for j, (d, m) in enumerate(zip(dirs, infos))],
        "start_time": start,
        "status": "running",
    }
    write_json(out / RUN_FILE, info)
    scorer = scorer_from_run(run, ds, data)
    valid = _evaluate(scorer, data, "valid", (10, 20, 50))["metrics"]
    if cfg.final_eval:
        res = _evaluate(scorer, data, "test", (10, 20, 50))
        write_json(out / METRICS_FILE, {
            "selected_on": "valid recall@20 (each member)",
            "members": k,
            "valid": valid,
            "test": res["metrics"],
            "test_buckets": res.get("buckets"),
            "n_test_users": res.get("n_users"),
        })
    info.update(
        end_time=_now(), status="done", best_valid_recall20=valid["recall@20"], wall_seconds=round(time.time() - t0, 1),
        train_seconds=round(sum(float(m.get("train_seconds", 0.0)) for m in infos), 1),  # the members' own training
        peak_rss_mb=max(float(m.get("peak_rss_mb", 0.0)) for m in infos), model_fingerprint=run.fingerprint,
    )
    write_json(out / RUN_FILE, info)
    print(summary_line(f"ensemble of {k} | valid recall@20 {valid['recall@20']:.4f}", res["metrics"] if cfg.final_eval else None), flush=True)
    return out
