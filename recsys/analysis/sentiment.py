"""Post sentiment: VADER on text, a small head on the fused latent for posts without text.

    scores = vader_scores(texts)                       # float32 (N,) compound in [-1, 1], NaN = no text
    head, report = fit_head(latents_no_text[has], scores[has], clusters[has])
    pred = head.predict(latents_no_text[~has])         # only when report["kept"]

VADER (vaderSentiment, a rule-based lexicon model) ships its lexicon inside the package and reads
it from the package directory: nothing is downloaded at run time (tests/unit/analysis check this
with sockets disabled). Its compound score is in [-1, 1]; by its authors' convention >= 0.05 is
positive and <= -0.05 negative.

The head: ridge regression from the latent (Z) to the VADER score, trained on text posts. It is
fit on latents computed *without* the text modality, so it learns what the other modalities (and
the shared space) say about tone, as it will see posts without text. Its held-out agreement is
compared with the simplest alternative, the mean score of the post's cluster; when the head is
not better (lower MAE on the held-out posts), it is dropped and posts without text get their
cluster's mean.

Shapes: N posts, Z latent dim.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

logger = logging.getLogger(__name__)

NEUTRAL = 0.05  # VADER's own threshold between neutral and positive / negative
RIDGE_LAMBDAS = (0.1, 1.0, 10.0, 100.0, 1000.0)
SOURCES = ("text", "head", "cluster", "none")  # where a post's score came from


@lru_cache(maxsize=1)
def _analyzer():
    from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

    return SentimentIntensityAnalyzer()


def vader_scores(texts: list[str | None]) -> np.ndarray:
    """VADER compound score of each text -> float32 (N,) in [-1, 1]; NaN where the text is None
    or empty."""
    a = _analyzer()
    out = np.full(len(texts), np.nan, np.float32)
    for i, t in enumerate(texts):
        if t is not None and t.strip():
            out[i] = a.polarity_scores(t)["compound"]
    return out


def polarity(scores: np.ndarray, neutral: float = NEUTRAL) -> np.ndarray:
    """float scores -> int8 (N,): -1 negative, 0 neutral, +1 positive."""
    s = np.asarray(scores, np.float64)
    return np.where(s >= neutral, 1, np.where(s <= -neutral, -1, 0)).astype(np.int8)


def agreement(pred: np.ndarray, target: np.ndarray, pred_neutral: float = NEUTRAL,
              target_neutral: float = NEUTRAL) -> dict[str, float]:
    """How well `pred` follows `target` (both float (n,)): mae, pearson, and the share of posts
    whose polarity (neg / neu / pos, each side with its own neutral band) agrees."""
    p, t = np.asarray(pred, np.float64), np.asarray(target, np.float64)
    if len(p) == 0:
        return {"n": 0, "mae": float("nan"), "pearson": float("nan"), "polarity_agreement": float("nan")}
    corr = float(np.corrcoef(p, t)[0, 1]) if len(p) > 1 and p.std() > 0 and t.std() > 0 else 0.0
    agree = float((polarity(p, pred_neutral) == polarity(t, target_neutral)).mean())
    return {"n": int(len(p)), "mae": float(np.abs(p - t).mean()), "pearson": round(corr, 4), "polarity_agreement": round(agree, 4)}


def cluster_means(scores: np.ndarray, clusters: np.ndarray, k: int) -> np.ndarray:
    """float32 (k,) mean of the non-NaN `scores` per cluster (the overall mean for a cluster
    with none)."""
    ok = ~np.isnan(scores)
    overall = float(scores[ok].mean()) if ok.any() else 0.0
    s = np.bincount(clusters[ok], weights=scores[ok], minlength=k)
    n = np.bincount(clusters[ok], minlength=k)
    return np.where(n > 0, s / np.maximum(n, 1), overall).astype(np.float32)


@dataclass
class SentimentHead:
    """Ridge regression latent -> score, on standardised inputs."""

    mean: np.ndarray  # float32 (Z,)
    scale: np.ndarray  # float32 (Z,)
    weight: np.ndarray  # float32 (Z,)
    bias: float
    lam: float

    def predict(self, latents: np.ndarray) -> np.ndarray:
        """latents float32 (n, Z) -> float32 (n,) clipped to [-1, 1]."""
        x = (np.asarray(latents, np.float32) - self.mean) / self.scale
        return np.clip(x @ self.weight + self.bias, -1.0, 1.0).astype(np.float32)


def _ridge(x: np.ndarray, y: np.ndarray, lam: float) -> tuple[np.ndarray, float]:
    xm, ym = x.mean(0), y.mean()
    xc = x - xm
    w = np.linalg.solve(xc.T @ xc + lam * np.eye(x.shape[1]), xc.T @ (y - ym))
    return w, float(ym - xm @ w)


def fit_head(latents: np.ndarray, scores: np.ndarray, clusters: np.ndarray, k: int, seed: int = 0,
             holdout: float = 0.2, min_posts: int = 20) -> tuple[SentimentHead | None, dict]:
    """Fit the head on text posts and decide whether to keep it.

    latents float32 (n, Z) (text posts, ideally encoded without their text), scores float32 (n,)
    VADER scores, clusters int64 (n,) their clusters (for the cluster-mean baseline).
    Returns (head or None, report): report["kept"], held-out agreement of the head and of the
    cluster mean (both against VADER), sizes, the chosen ridge lambda. With fewer than
    `min_posts` text posts nothing is fit (kept False)."""
    n = len(scores)
    report: dict = {"n_text_posts": int(n), "kept": False}
    if n < min_posts:
        report["reason"] = f"only {n} text posts (< {min_posts})"
        return None, report
    rng = np.random.default_rng(seed)
    perm = rng.permutation(n)
    n_test = max(1, int(round(holdout * n)))
    test, train = perm[:n_test], perm[n_test:]
    x = np.asarray(latents, np.float64)
    mean, scale = x[train].mean(0), x[train].std(0) + 1e-6
    xs = (x - mean) / scale
    # lambda on an inner split of train
    inner = max(1, len(train) // 5)
    fit_i, val_i = train[inner:], train[:inner]

    def val_mae(lam: float) -> float:
        w, b = _ridge(xs[fit_i], scores[fit_i], lam)
        return float(np.abs(xs[val_i] @ w + b - scores[val_i]).mean())

    best = min(RIDGE_LAMBDAS, key=val_mae)
    w, b = _ridge(xs[train], scores[train].astype(np.float64), best)
    head = SentimentHead(mean.astype(np.float32), scale.astype(np.float32), w.astype(np.float32), b, best)
    pred = head.predict(x[test])
    train_scores = np.full(n, np.nan, np.float32)
    train_scores[train] = scores[train]
    base = cluster_means(train_scores, clusters, k)[clusters[test]]  # the alternative: the cluster's mean
    h, c = agreement(pred, scores[test]), agreement(base, scores[test])
    kept = h["mae"] < c["mae"]
    report.update(kept=bool(kept), lam=best, n_train=int(len(train)), n_heldout=int(n_test),
                  heldout={"head": h, "cluster_mean": c})
    logger.info("sentiment head: held-out MAE %.3f vs cluster mean %.3f -> %s", h["mae"], c["mae"],
                "kept" if kept else "dropped")
    return (head if kept else None), report


def post_sentiment(texts: list[str | None], clusters: np.ndarray, k: int, head_latents: np.ndarray | None = None,
                   seed: int = 0) -> tuple[np.ndarray, np.ndarray, dict]:
    """Every post's sentiment.

    texts (N,), clusters int64 (N,), head_latents float32 (N, Z) latents computed without the text
    modality (None: no head, posts without text get their cluster's mean).
    Returns (score float32 (N,), source (N,) str in SOURCES, report)."""
    scores = vader_scores(texts)
    has = ~np.isnan(scores)
    source = np.where(has, "text", "none").astype(object)
    report: dict = {"model": "vaderSentiment 3.3.2 compound", "n_text": int(has.sum()), "n_without_text": int((~has).sum())}
    head = None
    if not has.any():
        report["head"] = {"kept": False, "reason": "no post has text: nothing to learn tone from"}
    elif head_latents is not None:
        head, report["head"] = fit_head(head_latents[has], scores[has], clusters[has], k, seed=seed)
    else:
        report["head"] = {"kept": False, "reason": "no latents without text (no trained run)"}
    out = scores.copy()
    miss = ~has
    if miss.any() and has.any():
        if head is not None:
            out[miss] = head.predict(head_latents[miss])
            source[miss] = "head"
        else:
            out[miss] = cluster_means(scores, clusters, k)[clusters[miss]]
            source[miss] = "cluster"
    out[np.isnan(out)] = 0.0
    return out.astype(np.float32), source.astype(str), report
