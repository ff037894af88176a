"""The pure loss functions against hand-computed batches (spec §4, §6)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import tensorflow as tf

from tfppo.core import losses


def f32(x):
    return tf.constant(np.asarray(x, dtype=np.float32))


def close(actual, expected, atol=1e-6, rtol=1e-6):
    np.testing.assert_allclose(np.asarray(actual, dtype=np.float64), expected, atol=atol, rtol=rtol)


# ------------------------------------------------------------------------- value loss
# Four elements, ε_v = 0.2.  v_clip = V_old + clip(V − V_old, −0.2, 0.2)
#   i  V     V_old  R     (V−R)²    V−V_old -> clipped   v_clip  (v_clip−R)²   max
#   0  1.0   0.5    0.0   1.0       +0.5  -> +0.2        0.7     0.49          1.0   (clip irrelevant)
#   1  0.5   0.4    1.0   0.25      +0.1  (inside)       0.5     0.25          0.25  (no clip)
#   2  0.45  0.0    0.5   0.0025    +0.45 -> +0.2        0.2     0.09          0.09  (clip matters)
#   3  1.9   2.5    1.9   0.0       −0.6  -> −0.2        2.3     0.16          0.16  (clip matters)
V = [1.0, 0.5, 0.45, 1.9]
V_OLD = [0.5, 0.4, 0.0, 2.5]
R = [0.0, 1.0, 0.5, 1.9]


def test_value_loss_clipped():
    # 0.5 · mean(1.0, 0.25, 0.09, 0.16) = 0.5 · 1.5 / 4 = 0.1875
    loss = losses.value_loss(f32(V), f32(R), f32(V_OLD), "clipped", clip_vf=f32(0.2))
    close(loss, 0.1875)
    # also with a Python float ε_v
    close(losses.value_loss(f32(V), f32(R), f32(V_OLD), "clipped", clip_vf=0.2), 0.1875)


def test_value_loss_clipped_with_wider_clip_is_unclipped():
    # ε_v = 1.0: every |V − V_old| ≤ 0.6 < 1, so v_clip = V and loss = 0.5·mean((V−R)²)
    # = 0.5 · (1.0 + 0.25 + 0.0025 + 0.0) / 4 = 0.5 · 1.2525 / 4 = 0.1565625
    close(losses.value_loss(f32(V), f32(R), f32(V_OLD), "clipped", clip_vf=f32(1.0)), 0.1565625)


def test_value_loss_clipping_off():
    # clip_vf None ([SB] cliprange_vf < 0): 0.5 · mean((V−R)²) = 0.5 · 1.2525 / 4 = 0.1565625
    close(losses.value_loss(f32(V), f32(R), f32(V_OLD), "clipped", clip_vf=None), 0.1565625)


def test_value_loss_mse_has_no_half_and_no_clip():
    # PPO1: mean((V−R)²) = 1.2525 / 4 = 0.313125, whatever clip_vf says
    close(losses.value_loss(f32(V), f32(R), f32(V_OLD), "mse", clip_vf=None), 0.313125)
    close(losses.value_loss(f32(V), f32(R), f32(V_OLD), "mse", clip_vf=f32(0.2)), 0.313125)


def test_value_loss_clipped_gradient_is_zero_where_clipped_term_wins():
    # d/dV of 0.5·mean(max(...)): elements 2 and 3 take the clipped (constant in V) term -> 0;
    # element 0: 0.5·2·(V−R)/4 = 0.5·2·1.0/4 = 0.25; element 1: 0.5·2·(−0.5)/4 = −0.125
    v = tf.Variable(np.asarray(V, np.float32))
    with tf.GradientTape() as tape:
        loss = losses.value_loss(v, f32(R), f32(V_OLD), "clipped", clip_vf=f32(0.2))
    close(tape.gradient(loss, v), [0.25, -0.125, 0.0, 0.0])


# --------------------------------------------------------------------- policy surrogate
# ε = 0.2, ratios r = exp(neglogp_old − neglogp):
#   i  r    Â    −Â·r   −Â·clip(r,0.8,1.2)   max
#   0  1.5  +2   −3.0   −2.4                  −2.4   (clipped: no credit beyond 1+ε)
#   1  0.5  +1   −0.5   −0.8                  −0.5   (outside clip but pessimistic term unclipped)
#   2  1.1  −1   +1.1   +1.1                  +1.1   (inside)
#   3  0.7  −2   +1.4   +1.6                  +1.6   (clipped)
#   4  1.5  −1   +1.5   +1.2                  +1.5   (outside clip, unclipped term is worse)
# mean = (−2.4 − 0.5 + 1.1 + 1.6 + 1.5)/5 = 1.3/5 = 0.26
RATIOS = np.array([1.5, 0.5, 1.1, 0.7, 1.5])
ADV = [2.0, 1.0, -1.0, -2.0, -1.0]
NEGLOGP = np.array([0.3, 1.0, 0.2, 0.5, 0.1])
NEGLOGP_OLD = NEGLOGP + np.log(RATIOS)


def test_clipped_surrogate_hand_values():
    loss, ratio = losses.clipped_surrogate(f32(NEGLOGP), f32(NEGLOGP_OLD), f32(ADV), f32(0.2))
    close(ratio, RATIOS, atol=1e-6)
    close(loss, 0.26, atol=1e-6)


def test_clipped_surrogate_equals_ppo1_form():
    # PPO1: −mean(min(r·Â, clip(r)·Â)): r·Â = [3.0, 0.5, −1.1, −1.4, −1.5], clip(r)·Â = [2.4, 0.8, −1.1, −1.6, −1.2]
    # min = [2.4, 0.5, −1.1, −1.6, −1.5], sum −1.3, −mean = 0.26
    loss, _ = losses.clipped_surrogate(f32(NEGLOGP), f32(NEGLOGP_OLD), f32(ADV), f32(0.2))
    ppo1 = -np.mean(np.minimum(RATIOS * ADV, np.clip(RATIOS, 0.8, 1.2) * ADV))
    assert ppo1 == pytest.approx(0.26, abs=1e-12)
    close(loss, ppo1, atol=1e-6)


def test_clipped_surrogate_gradient_zero_where_clipped():
    # d loss / d neglogp_i = (1/5)·(Â_i·r_i) for the unclipped branch (d(−Â r)/d nlp = Â r), 0 when clipped:
    #   0: clipped -> 0;  1: 1·0.5/5 = 0.1;  2: −1·1.1/5 = −0.22;  3: clipped -> 0;  4: −1·1.5/5 = −0.3
    nlp = tf.Variable(NEGLOGP.astype(np.float32))
    with tf.GradientTape() as tape:
        loss, _ = losses.clipped_surrogate(nlp, f32(NEGLOGP_OLD), f32(ADV), f32(0.2))
    close(tape.gradient(loss, nlp), [0.0, 0.1, -0.22, 0.0, -0.3], atol=1e-6)


def test_ratio_one_gives_minus_mean_advantage():
    # r = 1 everywhere: loss = mean(−Â) = −(2 + 1 − 1 − 2 − 1)/5 = 0.2
    loss, ratio = losses.clipped_surrogate(f32(NEGLOGP), f32(NEGLOGP), f32(ADV), f32(0.2))
    close(ratio, np.ones(5))
    close(loss, 0.2)


# ------------------------------------------------------------------------- diagnostics
def test_approx_kl_is_half_mean_squared_logratio():
    # Δ = neglogp − old = [0.3−0.5, 1.0−0.4, 0.2−0.2, 0.5−1.5] = [−0.2, 0.6, 0, −1.0]
    # Δ² = [0.04, 0.36, 0, 1.0], mean = 1.4/4 = 0.35, ½ -> 0.175
    close(losses.approx_kl(f32([0.3, 1.0, 0.2, 0.5]), f32([0.5, 0.4, 0.2, 1.5])), 0.175)
    # not the blog's −mean(logratio): that would be −mean(old − new) = mean(Δ) = −0.15
    assert abs(float(losses.approx_kl(f32([0.3, 1.0, 0.2, 0.5]), f32([0.5, 0.4, 0.2, 1.5]))) + 0.15) > 0.1


def test_clip_fraction():
    ratio = f32([1.5, 0.5, 1.1, 0.7, 1.05, 0.95])
    # ε = 0.2: |r−1| = 0.5, 0.5, 0.1, 0.3, 0.05, 0.05 -> three exceed 0.2 -> 3/6 = 0.5
    close(losses.clip_fraction(ratio, f32(0.2)), 0.5)
    # ε = 0.4: only 0.5, 0.5 exceed -> 2/6
    close(losses.clip_fraction(ratio, f32(0.4)), 2 / 6)
    # ε = 0.01: all six exceed -> 1
    close(losses.clip_fraction(ratio, f32(0.01)), 1.0)


# -------------------------------------------------------------- advantage normalisation
def test_normalize_advantages_population_std():
    # Â = [1, 2, 3, 6]: mean 3, deviations [−2, −1, 0, 3], squares sum 14,
    # population var 14/4 = 3.5 (ddof 0; ddof 1 would be 14/3), std √3.5 = 1.8708287
    adv = f32([1.0, 2.0, 3.0, 6.0])
    std = math.sqrt(3.5)
    expected = np.array([-2.0, -1.0, 0.0, 3.0]) / std  # [−1.0690450, −0.5345225, 0, 1.6035675]
    close(losses.normalize_advantages(adv, 0.0), expected, atol=1e-6)
    close(losses.normalize_advantages(adv, 1e-8), np.array([-2.0, -1.0, 0.0, 3.0]) / (std + 1e-8), atol=1e-6)
    assert abs(float(losses.normalize_advantages(adv, 0.0)[3]) - 3.0 / math.sqrt(14 / 3)) > 0.1


def test_normalize_advantages_eps_is_added_to_std():
    # Â = [0, 2e-8]: mean 1e-8, std 1e-8.
    #   eps 1e-8 added to the std: (±1e-8)/(1e-8 + 1e-8) = ±0.5
    #   eps 0:                     (±1e-8)/1e-8          = ±1
    #   (eps added to the variance instead would give ±1e-8/√(1e-16 + 1e-8) ≈ ±1e-4)
    adv = f32([0.0, 2e-8])
    close(losses.normalize_advantages(adv, 1e-8), [-0.5, 0.5], atol=1e-5)
    close(losses.normalize_advantages(adv, 0.0), [-1.0, 1.0], atol=1e-5)


def test_normalize_constant_batch():
    adv = f32([2.0, 2.0, 2.0])
    # PPO2: 0 / (0 + 1e-8) = 0
    close(losses.normalize_advantages(adv, 1e-8), [0.0, 0.0, 0.0])
    # PPO1: 0 / 0 = NaN, exactly as numpy in the original (spec §4)
    assert np.all(np.isnan(losses.normalize_advantages(adv, 0.0).numpy()))
