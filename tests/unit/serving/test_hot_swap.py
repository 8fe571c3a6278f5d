"""A hot swap does not stall requests: the new bundle serves the recently seen users before it
takes traffic, and the collection after the swap never rescans the frozen libraries (a full
collection over them held the GIL for 0.3-1.6 s: the latency spike of every reload).
Figures: bench/swap_latency.py."""

from __future__ import annotations

import gc
import weakref

from fastapi.testclient import TestClient

from serving.app import create_app
from tests.unit.serving.conftest import KEY, READ, settings_for


def test_reload_warms_the_recent_users_first(ivf_bundle):
    with TestClient(create_app(settings_for(ivf_bundle, reload_warmup_users=8)), headers=READ) as c:
        for u in (5, 6, 7, 5):
            assert c.post("/v1/recommendations", json={"user_id": u, "k": 3}).status_code == 200
        r = c.post("/v1/admin/reload", params={"force": True}, headers=KEY).json()
        assert r["reloaded"] is True and r["warmed_users"] == 8, r
        assert c.post("/v1/recommendations", json={"user_id": 5, "k": 3}).status_code == 200
    with TestClient(create_app(settings_for(ivf_bundle, reload_warmup_users=0))) as c:
        assert c.post("/v1/admin/reload", params={"force": True}, headers=KEY).json()["warmed_users"] == 0


def test_reload_collects_without_rescanning_the_libraries_and_frees_the_old_state(ivf_bundle):
    frozen_at_collections = []

    def on_gc(phase, info):
        if phase == "start":
            frozen_at_collections.append(gc.get_freeze_count())

    with TestClient(create_app(settings_for(ivf_bundle))) as c:
        frozen = gc.get_freeze_count()
        assert frozen > 100_000, f"libraries frozen at start-up: {frozen} objects"
        old = weakref.ref(c.app.state.holder.state)
        gc.callbacks.append(on_gc)
        try:
            assert c.post("/v1/admin/reload", params={"force": True}, headers=KEY).json()["reloaded"] is True
        finally:
            gc.callbacks.remove(on_gc)
        assert frozen_at_collections, "the reload collects the previous state's cycles"
        # frozen objects that die leave the count; an unfreeze empties it
        assert min(frozen_at_collections) > frozen * 0.9, f"a collection ran over unfrozen libraries: {frozen_at_collections}"
        assert old() is None, "the previous state was not freed"
