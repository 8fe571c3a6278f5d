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
    api_key: str | None = Field(None, description="X-API-Key for write/admin endpoints (it also opens reads); unset = "
                                "writes refused")
    read_api_key: str | None = Field(None, description="X-API-Key for the read endpoints (recommendations, similar): "
                                     "answers reveal a user's seen set and history (`why`), so they are not open by default")
    open_reads: bool = Field(False, description="serve the read endpoints without a key (only where every caller may "
                             "see every user's recommendations)")
    body_max_bytes: int = Field(2 * 1024 * 1024, ge=1, description="largest request body; larger ones are refused with "
                                "413 while streaming, before they are read whole")
    delta_max: int = Field(100_000, ge=0, description="most posts added online (POST /v1/posts) until the next bundle; "
                           "past it a new post is a 409")
    online_users_max: int = Field(1_000_000, ge=0, description="most users with online events; past it a new user's "
                                  "event is a 409")
    user_seen_max: int = Field(10_000, ge=0, description="most distinct posts one user's online events may add to their "
                               "seen set; past it a 409")
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
    reload_warmup_users: int = Field(256, ge=0, description="users whose recommendations a reload computes on the new "
                                     "bundle before swapping to it (most recently served first; 0 = no warm-up)")
    profile_cache: int = Field(100_000, description="cached user vectors (0 = off); invalidated by events")
    threadpool: int = Field(0, description="threads running the plain-def routes (0 = anyio default, 40)")
    gc_freeze: bool = Field(True, description="gc.freeze() the libraries (torch, polars, faiss: ~0.4M long-lived "
                            "objects) before loading a bundle, so no collection, automatic or after a reload, rescans "
                            "them and pauses requests; bundles stay collectable")
    faiss_threads: int = Field(0, description="OpenMP threads for FAISS (0 = leave faiss default)")
    torch_threads: int = Field(1, description="torch intra-op threads (user profile model)")
    allow_media_paths: bool = Field(True, description="accept server-side media paths in POST /v1/posts")
    media_root: Path | None = Field(None, description="media paths must lie under it (relative ones are read from it); "
                                    "default: the bundle's dataset media/ directory, else every path is refused")
    online_log: str = Field("", description="where acknowledged writes are logged before the 2xx: empty = the SQLite file "
                            "INDEX_ROOT/online_log.sqlite3 (shared by every worker on the machine), a path = that SQLite file, "
                            "postgresql://... = PostgreSQL (replicas on several machines), off = memory only (lost on restart)")
    log_poll_ms: int = Field(10, description="how often each worker looks for entries other workers appended (PostgreSQL "
                             "also wakes on NOTIFY); bounds the time until a write is visible on every worker")


@lru_cache
def get_settings() -> Settings:
    return Settings()
