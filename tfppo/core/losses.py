"""Pure TF loss functions of both PPO families (spec §4, §6).

Kept free of state so tests can check each against a hand-computed batch.
"""
from __future__ import annotations

import tensorflow as tf


def normalize_advantages(adv: tf.Tensor, eps: float) -> tf.Tensor:
    """(Â − mean)/(std + eps), population std (ddof 0) as numpy's (spec §4).

    PPO2 uses eps = 1e-8; PPO1 uses none, so a constant batch gives inf/NaN
    exactly as the original would.
    """
    mean, var = tf.nn.moments(adv, axes=[0])
    return (adv - mean) / (tf.sqrt(var) + eps)


def clipped_surrogate(neglogp: tf.Tensor, neglogp_old: tf.Tensor, adv: tf.Tensor,
                      clip: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    """mean(max(−Â·r, −Â·clip(r, 1±ε))) with r = exp(neglogp_old − neglogp) (spec §6.1, §6.2).

    Identical to PPO1's −mean(min(r·Â, clip(r)·Â)). Returns (loss, ratio).
    """
    ratio = tf.exp(neglogp_old - neglogp)
    loss = tf.reduce_mean(tf.maximum(-adv * ratio, -adv * tf.clip_by_value(ratio, 1.0 - clip, 1.0 + clip)))
    return loss, ratio


def policy_loss(neglogp: tf.Tensor, neglogp_old: tf.Tensor, adv: tf.Tensor, clip: tf.Tensor, kl: tf.Tensor,
                beta: tf.Tensor, kind: str) -> tuple[tf.Tensor, tf.Tensor]:
    """The policy term to minimise and the ratio (Schulman et al. 2017 §3-4).

    ``clip``: the clipped surrogate of all four originals. ``kl_penalty``/``fixed_kl``: −mean(r·Â) +
    β·mean(KL(old‖new)) (PPO-Penalty; the two differ only in how β moves between updates).
    ``clip_and_kl``: the clipped surrogate + β·mean(KL). ``kl`` is the per-sample exact KL(old‖new).
    """
    if kind == "clip":
        return clipped_surrogate(neglogp, neglogp_old, adv, clip)
    if kind == "clip_and_kl":
        surrogate, ratio = clipped_surrogate(neglogp, neglogp_old, adv, clip)
    else:
        ratio = tf.exp(neglogp_old - neglogp)
        surrogate = -tf.reduce_mean(adv * ratio)
    return surrogate + beta * tf.reduce_mean(kl), ratio


def adapt_kl_beta(beta: float, kl: float, kl_target: float) -> float:
    """PPO-Penalty's rule after each update: d < d_targ/1.5 → β/2; d > 1.5·d_targ → 2β (paper §4)."""
    if kl < kl_target / 1.5:
        return beta / 2.0
    if kl > kl_target * 1.5:
        return beta * 2.0
    return beta


def value_loss(values: tf.Tensor, returns: tf.Tensor, values_old: tf.Tensor, kind: str,
               clip_vf: tf.Tensor | None) -> tf.Tensor:
    """Row 7: PPO1 ``mse`` = mean((V−R)²); PPO2 ``clipped`` = 0.5·mean(max((V−R)², (V_clip−R)²)).

    ``clip_vf=None`` turns PPO2's clipping off ([SB] cliprange_vf < 0), leaving
    0.5·mean((V−R)²).
    """
    unclipped = tf.square(values - returns)
    if kind == "mse":
        return tf.reduce_mean(unclipped)
    if clip_vf is None:
        return 0.5 * tf.reduce_mean(unclipped)
    v_clipped = values_old + tf.clip_by_value(values - values_old, -clip_vf, clip_vf)
    return 0.5 * tf.reduce_mean(tf.maximum(unclipped, tf.square(v_clipped - returns)))


def approx_kl(neglogp: tf.Tensor, neglogp_old: tf.Tensor) -> tf.Tensor:
    """PPO2's ``approxkl`` = ½·mean((neglogp − neglogp_old)²), the "k2" estimator (spec §6.2)."""
    return 0.5 * tf.reduce_mean(tf.square(neglogp - neglogp_old))


def clip_fraction(ratio: tf.Tensor, clip: tf.Tensor) -> tf.Tensor:
    """mean(1[|r − 1| > ε]) (spec §6.2)."""
    return tf.reduce_mean(tf.cast(tf.abs(ratio - 1.0) > clip, tf.float32))
