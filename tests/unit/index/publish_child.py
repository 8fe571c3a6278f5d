"""A real build-and-publish process for the kill -9 tests (tests/unit/index/test_crash_safety.py).

    python -m tests.unit.index.publish_child ROOT MATERIAL [--publishes N] [--kill-at PHASE:M]

Publishes N bundles (small seeded catalogues with their vectors from a real untrained model, all
prepared by `write_material` in MATERIAL so that this process needs no torch; real FAISS; keep=2
so every publish on a root that has two versions prunes one) under ROOT. With --kill-at PHASE:M the
process SIGKILLs itself right before the M-th filesystem step (a file saved, fsync, rename,
replace, unlink, rmdir) of the first PHASE it enters: `publish` (leftovers cleaned, bundle files
written, renamed into place, CURRENT swapped) or `prune`. (Building the FAISS index before that
takes no filesystem step: wall-clock kills cover it.)
It prints a line per phase entered and, when it finishes, `steps {phase: n}`: a run that exits
0 under --kill-at PHASE:M had fewer than M steps in that phase.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
from pathlib import Path

import numpy as np


Z, MAX_HISTORY = 8, 10


def write_material(out: Path, n_catalogues: int) -> Path:
    """A run dir (untrained model) and `n_catalogues` catalogues with its post vectors and queries."""
    import polars as pl

    from index.from_vectors import make_run, synthetic_catalogue
    from recsys.runs import load_run

    run = load_run(make_run(out / "run", Z, Z, max_history=MAX_HISTORY))
    for i in range(n_catalogues):
        cat, _ = synthetic_catalogue(400, Z, n_users=30, n_authors=10, seed=i, n_clusters=8, history_len=(3, 10))
        vectors = run.post_vectors(cat.latents, cat.post_ids)
        np.savez(out / f"cat{i}.npz", post_ids=cat.post_ids, author_ids=cat.author_ids, created_at_us=cat.created_at_us,
                 latents=cat.latents, vectors=vectors, popularity=cat.popularity, queries=vectors[:20])
        cat.histories.write_parquet(out / f"hist{i}.parquet")
    (out / "model.txt").write_text(run.fingerprint)
    assert pl  # histories are polars frames
    return out


def publish_from(material: Path, i: int, root: Path) -> Path:
    """Publish catalogue `i` of `material` under `root` (keep=2). Returns the bundle path."""
    import polars as pl

    from index.build import Catalogue, build_bundle

    a = np.load(material / f"cat{i}.npz")
    cat = Catalogue(post_ids=a["post_ids"], author_ids=a["author_ids"], created_at_us=a["created_at_us"],
                    latents=a["latents"], vectors=a["vectors"], popularity=a["popularity"],
                    histories=pl.read_parquet(material / f"hist{i}.parquet"))
    model = {"kind": "run", "fingerprint": (material / "model.txt").read_text(), "latent_dim": Z, "dim": Z,
             "max_history": MAX_HISTORY, "modalities": {"vec": Z}, "synthetic": True}
    path, _ = build_bundle(cat, a["queries"], root, factory="Flat", k=10, keep=2, model=model, run_dir=material / "run")
    return path


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser()
    p.add_argument("root", type=Path)
    p.add_argument("material", type=Path)
    p.add_argument("--publishes", type=int, default=2)
    p.add_argument("--kill-at", default=None, help="PHASE:M")
    p.add_argument("--first", type=int, default=2, help="first catalogue of MATERIAL to publish")
    a = p.parse_args(argv)

    from index import bundle as B

    kill_phase, kill_n = (a.kill_at.split(":")[0], int(a.kill_at.split(":")[1])) if a.kill_at else (None, 0)
    steps: dict[str, int] = {}
    phase = ["build"]
    done: set[str] = set()  # phases finished once (only the first of each is a kill target)

    def step() -> None:
        ph = phase[0]
        steps[ph] = steps.get(ph, 0) + 1
        if ph == kill_phase and ph not in done and steps[ph] == kill_n:
            os.kill(os.getpid(), signal.SIGKILL)

    def wrap(mod, name: str):
        real = getattr(mod, name)

        def f(*args, **kw):
            step()
            return real(*args, **kw)

        setattr(mod, name, f)

    for name in ("rename", "replace", "unlink", "rmdir", "fsync"):
        wrap(os, name)
    wrap(np, "save")
    # phase markers: publish = bundle files written and renamed into place, prune = old ones removed
    real_publish, real_prune = B._publish, B._prune

    def enter(name: str) -> None:
        if phase[0] != name:
            done.add(phase[0])
            phase[0] = name
            print(f"phase {name}", flush=True)

    def publish(*args, **kw):
        enter("publish")
        return real_publish(*args, **kw)

    def prune(*args, **kw):
        enter("prune")
        try:
            return real_prune(*args, **kw)
        finally:
            enter("build")

    B._publish, B._prune = publish, prune
    for i in range(a.first, a.first + a.publishes):
        publish_from(a.material, i, a.root)
    print(f"steps {steps}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
