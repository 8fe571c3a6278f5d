"""The synthetic platform: seeded, plausible, and driven by its recorded hidden preferences."""

from __future__ import annotations

import hashlib

import numpy as np
import polars as pl
import pytest

from recsys.cli import main
from recsys.data.synth import SynthConfig, load_ground_truth, synthesize
from recsys.errors import ConfigError


def _digest_tree(root) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file() and p.name != "dataset.json"
    }


def test_same_seed_is_byte_identical_and_other_seed_differs(tmp_path):
    a = synthesize(tmp_path / "a", SynthConfig.preset("tiny", seed=3), progress=False)
    b = synthesize(tmp_path / "b", SynthConfig.preset("tiny", seed=3), progress=False)
    c = synthesize(tmp_path / "c", SynthConfig.preset("tiny", seed=4), progress=False)
    da, db, dc = _digest_tree(a.root), _digest_tree(b.root), _digest_tree(c.root)
    assert any(k.endswith(".mp4") for k in da) and any(k.endswith(".jpg") for k in da)
    assert da == db
    assert da["posts.parquet"] != dc["posts.parquet"]
    assert da["interactions.parquet"] != dc["interactions.parquet"]


def test_modalities_mixed_and_media_files_real(tiny_synth):
    posts = pl.read_parquet(tiny_synth / "posts.parquet")
    has = {c: posts[c].is_not_null() for c in ("text", "image_path", "video_path")}
    assert (has["text"] | has["image_path"] | has["video_path"]).all()  # never a post with nothing
    assert 0 < has["video_path"].sum() < len(posts) / 2  # most posts have no video
    assert 0 < has["image_path"].sum() < len(posts)
    assert 0 < has["text"].sum() < len(posts)
    for rel in posts["image_path"].drop_nulls().head(3):
        assert (tiny_synth / rel).read_bytes()[:3] == b"\xff\xd8\xff"  # JPEG magic
    for rel in posts["video_path"].drop_nulls().head(2):
        assert (tiny_synth / rel).read_bytes()[4:8] == b"ftyp"  # MP4 box


def test_interactions_after_post_creation_and_no_repeats(tiny_synth):
    posts = pl.read_parquet(tiny_synth / "posts.parquet")
    inter = pl.read_parquet(tiny_synth / "interactions.parquet").join(posts.select("post_id", "created_at"), on="post_id")
    assert (inter["ts"] >= inter["created_at"]).all()
    assert inter.select("user_id", "post_id").is_unique().all()
    assert set(inter["event"].unique()) <= {"view", "like", "comment", "share"}


def test_hidden_preferences_drive_interactions(tmp_path):
    ds = synthesize(tmp_path / "s", SynthConfig.preset("small", seed=0), progress=False)
    gt = load_ground_truth(ds.root)
    inter = ds.interactions.join(gt["post_topics"].select("post_id", "topic"), on="post_id")
    w = inter.join(gt["user_preferences"], on=["user_id", "topic"])["weight"].mean()
    # a post chosen at random would carry the user's weight on a random topic: 1 / n_topics
    n_topics = gt["topics"].height
    assert w > 2.5 / n_topics
    # history lengths populate every bucket the evaluation reports
    lens = inter.group_by("user_id").len()["len"].to_numpy()
    for lo, hi in ((1, 2), (3, 5), (6, 10), (11, 10**9)):
        assert ((lens >= lo) & (lens <= hi)).sum() > 0, (lo, hi)


def test_refuses_to_overwrite_without_force(tmp_path):
    out = tmp_path / "d"
    synthesize(out, SynthConfig.preset("tiny"), progress=False)
    with pytest.raises(ConfigError, match="--force"):
        synthesize(out, SynthConfig.preset("tiny"), progress=False)
    synthesize(out, SynthConfig.preset("tiny", seed=1), progress=False, overwrite=True)


def test_bad_config_is_explained():
    with pytest.raises(ConfigError, match="synth size must be one of"):
        SynthConfig.preset("huge")
    with pytest.raises(ConfigError, match="unknown SynthConfig field"):
        SynthConfig.preset("tiny", n_postz=3)
    with pytest.raises(ConfigError, match="video_frac must be in"):
        SynthConfig.preset("tiny", video_frac=1.5)


def test_cli_synth_and_info(tmp_path, capsys):
    out = tmp_path / "cli"
    assert main(["synth", "--out", str(out), "--size", "tiny", "--posts", "50", "--users", "20", "--no-progress"]) == 0
    assert "posts: 50" in capsys.readouterr().out
    assert main(["info", "--data", str(out)]) == 0
    text = capsys.readouterr().out
    assert "posts: 50" in text and "splits: none" in text and "feature store: empty" in text
    assert main(["synth", "--out", str(out), "--size", "tiny"]) == 2
    assert "--force" in capsys.readouterr().err


def test_info_reports_feature_store(tiny_encoded, capsys):
    assert main(["info", "--data", str(tiny_encoded), "--json"]) == 0
    import json

    s = json.loads(capsys.readouterr().out)
    assert s["features"]["text"]["dim"] == 384 and s["features"]["image"]["dim"] == 1280
    assert s["features"]["text"]["present"] == s["posts_with"]["text"]
    assert s["features"]["video"]["present"] <= s["posts_with"]["video"]
