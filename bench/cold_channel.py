"""The cold channel's choice (`recsys.cold_channel`, chosen on valid by `training/cold.py`) with
test beside valid, for runs trained without it or with it (the run is scored with the channel off
as the base; a run with the popularity blend is scored without it):

    .venv/bin/python bench/cold_channel.py --data D --run R0 [--run R1 ...]

Prints, per run, the choice valid makes (the training rule); stage 1's (lam, beta) by the valid
recall@20 of cold posts ranked among themselves, with test's beside; and stage 2's offsets in the
order valid tried them: valid and test recall@20, overall and on cold posts. Read valid to choose;
test is a diagnostic.
"""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

from recsys.dataset import load_dataset
from recsys.interactions import build_interaction_data
from recsys.runs import load_run, scorer_from_run
from training.cold import FIRST, choose_cold_channel, score_points


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, required=True)
    ap.add_argument("--run", type=Path, action="append", required=True)
    args = ap.parse_args()
    ds = load_dataset(args.data)
    data = build_interaction_data(ds)
    for run_dir in args.run:
        run = load_run(run_dir)
        served = dict(cold_scale=run.model.cfg.cold_scale, cold_key_weight=run.cold_key_weight, cold_offset=run.model.cfg.cold_offset,
                      pop_weight=run.pop_weight)
        run.model.cfg = dataclasses.replace(run.model.cfg, cold_scale=0.0, cold_offset=0.0, cold_key_weight=0.0, pop_weight=0.0)
        run.config = {**run.config, "pop_weight": 0.0}
        scorer = scorer_from_run(run, ds, data)
        ch = choose_cold_channel(run, scorer, data)
        s = float(run.model.cfg.content_scale)
        print(f"{run_dir}: served {served}; valid chooses cold_scale {ch['cold_scale']:g} cold_key_weight {ch['cold_key_weight']:g} "
              f"cold_offset {ch['cold_offset']:g} (stage 2's best {ch['best']}, one standard error {ch['se']})", flush=True)
        first = [(lam / s, b, FIRST + b) for lam, b, _ in ch["order"]]
        for (lam, b, v), (_, t) in zip(ch["order"], score_points(run, scorer, data, "test", first)):
            print(f"  order lam {lam:.4f} beta {b:g}: valid cold-among-cold {v:.4f} | test {t['buckets']['items']['cold']['recall@20'] or 0.0:.4f}", flush=True)
        place = [(lam / s, b, c) for lam, b, c, _, _ in ch["grid"]]
        for (lam, b, c, v, vc), (_, t) in zip(ch["grid"], score_points(run, scorer, data, "test", place)):
            print(f"  place lam {lam:.4f} beta {b:g} c {c:+.4f}: valid {v:.4f} cold {vc:.4f} | test {t['metrics']['recall@20']:.4f} "
                  f"cold {t['buckets']['items']['cold']['recall@20'] or 0.0:.4f}", flush=True)


if __name__ == "__main__":
    main()
