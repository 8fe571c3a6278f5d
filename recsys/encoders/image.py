"""Image encoders: EfficientNet-Lite0 (default, 1280-d) or a local `hf-vision:` checkpoint.

Decoding is PIL (EXIF orientation applied, JPEG draft mode for big photos) in a small thread pool;
resize / crop / normalise are torchvision.transforms.v2. A file that cannot be decoded comes back
absent with its reason; it never raises. Shapes: B images, D feature dim.

EfficientNet-Lite preprocessing (TF reference, efficientnet/lite): resize the shorter side to
224 + 32, centre-crop 224, then (x - 127) / 128 per channel, i.e. mean 127/255, std 128/255 on
[0, 1]; the converted weights' first BatchNorm statistics match that scaling (not ImageNet
mean/std). Output: ReLU6 head activations average-pooled over space (before dropout + classifier).
Inference folds BatchNorm into the convolutions and runs channels_last (about 2x faster on CPU).
"""

from __future__ import annotations

import logging
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageOps

from recsys.encoders.base import EncodeOutput, EncoderSpec, offline_env

logger = logging.getLogger(__name__)

LITE_SIZE = 224
LITE_RESIZE = LITE_SIZE + 32
LITE_MEAN = (127.0 / 255.0,) * 3
LITE_STD = (128.0 / 255.0,) * 3


class DecodeError(Exception):
    """A media file is missing or cannot be decoded (the message is a short reason)."""


def load_image(path: Path, draft: int | None = None) -> Image.Image:
    """Decode `path` to an RGB PIL image; raises DecodeError with a short reason."""
    try:
        with Image.open(path) as im:
            if draft and im.format == "JPEG":
                im.draft("RGB", (draft, draft))  # decode at 1/2, 1/4, 1/8 scale when that is still >= draft
            im = ImageOps.exif_transpose(im)
            return im.convert("RGB")  # forces the full decode (truncated data raises here)
    except FileNotFoundError:
        raise DecodeError("missing file") from None
    except Exception as e:  # PIL raises OSError, SyntaxError, ValueError, DecompressionBombError...
        raise DecodeError(f"{type(e).__name__}: {e}"[:200]) from None


def _decode_pool() -> ThreadPoolExecutor:
    return ThreadPoolExecutor(max_workers=max(1, min(8, os.cpu_count() or 1)), thread_name_prefix="decode")


class _ImageEncoderBase:
    modality = "image"
    draft: int | None = None

    def __init__(self, spec: EncoderSpec, device: str):
        self.spec = spec
        self.fingerprint = spec.fingerprint
        self.device = torch.device(device)
        self._pool = _decode_pool()

    def embed_images(self, images: list[Image.Image]) -> torch.Tensor:  # (B, D) float32, CPU
        raise NotImplementedError

    def _try_load(self, path: Path | str | None) -> Image.Image | str:
        if path is None:
            return "missing file"
        try:
            return load_image(Path(path), self.draft)
        except DecodeError as e:
            return str(e)

    def encode_images(self, paths: list[Path | str | None]) -> EncodeOutput:
        """paths (B,) -> EncodeOutput(data float32 (B, D), present, errors); undecodable files absent."""
        B = len(paths)
        loaded = list(self._pool.map(self._try_load, paths))
        data = np.zeros((B, self.dim), np.float32)
        errors: list[str | None] = [x if isinstance(x, str) else None for x in loaded]
        for p, err in zip(paths, errors):
            if err is not None:
                logger.warning("image %s: %s; marked absent", p, err)
        ok = [i for i, x in enumerate(loaded) if not isinstance(x, str)]
        if ok:
            data[ok] = self.embed_images([loaded[i] for i in ok]).numpy()
        present = np.array([e is None for e in errors], dtype=bool)
        return EncodeOutput(data, present, errors)


class EfficientNetLite0Encoder(_ImageEncoderBase):
    name = "efficientnet-lite0"
    dim = 1280
    draft = LITE_RESIZE

    def __init__(self, spec: EncoderSpec, device: str = "cpu"):
        super().__init__(spec, device)
        from efficientnet_lite_pytorch import EfficientNet
        from efficientnet_lite_pytorch.utils import get_model_params
        from torchvision.transforms import v2

        blocks_args, global_params = get_model_params("efficientnet-lite0", None)
        model = EfficientNet(blocks_args, global_params)
        state = torch.load(spec.weights_dir(), map_location="cpu", weights_only=True)
        model.load_state_dict(state)  # strict: every key of the ImageNet checkpoint
        model = fold_batchnorm(model.eval())
        self.model = model.to(self.device, memory_format=torch.channels_last)
        self.resize_crop = v2.Compose([  # per PIL image: resize / crop run as PIL kernels (fast)
            v2.Resize(LITE_RESIZE, antialias=True),  # shorter side -> 256, bilinear
            v2.CenterCrop(LITE_SIZE),  # 224 x 224
            v2.ToImage(),  # uint8 (3, 224, 224)
        ])
        self.normalize = v2.Compose([  # once per batch (B, 3, 224, 224): few large ops
            v2.ToDtype(torch.float32, scale=True),  # [0, 1]
            v2.Normalize(LITE_MEAN, LITE_STD),  # ~[-1, 1]
        ])

    def transform(self, images: list[Image.Image]) -> torch.Tensor:
        """B RGB images of any size -> float32 (B, 3, 224, 224) normalised."""
        return self.normalize(torch.stack([self.resize_crop(im) for im in images]))

    @torch.inference_mode()
    def embed_pixels(self, x: torch.Tensor) -> torch.Tensor:
        """x: float32 (B, 3, 224, 224) normalised -> (B, 1280) pooled features, CPU."""
        x = x.to(self.device).contiguous(memory_format=torch.channels_last)
        fmap = self.model.extract_features(x)  # (B, 1280, 7, 7)
        return fmap.mean(dim=(2, 3)).float().cpu()  # (B, 1280)

    def embed_images(self, images: list[Image.Image]) -> torch.Tensor:
        return self.embed_pixels(self.transform(images))  # (B, 3, 224, 224) -> (B, 1280)


def fold_batchnorm(model: torch.nn.Module) -> torch.nn.Module:
    """Fold every eval-mode BatchNorm of an efficientnet_lite_pytorch model into the convolution
    before it (same function up to float rounding, ~2x faster on CPU with channels_last)."""
    from torch.nn.utils.fusion import fuse_conv_bn_eval

    pairs = [(model, "_conv_stem", "_bn0"), (model, "_conv_head", "_bn1")]
    for block in model._blocks:
        if hasattr(block, "_expand_conv"):
            pairs.append((block, "_expand_conv", "_bn0"))
        pairs += [(block, "_depthwise_conv", "_bn1"), (block, "_project_conv", "_bn2")]
    for parent, conv_name, bn_name in pairs:
        conv = getattr(parent, conv_name)
        fused = fuse_conv_bn_eval(conv, getattr(parent, bn_name))
        conv.weight, conv.bias = fused.weight, fused.bias
        setattr(parent, bn_name, torch.nn.Identity())
    return model


class HFVisionEncoder(_ImageEncoderBase):
    """A local transformers vision checkpoint: AutoImageProcessor + AutoModel, pooled output
    (`get_image_features` for CLIP-style models, else `pooler_output`, else the mean of
    `last_hidden_state` over tokens / space)."""

    def __init__(self, spec: EncoderSpec, device: str = "cpu"):
        super().__init__(spec, device)
        offline_env()
        from transformers import AutoImageProcessor, AutoModel

        folder = spec.weights_dir()
        self.name = Path(folder).name
        self.processor = AutoImageProcessor.from_pretrained(folder, local_files_only=True)
        self.model = AutoModel.from_pretrained(folder, local_files_only=True).eval().to(self.device)
        self.dim = int(self.embed_images([Image.new("RGB", (64, 64), (128, 128, 128))]).shape[1])

    @torch.inference_mode()
    def embed_images(self, images: list[Image.Image]) -> torch.Tensor:
        pixels = self.processor(images=images, return_tensors="pt")["pixel_values"].to(self.device)
        if hasattr(self.model, "get_image_features"):
            out = self.model.get_image_features(pixel_values=pixels)
        else:
            out = self.model(pixel_values=pixels)
        if isinstance(out, torch.Tensor):
            feats = out
        elif getattr(out, "pooler_output", None) is not None:
            feats = out.pooler_output
        else:
            h = out.last_hidden_state  # (B, T, D) tokens or (B, D, H, W) feature map
            feats = h.mean(dim=(2, 3)) if h.ndim == 4 else h.mean(dim=1)
        return feats.reshape(len(images), -1).float().cpu()  # (B, D)


def build_image_encoder(spec: EncoderSpec, device: str = "cpu") -> _ImageEncoderBase:
    if spec.kind == "efficientnet-lite0":
        return EfficientNetLite0Encoder(spec, device)
    return HFVisionEncoder(spec, device)
