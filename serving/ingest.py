"""A new post's content -> model features -> (latent, vector): checks the `features` a client
sends, or encodes server-side media with the encoders the run's feature store was built with
(loaded once, lazily), then runs the run's post tower.

Shapes: Z latent dim, d retrieval dim.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from serving.media_paths import resolve_media_path
from serving.requests import BadInput
from serving.schemas import NewPost
from serving.settings import Settings


class Ingest:
    def __init__(self, model: Any, settings: Settings, media_root: Path | None = None) -> None:
        """`media_root`: the directory media paths must lie in (`serving.media.media_root`); None
        refuses every path."""
        self.model, self.settings, self.media_root = model, settings, media_root
        self._encoders: dict | None = None

    def features(self, post: NewPost) -> tuple[dict, dict]:
        """({modality: float32 (1, D)}, {modality: bool (1,)}) of a new post, checked (BadInput)."""
        mods = dict(getattr(self.model, "modalities", {}))
        media = [post.text, post.image_path, post.video_path]
        if post.features is not None and any(v is not None for v in media):
            raise BadInput("give either `features` or media (`text` / `image_path` / `video_path`), not both")
        if post.features is not None:
            if not post.features:
                raise BadInput(f"`features` must map at least one modality of {sorted(mods)} to a vector")
            feats, present = {}, {}
            for m, vec in post.features.items():
                if m not in mods:
                    raise BadInput(f"`features` has unknown modality {m!r}; this model takes {mods}")
                if len(vec) != mods[m]:
                    raise BadInput(f"`features[{m!r}]` must have {mods[m]} values, got {len(vec)}")
                x = np.asarray(vec, np.float32).reshape(1, -1)
                if not np.isfinite(x).all():
                    raise BadInput(f"`features[{m!r}]` must be finite numbers")
                feats[m], present[m] = x, np.ones(1, bool)
            return feats, present
        if all(v is None for v in media):
            raise BadInput("a new post needs `features` ({modality: vector}) or media (`text`, `image_path`, `video_path`)")
        return self.encode_media(post)

    def encode_media(self, post: NewPost) -> tuple[dict, dict]:
        s = self.settings
        paths = {}
        for name in ("image_path", "video_path"):
            v = getattr(post, name)
            if v is None:
                continue
            if not s.allow_media_paths:
                raise BadInput("media paths are disabled on this server (RECSYS_ALLOW_MEDIA_PATHS=false); send `features`")
            paths[name] = resolve_media_path(name, v, self.media_root)  # one refusal message for every path
        from recsys.encode import encode_post_content  # lazy: heavy encoders

        enc = encode_post_content(post.text, paths.get("image_path"), paths.get("video_path"), self.encoders())
        mods = dict(getattr(self.model, "modalities", {}))
        feats, present = {}, {}
        for m, (vec, ok) in enc.items():
            if m in mods:
                feats[m] = np.asarray(vec, np.float32).reshape(1, -1)
                present[m] = np.array([bool(ok)])
        if not any(v.any() for v in present.values()):
            raise BadInput(f"none of the given media could be encoded for the model's modalities {sorted(mods)}")
        return feats, present

    def encoders(self) -> dict:
        """Encoders with the specs the run's feature store was built with (loaded once, lazily)."""
        if self._encoders is None:
            from recsys.encode import MODALITIES, build_encoders

            mods = [m for m in getattr(self.model, "modalities", {}) if m in MODALITIES]
            if not mods:
                raise BadInput(f"this model's modalities {sorted(self.model.modalities)} cannot be encoded from media; send `features`")
            specs = {m: v for m, v in (getattr(self.model, "encoders", {}) or {}).items() if m in mods and v}
            self._encoders = build_encoders(specs, mods)
        return self._encoders

    def embed(self, pid: int, author: int | None, feats: dict, present: dict) -> tuple[np.ndarray, np.ndarray]:
        """(latent float32 (1, Z), vector float32 (1, d)) of one post through the run's post tower."""
        latent = np.asarray(self.model.post_latents(feats, present), np.float32).reshape(1, -1)
        authors = np.array([-1 if author is None else author], np.int64)  # a known author adds its ID row
        vector = np.asarray(self.model.post_vectors(latent, np.array([pid], np.int64), authors), np.float32).reshape(1, -1)
        return latent, vector
