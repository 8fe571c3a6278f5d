"""Recall gate: approximate vs exact search on held-out queries, and tuning of nprobe / efSearch.

recall@K compares id sets with ties allowed: a returned row counts as correct when its exact score
is >= the K-th exact score minus `eps` (so two posts with equal scores are interchangeable).

Shapes: N posts, d dim, Q queries, K top-k.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field

import faiss
import numpy as np

from index import faiss_index as fi

logger = logging.getLogger(__name__)


def exact_topk(vectors: np.ndarray, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Brute force: (scores float32 (Q, K), rows int64 (Q, K)) over vectors float32 (N, d)."""
    flat = faiss.IndexFlatIP(vectors.shape[1])
    flat.add(np.ascontiguousarray(vectors, dtype=np.float32))
    return flat.search(np.ascontiguousarray(queries, dtype=np.float32), min(k, len(vectors)))


def recall_at_k(
    rows: np.ndarray, vectors: np.ndarray, queries: np.ndarray, exact_scores: np.ndarray, k: int, eps: float = 1e-5
) -> float:
    """Mean over queries of |{returned rows with exact score >= K-th exact score - eps}| / K.

    rows int64 (Q, >=K) from the approximate index (-1 = nothing); exact_scores float32 (Q, K)."""
    k = min(k, exact_scores.shape[1])
    rows = rows[:, :k]
    kth = exact_scores[:, k - 1]  # (Q,)
    valid = rows >= 0
    safe = np.where(valid, rows, 0)
    true_scores = np.einsum("qkd,qd->qk", vectors[safe], queries)  # exact score of each returned row
    tol = eps * np.maximum(1.0, np.abs(kth))[:, None]
    hit = valid & (true_scores >= kth[:, None] - tol)
    # a row returned twice must not count twice
    hits = [len(set(r[h].tolist())) for r, h in zip(rows, hit)]
    return float(np.mean(hits) / k)


@dataclass
class GateResult:
    param_name: str | None
    param_value: int | None
    recall: float
    k: int
    n_queries: int
    latency_ms_p50: float
    latency_ms_p99: float
    tried: list[dict] = field(default_factory=list)
    passed: bool = True

    def to_json(self) -> dict:
        return dict(self.__dict__)


def latency_ms(index: faiss.Index, queries: np.ndarray, k: int, value: int | None, n: int = 200) -> tuple[float, float]:
    """p50 / p99 single-query search latency in ms (one query per call, as serving does)."""
    qs = np.ascontiguousarray(queries[: min(n, len(queries))], dtype=np.float32)
    times = []
    for i in range(len(qs)):
        t0 = time.perf_counter()
        fi.search(index, qs[i : i + 1], k, value)
        times.append((time.perf_counter() - t0) * 1e3)
    if not times:
        return 0.0, 0.0
    return float(np.percentile(times, 50)), float(np.percentile(times, 99))


def tune(
    index: faiss.Index,
    vectors: np.ndarray,
    queries: np.ndarray,
    k: int = 100,
    target: float = 0.95,
    max_value: int | None = None,
) -> GateResult:
    """Raise nprobe / efSearch until recall@k >= target (or the candidates run out).

    `max_value` caps the knob (a test uses it to make a deliberately bad index). The result says
    whether the target was reached; `build` refuses to publish when it was not."""
    k = min(k, len(vectors))
    ex_scores, _ = exact_topk(vectors, queries, k)
    name = fi.search_param_name(index)
    candidates = fi.search_param_candidates(index, k) or [None]
    if max_value is not None and name is not None:
        candidates = [v for v in candidates if v <= max_value] or [min(max_value, candidates[0])]
    tried = []
    chosen, rec = candidates[-1], 0.0
    for v in candidates:
        _, rows = fi.search(index, queries, k, v)
        rec = recall_at_k(rows, vectors, queries, ex_scores, k)
        tried.append({"value": v, "recall": round(rec, 5)})
        logger.info("recall gate: %s=%s recall@%d=%.4f", name, v, k, rec)
        chosen = v
        if rec >= target:
            break
    p50, p99 = latency_ms(index, queries, k, chosen)
    return GateResult(
        param_name=name, param_value=chosen, recall=rec, k=k, n_queries=len(queries),
        latency_ms_p50=p50, latency_ms_p99=p99, tried=tried, passed=rec >= target,
    )
