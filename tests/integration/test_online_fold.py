"""Fold-in, end to end on the tiny synthetic platform: add a post, delete one, send events through
the API; `recsys build-index` folds the online log into a new bundle (the live post with its
logged latent, the deleted one gone, the events in the user's history, the seq covered); a hot
swap replays nothing twice; a restart replays only later writes; `recsys export-events` turns the
events into interactions that `recsys train` learns from."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
from fastapi.testclient import TestClient

from index import bundle as B
from recsys.cli import main as recsys_main
from serving.app import create_app
from serving.settings import Settings
from tests.conftest import copy_dataset

KEY = {"X-API-Key": "k"}


def test_log_folds_into_the_next_bundle_and_training(tiny_encoded: Path, tmp_path: Path):
    from recsys.dataset import load_dataset
    from recsys.features import load_features
    from recsys.split import split_dataset
    from training.train import TrainConfig, train

    data = copy_dataset(tiny_encoded, tmp_path / "data")
    split_dataset(data)
    # a popularity blend (not left to valid's choice): its coordinate follows the bundle's counts
    run = train(TrainConfig.preset("tiny", data=str(data), out=str(tmp_path / "run"), pop_blend=False,
                                   cold_channel=False, model={"pop_weight": 0.5, "pop_half": 5.0}))
    root = tmp_path / "index"
    assert recsys_main(["build-index", "--run", str(run), "--data", str(data), "--out", str(root)]) == 0
    ds, feats = load_dataset(data), load_features(data)
    post_ids = ds.posts["post_id"].to_list()
    new_pid, victim, x1, x2 = max(post_ids) + 1000, post_ids[0], post_ids[1], post_ids[2]
    user = int(ds.interactions["user_id"][0])
    f = {m: feats[m].aligned(np.array([post_ids[3]]))[0][0].tolist() for m in feats}
    settings = Settings(index_root=root, api_key="k", log_poll_ms=5, open_reads=True)
    n_inter = len(ds.interactions)

    with TestClient(create_app(settings)) as c:
        assert c.post("/v1/posts", json={"post_id": new_pid, "author_id": 1, "features": f}, headers=KEY).status_code == 201
        assert c.delete(f"/v1/posts/{victim}", headers=KEY).status_code == 200
        ev = [{"user_id": user, "post_id": p, "event": "like"} for p in (x1, x2, new_pid)]
        assert c.post("/v1/events", json={"events": ev}, headers=KEY).status_code == 200
        served_latent = c.app.state.holder.state.latents_of(np.array([new_pid]))[0].copy()
        log = c.get("/readyz").json()["log"]
        assert log["applied_seq"] == 3 and log["bundle_seq"] == 0

        # the next bundle folds the log in (build-index finds INDEX_ROOT/online_log.sqlite3 itself)
        assert recsys_main(["build-index", "--run", str(run), "--data", str(data), "--out", str(root)]) == 0
        b = B.load_bundle(root)
        assert b.manifest["log_seq"] == 3 and b.manifest["online"] == {"posts": 1, "deleted": 1, "events": 3}
        ids = b.post_ids.tolist()
        assert new_pid in ids and victim not in ids and len(ids) == len(post_ids)
        np.testing.assert_array_equal(b.latents[ids.index(new_pid)], served_latent)  # kept, not re-encoded
        # the blend's coordinate is set from the folded counts (the live post: one user now)
        from recsys.runs import load_run

        np.testing.assert_allclose(b.vectors[:, -1], load_run(run).popularity_z(b.popularity), atol=1e-6)
        assert b.popularity[ids.index(new_pid)] == 1 and b.vectors[ids.index(new_pid), -1] > 0
        hist = b.histories.filter(pl.col("user_id") == user)
        assert hist["history"][0].to_list()[-3:] == [x1, x2, new_pid] and {x1, x2, new_pid} <= set(hist["seen"][0].to_list())

        r = c.post("/v1/admin/reload", headers=KEY).json()
        assert r["reloaded"] and r["bundle_version"] == b.version
        ready = c.get("/readyz").json()
        # nothing applied twice: the folded writes are in the bundle, none replayed into the overlay
        assert (ready["delta_posts"], ready["deleted_posts"], ready["log"]["replayed"]) == (0, 0, 0)
        assert ready["log"]["applied_seq"] == ready["log"]["bundle_seq"] == 3
        assert c.get(f"/v1/posts/{victim}/similar?k=3").status_code == 404
        items = c.post("/v1/recommendations", json={"user_id": user, "k": 50}).json()["items"]
        assert not {x1, x2, new_pid} & {i["post_id"] for i in items}  # seen, now from the bundle's history
        assert c.delete(f"/v1/posts/{new_pid}", headers=KEY).status_code == 200  # a write after the swap

    with TestClient(create_app(settings)) as c:  # restart: the new bundle + only the entry after its watermark
        ready = c.get("/readyz").json()
        assert ready["log"]["replayed"] == 1 and ready["log"]["applied_seq"] == 4 and ready["deleted_posts"] == 1
        assert c.get(f"/v1/posts/{new_pid}/similar?k=3").status_code == 404

    # compaction drops what the bundle covers; the log keeps the later entry
    assert recsys_main(["index", "compact-log", "--root", str(root)]) == 0
    from recsys.online_log import open_log

    with open_log(root / "online_log.sqlite3") as lg:
        assert [e.seq for e in lg.read_after(0)] == [4] and lg.stats().compacted_through == 3

    # the events close the loop: interactions of the dataset, then a training run on them
    out = tmp_path / "data2"
    copy_dataset(data, out)
    from recsys.online_log.export import export_events

    log2 = tmp_path / "log2.sqlite3"  # the compacted log lost its events: export from an uncompacted copy
    with open_log(log2) as lg:
        with lg.writing() as w:
            from recsys.online_log import records

            w.append("events", records.events_payload([(user, x1, "like", None), (user, x2, "like", None), (user, new_pid, "like", None)]))
    r = export_events(str(log2), out)
    assert (r["added"], r["unknown_posts"], r["split_removed"]) == (2, 1, True)
    assert export_events(str(log2), out)["added"] == 0  # idempotent
    assert len(load_dataset(out).interactions) == n_inter + 2
    split_dataset(out)
    run2 = train(TrainConfig.preset("tiny", data=str(out), out=str(tmp_path / "run2")))
    assert (Path(run2) / "model.pt").is_file()
