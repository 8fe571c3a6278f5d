"""`recsys evaluate` end to end on a small on-disk dataset: report files, compare table, and the
clear failures (exit 2) for bad input."""

from __future__ import annotations

import json
import shutil

import numpy as np
import polars as pl
import pytest

from recsys.cli import main
from recsys.dataset import save_dataset
from recsys.features import ModalityFeatures, save_modality
from recsys.io import write_json
from tests.unit.baselines.conftest import make_world


def write_world(root, splits=True, drop_test=False):
    data, feats = make_world(seed=1)
    rows = []
    for split in ("train", "valid", "test"):
        m = data.split(split).tocoo()
        rows += [(int(u), int(i), split) for u, i in zip(m.row, m.col)]
    if drop_test:
        rows = [r for r in rows if r[2] != "test"]
    inter = pl.DataFrame({"user_id": [r[0] for r in rows], "post_id": [r[1] for r in rows]}).with_columns(
        pl.lit(None, pl.Datetime("us", "UTC")).alias("ts"), pl.lit("view").alias("event"), pl.lit(1.0).alias("weight")
    )
    posts = pl.DataFrame({"post_id": np.arange(data.n_posts, dtype=np.int64)}).with_columns(
        pl.lit(None, pl.Int64).alias("author_id"), pl.lit(None, pl.Datetime("us", "UTC")).alias("created_at"),
        *[pl.lit(None, pl.String).alias(c) for c in ("text", "image_path", "video_path")],
    )
    sp_ = pl.DataFrame({"row": np.arange(len(rows)), "split": [r[2] for r in rows]}) if splits else None
    save_dataset(root, posts, inter, sp_, {"name": "world"})
    for name, (x, present) in feats.items():
        save_modality(root, ModalityFeatures(name, np.arange(len(x)), x, present, np.full(len(x), "h")))
    return root


@pytest.fixture(scope="module")
def world_dir(tmp_path_factory):
    return write_world(tmp_path_factory.mktemp("world") / "ds")


def test_compare_report(world_dir, tmp_path, capsys):
    out = tmp_path / "rep"
    argv = ["evaluate", "--data", str(world_dir), "--split", "test", "--out", str(out), "--compare",
            "--baseline", "popular", "--baseline", "itemknn", "--baseline", "content-knn", "--baseline", "bpr",
            "--set", "bpr.epochs=3", "--set", "bpr.dim=8", "--k", "5", "20"]
    assert main(argv) == 0
    assert "baseline:content-knn" in capsys.readouterr().out
    r = json.loads((out / "report.json").read_text())
    assert r["split"] == "test" and r["ks"] == [5, 20] and r["dataset"]["name"] == "world"
    assert len(r["dataset"]["fingerprint"]) == 16 and r["published"] is None
    ids = [m["id"] for m in r["models"]]
    assert ids == ["baseline:popular", "baseline:itemknn", "baseline:content-knn", "baseline:bpr"]
    bpr = r["models"][3]
    assert bpr["config"]["epochs"] == 3 and bpr["info"]["epochs_run"] <= 3
    assert bpr["selection"].startswith("selected on valid") and bpr["selection"].endswith("reported on test")
    for m in r["models"]:
        assert set(m["metrics"]) >= {"recall@20", "ndcg@20", "precision@5", "hit@20", "mrr@20", "coverage@20"}
        assert m["valid_metrics"]["recall@20"] >= 0 and m["timings"]["fit_s"] >= 0 and m["timings"]["eval_s"] > 0
    md = (out / "report.md").read_text()
    assert "| baseline:itemknn |" in md and "selected on valid, reported on test" in md
    for png in ("recall_ndcg_at_k.png", "buckets.png"):
        assert (out / png).read_bytes()[:4] == b"\x89PNG"


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--baseline", "svd"], "unknown baseline 'svd'; known baselines: popular, itemknn"),
        (["--baseline", "popular", "--k", "0", "10"], "K values must be >= 1"),
        (["--baseline", "popular", "--split", "train"], "--split must be valid or test"),
        ([], "nothing to evaluate"),
        (["--baseline", "popular", "--set", "bpr.reg=1"], "not among --baseline"),
        (["--baseline", "popular", "--set", "popular"], "--set expects BASELINE.KEY=VALUE"),
        (["--baseline", "popular", "--threads", "-1"], "--threads must be >= 0"),
    ],
)
def test_bad_flags_exit_2(world_dir, tmp_path, capsys, extra, message):
    assert main(["evaluate", "--data", str(world_dir), "--out", str(tmp_path / "r"), *extra]) == 2
    assert message in capsys.readouterr().err


def test_missing_splits_says_run_recsys_split(tmp_path, capsys):
    root = write_world(tmp_path / "nosplit", splits=False)
    assert main(["evaluate", "--data", str(root), "--baseline", "popular", "--out", str(tmp_path / "r")]) == 2
    assert "run `recsys split --data" in capsys.readouterr().err


def test_split_without_users(tmp_path, capsys):
    root = write_world(tmp_path / "notest", drop_test=True)
    assert main(["evaluate", "--data", str(root), "--baseline", "popular", "--split", "test", "--out", str(tmp_path / "r")]) == 2
    assert "split 'test' of dataset 'world' has no users" in capsys.readouterr().err


def test_run_from_another_dataset_is_refused(world_dir, tmp_path, capsys):
    run = tmp_path / "run"
    run.mkdir()
    write_json(run / "run.json", {"dataset": {"name": "other", "fingerprint": "0123456789abcdef"}})
    assert main(["evaluate", "--data", str(world_dir), "--run", str(run), "--out", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err
    assert "trained on a dataset with fingerprint 0123456789abcdef" in err and "evaluate a run on the dataset it was trained on" in err
    shutil.rmtree(run)
    run.mkdir()
    assert main(["evaluate", "--data", str(world_dir), "--run", str(run), "--out", str(tmp_path / "r")]) == 2
    assert "is not a run directory (no run.json)" in capsys.readouterr().err


@pytest.mark.shared
def test_tiktok_report_shows_published_figures(tiktok, tmp_path):
    out = tmp_path / "rep"
    assert main(["evaluate", "--data", str(tiktok), "--baseline", "popular", "--split", "test", "--out", str(out), "--k", "20"]) == 0
    r = json.loads((out / "report.json").read_text())
    assert round(r["models"][0]["metrics"]["recall@20"], 4) == 0.0597
    assert r["published"]["published"]["rows"]["DiffMM"]["recall@20"] == 0.1129
    md = (out / "report.md").read_text()
    assert "| DiffMM | DiffMM Table 1: selected on test, +text | 0.1129 | 0.0056 | 0.0456 |" in md
    assert "| MMHCL | published after DiffMM: selected on valid, +text | 0.1139 | - | 0.0492 |" in md
    assert "| baseline:popular | ours: selected on valid | 0.0597 | 0.0030 | 0.0255 |" in md


def test_run_is_loaded_through_recsys_runs(world_dir, tmp_path, monkeypatch):
    """--run: fingerprint checked here, scorer from recsys.runs.load_scorer (stubbed: the model
    side owns it), best epoch from run.json in the selection note."""
    import torch

    from recsys.dataset import load_dataset

    runs = pytest.importorskip("recsys.runs")

    calls = []

    class Stub:
        name = "stub"

        def score(self, u):
            return torch.arange(100, dtype=torch.float32).expand(len(u), -1)

    def load_scorer(run_dir, ds, data):
        calls.append((run_dir, ds.name, data.n_posts))
        return Stub()

    monkeypatch.setattr(runs, "load_scorer", load_scorer)
    run = tmp_path / "myrun"
    run.mkdir()
    write_json(run / "run.json", {"dataset": {"fingerprint": load_dataset(world_dir).fingerprint()}, "best_epoch": 7, "config": {"lr": 1}})
    out = tmp_path / "r"
    assert main(["evaluate", "--data", str(world_dir), "--run", str(run), "--split", "test", "--out", str(out)]) == 0
    assert calls == [(run, "world", 100)]
    m = json.loads((out / "report.json").read_text())["models"][0]
    assert m["id"] == "run:myrun" and m["kind"] == "run" and m["config"] == {"lr": 1}
    assert m["selection"] == "run checkpoint selected on valid (best epoch 7), reported on test"
