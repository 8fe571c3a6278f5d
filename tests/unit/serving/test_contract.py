"""The API keeps its contract under any input a client can send: no 5xx, one error body shape
per status (422: a list of {loc, msg, type}; others: a string), every answered status in the
OpenAPI document, strict JSON types, and safe defaults (read key, body cap, bounded metrics
labels, media confined to a root with one refusal message, bounded online state, no server
paths in answers)."""

from __future__ import annotations

import shutil
import socket
import threading
import time
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from serving.app import create_app
from tests.unit.serving.conftest import KEY, READ, settings_for

FEATS = {"vec": [0.25] * 16}
PORT = 18311  # loopback, this worktree's range


@pytest.fixture(scope="module")
def client(ivf_bundle):
    with TestClient(create_app(settings_for(ivf_bundle)), headers=READ) as c:
        yield c


def _msgs(r) -> list[str]:
    d = r.json()["detail"]
    assert isinstance(d, list), f"a 422 detail is a list, got {r.text}"
    return [e["msg"] for e in d]


# --- no 5xx -----------------------------------------------------------------------------------

@pytest.mark.parametrize("age", [1.8e302, 1e308, 1e13])
def test_huge_max_age_is_a_422_on_both_routes(client, age):
    f = {"max_age_seconds": age}
    r = client.post("/v1/recommendations", json={"user_id": 1, "filters": f})
    assert r.status_code == 422 and "less than or equal to 1000000000000" in _msgs(r)[0], r.text
    r = client.post("/v1/recommendations:batch", json={"requests": [{"user_id": 1, "filters": f}]})
    assert r.status_code == 422 and r.json()["detail"][0]["loc"][-1] == "max_age_seconds", r.text
    # the largest accepted age covers every post
    r = client.post("/v1/recommendations", json={"user_id": 1, "k": 3, "filters": {"max_age_seconds": 1e12}})
    assert r.status_code == 200 and len(r.json()["items"]) == 3


@pytest.mark.parametrize("path", ["/v1/recommendations", "/v1/recommendations:batch", "/v1/posts", "/v1/events"])
@pytest.mark.parametrize("body", [b"\xff", b'{"user_id": "\xff\xfe"}', b"\xc3\x28"])
def test_non_utf8_body_is_a_422_that_says_so(client, path, body):
    r = client.post(path, content=body, headers={**KEY, "Content-Type": "application/json"})
    assert r.status_code == 422, r.text
    assert r.json()["detail"][0]["loc"][0] == "body" and all(isinstance(m, str) for m in _msgs(r))


def test_events_mixing_naive_and_zoned_times(client):
    events = [{"user_id": 7, "post_id": 1000003, "ts": "2026-01-02T00:00:00"},
              {"user_id": 7, "post_id": 1000010, "ts": "2026-01-01T00:00:00+05:00"},
              {"user_id": 7, "post_id": 1000017}]
    r = client.post("/v1/events", json={"events": events}, headers=KEY)
    assert r.status_code == 200 and r.json() == {"accepted": 3, "users": 1}, r.text


# --- contract ---------------------------------------------------------------------------------

@pytest.mark.parametrize("body, loc", [
    ({"user_id": 1, "k": True}, "k"),
    ({"user_id": True}, "user_id"),
    ({"user_id": 1.0}, "user_id"),
    ({"user_id": "1"}, "user_id"),
    ({"history": [1000003.0]}, "history"),
    ({"user_id": 1, "filters": {"now": 0}}, "now"),
    ({"user_id": 1, "filters": {"exclude_seen": "yes"}}, "exclude_seen"),
    ({"user_id": 1, "filters": {"author_cap": True}}, "author_cap"),
    ({"user_id": 1, "filters": {"max_age_seconds": "60"}}, "max_age_seconds"),
])
def test_strict_types(client, body, loc):
    r = client.post("/v1/recommendations", json=body)
    assert r.status_code == 422 and loc in r.json()["detail"][0]["loc"], r.text
    r = client.post("/v1/recommendations:batch", json={"requests": [body]})
    assert r.status_code == 422 and loc in r.json()["detail"][0]["loc"], r.text


def test_strict_types_on_write_bodies(client):
    r = client.post("/v1/events", json={"events": [{"user_id": True, "post_id": 1000003}]}, headers=KEY)
    assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["body", "events", 0, "user_id"]
    r = client.post("/v1/events", json={"events": [{"user_id": 1, "post_id": 1000003, "ts": 0}]}, headers=KEY)
    assert r.status_code == 422 and r.json()["detail"][0]["loc"][-1] == "ts"
    r = client.post("/v1/posts", json={"post_id": 4242, "features": FEATS, "created_at": 1700000000}, headers=KEY)
    assert r.status_code == 422 and r.json()["detail"][0]["loc"][-1] == "created_at"


def test_every_422_has_the_documented_list_shape(client):
    doc = client.get("/openapi.json").json()
    schemas = doc["components"]["schemas"]
    assert schemas["ValidationErrorBody"]["properties"]["detail"]["type"] == "array"
    assert schemas["ErrorBody"]["properties"]["detail"]["type"] == "string"
    answers = [
        client.post("/v1/recommendations", json={"user_id": 1, "k": 0}),  # a bound from the settings (state)
        client.post("/v1/recommendations", json={"user_id": "x"}),  # a schema violation
        client.post("/v1/recommendations", content=b"{", headers={"Content-Type": "application/json"}),  # not JSON
        client.post("/v1/recommendations:batch", json={"requests": []}),  # a route's own bound
        client.post("/v1/posts", json={"post_id": 5, "features": {"nope": [1.0]}}, headers=KEY),  # state's BadInput
        client.get("/v1/posts/abc/similar"),  # a path parameter
        client.get("/v1/posts/1000003/similar", params={"k": 0}),
    ]
    for r in answers:
        assert r.status_code == 422, r.text
        for e in r.json()["detail"]:
            assert set(e) <= {"loc", "msg", "type", "input"} and isinstance(e["loc"], list) and e["msg"], e
    r = client.get("/v1/posts/424242/similar")
    assert r.status_code == 404 and isinstance(r.json()["detail"], str)


def test_every_answered_status_is_documented(client):
    doc = client.get("/openapi.json").json()["paths"]
    want = {
        ("/v1/recommendations", "post"): {"200", "401", "403", "413", "422", "503"},
        ("/v1/recommendations:batch", "post"): {"200", "401", "403", "413", "422", "503"},
        ("/v1/posts/{post_id}/similar", "get"): {"200", "401", "403", "404", "413", "422", "503"},
        ("/v1/posts", "post"): {"200", "201", "401", "403", "409", "413", "422", "503"},
        ("/v1/posts/{post_id}", "delete"): {"200", "401", "403", "404", "413", "422", "503"},
        ("/v1/events", "post"): {"200", "401", "403", "409", "413", "422", "503"},
        ("/v1/admin/reload", "post"): {"200", "401", "403", "413", "422", "503"},
        ("/readyz", "get"): {"200", "413", "503"},
    }
    for (path, method), codes in want.items():
        got = set(doc[path][method]["responses"])
        assert got == codes, (path, method, got)
        err = doc[path][method]["responses"].get("422")
        if err:
            assert err["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/ValidationErrorBody"}


def test_reposting_an_existing_id_validates_the_body(client):
    assert client.post("/v1/posts", json={"post_id": 31337, "features": FEATS}, headers=KEY).status_code == 201
    r = client.post("/v1/posts", json={"post_id": 31337, "features": {"vec": [1.0]}}, headers=KEY)
    assert r.status_code == 422 and "must have 16 values, got 1" in _msgs(r)[0]
    r = client.post("/v1/posts", json={"post_id": 31337}, headers=KEY)
    assert r.status_code == 422
    r = client.post("/v1/posts", json={"post_id": 31337, "features": FEATS}, headers=KEY)
    assert r.status_code == 200 and r.json()["created"] is False
    r = client.post("/v1/posts", json={"post_id": 1000003, "features": FEATS, "bogus": 1}, headers=KEY)  # a bundle post
    assert r.status_code == 422


# --- exposure ---------------------------------------------------------------------------------

def test_reads_need_a_key_unless_opened(ivf_bundle):
    body = {"user_id": 1, "k": 2}
    with TestClient(create_app(settings_for(ivf_bundle, api_key=None, read_api_key=None))) as c:
        r = c.post("/v1/recommendations", json=body)
        assert r.status_code == 403 and "RECSYS_READ_API_KEY" in r.json()["detail"]
        assert c.get("/v1/posts/1000003/similar").status_code == 403
        assert c.get("/healthz").status_code == 200 and c.get("/readyz").status_code == 200
    with TestClient(create_app(settings_for(ivf_bundle))) as c:
        assert c.post("/v1/recommendations", json=body).status_code == 401
        assert c.post("/v1/recommendations", json=body, headers={"X-API-Key": "nope"}).status_code == 401
        assert c.post("/v1/recommendations:batch", json={"requests": [body]}).status_code == 401
        assert c.post("/v1/recommendations", json=body, headers=READ).status_code == 200
        assert c.post("/v1/recommendations", json=body, headers=KEY).status_code == 200  # the write key reads too
        assert c.post("/v1/events", json={"events": [{"user_id": 1, "post_id": 1000003}]}, headers=READ).status_code == 401
    with TestClient(create_app(settings_for(ivf_bundle, api_key=None, read_api_key=None, open_reads=True))) as c:
        assert c.post("/v1/recommendations", json=body).status_code == 200
        assert c.get("/v1/posts/1000003/similar").status_code == 200


def test_body_cap_413_by_content_length_and_while_streaming(ivf_bundle):
    with TestClient(create_app(settings_for(ivf_bundle, body_max_bytes=1000)), headers=READ) as c:
        r = c.post("/v1/recommendations", json={"user_id": 1, "history": [1000003] * 200})
        assert r.status_code == 413 and "at most 1000 bytes (RECSYS_BODY_MAX_BYTES)" in r.json()["detail"], r.text

        sent = [0]

        def chunks():  # no Content-Length: counted as it arrives
            for _ in range(100):
                sent[0] += 1
                yield b" " * 500

        r = c.post("/v1/events", content=chunks(), headers={**KEY, "Content-Type": "application/json"})
        assert r.status_code == 413 and "more than 1000 bytes" in r.json()["detail"], r.text
        assert c.post("/v1/recommendations", json={"user_id": 1, "k": 1}).status_code == 200


def test_body_cap_stops_a_streamed_upload_on_a_real_server(ivf_bundle):
    """uvicorn on loopback; a chunked 200 MB upload is answered 413 after a few MB."""
    import uvicorn

    app = create_app(settings_for(ivf_bundle, body_max_bytes=1 << 20))
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=PORT, log_level="warning"))
    t = threading.Thread(target=server.run, daemon=True)
    t.start()
    try:
        for _ in range(200):
            if server.started:
                break
            time.sleep(0.05)
        s = socket.create_connection(("127.0.0.1", PORT), timeout=10)
        s.sendall(b"POST /v1/events HTTP/1.1\r\nHost: x\r\nX-API-Key: secret\r\nContent-Type: application/json\r\n"
                  b"Transfer-Encoding: chunked\r\n\r\n")
        chunk = b"%x\r\n" % 65536 + b" " * 65536 + b"\r\n"
        sent = 0
        try:
            while sent < 200 << 20:
                s.sendall(chunk)
                sent += 65536
        except OSError:  # the server answered and closed while we were still sending
            pass
        s.settimeout(10)
        head = s.recv(65536)
        s.close()
        assert head.startswith(b"HTTP/1.1 413"), head[:200]
        assert sent < 64 << 20, f"sent {sent >> 20} MB before the server refused"
    finally:
        server.should_exit = True
        t.join(10)


def test_metrics_method_label_is_bounded(client):
    for i in range(30):
        assert client.request(f"MADEUP{i}", "/healthz").status_code == 405
    text = client.get("/metrics").text
    assert "MADEUP" not in text and 'method="other"' in text


def test_media_paths_are_confined_with_one_message(ivf_bundle, tmp_path):
    root = tmp_path / "media"
    root.mkdir()
    (root / "sub").mkdir()
    secret = tmp_path / "secret.txt"
    secret.write_text("not media")
    (root / "escape.jpg").symlink_to(secret)
    (root / "not-media.jpg").write_text("not a jpeg")
    paths = [str(secret), "/etc/passwd", "/nonexistent/x.jpg", "../secret.txt", "escape.jpg", "sub", str(root / "sub"),
             "missing.jpg", "a\x00b"]
    for settings in (settings_for(ivf_bundle), settings_for(ivf_bundle, media_root=root)):
        with TestClient(create_app(settings)) as c:
            answers = {c.post("/v1/posts", json={"post_id": 777, "image_path": p}, headers=KEY).text for p in paths}
            assert len(answers) == 1, answers
            (text,) = answers
            assert '"status' not in text and "readable media file under the server's media root" in text
            assert str(tmp_path) not in text and "passwd" not in text


def test_online_state_is_bounded(ivf_bundle):
    s = settings_for(ivf_bundle, delta_max=2, online_users_max=2, user_seen_max=3)
    with TestClient(create_app(s)) as c:
        for pid in (501, 502):
            assert c.post("/v1/posts", json={"post_id": pid, "features": FEATS}, headers=KEY).status_code == 201
        r = c.post("/v1/posts", json={"post_id": 503, "features": FEATS}, headers=KEY)
        assert r.status_code == 409 and "RECSYS_DELTA_MAX" in r.json()["detail"]
        assert c.post("/v1/posts", json={"post_id": 501, "features": FEATS}, headers=KEY).status_code == 200  # re-post: no room needed
        ev = lambda u, p: {"user_id": u, "post_id": p}  # noqa: E731
        assert c.post("/v1/events", json={"events": [ev(1, 1000003), ev(1, 1000010), ev(1, 1000003)]}, headers=KEY).status_code == 200
        r = c.post("/v1/events", json={"events": [ev(1, 1000017), ev(1, 1000024)]}, headers=KEY)
        assert r.status_code == 409 and "RECSYS_USER_SEEN_MAX" in r.json()["detail"]
        r = c.post("/v1/events", json={"events": [ev(2, 1000003), ev(3, 1000003)]}, headers=KEY)
        assert r.status_code == 409 and "RECSYS_ONLINE_USERS_MAX" in r.json()["detail"]
        assert c.get("/readyz").json()["delta_posts"] == 2
        # nothing of a refused batch was applied: user 2 still has room for one new user
        assert c.post("/v1/events", json={"events": [ev(2, 1000003)]}, headers=KEY).status_code == 200


def test_reload_failure_names_no_server_path(ivf_bundle, tmp_path):
    from index import bundle as B

    root = tmp_path / "index"
    shutil.copytree(ivf_bundle, root)
    broken = B.bundles_dir(root) / "v0002"
    shutil.copytree(B.bundles_dir(root) / "v0001", broken)
    (broken / B.INDEX_FILE).write_bytes(b"not a faiss index")
    with TestClient(create_app(settings_for(root))) as c:
        (root / B.CURRENT).write_text("v0002\n")
        r = c.post("/v1/admin/reload", headers=KEY)
        assert r.status_code == 503 and "v0002" in r.text and "still serving 'v0001'" in r.text, r.text
        (root / B.CURRENT).write_text("v0009\n")
        r2 = c.post("/v1/admin/reload", headers=KEY)
        assert r2.status_code == 503, r2.text
        for text in (r.text, r2.text):
            assert str(tmp_path) not in text and "/" not in text.replace("/v1", ""), text
        assert c.post("/v1/recommendations", json={"user_id": 1, "k": 2}, headers=READ).json()["bundle_version"] == "v0001"
