"""Post metadata and media for people looking at the feed (the web page, `GET /v1/posts/{id}`).

The bundle holds post ids, authors and creation times; text and media paths live in the dataset the
bundle was built from (`manifest["dataset"]["path"]`, its posts.parquet: paths relative to that
root). A `PostMedia` reads them once per bundle; media are served from that root only:

    media_file(rel)   the file under the root for a relative path, or None: absolute paths,
                      `..` that leaves the root, symlinks out of it, hidden names and non-media
                      extensions are all refused the same way (the route answers one 404 for all)
    poster(rel)       a JPEG frame of a video (recsys.thumbnails), memoised

Shapes: N bundle posts, n looked-up ids.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from pathlib import Path

import numpy as np
import polars as pl

from recsys.thumbnails import thumbnail

logger = logging.getLogger(__name__)

MEDIA_EXT = {".jpg", ".jpeg", ".png", ".gif", ".webp", ".mp4", ".webm", ".mov", ".m4v"}
POSTERS_KEEP = 1024  # video posters kept in memory (~20 KB each)
POSTER_PX = 360  # longest side of a poster


class PostMedia:
    def __init__(self, bundle) -> None:
        self.version = bundle.version
        ds = (bundle.manifest.get("dataset") or {}).get("path")
        self.root: Path | None = Path(ds).resolve() if ds and Path(ds, "posts.parquet").is_file() else None
        self._ids = bundle.post_ids  # row -> id (bundle order)
        self._order = np.argsort(self._ids, kind="stable")
        self._sorted = self._ids[self._order]
        self._authors, self._created = bundle.author_ids, bundle.created_at_us
        self._meta: pl.DataFrame | None = None  # dataset posts, rows aligned with the bundle's
        if self.root is not None:
            cols = ["post_id", "text", "image_path", "video_path"]
            posts = pl.read_parquet(self.root / "posts.parquet", columns=cols)
            aligned = pl.DataFrame({"post_id": pl.Series(self._ids, dtype=pl.Int64)}).join(posts, on="post_id", how="left")
            self._meta = aligned  # join(how="left") keeps the left order: row r = bundle row r
        self._posters: OrderedDict[str, bytes] = OrderedDict()
        self._lock = threading.Lock()

    def lookup(self, post_ids: list[int], delta=None, now_us: int | None = None) -> tuple[list[dict], list[int]]:
        """(posts in the order asked, ids not found). Each post: post_id, author_id, created_at
        (ISO, UTC), age_seconds, text, image_url, video_url, poster_url (None when absent).
        `delta` (serving.state.Delta) supplies authors / times of posts added online."""
        now_us = now_us if now_us is not None else time.time_ns() // 1000
        ids = np.asarray(post_ids, np.int64)
        pos = np.minimum(np.searchsorted(self._sorted, ids), max(len(self._sorted) - 1, 0))
        found = (self._sorted[pos] == ids) if len(self._sorted) else np.zeros(len(ids), bool)
        rows = np.where(found, self._order[pos] if len(self._sorted) else -1, -1)
        meta = self._meta[rows[rows >= 0]].to_dicts() if self._meta is not None else []
        out, missing, m = [], [], iter(meta)
        for pid, row in zip(ids.tolist(), rows.tolist()):
            if row >= 0:
                rec = next(m) if self._meta is not None else {}
                out.append(self._record(pid, int(self._authors[row]), int(self._created[row]), rec, now_us))
                continue
            j = delta.find(pid) if delta is not None and delta.n else -1
            if j >= 0:
                out.append(self._record(pid, int(delta.authors[j]), int(delta.created[j]), {}, now_us))
            else:
                missing.append(pid)
        return out, missing

    def _record(self, pid: int, author: int, created_us: int, rec: dict, now_us: int) -> dict:
        known_t = created_us != np.iinfo(np.int64).min
        image, video = self._url(rec.get("image_path")), self._url(rec.get("video_path"))
        return {
            "post_id": pid,
            "author_id": author if author >= 0 else None,
            "created_at": iso_time(created_us) if known_t else None,
            "age_seconds": round((now_us - created_us) / 1e6, 3) if known_t else None,
            "text": rec.get("text"),
            "image_url": image,
            "video_url": video,
            "poster_url": ("/posters/" + rec["video_path"]) if video else None,
        }

    def _url(self, rel: str | None) -> str | None:
        return "/media/" + rel if rel and self.media_file(rel) is not None else None

    def media_file(self, rel: str) -> Path | None:
        """The media file at `rel` under the dataset root, or None (module docstring)."""
        if self.root is None or not rel or rel.startswith(("/", "\\")) or "\x00" in rel:
            return None
        parts = Path(rel).parts
        if any(p.startswith(".") for p in parts) or Path(rel).suffix.lower() not in MEDIA_EXT:
            return None
        try:
            path = (self.root / rel).resolve()
        except (OSError, RuntimeError):
            return None
        if not path.is_relative_to(self.root) or not path.is_file():
            return None
        return path

    def poster(self, rel: str) -> bytes | None:
        """JPEG bytes of a frame of the video at `rel` (None when refused or undecodable)."""
        with self._lock:
            hit = self._posters.get(rel)
            if hit is not None:
                self._posters.move_to_end(rel)
                return hit
        path = self.media_file(rel)
        data = thumbnail(path, POSTER_PX) if path is not None else None
        if data is None:
            return None
        with self._lock:
            self._posters[rel] = data
            while len(self._posters) > POSTERS_KEEP:
                self._posters.popitem(last=False)
        return data


def iso_time(us: int) -> str:
    import datetime as dt

    return dt.datetime.fromtimestamp(us / 1e6, dt.UTC).isoformat().replace("+00:00", "Z")
