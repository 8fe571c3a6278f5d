"""Real tiny inputs for the encoder tests: PIL-drawn JPEGs, MP4s written with PyAV, corrupt files,
and the pretrained encoders loaded once per session (CPU)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
import pytest
from PIL import Image, ImageDraw

from recsys.dataset import save_dataset

COLORS = {"red": (220, 30, 30), "green": (30, 180, 60), "blue": (30, 60, 220), "yellow": (240, 220, 40)}


def draw_image(kind: str = "circle", color: str = "red", size: tuple[int, int] = (160, 120), shift: int = 0) -> Image.Image:
    im = Image.new("RGB", size, (245, 245, 240))
    d = ImageDraw.Draw(im)
    w, h = size
    box = (w // 4 + shift, h // 4, 3 * w // 4 + shift, 3 * h // 4)
    if kind == "circle":
        d.ellipse(box, fill=COLORS[color])
    elif kind == "square":
        d.rectangle(box, fill=COLORS[color])
    else:  # stripes
        for x in range(0, w, 12):
            d.rectangle((x + shift, 0, x + shift + 5, h), fill=COLORS[color])
    return im


def write_jpeg(path: Path, **kw) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    draw_image(**kw).save(path, "JPEG", quality=90)
    return path


def write_mp4(path: Path, n_frames: int = 12, fps: int = 12, moving: bool = True, size=(96, 64), color="blue",
              lossless: bool = False) -> Path:
    """A real H.264 MP4: a square sliding right (moving) or standing still."""
    import av

    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w") as c:
        s = c.add_stream("libx264", rate=fps)
        s.width, s.height, s.pix_fmt = size[0], size[1], "yuv420p"
        s.options = {"preset": "ultrafast", "g": "4", **({"qp": "0"} if lossless else {})}
        for t in range(n_frames):
            im = draw_image("square", color, size, shift=(4 * t if moving else 0))
            for pkt in s.encode(av.VideoFrame.from_image(im)):
                c.mux(pkt)
        for pkt in s.encode():
            c.mux(pkt)
    return path


def write_corrupt_jpeg(path: Path) -> Path:
    """A real JPEG header followed by truncation + garbage."""
    good = write_jpeg(path.with_name("_good_" + path.name))
    raw = good.read_bytes()
    good.unlink()
    path.write_bytes(raw[: len(raw) // 3] + b"\x00garbage" * 8)
    return path


def write_corrupt_mp4(path: Path) -> Path:
    """Random bytes with an MP4-looking name (and a cut 'ftyp' header)."""
    rng = np.random.default_rng(0)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"\x00\x00\x00\x18ftypmp42" + rng.integers(0, 256, 4000, dtype=np.uint8).tobytes())
    return path


@pytest.fixture(scope="session")
def text_encoder():
    from recsys.encoders import build_encoder

    return build_encoder("text", device="cpu")


@pytest.fixture(scope="session")
def image_encoder():
    from recsys.encoders import build_encoder

    return build_encoder("image", device="cpu")


@pytest.fixture(scope="session")
def video_encoder(image_encoder):
    from recsys.encoders.base import parse_spec
    from recsys.encoders.video import VideoEncoder

    return VideoEncoder(parse_spec("video", "efficientnet-lite0,frames=3"), image_encoder=image_encoder)


TEXTS = [
    "A golden retriever puppy playing fetch in the park",
    "Quarterly earnings beat analyst expectations",
    "My dog loves running after balls on the grass",
    None,
    "Recipe: a quick tomato pasta for weeknights",
    "   ",
]


def make_dataset(root: Path) -> Path:
    """Six posts: text on 4, images on 4 (one corrupt, one missing), videos on 3 (one corrupt)."""
    media = root / "media"
    write_jpeg(media / "p1.jpg", kind="circle", color="red")
    write_jpeg(media / "p2.jpg", kind="square", color="green")
    write_corrupt_jpeg(media / "p3.jpg")
    write_jpeg(media / "p5.jpg", kind="stripes", color="blue")
    write_mp4(media / "v1.mp4", moving=True)
    write_mp4(media / "v2.mp4", moving=False, color="red")
    write_corrupt_mp4(media / "v4.mp4")
    posts = pl.DataFrame({
        "post_id": [1, 2, 3, 4, 5, 6],
        "author_id": [10, 10, 11, 11, 12, 12],
        "created_at": [None] * 6,
        "text": TEXTS,
        "image_path": ["media/p1.jpg", "media/p2.jpg", "media/p3.jpg", None, "media/p5.jpg", "media/gone.jpg"],
        "video_path": ["media/v1.mp4", "media/v2.mp4", None, "media/v4.mp4", None, None],
    }).with_columns(pl.col("created_at").cast(pl.Datetime("us", "UTC")))
    inter = pl.DataFrame({
        "user_id": [1, 1, 2],
        "post_id": [1, 2, 5],
        "ts": [None] * 3,
        "event": ["like"] * 3,
        "weight": [1.0] * 3,
    }).with_columns(pl.col("ts").cast(pl.Datetime("us", "UTC")))
    save_dataset(root, posts, inter)
    return root
