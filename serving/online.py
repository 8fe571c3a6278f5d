"""What the API learned since the bundle was built, held in memory on top of it: posts added
(`Delta`), bundle rows deleted (tombstones), and users' events (`UserOverlay`).

Copy-on-write: a write builds a new delta snapshot / tombstone array and swaps one reference, so
a request that already read the old reference keeps a consistent view and never sees a
half-applied write. Writers are serialised by the caller (the app's write lock).

Shapes: m delta posts, d retrieval dim, Z latent dim.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

import numpy as np

from recsys.errors import ArtifactError
from recsys.inference import merge_history
from serving.catalogue import EMPTY, Catalogue
from serving.requests import BadInput, NotFound, now_us


@dataclass(frozen=True)
class Delta:
    """Posts added online (immutable snapshot; a write makes a new one)."""

    ids: np.ndarray = field(default_factory=lambda: EMPTY)  # int64 (m,)
    vectors: np.ndarray | None = None  # float32 (m, d)
    latents: np.ndarray | None = None  # float32 (m, Z)
    authors: np.ndarray = field(default_factory=lambda: EMPTY)  # int64 (m,)
    created: np.ndarray = field(default_factory=lambda: EMPTY)  # int64 (m,) us
    features: tuple = ()  # per post: ({m: vec}, {m: present}) for replay onto a reloaded bundle

    @property
    def n(self) -> int:
        return len(self.ids)

    def find(self, pid: int) -> int:
        hit = np.flatnonzero(self.ids == pid)
        return int(hit[0]) if len(hit) else -1


@dataclass
class UserOverlay:
    history: list[int] = field(default_factory=list)  # online events, most-recent-last
    seen: set[int] = field(default_factory=set)
    version: int = 0


class Online:
    """The in-memory overlay of one catalogue (bundle)."""

    def __init__(self, cat: Catalogue, history_keep: int) -> None:
        self.cat, self.history_keep = cat, history_keep
        self.delta = Delta(vectors=np.zeros((0, cat.d), np.float32), latents=np.zeros((0, cat.latent_dim), np.float32))
        self.tomb_rows = EMPTY  # sorted int64
        self.overlay: dict[int, UserOverlay] = {}
        self.overlay_lock = threading.Lock()
        self.applied_seq = int(cat.bundle.manifest.get("log_seq", 0))  # last online-log entry applied (the bundle covers up to its watermark)

    # --- reads -----------------------------------------------------------------------------

    def is_deleted_row(self, rows: np.ndarray) -> np.ndarray:
        t = self.tomb_rows
        if len(t) == 0:
            return np.zeros(len(rows), bool)
        pos = np.clip(np.searchsorted(t, rows), 0, len(t) - 1)
        return t[pos] == rows

    def exists(self, pid: int) -> bool:
        """A post that is served now (in the bundle and not deleted, or added online)."""
        r = self.cat.rows_of(np.array([pid], np.int64))[0]
        if r >= 0 and not self.is_deleted_row(np.array([r]))[0]:
            return True
        return self.delta.find(pid) >= 0

    def known_mask(self, post_ids: np.ndarray, delta: Delta | None = None) -> np.ndarray:
        """True for ids that exist in the bundle (deleted ones too: still valid history) or delta."""
        return (self.cat.rows_of(post_ids) >= 0) | np.isin(post_ids, (delta or self.delta).ids)

    def latents_of(self, post_ids: np.ndarray, delta: Delta | None = None) -> np.ndarray:
        """float32 (n, Z) latents for post ids (bundle or delta; zeros when unknown)."""
        bundle = self.cat.bundle
        out = np.zeros((len(post_ids), self.cat.latent_dim), np.float32)
        rows = self.cat.rows_of(post_ids)
        ok = rows >= 0
        out[ok] = bundle.latents[rows[ok]]
        delta = delta or self.delta
        if delta.n and not ok.all():
            miss = np.flatnonzero(~ok)
            order = np.argsort(delta.ids, kind="stable")
            pos = np.minimum(np.searchsorted(delta.ids[order], post_ids[miss]), delta.n - 1)
            hit = delta.ids[order[pos]] == post_ids[miss]
            out[miss[hit]] = delta.latents[order[pos[hit]]]
        return out

    def user_history(self, user_id: int) -> tuple[bool, np.ndarray, np.ndarray]:
        """(known, history ids most-recent-last, seen ids) from the bundle plus online events."""
        known, hist, seen = self.cat.stored_history(user_id)
        with self.overlay_lock:
            ov = self.overlay.get(user_id)
            if ov is not None:
                known = True
                hist = merge_history(hist, np.asarray(ov.history, np.int64), self.history_keep)
                seen = np.concatenate([seen, np.fromiter(ov.seen, np.int64, len(ov.seen))])
        return known, hist, seen

    def version_of(self, user_id: int | None) -> int:
        """Bumped by each event batch that touches the user (profile cache key)."""
        ov = self.overlay.get(user_id) if user_id is not None else None
        return ov.version if ov is not None else 0

    # --- writes ----------------------------------------------------------------------------

    def add(self, pid: int, author: int | None, created_us: int, latent: np.ndarray, vector: np.ndarray,
            feats: dict, present: dict) -> None:
        """Append one post (latent float32 (1, Z), vector float32 (1, d)) to the delta."""
        if vector.shape[-1] != self.cat.d:
            raise ArtifactError(f"model vector dim {vector.shape[-1]} != bundle dim {self.cat.d}")
        d = self.delta
        self.delta = Delta(
            ids=np.append(d.ids, np.int64(pid)),
            vectors=np.concatenate([d.vectors, vector.reshape(1, -1)]),
            latents=np.concatenate([d.latents, latent.reshape(1, -1)]),
            authors=np.append(d.authors, np.int64(-1 if author is None else author)),
            created=np.append(d.created, np.int64(created_us)),
            features=d.features + ((feats, present),),
        )

    def delete(self, post_id: int) -> None:
        j = self.delta.find(post_id)
        if j >= 0:
            d = self.delta
            keep = np.arange(d.n) != j
            self.delta = Delta(ids=d.ids[keep], vectors=d.vectors[keep], latents=d.latents[keep],
                               authors=d.authors[keep], created=d.created[keep],
                               features=tuple(f for i, f in enumerate(d.features) if i != j))
            return
        row = int(self.cat.rows_of(np.array([post_id], np.int64))[0])
        if row < 0 or self.is_deleted_row(np.array([row]))[0]:
            raise NotFound(f"post {post_id} not found (unknown or already deleted)")
        self.tomb_rows = np.union1d(self.tomb_rows, np.array([row], np.int64))

    def check_events(self, post_ids: np.ndarray) -> None:
        """Events may only name known posts (BadInput otherwise)."""
        if len(post_ids):
            unknown = post_ids[~self.known_mask(post_ids)]
            if len(unknown):
                raise BadInput(f"events must reference known post ids; {len(unknown)} unknown, e.g. {unknown[:5].tolist()}")

    def add_events(self, events: list) -> int:
        """Validate all, then apply all (nothing half-applied). Returns the number of users touched."""
        self.check_events(np.array([e.post_id for e in events], np.int64))
        return self.apply_events(event_tuples(events))

    def apply_events(self, events: list[tuple[int, int, str, int | None]]) -> int:
        """Apply (user_id, post_id, event, ts_us or None) events, oldest first (no ts: last, in
        order). No checks: an entry of the log is applied as it was accepted. Users touched."""
        ordered = sorted(enumerate(events), key=lambda t: (t[1][3] is None, t[1][3] or 0, t[0]))
        touched = set()
        keep = self.history_keep
        with self.overlay_lock:
            for _, (user, pid, _, _) in ordered:
                ov = self.overlay.setdefault(user, UserOverlay())
                ov.history = merge_history(np.asarray(ov.history, np.int64), np.array([pid], np.int64), keep).tolist()
                ov.seen.add(pid)
                touched.add(user)
            for u in touched:
                self.overlay[u].version += 1
        return len(touched)

    def carry_over(self, old: Online) -> None:
        """Take the deletes and users' events of `old` (another bundle's overlay) over; the delta
        posts are the caller's to re-add (they may need the new model)."""
        deleted_ids = old.cat.bundle.post_ids[old.tomb_rows]
        rows = self.cat.rows_of(deleted_ids)
        self.tomb_rows = np.unique(rows[rows >= 0]).astype(np.int64)
        with old.overlay_lock:
            self.overlay = {u: UserOverlay(list(o.history), set(o.seen), o.version + 1) for u, o in old.overlay.items()}


def event_tuples(events: list) -> list[tuple[int, int, str, int | None]]:
    """schemas.Event list -> (user_id, post_id, event, ts_us or None) tuples (the log's form)."""
    return [(e.user_id, e.post_id, e.event, None if e.ts is None else now_us(e.ts)) for e in events]
