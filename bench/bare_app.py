"""The baseline: a bare FastAPI endpoint that does only the same FAISS search as the feed API.

    BENCH_INDEX_ROOT=... .venv/bin/python -m uvicorn bench.bare_app:app --port 8101

Loads the CURRENT bundle's index.faiss with its tuned nprobe / efSearch and the bench users'
precomputed query vectors (`bench_users.npy`, written by bench/http_1m.py with the real user
tower), then `POST /search {"user_id", "k"}` = one `index.search` of one vector, ids + scores back.
"""

from __future__ import annotations

import os
from contextlib import asynccontextmanager
from pathlib import Path

import numpy as np
from fastapi import FastAPI
from pydantic import BaseModel


class SearchRequest(BaseModel):
    user_id: int
    k: int = 100


class SearchResponse(BaseModel):
    ids: list[int]
    scores: list[float]


def create_bare_app(root: Path) -> FastAPI:
    from index import bundle as B
    from index import faiss_index as fi

    st: dict = {}

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        d = B.resolve(root)
        m = B.read_json(d / B.MANIFEST)
        st["index"] = fi.read_index(d / B.INDEX_FILE)
        st["value"] = m["search"]["value"]
        fi.set_default_param(st["index"], st["value"])
        st["ids"] = np.load(d / B.IDS_FILE)
        st["users"] = np.load(Path(root) / "bench_users.npy")
        fi.set_threads(int(os.environ.get("BENCH_FAISS_THREADS", "0")))  # every searching thread, as the feed API
        yield

    app = FastAPI(lifespan=lifespan)

    @app.post("/search", response_model=SearchResponse)
    def search(req: SearchRequest):
        q = st["users"][req.user_id % len(st["users"])][None]
        scores, rows = fi.search(st["index"], q, req.k, st["value"])
        keep = rows[0] >= 0
        return {"ids": st["ids"][rows[0][keep]].tolist(), "scores": scores[0][keep].tolist()}

    @app.post("/noop")
    def noop(req: SearchRequest):
        """The framework floor: same request model and threadpool hop, no search."""
        return {"user_id": req.user_id}

    return app


app = create_bare_app(Path(os.environ.get("BENCH_INDEX_ROOT", "/tmp/recsys-bench/index-1m")))
