"""The bundle's interest clusters: analyse a catalogue with the previous bundle's clusters in hand.

    a = bundle_analysis(out_root, inputs, events, vectors=...)   # -> recsys.analysis.store.Analysis

The previous bundle (CURRENT under `out_root`, if it has an `analysis/`) provides the cluster ids
to keep (recsys.analysis.clusters.match_ids), so a trend or a profile can be followed across
rebuilds. The analysis is written into the new bundle's `analysis/` by `index.bundle.publish`.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import polars as pl

from index import bundle as B
from recsys.analysis.build import Inputs, analyse, inputs_from_run
from recsys.analysis.store import Analysis, read_analysis
from recsys.errors import ArtifactError, RecsysError

logger = logging.getLogger(__name__)


def previous_analysis(out_root: Path) -> Analysis | None:
    """The CURRENT bundle's analysis under `out_root`, or None (no bundle, none in it, unreadable)."""
    try:
        d = B.resolve(out_root) / B.ANALYSIS_DIR
    except RecsysError:
        return None
    if not d.is_dir():
        return None
    try:
        return read_analysis(d)
    except ArtifactError as e:
        logger.warning("previous bundle's analysis is unreadable, cluster ids start afresh: %s", e)
        return None


def bundle_analysis(out_root: Path, inputs: Inputs, events: pl.DataFrame, vectors: np.ndarray | None = None,
                    k: int | None = None, seed: int = 0) -> Analysis:
    prev = previous_analysis(out_root)
    return analyse(inputs, events, vectors=vectors, previous=prev,
                   previous_space=prev.info.get("space") if prev is not None else None, k=k, seed=seed)


def run_analysis(out_root: Path, run, ds, feats, post_ids: np.ndarray, latents: np.ndarray, vectors: np.ndarray) -> Analysis:
    """`recsys build-index`'s call: the run's latents, the dataset's texts and interactions."""
    inputs = inputs_from_run(run, ds, feats, post_ids, latents)
    return bundle_analysis(out_root, inputs, ds.interactions.select("post_id", "ts"), vectors=vectors)
