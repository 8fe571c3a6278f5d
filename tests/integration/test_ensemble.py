"""An ensemble run (`recsys train --set members=2`): two members from seeds 0 and 1, read back
as one run whose scores are the mean of its members' scores, evaluated, built into a bundle and
served with the same scores the offline path computes."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from fastapi.testclient import TestClient

from recsys.cli import main as recsys_main
from recsys.dataset import load_dataset
from recsys.ensemble import EnsembleRun
from recsys.errors import ArtifactError, ConfigError
from recsys.features import load_features
from recsys.inference import catalogue_vectors, history_table, latent_lookup, post_popularity, user_vectors
from recsys.interactions import build_interaction_data
from recsys.prior import half_life_of
from recsys.runs import load_run, post_authors, scorer_from_run
from serving.app import create_app
from serving.settings import Settings
from tests.conftest import copy_dataset


@pytest.fixture(scope="module")
def ensemble(tiny_encoded: Path, tmp_path_factory: pytest.TempPathFactory) -> dict:
    tmp = tmp_path_factory.mktemp("ensemble")
    data = copy_dataset(tiny_encoded, tmp / "data")
    run, root = tmp / "run", tmp / "index"
    assert recsys_main(["split", "--data", str(data)]) == 0
    assert recsys_main(["train", "--data", str(data), "--out", str(run), "--preset", "tiny", "--set", "members=2"]) == 0
    assert recsys_main(["build-index", "--run", str(run), "--data", str(data), "--out", str(root)]) == 0
    return {"data": data, "run": run, "root": root, "ds": load_dataset(data)}


def test_an_ensemble_scores_the_mean_of_its_members(ensemble):
    ds, run_dir = ensemble["ds"], ensemble["run"]
    ens = load_run(run_dir)
    assert isinstance(ens, EnsembleRun) and len(ens.members) == 2
    m0, m1 = ens.members
    assert ens.dim == m0.dim + m1.dim and ens.latent_dim == m0.latent_dim + m1.latent_dim
    info = json.loads((run_dir / "run.json").read_text())
    assert [m["seed"] for m in info["members"]] == [0, 1] and info["status"] == "done"
    assert not np.allclose(m0.post_table.numpy(), m1.post_table.numpy())  # two seeds, two models
    data = build_interaction_data(ds)
    users = np.arange(min(40, data.n_users))
    for split in ("valid", "test"):
        h = data.history_for(split)
        got = scorer_from_run(ens, ds, data).for_history(h, split).score(users)
        parts = [scorer_from_run(m, ds, data).for_history(h, split).score(users) for m in (m0, m1)]
        torch.testing.assert_close(got, (parts[0] + parts[1]) / 2, atol=1e-5, rtol=1e-5)
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["members"] == 2 and 0 <= metrics["test"]["recall@20"] <= 1


def test_the_served_ensemble_answers_its_offline_scores(ensemble):
    ds, run = ensemble["ds"], load_run(ensemble["run"])
    post_ids = ds.posts["post_id"].to_numpy()
    pop = post_popularity(ds.interactions, post_ids, half_life_of(ds.meta))  # the bundle's counts: every interaction
    lat, vec = catalogue_vectors(run, load_features(ensemble["data"]), post_ids, post_authors(ds, post_ids), pop)
    table = history_table(ds.interactions, keep=run.max_history)
    row = table.filter(table["history"].list.len() >= 3).row(0, named=True)
    u, has = user_vectors(run, [np.array(row["history"], np.int64)], np.array([row["user_id"]]), latent_lookup(post_ids, lat))
    assert has[0]
    offline = vec @ u[0]
    at = {int(p): i for i, p in enumerate(post_ids)}
    with TestClient(create_app(Settings(index_root=ensemble["root"], open_reads=True))) as c:
        r = c.post("/v1/recommendations", json={"user_id": int(row["user_id"]), "k": 10, "filters": {"exclude_seen": False}})
        assert r.status_code == 200, r.text
        items = r.json()["items"]
        assert items and r.json()["fallback"] is False
        for it in items:
            assert it["score"] == pytest.approx(float(offline[at[int(it["post_id"])]]), abs=1e-5)
            assert it["why_modality"] in ("id", "content", "text", "image", "video")  # the first member's split


def test_bad_ensembles_are_refused_with_reasons(ensemble, tmp_path):
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "ensemble.json").write_text(json.dumps({"format": "recsys-ensemble/1", "members": []}))
    with pytest.raises(ArtifactError, match="ensemble.json: expected"):
        load_run(bad)
    (bad / "ensemble.json").write_text(json.dumps({"format": "recsys-ensemble/1", "members": ["../elsewhere"]}))
    with pytest.raises(ArtifactError, match="outside the run directory"):
        load_run(bad)
    from training.train import TrainConfig, train

    cfg = TrainConfig.preset("tiny", data=str(ensemble["data"]), out=str(tmp_path / "r"), members=2, refit="on")
    with pytest.raises(ConfigError, match="members > 1 with a refit"):
        train(cfg)
    with pytest.raises(ArtifactError, match="already holds a single trained run"):
        train(TrainConfig.preset("tiny", data=str(ensemble["data"]), out=str(ensemble["run"] / "members" / "0"), members=2))


def test_an_ensemble_is_explained_by_its_first_member(ensemble, monkeypatch):
    """The served "why" split of an ensemble's score is the first member's own split."""
    from serving import why

    ds, ens = ensemble["ds"], load_run(ensemble["run"])
    m0 = ens.members[0]
    post_ids = ds.posts["post_id"].to_numpy()
    store, authors = load_features(ensemble["data"]), post_authors(ds, post_ids)
    table = history_table(ds.interactions, keep=ens.max_history)
    row = table.filter(table["history"].list.len() >= 3).row(0, named=True)
    shares = {}
    monkeypatch.setattr(why.explain, "dominant_modality", lambda sh, content: list(np.round(sh, 5)))
    for name, run in (("ensemble", ens), ("first member", m0)):
        lat, vec = catalogue_vectors(run, store, post_ids, authors)
        u, _ = user_vectors(run, [np.array(row["history"], np.int64)], np.array([row["user_id"]]), latent_lookup(post_ids, lat))
        bundle = type("B", (), {"codes_names": []})()
        shares[name] = why.WhyModality(bundle, run).modalities(u[0], vec[:12], lat[:12], np.arange(12), None)
    assert shares["ensemble"] == pytest.approx(shares["first member"], abs=1e-4)
    assert 0 < max(shares["ensemble"]) <= 1
