"""Incremental `encode_dataset`, `encode_post_content` and `recsys encode` on a tiny real dataset."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from recsys.dataset import load_dataset, save_dataset
from recsys.encode import encode_dataset, encode_post_content
from recsys.features import load_features, load_modality
from tests.unit.encoders.conftest import TEXTS, make_dataset, write_jpeg


@pytest.fixture
def encoders(text_encoder, image_encoder, video_encoder):
    return {"text": text_encoder, "image": image_encoder, "video": video_encoder}


def _counts(report, m):
    r = report["modalities"][m]
    return r["encoded"], r["reused"], r["absent"], r["failed"]


def test_first_run_encodes_and_counts_absent_and_failed(tmp_path: Path, encoders):
    root = make_dataset(tmp_path / "ds")
    report = encode_dataset(root, encoders=encoders, progress=False)
    assert _counts(report, "text") == (4, 0, 2, 0)  # one null, one blank
    assert _counts(report, "image") == (3, 0, 1, 2)  # corrupt p3.jpg, missing gone.jpg
    assert _counts(report, "video") == (2, 0, 3, 1)  # corrupt v4.mp4
    feats = load_features(root)
    assert {m: f.dim for m, f in feats.items()} == {"text": 384, "image": 1280, "video": 2560}
    img = feats["image"]
    assert img.post_ids.tolist() == [1, 2, 3, 4, 5, 6]
    assert img.present.tolist() == [True, True, False, False, True, False]
    assert img.content_hash[2].startswith("!") and "truncated" in img.content_hash[2]
    assert img.content_hash[3] == "" and img.content_hash[5] == "!:missing file"
    assert not img.data[~img.present].any()
    assert img.meta["encoder"] == "efficientnet-lite0" and img.meta["fingerprint"] == encoders["image"].fingerprint
    assert feats["video"].meta["encoder"] == "efficientnet-lite0,frames=3"
    # stored vectors are the encoder's vectors
    t = feats["text"]
    np.testing.assert_allclose(t.data[0], encoders["text"].encode_texts([TEXTS[0]]).data[0], atol=1e-5)


def test_rerun_reencodes_only_changed_posts_and_drops_removed(tmp_path: Path, encoders):
    root = make_dataset(tmp_path / "ds")
    encode_dataset(root, encoders=encoders, progress=False)
    before = load_features(root)

    again = encode_dataset(root, encoders=encoders, progress=False)
    assert _counts(again, "text") == (0, 4, 2, 0)
    assert _counts(again, "image") == (0, 3, 1, 2)  # the known-corrupt file is not retried
    assert _counts(again, "video") == (0, 2, 3, 1)

    ds = load_dataset(root)
    posts = ds.posts.with_columns(
        pl.when(pl.col("post_id") == 2).then(pl.lit("A completely different caption")).otherwise(pl.col("text")).alias("text")
    ).filter(pl.col("post_id") != 5)
    write_jpeg(root / "media" / "p1.jpg", kind="square", color="yellow")  # new bytes, same path
    save_dataset(root, posts, ds.interactions.filter(pl.col("post_id") != 5))

    r = encode_dataset(root, encoders=encoders, progress=False)
    assert _counts(r, "text") == (1, 2, 2, 0)
    assert _counts(r, "image") == (1, 1, 1, 2)
    assert _counts(r, "video") == (0, 2, 2, 1)
    after = load_features(root)
    assert after["text"].post_ids.tolist() == [1, 2, 3, 4, 6]
    old_t, _ = before["text"].aligned(np.array([1, 2, 3]))
    new_t, _ = after["text"].aligned(np.array([1, 2, 3]))
    assert np.array_equal(new_t[[0, 2]], old_t[[0, 2]]) and not np.allclose(new_t[1], old_t[1])
    old_i, _ = before["image"].aligned(np.array([1, 2]))
    new_i, _ = after["image"].aligned(np.array([1, 2]))
    assert not np.allclose(new_i[0], old_i[0]) and np.array_equal(new_i[1], old_i[1])


def test_fixed_corrupt_file_and_force_are_retried(tmp_path: Path, encoders):
    root = make_dataset(tmp_path / "ds")
    encode_dataset(root, modalities=["image"], encoders=encoders, progress=False)
    write_jpeg(root / "media" / "p3.jpg", kind="circle", color="green")  # repaired
    r = encode_dataset(root, modalities=["image"], encoders=encoders, progress=False)
    assert _counts(r, "image") == (1, 3, 1, 1)
    assert load_modality(root, "image").present.tolist() == [True, True, True, False, True, False]
    forced = encode_dataset(root, modalities=["image"], encoders=encoders, progress=False, force=True)
    assert _counts(forced, "image") == (4, 0, 1, 1)
    assert set(load_features(root)) == {"image"}  # only what was asked for is written


def test_changing_the_encoder_reencodes_everything(tmp_path: Path, encoders):
    root = make_dataset(tmp_path / "ds")
    encode_dataset(root, modalities=["text"], encoders=encoders, progress=False)
    from recsys.encoders.text import HFTextEncoder
    from recsys.encoders.base import parse_spec

    short = HFTextEncoder(parse_spec("text", "minilm,max_length=4"))
    r = encode_dataset(root, modalities=["text"], encoders={"text": short}, progress=False)
    assert _counts(r, "text") == (4, 0, 2, 0)
    meta = load_modality(root, "text").meta
    assert meta["encoder"] == "minilm,max_length=4" and meta["fingerprint"] == short.fingerprint


def test_encode_post_content_for_serving(tmp_path: Path, encoders):
    root = make_dataset(tmp_path / "ds")
    out = encode_post_content("a dog in the park", root / "media" / "p1.jpg", None, encoders)
    assert set(out) == {"text", "image", "video"}
    assert out["text"][0].shape == (384,) and out["text"][1] is True
    assert out["image"][0].shape == (1280,) and out["image"][1] is True
    assert out["video"][0].shape == (2560,) and out["video"][1] is False and not out["video"][0].any()
    bad = encode_post_content(None, root / "media" / "p3.jpg", root / "media" / "v4.mp4", encoders)
    assert [bad[m][1] for m in ("text", "image", "video")] == [False, False, False]


def test_cli_encode_text_with_config_and_summary(tmp_path: Path, capsys):
    from recsys.cli import main

    root = make_dataset(tmp_path / "ds")
    cfg = tmp_path / "enc.json"
    cfg.write_text(json.dumps({"encoders": {"text": "minilm"}, "modalities": ["text"], "batch_size": 2}))
    assert main(["encode", "--data", str(root), "--config", str(cfg), "--no-progress", "--device", "cpu"]) == 0
    out = capsys.readouterr().out
    assert "text" in out and "4 encoded" in out and "2 absent" in out
    assert main(["encode", "--data", str(root), "--modality", "text", "--no-progress", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert _counts(report, "text") == (0, 4, 2, 0)
    assert main(["encode", "--data", str(root), "--encoder", "text=bert-base"]) == 2
    assert "unknown text encoder" in capsys.readouterr().err


def test_cli_video_frames_flag(tmp_path: Path, capsys):
    from recsys.cli import main

    root = make_dataset(tmp_path / "ds")
    argv = ["encode", "--data", str(root), "--modality", "video", "--frames", "2", "--no-progress", "--json"]
    assert main(argv) == 0
    report = json.loads(capsys.readouterr().out)
    assert list(report["modalities"]) == ["video"]
    assert report["modalities"]["video"]["encoder"] == "efficientnet-lite0,frames=2"
    assert _counts(report, "video") == (2, 0, 3, 1)


def test_imported_features_are_not_replaced_without_force(tmp_path: Path, encoders):
    from recsys.errors import ConfigError
    from recsys.features import ModalityFeatures, save_modality

    root = make_dataset(tmp_path / "ds")
    ids = np.arange(1, 7)
    save_modality(root, ModalityFeatures("text", ids, np.ones((6, 8), np.float32), np.ones(6, bool), np.array([""] * 6),
                                         {"encoder": "precomputed", "source": "text_feat.npy"}))
    with pytest.raises(ConfigError, match="not made by `recsys encode`.*--force"):
        encode_dataset(root, modalities=["text"], encoders=encoders, progress=False)
    assert load_modality(root, "text").dim == 8  # untouched
    r = encode_dataset(root, modalities=["text"], encoders=encoders, progress=False, force=True)
    assert _counts(r, "text") == (4, 0, 2, 0) and load_modality(root, "text").dim == 384


class _CrashAfter:
    """The real text encoder, interrupted after `n` batches (as a Ctrl-C or a killed job would)."""

    def __init__(self, enc, n: int):
        self.enc, self.n = enc, n
        self.spec, self.fingerprint, self.dim, self.name = enc.spec, enc.fingerprint, enc.dim, enc.name

    def encode_texts(self, texts):
        if self.n == 0:
            raise KeyboardInterrupt
        self.n -= 1
        return self.enc.encode_texts(texts)


def test_interrupted_run_resumes_from_checkpoint(tmp_path: Path, text_encoder):
    root = make_dataset(tmp_path / "ds")
    with pytest.raises(KeyboardInterrupt):
        encode_dataset(root, modalities=["text"], encoders={"text": _CrashAfter(text_encoder, 2)},
                       batch_size=1, progress=False, checkpoint_every_s=0)
    assert (root / "features" / "text.npz.partial").is_file()
    assert load_features(root) == {}  # nothing half-written where readers look
    r = encode_dataset(root, modalities=["text"], encoders={"text": text_encoder}, progress=False)
    assert _counts(r, "text") == (2, 2, 2, 0) and r["modalities"]["text"]["resumed"] == 2
    assert not (root / "features" / "text.npz.partial").exists()
    t = load_modality(root, "text")
    assert t.present.tolist() == [True, True, True, False, True, False]
    np.testing.assert_allclose(t.data[:3], text_encoder.encode_texts(TEXTS[:3]).data, atol=1e-5)


def test_media_digests_are_cached_by_size_and_mtime(tmp_path: Path, encoders):
    import os

    root = make_dataset(tmp_path / "ds")
    encode_dataset(root, modalities=["image"], encoders=encoders, progress=False)
    assert (root / "features" / "image.files").is_file() and set(load_features(root)) == {"image"}
    # same size + mtime but other bytes: trusted unchanged (the documented trade-off, as git does)...
    p1 = root / "media" / "p1.jpg"
    st = p1.stat()
    raw = bytearray(p1.read_bytes())
    raw[-3] ^= 0xFF
    p1.write_bytes(bytes(raw))
    os.utime(p1, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert _counts(encode_dataset(root, modalities=["image"], encoders=encoders, progress=False), "image") == (0, 3, 1, 2)
    # ...a new mtime, or force, re-reads the file
    os.utime(p1, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    assert _counts(encode_dataset(root, modalities=["image"], encoders=encoders, progress=False), "image") == (1, 2, 1, 2)
