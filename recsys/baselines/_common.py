"""Pieces shared by the baselines: an embedding scorer, BPR triples, a validation-early-stopped
training loop. Shapes: U users, N posts, d embedding dim, B batch."""

from __future__ import annotations

import copy
import logging
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import scipy.sparse as sp
import torch

from recsys.errors import ConfigError
from recsys.evaluation import evaluate
from recsys.interactions import InteractionData

logger = logging.getLogger(__name__)


class EmbeddingScorer:
    """score(u) = user_emb[u] @ item_emb.T: user_emb float32 (U, d), item_emb float32 (N, d).

    `rebase(history csr (U, N)) -> user_emb (U, d)` recomputes the users from the history the
    evaluation holds for a split (`for_history`); None keeps them as fitted."""

    def __init__(self, name: str, user_emb: torch.Tensor, item_emb: torch.Tensor, info: dict | None = None,
                 rebase: Callable[[sp.csr_matrix], torch.Tensor] | None = None) -> None:
        self.name = name
        self.user_emb = user_emb.detach().float().contiguous()
        self.item_emb_t = item_emb.detach().float().t().contiguous()  # (d, N)
        self.info = info or {}
        self.rebase = rebase

    def score(self, user_idx: np.ndarray) -> torch.Tensor:
        return self.user_emb[torch.as_tensor(user_idx, dtype=torch.int64)] @ self.item_emb_t  # (B, N)

    def factors(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(user_emb (U, d), item_emb_t (d, N)): the inner product score (column-tiled ranking)."""
        return self.user_emb, self.item_emb_t

    def for_history(self, history: sp.csr_matrix, split: str) -> "EmbeddingScorer":
        if self.rebase is None:
            return self
        return EmbeddingScorer(self.name, self.rebase(history), self.item_emb_t.t(), self.info, self.rebase)


def id_fold_in(user_emb: torch.Tensor, item_emb: torch.Tensor, known: np.ndarray) -> Callable[[sp.csr_matrix], torch.Tensor]:
    """`rebase` for ID models: a user with a trained row (known bool (U,)) keeps it; any other
    user with a history is placed at the mean of their history posts' rows (the ID bag, as the
    model places a user it has no row for); a user with neither keeps a zero row (the
    evaluation's population prior answers them)."""
    user_emb, item_emb = user_emb.detach().float(), item_emb.detach().float()

    def rebase(history: sp.csr_matrix) -> torch.Tensor:
        h = history.tocsr().astype(np.float32)
        n = np.maximum(np.diff(h.indptr), 1).astype(np.float32)
        bag = torch.from_numpy(np.asarray((sp.diags(1.0 / n) @ h) @ item_emb.numpy(), np.float32))  # (U, d)
        keep = torch.from_numpy(np.asarray(known, bool)).unsqueeze(1)
        return torch.where(keep, user_emb, bag)

    return rebase


def bpr_triples(train: sp.csr_matrix, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One (user, positive, negative) per train interaction, shuffled; negatives uniform over
    posts the user has not interacted with in train (rejection sampling)."""
    n = train.shape[1]
    users = np.repeat(np.arange(train.shape[0]), np.diff(train.indptr))
    pos = train.indices.astype(np.int64)
    keys = np.sort(users * n + pos)
    neg = rng.integers(0, n, len(users))
    for _ in range(20):
        q = users * n + neg
        bad = keys[np.clip(np.searchsorted(keys, q), 0, len(keys) - 1)] == q
        if not bad.any():
            break
        neg[bad] = rng.integers(0, n, int(bad.sum()))
    order = rng.permutation(len(users))
    return users[order], pos[order], neg[order]


def train_bpr(model: torch.nn.Module, data: InteractionData, name: str, cfg: dict[str, Any]) -> EmbeddingScorer:
    """Adam on the BPR loss, one epoch = one triple per train interaction. After each epoch the
    model is evaluated on VALID (recall@20); the best epoch's weights are kept (patience epochs
    without improvement stop training). `model` needs `bpr_loss(u, i, j) -> scalar` and
    `embeddings() -> (user_emb (U, d), item_emb (N, d))`."""
    if data.train.nnz == 0:
        raise ConfigError(f"{name}: the train split is empty; nothing to learn from")
    rng = np.random.default_rng(cfg["seed"])
    opt = torch.optim.Adam(model.parameters(), lr=cfg["lr"])
    best_r, best_epoch, best_state, bad = -1.0, 0, None, 0
    history = []
    t_start = time.perf_counter()
    for epoch in range(1, cfg["epochs"] + 1):
        t0 = time.perf_counter()
        model.train()
        u, i, j = (torch.from_numpy(a) for a in bpr_triples(data.train, rng))
        total = 0.0
        for s in range(0, len(u), cfg["batch_size"]):
            sl = slice(s, s + cfg["batch_size"])
            loss = model.bpr_loss(u[sl], i[sl], j[sl])
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += float(loss.detach()) * len(u[sl])
        model.eval()
        with torch.no_grad():
            scorer = EmbeddingScorer(name, *model.embeddings())
        r = evaluate(scorer, data, "valid", ks=(20,))["metrics"]["recall@20"]
        history.append({"epoch": epoch, "loss": total / len(u), "valid_recall@20": r})
        logger.info("%s epoch %d | loss %.4f | valid recall@20 %.4f | %.1f s", name, epoch, total / len(u), r, time.perf_counter() - t0)
        if r > best_r:
            best_r, best_epoch, best_state, bad = r, epoch, copy.deepcopy(model.state_dict()), 0
        else:
            bad += 1
            if bad >= cfg["patience"]:
                break
    model.load_state_dict(best_state)
    model.eval()
    with torch.no_grad():
        user_emb, item_emb = model.embeddings()
    info = {
        "config": dict(cfg),
        "history_fallback": "users without a trained row: mean of their history posts' rows; no history: population prior",
        "fit_s": round(time.perf_counter() - t_start, 2),
        "selected_on": "valid",
        "best_epoch": best_epoch,
        "best_valid_recall@20": best_r,
        "epochs_run": len(history),
        "history": history,
    }
    known = np.diff(data.train.tocsr().indptr) > 0
    return EmbeddingScorer(name, user_emb, item_emb, info, rebase=id_fold_in(user_emb, item_emb, known))
