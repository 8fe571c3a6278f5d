"""Serving settings (env prefix RECSYS_), read through the cached `get_settings()`; tests build a
`Settings(...)` and pass it to `create_app(settings)` instead."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="RECSYS_", extra="ignore")

    index_root: Path = Field(Path("index"), description="INDEX_ROOT with CURRENT and bundles/")
    api_key: str | None = Field(None, description="X-API-Key for write/admin endpoints; unset = writes refused")
    read_requires_key: bool = Field(False, description="also require X-API-Key on read endpoints")
    k_default: int = 20
    k_max: int = Field(1000, description="largest k a request may ask for")
    batch_max: int = Field(256, description="most users in one /v1/recommendations:batch call")
    history_max: int = Field(500, description="most post ids in a request's explicit history")
    events_max: int = Field(1000, description="most events in one POST /v1/events")
    exclude_max: int = Field(10_000, description="most ids in exclude_post_ids / exclude_authors")
    user_history_keep: int = Field(200, description="recent posts kept per user online (profile input)")
    exact_max: int = Field(20_000, description="eligible posts at or below which filtered search is exact")
    microbatch: bool = Field(True, description="share one FAISS search among concurrent requests")
    microbatch_max: int = Field(64, description="most queries in one shared FAISS search")
    microbatch_inflight: int = Field(1, description="FAISS searches running at once before requests queue into batches (0 = CPU "
                                     "cores). 1: the single-request route is bound by the GIL, and one thread searching whole "
                                     "batches keeps up with it while costing the fewest thread hand-offs; raise it when FAISS "
                                     "itself is the bottleneck (large k or nprobe)")
    profile_cache: int = Field(100_000, description="cached user vectors (0 = off); invalidated by events")
    threadpool: int = Field(0, description="threads running the plain-def routes (0 = anyio default, 40)")
    gc_freeze: bool = Field(True, description="gc.freeze() after loading a bundle: the ~0.5M long-lived objects "
                            "(torch, polars, bundle) are never rescanned, so full collections stop pausing requests")
    faiss_threads: int = Field(0, description="OpenMP threads for FAISS (0 = leave faiss default)")
    torch_threads: int = Field(1, description="torch intra-op threads (user profile model)")
    allow_media_paths: bool = Field(True, description="accept server-side media paths in POST /v1/posts")
    media_root: Path | None = Field(None, description="if set, media paths must lie under it")
    online_log: str = Field("", description="where acknowledged writes are logged before the 2xx: empty = the SQLite file "
                            "INDEX_ROOT/online_log.sqlite3 (shared by every worker on the machine), a path = that SQLite file, "
                            "postgresql://... = PostgreSQL (replicas on several machines), off = memory only (lost on restart)")
    log_poll_ms: int = Field(10, description="how often each worker looks for entries other workers appended (PostgreSQL "
                             "also wakes on NOTIFY); bounds the time until a write is visible on every worker")


@lru_cache
def get_settings() -> Settings:
    return Settings()
