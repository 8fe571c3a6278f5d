"""A trained run directory, read back for evaluation, index builds and serving.

    run_dir/
      run.json      config, preset, dataset path + fingerprint, library versions, times, best epoch
      model.pt      {"format", "config", "state_dict", "export", "meta"} (best epoch, written atomically)
      metrics.json  valid-selected test figures
      checkpoint.pt last epoch: model + optimizer + RNG (for --resume)
      selection/    a refit run only (temporal splits): the same layout, trained on train alone,
                    whose best epoch set the refit's epoch count; valid is scored through it

An ensemble run (`--set members=K`) holds `ensemble.json` and its members' runs instead of
`model.pt` (`recsys.ensemble`); `load_run` reads either.

    run = load_run(run_dir)
    lat = run.post_latents(feats, present)              # {name: (N, Dm)}, {name: (N,)} -> (N, Z)
    P = run.post_vectors(lat, post_ids)                  # (N, d), ID part where the post has a row
    U = run.user_vectors(hist_lat, hist_post_ids, uids)  # (B, L, Z), (B, L) -1 pad, (B,) -> (B, d)
    scores = U @ P.T

Histories, padding, chunked catalogue vectors and the fallback chain around these methods live in
`recsys.inference` (the one path training, evaluation, build-index and serving share).

`export` holds the tables serving needs without the training graph: the post ids / user ids that
have an ID row and their final (graph-propagated) ID embeddings.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from recsys.borrow import borrow_keys, borrowed_rows
from recsys.dataset import Dataset
from recsys.errors import ArtifactError
from recsys.interactions import InteractionData, rows_of
from recsys.io import atomic_path, read_json, sha256_file

logger = logging.getLogger(__name__)

MODEL_FILE = "model.pt"
RUN_FILE = "run.json"
METRICS_FILE = "metrics.json"
CHECKPOINT_FILE = "checkpoint.pt"
MODEL_FORMAT = "recsys-model/1"
SELECTION_DIR = "selection"  # a refit run's selection run (trained on train only), inside the run


def run_for_split(run_dir: Path, split: str) -> Path:
    """The run directory whose model is scored on `split`: a refit run (trained on train + valid,
    run.json `selection`) is scored on valid through its selection run, which has not seen valid."""
    run_dir = Path(run_dir)
    info = read_json(run_dir / RUN_FILE) if (run_dir / RUN_FILE).is_file() else {}
    if split == "valid" and info.get("selection"):
        sel = run_dir / info["selection"]["run"]
        if not (sel / MODEL_FILE).is_file():
            raise ArtifactError(f"{run_dir} was refit on train + valid; its valid figures need the selection run {sel}, which is missing")
        return sel
    return run_dir


def aligned_features(ds_root: Path, post_ids: np.ndarray, modalities: list[str] | None = None) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray], dict[str, dict]]:
    """Feature store rows for `post_ids` -> (data {m: (N, D)}, present {m: (N,)}, meta {m: dict})."""
    from recsys.features import load_features

    store = load_features(ds_root)
    names = sorted(store) if modalities is None else list(modalities)
    missing = [m for m in names if m not in store]
    if missing:
        raise ArtifactError(f"{ds_root}: no feature store for modality(ies) {missing}; have {sorted(store)}")
    data, present, meta = {}, {}, {}
    for m in names:
        data[m], present[m] = store[m].aligned(post_ids)
        meta[m] = dict(store[m].meta)
    return data, present, meta


class VectorScorer:
    """Precomputed user (U, d) and post (N, d) vectors; score = inner product."""

    def __init__(self, name: str, users: torch.Tensor, posts: torch.Tensor) -> None:
        self.name, self.users, self.posts = name, users, posts

    def score(self, user_idx: np.ndarray) -> torch.Tensor:
        idx = torch.as_tensor(np.asarray(user_idx, np.int64))
        return self.users[idx] @ self.posts.T

    def factors(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(users (U, d), posts_t (d, N)): score(u) = users[u] @ posts_t (column-tiled ranking)."""
        return self.users, self.posts.T


class RunScorer:
    """A trained run scored offline exactly as it is served: the post vectors of every post, and
    user vectors from each user's history for the split being scored (`recsys.inference`).

    histories: splits tuple -> post rows per user row (most-recent-last); latents float32 (N, Z),
    posts float32 (N, d) in `data.post_ids` order."""

    def __init__(self, name: str, run: "LoadedRun", data: InteractionData, latents: np.ndarray, posts: np.ndarray, histories) -> None:
        self.name, self.run, self.data, self.latents, self.histories = name, run, data, latents, histories
        self.posts = torch.from_numpy(np.ascontiguousarray(posts, np.float32))
        self._by_split: dict[tuple, VectorScorer] = {}

    def for_history(self, history, split: str) -> VectorScorer:
        """The user vectors of every user of `data` from their history when `split` is scored
        (history: `data.history_for(split)`, binary (U, N), or None for it), and the post vectors
        with the popularity blend's counts of that history (`data.popularity_for(split)`)."""
        from recsys.inference import latent_lookup, user_vectors

        key = self.data.history_splits(split)
        if key not in self._by_split:
            rows = self.histories(key)
            hist_ids = [self.data.post_ids[r] for r in rows]
            vecs, _ = user_vectors(self.run, hist_ids, self.data.user_ids, latent_lookup(self.data.post_ids, self.latents))
            posts = self.posts
            if self.run.pop_weight > 0:  # the blend's counts: what the server holds when `split` begins
                posts = torch.from_numpy(self.run.with_popularity(self.posts.numpy(), self.data.popularity_for(split)))
            self._by_split[key] = VectorScorer(self.name, torch.from_numpy(vecs), posts)
        return self._by_split[key]

    def score(self, user_idx: np.ndarray) -> torch.Tensor:
        """Scores from train histories (callers that do not go through `evaluate`)."""
        return self.for_history(None, "valid").score(user_idx)


@dataclass
class LoadedRun:
    run_dir: Path
    model: Any  # recsys.model.Recommender, eval mode
    config: dict  # model config
    fingerprint: str  # sha256[:16] of model.pt
    dataset_fingerprint: str
    encoders: dict[str, Any]  # modality -> encoder spec of the feature store it was trained on
    post_table_ids: np.ndarray  # int64 (Np,) post ids with an ID row
    post_table: torch.Tensor | None  # float32 (Np, d)
    user_table_ids: np.ndarray  # int64 (Nu,)
    user_table: torch.Tensor | None  # float32 (Nu, d)
    run_info: dict = field(default_factory=dict)
    # Keys of the ID-row posts for cold posts' nearest neighbours (`borrow_keys`): float32 (Np, Z)
    # centred, L2-normalised latents, and the centre key_mean (Z,). Runs trained before keys were
    # latents hold (Np, d) content vectors and no key_mean (then the keys are content vectors).
    post_keys: torch.Tensor | None = None
    key_mean: torch.Tensor | None = None
    author_table_ids: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))  # int64 (Na,) sorted
    author_table: torch.Tensor | None = None  # float32 (Na, d) author ID rows (None: no author table)
    post_pop: torch.Tensor | None = None  # float32 (Np,) distinct training users of each ID-row post
    user_support: torch.Tensor | None = None  # float32 (Nu,) train interactions of each user row (`id_shrink`)

    # Popularity blend (model config `pop_weight` > 0): the retrieval vectors get one more
    # coordinate, so that the inner product a FAISS index computes is the blended score:
    #     post  [p, z(p)]      z = log(1 + c_p) / log(1 + max c_train)
    #     user  [u, a * w(n)]  a = pop_weight, w(n) = h / (h + n) (h = pop_half; 1 where h = 0),
    #                          n = posts of the history the model reads (<= max_history)
    # c_p = distinct users of post p in the interactions the scorer holds (weighted by recency
    # where the dataset has a half-life, `recsys.prior`): for a split scored offline its history
    # (`RunScorer`), for a bundle every interaction it is built from (`index.build`, `index.fold`),
    # the counts the population prior ranks by (`recsys.inference.post_popularity`): popularity is
    # the platform's state when it answers, not the training window's. max c_train (`post_pop`, the
    # training counts) fixes the scale once, so z is one function of the count everywhere. A user with a short history leans on what is
    # popular now, one with a long history on their profile. Without counts (`popularity=None`)
    # the training counts stand in (0 for a post without an ID row, e.g. one added live).

    @property
    def pop_weight(self) -> float:
        return float(self.config.get("pop_weight", 0.0) or 0.0)

    @property
    def modalities(self) -> dict[str, int]:
        return {n: int(d) for n, d in self.model.cfg.modalities}

    @property
    def latent_dim(self) -> int:
        return int(self.model.cfg.latent_dim)

    @property
    def cold_channel(self) -> bool:
        """Whether cold posts are scored through the cold channel (`recsys.cold_channel`)."""
        return float(self.model.cfg.cold_scale) > 0

    @property
    def cold_key_weight(self) -> float:
        """beta of the cold channel's content-key match (`recsys.cold_channel`; 0 = none)."""
        return float(getattr(self.model.cfg, "cold_key_weight", 0.0) or 0.0) if self.cold_channel else 0.0

    @property
    def dim(self) -> int:
        """Retrieval dimension: the model's `dim` d (2d + 1 with the cold channel, 2d + Z + 1 with
        its content-key match), + 1 with the popularity blend."""
        from recsys.cold_channel import retrieval_dim

        d = int(self.model.cfg.dim)
        return (retrieval_dim(d, self.latent_dim, self.cold_key_weight) if self.cold_channel else d) + (1 if self.pop_weight > 0 else 0)

    def content_keys(self, latents) -> np.ndarray:
        """Latents float32 (..., Z) -> the posts' content keys float32 (..., Z) (`borrow_keys` with
        this run's centre): what cold posts borrow ID rows by and the cold channel's key match
        compares."""
        if self.key_mean is None:
            raise ArtifactError(f"{self.run_dir}: the run has no key centre (key_mean); trained before latent keys")
        lat = torch.as_tensor(np.asarray(latents, np.float32))
        return borrow_keys(lat.reshape(-1, lat.shape[-1]), self.key_mean)["post_keys"].reshape(lat.shape).numpy()

    def post_query(self, vectors: np.ndarray) -> np.ndarray:
        """Retrieval post vectors (N, dim) -> the vectors to search with for posts similar to them
        (N, dim), whose inner product with any post's retrieval vector is the cosine of the two
        posts' model vectors: with the cold channel `recsys.cold_channel.post_query`, else the post
        vectors with the popularity coordinate (if any) zeroed."""
        from recsys.cold_channel import post_query

        d, v = int(self.model.cfg.dim), np.asarray(vectors, np.float32)
        if self.cold_channel:
            return post_query(v, d)
        return v if v.shape[1] == d else np.concatenate([v[:, :d], np.zeros_like(v[:, d:])], axis=1)

    @property
    def max_history(self) -> int:
        return int(self.model.cfg.max_history)

    @torch.no_grad()
    def post_latents(self, feats: dict[str, np.ndarray], present: dict[str, np.ndarray]) -> np.ndarray:
        """feats {name: float32 (N, Dm)}, present {name: bool (N,)} -> float32 (N, Z). A modality
        missing from the dicts counts as absent; unknown modality names are ignored."""
        n = _rows(feats, present)
        f, p = {}, {}
        for m, dim in self.modalities.items():
            if m in feats and feats[m] is not None:
                x = np.asarray(feats[m], np.float32).reshape(n, -1)
                if x.shape[1] != dim:
                    raise ArtifactError(f"modality {m!r}: run expects dim {dim}, got {x.shape[1]} ({self.run_dir})")
                f[m] = torch.from_numpy(x)
                p[m] = torch.from_numpy(np.asarray(present.get(m, np.ones(n, bool)), bool).reshape(n))
            else:
                p[m] = torch.zeros(n, dtype=torch.bool)
        return self.model.post_latents(f, p).numpy()

    @torch.no_grad()
    def post_vectors(self, latents: np.ndarray, post_ids: np.ndarray, author_ids: np.ndarray | None = None,
                     popularity: np.ndarray | None = None) -> np.ndarray:
        """latents float32 (N, Z), post_ids int64 (N,), author_ids int64 (N,) (-1 or None = no
        author; an author unknown to the run adds nothing), popularity float (N,) distinct users of
        each post (the blend's counts, see above; None = the training counts) -> float32 (N, dim)."""
        from recsys.model import post_vectors

        lat = torch.as_tensor(np.asarray(latents, np.float32))
        rows = self._post_rows(np.asarray(post_ids, np.int64))
        id_rows = None
        if self.post_table is not None:
            id_rows = self.post_table[torch.from_numpy(rows).clamp_min(0)] * torch.from_numpy(rows >= 0).unsqueeze(1)
            cold = np.flatnonzero(rows < 0)
            k = int(self.config.get("cold_knn", 0))
            if len(cold) and k > 0 and self.post_keys is not None and len(self.post_keys):
                id_rows[torch.from_numpy(cold)] = self._borrowed_id_rows(lat[torch.from_numpy(cold)], k)
            if self.author_table is not None and author_ids is not None:
                id_rows = id_rows + self.author_rows(np.asarray(author_ids, np.int64).reshape(-1))
        v = post_vectors(self.model, lat, id_rows).numpy()
        if self.cold_channel:
            from recsys.cold_channel import split_posts

            keys = self.content_keys(lat) if self.cold_key_weight > 0 else None
            v = split_posts(v, rows < 0, float(self.model.cfg.cold_offset), keys)
        if self.pop_weight > 0:
            if popularity is None:
                popularity = np.where(rows >= 0, self._train_pop()[np.clip(rows, 0, None)], 0.0)
            v = self._cold_offsets(np.concatenate([v, self.popularity_z(popularity)[:, None]], axis=1), popularity)
        return v

    def _cold_offsets(self, vectors: np.ndarray, popularity: np.ndarray) -> np.ndarray:
        """With the cold channel and the blend: the cold offset only for cold posts without counts
        (`recsys.cold_channel.offsets_by_counts`); the vectors as they are otherwise."""
        if not (self.cold_channel and self.pop_weight > 0):
            return vectors
        from recsys.cold_channel import offsets_by_counts

        return offsets_by_counts(vectors, int(self.model.cfg.dim), self.latent_dim, self.cold_key_weight, float(self.model.cfg.cold_offset), popularity)

    def _train_pop(self) -> np.ndarray:
        """float64 (Np,) distinct training users of each ID-row post."""
        if self.post_pop is None or not len(self.post_pop):
            raise ArtifactError(f"{self.run_dir}: pop_weight > 0 but the run has no post popularity (post_pop)")
        return self.post_pop.numpy().astype(np.float64)

    def popularity_z(self, popularity: np.ndarray) -> np.ndarray:
        """z(c) of the blend for counts float (N,) (`recsys.inference.post_popularity`): float32 (N,)."""
        c = np.asarray(popularity, np.float64)
        return (np.log1p(c) / max(np.log1p(self._train_pop().max()), 1e-12)).astype(np.float32)

    def with_popularity(self, vectors: np.ndarray, popularity: np.ndarray) -> np.ndarray:
        """Retrieval post vectors (N, dim) with the blend's coordinate set from counts float (N,),
        and with the cold channel its offsets by the counts (a copy; the vectors unchanged without a
        blend)."""
        v = np.array(vectors, np.float32)
        if self.pop_weight > 0:
            v[:, -1] = self.popularity_z(popularity)
            v = self._cold_offsets(v, popularity)
        return v

    def popularity_weight(self, n_history: np.ndarray) -> np.ndarray:
        """a * w(n) of the blend for history lengths int (B,). float32 (B,)."""
        return self.popularity_weight_of(self.pop_weight, float(self.config.get("pop_half", 0.0) or 0.0), n_history)

    @staticmethod
    def popularity_weight_of(a: float, h: float, n_history: np.ndarray) -> np.ndarray:
        n = np.asarray(n_history, np.float64)
        w = np.ones_like(n) if h <= 0 else h / (h + n)
        return (a * w).astype(np.float32)

    def author_rows(self, author_ids: np.ndarray) -> torch.Tensor:
        """author_ids int64 (N,) -> author ID rows float32 (N, d), zeros for -1 / unknown authors."""
        rows = rows_of(self.author_table_ids, author_ids)
        return self.author_table[torch.from_numpy(rows).clamp_min(0)] * torch.from_numpy(rows >= 0).unsqueeze(1)

    def _borrowed_id_rows(self, latents: torch.Tensor, k: int) -> torch.Tensor:
        """Cold posts: the ID rows they borrow (`recsys.borrow`). latents (C, Z) -> (C, d)."""
        if self.key_mean is None:  # a run from before latent keys: content vectors
            keys = torch.nn.functional.normalize(self.model.content_vectors(latents), dim=-1)
        else:
            keys = borrow_keys(latents, self.key_mean)["post_keys"]
        return borrowed_rows(keys, self.post_keys, self.post_table, k)

    @torch.no_grad()
    def user_vectors(self, history_latents: np.ndarray, history_post_ids: np.ndarray, user_ids: np.ndarray, return_mask: bool = False):
        """history_latents float32 (B, L, Z), history_post_ids int64 (B, L) (-1 = padding, most
        recent last), user_ids int64 (B,) (unknown -> no ID part) -> float32 (B, d).
        A user with neither history nor an ID row gets a zero vector (has_profile False; pass
        return_mask=True to get (vectors, has_profile bool (B,)))."""
        from recsys.model import combine_user, user_parts

        hp = np.asarray(history_post_ids, np.int64)
        if hp.ndim != 2:
            raise ArtifactError(f"history_post_ids must be (B, L), got shape {hp.shape}")
        rows = self._post_rows(hp.reshape(-1)).reshape(hp.shape)
        rows = np.where(hp < 0, -2, rows)  # -2 padding, -1 post without an ID row
        urows = rows_of(self.user_table_ids, np.asarray(user_ids, np.int64).reshape(-1))
        content, id_part, has = user_parts(
            self.model,
            torch.as_tensor(np.asarray(history_latents, np.float32)),
            torch.from_numpy(rows),
            torch.from_numpy(urows),
            self.user_table,
            self.post_table,
            self.user_support,
        )
        v = (combine_user(self.model, content, id_part) * has.unsqueeze(1)).numpy()
        if self.cold_channel:
            from recsys.cold_channel import history_keys, join_users

            cold = (combine_user(self.model, content, id_part, float(self.model.cfg.cold_scale)) * has.unsqueeze(1)).numpy()
            beta = self.cold_key_weight
            h = None
            if beta > 0:
                lat = np.asarray(history_latents, np.float32)
                known = (hp >= 0) & np.any(lat != 0, axis=-1)  # a post without a latent (unknown id) has no key
                h = history_keys(self.content_keys(lat), known)
            v = join_users(v, cold, has.numpy(), h, beta)
        if self.pop_weight > 0:
            w = self.popularity_weight((hp >= 0).sum(1)) * has.numpy()
            v = np.concatenate([v, w[:, None]], axis=1)
        return (v, has.numpy()) if return_mask else v

    def _post_rows(self, post_ids: np.ndarray) -> np.ndarray:
        return rows_of(self.post_table_ids, post_ids)


def _rows(feats: dict, present: dict) -> int:
    for d in (feats, present):
        for v in d.values():
            if v is not None:
                return len(v)
    return 0


def save_model(path: Path, model: Any, export: dict, meta: dict, state_dict: dict | None = None) -> None:
    """model.pt: config + state dict + serving export, atomically."""
    if state_dict is None:
        state_dict = model.plain_state_dict()
    blob = {
        "format": MODEL_FORMAT,
        "config": model.cfg.to_dict(),
        "state_dict": state_dict,
        "export": export,
        "meta": meta,
    }
    with atomic_path(path) as tmp:
        torch.save(blob, tmp)


def load_run(run_dir: Path) -> LoadedRun:
    """Read `run_dir/model.pt` (+ run.json) into a CPU, eval-mode LoadedRun; an ensemble run
    (`ensemble.json`) into a `recsys.ensemble.EnsembleRun`, which has the same interface."""
    from recsys.ensemble import is_ensemble, load_ensemble
    from recsys.model import ModelConfig, Recommender

    run_dir = Path(run_dir)
    if is_ensemble(run_dir):
        return load_ensemble(run_dir)
    path = run_dir / MODEL_FILE
    if not path.is_file():
        raise ArtifactError(f"no trained model at {path} (train one with `recsys train --out {run_dir}`)")
    try:
        blob = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # torch raises many types for corrupt files
        raise ArtifactError(f"{path} is not a readable model checkpoint: {e}") from e
    if not isinstance(blob, dict) or blob.get("format") != MODEL_FORMAT:
        raise ArtifactError(f"{path}: expected format {MODEL_FORMAT!r}, got {blob.get('format') if isinstance(blob, dict) else type(blob).__name__}")
    cfg = ModelConfig.from_dict(blob["config"])
    model = Recommender(cfg)
    try:
        model.load_state_dict(blob["state_dict"])
    except RuntimeError as e:
        raise ArtifactError(f"{path}: state dict does not match its config: {e}") from e
    model.eval()
    ex, meta = blob["export"], blob["meta"]
    info = read_json(run_dir / RUN_FILE) if (run_dir / RUN_FILE).is_file() else {}
    return LoadedRun(
        run_dir=run_dir,
        model=model,
        config=blob["config"],
        fingerprint=sha256_file(path)[:16],
        dataset_fingerprint=str(meta.get("dataset_fingerprint", "")),
        encoders=dict(meta.get("encoders", {})),
        post_table_ids=np.asarray(ex.get("post_ids", torch.zeros(0, dtype=torch.int64)), np.int64),
        post_table=ex.get("post_table"),
        user_table_ids=np.asarray(ex.get("user_ids", torch.zeros(0, dtype=torch.int64)), np.int64),
        user_table=ex.get("user_table"),
        run_info=info,
        post_keys=ex.get("post_keys", ex.get("post_content")),
        key_mean=ex.get("key_mean"),
        author_table_ids=np.asarray(ex.get("author_ids", torch.zeros(0, dtype=torch.int64)), np.int64),
        author_table=ex.get("author_table"),
        post_pop=ex.get("post_pop"),
        user_support=ex.get("user_support"),
    )


CHOSEN_KEYS = ("pop_weight", "pop_half", "id_shrink", "cold_scale", "cold_offset", "cold_key_weight")  # inference keys chosen on valid after training


def set_chosen_config(run_dir: Path, **keys: float) -> None:
    """Write inference keys chosen on valid after training (`CHOSEN_KEYS`: the popularity blend,
    `id_shrink`, the cold channel) into `run_dir/model.pt`'s config (atomically)."""
    unknown = sorted(set(keys) - set(CHOSEN_KEYS))
    if unknown:
        raise ValueError(f"set_chosen_config takes {list(CHOSEN_KEYS)}, got {unknown}")
    path = Path(run_dir) / MODEL_FILE
    blob = torch.load(path, map_location="cpu", weights_only=True)
    blob["config"] = {**blob["config"], **{k: float(v) for k, v in keys.items()}}
    with atomic_path(path) as tmp:
        torch.save(blob, tmp)


def scorer_from_run(run: LoadedRun, ds: Dataset, data: InteractionData, name: str | None = None) -> RunScorer:
    """Score every user of `data` against every post (histories per split, `recsys.inference`)."""
    from recsys.features import load_features
    from recsys.inference import catalogue_vectors, history_rows

    store = load_features(ds.root)
    lat, posts = catalogue_vectors(run, store, data.post_ids, post_authors(ds, data.post_ids))
    return RunScorer(name or f"run:{run.run_dir.name}", run, data, lat, posts, lambda splits: history_rows(ds, data, splits))


def post_authors(ds: Dataset, post_ids: np.ndarray) -> np.ndarray:
    """Author id of each post in `post_ids` (int64 (N,)), -1 where the dataset names none."""
    known = ds.posts.select("post_id", "author_id").drop_nulls()
    if known.is_empty():
        return np.full(len(post_ids), -1, np.int64)
    pos = rows_of(known["post_id"].to_numpy().astype(np.int64), np.asarray(post_ids, np.int64))
    return np.where(pos >= 0, known["author_id"].to_numpy().astype(np.int64)[pos.clip(0)], -1)


def _has_store(root: Path, m: str) -> bool:
    from recsys.features import features_dir

    return (features_dir(root) / f"{m}.npz").is_file()


def load_scorer(run_dir: Path, ds: Dataset, data: InteractionData) -> VectorScorer:
    """Scorer for `recsys evaluate --run`. ArtifactError if the run was trained on other data."""
    run = load_run(run_dir)
    fp = ds.fingerprint()
    if run.dataset_fingerprint and run.dataset_fingerprint != fp:
        raise ArtifactError(
            f"run {run_dir} was trained on dataset fingerprint {run.dataset_fingerprint}, "
            f"but {ds.root} has fingerprint {fp}; evaluate it on the data it was trained on"
        )
    return scorer_from_run(run, ds, data)
