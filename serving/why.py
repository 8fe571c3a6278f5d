"""The "why" modality of a reply's items: gathers the arrays recsys.explain needs from a loaded
bundle and model (one `WhyModality` per serving state) and calls its pure functions.

Shapes: K items, d retrieval dim, Z latent dim, M modalities with stored codes.
"""

from __future__ import annotations

from functools import cached_property

import numpy as np
import torch
from scipy.special import erf

from recsys import explain
from recsys.cold_channel import model_part


class WhyModality:
    def __init__(self, bundle, model) -> None:
        # An ensemble run (recsys.ensemble) is explained by its first member: the first Z latent
        # and d vector coordinates are that member's, scaled by 1/sqrt(K) in the vectors.
        self.part_scale = 1.0 / float(getattr(model, "member_scale", 1.0))
        model = getattr(model, "primary", model)
        self.z = int(getattr(model, "latent_dim", 0) or 0) or None
        cfg = dict(getattr(model, "config", {}) or {})
        self.bundle, self.model = bundle, model
        self.content_scale = float(cfg.get("content_scale", 0.5))
        self.cold_channel = float(cfg.get("cold_scale", 0.0) or 0.0) > 0  # recsys.cold_channel
        self.key_block = self.cold_channel and float(cfg.get("cold_key_weight", 0.0) or 0.0) > 0  # its content-key match
        # the exact content / ID split holds for part-normalised, unit post vectors (recsys.explain)
        self.has_id = getattr(model, "post_table", None) is not None
        self.decomposable = bool(cfg.get("part_norm", True)) and cfg.get("normalize", "both") == "both"
        self.names = bundle.codes_names
        mods = list(getattr(model, "modalities", {}))
        self.single = mods[0] if len(mods) == 1 else None

    @cached_property
    def _head(self) -> tuple[np.ndarray, ...]:
        """The post head (Linear -> GELU -> Linear) as numpy arrays: on K rows, numpy costs a
        fraction of torch's per-call overhead."""
        lin1, act, lin2 = self.model.model.post_head
        assert isinstance(act, torch.nn.GELU) and act.approximate == "none", "post head changed: update serving.why"
        return tuple(t.detach().numpy().astype(np.float32) for t in (lin1.weight.T, lin1.bias, lin2.weight.T, lin2.bias))

    def _content(self, latents: np.ndarray) -> np.ndarray:
        """float32 (K, Z) -> (K, d) content parts (recsys.model.Recommender.content_vectors)."""
        w1, b1, w2, b2 = self._head
        h = latents @ w1 + b1
        h = 0.5 * h * (1.0 + erf(h * np.float32(1 / np.sqrt(2))))  # exact GELU
        return h @ w2 + b2

    def _codes(self, rows: np.ndarray) -> np.ndarray:
        """float32 (K, M, Z) codes of bundle rows (zeros for -1: online posts have none)."""
        out = np.asarray(self.bundle.modality_codes[np.maximum(rows, 0)], np.float32)  # K rows of the memory map
        out[rows < 0] = 0
        return out

    @property
    def needs_why_rows(self) -> bool:
        """Whether `modalities` reads `why_rows` (only to compare stored codes of several modalities)."""
        return self.single is None and bool(self.names)

    def modalities(self, query: np.ndarray | None, vectors: np.ndarray, latents: np.ndarray,
                   rows: np.ndarray, why_rows: np.ndarray | None) -> list[str]:
        """Dominant modality of K items (recsys.explain.dominant_modality).

        query float32 (d,) or None (no user vector: the ID split is undecided); vectors float32
        (K, d) and latents float32 (K, Z) of the items; rows int64 (K,) their bundle rows (-1 =
        online post); why_rows int64 (K,) bundle rows of their closest history posts (-1 = online),
        needed only when `needs_why_rows`."""
        k = len(rows)
        if self.has_id and self.decomposable and query is not None:
            content = self._content(np.asarray(latents)[:, : self.z])  # (K, d): the model's part; a popularity coordinate after it is left out
            d = content.shape[1]
            v, q = np.asarray(vectors) * np.float32(self.part_scale), np.asarray(query, np.float32)
            extra = None
            if self.cold_channel:  # a cold post is scored by the user's cold vector (recsys.cold_channel)
                p, cold = model_part(v, d)
                if self.key_block:  # + beta cos(h, k): content
                    kb = slice(2 * d, 2 * d + self.z)
                    extra = np.where(cold, v[:, kb] @ q[kb], 0.0).astype(np.float32)
                q = np.where(cold[:, None], q[None, d:2 * d], q[None, :d])  # (K, d)
            else:
                p, q = v[:, :d], q[:d]  # unit post parts
            shares = explain.id_share(q, p, content, self.content_scale, extra)
        else:
            shares = np.zeros(k) if not self.has_id else np.full(k, np.nan)
        if not self.needs_why_rows:
            return explain.dominant_modality(shares, [self.single or explain.CONTENT] * k)
        todo = np.flatnonzero(~(shares > 0.5))  # the content modality only where ID does not win (NaN: undecided)
        content = [explain.CONTENT] * k
        if len(todo):
            found = explain.content_modality(self._codes(rows[todo]), self._codes(why_rows[todo]), self.names)
            for j, m in zip(todo.tolist(), found):
                content[j] = m
        return explain.dominant_modality(shares, content)
