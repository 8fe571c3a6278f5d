"""EfficientNet-Lite0 image encoder (and a local hf-vision checkpoint) on real JPEG/PNG files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from recsys.encoders import build_encoder
from tests.unit.encoders.conftest import draw_image, write_corrupt_jpeg, write_jpeg


def _cos(a, b):
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


def test_shapes_dtype_and_determinism(image_encoder, tmp_path: Path):
    paths = [write_jpeg(tmp_path / "a.jpg", kind="circle", color="red"),
             write_jpeg(tmp_path / "b.jpg", kind="stripes", color="blue", size=(300, 90))]
    out = image_encoder.encode_images(paths)
    assert out.data.shape == (2, 1280) and out.data.dtype == np.float32
    assert out.present.tolist() == [True, True] and out.errors == [None, None]
    assert np.isfinite(out.data).all() and (out.data >= 0).all()  # pooled ReLU6 activations
    assert np.array_equal(out.data, image_encoder.encode_images(paths).data)
    assert not np.allclose(out.data[0], out.data[1])


def test_same_picture_in_another_format_is_closer_than_another_picture(image_encoder, tmp_path: Path):
    a = write_jpeg(tmp_path / "a.jpg", kind="circle", color="red")
    draw_image(kind="circle", color="red").save(tmp_path / "a.png")
    b = write_jpeg(tmp_path / "b.jpg", kind="stripes", color="green")
    x = image_encoder.encode_images([a, tmp_path / "a.png", b]).data
    assert _cos(x[0], x[1]) > 0.95
    assert _cos(x[0], x[1]) > _cos(x[0], x[2]) + 0.05


def test_corrupt_and_missing_files_are_absent_not_raised(image_encoder, tmp_path: Path, caplog):
    good = write_jpeg(tmp_path / "good.jpg")
    bad = write_corrupt_jpeg(tmp_path / "bad.jpg")
    text = tmp_path / "notes.jpg"
    text.write_text("this is not an image")
    out = image_encoder.encode_images([good, bad, tmp_path / "missing.jpg", text])
    assert out.present.tolist() == [True, False, False, False]
    assert not out.data[1:].any()
    assert "truncated" in out.errors[1] and out.errors[2] == "missing file" and out.errors[3]
    assert "bad.jpg" in caplog.text and "marked absent" in caplog.text
    np.testing.assert_array_equal(out.data[0], image_encoder.encode_images([good]).data[0])


def test_hf_vision_local_checkpoint(tmp_path: Path):
    """A user's own vision checkpoint (a tiny randomly initialised ViT saved locally)."""
    from transformers import ViTConfig, ViTImageProcessor, ViTModel

    torch.manual_seed(0)
    cfg = ViTConfig(image_size=32, patch_size=8, hidden_size=32, num_hidden_layers=1,
                    num_attention_heads=2, intermediate_size=64)
    ckpt = tmp_path / "tiny-vit"
    ViTModel(cfg).save_pretrained(ckpt)
    ViTImageProcessor(size={"height": 32, "width": 32}).save_pretrained(ckpt)
    enc = build_encoder("image", f"hf-vision:{ckpt}", device="cpu")
    assert enc.dim == 32 and enc.fingerprint.startswith("hf-vision-")
    img = write_jpeg(tmp_path / "x.jpg")
    out = enc.encode_images([img, write_corrupt_jpeg(tmp_path / "bad.jpg")])
    assert out.data.shape == (2, 32) and out.present.tolist() == [True, False]
    np.testing.assert_array_equal(out.data[0], enc.encode_images([img]).data[0])
