"""An offline look at what a model recommends: one self-contained HTML page for a sample of users,
each with their history, the model's top-K and a baseline's top-K side by side, the posts the
user went on to interact with in the split marked as hits.

    lists = gallery_lists(Path("data/synth"), Path("runs/synth"), "popular", split="test", n_users=8)
    write_gallery(Path("reports/gallery.html"), lists)

The lists are the evaluation's own (recsys.evaluation.evaluate with keep_lists: same masking of
already-seen posts, same tie-breaking), so a hit here is a hit in the report's Recall@K.
Thumbnails are embedded (data: URIs), so the file can be mailed or committed on its own.
"""

from __future__ import annotations

import base64
import datetime as dt
import html
import logging
from pathlib import Path

import numpy as np
import polars as pl

from recsys.errors import ArtifactError, ConfigError
from recsys.io import atomic_path

logger = logging.getLogger(__name__)

THUMB_PX = 120
HISTORY_SHOWN = 12


def gallery_lists(data_dir: Path, run_dir: Path, baseline: str, split: str = "test", n_users: int = 8,
                  k: int = 20, seed: int = 0) -> dict:
    """Top-k lists of a run and a baseline for `n_users` users sampled (seeded) among those the
    evaluation scores on `split`. -> {"dataset", "split", "k", "models": [name, name],
    "recall": {name: recall@k over all evaluated users}, "users": [{"user_id", "history",
    "lists": {name: [post ids]}, "hits": [post ids of the split]}]}."""
    from recsys.baselines import NEEDS_FEATURES, aligned_features, get_baseline
    from recsys.compare import check_run_dataset
    from recsys.dataset import load_dataset
    from recsys.evaluation import evaluate, relevant_items
    from recsys.interactions import build_interaction_data
    from recsys.runs import load_scorer

    if n_users < 1 or k < 1:
        raise ConfigError(f"--users and --k must be >= 1, got {n_users} and {k}")
    ds = load_dataset(Path(data_dir))
    if ds.splits is None:
        raise ArtifactError(f"{ds.root} has no splits.parquet; run `recsys split --data {ds.root}` first")
    data = build_interaction_data(ds)
    check_run_dataset(Path(run_dir), ds)
    fit = get_baseline(baseline)
    features = aligned_features(ds.root, data.post_ids) if baseline in NEEDS_FEATURES else None
    scorers = {f"run:{Path(run_dir).name}": load_scorer(Path(run_dir), ds, data),
               f"baseline:{baseline}": fit(data, features)}
    results = {name: evaluate(s, data, split, [k], keep_lists=True) for name, s in scorers.items()}
    users = next(iter(results.values()))["lists"][0]  # the same evaluated users for every model
    pick = np.sort(np.random.default_rng(seed).choice(len(users), min(n_users, len(users)), replace=False))
    relevant = relevant_items(data.split(split), data.exclude_for(split).tocsr())
    exclude = data.exclude_for(split).tocsr()
    inter = ds.interactions
    out_users = []
    for i in pick.tolist():
        u = int(users[i])
        uid = int(data.user_ids[u])
        seen = set(data.post_ids[exclude[u].indices].tolist())
        hist = (inter.filter((pl.col("user_id") == uid) & pl.col("post_id").is_in(list(seen)))
                .sort("ts", descending=True)["post_id"].unique(maintain_order=True).head(HISTORY_SHOWN).to_list())
        lists = {}
        for name, res in results.items():
            lu, idx, valid = res["lists"]
            assert lu[i] == u, "evaluated users differ between models"
            lists[name] = data.post_ids[idx[i][valid[i]]].tolist()
        umap = (getattr(ds, "id_maps", None) or {}).get("user")  # string user ids: shown as the dataset has them
        shown = umap.to_external(np.array([uid], np.int64))[0] if umap is not None else uid
        out_users.append({"user_id": shown, "internal_user_id": uid, "history": hist, "lists": lists,
                          "hits": sorted(data.post_ids[relevant[u].indices].tolist())})
    return {"dataset": ds.name, "root": str(ds.root), "split": split, "k": k, "models": list(scorers),
            "recall": {n: r["metrics"][f"recall@{k}"] for n, r in results.items()},
            "n_evaluated": int(len(users)), "users": out_users}


def write_gallery(path: Path, lists: dict) -> Path:
    """The HTML page for `gallery_lists(...)`, written atomically."""
    from recsys.dataset import load_dataset
    from recsys.thumbnails import thumbnail

    ds = load_dataset(Path(lists["root"]))
    posts = ds.posts.select("post_id", "author_id", "text", "image_path", "video_path")
    want = {p for u in lists["users"] for p in [*u["history"], *(x for l in u["lists"].values() for x in l)]}
    meta = {r["post_id"]: r for r in posts.filter(pl.col("post_id").is_in(list(want))).to_dicts()}
    thumbs: dict[int, str | None] = {}

    def thumb(pid: int) -> str | None:
        if pid not in thumbs:
            r = meta.get(pid, {})
            rel = r.get("image_path") or r.get("video_path")
            data = thumbnail(ds.root / rel, THUMB_PX) if rel else None
            thumbs[pid] = "data:image/jpeg;base64," + base64.b64encode(data).decode() if data else None
        return thumbs[pid]

    def tile(pid: int, rank: int | None = None, hit: bool = False) -> str:
        r = meta.get(pid, {})
        text = html.escape((r.get("text") or "")[:90]) or "<i>no text</i>"
        src = thumb(pid)
        pic = f'<img src="{src}" alt="">' if src else '<div class="noimg">text</div>'
        vid = '<span class="vid">▶</span>' if r.get("video_path") else ""
        badge = f'<span class="rank">{rank}</span>' if rank is not None else ""
        mark = '<span class="hitmark">✓ hit</span>' if hit else ""
        return (f'<div class="tile{" hit" if hit else ""}" title="post {pid} by @{r.get("author_id")}">'
                f'{badge}{vid}{pic}<div class="cap">{mark}{text}</div></div>')

    models = lists["models"]
    k = lists["k"]
    rows = []
    for u in lists["users"]:
        hits = set(u["hits"])
        cols = [f'<div class="col"><h3>history <span>(most recent first)</span></h3><div class="tiles">'
                + "".join(tile(p) for p in u["history"]) + "</div></div>"]
        for m in models:
            lst = u["lists"][m]
            n_hit = sum(p in hits for p in lst)
            cols.append(f'<div class="col"><h3>{html.escape(m)} <span>{n_hit} hit{"s" if n_hit != 1 else ""} '
                        f'of {len(hits)}</span></h3><div class="tiles">'
                        + "".join(tile(p, j + 1, p in hits) for j, p in enumerate(lst)) + "</div></div>")
        rows.append(f'<section class="user"><h2>user {u["user_id"]}</h2><div class="cols">{"".join(cols)}</div></section>')
    recall = " · ".join(f"{html.escape(m)}: recall@{k} {lists['recall'][m]:.4f}" for m in models)
    page = _PAGE.format(
        title=html.escape(f"{lists['dataset']} / {lists['split']}: top-{k} gallery"),
        summary=html.escape(f"{len(lists['users'])} users sampled (seeded) of the {lists['n_evaluated']:,} the evaluation "
                            f"scores on {lists['split']}; hits = posts the user interacted with in {lists['split']} "
                            f"(already-seen posts are masked, as in the evaluation). Written "
                            f"{dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC.") + "<br>" + recall,
        body="\n".join(rows))
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        tmp.write_text(page, encoding="utf-8")
    return path


_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
<style>
body {{ margin: 0; padding: 16px; font: 13px/1.35 system-ui, sans-serif; background: #f5f6f8; color: #1d2330; }}
h1 {{ font-size: 18px; margin: 0 0 4px; }} .summary {{ color: #6b7280; margin: 0 0 16px; }}
.user {{ background: #fff; border: 1px solid #e3e6eb; border-radius: 10px; padding: 10px; margin-bottom: 16px; }}
.user h2 {{ font-size: 15px; margin: 0 0 8px; }}
.cols {{ display: grid; grid-template-columns: 1fr 2fr 2fr; gap: 12px; }}
.col h3 {{ font-size: 13px; margin: 0 0 6px; }} .col h3 span {{ color: #6b7280; font-weight: normal; }}
.tiles {{ display: grid; grid-template-columns: repeat(auto-fill, minmax(84px, 1fr)); gap: 6px; }}
.tile {{ position: relative; border: 2px solid #e3e6eb; border-radius: 6px; overflow: hidden; background: #fff; }}
.tile.hit {{ border-color: #16a34a; box-shadow: 0 0 0 2px #bbf7d0; }}
.tile img, .noimg {{ width: 100%; aspect-ratio: 1; object-fit: cover; display: block; background: #e5e7eb; }}
.noimg {{ display: flex; align-items: center; justify-content: center; color: #9ca3af; }}
.cap {{ font-size: 10.5px; padding: 2px 4px; height: 3.9em; overflow: hidden; }}
.rank {{ position: absolute; left: 3px; top: 3px; background: rgba(0,0,0,.65); color: #fff; font-size: 10px; padding: 0 4px; border-radius: 3px; }}
.vid {{ position: absolute; right: 3px; top: 3px; background: rgba(0,0,0,.65); color: #fff; font-size: 10px; padding: 0 4px; border-radius: 3px; }}
.hitmark {{ display: block; color: #15803d; font-weight: 600; }}
@media (max-width: 800px) {{ .cols {{ grid-template-columns: 1fr; }} }}
</style></head>
<body><h1>{title}</h1><p class="summary">{summary}</p>
{body}
</body></html>
"""
