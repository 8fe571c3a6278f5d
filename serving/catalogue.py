"""Read-only lookups over one loaded bundle: post id -> row, author -> rows, created_at -> first
row, the popularity order, and the users' stored histories. Nothing here changes after load.

Shapes: N bundle posts.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from index import bundle as B
from recsys.errors import ArtifactError
from recsys.inference import popularity_order

AUTHOR_ROWS_KEEP = 100_000  # authors whose bundle rows a catalogue remembers (rows_of_author)
CREATED_STRIDE = 1024  # rows per block of the age filter's two-level search (first_row_at)
ID_ROWS_KEEP = 100_000  # excluded post ids whose bundle rows a catalogue remembers (excluded_id_rows)
EMPTY = np.zeros(0, np.int64)


class Catalogue:
    """One bundle's posts and stored users, with the lookups the filters need."""

    def __init__(self, bundle: B.Bundle) -> None:
        self.bundle = bundle
        self.n, self.d = bundle.n, int(bundle.manifest["dim"])
        self.latent_dim = int(bundle.latents.shape[1])
        # id -> row
        self._id_order = np.argsort(bundle.post_ids, kind="stable")
        self._id_sorted = bundle.post_ids[self._id_order]
        # author -> rows: the rows of author _auth_keys[j] are _auth_order[_auth_start[j] : _auth_start[j + 1]]
        self._auth_order = np.argsort(bundle.author_ids, kind="stable")
        self._auth_keys, start = np.unique(bundle.author_ids[self._auth_order], return_index=True)
        self._auth_start = np.append(start, self.n).astype(np.int64)
        self._author_rows: dict[int, np.ndarray] = {}  # memo of rows_of_author
        self._id_rows: dict[int, int] = {}  # memo of excluded_id_rows
        # age filter: every CREATED_STRIDE-th created_at (a small array that stays in cache), see first_row_at
        self._created_coarse = np.ascontiguousarray(bundle.created_at_us[::CREATED_STRIDE])
        # popularity fallback order: most interactions, then newest
        self.pop_order = popularity_order(bundle.popularity, bundle.created_at_us)  # the population prior's ranking
        # stored user histories, flattened (user_ids sorted)
        h = bundle.histories
        self._users = h["user_id"].to_numpy().astype(np.int64)
        self._h_off = np.concatenate([[0], np.cumsum(h["history"].list.len().to_numpy())]).astype(np.int64)
        self._h_val = h["history"].explode().drop_nulls().to_numpy().astype(np.int64)
        self._s_off = np.concatenate([[0], np.cumsum(h["seen"].list.len().to_numpy())]).astype(np.int64)
        self._s_val = h["seen"].explode().drop_nulls().to_numpy().astype(np.int64)

    def rows_of(self, post_ids: np.ndarray) -> np.ndarray:
        """Bundle rows of post ids, -1 where not in the bundle."""
        if len(post_ids) == 0 or self.n == 0:
            return np.full(len(post_ids), -1, np.int64)
        pos = np.searchsorted(self._id_sorted, post_ids)
        np.minimum(pos, self.n - 1, out=pos)
        rows = self._id_order[pos].astype(np.int64, copy=False)
        rows[self._id_sorted[pos] != post_ids] = -1
        return rows

    def excluded_id_rows(self, post_ids: list[int]) -> np.ndarray:
        """Bundle rows (int64) of the post ids a request excludes, ids not in the bundle dropped.
        Remembered per id: clients resend the same exclusions (posts already shown, "not
        interested"), and a dict lookup is a fraction of a binary search over N sorted ids that
        are cold in cache (at most ID_ROWS_KEEP ids are remembered; past that the memo starts over)."""
        memo = self._id_rows
        rows = [memo.get(i, -2) for i in post_ids]  # -2: not looked up yet, -1: not in the bundle
        if -2 in rows:
            miss = [i for i, r in zip(post_ids, rows) if r == -2]
            found = self.rows_of(np.array(miss, np.int64)).tolist()
            if len(memo) + len(miss) > ID_ROWS_KEEP:
                self._id_rows = memo = {}
            memo.update(zip(miss, found))
            rows = [memo[i] for i in post_ids]
        out = np.array(rows, np.int64)
        return out[out >= 0]

    @property
    def remembered_ids(self) -> int:
        """How many excluded ids `excluded_id_rows` remembers now (at most ID_ROWS_KEEP)."""
        return len(self._id_rows)

    def first_row_at(self, t_us: int) -> int:
        """The first bundle row created at or after `t_us` (rows are in created_at order). Two
        searches: among every CREATED_STRIDE-th timestamp, then inside one block; a single search
        over all N timestamps costs a cache miss per level."""
        b = int(self._created_coarse.searchsorted(t_us))  # row b * STRIDE is the first sampled one >= t
        lo, hi = max(b - 1, 0) * CREATED_STRIDE, min(b * CREATED_STRIDE, self.n)  # the answer is in (lo, hi]
        return lo + int(self.bundle.created_at_us[lo:hi].searchsorted(t_us))

    def rows_of_author(self, author: int) -> np.ndarray:
        """Bundle rows of one author (int64 ascending, a view; empty when unknown). Remembered per
        author, so an excluded author costs one dict lookup after the first time (at most
        AUTHOR_ROWS_KEEP authors are remembered; past that the memo starts over)."""
        rows = self._author_rows.get(author)
        if rows is None:
            keys = self._auth_keys
            j = int(np.searchsorted(keys, author))
            found = j < len(keys) and keys[j] == author
            rows = self._auth_order[self._auth_start[j] : self._auth_start[j + 1]] if found else EMPTY
            if len(self._author_rows) >= AUTHOR_ROWS_KEEP:
                self._author_rows = {}
            self._author_rows[author] = rows
        return rows

    def stored_history(self, user_id: int) -> tuple[bool, np.ndarray, np.ndarray]:
        """(known, history ids most-recent-last, seen ids) as the bundle stored them (views)."""
        i = np.searchsorted(self._users, user_id)
        if not (i < len(self._users) and self._users[i] == user_id):
            return False, EMPTY, EMPTY
        return True, self._h_val[self._h_off[i] : self._h_off[i + 1]], self._s_val[self._s_off[i] : self._s_off[i + 1]]


def load_model(bundle: B.Bundle) -> Any:
    """The bundle's copy of the trained run (recsys.runs.load_run)."""
    if bundle.run_dir is None:
        raise ArtifactError(f"bundle {bundle.path} has no {B.RUN_DIR}/ (the model that computes user vectors)")
    from recsys.runs import load_run

    run = load_run(bundle.run_dir)
    if int(run.dim) != int(bundle.manifest["dim"]):
        raise ArtifactError(f"bundle {bundle.path}: model dim {run.dim} != index dim {bundle.manifest['dim']}")
    if int(run.latent_dim) != int(bundle.manifest["latent_dim"]):
        raise ArtifactError(f"bundle {bundle.path}: model latent dim {run.latent_dim} != bundle latent dim {bundle.manifest['latent_dim']}")
    return run
