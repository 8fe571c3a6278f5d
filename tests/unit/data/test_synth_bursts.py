"""Scheduled bursts and post tones: the ground truth of trends and sentiment."""

from __future__ import annotations

import numpy as np
import polars as pl

from recsys.data.synth import SynthConfig, build_world, simulate_interactions, synthesize
from recsys.data.synth_bursts import US_PER_DAY, WARMUP_DAYS, schedule_bursts
from recsys.data.synth_text import TONE_WORDS


def test_bursts_do_not_overlap_and_start_after_the_warmup():
    cfg = SynthConfig.preset("default", seed=4)
    b = schedule_bursts(cfg)
    assert len(b) == cfg.n_bursts
    assert b[0].start_us >= WARMUP_DAYS * US_PER_DAY and b[-1].end_us <= cfg.days * US_PER_DAY
    for x, y in zip(b, b[1:]):
        assert x.end_us < y.start_us and x.topic != y.topic
    assert schedule_bursts(SynthConfig.preset("tiny", n_bursts=0)) == []


def test_a_burst_raises_its_topics_share_of_engagement():
    cfg = SynthConfig.preset("small", seed=1, n_users=200)
    w = build_world(cfg)
    ev = simulate_interactions(cfg, w)
    topic = w.post_topic[ev["post"]]
    inside = np.zeros(len(topic), bool)
    shares = []
    for b in schedule_bursts(cfg):
        on = (ev["ts_us"] >= b.start_us) & (ev["ts_us"] < b.end_us)
        inside |= on
        shares.append(((topic[on] == b.topic).mean(), (topic[~on] == b.topic).mean()))
    during, outside = np.mean([s[0] for s in shares]), np.mean([s[1] for s in shares])
    assert during > 2 * outside, shares


def test_ground_truth_files_and_tone_words(tmp_path):
    ds = synthesize(tmp_path / "s", SynthConfig.preset("tiny", seed=2), progress=False)
    gt = ds.root / "ground_truth"
    bursts = pl.read_parquet(gt / "bursts.parquet")
    assert len(bursts) == 5 and (bursts["end"] > bursts["start"]).all()
    tones = pl.read_parquet(gt / "post_tones.parquet").join(ds.posts.select("post_id", "text"), on="post_id")
    assert set(tones["label"].unique().to_list()) == {-1, 0, 1}
    for tone, label, text in tones.select("tone", "label", "text").drop_nulls().iter_rows():
        words = set(text.replace(",", " ").replace(".", " ").lower().split())
        if label != 0:
            assert words & set(TONE_WORDS[label]), text
        # negative words come only from the tone sentence (a template may say "perfect" anyway)
        assert bool(words & set(TONE_WORDS[-1])) == (label == -1), text
        if label != 1:
            assert "Love this." not in text
