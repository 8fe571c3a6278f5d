"""Why a post is in a feed: its closest history post and the modality that weighed most.

Shape legend: K recommended posts, L history posts, d retrieval dim, Z latent / code dim,
M content modalities.

**Closest history post** (the `why` post, computed by the serving state beside its cached history
latents): the history post whose autoencoder latent has the highest cosine with the item's.

**Dominant modality** (`dominant_modality`), in two steps:

1. ID or content. The score is <u, p>. With the model's defaults (`part_norm`, vectors
   normalised: see recsys/model.py) a post vector is  p = (s * c^ + i^) / lam,  c^ the unit
   content part (post head of the latent), i^ the unit ID part (zero for a post without one),
   s = content_scale and lam = ||s * c^ + i^||. So the score splits exactly into a content term
   t_c = (s / lam) <u, c^> and an ID term t_i = <u, p> - t_c (`id_share`). lam follows from p
   and c^ alone: ||lam p - s c^|| = 1 gives  lam = s <p, c^> + sqrt(1 - s^2 + s^2 <p, c^>^2)
   (and lam = s when p = c^: no ID part). The ID share is |t_i| / (|t_c| + |t_i|); the post is
   there "because of its ID" (who interacted with it, who wrote it) when that share exceeds 1/2.
2. Otherwise, which content modality: each present modality of the post has its own code (the
   autoencoder's single-modality encoder output, before fusion; the codes of one post are aligned
   across modalities by the InfoNCE term, so they live in one space). The dominant modality is the
   one whose code has the highest cosine with the history post's content (the mean of its present
   codes, normalised): the part of the recommended post that matches what the user engaged with.

A post with no stored codes (added online, or a bundle built without them) gets "content" when
the model has several modalities, or the single modality's name.
"""

from __future__ import annotations

import numpy as np

ID = "id"
CONTENT = "content"
_EPS = 1e-12


def id_share(query: np.ndarray, vectors: np.ndarray, content: np.ndarray, content_scale: float,
             extra_content: np.ndarray | None = None) -> np.ndarray:
    """Share of each score <query, vectors[k]> that comes from the post's ID part (module docstring).

    query float32 (d,) user vector, or (K, d) one per post (the cold channel scores cold posts by
    another user vector, `recsys.cold_channel`); vectors float32 (K, d) unit post vectors; content
    float32 (K, d) the posts' content parts before normalisation (post head of the latent);
    content_scale = s (the post side's); extra_content float32 (K,) or None: content terms of the
    score outside <query, vectors> (the cold channel's content-key match). -> float32 (K,) in
    [0, 1] (0 for posts without an ID part)."""
    s = np.float32(content_scale)
    p, c = vectors, content
    u = np.broadcast_to(np.asarray(query, np.float32), p.shape)  # (K, d)
    cn = np.sqrt(np.einsum("kd,kd->k", c, c)) + _EPS  # (K,) |c|
    pc = np.einsum("kd,kd->k", p, c) / cn  # (K,) <p, c^>
    no_id = pc > 1 - 1e-6  # p = c^: |p - c^|^2 = 2 - 2 <p, c^> (both unit)
    lam = np.where(no_id, s, s * pc + np.sqrt(np.maximum(1 - s * s + (s * pc) ** 2, 0)))
    t_c = (s / np.maximum(lam, _EPS)) * np.einsum("kd,kd->k", c, u) / cn  # content term of <u, p>
    t_i = np.where(no_id, 0, np.einsum("kd,kd->k", p, u) - t_c)  # ID term
    if extra_content is not None:
        t_c = t_c + np.asarray(extra_content, np.float32)
    a_i = np.abs(t_i)
    return (a_i / (np.abs(t_c) + a_i + _EPS)).astype(np.float32)


def content_modality(item_codes: np.ndarray, hist_codes: np.ndarray, names: list[str]) -> list[str]:
    """The content modality of each post whose code is closest to its history post's content.

    item_codes float (K, M, Z), hist_codes float (K, M, Z) (the codes of each item's closest history
    post); an all-zero code = modality absent. -> K names; CONTENT where the item or its history
    post has no code."""
    ic, hc = np.asarray(item_codes, np.float32), np.asarray(hist_codes, np.float32)
    n_i = np.sqrt(np.einsum("kmz,kmz->km", ic, ic))  # (K, M); 0 = absent
    n_h = np.sqrt(np.einsum("kmz,kmz->km", hc, hc))
    h = np.einsum("kmz,km->kz", hc, 1 / np.maximum(n_h, _EPS))  # (K, Z) sum of the unit present codes
    sims = np.einsum("kmz,kz->km", ic, h) / np.maximum(n_i, _EPS)  # cosine up to a positive factor per row
    sims[n_i == 0] = -np.inf
    ok = (n_i > 0).any(1) & (n_h > 0).any(1)
    return [names[b] if o else CONTENT for b, o in zip(sims.argmax(1).tolist(), ok.tolist())]


def dominant_modality(shares: np.ndarray, content: list[str]) -> list[str]:
    """ID where the ID share of the score exceeds 1/2 (NaN share: undecided, content wins), else the
    content modality. shares float (K,), content: K names (`content_modality`)."""
    return [ID if sh > 0.5 else m for sh, m in zip(np.asarray(shares, np.float64).tolist(), content)]


def modality_codes(run, feats: dict[str, np.ndarray], present: dict[str, np.ndarray]) -> np.ndarray:
    """The single-modality codes of N posts: float16 (N, M, Z) in the order of `run.modalities`,
    zeros where a modality is absent. `run` is a recsys.runs.LoadedRun; feats / present as for
    its `post_latents` (stored beside the latents in a bundle, for `content_modality`); an
    ensemble run's (`recsys.ensemble`) are its members' codes side by side, like its latents."""
    import torch

    if hasattr(run, "members"):
        return np.concatenate([modality_codes(m, feats, present) for m in run.members], axis=2)
    names = list(run.modalities)
    n = next(len(v) for v in (*feats.values(), *present.values()) if v is not None)
    out = np.zeros((n, len(names), run.latent_dim), np.float16)
    enc = run.model.autoencoder.encoders
    with torch.no_grad():
        for j, m in enumerate(names):
            if feats.get(m) is None:
                continue
            ok = np.asarray(present.get(m, np.ones(n, bool)), bool).reshape(n)
            if ok.any():
                x = torch.from_numpy(np.asarray(feats[m], np.float32).reshape(n, -1)[ok])
                out[ok, j] = enc[m](x).numpy().astype(np.float16)
    return out


def catalogue_codes(run, features: dict, post_ids: np.ndarray, chunk: int = 8192) -> np.ndarray:
    """`modality_codes` of `post_ids` int64 (N,) from a feature store {modality:
    recsys.features.ModalityFeatures}, in bounded chunks -> float16 (N, M, Z)."""
    usable = [m for m in run.modalities if m in features]
    out = [np.zeros((0, len(run.modalities), run.latent_dim), np.float16)]
    for s in range(0, len(post_ids), chunk):
        ids = np.asarray(post_ids[s : s + chunk], np.int64)
        f, p = {}, {}
        for m in usable:
            f[m], p[m] = features[m].aligned(ids)
        out.append(modality_codes(run, f, p) if usable else np.zeros((len(ids), len(run.modalities), run.latent_dim), np.float16))
    return np.concatenate(out)
