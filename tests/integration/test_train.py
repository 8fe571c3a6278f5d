"""Training end to end on a small handmade dataset (and TikTok when ../shared is there)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import polars as pl
import pytest
import torch

from recsys.dataset import load_dataset
from recsys.errors import ArtifactError, ConfigError
from recsys.interactions import build_interaction_data
from recsys.inference import history_rows, latent_lookup, user_vectors
from recsys.runs import load_run, load_scorer
from tests.model_data import make_dataset
from training.train import TrainConfig, train

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def small(tmp_path_factory) -> Path:
    return make_dataset(tmp_path_factory.mktemp("small") / "ds")


@pytest.fixture(scope="module")
def small_authored(tmp_path_factory) -> Path:
    return make_dataset(tmp_path_factory.mktemp("small_authored") / "ds", authors=True)


@pytest.fixture(scope="module")
def tiny_run(small, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("runs") / "tiny"
    return train(TrainConfig.preset("tiny", data=str(small), out=str(out), epochs=6))


def test_run_dir_is_self_describing(tiny_run, small):
    info = json.loads((tiny_run / "run.json").read_text())
    assert info["dataset"]["fingerprint"] == load_dataset(small).fingerprint()
    assert info["preset"] == "tiny" and info["status"] == "done"
    assert {"torch", "torchrec", "numpy"} <= set(info["versions"])
    assert 1 <= info["best_epoch"] <= 6 and info["end_time"] >= info["start_time"]
    metrics = json.loads((tiny_run / "metrics.json").read_text())
    assert {"recall@20", "ndcg@20", "precision@20", "recall@10", "recall@50"} <= set(metrics["test"])


def test_loss_goes_down_and_beats_chance(tiny_run):
    hist = json.loads((tiny_run / "run.json").read_text())["history"]
    assert hist[-1]["loss"] < hist[0]["loss"]
    metrics = json.loads((tiny_run / "metrics.json").read_text())
    # 240 posts in 12 topics: random ranking gives recall@20 ~ 20/240
    assert metrics["valid"]["recall@20"] > 0.3


def test_checkpoint_round_trip_gives_identical_vectors(tiny_run, small):
    ds = load_dataset(small)
    data = build_interaction_data(ds)
    a, b = load_run(tiny_run), load_run(tiny_run)
    assert a.fingerprint == b.fingerprint and a.dataset_fingerprint == ds.fingerprint()
    assert a.modalities == {"audio": 12, "image": 24} and a.encoders == {"audio": "test-audio", "image": "test-image"}
    from recsys.runs import aligned_features

    feats, present, _ = aligned_features(small, data.post_ids)
    la, lb = a.post_latents(feats, present), b.post_latents(feats, present)
    assert la.shape == (data.n_posts, a.latent_dim) and la.dtype == np.float32
    assert np.array_equal(la, lb)
    pa, pb = a.post_vectors(la, data.post_ids), b.post_vectors(lb, data.post_ids)
    assert pa.shape == (data.n_posts, a.dim) and np.array_equal(pa, pb)
    # scores from the saved run reproduce the training-time valid figure
    from recsys.evaluation import evaluate

    res = evaluate(load_scorer(tiny_run, ds, data), data, "valid", ks=(20,))
    info = json.loads((tiny_run / "run.json").read_text())
    assert res["metrics"]["recall@20"] == pytest.approx(info["best_valid_recall20"], abs=1e-6)


def test_cold_posts_and_unknown_users(tiny_run, small):
    ds = load_dataset(small)
    data = build_interaction_data(ds)
    run = load_run(tiny_run)
    cold = data.post_ids[np.asarray(data.train.sum(0)).ravel() == 0]
    assert len(cold) and not np.isin(cold, run.post_table_ids).any()  # cold posts have no ID row
    from recsys.runs import aligned_features

    feats, present, _ = aligned_features(small, data.post_ids)
    lat = run.post_latents(feats, present)
    vec = run.post_vectors(lat, data.post_ids)
    assert np.allclose(np.linalg.norm(vec, axis=1), 1, atol=1e-5)  # content-only vectors too
    hists = [data.post_ids[h] for h in history_rows(ds, data, ("train",))[:3]]
    lookup = latent_lookup(data.post_ids, lat)
    known, _ = user_vectors(run, hists, data.user_ids[:3], lookup)
    unknown, has = user_vectors(run, hists, np.full(3, -999), lookup)
    assert has.all() and not np.allclose(known, unknown)  # unknown users still get a profile
    empty, has = user_vectors(run, [np.zeros(0, np.int64)] * 3, np.full(3, -999), lookup)
    assert not has.any() and np.array_equal(empty, np.zeros_like(empty))  # no history: reported


def test_resume_continues_from_checkpoint(small, tmp_path):
    out = tmp_path / "r"
    cfg = TrainConfig.preset("tiny", data=str(small), out=str(out), epochs=2)
    train(cfg)
    first = json.loads((out / "run.json").read_text())["history"]
    train(TrainConfig.preset("tiny", data=str(small), out=str(out), epochs=4, resume=True))
    hist = json.loads((out / "run.json").read_text())["history"]
    assert [h["epoch"] for h in hist] == [1, 2, 3, 4]
    assert hist[:2] == first  # the first two epochs are kept, not re-run
    # an uninterrupted 4-epoch run gives the same epochs 3-4 (model, optimizer and RNG restored)
    full = train(TrainConfig.preset("tiny", data=str(small), out=str(tmp_path / "full"), epochs=4))
    hist_full = json.loads((full / "run.json").read_text())["history"]
    assert [h["loss"] for h in hist_full] == pytest.approx([h["loss"] for h in hist], rel=1e-4)


def test_refuses_to_overwrite_and_resume_without_checkpoint(tiny_run, small, tmp_path):
    with pytest.raises(ArtifactError, match="already holds"):
        train(TrainConfig.preset("tiny", data=str(small), out=str(tiny_run)))
    with pytest.raises(ArtifactError, match="no checkpoint"):
        train(TrainConfig.preset("tiny", data=str(small), out=str(tmp_path / "x"), resume=True))


def test_fingerprint_mismatch_is_an_artifact_error(tiny_run, small, tmp_path):
    other = make_dataset(tmp_path / "other", seed=1)
    ds = load_dataset(other)
    with pytest.raises(ArtifactError, match="fingerprint"):
        load_scorer(tiny_run, ds, build_interaction_data(ds))


def test_overrides_reach_the_model(small, tmp_path):
    cfg = TrainConfig.preset("tiny", data=str(small), out=str(tmp_path / "o")).with_overrides(
        ["modalities=image", "recon_weight=0", "align_weight=0", "use_id=false", "epochs=1", "loss=bpr"]
    )
    run = load_run(train(cfg))
    assert run.modalities == {"image": 24} and run.post_table is None
    assert run.config["recon_weight"] == 0 and run.config["loss"] == "bpr"
    with pytest.raises(ConfigError, match="unknown config key"):
        cfg.with_overrides(["nope=1"])
    with pytest.raises(ConfigError, match="cannot parse"):
        cfg.with_overrides(["epochs=many"])


def test_distributed_two_processes_learn(small_authored, tmp_path):
    """torchrun with 2 gloo processes: ID tables (user, post, author) sharded table-wise by
    DistributedModelParallel."""
    small = small_authored
    out = tmp_path / "dist"
    env = {**os.environ, "TQDM_DISABLE": "1", "OMP_NUM_THREADS": "1"}
    cmd = [
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
        "-m", "training.cli", "--data", str(small), "--out", str(out), "--preset", "tiny", "--set", "epochs=4",
    ]
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    info = json.loads((out / "run.json").read_text())
    assert info["world_size"] == 2
    hist = info["history"]
    assert hist[-1]["loss"] < hist[0]["loss"]
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["valid"]["recall@20"] > 0.3
    run = load_run(out)
    assert run.post_table is not None and run.user_table is not None and run.author_table is not None


def test_cached_propagation_learns_and_auto_picks_it_above_the_edge_bound(small_authored, tmp_path):
    """`propagation=auto`: full propagation on a small graph, the cached snapshot above
    `cached_above_edges`; the cached path trains (loss down, valid recall far above chance)."""
    from recsys.model import ModelConfig, propagation_mode

    cfg = ModelConfig(modalities=(("a", 4),))
    assert propagation_mode(cfg, 1_000_000) == "full" and propagation_mode(cfg, 1_000_001) == "cached"
    with pytest.raises(ConfigError, match="loss='full'"):
        propagation_mode(ModelConfig(modalities=(("a", 4),), propagation="cached", loss="full"), 10)
    out = train(
        TrainConfig.preset("tiny", data=str(small_authored), out=str(tmp_path / "c"), epochs=5).with_overrides(
            ["cached_above_edges=10", "refresh_steps=2"]  # auto -> cached on this small graph
        )
    )
    assert json.loads((out / "run.json").read_text())["model_config"]["propagation"] == "auto"
    hist = json.loads((out / "run.json").read_text())["history"]
    assert hist[-1]["loss"] < hist[0]["loss"]
    assert json.loads((out / "metrics.json").read_text())["valid"]["recall@20"] > 0.3
    run = load_run(out)
    assert run.post_table is not None and run.user_table is not None  # served tables exported as usual


def test_partial_epoch_without_the_final_evaluation(small_authored, tmp_path):
    """`max_steps` cuts an epoch short (a timing at scale), `final_eval=false` leaves out the test
    and valid figures at the end: the run has its per-epoch valid figure and loads as usual."""
    out = train(
        TrainConfig.preset("tiny", data=str(small_authored), out=str(tmp_path / "p"), epochs=2).with_overrides(
            ["propagation=cached", "max_steps=3", "final_eval=false", "log_every=2"]
        )
    )
    info = json.loads((out / "run.json").read_text())
    assert [h["steps"] for h in info["history"]] == [3, 3]
    assert all("valid_recall@20" in h and h["step_seconds"] > 0 for h in info["history"])
    assert all(abs(h["seconds_per_step"] * 3 - h["step_seconds"]) < 1e-3 for h in info["history"])
    assert info["status"] == "done" and not (out / "metrics.json").exists()
    assert load_run(out).post_table is not None


def test_sharded_training_gives_the_losses_of_one_process(small_authored, tmp_path):
    """torchrun, 2 gloo ranks, ID tables sharded by the planner (cached propagation, the
    scale path) against one unsharded process that takes the same two half-batches per step
    (`emulate_world=2`) with the sharded tables' optimizer (Adagrad at `sparse_lr`): the same
    seed gives the same per-epoch losses (rank 0's half-batches) within float tolerance."""
    no_random = ["dropout=0", "modality_dropout=0", "post_id_dropout=0", "user_id_dropout=0"]
    common = ["epochs=3", "propagation=cached", "refresh_steps=3", "seed=3", *no_random]
    out = tmp_path / "sharded"
    env = {**os.environ, "TQDM_DISABLE": "1", "OMP_NUM_THREADS": "1"}
    cmd = [
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
        "-m", "training.cli", "--data", str(small_authored), "--out", str(out), "--preset", "tiny", "--set", *common, "log_every=2",
    ]
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "sharding ids.ebc.post: column_wise over ranks [0, 1]" in proc.stdout, proc.stdout  # the largest table: split
    assert "sharding ids.ebc.user:" in proc.stdout, proc.stdout  # the planner's choice for the others
    assert "rank 0: peak RSS" in proc.stdout and "rank 1: peak RSS" in proc.stdout, proc.stdout
    assert "epoch 1 step 2/" in proc.stderr, proc.stderr[-3000:]  # progress lines reach the log under torchrun
    one = train(
        TrainConfig.preset("tiny", data=str(small_authored), out=str(tmp_path / "one")).with_overrides(
            [*common, "emulate_world=2", "id_optimizer=adagrad", "ema=0"]
        )
    )
    sharded = [h["loss"] for h in json.loads((out / "run.json").read_text())["history"]]
    single = [h["loss"] for h in json.loads((one / "run.json").read_text())["history"]]
    assert len(sharded) == len(single) == 3
    assert sharded == pytest.approx(single, rel=2e-3)
    assert sharded[-1] < sharded[0]
    # a different seed is not within that tolerance (the comparison can fail)
    other = train(
        TrainConfig.preset("tiny", data=str(small_authored), out=str(tmp_path / "other")).with_overrides(
            [*common, "seed=4", "emulate_world=2", "id_optimizer=adagrad", "ema=0"]
        )
    )
    assert [h["loss"] for h in json.loads((other / "run.json").read_text())["history"]] != pytest.approx(single, rel=2e-3)


def test_author_table_places_cold_posts_of_known_authors(small_authored, tmp_path):
    """A post with no train interaction but a known author gets its author's ID row; the same
    content with no author, or an author the run never saw, is placed by content alone."""
    out = train(TrainConfig.preset("tiny", data=str(small_authored), out=str(tmp_path / "run"), epochs=4))
    run = load_run(out)
    ds = load_dataset(small_authored)
    data = build_interaction_data(ds)
    assert run.author_table is not None and run.author_table.shape == (len(run.author_table_ids), run.dim)
    assert set(run.author_table_ids) == set(ds.posts["author_id"].to_list())  # every author has train posts
    from recsys.runs import aligned_features, post_authors

    feats, present, _ = aligned_features(small_authored, data.post_ids)
    lat = run.post_latents(feats, present)
    authors = post_authors(ds, data.post_ids)
    cold = np.flatnonzero(~np.isin(data.post_ids, run.post_table_ids))
    assert len(cold) and (authors[cold] >= 0).all()
    with_author = run.post_vectors(lat[cold], data.post_ids[cold], authors[cold])
    no_author = run.post_vectors(lat[cold], data.post_ids[cold])
    stranger = run.post_vectors(lat[cold], data.post_ids[cold], np.full(len(cold), 999_999))
    assert np.allclose(np.linalg.norm(with_author, axis=1), 1, atol=1e-5)
    assert not np.allclose(with_author, no_author) and np.allclose(stranger, no_author)
    # the author row pulls a cold post towards that author's other posts
    warm_same = [np.flatnonzero((authors == authors[c]) & np.isin(data.post_ids, run.post_table_ids)) for c in cold]
    all_vec = run.post_vectors(lat, data.post_ids, authors)
    sim_with = np.mean([np.mean(all_vec[w] @ with_author[i]) for i, w in enumerate(warm_same)])
    sim_without = np.mean([np.mean(all_vec[w] @ no_author[i]) for i, w in enumerate(warm_same)])
    assert sim_with > sim_without


@pytest.mark.shared
@pytest.mark.slow
def test_tiktok_beats_most_popular_on_valid(tiktok, tmp_path):
    out = train(TrainConfig.preset("default", data=str(tiktok), out=str(tmp_path / "tt")))
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["valid"]["recall@20"] > 0.0597 * 1.1
    assert metrics["test"]["recall@20"] > 0.0597


def test_cold_post_borrows_id_rows_of_content_neighbours(tiny_run, small):
    ds = load_dataset(small)
    data = build_interaction_data(ds)
    run = load_run(tiny_run)
    from recsys.runs import aligned_features

    feats, present, _ = aligned_features(small, data.post_ids)
    lat = run.post_latents(feats, present)
    warm = int(np.flatnonzero(np.isin(data.post_ids, run.post_table_ids))[0])
    as_warm = run.post_vectors(lat[[warm]], data.post_ids[[warm]])[0]
    as_new = run.post_vectors(lat[[warm]], np.array([-12345]))[0]  # same content, unknown id
    run.config = {**run.config, "cold_knn": 0}
    content_only = run.post_vectors(lat[[warm]], np.array([-12345]))[0]
    assert float(as_new @ as_warm) > float(content_only @ as_warm)
    assert not np.allclose(as_new, content_only)


def test_cold_post_keys_are_the_centred_latents_of_the_id_row_posts(tiny_run, small):
    """The export holds one key per ID-row post: its latent minus the ID-row posts' mean,
    L2-normalised; a cold post is keyed by the same centre (a shift of every latent changes no key)."""
    from recsys.borrow import borrow_keys
    from recsys.runs import aligned_features

    run = load_run(tiny_run)
    feats, present, _ = aligned_features(small, run.post_table_ids, list(run.modalities))
    lat = torch.from_numpy(run.post_latents(feats, present))  # (Np, Z)
    assert torch.allclose(run.key_mean, lat.mean(0), atol=1e-5)
    assert torch.allclose(run.post_keys, torch.nn.functional.normalize(lat - lat.mean(0), dim=-1), atol=1e-5)
    shifted = borrow_keys(lat + 3.0)
    assert torch.allclose(shifted["post_keys"], run.post_keys, atol=1e-4)
    assert torch.allclose(borrow_keys(lat[:2] + 3.0, shifted["key_mean"])["post_keys"], run.post_keys[:2], atol=1e-4)


def test_a_run_exported_with_content_keys_still_places_cold_posts(tiny_run, small, tmp_path):
    """Runs written before the keys were latents carry `post_content` (Np, d) and no key_mean:
    they load and borrow by content vector as they did."""
    import shutil

    from recsys.runs import MODEL_FILE, aligned_features

    old = tmp_path / "old"
    shutil.copytree(tiny_run, old)
    run = load_run(old)
    feats, present, _ = aligned_features(small, run.post_table_ids, list(run.modalities))
    lat = torch.from_numpy(run.post_latents(feats, present))
    blob = torch.load(old / MODEL_FILE, map_location="cpu", weights_only=True)
    for key in ("post_keys", "key_mean"):
        blob["export"].pop(key)
    with torch.no_grad():
        blob["export"]["post_content"] = torch.nn.functional.normalize(run.model.content_vectors(lat), dim=-1)
    torch.save(blob, old / MODEL_FILE)
    legacy = load_run(old)
    assert legacy.key_mean is None and legacy.post_keys.shape == (len(lat), run.model.cfg.dim)
    as_warm = legacy.post_vectors(lat[:1].numpy(), legacy.post_table_ids[:1])[0]
    as_new = legacy.post_vectors(lat[:1].numpy(), np.array([-12345]))[0]
    legacy.config = {**legacy.config, "cold_knn": 0}
    content_only = legacy.post_vectors(lat[:1].numpy(), np.array([-12345]))[0]
    assert float(as_new @ as_warm) > float(content_only @ as_warm)


def test_trains_on_the_encoded_synthetic_platform(tiny_encoded, tmp_path):
    """Real encoder features (text/image/video) from the synthetic platform, temporal split."""
    from recsys.features import list_modalities

    ds_dir = tmp_path / "ds"
    import shutil

    shutil.copytree(tiny_encoded, ds_dir)
    if not (ds_dir / "splits.parquet").is_file():  # the synthetic platform ships without splits
        from recsys.split import split_dataset

        split_dataset(ds_dir)
    out = train(TrainConfig.preset("tiny", data=str(ds_dir), out=str(tmp_path / "run")))
    run = load_run(out)
    assert set(run.modalities) == set(list_modalities(ds_dir))
    metrics = json.loads((out / "metrics.json").read_text())
    assert 0 <= metrics["test"]["recall@20"] <= 1


def test_popularity_blend_is_one_more_coordinate(tiny_run, small, tmp_path):
    import shutil

    from recsys.runs import set_chosen_config

    blend = json.loads((tiny_run / "metrics.json").read_text())["pop_blend"]
    best = max(blend["grid"], key=lambda g: g[2])
    assert blend["best"][2] == pytest.approx(best[2], abs=1e-6)  # the grid's best on valid sets the bar
    # chosen: the first point tried within one standard error of the best (the best at the latest)
    chosen = next(i for i, g in enumerate(blend["grid"]) if g[:2] == [blend["pop_weight"], blend["pop_half"]])
    assert chosen <= blend["grid"].index(best)
    assert blend["valid_recall@20"] == pytest.approx(blend["grid"][chosen][2], abs=1e-6)
    assert blend["valid_recall@20"] >= best[2] - blend["se"] - 1e-6
    assert blend["grid"][0][:2] == [0.0, 0.0]  # "no blend" is always a candidate
    from training.blend import WEIGHTS

    tried = sorted({g[0] for g in blend["grid"]})
    assert tried[: len(WEIGHTS)] == list(WEIGHTS)
    for prev, a in zip(tried[len(WEIGHTS) - 1 :], tried[len(WEIGHTS) :]):  # past the edge: only while the edge was best
        assert a == 2 * prev and max((g for g in blend["grid"] if g[0] <= prev), key=lambda g: g[2])[0] == prev
    off, on = tmp_path / "off", tmp_path / "on"
    shutil.copytree(tiny_run, off)
    shutil.copytree(tiny_run, on)
    set_chosen_config(off, pop_weight=0.0, pop_half=0.0)
    set_chosen_config(on, pop_weight=0.5, pop_half=5.0)
    r0, r1 = load_run(off), load_run(on)
    assert r1.dim == r0.dim + 1
    ds = load_dataset(small)
    data = build_interaction_data(ds)
    ids = data.post_ids
    from recsys.runs import aligned_features

    f, p, _ = aligned_features(small, ids)
    lat = r0.post_latents(f, p)
    p0, p1 = r0.post_vectors(lat, ids), r1.post_vectors(lat, ids)
    assert np.allclose(p1[:, :-1], p0)
    counts = np.asarray(data.train.sum(axis=0)).ravel()  # distinct train users per post
    assert np.allclose(p1[:, -1], np.log1p(counts) / np.log1p(counts.max()), atol=1e-6)  # z(p); 0 without an ID row
    lookup = latent_lookup(ids, lat)
    hists = [np.zeros(0, np.int64), ids[:1], ids[:3], ids[:40]]  # n = 0, 1, 3, 40 -> read: <= max_history
    users = np.full(4, -1, np.int64)
    u0, has = user_vectors(r0, hists, users, lookup)
    u1, _ = user_vectors(r1, hists, users, lookup)
    n = np.minimum([0, 1, 3, 40], r1.max_history)
    want = np.where(has, 0.5 * 5.0 / (5.0 + n), 0.0)  # nobody-knows-you: no vector, the population prior
    assert np.allclose(u1[:, -1], want, atol=1e-6) and np.allclose(u1[:, :-1], u0)
    assert np.allclose(u1 @ p1.T, u0 @ p0.T + want[:, None] * p1[:, -1][None, :], atol=1e-5)
    assert np.allclose(r1.post_query(p1) @ p1.T, p0 @ p0.T, atol=1e-5)  # "similar posts": popularity left out
    # offline, each split's posts carry the counts of the history the server holds then (train for
    # valid, train + valid for test): popularity is the platform's state, not the training window's
    from recsys.runs import scorer_from_run

    scorer = scorer_from_run(r1, ds, data)
    z = {}
    for split in ("valid", "test"):
        got = scorer.for_history(None, split).posts.numpy()
        c = data.popularity_for(split)  # the split's history: column sums (no half-life in this dataset)
        assert np.array_equal(c, np.asarray(data.history_for(split).sum(0)).ravel())
        assert np.allclose(got[:, -1], np.log1p(c) / np.log1p(counts.max()), atol=1e-6) and np.allclose(got[:, :-1], p0)
        z[split] = got[:, -1]
    assert np.array_equal(z["valid"], p1[:, -1]) and (z["test"] >= z["valid"]).all()
    assert (z["test"] > z["valid"]).any() == ("valid" in data.history_splits("test"))  # a temporal split: valid counts too
    # an ensemble sets each member's coordinate (a member without a blend has none)
    from recsys.ensemble import EnsembleRun

    c = data.popularity_for("test") + 3
    ens = EnsembleRun(tmp_path, [r1, r0, r1])
    lat3 = np.concatenate([lat, lat, lat], axis=1)  # the members' latents side by side
    got = ens.with_popularity(ens.post_vectors(lat3, ids), c)
    np.testing.assert_allclose(got, ens.post_vectors(lat3, ids, popularity=c), atol=1e-6)
    cuts = np.cumsum([0, r1.dim, r0.dim, r1.dim])
    np.testing.assert_allclose(got[:, cuts[1] - 1], r1.popularity_z(c) * ens.member_scale, atol=1e-6)
    np.testing.assert_allclose(got[:, cuts[1]:cuts[2]], ens.post_vectors(lat3, ids)[:, cuts[1]:cuts[2]], atol=1e-6)


def test_id_shrink_is_chosen_on_valid_before_the_blend(small, tmp_path):
    from training.shrink import KAPPAS

    out = train(TrainConfig.preset("tiny", data=str(small), out=str(tmp_path / "r"), epochs=3, choose_id_shrink=True))
    metrics = json.loads((out / "metrics.json").read_text())
    shrink, blend = metrics["id_shrink"], metrics["pop_blend"]
    assert [k for k, _ in shrink["grid"]] == list(KAPPAS)  # kappa = 0 (the row alone) is a candidate
    best = max(r for _, r in shrink["grid"])
    assert shrink["id_shrink"] == min(k for k, r in shrink["grid"] if r == best)  # ties keep the smaller kappa
    run = load_run(out)
    assert run.config["id_shrink"] == shrink["id_shrink"]  # served as chosen
    # the blend is chosen on top of the chosen kappa: its "no blend" candidate is that kappa's figure
    assert blend["grid"][0][2] == pytest.approx(shrink["valid_recall@20"], abs=1e-6)
    from recsys.evaluation import evaluate

    ds = load_dataset(small)
    data = build_interaction_data(ds)
    served = evaluate(load_scorer(out, ds, data), data, "valid", ks=(20,))["metrics"]["recall@20"]
    assert served == pytest.approx(blend["valid_recall@20"], abs=1e-6)


def test_cold_channel_is_chosen_on_valid_and_scores_cold_posts_by_their_own_user_vector(tiny_run, small, tmp_path):
    import dataclasses
    import shutil

    from recsys.cold_channel import history_keys
    from recsys.runs import aligned_features, set_chosen_config
    from training.cold import KEY_WEIGHTS, OFFSETS, RATIOS

    metrics = json.loads((tiny_run / "metrics.json").read_text())
    cold, blend = metrics["cold_channel"], metrics["pop_blend"]
    s = float(load_run(tiny_run).model.cfg.content_scale)
    # stage 1: (lam, beta) by the recall of cold posts ranked among themselves, the grid first
    n = len(RATIOS) * len(KEY_WEIGHTS)
    assert [o[:2] for o in cold["order"][:n]] == [[r * s, b] for b in KEY_WEIGHTS for r in RATIOS]
    top = max(o[2] for o in cold["order"])
    lam, beta = next(o[:2] for o in cold["order"] if o[2] == top)
    # stage 2: the channel off first, then offsets at that (lam, beta), the grid's first
    assert cold["grid"][0][:3] == [s, 0.0, 0.0]
    assert [g[2] for g in cold["grid"][1 : 1 + len(OFFSETS)]] == pytest.approx([c * (1 + beta) for c in OFFSETS])  # scaled with the key weight
    assert all(g[:2] == [lam, beta] for g in cold["grid"][1:])
    # the choice: no worse on cold posts than the channel off, within one standard error of the best
    # eligible recall, and carrying at least as many cold posts as it
    chosen = [cold["cold_scale"], cold["cold_key_weight"], cold["cold_offset"]]
    g = cold["grid"][0] if chosen == [0.0, 0.0, 0.0] else next(g for g in cold["grid"] if g[:3] == chosen)
    best = cold["best"]
    assert best[4] >= cold["grid"][0][4] and g[4] >= cold["grid"][0][4]
    assert best[3] == max(x[3] for x in cold["grid"] if x[4] >= cold["grid"][0][4])
    assert g[3] >= best[3] - cold["se"] - 1e-6 and g[4] >= best[4]
    assert blend["grid"][0][2] == pytest.approx(cold["valid_recall@20"], abs=1e-6)  # the blend is chosen on top

    off, on, same, keyed = tmp_path / "off", tmp_path / "on", tmp_path / "same", tmp_path / "keyed"
    for d, keys in ((off, dict(cold_scale=0.0, cold_offset=0.0)), (on, dict(cold_scale=0.2, cold_offset=0.05)), (same, dict(cold_scale=s, cold_offset=0.0)),
                    (keyed, dict(cold_scale=0.2, cold_offset=-0.3, cold_key_weight=0.5))):
        shutil.copytree(tiny_run, d)
        set_chosen_config(d, **{"pop_weight": 0.0, "pop_half": 0.0, "cold_key_weight": 0.0, **keys})
    r0, r1, r2, r3 = load_run(off), load_run(on), load_run(same), load_run(keyed)
    assert r1.dim == 2 * r0.dim + 1 and r1.cold_channel and not r0.cold_channel
    assert r3.dim == 2 * r0.dim + r0.latent_dim + 1 and r3.cold_key_weight == 0.5
    data = build_interaction_data(load_dataset(small))
    ids = data.post_ids
    f, p, _ = aligned_features(small, ids)
    lat = r0.post_latents(f, p)
    p0, p1 = r0.post_vectors(lat, ids), r1.post_vectors(lat, ids)
    is_cold = np.isin(ids, r0.post_table_ids, invert=True)
    assert is_cold.any() and (~is_cold).any()
    lookup = latent_lookup(ids, lat)
    hists, users = [np.zeros(0, np.int64), ids[:3], ids[5:9]], np.array([-1, -1, data.user_ids[0]], np.int64)
    u0, has = user_vectors(r0, hists, users, lookup)
    u1, _ = user_vectors(r1, hists, users, lookup)
    r0.model.cfg = dataclasses.replace(r0.model.cfg, content_scale=0.2)  # the user side with cold_scale
    u_lam, _ = user_vectors(r0, hists, users, lookup)
    want = np.where(is_cold[None, :], u_lam @ p0.T + 0.05, u0 @ p0.T) * has[:, None]
    assert not has[0] and np.allclose(u1 @ p1.T, want, atol=1e-5)
    # with the content-key match: cold posts also get beta * cos(unit sum of the history's keys, their key)
    u3, _ = user_vectors(r3, hists, users, lookup)
    keys = r0.content_keys(lat)  # (N, Z)
    pos = {int(x): i for i, x in enumerate(ids)}
    h = np.stack([history_keys(keys[[pos[int(x)] for x in hh]][None], np.ones((1, len(hh)), bool))[0] for hh in hists])
    want3 = np.where(is_cold[None, :], u_lam @ p0.T + 0.5 * h @ keys.T - 0.3, u0 @ p0.T) * has[:, None]
    assert np.allclose(u3 @ r3.post_vectors(lat, ids).T, want3, atol=1e-5)
    # a history post the catalogue does not know (no latent) has no key: the match ignores it
    d2 = 2 * r0.model.cfg.dim
    ghost, _ = user_vectors(r3, [np.append(ids[:3], np.int64(10**15))], np.array([-1], np.int64), lookup)
    assert np.allclose(ghost[0, d2 : d2 + r0.latent_dim], u3[1, d2 : d2 + r0.latent_dim], atol=1e-6)
    # cold_scale = content_scale, offset 0: the channel-off scores
    u2, _ = user_vectors(r2, hists, users, lookup)
    assert np.allclose(u2 @ r2.post_vectors(lat, ids).T, u0 @ p0.T, atol=1e-5)
    # "similar posts" searches with post-as-query vectors: the cosine of the model's post vectors
    assert np.allclose(r1.post_query(p1) @ p1.T, p0 @ p0.T, atol=1e-5)


def test_a_fixed_cold_scale_is_not_chosen_over(small, tmp_path):
    cfg = TrainConfig.preset("tiny", data=str(small), out=str(tmp_path / "r")).with_overrides(["cold_scale=0.2"])
    with pytest.raises(ConfigError, match="cold_scale=0.2 is fixed, but cold_channel=true .*cold_channel=false"):
        train(cfg)
    for pair, want in (("cold_key_weight=0.5", "cold_key_weight=0.5 is fixed, but cold_channel=true"),
                       ("cold_offset=-0.1", "cold_offset=-0.1 is fixed, but cold_channel=true")):
        with pytest.raises(ConfigError, match=want):
            train(TrainConfig.preset("tiny", data=str(small), out=str(tmp_path / "r")).with_overrides([pair]))
    bad = TrainConfig.preset("tiny", data=str(small), out=str(tmp_path / "r2")).with_overrides(["cold_channel=false", "cold_key_weight=-1"])
    with pytest.raises(ConfigError, match="cold_key_weight must be >= 0 .*got -1"):
        train(bad)
    assert not (tmp_path / "r").exists()
    assert TrainConfig.preset("default").cold_channel and not TrainConfig.preset("scale").cold_channel


def test_a_fixed_id_shrink_is_not_chosen_over(small, tmp_path):
    cfg = TrainConfig.preset("default", data=str(small), out=str(tmp_path / "r")).with_overrides(["id_shrink=5"])
    with pytest.raises(ConfigError, match="id_shrink=5.0 is fixed, but choose_id_shrink=true .*choose_id_shrink=false"):
        train(cfg)
    assert not (tmp_path / "r").exists()  # refused before anything was written
    assert TrainConfig.preset("default").choose_id_shrink and not TrainConfig.preset("synth").choose_id_shrink


def test_borrow_dropped_trains_and_refuses_what_it_cannot_train_for(small, tmp_path):
    base = TrainConfig.preset("tiny", data=str(small), out=str(tmp_path / "r"), epochs=2)
    for extra, why in ((["loss=full"], "loss='full'"), (["cold_knn=0"], "cold_knn=0"), (["propagation=cached"], "needs full propagation")):
        with pytest.raises(ConfigError, match=why):
            train(base.with_overrides(["borrow_dropped=true", *extra]))
    out = train(base.with_overrides(["borrow_dropped=true", "post_id_dropout=0.5"]))
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["valid"]["recall@20"] > 20 / 240  # above chance (240 posts)
    assert load_run(out).config["borrow_dropped"] is True


def test_negative_shrink_kappas_are_refused_with_the_key_named(small, tmp_path):
    base = TrainConfig.preset("tiny", data=str(small), out=str(tmp_path / "r"), epochs=1)
    for key in ("id_shrink", "train_id_shrink"):
        with pytest.raises(ConfigError, match=f"{key} must be >= 0 .* got -1.0"):
            train(base.with_overrides([f"{key}=-1"]))
    assert not (tmp_path / "r").exists()  # refused before anything was written


def test_lr_decay_lowers_every_rate_after_each_epoch_without_a_valid_gain(small, tmp_path):
    base = TrainConfig.preset("tiny", data=str(small), out=str(tmp_path / "r"), epochs=4, patience=10, ema=0.0)
    for bad in ("lr_decay=0", "lr_decay=1.5"):
        with pytest.raises(ConfigError, match="expected 0 < lr_decay <= 1, got"):
            train(base.with_overrides([bad]))
    assert not (tmp_path / "r").exists()  # refused before anything was written
    # rates so small that valid cannot improve after the first epoch: every later epoch is flat
    out = train(base.with_overrides(["lr_decay=0.5", "lr=1e-9", "id_lr=1e-9"]))
    history = json.loads((out / "run.json").read_text())["history"]
    best = -1.0
    for rec in history:
        flat = rec["valid_recall@20"] <= best
        assert ("lr_scaled" in rec) == flat, rec  # lowered exactly after the flat epochs
        best = max(best, rec["valid_recall@20"])
    n_scaled = sum("lr_scaled" in r for r in history)
    assert n_scaled >= 1
    ck = torch.load(out / "checkpoint.pt", map_location="cpu", weights_only=False)
    groups = [g for o in ck["optimizer"].get("optimizers", [ck["optimizer"]]) for g in o["param_groups"]]
    assert groups and all(g["lr"] == pytest.approx(1e-9 * 0.5**n_scaled) for g in groups)


@pytest.fixture(scope="module")
def temporal_small(tmp_path_factory) -> Path:
    return make_dataset(tmp_path_factory.mktemp("temporal") / "ds", test_history="train+valid")


def test_refit_trains_the_served_model_on_train_and_valid(temporal_small, tmp_path):
    from recsys.compare import compare
    from recsys.runs import SELECTION_DIR, run_for_split

    out = train(TrainConfig.preset("tiny", data=str(temporal_small), out=str(tmp_path / "r"), epochs=3, refit="on", choose_id_shrink=True, lr_decay=0.5))
    info = json.loads((out / "run.json").read_text())
    sel_info = json.loads((out / SELECTION_DIR / "run.json").read_text())
    assert sel_info["trained_on"] == ["train"] and info["trained_on"] == ["train", "valid"]
    assert info["selection"]["best_epoch"] == sel_info["best_epoch"] == len(info["history"])  # as many epochs
    assert "valid_recall@20" not in info["history"][-1]  # the refit never looks at valid
    # the refit lowers its rates after the epochs where the selection run did (`lr_decay`)
    decayed = [r["epoch"] for r in sel_info["history"] if "lr_scaled" in r and r["epoch"] < sel_info["best_epoch"]]
    assert [r["epoch"] for r in info["history"] if "lr_scaled" in r] == decayed == info["selection"]["lr_scaled_after"]
    # the served model knows the valid interactions' posts and users; the selection run does not
    data = build_interaction_data(load_dataset(temporal_small))
    valid_posts = set(data.post_ids[np.unique(data.valid.indices)].tolist())
    served, sel = load_run(out), load_run(out / SELECTION_DIR)
    assert valid_posts <= set(served.post_table_ids.tolist())
    assert not valid_posts <= set(sel.post_table_ids.tolist())
    for key in ("pop_weight", "pop_half", "id_shrink", "cold_scale", "cold_offset"):  # what was chosen on valid carries over
        assert served.config[key] == sel.config[key]
    # valid is scored through the selection run (the served model has seen valid); test through the refit
    assert run_for_split(out, "valid") == out / SELECTION_DIR and run_for_split(out, "test") == out
    v = compare(temporal_small, [], [out], "valid", (20,))["models"][0]
    metrics = json.loads((out / "metrics.json").read_text())
    assert v["metrics"]["recall@20"] == pytest.approx(metrics["valid"]["recall@20"], abs=1e-9)
    assert metrics["refit"]["selection"]["test_without_refit"]["recall@20"] >= 0


def test_refit_on_needs_a_temporal_split_and_is_off_by_default(small, temporal_small):
    from training.train import refits

    with pytest.raises(ConfigError, match="refit=on needs"):
        refits(TrainConfig.preset("tiny", refit="on"), build_interaction_data(load_dataset(small)))
    temporal = build_interaction_data(load_dataset(temporal_small))
    assert not refits(TrainConfig.preset("tiny"), temporal)  # decided on valid (bench/refit_backtest.py)
    assert refits(TrainConfig.preset("tiny", refit="auto"), temporal)
