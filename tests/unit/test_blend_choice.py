"""The popularity blend's choice rule (training.blend.one_se_choice): the first point tried within
one standard error of the paired per-user difference from the best."""

from __future__ import annotations

import numpy as np

from training.blend import one_se_choice


def test_a_gain_inside_the_noise_keeps_the_first_point():
    rng = np.random.default_rng(0)
    base = rng.random(400)
    noisy = base.copy()
    noisy[:2] += 0.3  # two users gain, four lose a little: the mean rises by 0.0005, inside the noise (se ~0.0012)
    noisy[2:6] -= 0.1
    chosen, best, se = one_se_choice(np.stack([base, noisy]))
    assert best == 1 and chosen == 0 and se > 0


def test_a_real_gain_is_kept_and_the_simplest_point_within_reach_is_taken():
    rng = np.random.default_rng(1)
    base = rng.random(400) * 0.5
    big = base + 0.2  # every user gains
    bigger = big + rng.normal(0, 0.05, 400) * 0.01  # best by a hair, indistinguishable from `big`
    bigger[0] += 1.0
    chosen, best, _ = one_se_choice(np.stack([base, big, bigger]))
    assert best == 2 and chosen == 1
    assert one_se_choice(np.stack([base, base + 0.2]))[0] == 1  # no simpler point within reach: the best
    assert one_se_choice(np.stack([base, base]))[:2] == (0, 0)  # equal: the first
