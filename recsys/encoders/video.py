"""Video encoder: PyAV decode, uniform frame sampling, per-frame image features, temporal pooling.

    frames (T, default 8) sampled at the centres of T equal time segments
    per-frame features f: (T, D) from the image encoder (EfficientNet-Lite0: D = 1280)
    video vector = concat(mean_t f_t, mean_t |f_{t+1} - f_t|)  -> (2 D,)  (2560 for Lite0)

The second half is a motion signal: zero for a still video. Frames are turned upright using the
display-matrix rotation (phone videos). A video with one decodable frame has
zero motion. A file that cannot be opened or yields no frame comes back absent with the reason.
Short clips are decoded sequentially (stopping after the last sampled frame); long ones seek.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from recsys.encoders.base import EncodeOutput, EncoderSpec
from recsys.encoders.image import DecodeError, _decode_pool, build_image_encoder

logger = logging.getLogger(__name__)

SEEK_ABOVE_S = 20.0  # videos longer than this are sampled by seeking instead of decoding through


def sample_frames(path: Path, n: int, seek_above_s: float = SEEK_ABOVE_S) -> list[Image.Image]:
    """Decode `n` frames uniformly spread over the video at `path` -> n RGB PIL images (a frame
    repeats when the video has fewer than n). Raises DecodeError with a short reason."""
    import av

    path = Path(path)
    if not path.is_file():
        raise DecodeError("missing file")
    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                raise DecodeError("no video stream")
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"
            tb = float(stream.time_base) if stream.time_base else None
            start = float(stream.start_time * tb) if (stream.start_time is not None and tb) else 0.0
            if stream.duration and tb:
                duration = float(stream.duration * tb)
            elif container.duration:
                duration = container.duration / av.time_base
            else:
                duration = None
            if duration and duration > 0:
                targets = [start + (i + 0.5) * duration / n for i in range(n)]
                if duration > seek_above_s:
                    frames = _by_seeking(container, stream, targets)
                else:
                    frames = _by_decoding(container, stream, targets)
            else:  # unknown duration: decode everything, pick uniform indices
                all_frames = [f for f in container.decode(stream)]
                if not all_frames:
                    raise DecodeError("no decodable frame")
                idx = [min(len(all_frames) - 1, int((i + 0.5) * len(all_frames) / n)) for i in range(n)]
                frames = [_to_image(all_frames[i]) for i in idx]
    except DecodeError:
        raise
    except Exception as e:  # av.error.*, OSError, ValueError...
        msg = str(e).replace(f": '{path}'", "")  # PyAV appends the file name
        raise DecodeError(f"{type(e).__name__}: {msg}"[:200]) from None
    if not frames:
        raise DecodeError("no decodable frame")
    return frames


def _to_image(frame) -> Image.Image:
    """RGB PIL image as displayed: the stream's display-matrix rotation (phone videos) applied."""
    img = frame.to_image()
    rotation = getattr(frame, "rotation", 0) or 0  # degrees counter-clockwise, like PIL's rotate
    return img.rotate(rotation, expand=True) if rotation % 360 else img


def _by_decoding(container, stream, targets: list[float]) -> list[Image.Image]:
    """One pass: for each target time keep the last frame starting at or before it (the first
    frame for targets before it); stop decoding after the last target."""
    n = len(targets)
    out: list[Image.Image] = []
    prev, prev_img = None, None  # latest frame not after the pending target, and its image
    for frame in container.decode(stream):
        t = frame.time
        while prev is not None and t is not None and len(out) < n and t > targets[len(out)]:
            prev_img = prev_img if prev_img is not None else _to_image(prev)
            out.append(prev_img)
        if len(out) == n:
            break
        prev, prev_img = frame, None
    while prev is not None and len(out) < n:  # targets at or past the last frame
        prev_img = prev_img if prev_img is not None else _to_image(prev)
        out.append(prev_img)
    return out


def _by_seeking(container, stream, targets: list[float]) -> list[Image.Image]:
    """Per target: seek to the keyframe before it, decode up to it."""
    out: list[Image.Image] = []
    tb = float(stream.time_base)
    for target in targets:
        container.seek(int(target / tb), stream=stream, backward=True, any_frame=False)
        chosen = None
        for frame in container.decode(stream):
            if chosen is None or frame.time is None or frame.time <= target:
                chosen = frame
            if frame.time is not None and frame.time >= target:
                break
        if chosen is not None:
            out.append(_to_image(chosen))
        elif out:
            out.append(out[-1])
    return out


class VideoEncoder:
    """`encode_videos(list[Path]) -> EncodeOutput(data float32 (B, 2 D), present, errors)`."""

    modality = "video"

    def __init__(self, spec: EncoderSpec, device: str = "cpu", image_encoder=None):
        self.spec = spec
        self.fingerprint = spec.fingerprint
        self.frames = int(spec.option("frames"))
        self.image = image_encoder or build_image_encoder(spec.image_spec, device)
        self.device = self.image.device
        self.name = f"{self.image.name} x{self.frames} frames"
        self.dim = 2 * self.image.dim
        self._pool = _decode_pool()

    def _try_sample(self, path: Path | str | None) -> list[Image.Image] | str:
        if path is None:
            return "missing file"
        try:
            return sample_frames(Path(path), self.frames)
        except DecodeError as e:
            return str(e)

    def encode_videos(self, paths: list[Path | str | None]) -> EncodeOutput:
        B, T = len(paths), self.frames
        sampled = list(self._pool.map(self._try_sample, paths))
        errors: list[str | None] = [x if isinstance(x, str) else None for x in sampled]
        for p, err in zip(paths, errors):
            if err is not None:
                logger.warning("video %s: %s; marked absent", p, err)
        data = np.zeros((B, self.dim), np.float32)
        ok = [i for i, x in enumerate(sampled) if not isinstance(x, str)]
        if ok:
            images = [im for i in ok for im in sampled[i]]  # len(ok) * T, video-major
            feats = self.image.embed_images(images).view(len(ok), T, -1)  # (B', T, D)
            data[ok] = temporal_pool(feats).numpy()
        present = np.array([e is None for e in errors], dtype=bool)
        return EncodeOutput(data, present, errors)


def temporal_pool(feats: torch.Tensor) -> torch.Tensor:
    """feats float32 (B, T, D) -> (B, 2 D): concat(mean over T, mean |f_{t+1} - f_t|)."""
    mean = feats.mean(dim=1)  # (B, D)
    if feats.shape[1] > 1:
        motion = (feats[:, 1:] - feats[:, :-1]).abs().mean(dim=1)  # (B, D)
    else:
        motion = torch.zeros_like(mean)
    return torch.cat([mean, motion], dim=-1)
