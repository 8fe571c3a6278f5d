"""An ensemble run: K runs of one config trained from seeds seed, seed + 1, ... (`recsys train
--set members=K`), read back as one run with the `recsys.runs.LoadedRun` interface, so that
evaluation, build-index and serving take it unchanged.

Its vectors are the members' vectors side by side, each scaled by 1/sqrt(K), so the inner product
a FAISS index computes is the mean of the members' scores:

    latents  [z_1, ..., z_K]                 (N, sum Z_k)  each member reads its own slice
    posts    [p_1, ..., p_K] / sqrt(K)       (N, sum d_k)
    users    [u_1, ..., u_K] / sqrt(K)       (B, sum d_k)  each from the same history (the last
                                                           max_history_k posts for member k)

    run_dir/
      ensemble.json   {"format": "recsys-ensemble/1", "members": ["members/0", ...]}
      run.json        the ensemble's config, dataset, members' seeds, summed training time
      metrics.json    valid-selected test figures of the ensemble (as for one run)
      members/<k>/    a complete run each (its own epoch selection and popularity blend)

A post's "why" (serving.why) and its stored modality codes (recsys.explain) come from the first
member (`primary`): one member's content / ID split of a score, which the others share in kind.
"""

from __future__ import annotations

import hashlib
import math
from pathlib import Path
from typing import Any

import numpy as np

from recsys.errors import ArtifactError
from recsys.io import read_json

ENSEMBLE_FILE = "ensemble.json"
ENSEMBLE_FORMAT = "recsys-ensemble/1"
MEMBERS_DIR = "members"


def is_ensemble(run_dir: Path) -> bool:
    return (Path(run_dir) / ENSEMBLE_FILE).is_file()


def member_dirs(run_dir: Path) -> list[Path]:
    """The member run directories listed in `run_dir/ensemble.json` (ArtifactError if malformed)."""
    run_dir = Path(run_dir)
    spec = read_json(run_dir / ENSEMBLE_FILE)
    members = spec.get("members") if isinstance(spec, dict) else None
    if spec.get("format") != ENSEMBLE_FORMAT or not isinstance(members, list) or not members:
        raise ArtifactError(f"{run_dir / ENSEMBLE_FILE}: expected {{'format': {ENSEMBLE_FORMAT!r}, 'members': [dirs]}}, got {spec!r}"[:400])
    out = []
    for m in members:
        d = (run_dir / str(m)).resolve()
        if run_dir.resolve() not in d.parents:
            raise ArtifactError(f"{run_dir / ENSEMBLE_FILE}: member {m!r} is outside the run directory")
        out.append(d)
    return out


class EnsembleRun:
    """K loaded member runs (`recsys.runs.LoadedRun`) as one run (module docstring)."""

    def __init__(self, run_dir: Path, members: list[Any], run_info: dict | None = None) -> None:
        if not members:
            raise ArtifactError(f"{run_dir}: an ensemble needs at least one member")
        first = members[0]
        for m in members[1:]:
            for what in ("modalities", "dataset_fingerprint", "encoders"):
                if getattr(m, what) != getattr(first, what):
                    raise ArtifactError(f"{run_dir}: members {first.run_dir} and {m.run_dir} differ in {what} "
                                        f"({getattr(first, what)!r} vs {getattr(m, what)!r}); an ensemble needs one dataset and one feature store")
        self.run_dir, self.members, self.primary = Path(run_dir), list(members), first
        self.run_info = dict(run_info or {})
        self.config = {**first.config, "members": len(members)}
        self.dataset_fingerprint, self.encoders = first.dataset_fingerprint, first.encoders
        self.fingerprint = hashlib.sha256("".join(m.fingerprint for m in members).encode()).hexdigest()[:16]
        self._z = np.cumsum([0] + [m.latent_dim for m in members])  # latent slice bounds
        self._scale = 1.0 / math.sqrt(len(members))

    # -- the LoadedRun interface ---------------------------------------------------------------
    @property
    def model(self):
        """The first member's model (`recsys.explain`, serving's "why")."""
        return self.primary.model

    @property
    def post_table(self):
        return self.primary.post_table

    @property
    def modalities(self) -> dict[str, int]:
        return self.primary.modalities

    @property
    def latent_dim(self) -> int:
        return int(self._z[-1])

    @property
    def dim(self) -> int:
        return sum(int(m.dim) for m in self.members)

    @property
    def max_history(self) -> int:
        return max(int(m.max_history) for m in self.members)

    @property
    def member_scale(self) -> float:
        """1/sqrt(K): the factor on each member's part of a vector."""
        return self._scale

    def _lat(self, latents: np.ndarray, k: int) -> np.ndarray:
        return np.asarray(latents, np.float32)[..., self._z[k] : self._z[k + 1]]

    def post_latents(self, feats: dict[str, np.ndarray], present: dict[str, np.ndarray]) -> np.ndarray:
        """-> float32 (N, sum Z_k)."""
        return np.concatenate([m.post_latents(feats, present) for m in self.members], axis=1)

    def post_vectors(self, latents: np.ndarray, post_ids: np.ndarray, author_ids: np.ndarray | None = None,
                     popularity: np.ndarray | None = None) -> np.ndarray:
        """latents float32 (N, sum Z_k) -> float32 (N, sum d_k)."""
        parts = [m.post_vectors(self._lat(latents, k), post_ids, author_ids, popularity) for k, m in enumerate(self.members)]
        return (np.concatenate(parts, axis=1) * self._scale).astype(np.float32)

    @property
    def pop_weight(self) -> float:
        """> 0 where a member has a popularity blend."""
        return max(float(m.pop_weight) for m in self.members)

    def with_popularity(self, vectors: np.ndarray, popularity: np.ndarray) -> np.ndarray:
        """Each member's part through the member's `LoadedRun.with_popularity` (its blend coordinate
        and cold offsets set from counts float (N,))."""
        v = np.array(vectors, np.float32)
        cuts = np.cumsum([0] + [int(m.dim) for m in self.members])
        for k, m in enumerate(self.members):
            if m.pop_weight > 0:
                v[:, cuts[k]:cuts[k + 1]] = m.with_popularity(v[:, cuts[k]:cuts[k + 1]] / self._scale, popularity) * self._scale
        return v

    def post_query(self, vectors: np.ndarray) -> np.ndarray:
        """Retrieval post vectors (N, sum d_k) -> the vectors to search similar posts with: each
        member's part through the member's `post_query`."""
        v = np.asarray(vectors, np.float32)
        cuts = np.cumsum([0] + [int(m.dim) for m in self.members])
        return np.concatenate([m.post_query(v[:, cuts[k]:cuts[k + 1]]) for k, m in enumerate(self.members)], axis=1).astype(np.float32)

    def user_vectors(self, history_latents: np.ndarray, history_post_ids: np.ndarray, user_ids: np.ndarray, return_mask: bool = False):
        """history_latents float32 (B, L, sum Z_k), history_post_ids int64 (B, L) (-1 = padding,
        most recent last) -> float32 (B, sum d_k) (+ has_profile bool (B,) with return_mask)."""
        hp = np.asarray(history_post_ids, np.int64)
        if hp.ndim != 2:
            raise ArtifactError(f"history_post_ids must be (B, L), got shape {hp.shape}")
        vecs, has = [], None
        for k, m in enumerate(self.members):
            cols = slice(hp.shape[1] - min(int(m.max_history), hp.shape[1]), None)  # right-aligned: the most recent
            v, h = m.user_vectors(self._lat(history_latents, k)[:, cols], hp[:, cols], user_ids, return_mask=True)
            vecs.append(v)
            has = h if has is None else has | h
        v = (np.concatenate(vecs, axis=1) * self._scale).astype(np.float32)
        return (v, has) if return_mask else v


def load_ensemble(run_dir: Path) -> EnsembleRun:
    from recsys.runs import RUN_FILE, load_run

    run_dir = Path(run_dir)
    members = []
    for d in member_dirs(run_dir):
        if is_ensemble(d):
            raise ArtifactError(f"{run_dir}: member {d} is itself an ensemble; list its members instead")
        members.append(load_run(d))
    info = read_json(run_dir / RUN_FILE) if (run_dir / RUN_FILE).is_file() else {}
    return EnsembleRun(run_dir, members, info)
