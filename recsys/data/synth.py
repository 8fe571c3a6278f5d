"""The synthetic social platform: the embedded default dataset (`recsys synth`).

    ds = synthesize(Path("data/synth"), SynthConfig.preset("tiny", seed=0))

The world, in the order it is drawn:
  topics   `n_topics` of the vocabularies in `synth_text.VOCAB` (cooking, football, travel, ...)
  authors  a main topic each (every topic has authors), a popularity and a posting rate
           (both log-normal, so a few authors are big)
  posts    a topic (mostly the author's), a hidden popularity, a creation time (some before the
           window, the rest spread over it, so late posts are cold in the test period) and
           content: English text from the topic vocabulary, a JPEG of a topic scene, an MP4 with
           the topic's motion (a theme post: the theme's words, scene and motion; synth_bursts.py).
           Modalities are dealt exactly: `video_frac` of posts have a video,
           `image_missing_frac` no image, `text_missing_frac` no text (never a post with none).
  users    a hidden topic preference (sparse Dirichlet), 1-3 favourite authors, a join time and
           an activity level (log-normal history length: the 1-2, 3-5, 6-10, >10 buckets are
           all populated)
  events   each user acts at random times after joining; at time t the user picks one post
           created before t (never the same post twice) with probability proportional to
               (pref[topic] + topic_floor) * (1 + author_boost * favourite)
               * popularity ** popularity_exp * (recency_floor + exp(-age / recency_tau))
           and reacts with view / like / comment / share (more engaged when the post matches).

Output (written to a temporary sibling, then renamed into place):
    posts.parquet, interactions.parquet, dataset.json   via `recsys.dataset.save_dataset`
    media/images/<post_id>.jpg, media/videos/<post_id>.mp4
    ground_truth/topics.parquet          topic, topic_id, motion
    ground_truth/post_topics.parquet     post_id, topic, popularity, theme (null unless a theme post; a theme
                                         post keeps the topic its author's fans choose it by)
    ground_truth/authors.parquet         author_id, topic, popularity
    ground_truth/user_preferences.parquet user_id, topic, weight   (weights sum to 1 per user)
    ground_truth/user_authors.parquet    user_id, author_id
    ground_truth/post_tones.parquet      post_id, tone (hidden sentiment in [-1, 1]), label (-1 / 0 / +1)
    ground_truth/bursts.parquet          burst_id, kind (topic | theme), topic, theme, start, end, gain, posts
                                         (scheduled surges of a topic or of a new cross-author theme, synth_bursts.py)

Same seed -> byte-identical tables and media files. No splits: `recsys split` makes them.
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from recsys.data.synth_bursts import BURSTS_FILE, burst_boost, place_theme_posts, schedule_bursts, write_bursts
from recsys.data.synth_media import MOTIONS, brighten, render_scene, write_jpeg, write_video
from recsys.data.synth_text import THEME_MOOD, THEME_NAMES, TOPIC_NAMES, draw_tones, make_text, tone_label
from recsys.dataset import Dataset, save_dataset
from recsys.errors import ConfigError
from recsys.io import atomic_dir, write_parquet

logger = logging.getLogger(__name__)

GROUND_TRUTH_DIR = "ground_truth"
IMAGES_DIR = "media/images"
VIDEOS_DIR = "media/videos"
EVENTS = ("view", "like", "comment", "share")
US_PER_DAY = 86_400 * 1_000_000

# Independent random streams, so that e.g. the media of post 7 do not depend on how many
# interactions were drawn before (and media can be rendered in any order).
_S_WORLD, _S_TEXT, _S_IMAGE, _S_VIDEO, _S_EVENTS = range(5)
_S_TONE = 6  # 5 and 7 are synth_bursts'



@dataclass(frozen=True)
class SynthConfig:
    name: str = "default"
    seed: int = 0
    # sizes
    n_topics: int = 10
    n_authors: int = 150
    n_posts: int = 2000
    n_users: int = 1000
    # time (the interaction window is [start, start + days); posts may predate it)
    start: str = "2025-03-01T00:00:00+00:00"
    days: float = 30.0
    pre_window_frac: float = 0.3  # posts created in the `pre_window_days` before the window
    pre_window_days: float = 14.0
    # content
    video_frac: float = 0.15
    image_missing_frac: float = 0.15
    text_missing_frac: float = 0.05
    author_focus: float = 0.85  # P(post topic == author's topic)
    text_noise: float = 0.1  # P(a text slot draws a word of another topic)
    image_size: int = 224
    jpeg_quality: int = 85
    video_size: int = 128
    video_frames: int = 16
    video_fps: int = 12
    video_codec: str = "mpeg4"  # FFmpeg's own MPEG-4 Part 2: byte-identical per seed (libx264 output varied with machine load here)
    # users
    pref_alpha: float = 0.3  # Dirichlet concentration (small = few favourite topics)
    max_fav_authors: int = 3
    mean_history: float = 40.0  # mean interactions per user (before the cap)
    history_sigma: float = 1.2  # log-normal spread of history lengths
    max_history_frac: float = 0.3  # cap: at most this fraction of all posts per user
    late_join_frac: float = 0.5  # users join uniformly in [0, late_join_frac * days)
    new_user_frac: float = 0.2  # a growing platform: this share of users joins in the last
    new_user_window: float = 0.25  # `new_user_window` of the window (the valid and test periods)
    string_ids: bool = False  # users, posts and authors identified by strings (UUID, slug, handle)
    # choice model
    topic_floor: float = 0.02
    author_boost: float = 3.0
    popularity_exp: float = 1.0
    recency_tau_days: float = 4.0
    recency_floor: float = 0.15
    event_weights: tuple[float, float, float, float] = (1.0, 2.0, 3.0, 4.0)  # view, like, comment, share
    # trends and sentiment ground truth (synth_bursts.py, synth_text.py)
    n_bursts: int = 5  # scheduled topic surges (0: none)
    n_themes: int = 3  # scheduled new cross-author themes (0: none, the platform as before themes; at most len(THEME_NAMES))
    theme_posts: int = 20  # posts per theme, each by a different author
    burst_gain: float = 5.0  # choice-weight multiplier of the surging topic's (or theme's) posts
    tone_brightness: float = 0.2  # images are brighter by this x tone (tone visible without text)

    PRESETS = ("tiny", "small", "default")

    @classmethod
    def preset(cls, size: str = "default", seed: int = 0, **overrides: Any) -> SynthConfig:
        """Named sizes: `tiny` (tests, ~1 s), `small` (~10 s), `default` (the demo; a CPU
        encodes it in a few minutes). `overrides` replace any field (unknown names raise)."""
        sizes: dict[str, dict[str, Any]] = {
            "tiny": dict(n_topics=6, n_authors=12, n_posts=80, n_users=40, mean_history=12.0,
                         video_frac=0.08, video_size=96, video_frames=16, n_themes=0, theme_posts=4),
            "small": dict(n_authors=40, n_posts=400, n_users=300, mean_history=20.0, theme_posts=5),
            "default": {},
        }
        if size not in sizes:
            raise ConfigError(f"synth size must be one of {list(sizes)}, got {size!r}")
        fields = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(overrides) - fields)
        if unknown:
            raise ConfigError(f"unknown SynthConfig field(s) {unknown}; expected some of {sorted(fields)}")
        return cls(**{**sizes[size], "name": size, "seed": seed, **overrides})

    def __post_init__(self) -> None:
        checks = [
            (2 <= self.n_topics <= len(TOPIC_NAMES), f"n_topics must be in [2, {len(TOPIC_NAMES)}], got {self.n_topics}"),
            (1 <= self.n_authors <= self.n_posts, f"n_authors must be in [1, n_posts={self.n_posts}], got {self.n_authors}"),
            (self.n_posts >= 2, f"n_posts must be >= 2, got {self.n_posts}"),
            (self.n_users >= 1, f"n_users must be >= 1, got {self.n_users}"),
            (self.days > 0, f"days must be > 0, got {self.days}"),
            (self.mean_history >= 1, f"mean_history must be >= 1, got {self.mean_history}"),
            (self.video_frames >= 2, f"video_frames must be >= 2, got {self.video_frames}"),
            (self.image_size >= 32 and self.video_size >= 32, "image_size and video_size must be >= 32"),
            (self.video_size % 2 == 0, f"video_size must be even (yuv420p), got {self.video_size}"),
            (len(self.event_weights) == len(EVENTS), f"event_weights needs {len(EVENTS)} values {EVENTS}"),
            (0 <= self.n_themes <= len(THEME_NAMES), f"n_themes must be in [0, {len(THEME_NAMES)}], got {self.n_themes}"),
            (self.theme_posts >= 1, f"theme_posts must be >= 1, got {self.theme_posts}"),
        ]
        for name in ("pre_window_frac", "video_frac", "image_missing_frac", "text_missing_frac", "author_focus",
                     "text_noise", "max_history_frac", "late_join_frac", "recency_floor", "new_user_frac", "new_user_window"):
            v = getattr(self, name)
            checks.append((0.0 <= v <= 1.0, f"{name} must be in [0, 1], got {v}"))
        checks.append((self.image_missing_frac + self.text_missing_frac <= 1.0,
                       "image_missing_frac + text_missing_frac must be <= 1 (every post keeps a modality)"))
        for ok, msg in checks:
            if not ok:
                raise ConfigError(f"SynthConfig({self.name}): {msg}")
        try:
            datetime.fromisoformat(self.start)
        except ValueError as e:
            raise ConfigError(f"SynthConfig.start must be an ISO datetime, got {self.start!r}") from e
        object.__setattr__(self, "event_weights", tuple(float(w) for w in self.event_weights))

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @property
    def topics(self) -> tuple[str, ...]:
        return TOPIC_NAMES[: self.n_topics]


# ---------------------------------------------------------------- the world (in memory)
@dataclass
class World:
    topics: tuple[str, ...]
    author_topic: np.ndarray  # int64 (A,)
    author_pop: np.ndarray  # float64 (A,)
    post_author: np.ndarray  # int64 (N,) author index
    post_topic: np.ndarray  # int64 (N,)
    post_pop: np.ndarray  # float64 (N,)
    post_created_us: np.ndarray  # int64 (N,) microseconds since the window start
    post_theme: np.ndarray  # int64 (N,) index into THEME_NAMES, -1: no theme
    has_text: np.ndarray  # bool (N,)
    has_image: np.ndarray
    has_video: np.ndarray
    user_pref: np.ndarray  # float64 (U, T), rows sum to 1
    user_fav: list[np.ndarray]  # per user: author indexes
    user_join_us: np.ndarray  # int64 (U,)
    user_len: np.ndarray  # int64 (U,) target history length


def _rng(cfg: SynthConfig, stream: int, *key: int) -> np.random.Generator:
    return np.random.default_rng([cfg.seed, stream, *key])


def _deal(rng: np.random.Generator, n: int, frac: float, allowed: np.ndarray | None = None) -> np.ndarray:
    """Boolean (n,) mask with exactly round(frac * n) True, drawn among `allowed` positions."""
    pool = np.arange(n) if allowed is None else np.flatnonzero(allowed)
    k = min(int(round(frac * n)), len(pool))
    mask = np.zeros(n, bool)
    mask[rng.choice(pool, k, replace=False)] = True
    return mask


def build_world(cfg: SynthConfig) -> World:
    rng = _rng(cfg, _S_WORLD)
    T, A, N, U = cfg.n_topics, cfg.n_authors, cfg.n_posts, cfg.n_users
    window_us = int(cfg.days * US_PER_DAY)

    # authors: every topic is covered, then random
    author_topic = np.concatenate([rng.permutation(T), rng.integers(0, T, max(A - T, 0))])[:A].astype(np.int64)
    author_pop = rng.lognormal(0.0, 0.7, A)
    author_rate = rng.lognormal(0.0, 0.8, A)

    # posts: authors by posting rate (each author at least one post)
    post_author = np.concatenate([np.arange(A), rng.choice(A, N - A, p=author_rate / author_rate.sum())])
    post_author = rng.permutation(post_author).astype(np.int64)
    off_topic = rng.random(N) >= cfg.author_focus
    post_topic = np.where(off_topic, rng.integers(0, T, N), author_topic[post_author]).astype(np.int64)
    post_pop = author_pop[post_author] * rng.lognormal(0.0, 0.6, N)
    pre = rng.random(N) < cfg.pre_window_frac
    created = np.where(
        pre,
        -rng.uniform(0.0, cfg.pre_window_days * US_PER_DAY, N),
        rng.uniform(0.0, 0.97 * window_us, N),
    )
    post_created_us = np.sort(created.astype(np.int64))  # post ids follow creation order

    has_video = _deal(rng, N, cfg.video_frac)
    no_image = _deal(rng, N, cfg.image_missing_frac)
    no_text = _deal(rng, N, cfg.text_missing_frac, allowed=~no_image)  # a post keeps text or image

    # users (drawn before the themes are placed: the themes have their own random stream)
    user_pref = rng.dirichlet(np.full(T, cfg.pref_alpha), U)
    user_pref = np.maximum(user_pref, 0.0)
    user_pref /= user_pref.sum(1, keepdims=True)
    user_fav = []
    for u in range(U):
        k = int(rng.integers(1, cfg.max_fav_authors + 1)) if cfg.max_fav_authors > 0 else 0
        w = author_pop * (user_pref[u, author_topic] + 1e-3) ** 2
        user_fav.append(np.sort(rng.choice(A, min(k, A), replace=False, p=w / w.sum())).astype(np.int64))
    user_join_us = rng.uniform(0.0, cfg.late_join_frac * window_us, U).astype(np.int64)
    late = rng.random(U) < cfg.new_user_frac  # joined while the platform grows (valid / test)
    user_join_us[late] = rng.uniform((1.0 - cfg.new_user_window) * window_us, window_us, int(late.sum())).astype(np.int64)
    mu = np.log(cfg.mean_history) - cfg.history_sigma**2 / 2
    cap = max(1, int(cfg.max_history_frac * N))
    user_len = np.clip(np.round(rng.lognormal(mu, cfg.history_sigma, U)), 1, cap).astype(np.int64)

    # themes: their posts move to their bursts; then posts are re-sorted so ids follow creation
    # order again (no theme: the order is unchanged)
    post_theme, created = place_theme_posts(cfg, schedule_bursts(cfg), post_author, post_created_us)
    order = np.argsort(created, kind="stable")
    post_author, post_topic, post_pop, post_theme = post_author[order], post_topic[order], post_pop[order], post_theme[order]
    has_video, no_image, no_text = has_video[order], no_image[order], no_text[order]

    return World(
        topics=cfg.topics, author_topic=author_topic, author_pop=author_pop, post_author=post_author,
        post_topic=post_topic, post_pop=post_pop, post_created_us=created[order], post_theme=post_theme,
        has_text=~no_text, has_image=~no_image, has_video=has_video,
        user_pref=user_pref, user_fav=user_fav, user_join_us=user_join_us, user_len=user_len,
    )


def simulate_interactions(cfg: SynthConfig, w: World) -> dict[str, np.ndarray]:
    """Draw every user's events. Returns columns: user (U index), post (N index), ts_us
    (int64, since window start), event (index into EVENTS)."""
    rng = _rng(cfg, _S_EVENTS)
    window_us = int(cfg.days * US_PER_DAY)
    tau_us = cfg.recency_tau_days * US_PER_DAY
    pop = w.post_pop**cfg.popularity_exp  # (N,)
    bursts = schedule_bursts(cfg)
    users, posts, times, events = [], [], [], []
    for u in range(len(w.user_pref)):
        fav = np.isin(w.post_author, w.user_fav[u])  # (N,)
        aff = w.user_pref[u, w.post_topic]  # (N,)
        static = (aff + cfg.topic_floor) * (1.0 + cfg.author_boost * fav) * pop  # (N,)
        ts = np.sort(rng.integers(w.user_join_us[u], window_us, int(w.user_len[u])))
        taken = np.zeros(len(static), bool)
        for t in ts:
            age = t - w.post_created_us  # (N,) us
            avail = (age >= 0) & ~taken
            if not avail.any():
                continue
            p = np.where(avail, static * (cfg.recency_floor + np.exp(-np.maximum(age, 0) / tau_us)), 0.0)
            p = p * burst_boost(bursts, int(t), w.post_topic, w.post_theme)
            i = int(rng.choice(len(p), p=p / p.sum()))
            taken[i] = True
            # engagement: stronger reactions to matching topics and favourite authors
            e = min(1.0, 1.5 * aff[i] + 0.4 * fav[i])
            pe = np.array([0.75 - 0.4 * e, 0.17 + 0.2 * e, 0.04 + 0.08 * e, 0.04 + 0.12 * e])
            users.append(u)
            posts.append(i)
            times.append(t)
            events.append(int(rng.choice(len(EVENTS), p=pe / pe.sum())))
    return {
        "user": np.asarray(users, np.int64),
        "post": np.asarray(posts, np.int64),
        "ts_us": np.asarray(times, np.int64),
        "event": np.asarray(events, np.int64),
    }


# ---------------------------------------------------------------- writing
def _check_out(out: Path, overwrite: bool) -> None:
    if out.exists() and not out.is_dir():
        raise ConfigError(f"--out {out} is a file; expected a directory (new or empty)")
    if out.is_dir() and any(out.iterdir()):
        if not overwrite:
            raise ConfigError(f"{out} exists and is not empty; pass --force (overwrite=True) to replace it")
        if not (out / "dataset.json").is_file() and not (out / "posts.parquet").is_file():
            raise ConfigError(f"refusing to replace {out}: it is not empty and does not look like a recsys dataset (no dataset.json)")


def synthesize(out: Path, cfg: SynthConfig | None = None, progress: bool = True, overwrite: bool = False) -> Dataset:
    """Write the synthetic platform for `cfg` to `out` and return the Dataset.

    The dataset is built in a temporary sibling directory and renamed into place at the end, so
    `out` never holds a half-written dataset. Raises ConfigError when `out` is non-empty and
    `overwrite` is False (or when it is non-empty and not a dataset)."""
    cfg = cfg or SynthConfig.preset("default")
    out = Path(out)
    _check_out(out, overwrite)
    with atomic_dir(out, "synth") as tmp:
        ds = _write(tmp, cfg, progress)
    ds.root = out
    return ds


def _write(root: Path, cfg: SynthConfig, progress: bool) -> Dataset:
    w = build_world(cfg)
    N = cfg.n_posts
    post_ids = np.arange(1, N + 1, dtype=np.int64)  # ids start at 1: never confuse id with index
    user_ids = np.arange(1, cfg.n_users + 1, dtype=np.int64)
    author_ids = np.arange(1, cfg.n_authors + 1, dtype=np.int64)
    media_no = post_ids.copy()  # media file names stay numbered whatever the ids
    if cfg.string_ids:
        post_ids, user_ids, author_ids = _string_ids(cfg, w)
    t0 = datetime.fromisoformat(cfg.start)
    if t0.tzinfo is None:
        t0 = t0.replace(tzinfo=timezone.utc)
    t0_us = int(t0.timestamp()) * 1_000_000

    theme_mood = np.array([THEME_MOOD[THEME_NAMES[t]] if t >= 0 else np.nan for t in w.post_theme])  # (N,)
    tones = draw_tones(_rng(cfg, _S_TONE), w.post_topic, w.post_author, cfg.n_topics, cfg.n_authors, theme_mood)  # (N,)
    texts: list[str | None] = []
    images: list[str | None] = []
    videos: list[str | None] = []
    bar = _progress(N, "synth media", progress)
    for i in range(N):
        pid = int(media_no[i])
        topic = THEME_NAMES[int(w.post_theme[i])] if w.post_theme[i] >= 0 else w.topics[int(w.post_topic[i])]  # what it shows
        texts.append(make_text(_rng(cfg, _S_TEXT, pid), topic, w.topics, cfg.text_noise, tone=tones[i]) if w.has_text[i] else None)
        img = vid = None
        if w.has_image[i]:
            img = f"{IMAGES_DIR}/{pid:06d}.jpg"
            scene = brighten(render_scene(_rng(cfg, _S_IMAGE, pid), topic, cfg.image_size), cfg.tone_brightness * tones[i])
            write_jpeg(scene, root / img, cfg.jpeg_quality)
        if w.has_video[i]:
            vid = f"{VIDEOS_DIR}/{pid:06d}.mp4"
            write_video(_rng(cfg, _S_VIDEO, pid), topic, root / vid, size=cfg.video_size,
                        frames=cfg.video_frames, fps=cfg.video_fps, codec=cfg.video_codec)
        images.append(img)
        videos.append(vid)
        if bar is not None:
            bar.update(1)
    if bar is not None:
        bar.close()

    posts = pl.DataFrame({
        "post_id": post_ids,
        "author_id": author_ids[w.post_author],
        "created_at": pl.Series(t0_us + w.post_created_us).cast(pl.Datetime("us", "UTC")),
        "text": pl.Series(texts, dtype=pl.String),
        "image_path": pl.Series(images, dtype=pl.String),
        "video_path": pl.Series(videos, dtype=pl.String),
    })

    ev = simulate_interactions(cfg, w)
    weights = np.asarray(cfg.event_weights, np.float32)
    inter = pl.DataFrame({
        "user_id": user_ids[ev["user"]],
        "post_id": post_ids[ev["post"]],
        "ts": pl.Series(t0_us + ev["ts_us"]).cast(pl.Datetime("us", "UTC")),
        "event": pl.Series([EVENTS[e] for e in ev["event"]], dtype=pl.String),
        "weight": weights[ev["event"]],
    }).sort("ts", "user_id", "post_id")

    gt = root / GROUND_TRUTH_DIR
    topics = list(w.topics)
    write_parquet(gt / "topics.parquet", pl.DataFrame({
        "topic_id": np.arange(len(topics), dtype=np.int64), "topic": topics, "motion": [MOTIONS[t] for t in topics]}))
    write_parquet(gt / "post_topics.parquet", pl.DataFrame({
        "post_id": post_ids, "topic": [topics[t] for t in w.post_topic], "popularity": w.post_pop,
        "theme": pl.Series([THEME_NAMES[t] if t >= 0 else None for t in w.post_theme], dtype=pl.String)}))
    write_parquet(gt / "authors.parquet", pl.DataFrame({
        "author_id": author_ids, "topic": [topics[t] for t in w.author_topic], "popularity": w.author_pop}))
    U, T = w.user_pref.shape
    write_parquet(gt / "user_preferences.parquet", pl.DataFrame({
        "user_id": np.repeat(user_ids, T), "topic": topics * U, "weight": w.user_pref.reshape(-1)}))
    fav_users = np.repeat(user_ids, [len(f) for f in w.user_fav])
    fav_authors = author_ids[np.concatenate(w.user_fav)] if w.user_fav else np.zeros(0, np.int64)
    write_parquet(gt / "user_authors.parquet", pl.DataFrame({"user_id": fav_users, "author_id": fav_authors}))
    write_parquet(gt / "post_tones.parquet", pl.DataFrame({"post_id": post_ids, "tone": tones, "label": tone_label(tones)}))
    bursts = schedule_bursts(cfg)
    write_bursts(gt, bursts, topics, t0_us, w.post_theme)

    end = datetime.fromtimestamp((t0_us + int(cfg.days * US_PER_DAY)) / 1e6, timezone.utc)
    meta = {
        "name": "synth",
        "source": {"format": "synth", "size": cfg.name, "seed": cfg.seed, "config": cfg.to_dict()},
        "protocol": {"mask_valid_on_test": True, "ks": [10, 20, 50], "headline_k": 20},
        "window": {"start": t0.isoformat(), "end": end.isoformat()},
        "topics": topics,
        "themes": [THEME_NAMES[b.theme] for b in bursts if b.kind == "theme"],
        "ground_truth": {
            "dir": GROUND_TRUTH_DIR,
            "files": ["topics.parquet", "post_topics.parquet", "authors.parquet",
                      "user_preferences.parquet", "user_authors.parquet", "post_tones.parquet", BURSTS_FILE],
        },
    }
    ds = save_dataset(root, posts, inter, meta=meta)
    logger.info("synth %s (seed %d): %d posts, %d users, %d interactions -> %s",
                cfg.name, cfg.seed, N, inter["user_id"].n_unique(), len(inter), root)
    return ds


def _string_ids(cfg: SynthConfig, w: World) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Ids as real platforms export them: posts as slugs (`p-cooking-000042`), users as UUIDs,
    authors as handles (`@travel_7`). Deterministic per seed. -> str arrays (N,), (U,), (A,)."""
    import uuid

    rng = np.random.default_rng([cfg.seed, 97])
    posts = np.array([f"p-{w.topics[int(t)]}-{i + 1:06d}" for i, t in enumerate(w.post_topic)], dtype=str)
    users = np.array([str(uuid.UUID(bytes=rng.bytes(16), version=4)) for _ in range(len(w.user_pref))], dtype=str)
    authors = np.array([f"@{w.topics[int(t)]}_{a + 1}" for a, t in enumerate(w.author_topic)], dtype=str)
    return posts, users, authors


def _progress(total: int, desc: str, enabled: bool):  # noqa: ANN202 - tqdm or None
    if not enabled:
        return None
    try:
        from tqdm.auto import tqdm
    except ImportError:  # pragma: no cover
        return None
    return tqdm(total=total, desc=desc, unit="post")


def load_ground_truth(root: Path) -> dict[str, pl.DataFrame]:
    """The hidden truth of a synthetic dataset: {"topics", "post_topics", "authors",
    "user_preferences", "user_authors"} -> DataFrame."""
    from recsys.errors import ArtifactError

    gt = Path(root) / GROUND_TRUTH_DIR
    if not gt.is_dir():
        raise ArtifactError(f"{root}: no {GROUND_TRUTH_DIR}/ directory (only `recsys synth` datasets have one)")
    return {p.stem: pl.read_parquet(p) for p in sorted(gt.glob("*.parquet"))}
