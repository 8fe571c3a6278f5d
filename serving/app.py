"""The feed API: `create_app(settings)`; lifespan loads the CURRENT bundle into app.state.

Routes stay thin (the logic is in serving.state and its rooms); routes that call torch / faiss are plain `def`
(run in the threadpool), with one measured exception: `POST /v1/recommendations` is `async def`
because the threadpool hop alone cost ~0.1 ms a request (about a sixth of the bare search
endpoint's CPU). It parses and prepares the request on the event loop, awaits the shared FAISS
search, whose executor job also filters, explains and renders the reply for the whole batch
(serving.batcher.AsyncCombiner), and sends every torch or slow-path request to a worker thread.
Each request reads `app.state.holder.state` once, so a reload that swaps the reference never
changes the state under a running request.
"""

from __future__ import annotations

import logging
import secrets
import threading
import time
from contextlib import asynccontextmanager

from fastapi import Depends, FastAPI, Header, HTTPException, Query, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse
from pydantic import BaseModel, ValidationError
from pydantic_core import to_json

from recsys.errors import ArtifactError, ConfigError, RecsysError, SchemaError, UnknownIdError
from serving import analysis_routes
from serving import schemas as S
from serving.ids import internal_events, internal_post, internal_request
from serving.metrics import Metrics
from serving.settings import Settings, get_settings
from serving.state import ServingState

logger = logging.getLogger(__name__)


class FastJSON(Response):
    """JSON bytes serialised by pydantic-core (Rust) from plain dicts the state built itself;
    the route's `response_model` still documents the shape (and the tests check it)."""

    media_type = "application/json"

    def render(self, content) -> bytes:
        return to_json(content)


async def json_body(request: Request, model: type[BaseModel]) -> BaseModel:
    """The request body parsed and validated in one pydantic-core call (`model_validate_json`),
    for the hot route, which declares no body parameter: FastAPI's own body handling (a MIME
    parse of the content type, json.loads, then validation of the dict) costs ~8 us more per
    request. Errors come back as FastAPI's 422 with the same `detail` list."""
    ctype = next((v.decode("latin-1") for k, v in request.scope["headers"] if k == b"content-type"), "")
    if ctype and not ctype.startswith("application/json") and "+json" not in ctype:  # none = JSON, as FastAPI
        raise RequestValidationError([{"type": "content_type", "loc": ("body",), "input": ctype,
                                       "msg": f"the body must be JSON (Content-Type: application/json), got {ctype!r}"}])
    try:
        return model.model_validate_json(await request.body())
    except ValidationError as e:
        raise RequestValidationError([{**err, "loc": ("body", *err["loc"])} for err in e.errors(include_url=False)]) from None


def body_doc(model: type[BaseModel]) -> dict:
    """OpenAPI `requestBody` for a route that parses its body with `json_body` (the model's
    schema is a component already: the batch route's body refers to it)."""
    ref = {"$ref": f"#/components/schemas/{model.__name__}"}
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": ref}}}}


class Holder:
    """The live ServingState plus the locks around writes and reloads."""

    def __init__(self) -> None:
        self.state: ServingState | None = None
        self.write_lock = threading.RLock()  # online writes vs the swap
        self.reload_lock = threading.Lock()  # one reload at a time


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    holder = Holder()

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        _threads(settings)
        if settings.threadpool:
            import anyio.to_thread

            anyio.to_thread.current_default_thread_limiter().total_tokens = settings.threadpool
        holder.state = ServingState.load(settings)  # a broken bundle stops start-up loudly
        _wire(holder.state, metrics)
        _freeze(settings)
        logger.info("serving bundle %s (%d posts) from %s", holder.state.version, holder.state.n, settings.index_root)
        yield
        holder.state = None

    app = FastAPI(title="recsys feed API", version="1", lifespan=lifespan)
    app.state.settings, app.state.holder = settings, holder
    metrics = app.state.metrics = Metrics(holder)
    app.add_middleware(_LatencyMiddleware, metrics=metrics)
    _errors(app)
    _routes(app)
    app.include_router(analysis_routes.router, dependencies=[Depends(read_key)] if settings.read_requires_key else [])
    return app


def _threads(settings: Settings) -> None:
    import torch

    if settings.torch_threads:
        torch.set_num_threads(settings.torch_threads)
    if settings.faiss_threads:
        import faiss

        faiss.omp_set_num_threads(settings.faiss_threads)


def _freeze(settings: Settings) -> None:
    """Move everything alive now out of the collector's reach (a full collection over the loaded
    stack takes ~0.2 s; under load it would land on some request's latency)."""
    if settings.gc_freeze:
        import gc

        gc.unfreeze()  # after a reload: let the previous state's cycles be collected once
        gc.collect()
        gc.freeze()


def _wire(state: ServingState, metrics: Metrics) -> None:
    """Counters live as long as the app (they survive reloads)."""
    state.stats = metrics.stats
    state.stats.on_batch = metrics.batch.observe
    state.async_combiner.alone = lambda: metrics.in_flight <= 1


# --- auth --------------------------------------------------------------------------------------

def _check_key(request: Request, key: str | None) -> None:
    want = request.app.state.settings.api_key
    if want is None:
        raise HTTPException(403, "this endpoint needs an API key but the server has none configured (set RECSYS_API_KEY)")
    if key is None or not secrets.compare_digest(key.encode(), want.encode()):
        raise HTTPException(401, "missing or wrong X-API-Key header")


async def write_key(request: Request, x_api_key: str | None = Header(None)) -> None:
    _check_key(request, x_api_key)  # async: no threadpool hop for a string compare


async def read_key(request: Request, x_api_key: str | None = Header(None)) -> None:
    if request.app.state.settings.read_requires_key:
        _check_key(request, x_api_key)


def _state(request: Request) -> ServingState:
    st = request.app.state.holder.state
    if st is None:
        raise HTTPException(503, "no bundle loaded yet")
    return st


# --- errors / metrics middleware ------------------------------------------------------------------

def _errors(app: FastAPI) -> None:
    def handler(status: int):
        async def h(request: Request, exc: Exception) -> JSONResponse:
            return JSONResponse({"detail": str(exc)}, status_code=status)

        return h

    app.add_exception_handler(UnknownIdError, handler(404))
    app.add_exception_handler(SchemaError, handler(422))
    app.add_exception_handler(ConfigError, handler(422))
    app.add_exception_handler(ArtifactError, handler(503))
    app.add_exception_handler(RecsysError, handler(400))


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
            self._observe(route, scope["method"], status[0], time.perf_counter() - t0)


# --- routes -------------------------------------------------------------------------------------

def _routes(app: FastAPI) -> None:
    # read endpoints carry the key check only when the settings ask for it (one dependency less
    # to solve per request otherwise)
    read_deps = [Depends(read_key)] if app.state.settings.read_requires_key else []

    @app.get("/healthz", response_model=S.Health)
    async def healthz():
        return {"status": "ok"}

    @app.get("/readyz", response_model=S.Ready)
    async def readyz(request: Request, response: Response):
        st = request.app.state.holder.state
        if st is None:
            response.status_code = 503
            return {"status": "loading"}
        return {"status": "ready", "bundle_version": st.version, "n_posts": st.n, "delta_posts": st.delta.n,
                "deleted_posts": len(st.tomb_rows)}

    @app.get("/metrics", response_class=PlainTextResponse)
    def metrics_(request: Request):
        from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

        m: Metrics = request.app.state.metrics
        m.collect_state()
        return Response(generate_latest(m.registry), media_type=CONTENT_TYPE_LATEST)

    @app.post("/v1/recommendations", response_model=S.RecommendResponse, dependencies=read_deps,
              openapi_extra=body_doc(S.RecommendRequest))
    async def recommend(request: Request):
        # async: the common case awaits only the shared FAISS call (no request thread, see
        # ServingState.recommend_async); torch and the slow paths go to a worker thread there
        req = await json_body(request, S.RecommendRequest)
        st = _state(request)
        reply = await st.recommend_async(internal_request(st.ids, req))
        return Response(reply.to_json(st.version), media_type="application/json")

    @app.post("/v1/recommendations:batch", response_model=S.BatchResponse, dependencies=read_deps)
    def recommend_batch(req: S.BatchRequest, request: Request):
        st = _state(request)
        n, cap = len(req.requests), st.settings.batch_max
        if not 1 <= n <= cap:
            raise HTTPException(422, f"`requests` must hold 1 to {cap} entries, got {n}")
        results = st.recommend([internal_request(st.ids, r) for r in req.requests], batched_call=True)
        return FastJSON({"results": [{**r, "bundle_version": st.version} for r in results], "bundle_version": st.version})

    @app.get("/v1/posts/{post_id}/similar", response_model=S.SimilarResponse, dependencies=read_deps)
    def similar(post_id: str, request: Request, k: int = Query(20)):
        st = _state(request)
        post_id, internal = st.ids.inward_path("post", post_id, "post_id")
        items = st.similar(internal, k)
        return FastJSON({"post_id": post_id, "items": items, "bundle_version": st.version})

    @app.post("/v1/posts", response_model=S.NewPostResponse, status_code=201, dependencies=[Depends(write_key)])
    def add_post(post: S.NewPost, request: Request, response: Response):
        holder: Holder = request.app.state.holder
        st = _state(request)
        caller_id, post = post.post_id, internal_post(st.ids, post)
        if st.exists(post.post_id):
            response.status_code = 200
            return {"post_id": caller_id, "created": False, "modalities": [], "bundle_version": st.version}
        feats, present = st.ingest.features(post)  # validation + media encoding, outside the lock
        with holder.write_lock:
            st = _state(request)  # a reload may have swapped it meanwhile
            created = not st.exists(post.post_id)
            if created:
                st.add_encoded(post, feats, present)
                st.ids.remember_post(post.post_id, caller_id)
        response.status_code = 201 if created else 200
        mods = sorted(m for m, v in present.items() if v.any())
        return {"post_id": caller_id, "created": created, "modalities": mods, "bundle_version": st.version}

    @app.delete("/v1/posts/{post_id}", response_model=S.DeleteResponse, dependencies=[Depends(write_key)])
    def delete_post(post_id: str, request: Request):
        holder: Holder = request.app.state.holder
        with holder.write_lock:
            st = _state(request)
            post_id, internal = st.ids.inward_path("post", post_id, "post_id")
            st.delete_post(internal)
        return {"post_id": post_id, "deleted": True}

    @app.post("/v1/events", response_model=S.EventsResponse, dependencies=[Depends(write_key)])
    def events(req: S.EventsRequest, request: Request):
        holder: Holder = request.app.state.holder
        cap = request.app.state.settings.events_max
        if not 1 <= len(req.events) <= cap:
            raise HTTPException(422, f"`events` must hold 1 to {cap} entries, got {len(req.events)}")
        with holder.write_lock:
            st = _state(request)
            events = internal_events(st.ids, req.events)
            users = st.add_events(events)
        analysis_routes.observe_events(request.app, events)  # trends count online events
        return {"accepted": len(req.events), "users": users}

    @app.post("/v1/admin/reload", response_model=S.ReloadResponse, dependencies=[Depends(write_key)])
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
            new = ServingState.load(settings, target)  # slow part, requests keep using `old`
            _wire(new, request.app.state.metrics)
            with holder.write_lock:
                if old is not None:
                    new.absorb(holder.state)
                holder.state = new
            request.app.state.metrics.reloads.inc()
            prev = old.version if old is not None else None
            del old  # in-flight requests still hold it; the freeze below lets it be collected after
            _freeze(settings)
            logger.info("reloaded bundle %s -> %s", prev, new.version)
            return {"previous_version": prev, "bundle_version": new.version,
                    "reloaded": True, "seconds": round(time.perf_counter() - t0, 4)}
