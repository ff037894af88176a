"""Keras' Adam step written out once per update step, on a built ``keras.optimizers.Adam``'s own slots.

Why: ``Adam.apply_gradients`` traces its step through the distribution-strategy machinery and an autograph
wrapper once per variable, and recomputes the bias-corrected step size (two ``Pow`` and a ``Sqrt``) for each
of the 12 variables of PPO's two 2×64 towers: a third of the update's trace, and ops that TF lowers to HLO
one by one on every first update (docs/performance.md). Here the step size is computed once and each
variable gets the very ops Keras gives it, in Keras' order (``m += (g − m)(1 − β1)``,
``v += (g² − v)(1 − β2)``, ``θ −= m·α / (√v + ε)``, α = lr·√(1 − β2ᵗ)/(1 − β1ᵗ)); XLA merges Keras' 12
identical step-size computations into one anyway, so the parameters are bit for bit those of
``apply_gradients`` (a test and the seeded runs hold them equal). The optimiser's variables, and so
checkpoints, are unchanged.
"""
from __future__ import annotations

import keras
import tensorflow as tf


def check_plain_adam(optimizer: keras.optimizers.Optimizer) -> None:
    """`adam_step` is plain Adam only: refuse an optimiser with a feature it would silently drop."""
    if type(optimizer) is not keras.optimizers.Adam or optimizer.amsgrad or optimizer.use_ema \
            or optimizer.weight_decay or optimizer.gradient_accumulation_steps \
            or optimizer.loss_scale_factor is not None or optimizer.clipnorm or optimizer.global_clipnorm \
            or optimizer.clipvalue:
        raise ValueError("adam_step implements a plain keras.optimizers.Adam only")


def adam_step(optimizer: keras.optimizers.Adam, grads: list[tf.Tensor], variables: list) -> None:
    """One Adam step of ``grads`` on ``variables`` (the variables ``optimizer`` was built on)."""
    dtype = tf.float32
    lr = tf.cast(optimizer.learning_rate, dtype)
    local_step = tf.cast(optimizer.iterations + 1, dtype)
    beta_1_power = tf.pow(tf.cast(optimizer.beta_1, dtype), local_step)
    beta_2_power = tf.pow(tf.cast(optimizer.beta_2, dtype), local_step)
    alpha = lr * tf.sqrt(1 - beta_2_power) / (1 - beta_1_power)
    for grad, variable in zip(grads, variables):
        index = optimizer._get_variable_index(variable)  # Keras' own slot lookup
        m, v = optimizer._momentums[index], optimizer._velocities[index]
        grad = tf.cast(grad, dtype)
        m.assign_add((grad - m) * (1 - optimizer.beta_1))
        v.assign_add((tf.square(grad) - v) * (1 - optimizer.beta_2))
        variable.assign_sub((m * alpha) / (tf.sqrt(v) + optimizer.epsilon))
    optimizer.iterations.assign_add(1)
