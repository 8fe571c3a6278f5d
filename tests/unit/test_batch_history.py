"""The training batch's history window: reading only the last L + 1 items of each history gives
the answer of the whole history (targets repeated in the history included)."""

from __future__ import annotations

import numpy as np
import pytest

from training.train import batch_history


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_windowed_batch_history_equals_the_whole_history(seed):
    rng = np.random.default_rng(seed)
    U, D, L = 300, 60, 5
    lens = rng.integers(0, D + 1, U)
    lens[:3] = (0, 1, D)
    hist = np.full((U, D), -1, np.int64)
    for u, n in enumerate(lens):
        hist[u, :n] = rng.integers(0, 8, n)  # 8 posts: targets repeat in the histories
    users = rng.integers(0, U, 2000)
    targets = np.where(rng.random(2000) < 0.7, hist[users, np.maximum(lens[users] - 1, 0)], rng.integers(0, 8, 2000))
    whole = batch_history(hist, users, targets, L)
    windowed = batch_history(hist, users, targets, L, lens)
    assert np.array_equal(whole, windowed)
    assert (whole != -1).sum(1).max() == L and ((whole == targets[:, None]) & (whole >= 0)).sum() == 0
    # rows whose last L + 1 slots hold the target twice and have older items: redone, same answer
    twice = np.flatnonzero([(hist[u, max(0, lens[u] - L - 1) : lens[u]] == t).sum() > 1 and lens[u] > L + 1 for u, t in zip(users, targets)])
    assert len(twice) > 0
