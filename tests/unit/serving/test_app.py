"""HTTP layer: status codes and messages for bad input, API keys, metrics, readiness."""

from __future__ import annotations

import numpy as np
import pytest
from fastapi.testclient import TestClient

from serving.app import create_app
from tests.unit.serving.conftest import KEY, READ, settings_for


@pytest.fixture(scope="module")
def client(ivf_bundle, tmp_path_factory):
    """Sends the read key unless a request names another (the read key opens no write)."""
    log = tmp_path_factory.mktemp("app-log") / "online_log.sqlite3"
    with TestClient(create_app(settings_for(ivf_bundle, batch_max=4, online_log=str(log))), headers=READ) as c:
        yield c


def _detail(r) -> str:
    return str(r.json()["detail"])


@pytest.mark.parametrize(
    "body, status, match",
    [
        ({"user_id": 1, "k": 0}, 422, r"`k` must be in [1, 1000], got 0"),
        ({"user_id": 1, "k": 5000}, 422, r"`k` must be in [1, 1000], got 5000"),
        ({"history": ["abc"]}, 422, "int"),
        ({"history": 5}, 422, "list"),
        ({"history": [424242]}, 422, "`history` must list known post ids; 1 unknown, e.g. [424242]"),
        ({"user_id": 1, "filters": {"author_cap": 0}}, 422, "greater than or equal to 1"),
        ({"user_id": 1, "filters": {"max_age_seconds": -3}}, 422, "greater than 0"),
        ({"user_id": 1, "filters": {"nope": 1}}, 422, "Extra inputs"),
        # ids are int64: a larger one is a 422 naming the bound, not an overflow (was a 500)
        ({"history": [2**70]}, 422, "to 9223372036854775807), got"),
        ({"user_id": 1, "filters": {"exclude_post_ids": [2**70]}}, 422, "to 9223372036854775807), got"),
        ({"user_id": 1, "filters": {"exclude_authors": [-(2**70)]}}, 422, "int64 (from -9223372036854775808"),
        ({"user_id": 2**63}, 422, "to 9223372036854775807), got"),
    ],
)
def test_bad_recommendation_requests(client, body, status, match):
    r = client.post("/v1/recommendations", json=body)
    assert r.status_code == status and match in _detail(r), r.text


def test_batch_bounds(client):
    r = client.post("/v1/recommendations:batch", json={"requests": [{"user_id": i} for i in range(5)]})
    assert r.status_code == 422 and "`requests` must hold 1 to 4 entries, got 5" in _detail(r)
    r = client.post("/v1/recommendations:batch", json={"requests": [{"user_id": i, "k": 3} for i in range(4)]})
    assert r.status_code == 200 and [len(x["items"]) for x in r.json()["results"]] == [3, 3, 3, 3]


def test_write_endpoints_need_the_key(client, ivf_bundle):
    body = {"post_id": 9001, "features": {"vec": [0.5] * 16}}
    assert client.post("/v1/posts", json=body).status_code == 401
    assert client.post("/v1/posts", json=body, headers={"X-API-Key": "wrong"}).status_code == 401
    assert client.delete("/v1/posts/1").status_code == 401
    assert client.post("/v1/events", json={"events": []}).status_code == 401
    assert client.post("/v1/admin/reload").status_code == 401
    with TestClient(create_app(settings_for(ivf_bundle, api_key=None))) as c:
        r = c.post("/v1/posts", json=body, headers=KEY)
        assert r.status_code == 403 and "RECSYS_API_KEY" in _detail(r)



def test_posts_lifecycle_and_4xx(client):
    r = client.post("/v1/posts", json={"post_id": 9002, "features": {"vec": [0.1] * 15}}, headers=KEY)
    assert r.status_code == 422 and "`features['vec']` must have 16 values, got 15" in _detail(r)
    r = client.post("/v1/posts", json={"post_id": 9002, "text": "hi", "features": {"vec": [0.1] * 16}}, headers=KEY)
    assert r.status_code == 422 and "not both" in _detail(r)
    r = client.post("/v1/posts", json={"post_id": 9002, "image_path": "/nonexistent/x.jpg"}, headers=KEY)
    assert r.status_code == 422 and "readable media file under the server's media root" in _detail(r)
    assert client.get("/readyz").json()["delta_posts"] == 0  # nothing half-added
    body = {"post_id": 9002, "author_id": 5, "features": {"vec": [0.1] * 16}}
    r = client.post("/v1/posts", json=body, headers=KEY)
    assert r.status_code == 201 and r.json()["created"] is True
    r = client.post("/v1/posts", json=body, headers=KEY)
    assert r.status_code == 200 and r.json()["created"] is False
    assert client.get("/v1/posts/9002/similar", params={"k": 5}).status_code == 200
    assert client.delete("/v1/posts/9002", headers=KEY).status_code == 200
    r = client.delete("/v1/posts/9002", headers=KEY)
    assert r.status_code == 404 and "9002" in _detail(r)
    assert client.get("/v1/posts/9002/similar").status_code == 404
    r = client.post("/v1/posts", json={"post_id": 2**64, "features": {"vec": [0.1] * 16}}, headers=KEY)
    assert r.status_code == 422 and "integer ids are int64" in _detail(r)
    assert client.get(f"/v1/posts/{2**64}/similar").status_code == 422
    assert client.delete(f"/v1/posts/{2**64}", headers=KEY).status_code == 422
    r = client.get("/v1/posts/1000003/similar", params={"k": 0})
    assert r.status_code == 422 and "`k` must be in [1, 1000], got 0" in _detail(r)


def test_events_validation(client):
    r = client.post("/v1/events", json={"events": [{"user_id": 1, "post_id": 77777777}]}, headers=KEY)
    assert r.status_code == 422 and "unknown" in _detail(r)
    r = client.post("/v1/events", json={"events": [{"user_id": 2**64, "post_id": 1000003}]}, headers=KEY)
    assert r.status_code == 422 and "integer ids are int64" in _detail(r)
    r = client.post("/v1/events", json={"events": []}, headers=KEY)
    assert r.status_code == 422 and "`events` must hold 1 to 1000 entries, got 0" in _detail(r)
    r = client.post("/v1/events", json={"events": [{"user_id": 1, "post_id": 1000003, "ts": "2026-01-01T00:00:00Z"}]}, headers=KEY)
    assert r.status_code == 200 and r.json() == {"accepted": 1, "users": 1}


def test_health_ready_metrics(client):
    assert client.get("/healthz").json() == {"status": "ok"}
    ready = client.get("/readyz").json()
    assert ready["status"] == "ready" and ready["bundle_version"] == "v0001" and ready["n_posts"] == 3000
    client.post("/v1/recommendations", json={"k": 3})  # popular fallback
    client.post("/v1/recommendations", json={"user_id": 1, "k": 3, "filters": {"author_cap": 1}})
    text = client.get("/metrics").text
    assert 'recsys_request_seconds_count{method="POST",route="/v1/recommendations",status="200"}' in text
    assert 'recsys_bundle_info{version="v0001"} 1.0' in text
    assert 'recsys_bundle_recall{k="50"}' in text
    assert 'recsys_fallbacks_total{reason="no_history_popular"}' in text
    assert 'recsys_filter_searches_total{strategy="post_filter"}' in text
    assert "recsys_bundle_age_seconds" in text and "recsys_search_batch_size_bucket" in text
    # the online log: this worker's applied seq, the log's size, the replay
    import os
    import re

    log = client.get("/readyz").json()["log"]
    assert log["worker_pid"] == os.getpid() and log["location"].endswith("online_log.sqlite3")
    assert log["applied_seq"] == float(re.search(rf'recsys_log_applied_seq{{worker_pid="{os.getpid()}"}} (\S+)', text)[1])
    last = float(re.search(r"^recsys_log_last_seq (\S+)", text, re.M)[1])
    assert last == log["applied_seq"] and float(re.search(r"^recsys_log_bytes (\S+)", text, re.M)[1]) > 0
    assert "recsys_log_replay_seconds" in text and "recsys_log_entries" in text


def test_recommendation_response_shape(client):
    r = client.post("/v1/recommendations", json={"user_id": 2, "k": 7})
    j = r.json()
    assert r.status_code == 200 and len(j["items"]) == 7 and j["bundle_version"] == "v0001"
    assert j["fallback"] is False and j["user_known"] is True
    assert all(set(i) == {"post_id", "score", "why", "why_similarity", "why_modality"} for i in j["items"])
    assert {i["why_modality"] for i in j["items"]} == {"vec"}  # the synthetic model's one modality, no ID tables
    assert np.all(np.diff([i["score"] for i in j["items"]]) <= 0)


def test_fast_json_responses_match_their_response_models(client):
    from serving.schemas import BatchResponse, RecommendResponse, SimilarResponse

    r = client.post("/v1/recommendations", json={"user_id": 3, "k": 5, "filters": {"author_cap": 1}})
    assert RecommendResponse.model_validate(r.json()).model_dump(mode="json") == r.json()
    r = client.post("/v1/recommendations:batch", json={"requests": [{"user_id": 1, "k": 2}, {"k": 2}]})
    assert BatchResponse.model_validate(r.json()).model_dump(mode="json") == r.json()
    r = client.get("/v1/posts/1000003/similar", params={"k": 4})
    assert SimilarResponse.model_validate(r.json()).model_dump(mode="json") == r.json()


def test_recommendation_body_errors_and_docs(client):
    """The route parses its own body: FastAPI's 422 shape (loc under "body"), a non-JSON content
    type or malformed JSON is a 422 that says so, and the OpenAPI document still has the body."""
    r = client.post("/v1/recommendations", json={"user_id": True, "filters": {"author_cap": 0}})
    assert r.status_code == 422
    assert [e["loc"] for e in r.json()["detail"]] == [["body", "user_id"], ["body", "filters", "author_cap"]]
    r = client.post("/v1/recommendations", content=b'{"user_id": 1', headers={"Content-Type": "application/json"})
    assert r.status_code == 422 and r.json()["detail"][0]["type"] == "json_invalid"
    r = client.post("/v1/recommendations", content=b'{"user_id": 1}', headers={"Content-Type": "text/plain"})
    assert r.status_code == 422 and "must be JSON" in _detail(r)
    r = client.post("/v1/recommendations", content=b'{"user_id": 1, "k": 2}', headers={"Content-Type": "application/json; charset=utf-8"})
    assert r.status_code == 200 and len(r.json()["items"]) == 2
    r = client.post("/v1/recommendations", content=b'{"user_id": 1, "k": 2}')  # no Content-Type: JSON, as in FastAPI
    assert r.status_code == 200 and len(r.json()["items"]) == 2
    doc = client.get("/openapi.json").json()
    body = doc["paths"]["/v1/recommendations"]["post"]["requestBody"]
    assert body["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/RecommendRequest"}
    assert "RecommendRequest" in doc["components"]["schemas"]


def test_recommendations_are_matched_first_and_the_order_changes_no_answer(client):
    """The router tries the recommendation routes first (the page's router used to come first);
    a path served under two methods by two routers still reaches each, and the OpenAPI document
    keeps the declared order."""
    app = client.app
    assert [r.path for r in app.router.routes[:2]] == ["/v1/recommendations", "/v1/recommendations:batch"]
    doc_paths = list(app.openapi()["paths"])
    assert doc_paths.index("/healthz") < doc_paths.index("/v1/recommendations") < doc_paths.index("/v1/events")
    pid = client.post("/v1/recommendations", json={"user_id": 1, "k": 1}).json()["items"][0]["post_id"]
    assert client.get(f"/v1/posts/{pid}").json()["post_id"] == pid  # the page's read (serving.ui)
    assert client.delete(f"/v1/posts/{pid}").status_code == 401  # the write route (the read key opens no write)
    assert client.put(f"/v1/posts/{pid}").status_code == 405
