"""From hits to the answer: post ids and scores, each with its "why" (the history post whose
latent is closest), as a `Reply` that renders its own JSON body.

Hits: (scores float32 (K,), src int64 (K,)); src >= 0 is a bundle row, src < 0 is delta index
-(src + 1) in the request's delta snapshot. Shapes: K top-k, L history, Z latent dim.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from pydantic_core import to_json

from serving.catalogue import Catalogue
from serving.online import Online
from serving.requests import Prepared
from serving.why import WhyModality

_ITEM_PARTS = [b'{"post_id":', b"", b',"score":', b"", b',"why":', b"", b',"why_similarity":', b"",
               b',"why_modality":', b"", b"},"]


@dataclass
class Reply:
    """One recommendation response, its K items as columns (best first).

    `to_dict()` is the RecommendResponse shape less `bundle_version`; `to_json(version)` is the
    whole body as JSON bytes, equal to `to_json({**to_dict(), "bundle_version": version})` but
    serialised column by column (pydantic-core) and spliced, without K item dicts (memoised: a
    shared search's worker renders it, the route sends it)."""

    post_ids: list[int | str]  # the caller's ids
    scores: list[float]
    why: list[int | str | None]
    why_similarity: list[float | None]
    fallback_reason: str | None
    user_known: bool
    why_modality: list[str | None] | None = None  # None: no "why" (serving.why)
    _json: tuple[str, bytes] | None = field(default=None, repr=False, compare=False)  # (version, body)

    def items(self) -> list[dict]:
        mod = self.why_modality or [None] * len(self.post_ids)
        return [{"post_id": a, "score": b, "why": c, "why_similarity": d, "why_modality": e}
                for a, b, c, d, e in zip(self.post_ids, self.scores, self.why, self.why_similarity, mod)]

    def _meta(self) -> dict:
        return {"fallback": self.fallback_reason is not None, "fallback_reason": self.fallback_reason,
                "user_known": self.user_known}

    def to_dict(self) -> dict:
        return {"items": self.items(), **self._meta()}

    def to_json(self, bundle_version: str) -> bytes:
        if self._json is None or self._json[0] != bundle_version:
            self._json = (bundle_version, self._render(bundle_version))
        return self._json[1]

    def _render(self, bundle_version: str) -> bytes:
        tail = to_json({**self._meta(), "bundle_version": bundle_version})  # b'{"fallback":...}'
        if not self.post_ids:
            return b'{"items":[],' + tail[1:]
        parts = _ITEM_PARTS * len(self.post_ids)  # 11 pieces per item, values at 1, 3, 5, 7, 9
        mod = self.why_modality or [None] * len(self.post_ids)  # modality names: no comma inside
        for j, col in enumerate((self.post_ids, self.scores, self.why, self.why_similarity, mod)):
            js = to_json(col)[1:-1]
            if j in (0, 2) and b'"' in js:  # string ids (JSON strings, the only values with a quote) may hold commas
                parts[2 * j + 1 :: 11] = [to_json(v) for v in col]
                continue
            parts[2 * j + 1 :: 11] = js.split(b",")  # numbers / null: no comma inside
        parts[-1] = b"}"
        return b'{"items":[' + b"".join(parts) + b"]," + tail[1:]


class Replies:
    """Renders hits of one catalogue (+ its online overlay) as Replies."""

    def __init__(self, cat: Catalogue, online: Online, ids=None, why_modality: WhyModality | None = None) -> None:
        self.cat, self.why_modality = cat, why_modality  # serving.why: what weighed most in each score
        self.bundle, self.online = cat.bundle, online
        self.ids = ids  # serving.ids.IdCodec: answers in the caller's ids (None: internal ids)

    def respond(self, p: Prepared, hits: tuple[np.ndarray, np.ndarray]) -> Reply:
        """The reply: hits as post ids and scores, each with its "why" (`why`)."""
        scores, src = hits
        mod = None
        if len(src) and len(p.hist):
            lat = self.latents(p, src)  # (K, Z)
            why, sim = self.why(p, src, lat)
            wm = self.why_modality
            if wm is not None:
                why_rows = self.cat.rows_of(np.asarray(why, np.int64)) if wm.needs_why_rows else None
                mod = wm.modalities(p.query, self.vectors(p, src), lat, src, why_rows)
        else:
            why = sim = [None] * len(src)
        posts = self.post_ids(p, src).tolist()
        if self.ids is not None and self.ids.strings("post"):
            posts, why = self.ids.posts_out(posts), self.ids.posts_out(why)
        return Reply(posts, np.asarray(scores, np.float64).tolist(), why, sim, p.fallback_reason, p.user_known, mod)

    def why(self, p: Prepared, src: np.ndarray, lat: np.ndarray | None = None) -> tuple[list[int], list[float]]:
        """Per hit (src (K,), non-empty; p.hist non-empty): the history post with the highest latent
        cosine, and that cosine. `lat`: the hits' latents float32 (K, Z) when the caller has them."""
        Ht = p.profile.hist_unit_t if p.profile is not None else None
        if Ht is None:
            H = self.online.latents_of(p.hist, p.delta)  # (L, Z)
            Ht = np.ascontiguousarray((H / (np.linalg.norm(H, axis=1, keepdims=True) + 1e-12)).T)
            if p.profile is not None:
                p.profile.hist_unit_t = Ht
        if lat is None:
            lat = self.latents(p, src)  # (K, Z)
        dots = lat @ Ht  # (K, L); the row norm of `lat` does not change the argmax
        best = dots.argmax(1)
        norm = np.sqrt(np.einsum("kz,kz->k", lat, lat)) + 1e-12  # (K,)
        sim = dots.ravel()[best + np.arange(0, dots.size, dots.shape[1])] / norm  # dots[k, best[k]]: one gather
        return p.hist[best].tolist(), sim.astype(np.float64).tolist()

    def post_ids(self, p: Prepared, src: np.ndarray) -> np.ndarray:
        if not p.delta.n:  # no online posts: every hit is a bundle row
            return self.bundle.post_ids[src]
        out = self.bundle.post_ids[np.maximum(src, 0)]
        if (src < 0).any():
            out = np.where(src >= 0, out, p.delta.ids[np.clip(-src - 1, 0, None)])
        return out

    def vectors(self, p: Prepared, src: np.ndarray) -> np.ndarray:
        """float32 (K, d) retrieval vectors of hits."""
        out = np.asarray(self.bundle.vectors[np.maximum(src, 0)], np.float32)
        neg = src < 0
        if neg.any():
            out[neg] = p.delta.vectors[-src[neg] - 1]
        return out

    def latents(self, p: Prepared, src: np.ndarray) -> np.ndarray:
        """float32 (K, Z) latents of hits."""
        if not p.delta.n:
            return np.asarray(self.bundle.latents[src], np.float32)
        out = np.asarray(self.bundle.latents[np.maximum(src, 0)], np.float32)
        neg = src < 0
        if neg.any():
            out[neg] = p.delta.latents[-src[neg] - 1]
        return out
