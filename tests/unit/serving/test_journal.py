"""serving.journal through the HTTP app, on both log engines: two apps on one log (two workers)
see each other's writes, a restarted app replays them, a refused write leaves the log untouched."""

from __future__ import annotations

import time

import pytest
from fastapi.testclient import TestClient

from recsys.online_log import open_log
from serving.app import create_app
from tests.unit.serving.conftest import READ, settings_for

KEY = {"X-API-Key": "secret"}


def _app(ivf_bundle, log_url):
    return TestClient(create_app(settings_for(ivf_bundle, online_log=log_url, log_poll_ms=5)), headers=READ)


def _ids(r) -> list[int]:
    assert r.status_code == 200, r.text
    return [i["post_id"] for i in r.json()["items"]]


def _eventually(fn, timeout: float = 5.0):
    t0 = time.perf_counter()
    while not fn():
        assert time.perf_counter() - t0 < timeout, "not visible in time"
        time.sleep(0.005)


def test_two_workers_share_writes_and_a_restart_replays_them(ivf_bundle, log_url):
    with _app(ivf_bundle, log_url) as a, _app(ivf_bundle, log_url) as b:
        r = a.post("/v1/recommendations", json={"user_id": 3, "k": 5})
        victim = _ids(r)[0]
        assert a.post("/v1/posts", json={"post_id": 777001, "author_id": 4, "features": {"vec": [0.3] * 16}},
                      headers=KEY).status_code == 201
        assert a.delete(f"/v1/posts/{victim}", headers=KEY).status_code == 200
        assert a.post("/v1/events", json={"events": [{"user_id": 3, "post_id": 777001}]}, headers=KEY).json()["users"] == 1
        # b applies a's entries (its poller), in order
        _eventually(lambda: b.get("/v1/posts/777001/similar?k=3").status_code == 200)
        _eventually(lambda: b.get(f"/v1/posts/{victim}/similar?k=3").status_code == 404)
        _eventually(lambda: b.get("/readyz").json()["delta_posts"] == 1)
        # written on b, checked against what a wrote: a second delete is a 404 there too
        assert b.delete(f"/v1/posts/{victim}", headers=KEY).status_code == 404
        assert b.post("/v1/posts", json={"post_id": 777001, "features": {"vec": [0.1] * 16}},
                      headers=KEY).json()["created"] is False
        seen_b = _ids(b.post("/v1/recommendations", json={"user_id": 3, "k": 50}))
        assert 777001 not in seen_b and victim not in seen_b  # seen (event) and deleted
        # a bad batch (one unknown post) is refused as a whole: nothing logged
        n = len(open_log(log_url).read_after(0))
        r = b.post("/v1/events", json={"events": [{"user_id": 3, "post_id": 777001}, {"user_id": 3, "post_id": -9}]},
                   headers=KEY)
        assert r.status_code == 422 and "1 unknown" in r.text
        assert len(open_log(log_url).read_after(0)) == n == 3
    with _app(ivf_bundle, log_url) as c:  # restart: the bundle + the log's entries
        assert c.get("/readyz").json()["delta_posts"] == 1
        assert c.get(f"/v1/posts/{victim}/similar?k=3").status_code == 404
        assert c.get("/v1/posts/777001/similar?k=3").status_code == 200
        r = c.post("/v1/recommendations", json={"user_id": 3, "k": 50})
        assert victim not in _ids(r) and 777001 not in _ids(r)


def test_without_a_log_writes_stay_in_memory(ivf_bundle):
    with TestClient(create_app(settings_for(ivf_bundle, online_log="off")), headers=READ) as a:
        assert a.post("/v1/posts", json={"post_id": 777002, "features": {"vec": [0.3] * 16}}, headers=KEY).status_code == 201
        assert a.get("/readyz").json()["delta_posts"] == 1
    with TestClient(create_app(settings_for(ivf_bundle, online_log="off")), headers=READ) as b:
        assert b.get("/readyz").json()["delta_posts"] == 0


@pytest.mark.parametrize("spec", ["", "off"])
def test_log_location(tmp_path, spec):
    from serving.journal import log_location

    s = settings_for(tmp_path, online_log=spec)
    assert log_location(s) == (None if spec == "off" else str(tmp_path / "online_log.sqlite3"))
