"""Interest clusters end to end: tiny synthetic platform -> encode -> split -> train (tiny) ->
build-index (clusters, sentiment, activity in the bundle) -> /v1/trends and /v1/users/{id}/profile
through the real app; a rebuild keeps the cluster ids; `recsys trends` writes its report."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from fastapi.testclient import TestClient

from index import bundle as B
from recsys.analysis.store import read_analysis
from recsys.cli import main as recsys_main
from serving.app import create_app
from serving.settings import Settings
from tests.conftest import copy_dataset

KEY = {"X-API-Key": "k3y"}


@pytest.fixture(scope="module")
def platform(tiny_encoded: Path, tmp_path_factory: pytest.TempPathFactory) -> dict:
    from recsys.split import split_dataset
    from training.train import TrainConfig, train

    tmp = tmp_path_factory.mktemp("analysis")
    data = copy_dataset(tiny_encoded, tmp / "data")
    split_dataset(data)
    run = train(TrainConfig.preset("tiny", data=str(data), out=str(tmp / "run")))
    root = tmp / "index"
    assert recsys_main(["build-index", "--run", str(run), "--data", str(data), "--out", str(root)]) == 0
    from recsys.dataset import load_dataset

    return {"data": data, "run": Path(run), "root": root, "ds": load_dataset(data), "tmp": tmp}


@pytest.fixture(scope="module")
def client(platform):
    with TestClient(create_app(Settings(index_root=platform["root"], api_key="k3y", open_reads=True))) as c:
        yield c


def test_bundle_carries_clusters_sentiment_and_activity(platform):
    a = read_analysis(B.resolve(platform["root"]) / B.ANALYSIS_DIR)
    posts = platform["ds"].posts
    assert sorted(a.posts["post_id"].to_list()) == sorted(posts["post_id"].to_list())
    assert a.clusters["size"].sum() == len(posts) and (a.clusters["size"] > 0).all()
    assert a.info["k"] == a.k >= 2 and a.info["silhouette"]
    src = dict(zip(a.posts["post_id"].to_list(), a.posts["sentiment_source"].to_list()))
    for pid, text in posts.select("post_id", "text").iter_rows():
        assert (src[pid] == "text") == (text is not None)
    assert a.activity["events"].sum() == len(platform["ds"].interactions)
    assert any(len(w) for w in a.clusters["words"].to_list())  # c-TF-IDF labels from the text


def test_trends_route(client, platform):
    r = client.get("/v1/trends", params={"window": "24h", "k": 3})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["window_hours"] == 24 and len(body["items"]) == 3 and body["live_events"] == 0
    last = platform["ds"].interactions["ts"].max()
    assert dt.datetime.fromisoformat(body["as_of"]) > last >= dt.datetime.fromisoformat(body["as_of"]) - dt.timedelta(hours=1)
    scores = [i["score"] for i in body["items"]]
    assert scores == sorted(scores, reverse=True)
    it = body["items"][0]
    assert it["label"] and it["representative_post_ids"] and len(it["sparkline"]["values"]) == 24
    assert client.get("/v1/trends", params={"window": "soon"}).status_code == 422


def test_online_events_make_a_cluster_surge(client, platform):
    a = read_analysis(B.resolve(platform["root"]) / B.ANALYSIS_DIR)
    target = int(a.clusters.sort("size")["cluster_id"][0])
    pids = a.posts.filter(pl.col("cluster_id") == target)["post_id"].to_list()
    now = platform["ds"].interactions["ts"].max() + dt.timedelta(minutes=30)
    events = [{"user_id": 10_000 + i, "post_id": pids[i % len(pids)], "ts": now.isoformat()} for i in range(60)]
    assert client.post("/v1/events", json={"events": events}, headers=KEY).status_code == 200
    body = client.get("/v1/trends", params={"window": "6h", "k": 10, "flagged_only": True}).json()
    assert body["live_events"] == 60
    assert [i["cluster_id"] for i in body["items"]][:1] == [target] and body["items"][0]["observed"] >= 60


def test_profile_route(client, platform):
    inter = platform["ds"].interactions
    user = int(inter.group_by("user_id").len().sort("len", descending=True)["user_id"][0])
    r = client.get(f"/v1/users/{user}/profile")
    assert r.status_code == 200, r.text
    p = r.json()
    assert p["has_history"] and p["clusters"] and p["preferred_modality"]["modality"] in {"text", "image", "video"}
    w = [c["weight"] for c in p["clusters"]]
    assert w == sorted(w, reverse=True) and 0 < sum(w) <= 1.0001
    assert p["clusters"][0]["from_history"] is not None and p["clusters"][0]["from_vector"] is not None
    seen = set(inter.filter(pl.col("user_id") == user)["post_id"].to_list())
    assert p["activity"]["interactions"] == len(seen)
    mine = [c for c in p["clusters"] if c["interactions"]]
    assert mine and set(mine[0]["example_post_ids"]) <= seen
    none = client.get("/v1/users/987654321/profile").json()
    assert none["has_history"] is False and "no history" in none["message"] and none["clusters"] == []


def test_openapi_documents_the_models(client):
    spec = client.get("/openapi.json").json()
    assert spec["paths"]["/v1/trends"]["get"]["responses"]["200"]["content"]["application/json"]["schema"]["$ref"].endswith("TrendsResponse")
    assert "ProfileResponse" in spec["components"]["schemas"] and "burst score" in str(spec["components"]["schemas"]["TrendItem"])


def test_rebuild_keeps_cluster_ids(platform):
    root = platform["root"]
    before = read_analysis(B.resolve(root) / B.ANALYSIS_DIR)
    assert recsys_main(["build-index", "--run", str(platform["run"]), "--data", str(platform["data"]), "--out", str(root)]) == 0
    after = read_analysis(B.resolve(root) / B.ANALYSIS_DIR)
    assert after.info["id_matching"]["method"] == "jaccard"
    b = dict(zip(before.posts["post_id"].to_list(), before.posts["cluster_id"].to_list()))
    same = np.mean([b[p] == c for p, c in after.posts.select("post_id", "cluster_id").iter_rows()])
    assert same > 0.8  # same run, same data: (nearly) every post keeps its cluster id


def test_bundle_without_clusters_answers_404(tmp_path):
    from index.from_vectors import build_from_latents, synthetic_catalogue

    cat, _ = synthetic_catalogue(300, 8, n_users=5, n_authors=5, n_clusters=4)
    build_from_latents(cat, tmp_path / "idx", n_queries=5, k=10)
    with TestClient(create_app(Settings(index_root=tmp_path / "idx", open_reads=True))) as c:
        r = c.get("/v1/trends")
        assert r.status_code == 404 and "build-index" in r.json()["detail"]


def test_trends_command_writes_report(platform, tmp_path):
    out = tmp_path / "rep"
    assert recsys_main(["trends", "--data", str(platform["data"]), "--run", str(platform["run"]), "--out", str(out)]) == 0
    assert (out / "trends.png").read_bytes()[:4] == b"\x89PNG"
    md = (out / "report.md").read_text()
    assert "## Clusters" in md and "hidden truth" in md
    import json

    rep = json.loads((out / "report.json").read_text())
    assert set(rep["truth"]) >= {"bursts", "sentiment", "profiles", "purity"}
    assert rep["truth"]["sentiment"]["text"]["n"] == platform["ds"].posts["text"].is_not_null().sum()
