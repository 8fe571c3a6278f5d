"""serving.online: the in-memory overlay on its own (a catalogue, no model): added posts, deletes
of bundle and online posts, events validated as a whole, and the carry-over to another bundle."""

from __future__ import annotations

import numpy as np
import pytest

from index import bundle as B
from serving.catalogue import Catalogue
from serving.online import Online
from serving.requests import BadInput, NotFound
from serving.schemas import Event


@pytest.fixture(scope="module")
def cat(ivf_bundle):
    return Catalogue(B.load_bundle(ivf_bundle))


def _add(online: Online, pid: int, author: int = 5) -> None:
    c = online.cat
    online.add(pid, author, 123, np.full((1, c.latent_dim), 0.5, np.float32), np.ones((1, c.d), np.float32), {}, {})


def test_posts_added_and_deleted(cat):
    on = Online(cat, history_keep=10)
    before = on.delta
    _add(on, 10**7)
    assert before.n == 0 and on.delta.n == 1  # copy-on-write: the old snapshot is unchanged
    assert on.exists(10**7) and on.known_mask(np.array([10**7, -3])).tolist() == [True, False]
    np.testing.assert_array_equal(on.latents_of(np.array([10**7]))[0], 0.5)
    victim = int(cat.bundle.post_ids[4])
    on.delete(victim)
    on.delete(10**7)
    assert not on.exists(victim) and not on.exists(10**7) and on.delta.n == 0
    assert on.is_deleted_row(np.array([4, 5])).tolist() == [True, False]
    assert on.known_mask(np.array([victim]))[0]  # a deleted post is still valid history
    with pytest.raises(NotFound, match=f"post {victim} not found"):
        on.delete(victim)


def test_events_are_all_or_nothing_and_bump_the_user_version(cat):
    on = Online(cat, history_keep=3)
    pids = [int(x) for x in cat.bundle.post_ids[:5]]
    assert on.add_events([Event(user_id=99, post_id=p) for p in pids]) == 1
    known, hist, seen = on.user_history(99)
    assert known and hist.tolist() == pids[-3:] and set(seen.tolist()) == set(pids)  # history keeps the last 3
    assert on.version_of(99) == 1 and on.version_of(98) == 0
    with pytest.raises(BadInput, match=r"1 unknown, e.g. \[-5\]"):
        on.add_events([Event(user_id=99, post_id=pids[0]), Event(user_id=99, post_id=-5)])
    assert on.user_history(99)[1].tolist() == pids[-3:] and on.version_of(99) == 1  # nothing applied


def test_carry_over_keeps_deletes_and_events(cat):
    old = Online(cat, history_keep=10)
    victim = int(cat.bundle.post_ids[7])
    old.delete(victim)
    old.add_events([Event(user_id=1, post_id=victim)])
    new = Online(cat, history_keep=10)
    new.carry_over(old)
    assert not new.exists(victim) and victim in new.user_history(1)[2]
    assert new.version_of(1) == old.version_of(1) + 1  # cached profiles of the old bundle are stale
