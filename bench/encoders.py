"""Encoder throughput on this machine: posts/s per modality on generated inputs.

    .venv/bin/python bench/encoders.py                      # 256 texts, 64 JPEGs, 12 MP4s
    .venv/bin/python bench/encoders.py --texts 1024 --images 256 --videos 32 --threads 8
    .venv/bin/python bench/encoders.py --data data/synth    # + end-to-end `encode_dataset --force`

Inputs are written to a temp folder first (seeded): captions of 8-60 words, PIL-drawn JPEG photos
(default 640x480) and H.264 MP4s written with PyAV (default 5 s, 320x240, 24 fps). Model loading
and one warm-up batch are excluded from the timed pass; decoding is included.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

WORDS = (
    "the a my our new best day night city beach dog cat food coffee music game team goal win lost "
    "love summer winter travel trip photo video tutorial recipe pasta street art design build code "
    "market price launch review quick easy morning workout run ride mountain lake sunset friends "
    "family party dance song guitar learn school study book movie series episode fan live show"
).split()


def make_texts(n: int, rng: np.random.Generator) -> list[str]:
    return [" ".join(rng.choice(WORDS, size=int(rng.integers(8, 61)))) for _ in range(n)]


def make_jpegs(folder: Path, n: int, size: tuple[int, int], rng: np.random.Generator) -> list[Path]:
    from PIL import Image, ImageDraw, ImageFilter

    out = []
    for i in range(n):
        noise = rng.integers(0, 256, (size[1] // 8, size[0] // 8, 3), dtype=np.uint8)
        im = Image.fromarray(noise).resize(size, Image.BILINEAR)  # smooth colour field
        d = ImageDraw.Draw(im)
        for _ in range(6):
            x0, y0 = int(rng.integers(0, size[0])), int(rng.integers(0, size[1]))
            x1, y1 = x0 + int(rng.integers(20, size[0] // 2)), y0 + int(rng.integers(20, size[1] // 2))
            col = tuple(int(c) for c in rng.integers(0, 256, 3))
            (d.ellipse if rng.random() < 0.5 else d.rectangle)((x0, y0, x1, y1), fill=col)
        p = folder / f"img_{i:05d}.jpg"
        im.filter(ImageFilter.GaussianBlur(1)).save(p, "JPEG", quality=88)
        out.append(p)
    return out


def make_mp4s(folder: Path, n: int, seconds: float, size: tuple[int, int], fps: int, rng: np.random.Generator) -> list[Path]:
    import av
    from PIL import Image, ImageDraw

    out = []
    for i in range(n):
        p = folder / f"vid_{i:05d}.mp4"
        bg = tuple(int(c) for c in rng.integers(0, 256, 3))
        fg = tuple(int(c) for c in rng.integers(0, 256, 3))
        speed = rng.uniform(1, 6)
        with av.open(str(p), "w") as c:
            s = c.add_stream("libx264", rate=fps)
            s.width, s.height, s.pix_fmt = size[0], size[1], "yuv420p"
            s.options = {"preset": "veryfast", "g": str(2 * fps)}
            for t in range(int(seconds * fps)):
                im = Image.new("RGB", size, bg)
                x = int(t * speed) % size[0]
                ImageDraw.Draw(im).ellipse((x, size[1] // 4, x + size[1] // 2, 3 * size[1] // 4), fill=fg)
                for pkt in s.encode(av.VideoFrame.from_image(im)):
                    c.mux(pkt)
            for pkt in s.encode():
                c.mux(pkt)
        out.append(p)
    return out


def _timed(fn, items: list, batch: int) -> tuple[float, int]:
    fn(items[:batch])  # warm-up
    t = time.perf_counter()
    ok = 0
    for s in range(0, len(items), batch):
        ok += int(fn(items[s : s + batch]).present.sum())
    return time.perf_counter() - t, ok


def _size(s: str) -> tuple[int, int]:
    w, h = s.lower().split("x")
    return int(w), int(h)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--texts", type=int, default=256)
    p.add_argument("--images", type=int, default=64)
    p.add_argument("--videos", type=int, default=12)
    p.add_argument("--frames", type=int, default=8)
    p.add_argument("--image-size", type=_size, default=(640, 480), help="WxH of generated JPEGs")
    p.add_argument("--video-size", type=_size, default=(320, 240), help="WxH of generated MP4s")
    p.add_argument("--video-seconds", type=float, default=5.0)
    p.add_argument("--fps", type=int, default=24)
    p.add_argument("--batch-text", type=int, default=64)
    p.add_argument("--batch-image", type=int, default=32)
    p.add_argument("--batch-video", type=int, default=4)
    p.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (default: torch's choice)")
    p.add_argument("--device", default=None, help="cpu / cuda (default: cuda when available)")
    p.add_argument("--data", type=Path, default=None, help="also time encode_dataset(force=True) on a copy of this dataset")
    p.add_argument("--json", action="store_true")
    args = p.parse_args(argv)

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TQDM_DISABLE", "1")
    import torch

    from recsys.encode import build_encoders

    if args.threads:
        torch.set_num_threads(args.threads)
    rng = np.random.default_rng(0)
    results: dict = {
        "machine": f"{platform.machine()} {os.cpu_count()} cpu, torch {torch.__version__}, {torch.get_num_threads()} threads",
        "modalities": {},
    }
    with tempfile.TemporaryDirectory(prefix="bench_enc_") as tmp:
        tmp = Path(tmp)
        t = time.perf_counter()
        texts = sorted(make_texts(args.texts, rng), key=len)  # encode_dataset batches texts by length too
        images = make_jpegs(tmp, args.images, args.image_size, rng) if args.images else []
        videos = make_mp4s(tmp, args.videos, args.video_seconds, args.video_size, args.fps, rng) if args.videos else []
        gen_s = time.perf_counter() - t

        mods = [m for m, n in (("text", args.texts), ("image", args.images), ("video", args.videos)) if n]
        t = time.perf_counter()
        encs = build_encoders({"video": f"efficientnet-lite0,frames={args.frames}"}, mods, device=args.device)
        load_s = time.perf_counter() - t
        from recsys.encoders.base import default_device

        results["device"] = args.device or default_device()
        results["load_seconds"] = round(load_s, 2)
        plan = {
            "text": (encs.get("text") and encs["text"].encode_texts, texts, args.batch_text, "captions of 8-60 words"),
            "image": (encs.get("image") and encs["image"].encode_images, images, args.batch_image,
                      f"JPEG {args.image_size[0]}x{args.image_size[1]}"),
            "video": (encs.get("video") and encs["video"].encode_videos, videos, args.batch_video,
                      f"MP4 {args.video_seconds:g}s {args.video_size[0]}x{args.video_size[1]} {args.fps}fps, {args.frames} frames"),
        }
        for m in mods:
            fn, items, batch, what = plan[m]
            secs, ok = _timed(fn, items, batch)
            results["modalities"][m] = {
                "n": len(items), "ok": ok, "batch": batch, "seconds": round(secs, 3),
                "posts_per_s": round(len(items) / secs, 2), "inputs": what,
            }
        if args.data is not None:
            import shutil

            from recsys.encode import encode_dataset

            copy = tmp / "dataset"
            shutil.copytree(args.data, copy)
            t = time.perf_counter()
            rep = encode_dataset(copy, encoders=encs, progress=False, force=True)
            results["dataset"] = {
                "path": str(args.data), "seconds": round(time.perf_counter() - t, 2),
                "modalities": {m: {k: r[k] for k in ("encoded", "failed", "posts_per_s")} for m, r in rep["modalities"].items()},
            }
    if args.json:
        print(json.dumps(results, indent=2))
        return 0
    print(f"encoder throughput | {results['machine']} | device {results['device']}")
    print(f"  (inputs generated in {gen_s:.1f} s, models loaded in {load_s:.1f} s; both excluded)")
    for m, r in results["modalities"].items():
        print(f"  {m:<5} {r['posts_per_s']:9.1f} posts/s   {r['n']:>5} posts in {r['seconds']:7.2f} s  batch {r['batch']:>3}  [{r['inputs']}]")
    if "dataset" in results:
        d = results["dataset"]
        per = ", ".join(f"{m} {v['posts_per_s']} posts/s" for m, v in d["modalities"].items())
        print(f"  encode_dataset({d['path']}, force=True): {d['seconds']} s ({per})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
