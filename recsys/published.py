"""Published and reference figures to print beside ours (data only).

Provenance: ../shared/data/tiktok/README.md, which copies Table 1 (TikTok column) of the DiffMM
paper (Jiang et al., "DiffMM: Multi-Modal Diffusion Model for Recommendation", 2024; code
HKUDS/DiffMM @ fae20e642aeeaad4284be6f7fb3432ebb551da8e). Caveat from that README: DiffMM's script
selects the epoch on TEST and the models used 768-d text features we do not have, so a
validation-selected figure without text is held to a stricter standard.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

TIKTOK_PUBLISHED_SOURCE = (
    "DiffMM paper, Table 1, TikTok column (via ../shared/data/tiktok/README.md); "
    "selected on test, with text features"
)
# model -> (Recall@20, Precision@20, NDCG@20)
TIKTOK_PUBLISHED: dict[str, tuple[float, float, float]] = {
    "MF-BPR": (0.0346, 0.0017, 0.0130),
    "NGCF": (0.0604, 0.0030, 0.0238),
    "LightGCN": (0.0653, 0.0033, 0.0282),
    "SGL": (0.0603, 0.0030, 0.0238),
    "NCL": (0.0658, 0.0034, 0.0269),
    "HCCF": (0.0662, 0.0029, 0.0267),
    "VBPR": (0.0380, 0.0018, 0.0134),
    "LGCN-M": (0.0679, 0.0034, 0.0273),
    "MMGCN": (0.0730, 0.0036, 0.0307),
    "GRCN": (0.0804, 0.0036, 0.0350),
    "LATTICE": (0.0843, 0.0042, 0.0367),
    "CLCRec": (0.0621, 0.0032, 0.0264),
    "MMGCL": (0.0799, 0.0037, 0.0326),
    "SLMRec": (0.0845, 0.0042, 0.0353),
    "BM3": (0.0957, 0.0048, 0.0404),
    "MMSSL": (0.0921, 0.0046, 0.0392),
    "DiffMM": (0.1129, 0.0056, 0.0456),
}
# Figures measured with this project's protocol (valid-selected, test reported), same README.
TIKTOK_REFERENCE_SOURCE = "../shared/data/tiktok/README.md (this protocol: selected on valid, reported on test)"
TIKTOK_REFERENCE: dict[str, tuple[float, float | None, float]] = {
    "most-popular": (0.0597, None, 0.0255),
    "LightGCN (tuned)": (0.0822, None, 0.0360),
}
# Published after DiffMM on the same split (same README, "Published after DiffMM"): selected on
# validation, with text features. Recall@20, Precision@20 (not reported), NDCG@20.
TIKTOK_LATER_SOURCE = "../shared/data/tiktok/README.md, 'Published after DiffMM' (MMHCL, ACM TOMM 2025: selected on valid, with text features)"
TIKTOK_LATER: dict[str, tuple[float, float | None, float]] = {
    "MMHCL": (0.1139, None, 0.0492),
}
K = 20


def is_tiktok(meta: dict[str, Any]) -> bool:
    """The DiffMM TikTok dataset: named "tiktok", or imported from a diffmm folder named tiktok."""
    if str(meta.get("name", "")).lower() == "tiktok":
        return True
    src = meta.get("source") or {}
    return src.get("format") == "diffmm" and Path(str(src.get("path", ""))).name.lower() == "tiktok"


def published_for(meta: dict[str, Any], split: str) -> dict[str, Any] | None:
    """Rows to show beside ours, or None. Published figures are test figures: test split only."""
    if split != "test" or not is_tiktok(meta):
        return None
    keys = (f"recall@{K}", f"precision@{K}", f"ndcg@{K}")
    return {
        "k": K,
        "published": {"source": TIKTOK_PUBLISHED_SOURCE, "rows": {m: dict(zip(keys, v)) for m, v in TIKTOK_PUBLISHED.items()}},
        "reference": {"source": TIKTOK_REFERENCE_SOURCE, "rows": {m: dict(zip(keys, v)) for m, v in TIKTOK_REFERENCE.items()}},
        "later": {"source": TIKTOK_LATER_SOURCE, "rows": {m: dict(zip(keys, v)) for m, v in TIKTOK_LATER.items()}},
    }
