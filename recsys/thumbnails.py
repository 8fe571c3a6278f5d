"""Small JPEG thumbnails of post media (the web page's video posters, the offline gallery)."""

from __future__ import annotations

import io
import logging
from pathlib import Path

logger = logging.getLogger(__name__)

VIDEO_EXT = {".mp4", ".webm", ".mov", ".m4v", ".mkv", ".avi"}


def thumbnail(path: Path, px: int = 360, quality: int = 85) -> bytes | None:
    """JPEG bytes of the image at `path`, or of a frame of the video there (the middle one,
    recsys.encoders.video.sample_frames), fitted in px x px; None when it cannot be decoded."""
    from PIL import Image

    from recsys.encoders.image import DecodeError

    path = Path(path)
    try:
        if path.suffix.lower() in VIDEO_EXT:
            from recsys.encoders.video import sample_frames

            img = sample_frames(path, 1)[0]
        else:
            img = Image.open(path)
            img.load()
        img = img.convert("RGB")
        img.thumbnail((px, px))
        buf = io.BytesIO()
        img.save(buf, "JPEG", quality=quality)
        return buf.getvalue()
    except (DecodeError, OSError, ValueError) as e:
        logger.info("no thumbnail for %s: %s", path, e)
        return None
