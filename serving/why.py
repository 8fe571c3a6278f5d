"""The "why" modality of a reply's items: gathers the arrays recsys.explain needs from a loaded
bundle and model (one `WhyModality` per serving state) and calls its pure functions.

Shapes: K items, d retrieval dim, Z latent dim, M modalities with stored codes.
"""

from __future__ import annotations

import numpy as np

from recsys import explain


class WhyModality:
    def __init__(self, bundle, model) -> None:
        cfg = dict(getattr(model, "config", {}) or {})
        self.bundle, self.model = bundle, model
        self.content_scale = float(cfg.get("content_scale", 0.5))
        # the exact content / ID split holds for part-normalised, unit post vectors (recsys.explain)
        self.has_id = getattr(model, "post_table", None) is not None
        self.decomposable = bool(cfg.get("part_norm", True)) and cfg.get("normalize", "both") == "both"
        self.names = bundle.codes_names
        mods = list(getattr(model, "modalities", {}))
        self.single = mods[0] if len(mods) == 1 else None

    def _content(self, latents: np.ndarray) -> np.ndarray:
        import torch

        with torch.no_grad():
            return self.model.model.content_vectors(torch.from_numpy(np.ascontiguousarray(latents, np.float32))).numpy()

    def _codes(self, rows: np.ndarray) -> np.ndarray:
        """float32 (K, M, Z) codes of bundle rows (zeros for -1: online posts have none)."""
        out = np.asarray(self.bundle.modality_codes[np.maximum(rows, 0)], np.float32)  # K rows of the memory map
        out[rows < 0] = 0
        return out

    def modalities(self, query: np.ndarray | None, vectors: np.ndarray, latents: np.ndarray,
                   rows: np.ndarray, why_rows: np.ndarray) -> list[str]:
        """Dominant modality of K items (recsys.explain.dominant_modality).

        query float32 (d,) or None (no user vector: the ID split is undecided); vectors float32
        (K, d) and latents float32 (K, Z) of the items; rows int64 (K,) their bundle rows (-1 =
        online post); why_rows int64 (K,) bundle rows of their closest history posts (-1 = online)."""
        k = len(rows)
        if self.has_id and self.decomposable and query is not None:
            shares = explain.id_share(query, vectors, self._content(latents), self.content_scale)
        else:
            shares = np.zeros(k) if not self.has_id else np.full(k, np.nan)
        if self.single is not None or not self.names:
            content = [self.single or explain.CONTENT] * k
        else:
            content = explain.content_modality(self._codes(rows), self._codes(why_rows), self.names)
        return explain.dominant_modality(shares, content)
