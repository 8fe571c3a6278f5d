"""Two-tower recommender: the multimodal autoencoder (post side) + user profile (user side)
+ ID tables propagated LightGCN-style over the train graph. Score = <user vector, post vector>.

Shape legend: B batch (user, post) pairs, L history, N posts, U users, Z latent, d retrieval dim.

    post vector  p_i = normalise(s * n(W_p latent_i) + n(e_i + a_i))
                       e_i = propagated post ID row, only for posts with a train interaction
                       a_i = ID row of the post's author, only for authors with a train interaction
                       (a cold post by a known author gets its author row; a cold post by an
                       unknown author gets normalise(W_p latent_i): content only)
    user vector  u   = normalise(s * n(profile(history latents)) + n(e_u))
                       e_u = propagated user ID row, or, for a user unknown to the table, the
                       mean of e_i over the history (ID bag); with `id_shrink` kappa a known
                       user's e_u = w n(row) + (1 - w) n(bag), w = n_train / (n_train + kappa)
                       (`shrink_id`; training shrinks with `train_id_shrink`)
    n = L2 normalisation of each part (`part_norm`), s = `content_scale`.
    With `item_knn` > 0 (off by default) e_i also gets the mean of the ID rows of its k nearest
    posts by input features (`item_graph`, frozen, FREEDOM-style); with the popularity blend
    (`pop_weight` > 0, chosen on valid after training) both vectors get one more coordinate
    (`recsys.runs.LoadedRun`); with the cold channel (`cold_scale` > 0, chosen on valid after
    training) posts without an ID row meet the user vector combined with `cold_scale` instead of s
    (`recsys.cold_channel`: 2d + 1 retrieval dims, + Z with its content-key match).

Loss (weights in `ModelConfig`):
    retrieval: "softmax" = in-batch sampled softmax over the batch's posts with temperature and
               logQ correction (q = train popularity; the default), "bpr" = one uniform negative
               per pair, or "full" = softmax over every post (exact; slower on CPU);
    + content_weight * the same retrieval loss with content-only post vectors (so a cold post's
               content vector is a retrieval vector on its own);
    + recon_weight * reconstruction + align_weight * cross-modal InfoNCE (autoencoder terms).
ID dropout (posts and users) during training also teaches the content / bag paths, and the
graph is propagated without the batch's own edges (`mask_target_edges`: the user's ID vector
cannot simply contain the target post).

Propagation during training (`propagation`; inference always propagates the final tables over
the whole graph once, without gradients):
    full    every step propagates all rows (U+N, d) over the whole graph (rebuilt without the
            batch's edges), back-propagates through it and encodes every post: exact, but the
            cost of a step grows with the platform (TikTok-size graphs; the README figures).
    cached  at the start of each epoch and every `refresh_steps` steps, without gradients:
                delta = propagate(E) - E  over the whole graph,  latents of every post;
            then each step looks up only its own rows (a KJT of the batch's user / post /
            author ids, so sharded tables serve it) and uses
                e_u = E_u + delta_u - c a_ui sg(E_i),   e_i = E_i + delta_i - c a_ui sg(E_u)
            (c = 1/(layers+1), a_ui the pair's normalised adjacency weight: the first-layer share
            of the pair's own edge taken out, the cheap form of `mask_target_edges`); it
            encodes only the batch's target / negative posts and reads history latents from the
            snapshot. Gradients reach the batch's rows and posts only (the neighbourhood part is
            constant between refreshes), so a step costs O(B * L) whatever the graph's size.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

from recsys.autoencoder import AutoencoderConfig, MultimodalAutoencoder, autoencoder_losses
from recsys.borrow import borrow_keys, borrowed_rows
from recsys.graph import SparseOperator, TrainGraph, item_graph, propagate
from recsys.errors import ConfigError
from recsys.user_profile import IdTables, UserProfile, UserProfileConfig, id_bag


@dataclass(frozen=True)
class ModelConfig:
    modalities: tuple[tuple[str, int], ...]  # ((name, dim), ...)
    n_users: int = 0  # ID table rows (users of the training data)
    n_posts: int = 0  # ID table rows (posts of the training data)
    n_authors: int = 0  # author ID table rows (authors of the training data; 0 = no author table)
    hidden: int = 128
    latent_dim: int = 64
    dim: int = 64
    max_history: int = 20
    dropout: float = 0.1
    modality_dropout: float = 0.2
    align_temperature: float = 0.2
    use_id: bool = True
    use_author: bool = True  # an author ID table when the data names authors (needs use_id)
    graph_layers: int = 3
    loss: str = "softmax"  # "softmax" (in-batch + logQ) | "bpr" | "full" (softmax over all posts)
    temperature: float = 0.1
    content_scale: float = 0.5  # weight of the content parts in the combined vectors (0 = ID only)
    part_norm: bool = True  # L2-normalise the content and ID parts before adding them (keeps their balance)
    normalize: str = "both"  # L2-normalise "both" vectors, only the "user" vector, or "none"
    logq: bool = True
    recon_weight: float = 0.1
    align_weight: float = 0.1
    content_weight: float = 0.5
    post_id_dropout: float = 0.1
    user_id_dropout: float = 0.1
    # At inference a known user's ID part is w unit(ID row) + (1 - w) unit(ID bag of their current
    # history), w = n / (n + id_shrink), n = the row's train interactions (exported `user_support`):
    # a row fitted on few interactions leans on the posts the user engaged with, including those
    # since training. 0 = the row alone. The default preset chooses it on valid after training
    # (`training/shrink.py`: exact where test is scored from the history the rows were fitted on,
    # a lower bound on temporal splits); the synth preset fixes it from a backtest where the rows
    # have not seen the latest period (bench/shrink_backtest.py).
    id_shrink: float = 0.0
    # Training: a known user's ID part is shrunk the same way with this kappa (0 = the row alone,
    # dropped to the bag with `user_id_dropout`), so the model is fitted to the vectors it serves.
    train_id_shrink: float = 0.0
    # Popularity blend (`recsys.runs.LoadedRun`, "Popularity blend"): score = <u, p> +
    # pop_weight * w(n) * z(p), w(n) = pop_half / (pop_half + n) (1 where pop_half = 0), n = posts of
    # the history the model reads. Chosen on valid after training (`training/blend.py`); 0 = off.
    pop_weight: float = 0.0
    pop_half: float = 0.0
    # Cold channel (`recsys.cold_channel`): a post without an ID row is scored by the user's vector
    # combined with `cold_scale` instead of `content_scale` on the user side, plus `cold_offset`:
    # score = <u_cold, p> + cold_offset. Chosen on valid after training (`training/cold.py`);
    # cold_scale 0 = off (every post is scored by the same user vector).
    cold_scale: float = 0.0
    cold_offset: float = 0.0
    # ... plus cold_key_weight * cos(the user's history key, the post's content key), the match of
    # item-based content kNN (`recsys.cold_channel`; chosen with cold_scale; 0 = none).
    cold_key_weight: float = 0.0
    cold_knn: int = 10  # a post without an ID row borrows the ID rows of its k nearest ID-row
    # posts by centred-latent cosine (softmax-weighted, `recsys.borrow`); 0 = content only
    # Training: a positive whose ID row is dropped (`post_id_dropout`) gets what a cold post gets at
    # inference, the ID rows borrowed from its `cold_knn` nearest ID-row posts (itself excluded,
    # `recsys.borrow`), instead of no ID part; False = no ID part. In-batch softmax or BPR with full
    # propagation only (training refuses the rest).
    borrow_dropped: bool = False
    mask_target_edges: bool = True  # propagate without the batch's own edges (no target leakage)
    # Content item-item graph (FREEDOM / LATTICE style, `item_graph`): each post's ID row also
    # receives the mean of the ID rows of its `item_knn` nearest posts by content (per modality,
    # cosine of the input features, averaged over modalities), frozen before training; 0 = off.
    # Built only for graphs trained with full propagation (O(N^2 D)); the cached mode ignores it.
    item_knn: int = 0
    item_graph_weight: float = 1.0
    # How training propagates the ID tables (module docstring, "Propagation during training"):
    # "full" | "cached" | "auto" = "cached" when the train graph has more than
    # `cached_above_edges` edges, else "full".
    propagation: str = "auto"
    cached_above_edges: int = 1_000_000
    refresh_steps: int = 500  # cached: steps between snapshots (plus one at the start of every epoch)

    def autoencoder(self) -> AutoencoderConfig:
        return AutoencoderConfig(
            modalities=tuple(tuple(m) for m in self.modalities),
            hidden=self.hidden,
            latent_dim=self.latent_dim,
            dropout=self.dropout,
            modality_dropout=self.modality_dropout,
            align_temperature=self.align_temperature,
        )

    def profile(self) -> UserProfileConfig:
        return UserProfileConfig(latent_dim=self.latent_dim, dim=self.dim, max_history=self.max_history, dropout=self.dropout)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["modalities"] = [list(m) for m in self.modalities]
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "ModelConfig":
        d = dict(d)
        d["modalities"] = tuple((str(n), int(k)) for n, k in d["modalities"])
        return cls(**d)


@dataclass
class Batch:
    users: torch.Tensor  # int64 (B,) user rows
    posts: torch.Tensor  # int64 (B,) positive post rows
    history: torch.Tensor  # int64 (B, L) post rows, -1 = padding, most recent last
    negatives: torch.Tensor | None = None  # int64 (B,) for BPR
    edge_idx: torch.Tensor | None = None  # int64 (B,) positions of the pairs in the train edge list


class Recommender(nn.Module):
    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.autoencoder = MultimodalAutoencoder(cfg.autoencoder())
        self.post_head = nn.Sequential(nn.Linear(cfg.latent_dim, cfg.dim), nn.GELU(), nn.Linear(cfg.dim, cfg.dim))
        self.profile = UserProfile(cfg.profile())
        n_authors = cfg.n_authors if (cfg.use_author and cfg.use_id) else 0
        self.ids = IdTables(cfg.n_users, cfg.n_posts, cfg.dim, n_authors=n_authors) if cfg.use_id else None
        # Training-graph state (buffers: saved with the checkpoint, rebuilt by `set_graph`).
        self.register_buffer("user_known", torch.zeros(cfg.n_users, dtype=torch.bool))
        self.register_buffer("post_known", torch.zeros(cfg.n_posts, dtype=torch.bool))
        self.register_buffer("log_q", torch.zeros(cfg.n_posts))
        self.user_count = torch.zeros(cfg.n_users)  # (U,) train interactions per user row (`set_graph`; train_id_shrink)
        if n_authors:  # author row of each post row (-1 = none) and which author rows were trained
            self.register_buffer("post_author", torch.full((cfg.n_posts,), -1, dtype=torch.int64))
            self.register_buffer("author_known", torch.zeros(n_authors, dtype=torch.bool))
        self.graph: TrainGraph | None = None  # train edges (`set_graph`; `recsys.graph`)
        self.adj: torch.Tensor | None = None  # their normalised adjacency (self.graph.adj)
        self.item_adj: SparseOperator | None = None  # content item-item graph (`set_item_graph`), training only
        self.mode = "full"  # training propagation actually used ("full" | "cached"), set by `set_graph`
        self._snap: dict[str, torch.Tensor] | None = None  # cached mode: delta_user, delta_post, latents

    # -- training graph -------------------------------------------------------------------
    def set_graph(self, users: torch.Tensor, posts: torch.Tensor, post_author: torch.Tensor | None = None) -> None:
        """Train edges (user rows, post rows), int64 (E,); post_author int64 (N,): author row of
        every post row, -1 = no author (needed when the model has an author table)."""
        cfg = self.cfg
        if hasattr(self, "post_author"):
            if post_author is None or len(post_author) != cfg.n_posts:
                raise ValueError(f"the model has an author table: set_graph needs post_author of shape ({cfg.n_posts},)")
            self.post_author.copy_(post_author)
            a = post_author[posts]
            self.author_known.copy_(torch.bincount(a[a >= 0], minlength=len(self.author_known))[: len(self.author_known)] > 0)
        self.user_count = torch.bincount(users, minlength=cfg.n_users)[: cfg.n_users].float()  # (U,) train interactions
        self.user_known.copy_(self.user_count > 0)
        cnt = torch.bincount(posts, minlength=cfg.n_posts)[: cfg.n_posts].float()
        self.post_known.copy_(cnt > 0)
        self.log_q.copy_(torch.log((cnt + 1) / (cnt.sum() + cfg.n_posts)))
        self.graph = TrainGraph(users, posts, cfg.n_users, cfg.n_posts) if cfg.graph_layers > 0 else None
        self.adj = self.graph.adj if self.graph is not None else None
        self.edges = (users, posts)
        self.mode = propagation_mode(cfg, len(users))
        if self.mode == "cached":  # D^-1/2 of every node, for the pair's own edge weight a_ui
            deg = torch.bincount(torch.cat([users, posts + cfg.n_users]), minlength=cfg.n_users + cfg.n_posts)
            self._dinv = deg.float().clamp_min(1).pow(-0.5)
        self._snap = None

    def set_item_graph(self, feats: dict[str, torch.Tensor], present: dict[str, torch.Tensor]) -> None:
        """Build the frozen content item-item graph from the input features (`item_knn` > 0)."""
        graph = item_graph(feats, present, self.cfg.item_knn) if self.ids is not None else None
        self.item_adj = SparseOperator(graph) if graph is not None else None

    def _propagate(self, adj: torch.Tensor | None, u: torch.Tensor, p: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """User-post propagation, plus the content item-item graph on the post rows."""
        pu, pp = propagate(adj, u, p, self.cfg.graph_layers)
        if self.item_adj is not None:
            pp = pp + self.cfg.item_graph_weight * (self.item_adj @ (p * self.post_known.unsqueeze(1)))  # untrained rows add nothing
        return pu, pp

    # -- cached propagation (training only) ----------------------------------------------------
    def before_step(self, step: int) -> None:
        """Called by the training loop before step `step` (0-based within the epoch): in cached
        mode, takes a fresh snapshot at the start of the epoch and every `refresh_steps` steps.
        Collective under DistributedModelParallel (every rank calls it at the same steps)."""
        if self.mode == "cached" and (step == 0 or step % max(1, self.cfg.refresh_steps) == 0 or self._snap is None):
            self.refresh_snapshot()

    @torch.no_grad()
    def refresh_snapshot(self, chunk: int = 1 << 16) -> None:
        """delta = propagate(E) - E over the whole train graph (user (U, d), post (N, d)) and the
        latents of every post (N, Z), without gradients; read in `chunk`-row pieces."""
        was = self.training
        self.eval()  # no dropout in the snapshot (history latents stand for the eval-time ones)
        snap: dict[str, torch.Tensor] = {}
        if self.ids is not None:
            u, p, _ = self.ids.all_rows(chunk)
            pu, pp = self._propagate(self.adj, u, p)
            snap["delta_user"], snap["delta_post"] = pu - u, pp - p
        self.train(was)
        self._snap = snap

    def _snapshot_latents(self, feats: dict[str, torch.Tensor], present: dict[str, torch.Tensor], chunk: int = 1 << 16) -> torch.Tensor:
        """Latents of every post (N, Z) as of the last snapshot (computed on first use after it)."""
        if self._snap is not None and "latents" not in self._snap:
            was = self.training
            self.eval()
            with torch.no_grad():
                n = len(next(iter(present.values())))
                self._snap["latents"] = torch.cat([
                    self.post_latents({m: x[s : s + chunk] for m, x in feats.items()}, {m: x[s : s + chunk] for m, x in present.items()})
                    for s in range(0, n, chunk)
                ])
            self.train(was)
        return self._snap["latents"]


    def id_rows(self, drop_edges: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None] | None:
        """ID tables: propagated user (U, d) and post (N, d) rows, author rows (A, d) or None
        (not propagated); zero rows where unknown.
        drop_edges: int64 positions in the train edge list to leave out of the graph."""
        if self.ids is None:
            return None
        u, p, a = self.ids.all_rows()
        if a is not None:
            a = a * self.author_known.unsqueeze(1)
        adj = self.adj
        if drop_edges is not None and adj is not None:
            adj = self.graph.without(drop_edges)  # the train graph without these edges (`recsys.graph`)
        u, p = self._propagate(adj, u, p)
        return u * self.user_known.unsqueeze(1), p * self.post_known.unsqueeze(1), a

    def author_part(self, author_rows: torch.Tensor | None, post_rows: torch.Tensor) -> torch.Tensor | float:
        """author_rows (A, d) from `id_rows` or None; post rows (B,) -> their authors' rows (B, d)
        (zeros for posts without a known author), or 0.0 without an author table."""
        if author_rows is None:
            return 0.0
        rows = self.post_author[post_rows]
        return author_rows[rows.clamp_min(0)] * (rows >= 0).unsqueeze(1)

    def combine(self, content: torch.Tensor, id_part: torch.Tensor, content_scale: float | None = None) -> torch.Tensor:
        """content_scale (the config's unless given) * content + id part (rows of zeros = no ID);
        with `part_norm` each part is L2-normalised first, so neither tower can swamp the other by
        growing its norm."""
        if self.cfg.part_norm:
            content, id_part = F.normalize(content, dim=-1), F.normalize(id_part, dim=-1)
        return (self.cfg.content_scale if content_scale is None else content_scale) * content + id_part

    def norm_post(self, v: torch.Tensor) -> torch.Tensor:
        return F.normalize(v, dim=-1) if self.cfg.normalize == "both" else v

    def norm_user(self, v: torch.Tensor) -> torch.Tensor:
        return F.normalize(v, dim=-1) if self.cfg.normalize in ("both", "user") else v

    # -- towers -------------------------------------------------------------------------------
    def post_latents(self, feats: dict[str, torch.Tensor], present: dict[str, torch.Tensor]) -> torch.Tensor:
        return self.autoencoder(feats, present).latent

    def content_vectors(self, latents: torch.Tensor) -> torch.Tensor:
        """latents (N, Z) -> un-normalised content part (N, d)."""
        return self.post_head(latents)

    def user_content(self, hist_latents: torch.Tensor, hist_mask: torch.Tensor) -> torch.Tensor:
        return self.profile(hist_latents, hist_mask)

    # -- full forward for training ----------------------------------------------------------
    def forward(self, batch: Batch, feats: dict[str, torch.Tensor], present: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Training forward = `losses` (so DistributedModelParallel / DDP wrap it)."""
        return self.losses(batch, feats, present)

    def plain_state_dict(self) -> dict[str, torch.Tensor]:
        """State dict with the ID tables as plain (rows, d) tensors, also when they are sharded
        (collective under DistributedModelParallel: call it on every rank)."""
        sd = {k: v for k, v in self.state_dict().items() if not k.startswith("ids.")}
        if self.ids is not None:
            with torch.no_grad():
                u, p, a = self.ids.all_rows()
            sd["ids.ebc.embedding_bags.user.weight"] = u.detach().clone()
            sd["ids.ebc.embedding_bags.post.weight"] = p.detach().clone()
            if a is not None:
                sd["ids.ebc.embedding_bags.author.weight"] = a.detach().clone()
        return {k: v.detach().cpu().clone() for k, v in sd.items()}

    def losses(self, batch: Batch, feats: dict[str, torch.Tensor], present: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """feats/present: every post of the training data (N rows). -> dict of loss terms + "loss"."""
        cfg = self.cfg
        if self.mode == "cached" and self.training:
            return self._cached_losses(batch, feats, present)
        ae_out = self.autoencoder(feats, present, decode=cfg.recon_weight > 0)
        latents = ae_out.latent  # (N, Z)
        content = self.content_vectors(latents)  # (N, d)
        hist = batch.history
        hmask = hist >= 0
        hist_lat = latents[hist.clamp_min(0)] * hmask.unsqueeze(-1)  # (B, L, Z)
        u_vec = self.user_content(hist_lat, hmask)  # (B, d)
        p_content = content[batch.posts]  # (B, d)
        p_vec = p_content
        drop = batch.edge_idx if (self.training and cfg.mask_target_edges) else None
        rows = self.id_rows(drop)
        neg_content = content[batch.negatives] if batch.negatives is not None else None
        neg_vec = neg_content
        if rows is not None:
            u_tab, p_tab, a_tab = rows
            u_id = u_tab[batch.users]
            u_id, bag = self._train_user_id(u_id, p_tab, hist, batch.users)
            drop_u = torch.rand(len(u_id), 1) < cfg.user_id_dropout if self.training else torch.zeros(len(u_id), 1, dtype=torch.bool)
            u_vec = self.combine(u_vec, torch.where(drop_u, bag, u_id))
            keep_p = (torch.rand(len(batch.posts), 1) >= cfg.post_id_dropout).float() if self.training else 1.0
            p_id = p_tab[batch.posts] * keep_p
            if self.training and cfg.borrow_dropped:
                p_id = p_id + self._borrowed_for_dropped(latents, p_tab, batch.posts, keep_p.squeeze(1) == 0)
            p_vec = self.combine(p_content, p_id + self.author_part(a_tab, batch.posts))
            if batch.negatives is not None:
                neg_vec = self.combine(neg_content, p_tab[batch.negatives] + self.author_part(a_tab, batch.negatives))
        u = self.norm_user(u_vec)
        if cfg.loss == "full":  # softmax over every post (small catalogues: no sampling bias)
            all_vec = content
            if rows is not None:
                keep = (torch.rand(len(content), 1) >= cfg.post_id_dropout).float() if self.training else 1.0
                all_vec = self.combine(content, rows[1] * keep + self.author_part(a_tab, torch.arange(len(content))))
            out = {"retrieval": self._full_softmax(u, self.norm_post(all_vec), batch)}
            if cfg.content_weight > 0 and rows is not None:
                out["content"] = self._full_softmax(u, self.norm_post(content), batch)
        else:
            out = {"retrieval": self._retrieval(u, self.norm_post(p_vec), batch, neg_vec)}
            if cfg.content_weight > 0 and rows is not None:
                out["content"] = self._retrieval(u, self.norm_post(p_content), batch, neg_content)
        return self._total(out, ae_out, torch.unique(batch.posts), feats)

    def _train_user_id(self, u_id: torch.Tensor, p_tab: torch.Tensor, hist: torch.Tensor, users: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Training's ID part of the batch's users and their history's ID bag: u_id (B, d) rows, p_tab
        post ID rows, hist (B, L) post rows of the history, users (B,) -> (u_id shrunk towards the
        bag with `train_id_shrink` as `user_parts` serves it (`shrink_id`), bag (B, d))."""
        bag, has_bag = id_bag(p_tab, hist)
        if self.cfg.train_id_shrink > 0:
            u_id = shrink_id(u_id, bag, has_bag, self.user_count[users], self.cfg.train_id_shrink)
        return u_id, bag

    def _borrowed_for_dropped(self, latents: torch.Tensor, p_tab: torch.Tensor, posts: torch.Tensor, dropped: torch.Tensor) -> torch.Tensor:
        """(B, d): for the `dropped` positives, the ID rows they would borrow as cold posts (keys
        from the current latents, centred on the ID-row posts', as `borrow_keys` exports them;
        itself excluded); zeros elsewhere. latents (N, Z), p_tab (N, d), posts int64 (B,)."""
        out = p_tab.new_zeros((len(posts), p_tab.shape[1]))
        idx = torch.nonzero(dropped).squeeze(1)
        if not len(idx):
            return out
        known = torch.nonzero(self.post_known).squeeze(1)  # (Np,) post rows with an ID row
        with torch.no_grad():
            keys = borrow_keys(latents[known])
            query = borrow_keys(latents[posts[idx]], keys["key_mean"])["post_keys"]
            pos = torch.full((len(self.post_known),), -1, dtype=torch.int64)
            pos[known] = torch.arange(len(known))
        rows = borrowed_rows(query, keys["post_keys"], p_tab[known], self.cfg.cold_knn, exclude=pos[posts[idx]])
        return out.index_put((idx,), rows)

    def _total(self, out: dict[str, torch.Tensor], ae_out, idx: torch.Tensor, feats: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Adds the autoencoder terms over the rows `idx` of `ae_out` / `feats` and the total."""
        cfg = self.cfg
        if cfg.recon_weight > 0 or cfg.align_weight > 0:
            sub = type(ae_out)(
                latent=ae_out.latent[idx],
                codes={k: v[idx] for k, v in ae_out.codes.items()},
                recon={k: v[idx] for k, v in ae_out.recon.items()},
                mask=ae_out.mask[idx],
            )
            ae = autoencoder_losses(self.autoencoder, sub, {k: v[idx] for k, v in feats.items()})
            out["recon"], out["align"] = ae["recon"], ae["align"]
        total = out["retrieval"]
        total = total + cfg.content_weight * out.get("content", 0.0)
        total = total + cfg.recon_weight * out.get("recon", 0.0) + cfg.align_weight * out.get("align", 0.0)
        out["loss"] = total
        return out

    def _cached_losses(self, batch: Batch, feats: dict[str, torch.Tensor], present: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """`losses` in cached mode: only the batch's rows and posts (module docstring)."""
        cfg = self.cfg
        B = len(batch.posts)
        snap_lat = self._snapshot_latents(feats, present)  # (N, Z), no gradient
        # posts encoded with gradients: the targets and negatives, P unique rows
        parts = [batch.posts] + ([batch.negatives] if batch.negatives is not None else [])
        enc, inv = torch.unique(torch.cat(parts), return_inverse=True)  # (P,), (B or 2B,)
        enc_feats = {m: x[enc] for m, x in feats.items()}  # (P, D_m)
        ae_out = self.autoencoder(enc_feats, {m: x[enc] for m, x in present.items()}, decode=cfg.recon_weight > 0)
        content = self.content_vectors(ae_out.latent)  # (P, d)
        pos_c = inv[:B]
        neg_c = inv[B:] if batch.negatives is not None else None
        hist = batch.history
        hmask = hist >= 0
        u_vec = self.user_content(snap_lat[hist.clamp_min(0)] * hmask.unsqueeze(-1), hmask)  # (B, d)
        p_content = content[pos_c]
        p_vec, neg_content = p_content, (content[neg_c] if neg_c is not None else None)
        neg_vec = neg_content
        if self.ids is not None:
            users_u, u_inv = torch.unique(batch.users, return_inverse=True)
            rows_p, p_inv = torch.unique(torch.cat([batch.posts, hist[hmask]] + parts[1:]), return_inverse=True)
            ids = {"user": users_u, "post": rows_p}
            a_of = self.post_author[rows_p] if hasattr(self, "post_author") and self.ids.n_authors else None
            if a_of is not None:
                authors_u, a_inv = torch.unique(a_of[a_of >= 0], return_inverse=True)
                ids["author"] = authors_u
            stride = B * (cfg.max_history + 2)  # fixed per batch size: the same KJT shape on every rank
            got = self.ids.lookup(ids, stride)
            snap = self._snap
            E_u, E_p = got["user"], got["post"]
            u_tab = (E_u + snap["delta_user"][users_u]) * self.user_known[users_u].unsqueeze(1)  # (Bu, d)
            p_tab = (E_p + snap["delta_post"][rows_p]) * self.post_known[rows_p].unsqueeze(1)  # (P', d)
            a_part = torch.zeros_like(p_tab)  # author row of each looked-up post (zeros: none / unknown)
            if a_of is not None:
                has = a_of >= 0
                a_part[has] = got["author"][a_inv] * self.author_known[authors_u][a_inv].unsqueeze(1)
            pos_r = p_inv[:B]
            hist_r = torch.full_like(hist, -1)
            hist_r[hmask] = p_inv[B : B + int(hmask.sum())]
            u_id, p_id = u_tab[u_inv], p_tab[pos_r]  # (B, d) each
            if cfg.mask_target_edges and self.adj is not None and cfg.graph_layers > 0:
                a_ui = (self._dinv[batch.users] * self._dinv[cfg.n_users + batch.posts]).unsqueeze(1) / (cfg.graph_layers + 1)
                u_id = u_id - a_ui * E_p[pos_r].detach()
                p_id = p_id - a_ui * E_u[u_inv].detach()
            u_id, bag = self._train_user_id(u_id, p_tab, hist_r, batch.users)
            drop_u = torch.rand(B, 1) < cfg.user_id_dropout
            u_vec = self.combine(u_vec, torch.where(drop_u, bag, u_id))
            keep_p = (torch.rand(B, 1) >= cfg.post_id_dropout).float()
            p_vec = self.combine(p_content, p_id * keep_p + a_part[pos_r])
            if neg_c is not None:
                neg_r = p_inv[B + int(hmask.sum()) :]
                neg_vec = self.combine(neg_content, p_tab[neg_r] + a_part[neg_r])
        u = self.norm_user(u_vec)
        out = {"retrieval": self._retrieval(u, self.norm_post(p_vec), batch, neg_vec)}
        if cfg.content_weight > 0 and self.ids is not None:
            out["content"] = self._retrieval(u, self.norm_post(p_content), batch, neg_content)
        return self._total(out, ae_out, torch.unique(pos_c), enc_feats)

    def _full_softmax(self, u: torch.Tensor, p_all: torch.Tensor, batch: Batch) -> torch.Tensor:
        """u normalised (B, d), p_all normalised (N, d)."""
        logits = u @ p_all.T / self.cfg.temperature  # (B, N)
        return F.cross_entropy(logits, batch.posts)

    def _retrieval(self, u: torch.Tensor, p: torch.Tensor, batch: Batch, neg: torch.Tensor | None) -> torch.Tensor:
        """u, p normalised (B, d)."""
        cfg = self.cfg
        t = cfg.temperature
        if cfg.loss == "bpr":
            assert neg is not None, "BPR needs negatives"
            pos = (u * p).sum(1) / t
            ng = (u * self.norm_post(neg)).sum(1) / t
            return F.softplus(ng - pos).mean()
        logits = u @ p.T / t  # (B, B)
        if cfg.logq:
            logits = logits - self.log_q[batch.posts].unsqueeze(0)
        same = batch.posts.unsqueeze(0) == batch.posts.unsqueeze(1)  # (B, B) duplicates of the positive
        eye = torch.eye(len(u), dtype=torch.bool, device=u.device)
        logits = logits.masked_fill(same & ~eye, -1e9)
        return F.cross_entropy(logits, torch.arange(len(u), device=u.device))

    # -- inference ------------------------------------------------------------------------------
    @torch.no_grad()
    def export(self, feats: dict[str, torch.Tensor], present: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Everything serving needs without the graph: latents (N, Z), propagated ID tables, and
        the author table (A, d) when there is one."""
        latents = self.post_latents(feats, present)
        out = {"latents": latents}
        rows = self.id_rows()
        if rows is not None:
            out["user_table"], out["post_table"], a = rows
            if a is not None:
                out["author_table"] = a
        return out


def propagation_mode(cfg: ModelConfig, n_edges: int) -> str:
    """The training propagation for a graph of `n_edges` train edges: "full" or "cached"."""
    mode = cfg.propagation
    if mode not in ("full", "cached", "auto"):
        raise ConfigError(f"propagation must be 'full', 'cached' or 'auto', got {mode!r}")
    if mode == "auto":
        mode = "cached" if n_edges > cfg.cached_above_edges else "full"
    if mode == "cached" and cfg.loss == "full":
        raise ConfigError("loss='full' scores every post each step; use propagation='full' with it (or loss='softmax')")
    return mode


def post_vectors(model: Recommender, latents: torch.Tensor, id_rows: torch.Tensor | None) -> torch.Tensor:
    """latents (N, Z), id_rows (N, d) or None (zero rows = no ID) -> normalised (N, d)."""
    v = model.content_vectors(latents)
    if id_rows is not None:
        v = model.combine(v, id_rows)
    return model.norm_post(v)


def shrink_id(u_id: torch.Tensor, bag: torch.Tensor, has_bag: torch.Tensor, n: torch.Tensor, kappa: float) -> torch.Tensor:
    """A known user's ID part leaning on their history's ID bag (`ModelConfig.id_shrink`):
    w unit(row) + (1 - w) unit(bag), w = n / (n + kappa); the row alone where the history has no
    ID row. u_id, bag (B, d); has_bag bool (B,); n float (B,) train interactions of each row."""
    n = n.float().unsqueeze(1)  # (B, 1)
    w = torch.where(has_bag.unsqueeze(1), n / (n + kappa), torch.ones_like(n))
    return w * F.normalize(u_id, dim=-1) + (1 - w) * F.normalize(bag, dim=-1)


def combine_user(model: Recommender, content: torch.Tensor, id_part: torch.Tensor | None, content_scale: float | None = None) -> torch.Tensor:
    """The parts of `user_parts` -> normalised user vectors (B, d), the content part weighted by
    `content_scale` (the config's unless given; the cold channel passes its own)."""
    v = content if id_part is None else model.combine(content, id_part, content_scale)
    return model.norm_user(v)


def user_parts(
    model: Recommender,
    hist_latents: torch.Tensor,
    hist_rows: torch.Tensor,
    user_rows: torch.Tensor,
    user_table: torch.Tensor | None,
    post_table: torch.Tensor | None,
    user_support: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor]:
    """The two parts of B user vectors, for `combine_user`.

    hist_latents (B, L, Z); hist_rows int64 (B, L): row in `post_table`, -1 = a post without an
    ID row (its latent still counts), -2 = padding; user_rows int64 (B,): row in `user_table` or
    -1 (then the ID part is the ID bag of the history); user_support float32 (Nu,): train
    interactions of each `user_table` row (needed when `id_shrink` > 0, see ModelConfig).
    -> (content (B, d), ID part (B, d) or None without ID tables, has_profile bool (B,))."""
    hmask = hist_rows > -2
    v = model.user_content(hist_latents * hmask.unsqueeze(-1), hmask)
    has = hmask.any(1)
    if user_table is not None and post_table is not None:
        known = user_rows >= 0
        u_id = user_table[user_rows.clamp_min(0)] * known.unsqueeze(1)
        bag, has_bag = id_bag(post_table, hist_rows)  # -2 and -1 both count as "no ID row"
        kappa = float(model.cfg.id_shrink)
        if kappa > 0:
            if user_support is None:
                raise ValueError("id_shrink > 0 needs each user row's train interactions (user_support)")
            u_id = shrink_id(u_id, bag, has_bag, user_support[user_rows.clamp_min(0)], kappa)
        return v, torch.where(known.unsqueeze(1), u_id, bag), has | known
    return v, None, has
