"""User side: a profile from the latents of the user's recent posts, plus ID embeddings.

Shape legend: B users, L history length (= max_history, most recent LAST, -1 = padding),
Z post latent width, d retrieval dim, U users / N posts with an ID row.

    history latents (B, L, Z), mask (B, L)
      -> attention pooling (learned query, recency embedding, masked) -> (B, Z)
      -> MLP -> content profile (B, d)

ID part (`IdTables`): one torchrec EmbeddingBagCollection with two tables, `user` (feature
`user_id`) and `post` (feature `post_id`), plus an `author` table (feature `author_id`) when the
data names authors, looked up with a KeyedJaggedTensor so the same module shards with
DistributedModelParallel. The model looks up every row at once (bags of one id) and
then propagates over the train graph (see `recsys.model`); the history of a user is also pooled as
an ID bag (`id_bag`) over the post table, which gives users unknown to the user table an ID part.

A user with no history gets a zero content profile (`has_history` False).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F
from torchrec.modules.embedding_configs import EmbeddingBagConfig, PoolingType
from torchrec.modules.embedding_modules import EmbeddingBagCollection
from torchrec.sparse.jagged_tensor import KeyedJaggedTensor


@dataclass(frozen=True)
class UserProfileConfig:
    latent_dim: int = 64  # Z
    dim: int = 64  # d
    max_history: int = 50  # L
    hidden: int = 128
    dropout: float = 0.1


class HistoryPooling(nn.Module):
    """hist (B, L, Z) float32, mask (B, L) bool -> pooled (B, Z); zeros where no history."""

    def __init__(self, latent: int, max_history: int) -> None:
        super().__init__()
        self.recency = nn.Embedding(max_history, latent)  # row 0 = most recent
        nn.init.normal_(self.recency.weight, std=0.02)
        self.key = nn.Linear(latent, latent)
        self.query = nn.Parameter(torch.zeros(latent))

    def forward(self, hist: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        B, L, Z = hist.shape
        pos = torch.arange(L - 1, -1, -1, device=hist.device)  # (L,) recency rank, last = 0
        keys = torch.tanh(self.key(hist + self.recency(pos)))  # (B, L, Z)
        logits = (keys @ self.query).masked_fill(~mask, -1e9)  # (B, L)
        w = torch.softmax(logits, 1) * mask
        w = w / w.sum(1, keepdim=True).clamp_min(1e-12)
        return (w.unsqueeze(-1) * hist).sum(1)  # (B, Z)


class UserProfile(nn.Module):
    """Content profile: (hist_latents (B, L, Z), mask (B, L)) -> (B, d)."""

    def __init__(self, cfg: UserProfileConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.pool = HistoryPooling(cfg.latent_dim, cfg.max_history)
        self.mlp = nn.Sequential(
            nn.Linear(2 * cfg.latent_dim, cfg.hidden), nn.GELU(), nn.Dropout(cfg.dropout), nn.Linear(cfg.hidden, cfg.dim)
        )

    def forward(self, hist: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        hist, mask = hist[:, -self.cfg.max_history :], mask[:, -self.cfg.max_history :]
        attn = self.pool(hist, mask)  # (B, Z)
        n = mask.sum(1, keepdim=True)
        mean = (hist * mask.unsqueeze(-1)).sum(1) / n.clamp_min(1)  # (B, Z)
        out = self.mlp(torch.cat([attn, mean], 1))  # (B, d)
        return out * (n > 0)


class IdTables(nn.Module):
    """torchrec EBC with a `user` (U, d), a `post` (N, d) and, when n_authors > 0, an `author`
    (A, d) table.

    `forward(kjt)` -> KeyedTensor; `all_rows()` -> (user (U, d), post (N, d), author (A, d) or
    None) by looking every row up as a bag of one id (differentiable, and sharded under
    DistributedModelParallel)."""

    def __init__(self, n_users: int, n_posts: int, dim: int, device: torch.device | None = None, n_authors: int = 0) -> None:
        super().__init__()
        self.n_users, self.n_posts, self.n_authors, self.dim = n_users, n_posts, n_authors, dim
        sizes = {"user": n_users, "post": n_posts} | ({"author": n_authors} if n_authors > 0 else {})
        self.ebc = EmbeddingBagCollection(
            tables=[
                EmbeddingBagConfig(name=t, embedding_dim=dim, num_embeddings=max(n, 1), feature_names=[f"{t}_id"], pooling=PoolingType.SUM)
                for t, n in sizes.items()
            ],
            device=device or torch.device("cpu"),
        )
        self.sizes = sizes

    def reset_parameters(self, std: float = 0.1, seed: int = 0) -> None:
        g = torch.Generator().manual_seed(seed)
        for t in self.ebc.embedding_bags.values():
            with torch.no_grad():
                t.weight.copy_(torch.randn(t.weight.shape, generator=g) * std)

    def all_rows_kjt(self) -> KeyedJaggedTensor:
        """KJT with stride S = the largest table: bag i of feature `<table>_id` = [i] for i below
        that table's size; the remaining bags are empty."""
        S = max(self.sizes.values())
        ar = torch.arange(S, dtype=torch.int64)
        return self.rows_kjt({t: ar[:n] for t, n in self.sizes.items()}, S)

    def set_sparse(self, sparse: bool) -> None:
        """Sparse gradients for the (unsharded) tables: a lookup of a few ids then yields a
        gradient of those rows only, not of the whole table."""
        for eb in self.ebc.embedding_bags.values():
            eb.sparse = sparse

    def rows_kjt(self, ids: dict[str, torch.Tensor], stride: int) -> KeyedJaggedTensor:
        """KJT of bags of one id: bag i of feature `<table>_id` = [ids[table][i]] for i below
        len(ids[table]), empty bags up to `stride` (a table missing from `ids` gets only empty
        bags). A fixed stride keeps every rank's input the same shape under DMP."""
        lengths, values = [], []
        for t in self.sizes:
            v = ids.get(t, torch.zeros(0, dtype=torch.int64))
            assert len(v) <= stride, f"{len(v)} ids for table {t!r} exceed the stride {stride}"
            lengths.append((torch.arange(stride) < len(v)).long())
            values.append(v.long())
        return KeyedJaggedTensor.from_lengths_sync(keys=[f"{t}_id" for t in self.sizes], values=torch.cat(values), lengths=torch.cat(lengths))

    def lookup(self, ids: dict[str, torch.Tensor], stride: int) -> dict[str, torch.Tensor]:
        """Rows of some ids per table: {table: int64 (n_t,)} -> {table: float32 (n_t, d)}
        (differentiable; only these rows get gradients). Collective under DMP: every rank calls
        it with the same `stride` (>= the largest n_t)."""
        d = self.ebc(self.rows_kjt(ids, stride)).to_dict()
        return {t: d[f"{t}_id"][: len(ids[t])] for t in self.sizes if t in ids}

    def all_rows(self, chunk: int = 1 << 16) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """-> (user float32 (U, d), post float32 (N, d), author float32 (A, d) or None);
        `self.ebc` may be sharded (DMP). Tables longer than `chunk` rows are read `chunk` rows
        at a time (bounded lookup buffers at a million rows)."""
        S = max(self.sizes.values())
        if S <= chunk:
            d = self.ebc(self.all_rows_kjt()).to_dict()
            parts = {t: d[f"{t}_id"][:n] for t, n in self.sizes.items()}
        else:
            pieces: dict[str, list[torch.Tensor]] = {t: [] for t in self.sizes}
            for start in range(0, S, chunk):
                ids = {t: torch.arange(start, min(start + chunk, n)) for t, n in self.sizes.items() if start < n}
                for t, v in self.lookup(ids, chunk).items():
                    pieces[t].append(v)
            parts = {t: torch.cat(v) for t, v in pieces.items()}
        return parts["user"], parts["post"], parts.get("author")


def id_bag(table: torch.Tensor, ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean of table rows over each bag. table float32 (N, d); ids int64 (B, L), -1 = padding /
    no ID row. -> (bag (B, d), has_any bool (B,))."""
    valid = ids >= 0
    w = valid.float()
    safe = ids.clamp_min(0)
    bag = F.embedding_bag(safe, table, per_sample_weights=w, mode="sum")  # (B, d)
    n = w.sum(1, keepdim=True)
    return bag / n.clamp_min(1), valid.any(1)
