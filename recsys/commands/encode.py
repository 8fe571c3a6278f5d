"""`recsys encode --data DIR [--modality M ...] [--encoder M=SPEC ...] [--config FILE.json]`.

    recsys encode --data data/synth
    recsys encode --data data/synth --encoder text=hf:/models/my-bert --encoder image=hf-vision:/models/clip
    recsys encode --data data/synth --encoder video=efficientnet-lite0,frames=16 --force

The config file is JSON: {"encoders": {"text": "minilm", "video": {"image": "efficientnet-lite0",
"frames": 8}}, "batch_size": 32, "modalities": ["text", "image"]} (or just the encoders mapping).
Flags override the file.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from recsys.errors import ConfigError
from recsys.io import read_json

MODALITIES = ("text", "image", "video")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data", type=Path, required=True, help="dataset directory (posts.parquet, media files)")
    p.add_argument("--modality", action="append", choices=MODALITIES, default=None,
                   help="modality to encode (repeatable; default: every modality some post has content for)")
    p.add_argument("--encoder", action="append", default=[], metavar="MODALITY=SPEC",
                   help="encoder spec, e.g. text=minilm, text=hf:/path/ckpt, image=efficientnet-lite0, "
                        "image=hf-vision:/path/ckpt, video=efficientnet-lite0,frames=8 (repeatable)")
    p.add_argument("--config", type=Path, default=None, help="JSON file with encoders / batch_size / modalities")
    p.add_argument("--frames", type=int, default=None, help="frames sampled per video (default 8)")
    p.add_argument("--batch-size", type=int, default=None, help="posts per forward pass (videos: this // frames)")
    p.add_argument("--device", default=None, help="cpu or cuda (default: cuda when available)")
    p.add_argument("--force", action="store_true",
                   help="re-encode every post, ignoring the existing store; also replaces imported feature stores")
    p.add_argument("--checkpoint-every", type=float, default=60.0, metavar="SECONDS",
                   help="checkpoint progress this often so an interrupted run resumes (default 60; 0 = every batch)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.add_argument("--json", action="store_true", help="print the report as JSON")


def _parse_encoder_flags(flags: list[str]) -> dict[str, str]:
    out = {}
    for f in flags:
        m, sep, spec = f.partition("=")
        m = m.strip()
        if not sep or m not in MODALITIES or not spec.strip():
            raise ConfigError(f"--encoder must look like MODALITY=SPEC with MODALITY in {list(MODALITIES)}, got {f!r}")
        out[m] = spec.strip()
    return out


def run(args: argparse.Namespace) -> int:
    from recsys.encode import encode_dataset

    cfg = read_json(args.config) if args.config else {}
    if not isinstance(cfg, dict):
        raise ConfigError(f"{args.config}: expected a JSON object, got {type(cfg).__name__}")
    encoders = dict(cfg.get("encoders", {} if {"batch_size", "modalities"} & set(cfg) else cfg))
    encoders.update(_parse_encoder_flags(args.encoder))
    if args.frames is not None:
        video = encoders.get("video", "efficientnet-lite0")
        if isinstance(video, dict):
            video = {**video, "frames": args.frames}
        else:
            from recsys.encoders.base import parse_spec

            s = parse_spec("video", video)
            video = {"kind": s.kind, "path": s.path, **dict(s.options), "frames": args.frames}
        encoders["video"] = video
    modalities = args.modality or cfg.get("modalities")
    batch_size = args.batch_size if args.batch_size is not None else cfg.get("batch_size")
    report = encode_dataset(
        args.data, modalities=modalities, encoders=encoders, batch_size=batch_size,
        progress=not args.no_progress, device=args.device, force=args.force,
        checkpoint_every_s=args.checkpoint_every,
    )
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    print(f"encoded {report['n_posts']:,} posts of {args.data} on {report['device']} in {report['seconds']:.1f} s")
    if not report["modalities"]:
        print("  nothing to encode: no post has text, image or video content")
    for m, r in report["modalities"].items():
        speed = f", {r['posts_per_s']:.1f} posts/s" if r["posts_per_s"] else ""
        speed += f", {r['resumed']:,} resumed from a checkpoint" if r.get("resumed") else ""
        print(
            f"  {m:<5} {r['dim']:>5}-d  {r['encoded']:>6,} encoded  {r['reused']:>6,} reused  "
            f"{r['absent']:>6,} absent  {r['failed']:>4,} failed  {r['seconds']:7.1f} s{speed}   [{r['encoder']}]"
        )
    failed = sum(r["failed"] for r in report["modalities"].values())
    if failed:
        print(f"  {failed} file(s) missing or undecodable: marked absent (see warnings above); "
              f"they are retried when the file changes, or with --force")
    return 0
