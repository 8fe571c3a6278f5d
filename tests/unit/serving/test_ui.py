"""The web page's public reads (serving/ui.py, serving/media.py) on a real bundle that names a
data root with real media files: post metadata, media confined to the root, video posters, the
OpenAPI description of `why_modality`, the static page."""

from __future__ import annotations

import io
import os
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from fastapi.testclient import TestClient

from serving.app import create_app
from tests.unit.serving.conftest import NOW_US, READ, settings_for


@pytest.fixture(scope="module")
def media_bundle(tiny_synth: Path, tmp_path_factory) -> dict:
    from index.from_vectors import build_from_latents, synthetic_catalogue, write_posts_dataset

    tmp = tmp_path_factory.mktemp("ui")
    src = pl.read_parquet(tiny_synth / "posts.parquet")
    media = [tiny_synth / p for p in src["image_path"].drop_nulls().head(3).to_list() + src["video_path"].drop_nulls().head(1).to_list()]
    cat, _ = synthetic_catalogue(300, 16, n_users=20, n_authors=10, seed=2, n_clusters=8, span_days=30, now_us=NOW_US)
    data = write_posts_dataset(cat, tmp / "data", media)
    (tmp / "secret.jpg").write_bytes(b"outside the root")
    os.symlink(tmp / "secret.jpg", data / "media" / "link.jpg")  # inside the root, pointing out
    (data / "media" / ".hidden.jpg").write_bytes(b"x")
    root = tmp / "index"
    build_from_latents(cat, root, factory="Flat", k=20, max_history=20, n_queries=20, dataset=data)
    return {"root": root, "data": data, "posts": pl.read_parquet(data / "posts.parquet")}


@pytest.fixture(scope="module")
def client(media_bundle):
    with TestClient(create_app(settings_for(media_bundle["root"])), headers=READ) as c:
        yield c


def test_lookup_returns_text_author_age_and_media_urls(client, media_bundle):
    posts = media_bundle["posts"]
    ids = posts["post_id"].to_list()
    want = [ids[5], ids[0], ids[2]]  # order kept; ids[2] is text only (every third post)
    r = client.post("/v1/posts:lookup", json={"post_ids": want + [42]})
    assert r.status_code == 200, r.text
    j = r.json()
    assert [p["post_id"] for p in j["posts"]] == want and j["missing"] == [42]
    rows = {r["post_id"]: r for r in posts.to_dicts()}
    for p in j["posts"]:
        row = rows[p["post_id"]]
        assert p["text"] == row["text"] and p["author_id"] == row["author_id"]
        assert p["created_at"].startswith(row["created_at"].strftime("%Y-%m-%dT%H:%M:%S"))
        assert p["age_seconds"] == pytest.approx((NOW_US - row["created_at"].timestamp() * 1e6) / 1e6, abs=3600 * 24)
        assert p["image_url"] == (f"/media/{row['image_path']}" if row["image_path"] else None)
        assert p["poster_url"] == (f"/posters/{row['video_path']}" if row["video_path"] else None)
    assert j["posts"][2]["image_url"] is None and j["posts"][2]["video_url"] is None
    one = client.get(f"/v1/posts/{ids[5]}").json()
    assert {**one, "age_seconds": None} == {**j["posts"][0], "age_seconds": None}  # age moves with the clock
    r = client.get("/v1/posts/42")
    assert r.status_code == 404 and "post 42 not found" in r.json()["detail"]
    r = client.post("/v1/posts:lookup", json={"post_ids": list(range(1001))})
    assert r.status_code == 422 and "at most 1000" in r.json()["detail"][0]["msg"]


def test_a_deleted_post_is_missing(media_bundle):
    pid = int(media_bundle["posts"]["post_id"][7])
    with TestClient(create_app(settings_for(media_bundle["root"])), headers=READ) as c:
        assert c.post("/v1/posts:lookup", json={"post_ids": [pid]}).json()["missing"] == []
        assert c.delete(f"/v1/posts/{pid}", headers={"X-API-Key": "secret"}).status_code == 200
        assert c.post("/v1/posts:lookup", json={"post_ids": [pid]}).json()["missing"] == [pid]
        assert c.get(f"/v1/posts/{pid}").status_code == 404


def test_media_are_served_from_the_data_root_only(client, media_bundle):
    data, posts = media_bundle["data"], media_bundle["posts"]
    rel = posts["image_path"].drop_nulls()[0]
    r = client.get(f"/media/{rel}")
    assert r.status_code == 200 and r.content == (data / rel).read_bytes()
    assert r.headers["content-type"] == "image/jpeg" and "max-age" in r.headers["cache-control"]
    refused = ["%2e%2e/secret.jpg", "media/%2e%2e/%2e%2e/secret.jpg", "%2Fetc%2Fhostname", "posts.parquet",
               "media/link.jpg", "media/.hidden.jpg", "media/nope.jpg", "media/%00.jpg"]
    bodies = set()
    for path in refused:
        r = client.get(f"/media/{path}")
        assert r.status_code == 404, (path, r.status_code)
        bodies.add(r.text)
    assert bodies == {'{"detail":"not found"}'}  # the same answer for every refusal: no hint about the filesystem


def test_video_poster_is_a_jpeg_frame(client, media_bundle):
    from PIL import Image

    rel = media_bundle["posts"]["video_path"].drop_nulls()[0]
    r = client.get(f"/posters/{rel}")
    assert r.status_code == 200 and r.headers["content-type"] == "image/jpeg" and "max-age" in r.headers["cache-control"]
    img = Image.open(io.BytesIO(r.content))
    assert img.format == "JPEG" and max(img.size) <= 360 and np.asarray(img).std() > 0  # a picture, not a blank
    assert client.get("/posters/%2e%2e/secret.jpg").status_code == 404


def test_info_history_and_the_page(client, media_bundle):
    info = client.get("/v1/info").json()
    assert info["media"] is True and info["n_posts"] == 300 and len(info["users"]) == 20
    lens = [u["history_len"] for u in info["users"]]
    assert lens == sorted(lens, reverse=True)
    u = info["users"][0]["user_id"]
    h = client.get(f"/v1/users/{u}/history").json()
    assert h["known"] is True and len(h["history"]) == info["users"][0]["history_len"]
    r = client.get("/", follow_redirects=False)
    assert r.status_code == 307 and r.headers["location"] == "/ui/"
    page = client.get("/ui/")
    assert page.status_code == 200 and '<script src="app.js">' in page.text
    for f in ("app.js", "style.css"):
        assert client.get(f"/ui/{f}").status_code == 200


def test_why_modality_is_documented_in_the_openapi_schema(client):
    item = client.get("/openapi.json").json()["components"]["schemas"]["Item"]["properties"]
    assert "why_modality" in item and "recsys/explain.py" in item["why_modality"]["description"]


def test_media_need_no_key_but_user_reads_do(media_bundle):
    """An <img> cannot send X-API-Key: media (posts' public content) are served without it, while
    the reads that reveal a user (feed, history) still need the read key."""
    rel = media_bundle["posts"]["image_path"].drop_nulls()[0]
    with TestClient(create_app(settings_for(media_bundle["root"]))) as c:  # no key sent
        assert c.get(f"/media/{rel}").status_code == 200
        assert c.get("/media/media/nope.jpg").status_code == 404
        assert c.post("/v1/recommendations", json={"user_id": 1, "k": 3}).status_code == 401
        assert c.get("/v1/users/1/history").status_code == 401
