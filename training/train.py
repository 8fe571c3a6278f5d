"""Training loop for `recsys.model.Recommender`: `train(cfg) -> run_dir`.

    from training.train import TrainConfig, train
    run = train(TrainConfig.preset("tiny", data="data/tiny", out="runs/t0", model={"dim": 16}))

One process by default; under `torchrun` (WORLD_SIZE > 1) the ID tables are sharded (the largest,
posts, split over every rank; the others as torchrec's planner chooses) with
DistributedModelParallel over gloo (CPU), the dense parts are data-parallel, and each rank trains
on its slice of every batch. Validation Recall@20 after each epoch selects the best epoch (early
stopping); `model.pt` holds the best model, `checkpoint.pt` the last epoch (model, optimizer,
epoch, RNG) for `resume=True`.
"""

from __future__ import annotations

import copy
import dataclasses
import logging
import os
import platform
import random
import resource
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import numpy as np
import torch

from recsys.borrow import borrow_keys
from recsys.dataset import load_dataset
from recsys.errors import ArtifactError, ConfigError
from recsys.inference import history_rows
from recsys.interactions import build_interaction_data
from recsys.io import atomic_path, read_json, write_json
from recsys.model import Batch, ModelConfig, Recommender
from recsys.runs import (
    CHOSEN_KEYS,
    CHECKPOINT_FILE,
    SELECTION_DIR,
    METRICS_FILE,
    MODEL_FILE,
    RUN_FILE,
    LoadedRun,
    aligned_features,
    load_run,
    post_authors,
    save_model,
    scorer_from_run,
    set_chosen_config,
)
from training.blend import choose_pop_blend
from training.cold import choose_cold_channel
from training.shrink import choose_id_shrink

logger = logging.getLogger(__name__)

MODEL_KEYS = {f.name for f in dataclasses.fields(ModelConfig)} - {"modalities", "n_users", "n_posts"}


@dataclass(frozen=True)
class TrainConfig:
    data: str = ""
    out: str = ""
    preset: str = "default"
    seed: int = 0
    epochs: int = 15
    batch_size: int = 2048
    lr: float = 1e-3
    id_lr: float = 1e-2  # Adam lr of the ID tables (single process)
    sparse_lr: float = 0.05  # fused Adagrad lr of the sharded ID tables (distributed)
    weight_decay: float = 0.0
    patience: int = 3  # epochs without a valid improvement before stopping
    ema: float = 0.9  # evaluate/save an exponential moving average of the weights (0 = off; single process only)
    # Multiply every learning rate by this after each epoch whose valid figure does not improve
    # (reduce-on-plateau; 1 = off; single process only).
    lr_decay: float = 1.0
    eval_every: int = 1
    modalities: tuple[str, ...] | None = None  # None = every modality of the feature store
    resume: bool = False
    # torch threads per process; 0 = this machine's cores shared out over the processes torchrun
    # started on it (LOCAL_WORLD_SIZE; one process: all of them). More threads than cores make
    # OpenMP's waiting threads spin against the working ones (2 ranks x 2 threads on 2 cores:
    # 1.5 s per step at 1M posts, 72% of rank 0's samples in libgomp's wait loop).
    threads: int = 0
    # After selecting the epoch count on valid, train the served model again on train + valid for
    # that many epochs (`train` docstring): "on" (needs a split whose test history includes valid),
    # "auto" (on where it does) or "off". Off by default: decided on valid by
    # bench/refit_backtest.py (the platform moved one period back), where the refit lowered valid
    # recall@20 in 3 seeds of 3 (docs/evaluation.md, "Model selection").
    refit: str = "off"
    # After training, choose the popularity blend (model keys pop_weight / pop_half) on valid
    # (`training/blend.py`); a refit takes the selection run's choice.
    pop_blend: bool = True
    # After training, choose `id_shrink` (how far a known user's ID row leans on their history's
    # ID bag) on valid (`training/shrink.py`), before the popularity blend; a refit takes the
    # selection run's choice. Off: the model key `id_shrink` as configured.
    choose_id_shrink: bool = False
    # After training, choose the cold channel (model keys cold_scale / cold_key_weight /
    # cold_offset: how posts without an ID row are scored, `recsys.cold_channel`) on valid (`training/cold.py`), after
    # id_shrink and before the popularity blend; a refit takes the selection run's choice.
    cold_channel: bool = True
    # Train this many runs of the config from seeds seed, seed + 1, ... and serve them as one
    # ensemble run (`recsys.ensemble`: vectors side by side, score = the members' mean score; the
    # retrieval dimension and the training time grow K-fold). 1 = one run.
    members: int = 1
    id_optimizer: str = "adam"  # single process: "adam" (id_lr) or "adagrad" (sparse_lr, what sharded tables use)
    emulate_world: int = 1  # single process: split each batch into this many slices as that many ranks would
    # (one forward per slice, losses averaged): checks sharded training against one process
    max_steps: int = 0  # steps per epoch, 0 = every train edge once; a partial epoch (timings at scale)
    final_eval: bool = True  # test + valid figures of the best model at the end (metrics.json); off: the
    # per-epoch valid figure only (`recsys evaluate --run` gives the rest; each is a full ranking)
    log_every: int = 500  # a progress line (steps done, seconds per step) every this many steps, 0 = none
    model: dict[str, Any] = field(default_factory=dict)  # ModelConfig overrides

    @classmethod
    def preset(cls, name: str, **kw: Any) -> "TrainConfig":
        if name not in PRESETS:
            raise ConfigError(f"preset must be one of {sorted(PRESETS)}, got {name!r}")
        base = dict(PRESETS[name])
        model = {**base.pop("model", {}), **kw.pop("model", {})}
        return cls(preset=name, **{**base, **kw}, model=model)

    def with_overrides(self, pairs: list[str]) -> "TrainConfig":
        """Apply `key=value` strings (train keys or model keys)."""
        top, model = {}, dict(self.model)
        train_fields = {f.name: f for f in dataclasses.fields(self)}
        model_fields = {f.name: f for f in dataclasses.fields(ModelConfig)}
        for pair in pairs:
            if "=" not in pair:
                raise ConfigError(f"--set expects key=value, got {pair!r}")
            k, v = pair.split("=", 1)
            k = k.strip()
            if k == "modalities":
                top[k] = tuple(s for s in v.split(",") if s) or None
            elif k in train_fields and k not in ("model", "data", "out"):
                top[k] = _parse(v, train_fields[k].type, k)
            elif k in MODEL_KEYS:
                model[k] = _parse(v, model_fields[k].type, k)
            else:
                raise ConfigError(
                    f"unknown config key {k!r}; train keys: {sorted(set(train_fields) - {'model', 'data', 'out', 'preset', 'resume'})}, "
                    f"model keys: {sorted(MODEL_KEYS)}"
                )
        return dataclasses.replace(self, **top, model=model)


PRESETS: dict[str, dict[str, Any]] = {
    "tiny": dict(
        epochs=4, batch_size=64, lr=5e-3, id_lr=1e-2, patience=10, threads=1,
        model=dict(hidden=32, latent_dim=16, dim=16, max_history=8, graph_layers=2, temperature=0.2),
    ),
    # TikTok-tuned. Temperature chosen on TikTok's VALID split: 0.07 / 0.1 / 0.15 / 0.2 -> valid R@20
    # 0.1003 / 0.1078 / 0.1134 / 0.1118 (also tried at 0.1: graph_layers 2 0.1111, max_history 50
    # 0.1078, 128-d 0.1088; 128-d at 0.15: 0.1114).
    # item_knn=10 (the content item-item graph, FREEDOM's k) chosen on TikTok VALID over 3 seeds:
    # 0.1137 / 0.1098 / 0.1105 against 0.1134 / 0.1046 / 0.1032 without it.
    # dim=128 (ID rows and post/user vectors) chosen on TikTok VALID over 3 seeds with the item graph:
    # 0.1150 / 0.1167 / 0.1137 against 0.1137 / 0.1098 / 0.1105 at 64 (item_knn=20 at 64: 0.1154 /
    # 0.1127 / 0.1095, higher in 2 of 3, not taken; full softmax at 64, seed 0: 0.1108, not taken).
    # dim=256 chosen on TikTok VALID over 3 seeds (with the centred-latent cold keys): 0.1183 /
    # 0.1213 / 0.1147 against 0.1154 / 0.1170 / 0.1134 at 128; training 188-214 s on 2 cores.
    # id_shrink chosen on valid after training (choose_id_shrink): a dataset's own choice, not a preset's.
    # train_id_shrink=1 (training shrinks a known user's ID part the way serving does) chosen on TikTok
    # VALID over 3 seeds: 0.1200 / 0.1265 / 0.1173 against 0.1196 / 0.1232 / 0.1160 without (kappa 2:
    # 0.1196 / 0.1219 / 0.1164).
    # lr_decay=0.3 (the learning rates x 0.3 after each epoch without a valid gain): valid 0.1209 /
    # 0.1272 / 0.1183 against 0.1200 / 0.1265 / 0.1173, 3 of 3 but under 0.001 each; not taken: in the
    # no-item-graph ablation an early noisy epoch cut the rates and valid fell 0.1164 -> 0.1082 (README).
    # Not taken (README, TikTok): 512-d (valid higher in 2 seeds of 3 only) and borrow_dropped (2 of 3,
    # before and after train_id_shrink; with post_id_dropout=0.3 and train_id_shrink=0 it carries cold
    # posts better, at a cost overall).
    "default": dict(epochs=15, batch_size=2048, lr=1e-3, id_lr=1e-2, patience=3, choose_id_shrink=True,
                    model=dict(temperature=0.15, item_knn=10, dim=256, train_id_shrink=1.0)),
    # Content-rich data with authors (the synthetic platform; the demo's preset until the default
    # preset beat it on valid in 8 runs of 9 over three draws, README). Chosen on the default-size
    # platform's VALID split, among content_scale 0.5 / 0.75 / 1.0 / 1.5 (valid R@20 0.1292 /
    # 0.1325 / 0.1370 / 0.1345), max_history 50 (0.1258 with content_scale 1.0) and cold_knn 0
    # (0.1251 with content_scale 0.5): the default preset with content weighted like the ID part.
    # id_shrink=20 chosen on the platform moved one period back (bench/shrink_backtest.py, 3 seeds:
    # valid cannot see rows that missed the latest period); 128 / 256-d were higher on valid in 2
    # seeds of 3 only (0.1239 / 0.1223 / 0.1158 and 0.1248 / 0.1332 / 0.1202 against 0.1255 /
    # 0.1160 / 0.1151 at 64): not taken.
    "synth": dict(epochs=15, batch_size=2048, lr=1e-3, id_lr=1e-2, patience=3, model=dict(content_scale=1.0, id_shrink=20.0)),
    # Platform scale (`recsys synth --size scale`: 1M posts, 100k users, 10M interactions): the
    # default model at 64 dimensions (as measured in docs/scaling.md) with cached propagation
    # (chosen by the `auto` rule at this size anyway), cold posts placed by content + author
    # (cold_knn=0: borrowing the k nearest ID rows costs cold x known x d, minutes per validation
    # at a million posts), one epoch, no popularity blend (its choice is ~40 valid rankings: hours
    # at this size; the cold channel's grid is ~30).
    "scale": dict(epochs=1, batch_size=2048, lr=1e-3, id_lr=1e-2, patience=1, pop_blend=False, cold_channel=False, model=dict(temperature=0.15, propagation="cached", cold_knn=0)),
}


def _parse(v: str, typ: Any, key: str) -> Any:
    t = str(typ)
    try:
        if "bool" in t:
            if v.lower() in ("1", "true", "yes", "on"):
                return True
            if v.lower() in ("0", "false", "no", "off"):
                return False
            raise ValueError(v)
        if "int" in t and "float" not in t:
            return int(v)
        if "float" in t:
            return float(v)
    except ValueError as e:
        raise ConfigError(f"{key}: cannot parse {v!r} as {t}") from e
    return v


# -- data ---------------------------------------------------------------------------------------
@dataclass
class TrainData:
    feats: dict[str, torch.Tensor]  # (N, D_m) float32
    present: dict[str, torch.Tensor]  # (N,) bool
    users: np.ndarray  # int64 (E,) train edges, user rows
    posts: np.ndarray  # int64 (E,) post rows
    hist_full: np.ndarray  # int64 (U, Dmax), oldest first, -1 padded
    hist_len: np.ndarray  # int64 (U,) train history length of each user row
    hists: list[np.ndarray]  # per user row: train history post rows (recsys.inference semantics)
    meta: dict[str, dict]
    author_ids: np.ndarray  # int64 (A,) author table rows -> author id (empty: the data names no authors)
    post_author: np.ndarray  # int64 (N,) author row of every post row, -1 = no author


def prepare(ds, data, modalities: tuple[str, ...] | None, splits: tuple[str, ...] = ("train",)) -> TrainData:
    """Features of every post and the training edges / histories over the interactions of `splits`."""
    feats, present, meta = aligned_features(ds.root, data.post_ids, list(modalities) if modalities else None)
    if not feats:
        raise ConfigError(f"{ds.root}: no modality features to train on (run `recsys encode` first)")
    hists = history_rows(ds, data, splits)
    dmax = max((len(h) for h in hists), default=1) or 1
    hist_full = np.full((data.n_users, dmax), -1, np.int64)
    users, posts = [], []
    for u, h in enumerate(hists):
        hist_full[u, : len(h)] = h
        users.append(np.full(len(h), u, np.int64))
        posts.append(h)
    author_ids, post_author = author_rows(ds, data.post_ids)
    return TrainData(
        author_ids=author_ids,
        post_author=post_author,
        feats={m: torch.from_numpy(x) for m, x in feats.items()},
        present={m: torch.from_numpy(p) for m, p in present.items()},
        users=np.concatenate(users) if users else np.zeros(0, np.int64),
        posts=np.concatenate(posts) if posts else np.zeros(0, np.int64),
        hist_full=hist_full,
        hist_len=np.array([len(h) for h in hists], np.int64),
        hists=hists,
        meta=meta,
    )


def author_rows(ds, post_ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Author table of the posts `post_ids` (int64 (N,)) from `ds.posts.author_id` (nullable).
    -> (author_ids int64 (A,) sorted, post_author int64 (N,) row in author_ids or -1)."""
    auth = post_authors(ds, post_ids)  # (N,) author id, -1 = none
    author_ids = np.unique(auth[auth >= 0])
    rows = np.where(auth >= 0, np.searchsorted(author_ids, auth), -1).astype(np.int64)
    return author_ids, rows


def batch_history(hist_full: np.ndarray, users: np.ndarray, targets: np.ndarray, length: int, hist_len: np.ndarray | None = None) -> np.ndarray:
    """Most recent `length` train items of each user except the target, right-aligned -> (B, L).

    With `hist_len` (U,) only the last length + 1 items of each history are read (a batch costs
    O(B L), not O(B x the longest history)); rows where the target fills more than one of those
    slots and older items exist are redone over the whole history (the same answer)."""
    if hist_len is None:
        return _recent_except(hist_full[users], targets, length)
    n = hist_len[users]  # (B,)
    cols = n[:, None] - (length + 1) + np.arange(length + 1)  # (B, W): the last W slots
    H = np.where(cols >= 0, hist_full[users[:, None], cols.clip(0)], -1)
    out = _recent_except(H, targets, length)
    kept = (H >= 0) & (H != targets[:, None])
    redo = np.flatnonzero((kept.sum(1) < length) & (n > length + 1))
    if len(redo):
        out[redo] = _recent_except(hist_full[users[redo]], targets[redo], length)
    return out


def _recent_except(H: np.ndarray, targets: np.ndarray, length: int) -> np.ndarray:
    """H (B, D) post rows oldest first, -1 = none -> the last `length` entries other than the
    row's target, right-aligned (B, length), -1 padded."""
    keep = (H >= 0) & (H != targets[:, None])
    r = np.flip(np.cumsum(np.flip(keep, 1), 1), 1)  # 1 = most recent kept item
    take = keep & (r <= length)
    out = np.full((len(H), length), -1, np.int64)
    b, j = np.nonzero(take)
    out[b, length - r[b, j]] = H[b, j]
    return out


# -- distributed ----------------------------------------------------------------------------------
def _world() -> tuple[int, int]:
    return int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1))


def _wrap_distributed(model: Recommender, cfg: TrainConfig):
    """Shard the ID tables table-wise (FUSED kernel = fbgemm CPU TBE with a fused Adagrad) and
    wrap the rest with DDP. Returns (dmp_model, optimizer)."""
    import torch.distributed as dist
    from fbgemm_gpu.split_embedding_configs import EmbOptimType
    from torchrec.distributed.embeddingbag import EmbeddingBagCollectionSharder
    from torchrec.distributed.model_parallel import DistributedModelParallel
    from torchrec.distributed.planner import EmbeddingShardingPlanner, ParameterConstraints, Topology
    from torchrec.distributed.types import ShardingType
    from torchrec.optim.keyed import CombinedOptimizer, KeyedOptimizerWrapper
    from torchrec.optim.optimizers import in_backward_optimizer_filter

    world = dist.get_world_size()
    sharder = EmbeddingBagCollectionSharder(
        fused_params={"optimizer": EmbOptimType.EXACT_ADAGRAD, "learning_rate": cfg.sparse_lr, "eps": 1e-8}
    )
    # The table that grows with the catalogue (posts: the largest) is split over every rank, so
    # that no rank has to hold it whole (torchrec's planner alone kept it table-wise on one of 2
    # CPU ranks at 1M posts). On CPU torchrec's sharder offers no row-wise, so it is column-wise in
    # `world` equal slices of the dimension (on GPUs, with device cuda and nccl, it would be
    # row-wise: docs/scaling.md). The planner chooses table-wise or row-wise for the others; the
    # fused kernel keeps the optimizer in the lookup's backward.
    kinds = [ShardingType.TABLE_WISE.value, ShardingType.ROW_WISE.value]
    largest = max(model.ids.sizes, key=lambda t: model.ids.sizes[t])
    split = ParameterConstraints(sharding_types=[ShardingType.COLUMN_WISE.value], compute_kernels=["fused"], min_partition=max(1, model.ids.dim // world))
    constraints = {t: split if t == largest else ParameterConstraints(sharding_types=kinds, compute_kernels=["fused"]) for t in model.ids.sizes}
    planner = EmbeddingShardingPlanner(topology=Topology(world_size=world, compute_device="cpu"), constraints=constraints)
    plan = planner.collective_plan(model, [sharder], dist.GroupMember.WORLD)
    init = {f"ids.ebc.embedding_bags.{t}.weight": w.detach().clone() for t, w in zip(model.ids.sizes, model.ids.all_rows())}
    dmp = DistributedModelParallel(model, device=torch.device("cpu"), plan=plan, sharders=[sharder])
    _copy_into_shards(dmp, init)  # DMP draws fresh table weights; keep the seeded ones
    if dist.get_rank() == 0:
        for mod, params in plan.plan.items():
            for t, ps in params.items():
                print(f"sharding {mod}.{t}: {ps.sharding_type} over ranks {ps.ranks}", flush=True)
    dense = KeyedOptimizerWrapper(
        dict(in_backward_optimizer_filter(dmp.named_parameters())),
        lambda params: torch.optim.Adam(params, lr=cfg.lr, weight_decay=cfg.weight_decay),
    )
    return dmp, CombinedOptimizer([dmp.fused_optimizer, dense])


@torch.no_grad()
def _copy_into_shards(dmp, full: dict[str, torch.Tensor]) -> None:
    """Write full (rows, d) tables into this rank's shards of `dmp`'s state (ShardedTensor
    views of the fused tables, or plain tensors for unsharded ones)."""
    from torch.distributed._shard.sharded_tensor import ShardedTensor

    sd = dmp.state_dict()
    for key, w in full.items():
        t = sd[key] if key in sd else sd[f"module.{key}"]
        if isinstance(t, ShardedTensor):
            for sh in t.local_shards():
                (r, c), (nr, nc) = sh.metadata.shard_offsets, sh.metadata.shard_sizes
                sh.tensor.copy_(w[r : r + nr, c : c + nc])
        else:
            t.copy_(w)
    dmp.load_state_dict(sd)  # the state dict's shards may be copies: load them back


class _Both:
    """Two torch optimizers stepped together (dense Adam + ID-table Adagrad); state_dict round-trips."""

    def __init__(self, *opts: torch.optim.Optimizer) -> None:
        self.opts = opts

    def zero_grad(self) -> None:
        for o in self.opts:
            o.zero_grad()

    def step(self) -> None:
        for o in self.opts:
            o.step()

    def state_dict(self) -> dict:
        return {"optimizers": [o.state_dict() for o in self.opts]}

    def load_state_dict(self, sd: dict) -> None:
        for o, s in zip(self.opts, sd["optimizers"]):
            o.load_state_dict(s)


# -- run bookkeeping --------------------------------------------------------------------------------
def _versions() -> dict[str, str]:
    import torchrec

    return {"python": platform.python_version(), "torch": torch.__version__, "torchrec": torchrec.__version__, "numpy": np.__version__}


def _rng_state() -> dict:
    return {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}


def _set_rng_state(s: dict) -> None:
    random.setstate(s["python"])
    np.random.set_state(s["numpy"])
    torch.set_rng_state(s["torch"])


def _scale_lr(opt, factor: float) -> None:
    """Multiply the learning rate of every parameter group of `opt` (a torch optimizer or `_Both`)."""
    for o in getattr(opt, "opts", (opt,)):
        for g in o.param_groups:
            g["lr"] *= factor


@torch.no_grad()
def _ema_update(ema: dict[str, torch.Tensor], model: torch.nn.Module, decay: float) -> None:
    for k, v in model.state_dict().items():
        if v.dtype.is_floating_point:
            ema[k].mul_(decay).add_(v.detach(), alpha=1 - decay)
        else:
            ema[k].copy_(v)


def _seed(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _evaluate(scorer, data, split: str, ks) -> dict:
    from recsys.evaluation import evaluate

    return evaluate(scorer, data, split, ks=ks)


def _in_memory_run(model: Recommender, td: TrainData, data, out: Path, ds_fp: str) -> tuple[LoadedRun, dict]:
    """Eval-mode LoadedRun of the current weights + the serving export (tables of known rows)."""
    model.eval()  # stays in eval mode for scoring; the epoch loop switches back to train()
    with torch.no_grad():
        ex = model.export(td.feats, td.present)
    export: dict[str, torch.Tensor] = {}
    if "post_table" in ex:
        pk, uk = model.post_known.numpy(), model.user_known.numpy()
        known_latents = ex["latents"][torch.from_numpy(pk)]  # (Np, Z)
        export = {
            "post_ids": torch.from_numpy(data.post_ids[pk]),
            "post_table": ex["post_table"][torch.from_numpy(pk)].contiguous(),
            **borrow_keys(known_latents),  # cold posts' nearest ID-row posts (recsys.borrow)
            "user_ids": torch.from_numpy(data.user_ids[uk]),
            "user_table": ex["user_table"][torch.from_numpy(uk)].contiguous(),
            # distinct training users per ID-row post (the popularity blend's c_p)
            "post_pop": torch.from_numpy(np.bincount(td.posts, minlength=data.n_posts)[pk].astype(np.float32)),
            # train interactions of each user row (`id_shrink`: how far the row is trusted), the
            # counts training shrank with (`train_id_shrink`)
            "user_support": model.user_count[torch.from_numpy(uk)].contiguous(),
        }
        if "author_table" in ex:
            ak = model.author_known.numpy()
            export["author_ids"] = torch.from_numpy(td.author_ids[ak])
            export["author_table"] = ex["author_table"][torch.from_numpy(ak)].contiguous()
    run = LoadedRun(
        run_dir=out,
        model=model,
        config=model.cfg.to_dict(),
        fingerprint="",
        dataset_fingerprint=ds_fp,
        encoders={},
        post_table_ids=np.asarray(export["post_ids"]) if export else np.zeros(0, np.int64),
        post_table=export.get("post_table"),
        user_table_ids=np.asarray(export["user_ids"]) if export else np.zeros(0, np.int64),
        user_table=export.get("user_table"),
        post_keys=export.get("post_keys"),
        key_mean=export.get("key_mean"),
        author_table_ids=np.asarray(export["author_ids"]) if "author_ids" in export else np.zeros(0, np.int64),
        author_table=export.get("author_table"),
        post_pop=export.get("post_pop"),
        user_support=export.get("user_support"),
    )
    return run, export


def refits(cfg: TrainConfig, data) -> bool:
    """Whether `train` refits on train + valid (see TrainConfig.refit)."""
    if cfg.refit not in ("auto", "on", "off"):
        raise ConfigError(f"refit must be 'auto', 'on' or 'off', got {cfg.refit!r}")
    temporal = data.test_history_includes_valid and data.valid.nnz > 0
    if cfg.refit == "on" and not temporal:
        raise ConfigError(
            "refit=on needs a split whose test history includes valid (a temporal split with valid "
            f"interactions); {data.dataset_name or 'this dataset'} keeps a fixed protocol (history = train)"
        )
    return cfg.refit == "on" or (cfg.refit == "auto" and temporal)


def train(cfg: TrainConfig) -> Path:
    """Train and return the run directory (see recsys.runs for its layout).

    Without a refit the run is the epoch selected on valid. With one (`refits`): first that run
    is trained into `out/selection` (its valid figures are the run's valid figures), then the
    served model is trained from scratch, same config and seed, on train + valid for the selected
    number of epochs into `out`: what a platform serving the test period would have deployed.
    Its test figures are reported; evaluating it on valid reads the selection run instead.
    With `members` > 1, K such runs are trained into `out/members/<k>` and served as one
    ensemble run (`training.members`).
    """
    if not cfg.data or not cfg.out:
        raise ConfigError("train needs `data` (dataset dir) and `out` (run dir)")
    if not 0.0 < cfg.lr_decay <= 1.0:
        raise ConfigError(f"lr_decay multiplies the learning rates after an epoch without a valid gain: expected 0 < lr_decay <= 1, got {cfg.lr_decay}")
    if cfg.lr_decay != 1.0 and _world()[1] > 1:
        raise ConfigError("lr_decay is single-process only (the sharded tables' fused optimizer keeps its own rate); pass lr_decay=1 under torchrun")
    if cfg.choose_id_shrink and float(cfg.model.get("id_shrink", 0.0) or 0.0) != 0.0:
        raise ConfigError(
            f"id_shrink={cfg.model['id_shrink']} is fixed, but choose_id_shrink=true (preset {cfg.preset!r}) chooses it on "
            "valid after training: pass choose_id_shrink=false to keep the fixed value"
        )
    for key in ("cold_scale", "cold_key_weight", "cold_offset"):  # the cold channel's keys, chosen together
        if cfg.cold_channel and float(cfg.model.get(key, 0.0) or 0.0) != 0.0:
            raise ConfigError(
                f"{key}={cfg.model[key]} is fixed, but cold_channel=true (preset {cfg.preset!r}) chooses it on "
                "valid after training: pass cold_channel=false to keep the fixed value"
            )
    ds = load_dataset(Path(cfg.data))
    data = build_interaction_data(ds)
    if cfg.members != 1:
        from training.members import train_members

        return train_members(cfg, ds, data)
    if not refits(cfg, data):
        return _fit(cfg, ds, data, ("train",), None)
    out = Path(cfg.out)
    if (out / MODEL_FILE).exists():
        raise ArtifactError(f"{out} already holds a trained run; choose another --out")
    sel = _fit(dataclasses.replace(cfg, out=str(out / SELECTION_DIR)), ds, data, ("train",), None)
    info = read_json(sel / RUN_FILE)
    epochs = int(info["best_epoch"])
    selection = {"run": SELECTION_DIR, "best_epoch": epochs, "best_valid_recall20": info.get("best_valid_recall20"),
                 # the epochs after which the selection run lowered its learning rates (`lr_decay`): the refit does the same
                 "lr_scaled_after": [r["epoch"] for r in info.get("history", []) if r.get("lr_scaled") and r["epoch"] < epochs]}
    chosen = load_run(sel).config  # the selection run's popularity blend and id_shrink, chosen on valid
    model = {**cfg.model, **{k: chosen.get(k, 0.0) for k in CHOSEN_KEYS}}
    refit_cfg = dataclasses.replace(cfg, epochs=epochs, resume=False, model=model, choose_id_shrink=False, cold_channel=False)
    return _fit(refit_cfg, ds, data, ("train", "valid"), selection)


def _fit(cfg: TrainConfig, ds, data, splits: tuple[str, ...], selection: dict | None) -> Path:
    """One training run on the interactions of `splits`. selection None: epochs selected on valid
    (early stopping, `model.pt` = best epoch); else a refit: exactly `cfg.epochs` epochs, no
    validation, `model.pt` = the last epoch, `selection` recorded in run.json."""
    if cfg.threads < 0:
        raise ConfigError(f"threads must be >= 0 (0 = the machine's cores over the processes on it), got {cfg.threads}")
    torch.set_num_threads(cfg.threads or max(1, (os.cpu_count() or 1) // int(os.environ.get("LOCAL_WORLD_SIZE", 1))))
    out = Path(cfg.out)
    rank, world = _world()
    distributed = world > 1
    if distributed:
        import torch.distributed as dist

        if not dist.is_initialized():
            # Rank 0 evaluates (a full ranking: tens of minutes at a million posts) while the other
            # ranks wait in a collective, longer than the default 30-minute timeout.
            dist.init_process_group("gloo", timeout=timedelta(hours=6))
    main = rank == 0
    if cfg.resume and not (out / CHECKPOINT_FILE).is_file():
        raise ArtifactError(f"--resume: no checkpoint at {out / CHECKPOINT_FILE}")
    if not cfg.resume and (out / MODEL_FILE).exists():
        raise ArtifactError(f"{out} already holds a trained run; choose another --out or pass --resume")

    t_start = time.time()
    _seed(cfg.seed)
    ds_fp = ds.fingerprint()
    td = prepare(ds, data, cfg.modalities, splits)
    mcfg = ModelConfig(
        modalities=tuple((m, int(x.shape[1])) for m, x in td.feats.items()),
        n_users=data.n_users,
        n_posts=data.n_posts,
        **{"n_authors": len(td.author_ids), **cfg.model},
    )
    if mcfg.loss not in ("softmax", "bpr", "full"):
        raise ConfigError(f"loss must be 'softmax', 'bpr' or 'full', got {mcfg.loss!r}")
    if mcfg.borrow_dropped and (mcfg.loss == "full" or mcfg.cold_knn <= 0):
        raise ConfigError(
            f"borrow_dropped=true needs loss 'softmax' or 'bpr' and cold_knn > 0 (the borrowing it trains for), "
            f"got loss={mcfg.loss!r} cold_knn={mcfg.cold_knn}"
        )
    for key in ("id_shrink", "train_id_shrink"):
        if not getattr(mcfg, key) >= 0:
            raise ConfigError(f"{key} must be >= 0 (a count of train interactions; 0 = the ID row alone), got {getattr(mcfg, key)}")
    if not mcfg.cold_key_weight >= 0:
        raise ConfigError(f"cold_key_weight must be >= 0 (the weight of the cold channel's content-key match; 0 = none), got {mcfg.cold_key_weight}")
    model = Recommender(mcfg)
    for m, enc in model.autoencoder.encoders.items():
        x = td.feats[m][td.present[m]]
        enc.set_stats(x)
    if model.ids is not None:
        model.ids.reset_parameters(std=0.1, seed=cfg.seed)
    model.set_graph(torch.from_numpy(td.users), torch.from_numpy(td.posts), torch.from_numpy(td.post_author))
    if mcfg.borrow_dropped and model.mode != "full":
        raise ConfigError(f"borrow_dropped=true needs full propagation (this graph of {len(td.users)} edges: {model.mode}); pass propagation=full or drop it")
    if model.mode == "full":  # the item graph is O(N^2 D) to build: graphs trained with full propagation only
        model.set_item_graph(td.feats, td.present)
    elif mcfg.item_knn > 0:
        logger.warning("item_knn=%d ignored: the content item-item graph is built for full propagation only (this graph: %s)", mcfg.item_knn, model.mode)
    if len(td.users) == 0:
        raise ConfigError(f"{ds.root}: no train interactions")

    if distributed:
        dmp, opt = _wrap_distributed(model, cfg)
        step_model = dmp
    else:
        id_params = list(model.ids.parameters()) if model.ids is not None else []
        ids_ = {id(p) for p in id_params}
        dense = [p for p in model.parameters() if id(p) not in ids_]
        groups = [{"params": dense, "lr": cfg.lr, "weight_decay": cfg.weight_decay}]
        if cfg.id_optimizer not in ("adam", "adagrad"):
            raise ConfigError(f"id_optimizer must be 'adam' or 'adagrad', got {cfg.id_optimizer!r}")
        sparse = model.mode == "cached" and bool(id_params)
        if sparse:  # a step touches a few rows: sparse gradients, an optimizer that updates only those
            model.ids.set_sparse(True)
        if id_params and cfg.id_optimizer == "adagrad":  # the fused Adagrad of sharded tables, unfused
            opt = _Both(torch.optim.Adam(groups), torch.optim.Adagrad(id_params, lr=cfg.sparse_lr, eps=1e-8))
        elif sparse:  # lazy Adam: moments of the rows in the batch only (dense Adam is O(table) per step)
            opt = _Both(torch.optim.Adam(groups), torch.optim.SparseAdam(id_params, lr=cfg.id_lr))
        else:
            if id_params:
                groups.append({"params": id_params, "lr": cfg.id_lr, "weight_decay": 0.0})
            opt = torch.optim.Adam(groups)
        step_model = model

    state = {"epoch": 0, "best": -1.0, "best_epoch": 0, "bad": 0, "history": []}
    # The EMA is a pass over the whole state per step: off in cached mode, whose step must not
    # grow with the tables.
    use_ema = cfg.ema > 0 and not distributed and model.mode == "full"
    ema_state = {k: v.detach().clone() for k, v in model.state_dict().items()} if use_ema else None
    if cfg.resume:
        if distributed:
            raise ConfigError("--resume is supported in single-process training only")
        ck = torch.load(out / CHECKPOINT_FILE, map_location="cpu", weights_only=False)
        model.load_state_dict(ck["model"])
        opt.load_state_dict(ck["optimizer"])
        state = ck["state"]
        if use_ema and ck.get("ema") is not None:
            ema_state = ck["ema"]
        _set_rng_state(ck["rng"])
        logger.info("resumed %s at epoch %d (best valid recall@20 %.4f at epoch %d)", out, state["epoch"], state["best"], state["best_epoch"])
    out.mkdir(parents=True, exist_ok=True)
    run_info = {
        "config": {**dataclasses.asdict(cfg), "modalities": list(cfg.modalities) if cfg.modalities else None},
        "model_config": mcfg.to_dict(),
        "preset": cfg.preset,
        "dataset": {"path": str(Path(cfg.data).resolve()), "name": ds.name, "fingerprint": ds_fp},
        "versions": _versions(),
        "world_size": world,
        "trained_on": list(splits),
        "start_time": _now(),
        "status": "running",
    }
    if cfg.resume and (out / RUN_FILE).is_file():
        run_info["start_time"] = read_json(out / RUN_FILE).get("start_time", run_info["start_time"])
    if selection is not None:
        run_info["selection"] = selection
    if main:
        write_json(out / RUN_FILE, run_info)

    meta = {"dataset_fingerprint": ds_fp, "encoders": {m: td.meta[m].get("encoder") for m in td.meta}, "feature_meta": td.meta}
    E = len(td.users)
    per_rank = cfg.batch_size // world if distributed else cfg.batch_size
    steps = max(1, E // cfg.batch_size)
    if cfg.max_steps > 0:
        steps = min(steps, cfg.max_steps)
    disable_bar = os.environ.get("TQDM_DISABLE", "0") not in ("", "0") or not main
    from tqdm import tqdm

    stopped = False
    while state["epoch"] < cfg.epochs and not stopped:
        epoch = state["epoch"] + 1
        t0 = time.time()
        step_model.train()
        perm = np.random.permutation(E)
        losses = []
        t_mark = t0
        for s in tqdm(range(steps), desc=f"epoch {epoch}", leave=False, disable=disable_bar):
            idx = perm[s * cfg.batch_size : (s + 1) * cfg.batch_size]
            if distributed:
                slices = [idx[rank * per_rank : (rank + 1) * per_rank]]
            else:  # emulate_world > 1: the slices the ranks would take, one after the other
                slices = [idx[r * (len(idx) // cfg.emulate_world) : (r + 1) * (len(idx) // cfg.emulate_world)] for r in range(cfg.emulate_world)]
            model.before_step(s)  # cached propagation: snapshot refresh (collective under DMP)
            opt.zero_grad()
            for j, sl in enumerate(slices):
                u, p = td.users[sl], td.posts[sl]
                batch = Batch(
                    users=torch.from_numpy(u),
                    posts=torch.from_numpy(p),
                    history=torch.from_numpy(batch_history(td.hist_full, u, p, mcfg.max_history, td.hist_len)),
                    negatives=torch.from_numpy(np.random.randint(0, data.n_posts, len(u))) if mcfg.loss == "bpr" else None,
                    edge_idx=torch.from_numpy(sl),
                )
                t = step_model(batch, td.feats, td.present)
                (t["loss"] / len(slices)).backward()
                if j == 0:  # the logged loss: the first slice's (rank 0's under torchrun)
                    terms = t
            opt.step()
            if ema_state is not None:
                _ema_update(ema_state, model, cfg.ema)
            losses.append(float(terms["loss"].detach()))
            if cfg.log_every > 0 and (s + 1) % cfg.log_every == 0 and main:
                now = time.time()
                logger.info("epoch %d step %d/%d | loss %.4f | %.3f s/step over the last %d (%.3f since the epoch began)",
                            epoch, s + 1, steps, np.mean(losses[-cfg.log_every:]), (now - t_mark) / cfg.log_every, cfg.log_every, (now - t0) / (s + 1))
                t_mark = now
        state["epoch"] = epoch
        loss = float(np.mean(losses))
        t_steps = time.time() - t0
        line = f"epoch {epoch} | loss {loss:.4f}"
        rec = {"epoch": epoch, "loss": loss, "terms": {k: float(v.detach()) for k, v in terms.items()}}
        if selection is not None and epoch in selection.get("lr_scaled_after", ()):
            _scale_lr(opt, cfg.lr_decay)
            rec["lr_scaled"] = cfg.lr_decay
        if selection is not None and epoch == cfg.epochs:  # a refit: the last epoch is the model
            eval_model = model
            if ema_state is not None:
                eval_model = copy.deepcopy(model)
                eval_model.load_state_dict(ema_state)
            _, export = _in_memory_run(eval_model, td, data, out, ds_fp)
            state.update(best_epoch=epoch)
            sd = eval_model.plain_state_dict()  # collective when the tables are sharded
            if main:
                save_model(out / MODEL_FILE, eval_model, export, meta, sd)
        elif selection is None and (epoch % cfg.eval_every == 0 or epoch == cfg.epochs):
            eval_model = model
            if ema_state is not None:
                eval_model = copy.deepcopy(model)
                eval_model.load_state_dict(ema_state)
            run, export = _in_memory_run(eval_model, td, data, out, ds_fp)  # collective when sharded
            t_eval = time.time()
            # rank 0 evaluates; the others wait for its figure (every rank must then take the same
            # branch: the export below is collective)
            valid = _evaluate(scorer_from_run_td(run, td, data), data, "valid", (20,))["metrics"]["recall@20"] if main else 0.0
            if distributed:
                import torch.distributed as dist

                box = [valid]
                dist.broadcast_object_list(box, src=0)
                valid = box[0]
            rec["valid_seconds"] = round(time.time() - t_eval, 1)
            rec["valid_recall@20"] = valid
            line += f" | valid recall@20 {valid:.4f}"
            if valid > state["best"]:
                state.update(best=valid, best_epoch=epoch, bad=0)
                sd = eval_model.plain_state_dict()  # collective when the tables are sharded
                if main:
                    save_model(out / MODEL_FILE, eval_model, export, meta, sd)
            else:
                state["bad"] += 1
                stopped = state["bad"] >= cfg.patience
                if not stopped and cfg.lr_decay != 1.0:
                    _scale_lr(opt, cfg.lr_decay)
                    rec["lr_scaled"] = cfg.lr_decay
        # the steps' wall time, to the 0.1 ms: a few fast steps must not round to zero
        rec.update(steps=len(losses), step_seconds=round(t_steps, 4), seconds_per_step=round(t_steps / len(losses), 5))
        line += f" | {time.time() - t0:.0f} s ({len(losses)} steps, {t_steps / len(losses):.3f} s/step)"
        state["history"].append(rec)
        if main:
            print(line, flush=True)
            logger.debug("%s", rec)
            with atomic_path(out / CHECKPOINT_FILE) as tmp:
                torch.save(
                    {"model": model.state_dict() if not distributed else {}, "optimizer": opt.state_dict() if not distributed else {}, "state": state, "rng": _rng_state(), "ema": ema_state},
                    tmp,
                )

    if distributed:
        import torch.distributed as dist

        dist.barrier()
    metrics: dict[str, Any] = {}
    peak_rss_mb = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    if distributed:
        print(f"rank {rank}: peak RSS {peak_rss_mb / 1024:.2f} GB", flush=True)
    if main:
        best = load_run(out)
        blend = shrink = cold = None
        if selection is None and cfg.choose_id_shrink and best.user_table is not None:
            shrink = choose_id_shrink(best, scorer_from_run(best, ds, data), data)
            set_chosen_config(out, id_shrink=shrink["id_shrink"])
            best = load_run(out)
        if selection is None and cfg.cold_channel and best.post_table is not None:
            cold = choose_cold_channel(best, scorer_from_run(best, ds, data), data)
            set_chosen_config(out, cold_scale=cold["cold_scale"], cold_offset=cold["cold_offset"], cold_key_weight=cold["cold_key_weight"])
            best = load_run(out)
        if selection is None and cfg.pop_blend and best.post_pop is not None:
            blend = choose_pop_blend(best, scorer_from_run(best, ds, data), data)
            set_chosen_config(out, pop_weight=blend["pop_weight"], pop_half=blend["pop_half"])
            best = load_run(out)
        if selection is not None:  # a refit: the valid figure is the selection run's
            state["best"] = float(selection.get("best_valid_recall20") or -1.0)
        if cfg.final_eval:
            scorer = scorer_from_run(best, ds, data)
            res = _evaluate(scorer, data, "test", (10, 20, 50))
            if selection is None:
                valid_metrics = _evaluate(scorer, data, "valid", (10, 20, 50))["metrics"]
            else:  # this model has seen valid: the valid figures are the selection run's
                sel_metrics = read_json(out / selection["run"] / METRICS_FILE)
                valid_metrics = sel_metrics["valid"]
                selection["test_without_refit"] = sel_metrics["test"]
                blend = sel_metrics.get("pop_blend")  # chosen on valid by the selection run
                shrink = sel_metrics.get("id_shrink")
                cold = sel_metrics.get("cold_channel")
            metrics = {
                "selected_on": "valid recall@20",
                "best_epoch": state["best_epoch"],
                "refit": None if selection is None else {"trained_on": list(splits), "selection": selection},
                "id_shrink": shrink,
                "cold_channel": cold,
                "pop_blend": blend,
                "valid": valid_metrics,
                "test": res["metrics"],
                "test_buckets": res.get("buckets"),
                "n_test_users": res.get("n_users"),
            }
            write_json(out / METRICS_FILE, metrics)
        run_info.update(
            end_time=_now(),
            status="done",
            best_epoch=state["best_epoch"],
            best_valid_recall20=state["best"],
            epochs_run=state["epoch"],
            train_seconds=round(time.time() - t_start, 1),
            peak_rss_mb=peak_rss_mb,
            history=state["history"],
            model_fingerprint=best.fingerprint,
        )
        write_json(out / RUN_FILE, run_info)
        print(summary_line(f"best epoch {state['best_epoch']} | valid recall@20 {state['best']:.4f}",
                           res["metrics"] if cfg.final_eval else None), flush=True)
    if distributed:
        import torch.distributed as dist

        dist.barrier()
    return out


def summary_line(head: str, test: dict | None) -> str:
    """The last line `recsys train` prints: `head`, then the test figures when there are some."""
    if test is None:
        return head
    return f"{head} | test recall@20 {test['recall@20']:.4f} ndcg@20 {test['ndcg@20']:.4f} precision@20 {test['precision@20']:.4f}"


def scorer_from_run_td(run: LoadedRun, td: TrainData, data):
    """Like recsys.runs.scorer_from_run, from the in-memory features and train histories (the
    per-epoch valid figure: history = train)."""
    from recsys.runs import RunScorer

    feats = {m: x.numpy() for m, x in td.feats.items()}
    present = {m: p.numpy() for m, p in td.present.items()}
    lat = run.post_latents(feats, present)
    authors = np.where(td.post_author >= 0, td.author_ids[td.post_author.clip(0)] if len(td.author_ids) else -1, -1)
    posts = run.post_vectors(lat, data.post_ids, authors)

    def histories(splits):
        if tuple(splits) != ("train",):
            raise ValueError(f"the in-memory scorer holds train histories only, asked for {splits}")
        return td.hists

    return RunScorer("model", run, data, lat, posts, histories)
