"""Scheduled bursts (topics and new cross-author themes) and post tones: the ground truth of
trends and sentiment."""

from __future__ import annotations

import re

import numpy as np
import polars as pl

from recsys.data.synth import SynthConfig, build_world, simulate_interactions, synthesize
from recsys.data.synth_bursts import THEME_CREATION, US_PER_DAY, WARMUP_DAYS, schedule_bursts
from recsys.data.synth_text import THEME_NAMES, THEME_VOCAB, TONE_WORDS, VOCAB


def _words(vocab: dict[str, list[str]]) -> set[str]:
    return {w.lower() for kind in ("nouns", "verbs", "adjs") for phrase in vocab[kind] for w in re.findall(r"[a-z]+", phrase.lower())}


def test_bursts_do_not_overlap_and_start_after_the_warmup():
    cfg = SynthConfig.preset("default", seed=4)
    b = schedule_bursts(cfg)
    assert len(b) == cfg.n_bursts + cfg.n_themes
    assert [x.kind for x in b].count("theme") == cfg.n_themes
    assert b[0].start_us >= WARMUP_DAYS * US_PER_DAY and b[-1].end_us <= cfg.days * US_PER_DAY
    for x, y in zip(b, b[1:]):
        assert x.end_us < y.start_us
    topics = [x.topic for x in b if x.kind == "topic"]
    assert all(t != u for t, u in zip(topics, topics[1:]))  # consecutive topic bursts differ
    themes = [x.theme for x in b if x.kind == "theme"]
    assert len(set(themes)) == len(themes) and all(x.topic == -1 for x in b if x.kind == "theme")
    assert schedule_bursts(SynthConfig.preset("tiny", n_bursts=0, n_themes=0)) == []
    assert {x.kind for x in schedule_bursts(SynthConfig.preset("tiny", n_bursts=0, n_themes=2))} == {"theme"}


def test_a_burst_raises_its_topics_share_of_engagement():
    cfg = SynthConfig.preset("small", seed=1, n_users=200)
    w = build_world(cfg)
    ev = simulate_interactions(cfg, w)
    topic = w.post_topic[ev["post"]]
    shares = []
    for b in schedule_bursts(cfg):
        if b.kind != "topic":
            continue
        on = (ev["ts_us"] >= b.start_us) & (ev["ts_us"] < b.end_us)
        shares.append(((topic[on] == b.topic).mean(), (topic[~on] == b.topic).mean()))
    during, outside = np.mean([s[0] for s in shares]), np.mean([s[1] for s in shares])
    assert during > 2 * outside, shares


def test_theme_posts_are_new_cross_author_and_engaged_during_their_burst():
    cfg = SynthConfig.preset("default", seed=3, n_users=300)
    w = build_world(cfg)
    assert np.all(np.diff(w.post_created_us) >= 0)  # ids still follow creation order
    ev = simulate_interactions(cfg, w)
    theme_of_event = w.post_theme[ev["post"]]
    for b in (b for b in schedule_bursts(cfg) if b.kind == "theme"):
        mine = np.flatnonzero(w.post_theme == b.theme)
        assert len(mine) == cfg.theme_posts
        assert len(np.unique(w.post_author[mine])) == len(mine)  # one post per author ...
        assert len(np.unique(w.author_topic[w.post_author[mine]])) >= 5  # ... of many topics
        created = w.post_created_us[mine]
        assert created.min() >= b.start_us and created.max() <= b.start_us + THEME_CREATION * (b.end_us - b.start_us)
        hit = ev["ts_us"][theme_of_event == b.theme]
        assert hit.min() >= b.start_us  # nothing to engage with before the burst starts
        on = (ev["ts_us"] >= b.start_us) & (ev["ts_us"] < b.end_us)
        days_on, days_after = (b.end_us - b.start_us) / US_PER_DAY, 2.0
        after = (ev["ts_us"] >= b.end_us) & (ev["ts_us"] < b.end_us + days_after * US_PER_DAY)
        rate_on = (theme_of_event[on] == b.theme).sum() / days_on
        rate_after = (theme_of_event[after] == b.theme).sum() / days_after
        assert rate_on > 2 * rate_after, (rate_on, rate_after)  # engagement falls when the burst ends
    # a few percent of posts and events, not more
    assert (w.post_theme >= 0).mean() <= 0.04 and (theme_of_event >= 0).mean() <= 0.06


def test_theme_words_are_not_topic_words():
    topic_words = set().union(*(_words(v) for v in VOCAB.values()))
    for name in THEME_NAMES:
        shared = _words(THEME_VOCAB[name]) & topic_words
        assert not shared, (name, shared)


def test_ground_truth_files_and_tone_words(tmp_path):
    ds = synthesize(tmp_path / "s", SynthConfig.preset("tiny", seed=2, n_themes=1), progress=False)
    gt = ds.root / "ground_truth"
    bursts = pl.read_parquet(gt / "bursts.parquet")
    assert len(bursts) == 6 and (bursts["end"] > bursts["start"]).all()
    assert bursts["kind"].value_counts().sort("kind").rows() == [("theme", 1), ("topic", 5)]
    topic_b, theme_b = bursts.filter(pl.col("kind") == "topic"), bursts.filter(pl.col("kind") == "theme")
    assert topic_b["topic"].is_not_null().all() and topic_b["theme"].is_null().all()
    assert theme_b["topic"].is_null().all() and theme_b["theme"].is_in(list(THEME_NAMES)).all()
    # the theme's posts: as many as recorded, created inside its burst, written with its words
    pt = pl.read_parquet(gt / "post_topics.parquet").join(ds.posts.select("post_id", "created_at", "text"), on="post_id")
    name, start, end, n = theme_b.select("theme", "start", "end", "posts").row(0)
    mine = pt.filter(pl.col("theme") == name)
    assert len(mine) == n == 4 and pt["theme"].drop_nulls().n_unique() == 1
    assert ((mine["created_at"] >= start) & (mine["created_at"] < end)).all()
    assert ds.meta["themes"] == [name]
    theme_words = _words(THEME_VOCAB[name])
    for text in mine["text"].drop_nulls():
        assert _words({"nouns": [text], "verbs": [], "adjs": []}) & theme_words, text
    others = pt.filter(pl.col("theme").is_null())["text"].drop_nulls()
    assert not any(_words({"nouns": [t], "verbs": [], "adjs": []}) & theme_words for t in others)
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
