"""VADER runs offline; the head is kept only when it beats the cluster mean on held-out posts."""

from __future__ import annotations

import socket

import numpy as np
import pytest

from recsys.analysis import sentiment as S


def test_vader_needs_no_network(monkeypatch):
    def no_net(*a, **k):
        raise AssertionError("VADER tried to open a socket")

    S._analyzer.cache_clear()
    monkeypatch.setattr(socket, "socket", no_net)
    monkeypatch.setattr(socket, "create_connection", no_net)
    s = S.vader_scores(["What a wonderful, amazing day!", "This is awful and terrible.", None, "  ", "The train ride."])
    S._analyzer.cache_clear()
    assert s[0] > 0.5 and s[1] < -0.5 and abs(s[4]) < 0.05
    assert np.isnan(s[2]) and np.isnan(s[3])
    assert S.polarity(s[[0, 1, 4]]).tolist() == [1, -1, 0]


def test_agreement_counts_polarity_with_each_sides_band():
    r = S.agreement(np.array([0.5, -0.5, 0.0, 0.3]), np.array([0.9, -0.2, 0.1, -0.9]), target_neutral=0.25)
    # target polarities: +, 0 (|-0.2| < 0.25), 0, -  -> pred +, -, 0, + : 2 of 4 agree
    assert r["polarity_agreement"] == 0.5 and r["n"] == 4
    assert r["mae"] == pytest.approx(np.mean([0.4, 0.3, 0.1, 1.2]))


def test_head_kept_when_latent_carries_tone_and_dropped_when_noise():
    rng = np.random.default_rng(0)
    n, z = 600, 16
    clusters = rng.integers(0, 4, n)
    tone = np.clip(rng.normal(0, 0.5, n), -1, 1).astype(np.float32)
    informative = rng.normal(0, 1, (n, z)).astype(np.float32)
    informative[:, 0] = tone * 3 + rng.normal(0, 0.1, n)
    head, rep = S.fit_head(informative, tone, clusters, 4)
    assert rep["kept"] and head is not None
    assert rep["heldout"]["head"]["mae"] < rep["heldout"]["cluster_mean"]["mae"]
    assert rep["heldout"]["head"]["pearson"] > 0.9
    # tone set by the cluster, latent pure noise: the cluster mean wins, the head is dropped
    by_cluster = (np.array([-0.6, -0.2, 0.2, 0.6])[clusters] + rng.normal(0, 0.1, n)).astype(np.float32)
    noise = rng.normal(0, 1, (n, z)).astype(np.float32)
    head2, rep2 = S.fit_head(noise, by_cluster, clusters, 4)
    assert head2 is None and rep2["kept"] is False
    assert rep2["heldout"]["cluster_mean"]["mae"] < rep2["heldout"]["head"]["mae"]


def test_post_sentiment_fills_posts_without_text():
    texts = ["I love this, wonderful!", "Awful, terrible day.", None, "Great and happy.", None]
    clusters = np.array([0, 1, 0, 0, 1])
    score, source, rep = S.post_sentiment(texts, clusters, 2)  # no latents: cluster means
    assert source.tolist() == ["text", "text", "cluster", "text", "cluster"]
    assert score[2] == pytest.approx((score[0] + score[3]) / 2) and score[4] == pytest.approx(score[1])
    assert rep["n_text"] == 3 and rep["head"]["kept"] is False
