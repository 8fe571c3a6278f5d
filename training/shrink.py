"""Choose `id_shrink` (recsys.model.ModelConfig) of a trained run on VALID: a known user's ID part
is w unit(ID row) + (1 - w) unit(ID bag of their history), w = n / (n + kappa), n = the row's
train interactions.

Why: a row fitted on one or two interactions is a noisy estimate of the user; the ID rows of the
posts they engaged with (the bag) are fitted on every user of those posts. How far to trust the
row is chosen here on valid, per dataset, never on test.

What valid can show: there the user's history is train, the data the rows were fitted on, so
valid measures the shrinkage as a regulariser only. That is the whole story where test is scored
from the same history (fixed-protocol benchmarks such as TikTok). On temporal splits test is
scored from train + valid, which the rows have not seen: more shrinkage pays there, and valid's
choice is a lower bound (`bench/shrink_backtest.py` chooses it on the platform moved one period
back; the synth preset fixes it from there and does not choose here).
"""

from __future__ import annotations

import dataclasses
import logging

logger = logging.getLogger(__name__)

KAPPAS = (0.0, 0.5, 1.0, 2.0, 5.0, 10.0, 20.0)  # kappa: train interactions at which row and bag weigh alike


def score_kappas(run, scorer, data, split: str, kappas=KAPPAS, ks=(20,)):
    """For each kappa of `kappas`: (kappa, `recsys.evaluation.evaluate` result on `split`) of
    `scorer` (a `recsys.runs.RunScorer` of `run`) with `run.model.cfg.id_shrink` = kappa. Post
    vectors do not depend on kappa: only the user vectors are recomputed. `run.model.cfg` is left
    as it was."""
    from recsys.evaluation import evaluate
    from recsys.runs import RunScorer

    if run.user_support is None:
        raise ValueError(f"{run.run_dir}: scoring id_shrink needs the run's user_support (train interactions per user row)")
    cfg = run.model.cfg
    try:
        for kappa in kappas:
            run.model.cfg = dataclasses.replace(cfg, id_shrink=float(kappa))
            fresh = RunScorer(scorer.name, run, data, scorer.latents, scorer.posts.numpy(), scorer.histories)  # user vectors of this kappa
            yield float(kappa), evaluate(fresh.for_history(data.history_for(split), split), data, split, ks=ks)
    finally:
        run.model.cfg = cfg


def choose_id_shrink(run, scorer, data, kappas=KAPPAS) -> dict:
    """Grid of kappa scored by valid recall@20 of `scorer` (a `recsys.runs.RunScorer` of `run`)
    -> {"id_shrink", "valid_recall@20", "grid": [[kappa, recall], ...]}. Ties keep the smaller
    kappa (0, the row alone, wins unless shrinking helps). `run.model.cfg` is left as it was."""
    grid, best = [], None
    for kappa, res in score_kappas(run, scorer, data, "valid", kappas):
        r = float(res["metrics"]["recall@20"])
        grid.append([kappa, round(r, 6)])
        if best is None or r > best[1] + 1e-12:
            best = (kappa, r)
    logger.info("id_shrink on valid: kappa=%s recall@20 %.4f (kappa=0: %.4f)", best[0], best[1], grid[0][1])
    return {"id_shrink": best[0], "valid_recall@20": best[1], "grid": grid}
