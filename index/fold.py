"""Fold the online log into a bundle build (`recsys build-index --log`).

The net effect of the log on the catalogue, replayed with the serving rules (serving.state
apply_entries): a post is added unless it exists (in the catalogue and not deleted, or added
before); a delete removes an added post or a catalogue post; events extend users' histories.

    posts added live    -> rows of the new bundle, with the latent and vector the log holds when
                           the run is the model that made them (else re-encoded from the logged features)
    posts deleted       -> absent from the new bundle
    events              -> users' histories and seen sets (and the posts' popularity)

The new bundle records the seq it covers (manifest `log_seq`), so workers that swap to it replay
only later entries, and keeps the folded state (ONLINE_FILE: live posts with their features,
deletes, events) so the next build folds on top of it and entries it covers can be compacted.

Shapes: N posts, m live posts, Z latent dim, d retrieval dim.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from index import bundle as B
from recsys.errors import ArtifactError
from recsys.online_log import open_log, records

logger = logging.getLogger(__name__)

FOLDED_SCHEMA = {"kind": pl.Utf8, "post_id": pl.Int64, "user_id": pl.Int64, "event": pl.Utf8, "ts_us": pl.Int64,
                 "payload": pl.Utf8}


@dataclass
class Folded:
    """The net effect of the log up to `seq`."""

    seq: int = 0
    posts: dict[int, dict] = field(default_factory=dict)  # post_id -> post payload (live posts, in order added)
    deleted: set[int] = field(default_factory=set)  # catalogue post ids deleted
    events: list[tuple[int, int, str, int]] = field(default_factory=list)  # (user, post, event, ts_us)

    def to_frame(self) -> pl.DataFrame:
        rows = [("post", pid, None, None, None, json.dumps(p)) for pid, p in self.posts.items()]
        rows += [("delete", pid, None, None, None, None) for pid in sorted(self.deleted)]
        rows += [("event", p, u, e, t, None) for u, p, e, t in self.events]
        return pl.DataFrame(rows, schema=FOLDED_SCHEMA, orient="row")

    @classmethod
    def from_frame(cls, df: pl.DataFrame, seq: int) -> Folded:
        f = cls(seq=seq)
        for kind, pid, user, event, ts, payload in df.iter_rows():
            if kind == "post":
                f.posts[pid] = json.loads(payload)
            elif kind == "delete":
                f.deleted.add(pid)
            else:
                f.events.append((user, pid, event, ts))
        return f


def previous_fold(out_root: Path) -> Folded | None:
    """The folded state of the CURRENT bundle under `out_root` (None: no bundle, or one built without a log)."""
    if B.current_version(out_root) is None:
        return None
    d = B.resolve(out_root)
    m = B.read_json(d / B.MANIFEST)
    if "log_seq" not in m:
        return None
    path = d / B.ONLINE_FILE
    return Folded.from_frame(pl.read_parquet(path), int(m["log_seq"])) if path.is_file() else Folded(seq=int(m["log_seq"]))


def fold_log(log_spec: str, catalogue_ids: np.ndarray, base: Folded | None = None) -> Folded:
    """Replay the log's entries after `base.seq` on top of `base`, over a catalogue of `catalogue_ids`."""
    f = base or Folded()
    in_cat = set(np.asarray(catalogue_ids, np.int64).tolist())
    with open_log(log_spec) as log:
        done = log.stats().compacted_through
        if done > f.seq:
            raise ArtifactError(f"online log {log.url} was compacted through seq {done}, but the bundle to fold on "
                                f"covers only up to seq {f.seq}: build on the bundle that covers it (--out of that index)")
        while entries := log.read_after(f.seq, 10_000):
            for e in entries:
                pid = e.payload.get("post_id")
                if e.kind == "post":
                    if not ((pid in in_cat and pid not in f.deleted) or pid in f.posts):
                        f.posts[pid] = e.payload
                elif e.kind == "delete":
                    if pid in f.posts:
                        del f.posts[pid]
                    elif pid in in_cat:
                        f.deleted.add(pid)
                else:
                    f.events += [(u, p, ev, e.written_us if t is None else t) for u, p, ev, t in records.read_events(e.payload)]
                f.seq = e.seq
    return f


def fold_into(cat: Any, folded: Folded, run: Any, history_max: int) -> Any:
    """index.build.Catalogue -> a new one with the folded posts, deletes and events applied."""
    from index.build import Catalogue

    keep = ~np.isin(cat.post_ids, np.fromiter(folded.deleted, np.int64, len(folded.deleted)))
    kept = set(cat.post_ids[keep].tolist())
    recs = [records.read_post(p) for pid, p in folded.posts.items() if pid not in kept]  # the catalogue may hold some now
    lat, vec = _post_vectors(recs, run, cat.latents.shape[1])
    post_ids = np.concatenate([cat.post_ids[keep], np.array([r.post_id for r in recs], np.int64)])
    pop, now = _folded_popularity(cat, post_ids, keep, len(recs), folded.events)
    vectors = run.with_popularity(np.concatenate([cat.vectors[keep], vec]), pop)  # the blend's counts, as a build sets them
    return Catalogue(
        post_ids=post_ids,
        author_ids=np.concatenate([cat.author_ids[keep], np.array([-1 if r.author_id is None else r.author_id for r in recs], np.int64)]),
        created_at_us=np.concatenate([cat.created_at_us[keep], np.array([r.created_us for r in recs], np.int64)]),
        latents=np.concatenate([cat.latents[keep], lat]),
        vectors=vectors,
        popularity=pop,
        histories=merge_events(cat.histories, folded.events, history_max),
        id_maps=_with_live_keys(cat.id_maps, recs),
        half_life_s=cat.half_life_s,
        popularity_now_us=now,
        modality_codes=None if cat.modality_codes is None else np.concatenate(  # live posts: no codes (why_modality
            [cat.modality_codes[keep], np.zeros((len(recs), *cat.modality_codes.shape[1:]), cat.modality_codes.dtype)]),  # says "content")
    )


def _folded_popularity(cat: Any, post_ids: np.ndarray, keep: np.ndarray, n_new: int, events: list) -> tuple[np.ndarray, int | None]:
    """The catalogue's popularity (recsys.prior) with the folded events' new (user, post) pairs
    counted, float64 (len(post_ids),), and the time it is weighted at. With a half-life every
    count decays to the latest event's time and a new pair adds 2^(-age / half_life); a pair the
    catalogue already holds keeps its weight (the bundle does not keep interaction times)."""
    pop = np.concatenate([np.asarray(cat.popularity, np.float64)[keep], np.zeros(n_new)])
    hl, now = cat.half_life_s, cat.popularity_now_us
    if not events:
        return pop, now
    latest: dict[tuple[int, int], int] = {}
    for u, p, _, t in events:
        latest[(u, p)] = max(latest.get((u, p), t), t)
    for pair in _pairs(cat.histories.filter(pl.col("user_id").is_in([u for u, _ in latest]))):
        latest.pop(pair, None)
    if not latest:
        return pop, now
    ids = np.array([p for _, p in latest], np.int64)
    ts = np.array(list(latest.values()), np.int64)
    from recsys.interactions import rows_of
    from recsys.prior import decay_weights

    new_now = int(ts.max()) if now is None else max(int(now), int(ts.max()))
    if now is not None:
        pop *= decay_weights(np.array([now], np.int64), new_now, hl)[0]  # 1 without a half-life
    rows = rows_of(np.asarray(post_ids, np.int64), ids)
    w = decay_weights(ts, new_now, hl)
    np.add.at(pop, rows[rows >= 0], w[rows >= 0])
    return pop, new_now


def _with_live_keys(id_maps: dict | None, recs: list) -> dict | None:
    """The catalogue's id maps plus the string keys of live posts (answers name them by their key)."""
    keys = [r.key for r in recs if r.key is not None]
    if not keys:
        return id_maps
    from recsys.ids import IdMap

    out = dict(id_maps or {})
    live = IdMap.from_keys(keys, "live post ids")
    out["post"] = out["post"].merged(live) if "post" in out else live
    return out


def _pairs(histories: pl.DataFrame) -> set[tuple[int, int]]:
    """(user, post) pairs the stored histories already hold (their `seen` sets)."""
    return {(u, p) for u, seen in histories.select("user_id", "seen").iter_rows() for p in seen}


def _post_vectors(recs: list, run: Any, latent_dim: int) -> tuple[np.ndarray, np.ndarray]:
    """float32 (m, Z), (m, d): the logged ones when `run` made them, else re-encoded from the features."""
    fp = str(getattr(run, "fingerprint", ""))
    lat, vec = [], []
    for r in recs:
        if r.model == fp and r.latent.shape[1] == latent_dim:
            z, v = r.latent, r.vector
        else:
            z = np.asarray(run.post_latents(r.features, r.present), np.float32).reshape(1, -1)
            author = np.array([-1 if r.author_id is None else r.author_id], np.int64)
            v = np.asarray(run.post_vectors(z, np.array([r.post_id], np.int64), author), np.float32).reshape(1, -1)
        lat.append(z)
        vec.append(v)
    d = int(getattr(run, "dim", 0))
    if not recs:
        return np.zeros((0, latent_dim), np.float32), np.zeros((0, d), np.float32)
    return np.concatenate(lat), np.concatenate(vec)


def merge_events(histories: pl.DataFrame, events: list[tuple[int, int, str, int]], history_max: int) -> pl.DataFrame:
    """Users' histories (user_id, history most-recent-last, seen) extended by events, oldest first,
    as serving applies them: a post seen again moves to the end, the last `history_max` kept."""
    if not events:
        return histories
    from recsys.inference import merge_history

    hist = {u: (np.asarray(h, np.int64), set(s)) for u, h, s in histories.iter_rows()}
    new: dict[int, list[int]] = {}
    for u, p, _, _ in sorted(events, key=lambda t: t[3]):  # oldest first
        new.setdefault(u, []).append(p)
    for u, posts in new.items():
        h, seen = hist.get(u, (np.zeros(0, np.int64), set()))
        hist[u] = (merge_history(h, np.asarray(posts, np.int64), history_max), seen | set(posts))
    users = sorted(hist)
    return pl.DataFrame({"user_id": pl.Series(users, dtype=pl.Int64),
                         "history": pl.Series([hist[u][0].tolist() for u in users], dtype=pl.List(pl.Int64)),
                         "seen": pl.Series([sorted(hist[u][1]) for u in users], dtype=pl.List(pl.Int64))})


def compact(log_spec: str, index_root: Path) -> tuple[int, int]:
    """Drop the log entries the CURRENT bundle under `index_root` covers: (dropped, through seq).
    Every worker must serve that bundle (or a later one) first."""
    m = B.read_json(B.resolve(index_root) / B.MANIFEST)
    if "log_seq" not in m:
        raise ArtifactError(f"bundle {B.resolve(index_root)} was built without the online log (no log_seq): nothing it covers")
    through = int(m["log_seq"])
    with open_log(log_spec) as log:
        return log.compact(through), through
