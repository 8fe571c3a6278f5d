"""Scheduled engagement bursts of the synthetic platform (the trend-detection ground truth).

A burst makes one topic surge: from `start` for `span`, every post of that topic is chosen with
its choice weight multiplied by `gain` (users act at the times they would anyway, so the platform's
total activity is unchanged and the topic's share of it rises, as when a subject is in the news).

    bursts = schedule_bursts(cfg)                     # seeded by cfg.seed, own random stream
    p *= burst_boost(bursts, t_us, post_topic)        # inside the event simulation
    write_bursts(gt_dir, bursts, topics, t0_us)       # ground_truth/bursts.parquet

Placement: after a warm-up of `WARMUP_DAYS` (a detector needs a baseline first), the rest of the
window is cut into `n_bursts` equal slots and each burst lies inside its own slot with a quiet
gap on both sides, so bursts never overlap and quiet periods exist between them (false alarms are
counted there). Consecutive bursts never hit the same topic.

ground_truth/bursts.parquet: burst_id, topic, start (UTC), end (UTC), gain.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl

from recsys.io import write_parquet

US_PER_DAY = 86_400 * 1_000_000
WARMUP_DAYS = 5.0
SPAN_DAYS = (0.5, 2.0)  # a burst lasts between half a day and two days
BURSTS_FILE = "bursts.parquet"
_S_BURSTS = 5  # random stream id (synth.py uses 0-4)


@dataclass(frozen=True)
class Burst:
    topic: int  # index into the dataset's topics
    start_us: int  # microseconds since the window start
    end_us: int
    gain: float


def schedule_bursts(cfg) -> list[Burst]:  # noqa: ANN001 - SynthConfig (no import cycle)
    """`cfg.n_bursts` non-overlapping bursts over the window (empty when 0 or the window is too
    short for a warm-up plus one burst)."""
    n = int(cfg.n_bursts)
    days = float(cfg.days)
    if n <= 0 or days <= WARMUP_DAYS + SPAN_DAYS[1]:
        return []
    rng = np.random.default_rng([cfg.seed, _S_BURSTS])
    slot = (days - WARMUP_DAYS) / n
    out, prev = [], -1
    for i in range(n):
        span = min(rng.uniform(*SPAN_DAYS), 0.6 * slot)
        lo = WARMUP_DAYS + i * slot + 0.2 * slot  # quiet gap at the slot's start ...
        hi = WARMUP_DAYS + (i + 1) * slot - span - 0.2 * slot  # ... and after the burst
        start = rng.uniform(lo, max(lo, hi))
        topic = int(rng.choice([t for t in range(cfg.n_topics) if t != prev]))
        prev = topic
        out.append(Burst(topic, int(start * US_PER_DAY), int((start + span) * US_PER_DAY), float(cfg.burst_gain)))
    return out


def burst_boost(bursts: list[Burst], t_us: int, post_topic: np.ndarray) -> np.ndarray | float:
    """Choice-weight multiplier at time `t_us`: float64 (N,) when a burst is on, else 1.0."""
    boost: np.ndarray | float = 1.0
    for b in bursts:
        if b.start_us <= t_us < b.end_us:
            boost = boost * np.where(post_topic == b.topic, b.gain, 1.0)
    return boost


def write_bursts(gt_dir: Path, bursts: list[Burst], topics: list[str], t0_us: int) -> None:
    ts = pl.Datetime("us", "UTC")
    write_parquet(Path(gt_dir) / BURSTS_FILE, pl.DataFrame({
        "burst_id": np.arange(len(bursts), dtype=np.int64),
        "topic": [topics[b.topic] for b in bursts],
        "start": pl.Series([t0_us + b.start_us for b in bursts], dtype=pl.Int64).cast(ts),
        "end": pl.Series([t0_us + b.end_us for b in bursts], dtype=pl.Int64).cast(ts),
        "gain": pl.Series([b.gain for b in bursts], dtype=pl.Float64),
    }, schema={"burst_id": pl.Int64, "topic": pl.String, "start": ts, "end": ts, "gain": pl.Float64}))
