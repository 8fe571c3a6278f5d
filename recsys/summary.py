"""A readable summary of a dataset and its feature store (`recsys info`, the demo)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import polars as pl

from recsys.dataset import load_dataset
from recsys.features import load_features
from recsys.prior import half_life_of


def summarize(root: Path) -> dict[str, Any]:
    """Counts of posts per modality, users, interactions by event and split, time range, and
    per feature-store modality: dim, present/absent, encoder."""
    ds = load_dataset(root)
    posts, inter = ds.posts, ds.interactions
    n = len(posts)
    out: dict[str, Any] = {
        "name": ds.name,
        "root": str(ds.root),
        "fingerprint": ds.fingerprint(),
        "posts": n,
        "authors": int(posts["author_id"].n_unique()) if posts["author_id"].null_count() < n else 0,
        "posts_with": {
            "text": n - posts["text"].null_count(),
            "image": n - posts["image_path"].null_count(),
            "video": n - posts["video_path"].null_count(),
        },
        "users": int(inter["user_id"].n_unique()),
        "interactions": len(inter),
        "events": dict(sorted(inter.group_by("event").len().iter_rows())),
        "time_range": None,
        "splits": None,
        "features": {},
    }
    if inter["ts"].null_count() < len(inter):
        out["time_range"] = [str(inter["ts"].min()), str(inter["ts"].max())]
    if ds.splits is not None:
        out["splits"] = dict(sorted(ds.splits.group_by("split").len().iter_rows()))
    out["popularity_half_life_s"] = half_life_of(ds.meta)
    for name, f in load_features(root).items():
        out["features"][name] = {
            "dim": f.dim,
            "rows": len(f.post_ids),
            "present": int(f.present.sum()),
            "absent": int((~f.present).sum()),
            "failed": int(sum(h.startswith("!") for h in f.content_hash)),
            "encoder": f.meta.get("encoder", "?"),
        }
    return out


def format_summary(s: dict[str, Any]) -> str:
    pw = s["posts_with"]
    lines = [
        f"dataset {s['name']} ({s['root']}, fingerprint {s['fingerprint']})",
        f"  posts: {s['posts']:,} (text {pw['text']:,}, image {pw['image']:,}, video {pw['video']:,}); authors: {s['authors']:,}",
        f"  users: {s['users']:,}  interactions: {s['interactions']:,}  by event: "
        + ", ".join(f"{k} {v:,}" for k, v in s["events"].items()),
    ]
    if s["time_range"]:
        lines.append(f"  time range: {s['time_range'][0]} .. {s['time_range'][1]}")
    if s["splits"]:
        lines.append("  splits: " + ", ".join(f"{k} {s['splits'].get(k, 0):,}" for k in ("train", "valid", "test")))
        hl = s.get("popularity_half_life_s")
        lines.append("  popularity: " + ("all-time distinct users" if hl is None else f"distinct users weighted by recency, half-life {hl / 3600:g} h")
                     + " (recsys/prior.py)")
    else:
        lines.append("  splits: none (run `recsys split`)")
    if s["features"]:
        lines.append("  feature store:")
        for m, f in s["features"].items():
            lines.append(
                f"    {m:<6} {f['dim']:>5}-d  present {f['present']:,} / {f['rows']:,}"
                + (f" (failed {f['failed']:,})" if f["failed"] else "")
                + f"  encoder {f['encoder']}"
            )
    else:
        lines.append("  feature store: empty (run `recsys encode`)")
    return "\n".join(lines)
