"""Payloads of the online log's entries (JSON objects), written by serving and read back by
serving (replay), `recsys build-index` (fold) and `recsys export-events`.

    post    {"post_id", "key", "author_id", "created_us", "model", "features": {m: f32}, "present": {m: bool},
             "latent": f32 (Z,), "vector": f32 (d,)}      f32: little-endian float32 bytes, base64
    delete  {"post_id"}
    events  {"events": [[user_id, post_id, event, ts_us or null], ...]}   one request's batch

A post keeps its input features (so a bundle built with another model can re-encode it), and the
latent and vector of the model that served it (so a bundle with that model keeps them as they are).
"""

from __future__ import annotations

import base64
from dataclasses import dataclass

import numpy as np


def _f32(x: np.ndarray) -> str:
    return base64.b64encode(np.ascontiguousarray(x, dtype="<f4").tobytes()).decode("ascii")


def _unf32(s: str) -> np.ndarray:
    return np.frombuffer(base64.b64decode(s), dtype="<f4").astype(np.float32)


@dataclass(frozen=True)
class PostRecord:
    post_id: int  # internal int64 id
    key: str | None  # the caller's id when posts are named by strings (recsys.ids), else None
    author_id: int | None
    created_us: int
    model: str | None  # fingerprint of the model that made latent / vector
    features: dict  # {modality: float32 (1, D)}
    present: dict  # {modality: bool (1,)}
    latent: np.ndarray  # float32 (1, Z)
    vector: np.ndarray  # float32 (1, d)


def post_payload(post_id: int, author_id: int | None, created_us: int, model: str | None, features: dict,
                 present: dict, latent: np.ndarray, vector: np.ndarray, key: str | None = None) -> dict:
    return {"post_id": int(post_id), "key": key, "author_id": None if author_id is None else int(author_id),
            "created_us": int(created_us), "model": model,
            "features": {m: _f32(v) for m, v in features.items()},
            "present": {m: bool(np.asarray(v).reshape(-1)[0]) for m, v in present.items()},
            "latent": _f32(latent), "vector": _f32(vector)}


def read_post(p: dict) -> PostRecord:
    return PostRecord(
        post_id=int(p["post_id"]), key=p.get("key"), author_id=p["author_id"], created_us=int(p["created_us"]), model=p.get("model"),
        features={m: _unf32(v).reshape(1, -1) for m, v in p["features"].items()},
        present={m: np.array([bool(v)]) for m, v in p["present"].items()},
        latent=_unf32(p["latent"]).reshape(1, -1), vector=_unf32(p["vector"]).reshape(1, -1),
    )


def delete_payload(post_id: int) -> dict:
    return {"post_id": int(post_id)}


def events_payload(events: list[tuple[int, int, str, int | None]]) -> dict:
    """events: (user_id, post_id, event, ts_us or None) per event, in request order."""
    return {"events": [[int(u), int(p), str(e), None if t is None else int(t)] for u, p, e, t in events]}


def read_events(p: dict) -> list[tuple[int, int, str, int | None]]:
    return [(int(u), int(pid), e, None if t is None else int(t)) for u, pid, e, t in p["events"]]
