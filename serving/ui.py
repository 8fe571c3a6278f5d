"""The web page (`/ui/`, plain HTML + JavaScript in serving/static, no build step) and the public
reads it needs besides the feed routes: post metadata, media files, video posters, a user's
history and a few users to pick from. `create_app` includes `router(...)`.

The page calls only these public routes, so it shows exactly what any client of the API gets.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path

import numpy as np
import polars as pl
from fastapi import APIRouter, FastAPI, HTTPException, Query, Request
from fastapi.responses import FileResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles

from serving import schemas as S
from serving.media import PostMedia, iso_time
from serving.requests import BadInput

STATIC = Path(__file__).parent / "static"
MEDIA_CACHE = "public, max-age=86400"  # media files of a dataset do not change under a path
USERS_LISTED = 50
_NOT_FOUND = "not found"  # one answer for every refused media path (no hint about the filesystem)
_lock = threading.Lock()


def post_media(request: Request, st) -> PostMedia:
    """The PostMedia of the serving state's bundle (built on first use, rebuilt after a reload)."""
    cat = getattr(request.app.state, "post_media", None)
    if cat is None or cat.version != st.version:
        with _lock:
            cat = getattr(request.app.state, "post_media", None)
            if cat is None or cat.version != st.version:
                cat = request.app.state.post_media = PostMedia(st.bundle)
    return cat


def external(st, entity: str, ids: list) -> list:
    """Internal user / author ids (None passes through) -> the caller's ids (serving.ids)."""
    m = st.ids.maps.get(entity) if st.ids.strings(entity) else None
    if m is None:
        return list(ids)
    keys = m.to_external(np.array([-1 if i is None else i for i in ids], np.int64))
    return [None if i is None else (k if k is not None else str(i)) for i, k in zip(ids, keys)]


def mount(app: FastAPI, read_deps: list, state: Callable[[Request], object], errors: Callable[..., dict] = lambda *c: {},
          read_errors: tuple = ()) -> None:
    """Add the page and its routes to `app`; `state(request)` returns the live ServingState;
    `errors(*codes)` documents the error statuses (serving.app._errors_doc)."""
    app.include_router(router(read_deps, state, errors, read_errors))
    app.mount("/ui", StaticFiles(directory=STATIC, html=True), name="ui")


def router(read_deps: list, state: Callable[[Request], object], errors: Callable[..., dict] = lambda *c: {},
           read_errors: tuple = ()) -> APIRouter:
    r = APIRouter()

    @r.get("/", include_in_schema=False)
    async def root():
        return RedirectResponse("/ui/")

    @r.get("/v1/info", response_model=S.Info, dependencies=read_deps, responses=errors(*read_errors))
    def info(request: Request):
        st = state(request)
        b, media = st.bundle, post_media(request, st)
        h = b.histories.select("user_id", pl.col("history").list.len().alias("history_len"))
        top = h.sort(["history_len", "user_id"], descending=[True, False]).head(USERS_LISTED)
        uids = external(st, "user", top["user_id"].to_list())
        users = [{"user_id": u, "history_len": n} for u, n in zip(uids, top["history_len"].to_list())]
        newest = int(b.created_at_us[-1]) if b.n else np.iinfo(np.int64).min  # rows are in created_at order, unknown first
        return {"bundle_version": st.version, "n_posts": st.n, "media": media.root is not None, "users": users,
                "newest_post_at": iso_time(newest) if newest != np.iinfo(np.int64).min else None}

    @r.get("/v1/users/{user_id}/history", response_model=S.UserHistory, dependencies=read_deps, responses=errors(*read_errors))
    def history(user_id: str, request: Request, limit: int = Query(50, ge=1, le=1000)):
        st = state(request)
        user_id, internal = st.ids.inward_path("user", user_id, "user_id")
        known, hist, _ = st.user_history(internal)
        return {"user_id": user_id, "known": known, "history": st.ids.posts_out(hist[-limit:].tolist())}

    def lookup(request: Request, ids: list) -> tuple[list[dict], list, str]:
        """Posts in the caller's ids -> (their metadata, the ids not found, bundle version)."""
        st = state(request)
        if len(ids) > st.settings.k_max:
            raise BadInput(f"`post_ids` must hold at most {st.settings.k_max} ids, got {len(ids)}", ("body", "post_ids"))
        arr = np.asarray(st.ids.many("post", ids, "post_ids"), np.int64)
        caller = dict(zip(arr.tolist(), ids))
        rows = st.rows_of(arr)
        gone = np.zeros(len(arr), bool)
        gone[rows >= 0] = st.online.is_deleted_row(rows[rows >= 0])
        posts, missing = post_media(request, st).lookup(arr[~gone].tolist(), st.delta)
        authors = external(st, "author", [p["author_id"] for p in posts])
        for p, a in zip(posts, authors):
            p["post_id"], p["author_id"] = caller[p["post_id"]], a
        missing = set(missing) | set(arr[gone].tolist())
        return posts, [caller[i] for i in arr.tolist() if i in missing], st.version

    @r.get("/v1/posts/{post_id}", response_model=S.Post, dependencies=read_deps, responses=errors(*read_errors, 404))
    def post(post_id: str, request: Request):
        post_id, _ = state(request).ids.inward_path("post", post_id, "post_id")
        posts, _, _ = lookup(request, [post_id])
        if not posts:
            raise HTTPException(404, f"post {post_id} not found (unknown or deleted)")
        return posts[0]

    from fastapi.concurrency import run_in_threadpool

    from serving.app import body_doc, json_body  # the app's strict body parse (serving.app imports this module first)

    @r.post("/v1/posts:lookup", response_model=S.LookupResponse, dependencies=read_deps, responses=errors(*read_errors),
            openapi_extra=body_doc(S.LookupRequest))
    async def posts_lookup(request: Request):
        req = await json_body(request, S.LookupRequest)
        posts, missing, version = await run_in_threadpool(lookup, request, req.post_ids)
        return {"posts": posts, "missing": missing, "bundle_version": version}

    # media are the posts' public content (what any feed shows) and an <img> cannot send a key
    # header: they need no read key; every refused path still answers the same 404
    @r.get("/media/{path:path}", include_in_schema=False)
    def media(path: str, request: Request):
        f = post_media(request, state(request)).media_file(path)
        if f is None:
            raise HTTPException(404, _NOT_FOUND)
        return FileResponse(f, headers={"Cache-Control": MEDIA_CACHE})

    @r.get("/posters/{path:path}", include_in_schema=False)
    def poster(path: str, request: Request):
        data = post_media(request, state(request)).poster(path)
        if data is None:
            raise HTTPException(404, _NOT_FOUND)
        return Response(data, media_type="image/jpeg", headers={"Cache-Control": MEDIA_CACHE})

    return r
