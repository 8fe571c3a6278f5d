"""Split interactions into user x post sparse matrices, the common input of evaluation,
baselines and training.

    data = build_interaction_data(load_dataset(root))
    data.train / data.valid / data.test   scipy.sparse.csr_matrix float32 (U, N), binary
    data.user_ids (U,) int64 sorted; data.post_ids (N,) int64 in posts.parquet order

Rows index users, columns index ALL posts of the dataset (cold posts included), so full-
ranking evaluation scores every post.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import polars as pl
import scipy.sparse as sp

from recsys.dataset import Dataset
from recsys.errors import ConfigError, UnknownIdError
from recsys.schema import SPLIT_NAMES


@dataclass
class InteractionData:
    user_ids: np.ndarray  # int64 (U,), sorted
    post_ids: np.ndarray  # int64 (N,)
    train: sp.csr_matrix  # float32 (U, N) binary
    valid: sp.csr_matrix
    test: sp.csr_matrix
    dataset_name: str = ""
    fingerprint: str = ""
    # Protocol: when scoring test, also mask the user's validation items.
    mask_valid_on_test: bool = True
    # Protocol: when scoring test, the user's history (profile, history buckets, what baselines
    # see) also holds their valid interactions, as the server would then (temporal splits); False
    # for imported benchmarks whose fixed protocol profiles users from train only.
    test_history_includes_valid: bool = False
    post_created_us: np.ndarray | None = None  # int64 (N,) creation time, NULL_TS where unknown
    # Popularity counts (`recsys.prior`) of the history each split is scored from, float64 (N,)
    # by split name, where the dataset has a half-life; absent: the history's column sums.
    popularity: dict = field(default_factory=dict)
    half_life_s: float | None = None

    def history_splits(self, name: str) -> tuple[str, ...]:
        """Splits whose interactions form a user's history when `name` is scored."""
        self.split(name)
        if name == "test":
            return ("train", "valid") if self.test_history_includes_valid else ("train",)
        return ("train",)

    def popularity_for(self, name: str) -> np.ndarray:
        """float64 (N,): each post's popularity in the history `name` is scored from (distinct
        users, weighted by recency where the dataset has a half-life): the counts the population
        prior, the popular baseline and the popularity blend rank by."""
        if name in self.popularity:
            return self.popularity[name]
        return np.asarray(self.history_for(name).sum(axis=0), np.float64).ravel()

    def history_for(self, name: str) -> sp.csr_matrix:
        """Binary (U, N) history matrix when scoring `name` (see `history_splits`)."""
        parts = self.history_splits(name)
        if len(parts) == 1:
            return self.train
        m = sum((self.split(p) for p in parts[1:]), self.train.copy())
        m = (m > 0).astype(np.float32).tocsr()
        return m

    @property
    def n_users(self) -> int:
        return len(self.user_ids)

    @property
    def n_posts(self) -> int:
        return len(self.post_ids)

    def split(self, name: str) -> sp.csr_matrix:
        if name not in SPLIT_NAMES:
            raise ConfigError(f"split must be one of {list(SPLIT_NAMES)}, got {name!r}")
        return getattr(self, name)

    def exclude_for(self, name: str) -> sp.csr_matrix:
        """Items masked (never recommended) when scoring `name`: train, plus valid for test."""
        if name == "test" and self.mask_valid_on_test:
            return ((self.train + self.valid) > 0).astype(np.float32).tocsr()
        return self.train

    def user_index(self, user_ids: np.ndarray) -> np.ndarray:
        """Positions of `user_ids` in `self.user_ids`; -1 for unknown users."""
        return rows_of(self.user_ids, np.asarray(user_ids, np.int64), sorted_keys=True)

    def post_index(self, post_ids: np.ndarray) -> np.ndarray:
        """Positions of `post_ids` in `self.post_ids`; -1 for unknown posts."""
        return rows_of(self.post_ids, np.asarray(post_ids, np.int64), sorted_keys=False)

    def post_index_strict(self, post_ids: np.ndarray) -> np.ndarray:
        idx = self.post_index(post_ids)
        if (idx < 0).any():
            bad = np.asarray(post_ids)[idx < 0][:5].tolist()
            raise UnknownIdError(f"{int((idx < 0).sum())} unknown post id(s), e.g. {bad}")
        return idx


def rows_of(keys: np.ndarray, query: np.ndarray, sorted_keys: bool = False) -> np.ndarray:
    """Positions of `query` ids in `keys` (int64; -1 where absent); `sorted_keys` skips the sort."""
    if len(keys) == 0:
        return np.full(len(query), -1, np.int64)
    order = np.arange(len(keys)) if sorted_keys else np.argsort(keys, kind="stable")
    sk = keys[order]
    pos = np.clip(np.searchsorted(sk, query), 0, len(sk) - 1)
    return np.where(sk[pos] == query, order[pos], -1).astype(np.int64)


def build_interaction_data(ds: Dataset) -> InteractionData:
    """Binary (U, N) matrices per split. Users are every user with any interaction."""
    inter = ds.interactions_with_split()
    user_ids = np.sort(inter["user_id"].unique().to_numpy()).astype(np.int64)
    post_ids = ds.posts["post_id"].to_numpy().astype(np.int64)
    out = {}
    for name in SPLIT_NAMES:
        part = inter.filter(pl.col("split") == name)
        rows = np.searchsorted(user_ids, part["user_id"].to_numpy())
        cols = rows_of(post_ids, part["post_id"].to_numpy().astype(np.int64), sorted_keys=False)
        m = sp.csr_matrix(
            (np.ones(len(rows), np.float32), (rows, cols)), shape=(len(user_ids), len(post_ids))
        )
        m.sum_duplicates()
        m.data[:] = 1.0
        out[name] = m
    from recsys.inference import post_popularity
    from recsys.prior import half_life_of

    created = ds.posts["created_at"].dt.epoch("us").fill_null(np.iinfo(np.int64).min).to_numpy().astype(np.int64)
    half_life = half_life_of(ds.meta)
    data = InteractionData(
        user_ids=user_ids,
        post_ids=post_ids,
        dataset_name=ds.name,
        fingerprint=ds.fingerprint(),
        mask_valid_on_test=bool(ds.meta.get("protocol", {}).get("mask_valid_on_test", True)),
        test_history_includes_valid=test_history_includes_valid(ds.meta),
        post_created_us=created,
        half_life_s=half_life,
        **out,
    )
    if half_life is not None:  # recency-weighted counts at the end of each split's history
        for name in ("valid", "test"):
            part = inter.filter(pl.col("split").is_in(list(data.history_splits(name))))
            data.popularity[name] = post_popularity(part, post_ids, half_life)
    return data


def test_history_includes_valid(meta: dict) -> bool:
    """dataset.json `protocol.test_history` ("train" | "train+valid"); by default train + valid
    for a temporal split made by `recsys split` (what the server holds when test begins) and
    train only for imported benchmarks (their published protocol)."""
    default = "train+valid" if meta.get("split", {}).get("method") == "global_temporal" else "train"
    return meta.get("protocol", {}).get("test_history", default) == "train+valid"
