"""Scheduled engagement bursts of the synthetic platform (the trend-detection ground truth).

Two kinds, each rising at a known time for a known span:
  topic  one of the platform's topics surges: from `start` for `span`, every post of that topic is
         chosen with its choice weight multiplied by `gain` (users act at the times they would
         anyway, so the platform's total activity is unchanged and the topic's share of it rises,
         as when a subject is in the news).
  theme  a new subject nobody posted about before (synth_text.THEME_VOCAB: a heatwave, an
         election, ...): `theme_posts` posts by as many different authors, of every topic, are
         created during the burst's first half (moved there from elsewhere in the window, so the
         catalogue keeps its size), with the theme's words, scenes and motion instead of their
         topic's, and chosen with weight x `gain` while the burst lasts. Who engages still
         follows the author's topic (the choice model is unchanged outside the burst window), so
         the hidden preferences stay the whole truth of the static choice weight.

    bursts = schedule_bursts(cfg)                          # seeded by cfg.seed, own random stream
    theme, created = place_theme_posts(cfg, bursts, ...)   # inside build_world
    p *= burst_boost(bursts, t_us, post_topic, post_theme) # inside the event simulation
    write_bursts(gt_dir, bursts, topics, t0_us)            # ground_truth/bursts.parquet

Placement: after a warm-up of `WARMUP_DAYS` (a detector needs a baseline first), the rest of the
window is cut into `n_bursts + n_themes` equal slots and each burst lies inside its own slot with
a quiet gap on both sides, so bursts never overlap and quiet periods exist between them (false
alarms are counted there). Which slots hold themes is drawn; consecutive topic bursts never hit
the same topic; each theme is used once.

ground_truth/bursts.parquet: burst_id, kind ("topic" | "theme"), topic (null for a theme), theme
(null for a topic), start (UTC), end (UTC), gain, posts (the theme's posts; null for a topic).
ground_truth/post_topics.parquet has the matching `theme` column per post (null: no theme).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl

from recsys.data.synth_text import THEME_NAMES
from recsys.io import write_parquet

US_PER_DAY = 86_400 * 1_000_000
WARMUP_DAYS = 5.0
SPAN_DAYS = (0.5, 2.0)  # a burst lasts between half a day and two days
THEME_CREATION = 0.5  # a theme's posts are created during the first half of its burst
BURSTS_FILE = "bursts.parquet"
_S_BURSTS = 5  # random stream ids (synth.py uses 0-4 and 6)
_S_THEMES = 7


@dataclass(frozen=True)
class Burst:
    topic: int  # index into the dataset's topics; -1 for a theme burst
    start_us: int  # microseconds since the window start
    end_us: int
    gain: float
    theme: int = -1  # index into synth_text.THEME_NAMES; -1 for a topic burst

    @property
    def kind(self) -> str:
        return "theme" if self.theme >= 0 else "topic"


def schedule_bursts(cfg) -> list[Burst]:  # noqa: ANN001 - SynthConfig (no import cycle)
    """`cfg.n_bursts` topic and `cfg.n_themes` theme bursts over the window, in time order, never
    overlapping (empty when there are none or the window is too short for a warm-up plus one)."""
    n_topic, n_theme = int(cfg.n_bursts), min(int(cfg.n_themes), len(THEME_NAMES))
    n = n_topic + n_theme
    days = float(cfg.days)
    if n <= 0 or days <= WARMUP_DAYS + SPAN_DAYS[1]:
        return []
    rng = np.random.default_rng([cfg.seed, _S_BURSTS])
    slot = (days - WARMUP_DAYS) / n
    is_theme = np.zeros(n, bool)
    themes = iter([])
    if n_theme:  # drawn only when there are themes: without, the topic bursts are those of a platform before themes existed
        is_theme[rng.choice(n, n_theme, replace=False)] = True
        themes = iter(rng.permutation(len(THEME_NAMES))[:n_theme].tolist())
    out, prev = [], -1
    for i in range(n):
        span = min(rng.uniform(*SPAN_DAYS), 0.6 * slot)
        lo = WARMUP_DAYS + i * slot + 0.2 * slot  # quiet gap at the slot's start ...
        hi = WARMUP_DAYS + (i + 1) * slot - span - 0.2 * slot  # ... and after the burst
        start = rng.uniform(lo, max(lo, hi))
        s_us, e_us = int(start * US_PER_DAY), int((start + span) * US_PER_DAY)
        if is_theme[i]:
            out.append(Burst(-1, s_us, e_us, float(cfg.burst_gain), theme=int(next(themes))))
            continue
        topic = int(rng.choice([t for t in range(cfg.n_topics) if t != prev]))
        prev = topic
        out.append(Burst(topic, s_us, e_us, float(cfg.burst_gain)))
    return out


def place_theme_posts(cfg, bursts: list[Burst], post_author: np.ndarray,  # noqa: ANN001 - SynthConfig
                      post_created_us: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Pick each theme's posts and move their creation into the burst's first half.

    post_author int64 (N,), post_created_us int64 (N,) -> (post_theme int64 (N,): index into
    THEME_NAMES, -1 for none; new created int64 (N,), NOT sorted). A theme takes
    `cfg.theme_posts` posts created inside the window, one per author (as many authors as there
    are, if fewer), none already taken by another theme."""
    rng = np.random.default_rng([cfg.seed, _S_THEMES])
    theme = np.full(len(post_author), -1, np.int64)
    created = np.asarray(post_created_us, np.int64).copy()
    for b in bursts:
        if b.kind != "theme":
            continue
        pool = rng.permutation(np.flatnonzero((created >= 0) & (theme < 0)))
        _, first = np.unique(post_author[pool], return_index=True)  # one post per author
        chosen = pool[np.sort(first)][: int(cfg.theme_posts)]
        theme[chosen] = b.theme
        created[chosen] = b.start_us + rng.uniform(0.0, THEME_CREATION * (b.end_us - b.start_us), len(chosen)).astype(np.int64)
    return theme, created


def burst_boost(bursts: list[Burst], t_us: int, post_topic: np.ndarray, post_theme: np.ndarray | None = None) -> np.ndarray | float:
    """Choice-weight multiplier at time `t_us`: float64 (N,) when a burst is on, else 1.0.
    A topic burst lifts the topic's posts that carry no theme; a theme burst its theme's posts."""
    boost: np.ndarray | float = 1.0
    no_theme = True if post_theme is None else post_theme < 0
    for b in bursts:
        if b.start_us <= t_us < b.end_us:
            on = (post_theme == b.theme) if b.kind == "theme" else (post_topic == b.topic) & no_theme
            boost = boost * np.where(on, b.gain, 1.0)
    return boost


def write_bursts(gt_dir: Path, bursts: list[Burst], topics: list[str], t0_us: int,
                 post_theme: np.ndarray | None = None) -> None:
    ts = pl.Datetime("us", "UTC")
    counts = np.bincount(post_theme[post_theme >= 0], minlength=len(THEME_NAMES)) if post_theme is not None else None
    write_parquet(Path(gt_dir) / BURSTS_FILE, pl.DataFrame({
        "burst_id": np.arange(len(bursts), dtype=np.int64),
        "kind": [b.kind for b in bursts],
        "topic": [topics[b.topic] if b.kind == "topic" else None for b in bursts],
        "theme": [THEME_NAMES[b.theme] if b.kind == "theme" else None for b in bursts],
        "start": pl.Series([t0_us + b.start_us for b in bursts], dtype=pl.Int64).cast(ts),
        "end": pl.Series([t0_us + b.end_us for b in bursts], dtype=pl.Int64).cast(ts),
        "gain": pl.Series([b.gain for b in bursts], dtype=pl.Float64),
        "posts": [int(counts[b.theme]) if b.kind == "theme" and counts is not None else None for b in bursts],
    }, schema={"burst_id": pl.Int64, "kind": pl.String, "topic": pl.String, "theme": pl.String, "start": ts, "end": ts,
               "gain": pl.Float64, "posts": pl.Int64}))
