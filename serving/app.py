"""The feed API: `create_app(settings)`; lifespan loads the CURRENT bundle into app.state.

Routes stay thin (the logic is in serving.state and its rooms); routes that call torch / faiss are plain `def`
(run in the threadpool), with one measured exception: `POST /v1/recommendations` is `async def`
because the threadpool hop alone cost ~0.1 ms a request (about a sixth of the bare search
endpoint's CPU). It parses and prepares the request on the event loop, awaits the shared FAISS
search, whose executor job also filters, explains and renders the reply for the whole batch
(serving.batcher.AsyncCombiner), and sends every torch or slow-path request to a worker thread.
Each request reads `app.state.holder.state` once, so a reload that swaps the reference never
changes the state under a running request. Writes go through the online log first
(serving.journal): appended and committed before the 2xx, replayed on start and on a swap.
"""

from __future__ import annotations

import logging
import math
import secrets
import threading
import time
from collections import deque
from contextlib import asynccontextmanager

from fastapi import Depends, FastAPI, Header, HTTPException, Query, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, PlainTextResponse
from pydantic import BaseModel, ValidationError
from pydantic_core import to_json

from recsys.errors import ArtifactError, ConfigError, RecsysError, SchemaError, UnknownIdError
from serving import analysis_routes
from serving import schemas as S
from serving import ui
from serving.ids import internal_events, internal_post, internal_request
from serving.limits import BodyLimit, check_room_for_events, check_room_for_post
from serving.journal import Journal
from serving.metrics import Metrics, method_label
from serving.settings import Settings, get_settings
from serving.state import ServingState
from serving.warmup import warm

logger = logging.getLogger(__name__)


class FastJSON(Response):
    """JSON bytes serialised by pydantic-core (Rust) from plain dicts the state built itself;
    the route's `response_model` still documents the shape (and the tests check it)."""

    media_type = "application/json"

    def render(self, content) -> bytes:
        return to_json(content)


async def json_body(request: Request, model: type[BaseModel]) -> BaseModel:
    """The request body parsed and validated in one strict pydantic-core call
    (`model_validate_json(strict=True)`: JSON types as declared, no coercion of `true` to 1 or of
    a number to a date-time), for every route with a body. (FastAPI's own body handling costs ~8 us
    more per request: a MIME parse of the content type, json.loads, then validation of the dict.)
    Errors come back as 422 `ValidationErrorBody`."""
    ctype = next((v.decode("latin-1") for k, v in request.scope["headers"] if k == b"content-type"), "")
    if ctype and not ctype.startswith("application/json") and "+json" not in ctype:  # none = JSON, as FastAPI
        raise RequestValidationError([{"type": "content_type", "loc": ("body",), "input": ctype[:100],
                                       "msg": f"the body must be JSON (Content-Type: application/json), got {ctype[:100]!r}"}])
    try:
        return model.model_validate_json(await request.body(), strict=True)
    except ValidationError as e:
        raise RequestValidationError([{**err, "loc": ("body", *err["loc"])} for err in e.errors(include_url=False)]) from None


def body_doc(model: type[BaseModel]) -> dict:
    """OpenAPI `requestBody` for a route that parses its body with `json_body`."""
    ref = {"$ref": f"#/components/schemas/{model.__name__}"}
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": ref}}}}


def _errors_doc(*codes: int) -> dict:
    """OpenAPI `responses` for the error statuses a route answers (413 on every route: the body cap)."""
    why = {401: "missing or wrong X-API-Key", 403: "the key this route needs is not configured on the server",
           404: "unknown or deleted id", 409: "an online-state cap is reached", 413: "request body over RECSYS_BODY_MAX_BYTES",
           422: "the request does not validate (one entry per problem)", 503: "no bundle loaded, or a reload failed"}
    out = {c: {"model": S.ValidationErrorBody if c == 422 else S.ErrorBody, "description": why[c]} for c in codes}
    out[413] = {"model": S.ErrorBody, "description": why[413]}
    return out


def unprocessable(msg: str, loc: tuple = ("body",)) -> RequestValidationError:
    """A 422 with the same body shape as a schema violation (a bound that depends on settings)."""
    return RequestValidationError([{"type": "value_error", "loc": loc, "msg": msg}])


class Holder:
    """The live ServingState plus the locks around writes and reloads."""

    def __init__(self) -> None:
        self.state: ServingState | None = None
        self.write_lock = threading.RLock()  # online writes vs the swap
        self.reload_lock = threading.Lock()  # one reload at a time
        self.recent_users: deque[int] = deque(maxlen=4096)  # users served lately (a reload warms them first)
        self.journal: Journal | None = None  # the online log (serving.journal)


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    holder = Holder()

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        _threads(settings)
        if settings.threadpool:
            import anyio.to_thread

            anyio.to_thread.current_default_thread_limiter().total_tokens = settings.threadpool
        _freeze_libraries(settings)
        state = ServingState.load(settings)  # a broken bundle stops start-up loudly
        holder.journal = Journal.open(holder, settings)
        holder.journal.replay(state)  # acknowledged writes after the bundle's watermark
        holder.state = state
        del state  # the lifespan frame lives as long as the app: it must not pin the first state
        holder.journal.start()
        _wire(holder.state, metrics)
        logger.info("serving bundle %s (%d posts) from %s", holder.state.version, holder.state.n, settings.index_root)
        yield
        holder.journal.close()
        holder.state = None

    app = FastAPI(title="recsys feed API", version="1", lifespan=lifespan)
    app.state.settings, app.state.holder = settings, holder
    metrics = app.state.metrics = Metrics(holder)
    app.add_middleware(BodyLimit, limit=settings.body_max_bytes)
    app.add_middleware(_LatencyMiddleware, metrics=metrics)  # outermost: also times the 413s
    _errors(app)
    _routes(app)
    _openapi(app, (S.RecommendRequest, S.BatchRequest, S.NewPost, S.EventsRequest))
    reads_open = settings.open_reads
    app.include_router(analysis_routes.router, dependencies=[] if reads_open else [Depends(read_key)],
                       responses=_errors_doc(*((422, 503, 404) if reads_open else (401, 403, 422, 503, 404))))
    _hot_routes_first(app, ("/v1/recommendations", "/v1/recommendations:batch"))
    return app


def _hot_routes_first(app: FastAPI, paths: tuple[str, ...]) -> None:
    """Match the recommendation routes before the others. The router tries routes in order and
    the page's included router (serving.ui) comes first, so every recommendation paid for
    matching its routes one by one (~50 us a request). No path of the API is matched by two
    routes of the same method, so the order changes no answer; the OpenAPI document keeps the
    order the routes were declared in."""
    declared = list(app.router.routes)
    app.state.declared_routes = declared
    hot = [r for r in declared if getattr(r, "path", None) in paths]
    app.router.routes[:] = hot + [r for r in declared if not any(r is h for h in hot)]


def _openapi(app: FastAPI, bodies: tuple[type[BaseModel], ...]) -> None:
    """The generated document plus the schemas of the bodies `json_body` parses (no route declares
    them as parameters, so FastAPI does not collect them)."""
    from fastapi.openapi.utils import get_openapi

    def openapi() -> dict:
        if app.openapi_schema is None:
            declared = getattr(app.state, "declared_routes", [])  # the declared order (_hot_routes_first)
            routes = declared + [r for r in app.routes if not any(r is d for d in declared)]
            doc = get_openapi(title=app.title, version=app.version, routes=routes)
            comps = doc.setdefault("components", {}).setdefault("schemas", {})
            for m in bodies:
                schema = m.model_json_schema(ref_template="#/components/schemas/{model}")
                comps.update(schema.pop("$defs", {}))
                comps[m.__name__] = schema
            app.openapi_schema = doc
        return app.openapi_schema

    app.openapi = openapi


def _threads(settings: Settings) -> None:
    import torch

    if settings.torch_threads:
        torch.set_num_threads(settings.torch_threads)
    if settings.faiss_threads:  # every searching thread, not only this one (OpenMP counts per thread)
        from index import faiss_index

        faiss_index.set_threads(settings.faiss_threads)


def _freeze_libraries(settings: Settings) -> None:
    """Before the first bundle loads: move the libraries' ~0.4M long-lived objects (torch, polars,
    faiss, pydantic, the model code) out of the collector's reach for good. A full collection
    over them holds the GIL for 0.2-1.6 s on 2 cores; frozen, no collection (automatic, or the one
    after a reload) ever scans them again. Bundles are not frozen (a state is a few thousand
    objects), so a replaced one is still collected."""
    if settings.gc_freeze:
        import gc

        import recsys.model  # noqa: F401  (what loading a state imports, frozen with the rest)
        import recsys.runs  # noqa: F401

        gc.collect()
        gc.freeze()


def _collect_previous(settings: Settings) -> None:
    """After a swap: collect the previous state's reference cycles. It scans only what is not
    frozen (the states), so it takes milliseconds: the stall of a hot swap was a full collection
    over the unfrozen libraries here."""
    if settings.gc_freeze:
        import gc

        gc.collect()


def _wire(state: ServingState, metrics: Metrics) -> None:
    """Counters live as long as the app (they survive reloads)."""
    state.stats = metrics.stats
    state.stats.on_batch = metrics.batch.observe
    state.async_combiner.alone = lambda: metrics.in_flight <= 1


# --- auth --------------------------------------------------------------------------------------

def _key_ok(given: str | None, *keys: str | None) -> bool:
    return given is not None and any(k is not None and secrets.compare_digest(given.encode(), k.encode()) for k in keys)


async def write_key(request: Request, x_api_key: str | None = Header(None)) -> None:
    """Write / admin routes: RECSYS_API_KEY. (async: no threadpool hop for a string compare)"""
    s: Settings = request.app.state.settings
    if s.api_key is None:
        raise HTTPException(403, "this endpoint needs an API key but the server has none configured (set RECSYS_API_KEY)")
    if not _key_ok(x_api_key, s.api_key):
        raise HTTPException(401, "missing or wrong X-API-Key header")


async def read_key(request: Request, x_api_key: str | None = Header(None)) -> None:
    """Read routes: RECSYS_READ_API_KEY or the write key, unless RECSYS_OPEN_READS=true."""
    s: Settings = request.app.state.settings
    if s.read_api_key is None and s.api_key is None:
        raise HTTPException(403, "read endpoints need a key but the server has none configured (set RECSYS_READ_API_KEY, "
                                 "or RECSYS_OPEN_READS=true to serve reads without one)")
    if not _key_ok(x_api_key, s.read_api_key, s.api_key):
        raise HTTPException(401, "missing or wrong X-API-Key header")


def _state(request: Request) -> ServingState:
    st = request.app.state.holder.state
    if st is None:
        raise HTTPException(503, "no bundle loaded yet")
    return st


# --- errors / metrics middleware ------------------------------------------------------------------

def _errors(app: FastAPI) -> None:
    """One body shape per status: 422 `{"detail": [{loc, msg, type, input?}]}`, every other error
    `{"detail": "..."}` (schemas.ValidationErrorBody / ErrorBody), never a server path."""

    def as_422(loc: tuple = ("body",)):
        async def h(request: Request, exc: Exception) -> JSONResponse:
            where = getattr(exc, "loc", None) or loc
            return JSONResponse({"detail": [{"loc": list(where), "msg": str(exc), "type": "value_error"}]}, status_code=422)

        return h

    async def validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        return JSONResponse({"detail": [_field_error(e) for e in exc.errors()]}, status_code=422)

    async def not_found(request: Request, exc: Exception) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=404)

    async def artifact(request: Request, exc: Exception) -> JSONResponse:
        logger.error("bundle error on %s: %s", request.url.path, exc)  # the path stays in the server log
        return JSONResponse({"detail": "the index bundle could not be used (details in the server log)"}, status_code=503)

    async def other(request: Request, exc: Exception) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=400)

    app.add_exception_handler(RequestValidationError, validation)
    app.add_exception_handler(UnknownIdError, not_found)
    app.add_exception_handler(SchemaError, as_422())
    app.add_exception_handler(ConfigError, as_422())
    app.add_exception_handler(ArtifactError, artifact)
    app.add_exception_handler(RecsysError, other)


def _field_error(e: dict) -> dict:
    """A pydantic / FastAPI error entry as JSON-safe `FieldError` (the input only when it is a
    short scalar: a body that is not UTF-8 comes back described, never as raw bytes)."""
    out = {"loc": [x if isinstance(x, int) else str(x) for x in e.get("loc", ())], "msg": str(e.get("msg", "")),
           "type": str(e.get("type", "value_error"))}
    v = e.get("input")
    if isinstance(v, (bytes, bytearray)):
        try:
            v = bytes(v).decode("utf-8")
        except UnicodeDecodeError:
            out["msg"] += " (the body is not UTF-8 text)"
            v = None
    if isinstance(v, str):
        v = v if len(v) <= 200 else v[:200] + "..."
    if v is None or isinstance(v, (str, int, float, bool)):
        if isinstance(v, float) and not math.isfinite(v):  # not JSON
            v = str(v)
        if isinstance(v, int) and not isinstance(v, bool) and abs(v) >= 2**63:
            v = str(v)
        out["input"] = v
    return out


class _LatencyMiddleware:
    """Pure ASGI: request latency histogram by route template, method and status, and the count
    of requests in flight (lets a lone recommendation search without a thread hop)."""

    def __init__(self, app, metrics: Metrics) -> None:
        self.app, self.metrics = app, metrics
        self._children: dict[tuple, object] = {}  # (route, method, status) -> histogram child

    def _observe(self, route: str, method: str, status: int, seconds: float) -> None:
        child = self._children.get((route, method, status))
        if child is None:  # labels() takes a lock and builds the key: once per label set
            child = self._children[(route, method, status)] = self.metrics.latency.labels(route, method, str(status))
        child.observe(seconds)

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        t0 = time.perf_counter()
        status = [500]
        self.metrics.in_flight += 1

        async def send_(msg):
            if msg["type"] == "http.response.start":
                status[0] = msg["status"]
            await send(msg)

        try:
            await self.app(scope, receive, send_)
        finally:
            self.metrics.in_flight -= 1
            route = getattr(scope.get("route"), "path", None) or "unmatched"
            self._observe(route, method_label(scope["method"]), status[0], time.perf_counter() - t0)


# --- routes -------------------------------------------------------------------------------------

def _routes(app: FastAPI) -> None:
    # read endpoints carry the key check unless reads are opened explicitly (one dependency less
    # to solve per request then)
    read_deps = [] if app.state.settings.open_reads else [Depends(read_key)]
    read_errors = (422, 503) if app.state.settings.open_reads else (401, 403, 422, 503)
    write_deps = [Depends(write_key)]
    ui.mount(app, read_deps, _state, _errors_doc, read_errors)  # the web page at /ui/ and the reads it uses (serving/ui.py)

    @app.get("/healthz", response_model=S.Health, responses=_errors_doc())
    async def healthz():
        return {"status": "ok"}

    @app.get("/readyz", response_model=S.Ready, responses={**_errors_doc(), 503: {"model": S.Ready, "description": "loading"}})
    async def readyz(request: Request, response: Response):
        st = request.app.state.holder.state
        if st is None:
            response.status_code = 503
            return {"status": "loading"}
        return {"status": "ready", "bundle_version": st.version, "n_posts": st.n, "delta_posts": st.delta.n,
                "deleted_posts": len(st.tomb_rows), "log": request.app.state.holder.journal.status(st)}

    @app.get("/metrics", response_class=PlainTextResponse, responses=_errors_doc())
    def metrics_(request: Request):
        from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

        m: Metrics = request.app.state.metrics
        m.collect_state()
        return Response(generate_latest(m.registry), media_type=CONTENT_TYPE_LATEST)

    @app.post("/v1/recommendations", response_model=S.RecommendResponse, dependencies=read_deps,
              openapi_extra=body_doc(S.RecommendRequest), responses=_errors_doc(*read_errors))
    async def recommend(request: Request):
        # async: the common case awaits only the shared FAISS call (no request thread, see
        # ServingState.recommend_async); torch and the slow paths go to a worker thread there
        req = await json_body(request, S.RecommendRequest)
        st = _state(request)
        req = internal_request(st.ids, req)
        if req.user_id is not None:
            request.app.state.holder.recent_users.append(req.user_id)
        reply = await st.recommend_async(req)
        return Response(reply.to_json(st.version), media_type="application/json")

    @app.post("/v1/recommendations:batch", response_model=S.BatchResponse, dependencies=read_deps,
              openapi_extra=body_doc(S.BatchRequest), responses=_errors_doc(*read_errors))
    async def recommend_batch(request: Request):
        req = await json_body(request, S.BatchRequest)
        return await run_in_threadpool(_recommend_batch, req, request)

    def _recommend_batch(req: S.BatchRequest, request: Request):
        st = _state(request)
        n, cap = len(req.requests), st.settings.batch_max
        if not 1 <= n <= cap:
            raise unprocessable(f"`requests` must hold 1 to {cap} entries, got {n}", ("body", "requests"))
        results = st.recommend([internal_request(st.ids, r) for r in req.requests], batched_call=True)
        return FastJSON({"results": [{**r, "bundle_version": st.version} for r in results], "bundle_version": st.version})

    @app.get("/v1/posts/{post_id}/similar", response_model=S.SimilarResponse, dependencies=read_deps,
             responses=_errors_doc(*read_errors, 404))
    def similar(post_id: str, request: Request, k: int = Query(20)):
        st = _state(request)
        post_id, internal = st.ids.inward_path("post", post_id, "post_id")
        items = st.similar(internal, k)
        return FastJSON({"post_id": post_id, "items": items, "bundle_version": st.version})

    @app.post("/v1/posts", response_model=S.NewPostResponse, status_code=201, dependencies=write_deps,
              openapi_extra=body_doc(S.NewPost),
              responses={200: {"model": S.NewPostResponse, "description": "the post id exists already (idempotent)"},
                         **_errors_doc(401, 403, 409, 422, 503)})
    async def add_post(request: Request):
        post = await json_body(request, S.NewPost)
        return await run_in_threadpool(_add_post, post, request)

    def _add_post(post: S.NewPost, request: Request):
        holder: Holder = request.app.state.holder
        st = _state(request)
        caller_id, post = post.post_id, internal_post(st.ids, post)
        # the whole body is validated (and media encoded) even when the id exists: a re-post with
        # a bad body is a 422, not a silent 200
        feats, present = st.ingest.features(post)  # outside the lock
        created = False
        if not st.exists(post.post_id):
            check_room_for_post(st, request.app.state.settings)
            latent, vector = st.ingest.embed(post.post_id, post.author_id, feats, present)
            created = holder.journal.add_post(post, feats, present, latent, vector, getattr(st.model, "fingerprint", None),
                                              key=caller_id)
        mods = sorted(m for m, v in present.items() if v.any()) if created else []
        body = {"post_id": caller_id, "created": created, "modalities": mods, "bundle_version": _state(request).version}
        return JSONResponse(body, status_code=201 if created else 200)

    @app.delete("/v1/posts/{post_id}", response_model=S.DeleteResponse, dependencies=write_deps,
                responses=_errors_doc(401, 403, 404, 422, 503))
    def delete_post(post_id: str, request: Request):
        st = _state(request)
        post_id, internal = st.ids.inward_path("post", post_id, "post_id")
        request.app.state.holder.journal.delete_post(internal)
        return {"post_id": post_id, "deleted": True}

    @app.post("/v1/events", response_model=S.EventsResponse, dependencies=write_deps, openapi_extra=body_doc(S.EventsRequest),
              responses=_errors_doc(401, 403, 409, 422, 503))
    async def events(request: Request):
        req = await json_body(request, S.EventsRequest)
        return await run_in_threadpool(_events, req, request)

    def _events(req: S.EventsRequest, request: Request):
        holder: Holder = request.app.state.holder
        settings: Settings = request.app.state.settings
        cap = settings.events_max
        if not 1 <= len(req.events) <= cap:
            raise unprocessable(f"`events` must hold 1 to {cap} entries, got {len(req.events)}", ("body", "events"))
        st = _state(request)
        events = internal_events(st.ids, req.events)
        check_room_for_events(st, events, settings)
        users = holder.journal.add_events(events)
        analysis_routes.observe_events(request.app, events)  # trends count online events
        return {"accepted": len(req.events), "users": users}

    @app.post("/v1/admin/reload", response_model=S.ReloadResponse, dependencies=write_deps,
              responses=_errors_doc(401, 403, 422, 503))
    def reload(request: Request, force: bool = False):
        """Load CURRENT fully, carry the online state over, then swap one reference."""
        holder: Holder = request.app.state.holder
        settings: Settings = request.app.state.settings
        t0 = time.perf_counter()
        with holder.reload_lock:
            old = holder.state
            from index.bundle import current_version

            target = current_version(settings.index_root)
            if old is not None and target == old.version and not force:
                return {"previous_version": old.version, "bundle_version": old.version, "reloaded": False,
                        "seconds": round(time.perf_counter() - t0, 4)}
            try:
                new = ServingState.load(settings, target)  # slow part, requests keep using `old`
            except RecsysError as e:
                logger.error("reload to %s failed: %s", target, e)  # paths stay in the server log
                raise HTTPException(503, f"reload failed: bundle {target!r} could not be loaded (details in the server "
                                         f"log); still serving {old.version if old else None!r}") from None
            warmed = 0
            if settings.reload_warmup_users:  # serve the recent users once before the new state takes traffic
                warmed = warm(new, list(holder.recent_users), settings.reload_warmup_users, settings.k_default)["users"]
            _wire(new, request.app.state.metrics)
            journal = holder.journal
            if journal.log is not None:
                journal.replay(new)  # only the entries after the new bundle's watermark
            with holder.write_lock:
                if journal.log is not None:
                    journal.replay(new, timed=False)  # what came in meanwhile
                elif old is not None:
                    new.absorb(holder.state)  # no log: carry the memory-only state over
                if journal.log is not None and old is not None:
                    new.ids.carry_over(holder.state.ids)  # string keys of live posts the new bundle folded in
                holder.state = new
            request.app.state.metrics.reloads.inc()
            prev = old.version if old is not None else None
            del old  # in-flight requests still hold it; collected here or by a later (cheap) collection
            _collect_previous(settings)
            logger.info("reloaded bundle %s -> %s", prev, new.version)
            return {"previous_version": prev, "bundle_version": new.version, "reloaded": True,
                    "seconds": round(time.perf_counter() - t0, 4), "warmed_users": warmed}
