"""Post side: a multimodal autoencoder that turns per-modality content features into one latent.

Shape legend: B posts in a batch, M modalities, D_m input dim of modality m, H hidden width,
Z latent width.

    x_m float32 (B, D_m), present_m bool (B,)
      -> standardise (train-set mean/std, buffers) -> LayerNorm -> MLP -> code_m (B, Z)
      -> masked attention fusion over the present modalities -> latent (B, Z)
      -> decoder_m(latent) -> x_m_hat (B, D_m)   (reconstruction on present modalities)

Training terms (see `autoencoder_losses`):
  - reconstruction: MSE between the standardised input and its reconstruction, on present
    modalities only (with modality dropout the latent must rebuild a dropped modality from the
    others, which ties the modalities together);
  - alignment: symmetric InfoNCE between the codes of two modalities of the same post (the
    diagonal is the positive), which makes the per-modality codes live in one shared space.

A post with one modality still gets a latent; an absent modality never changes the output
(its attention weight is exactly zero). A post with no modality gets a zero latent.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F


@dataclass(frozen=True)
class AutoencoderConfig:
    modalities: tuple[tuple[str, int], ...]  # ((name, input dim), ...), sorted by name
    hidden: int = 256
    latent_dim: int = 64
    dropout: float = 0.1
    modality_dropout: float = 0.2  # prob. of hiding a present modality (never the last one)
    align_temperature: float = 0.2

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(n for n, _ in self.modalities)


class ModalityEncoder(nn.Module):
    """x float32 (B, D) raw features -> code (B, Z). Standardisation stats are buffers set once
    from the training features (`set_stats`), so the checkpoint carries them."""

    def __init__(self, dim: int, hidden: int, latent: int, dropout: float) -> None:
        super().__init__()
        self.register_buffer("mean", torch.zeros(dim))
        self.register_buffer("std", torch.ones(dim))
        self.net = nn.Sequential(
            nn.LayerNorm(dim),
            nn.Linear(dim, hidden),
            nn.GELU(),
            nn.Dropout(dropout),
            nn.Linear(hidden, latent),
        )

    @torch.no_grad()
    def set_stats(self, x: torch.Tensor) -> None:
        """x: float32 (P, D) features of the present rows."""
        if len(x) > 1:
            self.mean.copy_(x.mean(0))
            self.std.copy_(x.std(0).clamp_min(1e-3))

    def standardise(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) / self.std

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(self.standardise(x))


class ModalityDecoder(nn.Module):
    """latent (B, Z) -> standardised reconstruction (B, D)."""

    def __init__(self, latent: int, hidden: int, dim: int) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(latent, hidden), nn.GELU(), nn.Linear(hidden, dim))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z)


class MaskedFusion(nn.Module):
    """Attention over the present modality codes: codes (B, M, Z), mask bool (B, M) -> (B, Z).
    Rows with no present modality give zeros."""

    def __init__(self, latent: int, n_modalities: int) -> None:
        super().__init__()
        self.key = nn.Linear(latent, latent)
        self.query = nn.Parameter(torch.zeros(latent))
        self.modality_bias = nn.Parameter(torch.zeros(n_modalities))
        self.out = nn.LayerNorm(latent)

    def forward(self, codes: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        logits = torch.tanh(self.key(codes)) @ self.query + self.modality_bias  # (B, M)
        logits = logits.masked_fill(~mask, -1e9)
        w = torch.softmax(logits, dim=1) * mask  # exactly 0 on absent modalities
        w = w / w.sum(1, keepdim=True).clamp_min(1e-12)
        fused = (w.unsqueeze(-1) * codes).sum(1)  # (B, Z)
        any_present = mask.any(1, keepdim=True)
        return torch.where(any_present, self.out(fused), torch.zeros_like(fused))


@dataclass
class AutoencoderOutput:
    latent: torch.Tensor  # (B, Z)
    codes: dict[str, torch.Tensor]  # name -> (B, Z)
    recon: dict[str, torch.Tensor]  # name -> (B, D_m) standardised space
    mask: torch.Tensor  # (B, M) bool, presence after modality dropout


class MultimodalAutoencoder(nn.Module):
    def __init__(self, cfg: AutoencoderConfig) -> None:
        super().__init__()
        if not cfg.modalities:
            raise ValueError("the autoencoder needs at least one modality")
        self.cfg = cfg
        self.encoders = nn.ModuleDict({n: ModalityEncoder(d, cfg.hidden, cfg.latent_dim, cfg.dropout) for n, d in cfg.modalities})
        self.decoders = nn.ModuleDict({n: ModalityDecoder(cfg.latent_dim, cfg.hidden, d) for n, d in cfg.modalities})
        self.fusion = MaskedFusion(cfg.latent_dim, len(cfg.modalities))

    def presence(self, present: dict[str, torch.Tensor], batch: int, device: torch.device) -> torch.Tensor:
        """Dict of bool (B,) -> (B, M) bool; a modality missing from the dict is absent."""
        cols = [present.get(n, torch.zeros(batch, dtype=torch.bool, device=device)).to(device) for n in self.cfg.names]
        return torch.stack(cols, 1)

    def drop_modalities(self, mask: torch.Tensor) -> torch.Tensor:
        """Hide each present modality with prob. `modality_dropout`, keeping >= 1 per post."""
        p = self.cfg.modality_dropout
        if not self.training or p <= 0 or mask.shape[1] < 2:
            return mask
        keep = (torch.rand(mask.shape, device=mask.device) >= p) & mask
        empty = ~keep.any(1) & mask.any(1)
        if empty.any():  # restore one random present modality for posts that lost all of them
            r = torch.rand(mask.shape, device=mask.device).masked_fill(~mask, -1.0)
            pick = F.one_hot(r.argmax(1), mask.shape[1]).bool()
            keep = torch.where(empty.unsqueeze(1), pick, keep)
        return keep

    def forward(self, feats: dict[str, torch.Tensor], present: dict[str, torch.Tensor], decode: bool = False) -> AutoencoderOutput:
        """feats: name -> float32 (B, D_m) raw features; present: name -> bool (B,)."""
        first = next(iter(feats.values())) if feats else None
        batch = len(first) if first is not None else len(next(iter(present.values())))
        device = self.fusion.query.device
        mask = self.presence(present, batch, device)  # (B, M)
        fuse_mask = self.drop_modalities(mask)
        codes = {}
        for n in self.cfg.names:
            x = feats.get(n)
            if x is None:
                x = torch.zeros(batch, self.encoders[n].mean.shape[0], device=device)
            codes[n] = self.encoders[n](x.to(device))
        stacked = torch.stack([codes[n] for n in self.cfg.names], 1)  # (B, M, Z)
        latent = self.fusion(stacked, fuse_mask)
        recon = {n: self.decoders[n](latent) for n in self.cfg.names} if decode else {}
        return AutoencoderOutput(latent=latent, codes=codes, recon=recon, mask=mask)

    def targets(self, feats: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Standardised inputs: the reconstruction targets."""
        return {n: self.encoders[n].standardise(x) for n, x in feats.items() if n in self.encoders}


def info_nce(a: torch.Tensor, b: torch.Tensor, temperature: float) -> torch.Tensor:
    """Symmetric InfoNCE; a, b float32 (P, Z), row i of a matches row i of b."""
    a, b = F.normalize(a, dim=-1), F.normalize(b, dim=-1)
    logits = a @ b.T / temperature  # (P, P)
    labels = torch.arange(len(a), device=a.device)
    return 0.5 * (F.cross_entropy(logits, labels) + F.cross_entropy(logits.T, labels))


def autoencoder_losses(
    model: MultimodalAutoencoder, out: AutoencoderOutput, feats: dict[str, torch.Tensor]
) -> dict[str, torch.Tensor]:
    """{"recon": mean MSE over present modalities, "align": mean InfoNCE over modality pairs}."""
    names = model.cfg.names
    zero = out.latent.new_zeros(())
    targets = model.targets(feats)
    recon_terms = []
    for j, n in enumerate(names):
        rows = out.mask[:, j]
        if n in out.recon and n in targets and rows.any():
            recon_terms.append(F.mse_loss(out.recon[n][rows], targets[n][rows]))
    align_terms = []
    for i in range(len(names)):
        for j in range(i + 1, len(names)):
            rows = out.mask[:, i] & out.mask[:, j]
            if rows.sum() > 1:
                align_terms.append(info_nce(out.codes[names[i]][rows], out.codes[names[j]][rows], model.cfg.align_temperature))
    return {
        "recon": torch.stack(recon_terms).mean() if recon_terms else zero,
        "align": torch.stack(align_terms).mean() if align_terms else zero,
    }
