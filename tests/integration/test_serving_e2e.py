"""End to end: tiny synthetic platform -> encode -> split -> train (tiny) -> build-index ->
`with TestClient(create_app(settings))`: filters, online posts and deletes, events, reload under
load, the recall gate, a crash mid-build, rollback and the 4xx cases."""

from __future__ import annotations

import datetime as dt
import threading
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from fastapi.testclient import TestClient

from index import bundle as B
from recsys.cli import main as recsys_main
from serving.app import create_app
from serving.settings import Settings
from tests.conftest import copy_dataset

KEY = {"X-API-Key": "k3y"}


@pytest.fixture(scope="module")
def platform(tiny_encoded: Path, tmp_path_factory: pytest.TempPathFactory) -> dict:
    from recsys.split import split_dataset
    from training.train import TrainConfig, train

    tmp = tmp_path_factory.mktemp("e2e")
    data = copy_dataset(tiny_encoded, tmp / "data")
    split_dataset(data)
    run = train(TrainConfig.preset("tiny", data=str(data), out=str(tmp / "run")))
    root = tmp / "index"
    assert recsys_main(["build-index", "--run", str(run), "--data", str(data), "--out", str(root)]) == 0
    from recsys.dataset import load_dataset
    from recsys.features import load_features

    return {"data": data, "run": Path(run), "root": root, "ds": load_dataset(data), "feats": load_features(data)}


@pytest.fixture(scope="module")
def client(platform):
    settings = Settings(index_root=platform["root"], api_key="k3y", read_api_key="r3ad", exact_max=0)  # approximate code paths
    with TestClient(create_app(settings), headers={"X-API-Key": "r3ad"}) as c:  # writes name KEY
        yield c


def _ids(r) -> list[int]:
    assert r.status_code == 200, r.text
    return [i["post_id"] for i in r.json()["items"]]


def test_bundle_is_self_contained_and_described(platform):
    d = B.resolve(platform["root"])
    m = B.read_json(d / B.MANIFEST)
    assert m["n_posts"] == len(platform["ds"].posts) and m["exact"] is True and m["recall"]["measured"] == 1.0
    assert m["model"]["fingerprint"] and m["dataset"]["fingerprint"] == platform["ds"].fingerprint()
    assert (d / "run" / "model.pt").is_file() and not (d / "run" / "checkpoint.pt").exists()
    h = pl.read_parquet(d / B.HISTORIES_FILE)
    assert h["user_id"].n_unique() == platform["ds"].interactions["user_id"].n_unique()


def test_recommend_with_each_filter(client, platform):
    ds = platform["ds"]
    posts, inter = ds.posts, ds.interactions
    n = len(posts)
    user = int(inter["user_id"][0])
    seen = set(inter.filter(pl.col("user_id") == user)["post_id"].to_list())
    author = dict(zip(posts["post_id"].to_list(), posts["author_id"].to_list()))
    created = dict(zip(posts["post_id"].to_list(), posts["created_at"].to_list()))
    now = max(created.values())
    base = _ids(client.post("/v1/recommendations", json={"user_id": user, "k": 10}))
    assert len(base) == 10 and not seen & set(base)
    r = client.post("/v1/recommendations", json={"user_id": user, "k": 10, "filters": {"exclude_seen": False}})
    assert len(_ids(r)) == 10 and r.json()["fallback"] is False and r.json()["items"][0]["why"] in seen
    # exclude_post_ids: the first 5 go, still 10 come back
    got = _ids(client.post("/v1/recommendations", json={"user_id": user, "k": 10, "filters": {"exclude_post_ids": base[:5]}}))
    assert len(got) == 10 and not set(base[:5]) & set(got) and got[:5] == base[5:10]
    # exclude_authors: two most frequent authors of the answer
    top_auth = [a for a, _ in pl.Series([author[p] for p in base]).value_counts(sort=True).rows()[:2]]
    got = _ids(client.post("/v1/recommendations", json={"user_id": user, "k": 10, "filters": {"exclude_authors": top_auth}}))
    eligible = sum(1 for p in author if author[p] not in top_auth and p not in seen)
    assert len(got) == min(10, eligible) and not {author[p] for p in got} & set(top_auth)
    # max_age_seconds relative to a given `now`
    age = (now - sorted(created.values())[n // 2]).total_seconds()
    f = {"max_age_seconds": age, "now": now.isoformat()}
    got = _ids(client.post("/v1/recommendations", json={"user_id": user, "k": 10, "filters": f}))
    eligible = sum(1 for p in created if (now - created[p]).total_seconds() <= age and p not in seen)
    assert len(got) == min(10, eligible) and all((now - created[p]).total_seconds() <= age for p in got)
    # author_cap
    got = _ids(client.post("/v1/recommendations", json={"user_id": user, "k": 10, "filters": {"author_cap": 1}}))
    n_authors = len({author[p] for p in author if p not in seen})
    assert len(got) == min(10, n_authors) and len({author[p] for p in got}) == len(got)
    # all at once, and a k larger than what is eligible returns every eligible post
    f = {"exclude_post_ids": base[:3], "exclude_authors": top_auth[:1], "max_age_seconds": age, "now": now.isoformat(), "author_cap": 2}
    got = _ids(client.post("/v1/recommendations", json={"user_id": user, "k": 1000, "filters": f}))
    elig = [p for p in author if p not in seen and p not in base[:3] and author[p] != top_auth[0]
            and (now - created[p]).total_seconds() <= age]
    per = pl.Series([author[p] for p in elig]).value_counts()
    assert len(got) == int(per["count"].clip(upper_bound=2).sum()) and set(got) <= set(elig)


def test_fallbacks_and_batch(client, platform):
    r = client.post("/v1/recommendations", json={"user_id": 10**9, "k": 5}).json()
    assert r["fallback"] and r["fallback_reason"] == "no_history_popular" and len(r["items"]) == 5
    hist = platform["ds"].posts["post_id"].to_list()[:3]
    r = client.post("/v1/recommendations", json={"user_id": 10**9, "history": hist, "k": 5}).json()
    assert r["fallback_reason"] == "unknown_user_history_profile" and all(i["why"] in hist for i in r["items"])
    users = platform["ds"].interactions["user_id"].unique().sort().to_list()[:6]
    b = client.post("/v1/recommendations:batch", json={"requests": [{"user_id": u, "k": 4} for u in users]}).json()
    for u, res in zip(users, b["results"]):
        assert [i["post_id"] for i in res["items"]] == _ids(client.post("/v1/recommendations", json={"user_id": u, "k": 4}))


def test_add_post_then_delete_it(client, platform):
    feats = platform["feats"]
    twin = int(platform["ds"].posts["post_id"][0])
    f = {m: x.aligned(np.array([twin])) for m, x in feats.items()}
    body = {"post_id": 10**6, "author_id": 424242,
            "features": {m: v[0][0].tolist() for m, v in f.items() if v[1][0]}}  # the modalities it has
    r = client.post("/v1/posts", json=body, headers=KEY)
    assert r.status_code == 201, r.text
    # retrievable in the very next request: its neighbours are the exact top-5 for its content vector
    from recsys.runs import load_run

    run = load_run(platform["run"])
    z = run.post_latents({m: v[0] for m, v in f.items()}, {m: v[1] for m, v in f.items()})
    vec = run.post_vectors(z, np.array([10**6]))[0]
    b = B.load_bundle(platform["root"])
    q = run.post_query(vec[None])[0]  # the cosine of the model's post vectors (recsys.cold_channel)
    want = b.post_ids[np.argsort(-(b.vectors @ q), kind="stable")[:5]].tolist()
    assert _ids(client.get(f"/v1/posts/{10**6}/similar", params={"k": 5})) == want
    everything = {"user_id": 10**9, "history": [twin], "k": 1000}
    assert 10**6 in _ids(client.post("/v1/recommendations", json=everything))
    assert client.post("/v1/posts", json=body, headers=KEY).status_code == 200  # idempotent
    # media path: real text encoder through recsys.encode
    r = client.post("/v1/posts", json={"post_id": 10**6 + 1, "text": "a red bicycle on a mountain trail"}, headers=KEY)
    assert r.status_code == 201 and "text" in r.json()["modalities"], r.text
    assert 10**6 + 1 in _ids(client.post("/v1/recommendations", json=everything))
    assert client.delete(f"/v1/posts/{10**6}", headers=KEY).status_code == 200
    assert client.delete(f"/v1/posts/{twin}", headers=KEY).status_code == 200
    for _ in range(2):
        for ids in (_ids(client.post("/v1/recommendations", json=everything)),
                    _ids(client.post("/v1/recommendations", json={"k": 1000})),
                    _ids(client.get(f"/v1/posts/{10**6 + 1}/similar", params={"k": 1000}))):
            assert 10**6 not in ids and twin not in ids and len(ids) >= len(platform["ds"].posts) - 2
    assert client.get(f"/v1/posts/{twin}/similar").status_code == 404
    assert client.delete(f"/v1/posts/{twin}", headers=KEY).status_code == 404


def test_new_post_by_a_known_author_is_placed_by_its_author(client, platform):
    """The same content posted by an author the model knows and by a stranger: the first gets the
    author's ID row (the run's post_vectors with the author), the second content alone."""
    from recsys.runs import load_run

    run = load_run(platform["run"])
    assert run.author_table is not None and len(run.author_table_ids)
    known = int(run.author_table_ids[0])
    src = int(platform["ds"].posts["post_id"][1])
    f = {m: x.aligned(np.array([src])) for m, x in platform["feats"].items()}
    feats = {m: v[0][0].tolist() for m, v in f.items() if v[1][0]}
    z = run.post_latents({m: v[0] for m, v in f.items()}, {m: v[1] for m, v in f.items()})
    user = run.user_vectors(z[None], np.array([[src]]), np.array([-1]))[0]  # an unknown user whose history is src
    for pid, author in ((2 * 10**6, known), (2 * 10**6 + 1, 777_777_777)):
        assert client.post("/v1/posts", json={"post_id": pid, "author_id": author, "features": feats}, headers=KEY).status_code == 201
        r = client.post("/v1/recommendations", json={"user_id": 10**9, "history": [src], "k": 1000})
        score = {i["post_id"]: i["score"] for i in r.json()["items"]}[pid]
        assert score == pytest.approx(float(user @ run.post_vectors(z, np.array([pid]), np.array([author]))[0]), abs=1e-4)
    with_author = run.post_vectors(z, np.array([0]), np.array([known]))[0]
    assert not np.allclose(with_author, run.post_vectors(z, np.array([0]))[0])  # the author row counts
    for pid in (2 * 10**6, 2 * 10**6 + 1):
        assert client.delete(f"/v1/posts/{pid}", headers=KEY).status_code == 200


def test_events_update_seen(client, platform):
    user = int(platform["ds"].interactions["user_id"][1])
    first = _ids(client.post("/v1/recommendations", json={"user_id": user, "k": 3}))[0]
    r = client.post("/v1/events", json={"events": [{"user_id": user, "post_id": first, "event": "like",
                                                     "ts": dt.datetime.now(dt.UTC).isoformat()}]}, headers=KEY)
    assert r.status_code == 200
    assert first not in _ids(client.post("/v1/recommendations", json={"user_id": user, "k": 1000}))


def test_bad_input_is_4xx(client):
    r = client.post("/v1/recommendations", json={"k": 1001})
    assert r.status_code == 422 and r.json()["detail"][0]["msg"] == "`k` must be in [1, 1000], got 1001"
    assert client.post("/v1/recommendations", json={"history": "1,2"}).status_code == 422
    r = client.post("/v1/recommendations:batch", json={"requests": [{"k": 1}] * 257})
    assert r.status_code == 422 and "at most" not in r.text and "1 to 256" in r.text
    r = client.post("/v1/posts", json={"post_id": 5555, "features": {"text": [0.0] * 3}}, headers=KEY)
    assert r.status_code == 422 and "must have 384 values, got 3" in r.text
    assert client.delete("/v1/posts/987654321", headers=KEY).status_code == 404
    assert client.post("/v1/admin/reload").status_code == 401


def test_gate_crash_reload_under_load_and_rollback(client, platform):
    root, run, data = platform["root"], platform["run"], platform["data"]
    v1 = B.current_version(root)
    # recall gate: IVF with nprobe capped at 1 and a too-high target -> exit 2, nothing published
    args = ["build-index", "--run", str(run), "--data", str(data), "--out", str(root)]
    assert recsys_main(args + ["--factory", "IVF8,Flat", "--max-search-param", "1", "--target-recall", "0.999"]) == 2
    assert B.list_versions(root) == [v1] and B.current_version(root) == v1
    # crash mid-build: the previous bundle stays live and serving
    from index.build import build_from_run

    def crash(name):
        if name == B.LATENTS_FILE:
            raise OSError("simulated crash after index.faiss + ids.npy")

    with pytest.raises(OSError, match="simulated crash"):
        build_from_run(run, data, root, on_file_written=crash)
    assert B.current_version(root) == v1 and B.list_versions(root) == [v1] and not list(root.glob(".tmp-*"))
    assert client.post("/v1/admin/reload", headers=KEY).json()["reloaded"] is False
    assert client.get("/readyz").json()["bundle_version"] == v1
    # a new bundle, hot-swapped while threads hammer the API
    assert recsys_main(args) == 0
    v2 = B.current_version(root)
    assert v2 != v1
    user = int(platform["ds"].interactions["user_id"][0])
    errors, versions, stop = [], set(), threading.Event()

    def hammer(i):
        while not stop.is_set():
            try:
                r = client.post("/v1/recommendations", json={"user_id": user, "k": 5, "filters": {"author_cap": 2}})
                s = client.get(f"/v1/posts/{int(platform['ds'].posts['post_id'][5 + i])}/similar", params={"k": 3})
                if r.status_code != 200 or s.status_code != 200 or len(r.json()["items"]) != 5:
                    errors.append((r.status_code, s.status_code, r.text[:200]))
                versions.add(r.json().get("bundle_version"))
            except Exception as e:  # noqa: BLE001 - any failure counts
                errors.append(repr(e))

    threads = [threading.Thread(target=hammer, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    try:
        for _ in range(3):
            r = client.post("/v1/admin/reload", params={"force": True}, headers=KEY)
            assert r.status_code == 200 and r.json()["bundle_version"] == v2
    finally:
        stop.set()
        for t in threads:
            t.join(30)
    assert not errors, errors[:3]
    assert v2 in versions
    # online state survived the swaps: the post added earlier is still there, the deleted still gone
    assert client.get(f"/v1/posts/{10**6 + 1}/similar").status_code == 200
    assert client.get(f"/v1/posts/{10**6}/similar").status_code == 404
    # rollback with one command, then reload
    assert recsys_main(["index", "rollback", "--root", str(root)]) == 0
    assert B.current_version(root) == v1
    r = client.post("/v1/admin/reload", headers=KEY).json()
    assert r["reloaded"] and r["bundle_version"] == v1 and client.get("/readyz").json()["bundle_version"] == v1
    assert f'recsys_bundle_info{{version="{v1}"}} 1.0' in client.get("/metrics").text
