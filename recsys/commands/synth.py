"""`recsys synth --out DIR [--size tiny|small|default|scale] [--seed N] [--users N] [--posts N] [--new-users FRAC]
[--string-ids] [--interactions N] [--force]`. `scale` is the media-free platform-scale generator
(`recsys.data.scale`: 1M posts, 100k users, 10M interactions, features from a topic model)."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from recsys.data.synth import SynthConfig, synthesize


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", type=Path, required=True, help="dataset directory to write (new or empty)")
    p.add_argument("--size", choices=(*SynthConfig.PRESETS, "scale"), default="default",
                   help="tiny (tests, ~1 s), small, default (the demo; encodes in a few minutes), "
                        "scale (no media: 1M posts / 100k users / 10M interactions with topic-model features, split)")
    p.add_argument("--seed", type=int, default=0, help="random seed (same seed -> identical dataset)")
    p.add_argument("--users", type=int, default=None, help="override the preset's number of users")
    p.add_argument("--posts", type=int, default=None, help="override the preset's number of posts")
    p.add_argument("--new-users", type=float, default=None, metavar="FRAC",
                   help="share of users who join during the last quarter of the window (valid / test), default 0.2")
    p.add_argument("--string-ids", action="store_true", help="users, posts and authors get string ids (UUIDs, slugs, handles)")
    p.add_argument("--interactions", type=int, default=None, help="--size scale: number of interactions")
    p.add_argument("--force", action="store_true", help="replace an existing dataset at --out")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    if args.size == "scale":
        return _run_scale(args)
    overrides = {}
    if args.users is not None:
        overrides["n_users"] = args.users
    if args.posts is not None:
        overrides["n_posts"] = args.posts
        overrides["n_authors"] = min(SynthConfig.preset(args.size).n_authors, args.posts)
    if args.new_users is not None:
        overrides["new_user_frac"] = args.new_users
    if args.string_ids:
        overrides["string_ids"] = True
    cfg = SynthConfig.preset(args.size, seed=args.seed, **overrides)
    t0 = time.perf_counter()
    ds = synthesize(args.out, cfg, progress=not args.no_progress, overwrite=args.force)
    posts, inter = ds.posts, ds.interactions
    n = len(posts)
    print(f"synthetic platform ({cfg.name}, seed {cfg.seed}) -> {args.out} in {time.perf_counter() - t0:.1f} s")
    print(f"  topics: {cfg.n_topics}  authors: {cfg.n_authors}  posts: {n:,}  users: {inter['user_id'].n_unique():,}  interactions: {len(inter):,}")
    print("  posts with text / image / video: "
          f"{n - posts['text'].null_count():,} / {n - posts['image_path'].null_count():,} / {n - posts['video_path'].null_count():,}")
    print(f"  interactions from {inter['ts'].min()} to {inter['ts'].max()}; hidden preferences in {args.out}/ground_truth/")
    return 0


def _run_scale(args: argparse.Namespace) -> int:
    from recsys.data.scale import ScaleConfig, synthesize_scale

    over = {"seed": args.seed}
    for flag, key in (("users", "n_users"), ("posts", "n_posts"), ("interactions", "n_interactions")):
        if getattr(args, flag) is not None:
            over[key] = getattr(args, flag)
    if "n_posts" in over:
        over["n_authors"] = max(ScaleConfig.n_topics, min(ScaleConfig.n_authors, over["n_posts"] // 20))
    cfg = ScaleConfig(**over)
    t0 = time.perf_counter()
    ds = synthesize_scale(args.out, cfg, overwrite=args.force)
    split = ds.meta.get("split", {}) if ds.meta else {}
    print(f"scale platform (seed {cfg.seed}) -> {args.out} in {time.perf_counter() - t0:.1f} s")
    print(f"  posts: {len(ds.posts):,}  users: {ds.interactions['user_id'].n_unique():,}  interactions: {len(ds.interactions):,}  "
          f"authors: {cfg.n_authors:,}  topics: {cfg.n_topics}  features: {', '.join(f'{m} {d}-d' for m, d in cfg.modalities)}")
    return 0
