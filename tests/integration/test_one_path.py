"""One inference path, end to end on a platform with string ids (UUID users, slug posts, handle
authors) and users who join during valid / test: synth -> encode -> split -> train -> evaluate ->
build-index -> API. The API's score for (user, post) equals the offline score computed by
`recsys.inference` from the same history, for a known user, an unknown user with a history and
a user with none (the population prior's ranking)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
import pytest
from fastapi.testclient import TestClient

from recsys.cli import main as recsys_main
from recsys.dataset import load_dataset
from recsys.features import load_features
from recsys.ids import internal_id
from recsys.inference import catalogue_vectors, history_table, latent_lookup, population_prior, post_popularity, user_vectors
from recsys.prior import half_life_of
from recsys.runs import load_run, post_authors
from serving.app import create_app
from serving.settings import Settings


@pytest.fixture(scope="module")
def platform(tmp_path_factory: pytest.TempPathFactory) -> dict:
    tmp = tmp_path_factory.mktemp("onepath")
    data, run, root, rep = tmp / "data", tmp / "run", tmp / "index", tmp / "report"
    assert recsys_main(["synth", "--out", str(data), "--size", "tiny", "--string-ids", "--new-users", "0.3", "--no-progress"]) == 0
    assert recsys_main(["encode", "--data", str(data), "--no-progress"]) == 0
    assert recsys_main(["split", "--data", str(data)]) == 0
    # id_shrink: known users' ID rows lean on their history (recsys.model); the cold channel on
    # (recsys.cold_channel: posts without an ID row meet another user vector and the content-key match,
    # their offset only while they have no counts): served as scored offline
    # and a popularity blend whose counts are what the server holds (every interaction of the data)
    assert recsys_main(["train", "--data", str(data), "--out", str(run), "--preset", "tiny", "--set", "id_shrink=5",
                        "cold_channel=false", "cold_scale=0.2", "cold_offset=0.03", "cold_key_weight=0.5", "pop_blend=false",
                        "pop_weight=0.3", "pop_half=2"]) == 0
    assert recsys_main(["evaluate", "--data", str(data), "--run", str(run), "--baseline", "popular", "--split", "test", "--out", str(rep)]) == 0
    assert recsys_main(["build-index", "--run", str(run), "--data", str(data), "--out", str(root)]) == 0
    ds = load_dataset(data)
    loaded = load_run(run)
    assert loaded.cold_channel and loaded.cold_key_weight == 0.5 and loaded.pop_weight > 0
    assert loaded.dim == 2 * loaded.model.cfg.dim + loaded.latent_dim + 2
    post_ids = ds.posts["post_id"].to_numpy()
    assert half_life_of(ds.meta) is not None  # `recsys split` chose a recency-weighted prior here: the parity covers it
    pop = post_popularity(ds.interactions, post_ids, half_life_of(ds.meta))  # what the server holds: every interaction
    lat, vec = catalogue_vectors(loaded, load_features(data), post_ids, post_authors(ds, post_ids), pop)
    return {"data": data, "root": root, "ds": ds, "run": loaded, "lat": lat, "vec": vec, "post_ids": post_ids, "report": rep, "pop": pop}


@pytest.fixture(scope="module")
def client(platform):
    with TestClient(create_app(Settings(index_root=platform["root"], api_key="k3y", open_reads=True))) as c:
        yield c


def _offline(platform, history_keys: list[str], user_key: str) -> tuple[np.ndarray, bool]:
    """Offline scores (N,) of every post for a user with this history (post keys, oldest first)."""
    hist = np.array([internal_id(k) for k in history_keys], np.int64)
    u, has = user_vectors(platform["run"], [hist], np.array([internal_id(user_key)]), latent_lookup(platform["post_ids"], platform["lat"]))
    return platform["vec"] @ u[0], bool(has[0])


def _key_of(platform) -> dict[int, str]:
    m = platform["ds"].id_maps["post"]
    return dict(zip(m.ids.tolist(), m.keys.tolist()))


def test_answers_are_in_the_callers_ids(platform, client):
    ds = platform["ds"]
    user = ds.id_maps["user"].keys[0]
    r = client.post("/v1/recommendations", json={"user_id": user, "k": 5})
    assert r.status_code == 200, r.text
    items = r.json()["items"]
    assert len(items) == 5 and all(isinstance(i["post_id"], str) and i["post_id"].startswith("p-") for i in items)
    r = client.post("/v1/recommendations", json={"user_id": 7, "k": 5})
    assert r.status_code == 422 and "identifies users by strings, got the integer 7" in r.text
    pid = items[0]["post_id"]
    r = client.get(f"/v1/posts/{pid}/similar", params={"k": 3})
    assert r.status_code == 200 and r.json()["post_id"] == pid and all(isinstance(i["post_id"], str) for i in r.json()["items"])
    # a live post with a string id is answered in that id
    feats = {m: [0.1] * d for m, d in platform["run"].modalities.items()}
    r = client.post("/v1/posts", json={"post_id": "p-live-1", "author_id": "@nobody", "features": feats}, headers={"X-API-Key": "k3y"})
    assert r.status_code == 201 and r.json()["post_id"] == "p-live-1", r.text
    r = client.get("/v1/posts/p-live-1/similar", params={"k": 2})
    assert r.status_code == 200 and r.json()["post_id"] == "p-live-1"
    assert client.delete("/v1/posts/p-live-1", headers={"X-API-Key": "k3y"}).json() == {"post_id": "p-live-1", "deleted": True}


def test_served_scores_equal_offline_scores(platform, client):
    ds, keys = platform["ds"], _key_of(platform)
    table = history_table(ds.interactions, keep=platform["run"].max_history)  # what the bundle holds
    row = table.filter(pl.col("history").list.len() >= 3).row(0, named=True)
    user_key = ds.id_maps["user"].to_external(np.array([row["user_id"]]))[0]
    hist_keys = [keys[p] for p in row["history"]]
    post_row = {k: i for i, k in enumerate(platform["post_ids"].tolist())}

    # a known user: stored history + ID row
    offline, has = _offline(platform, hist_keys, user_key)
    assert has
    r = client.post("/v1/recommendations", json={"user_id": user_key, "k": 10, "filters": {"exclude_seen": False}})
    items = r.json()["items"]
    assert r.json()["fallback"] is False and items
    for it in items:
        assert it["score"] == pytest.approx(float(offline[post_row[internal_id(it["post_id"])]]), abs=1e-5)

    # an unknown user with a history (the request's own)
    offline, has = _offline(platform, hist_keys, "someone-new")
    assert has
    r = client.post("/v1/recommendations", json={"user_id": "someone-new", "history": hist_keys, "k": 10, "filters": {"exclude_seen": False}})
    assert r.json()["fallback_reason"] == "unknown_user_history_profile"
    for it in r.json()["items"]:
        assert it["score"] == pytest.approx(float(offline[post_row[internal_id(it["post_id"])]]), abs=1e-5)

    # nobody knows them: the population prior's ranking, exactly as evaluation scores such users
    r = client.post("/v1/recommendations", json={"user_id": "nobody-at-all", "k": 10})
    assert r.json()["fallback_reason"] == "no_history_popular"
    created = ds.posts["created_at"].dt.epoch("us").fill_null(np.iinfo(np.int64).min).to_numpy()
    prior = population_prior(platform["pop"], created)
    expected = [keys[int(platform["post_ids"][i])] for i in np.argsort(-prior, kind="stable")[:10]]
    assert [it["post_id"] for it in r.json()["items"]] == expected


def test_report_names_each_splits_history_and_buckets_new_users(platform):
    import json

    rep = json.loads((platform["report"] / "report.json").read_text())
    model = next(m for m in rep["models"] if m["kind"] == "run")
    assert model["history"]["splits"] == ["train", "valid"]  # temporal split: what the server holds at test
    hl = half_life_of(platform["ds"].meta) / 3600
    assert f"weighted by recency, half-life {hl:g} h" in rep["protocol"]  # the report names what popular meant
    buckets = model["buckets"]["history"]
    assert "0" in buckets and buckets["0"]["n_users"] > 0  # users who joined after train are scored
    pop = next(m for m in rep["models"] if m["id"] == "baseline:popular")
    # nobody-knows-you users get the same population prior from every model: identical figures
    assert pop["buckets"]["history"]["0"]["recall@20"] == pytest.approx(buckets["0"]["recall@20"])
