"""`recsys train`: train the multimodal autoencoder + user profile model into a run directory.

    recsys train --data DIR --out RUN_DIR [--preset tiny|default] [--set key=value ...] [--resume]
    torchrun --nproc_per_node 2 -m training.cli --data DIR --out RUN_DIR   (ID tables sharded)
"""

from __future__ import annotations

import argparse
import logging
import sys


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data", required=True, help="dataset directory (with splits and a feature store)")
    p.add_argument("--out", required=True, help="run directory to create (or resume)")
    p.add_argument("--preset", default="default", help="tiny | default (default: %(default)s)")
    p.add_argument(
        "--set", dest="overrides", nargs="+", action="extend", default=[], metavar="KEY=VALUE",
        help="override config keys, e.g. --set epochs=10 modalities=image recon_weight=0 use_id=false loss=bpr",
    )
    p.add_argument("--resume", action="store_true", help="continue from RUN_DIR/checkpoint.pt")
    p.add_argument("--seed", type=int, default=None, help="random seed (default: the preset's)")


def _quiet_libraries() -> None:
    """torchrec's planner and fbgemm log pages at INFO; keep the epoch lines readable (and our
    own INFO lines, the progress lines among them, which the quiet root would hide)."""
    for name in ("torchrec", "root", "fbgemm_gpu"):
        logging.getLogger(name).setLevel(logging.WARNING)
    for name in ("training", "recsys"):
        if logging.getLogger(name).level == logging.NOTSET:  # `recsys train` (-v) sets its own
            logging.getLogger(name).setLevel(logging.INFO)


def run(args: argparse.Namespace) -> int:
    from training.train import TrainConfig, train

    _quiet_libraries()

    kw = {"data": args.data, "out": args.out, "resume": args.resume}
    if args.seed is not None:
        kw["seed"] = args.seed
    cfg = TrainConfig.preset(args.preset, **kw).with_overrides(args.overrides)
    train(cfg)
    return 0


def main(argv: list[str] | None = None) -> int:
    """Entry point for `python -m training.cli` (used under torchrun)."""
    from recsys.errors import RecsysError

    p = argparse.ArgumentParser(prog="python -m training.cli", description=__doc__.splitlines()[0])
    add_arguments(p)
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s", datefmt="%H:%M:%S")
    _quiet_libraries()
    try:
        return run(args)
    except RecsysError as e:
        print(f"train: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
