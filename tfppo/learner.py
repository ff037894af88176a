"""The one PPO update, shared by both trainers and driven by `Semantics`.

One call runs the whole epoch loop — ``n_epochs × n_minibatches`` minibatch
steps over fresh shuffles, plus PPO1's optional evaluation pass — inside a
single compiled ``tf.function`` traced once per run: a Python loop of compiled
steps costs ≈6× more for a 320-minibatch update on this class of machine.

Spec references: §4 (advantage normalisation), §6 (losses), §7 (optimiser and
minibatching). Under MPI the per-minibatch gradient is Allreduce-averaged
through ``grad_reducer`` *inside* the graph (a ``tf.numpy_function`` between
gradient and clip/apply, as [B] MpiAdamOptimizer's py_func), so the loop stays
compiled; global-norm clipping happens after the averaging (row 12).

With ``xla=True`` (the default) the whole update is one XLA computation
(``jit_compile=True``): the per-minibatch cost falls from ≈0.35 ms of TF
executor overhead to ≈0.1 ms on 2 cores (README, Performance). XLA cannot hold
the host-side MPI reducer, so with one only the per-minibatch loss and gradient
are XLA-compiled and the loop, the Allreduce and Adam stay in the TF graph.
XLA fuses and reorders float operations, so its parameters differ from the
plain graph's by float rounding only (tests hold both to the same reference).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Optional

import keras
import numpy as np
import tensorflow as tf

from tfppo import losses
from tfppo.errors import ConfigError
from tfppo.policy import ActorCritic
from tfppo.semantics import Semantics

STAT_NAMES = ("policy_loss", "value_loss", "entropy", "approxkl", "clipfrac", "kl")
# Training-health diagnostics from the same compiled update (no extra TF call): the largest and mean
# importance ratio π/π_old, the mean/std of the advantages the loss used (normalised when the
# semantics normalise), and the gradient global norm before clipping (after the MPI average).
# ratio_max is a max over the minibatch steps taken, the others are means over them.
DIAG_NAMES = ("ratio_max", "ratio_mean", "adv_used_mean", "adv_used_std", "grad_norm")
# Which quantity was non-finite when the update stopped (0: none). Checked before the step is applied.
NONFINITE = {1: "loss", 2: "gradient", 3: "parameter"}


@dataclass(frozen=True)
class MinibatchPlan:
    """How a batch is cut: PPO2 asserts divisibility; PPO1 drops the remainder (rows 2-3)."""

    batch_size: int
    minibatch_size: int
    n_epochs: int

    @property
    def n_minibatches(self) -> int:
        return self.batch_size // self.minibatch_size

    @classmethod
    def from_count(cls, batch_size: int, nminibatches: int, n_epochs: int) -> "MinibatchPlan":
        """PPO2: ``nminibatches`` equal slices; nbatch % nminibatches must be 0 (spec §7.2)."""
        if nminibatches <= 0 or batch_size % nminibatches:
            raise ConfigError(f"--nminibatches {nminibatches} must divide n_steps*num_envs = {batch_size}")
        return cls(batch_size, batch_size // nminibatches, n_epochs)

    @classmethod
    def from_size(cls, batch_size: int, minibatch_size: int | None, n_epochs: int) -> "MinibatchPlan":
        """PPO1: absolute size B, floor(T/B) full minibatches per epoch; 0/None means full batch (spec §7.1)."""
        size = minibatch_size or batch_size
        if size > batch_size:
            raise ConfigError(f"--optim_batchsize {size} must be <= timesteps_per_actorbatch {batch_size}")
        return cls(batch_size, size, n_epochs)

    def shuffles(self, rng: np.random.Generator, n_passes: int) -> np.ndarray:
        """Fresh permutation per pass, cut into full minibatches: int32 [passes, n_mb, mb]."""
        used = self.n_minibatches * self.minibatch_size
        return np.stack([rng.permutation(self.batch_size)[:used].reshape(self.n_minibatches, self.minibatch_size)
                         for _ in range(n_passes)]).astype(np.int32)


@dataclass(frozen=True)
class Batch:
    """One iteration's flattened training data (env-major order, as PPO2's swap-and-flatten)."""

    obs: np.ndarray
    actions: np.ndarray
    advantages: np.ndarray
    returns: np.ndarray
    values: np.ndarray
    neglogp: np.ndarray


@dataclass
class UpdateResult:
    train: dict[str, float]           # mean over all minibatch steps taken (PPO2's logged losses)
    per_epoch: np.ndarray             # [n_epochs, len(STAT_NAMES)] means (PPO1's per-epoch rows)
    evaluation: Optional[dict[str, float]]  # PPO1 evaluation pass (row 23), else None
    n_gradient_steps: int
    final_kl: float = float("nan")  # mean KL(old‖updated) over the batch: PPO-Penalty's d (kl_penalty only)
    diagnostics: dict[str, float] = None  # DIAG_NAMES over the steps taken
    nonfinite: int = 0                    # NONFINITE code of the step that stopped the update, 0 if none

    @property
    def nonfinite_quantity(self) -> str | None:
        return NONFINITE.get(self.nonfinite)

    @property
    def logged(self) -> dict[str, float]:
        """Row 23: the evaluation pass when there was one, else the training means."""
        return self.evaluation if self.evaluation is not None else self.train


# (flat gradient, flat parameters) -> averaged flat gradient; the parameters let MPI check sync.
GradReducer = Callable[[np.ndarray, np.ndarray], np.ndarray]


class Learner:
    """Owns the optimiser and the compiled update of an `ActorCritic`."""

    def __init__(self, model: ActorCritic, semantics: Semantics, plan: MinibatchPlan, *, ent_coef: float,
                 grad_reducer: GradReducer | None = None, xla: bool = True):
        self.model = model
        self.dist = model.dist
        self.semantics = semantics
        self.plan = plan
        self.ent_coef = float(ent_coef)
        self.grad_reducer = grad_reducer
        self._lr = tf.Variable(0.0, trainable=False, dtype=tf.float32, name="learning_rate")
        self.kl_beta = float(semantics.kl_beta)  # PPO-Penalty's β: a graph input, so moving it never retraces
        # Row 11: Adam ε-hat form, β = (0.9, 0.999); Keras computes α = lr·√(1−β2ᵗ)/(1−β1ᵗ) as TF1 did.
        self.optimizer = keras.optimizers.Adam(learning_rate=lambda: self._lr, beta_1=0.9, beta_2=0.999,
                                               epsilon=semantics.adam_epsilon)
        self.optimizer.build(model.trainable_variables)
        self._n_passes = plan.n_epochs + (1 if semantics.eval_pass else 0)
        # Autograph is needed for the epoch loop of `_update` only; letting it convert every function that
        # loop calls (losses, distributions, the model, Adam) was most of the one-time trace (README, Performance).
        plain = tf.autograph.experimental.do_not_convert
        self._minibatch_stats, self._apply = plain(self._minibatch_stats), plain(self._apply)
        whole_in_xla = xla and grad_reducer is None
        self._loss_and_grads = tf.function(plain(self._loss_and_grads_fn), jit_compile=True) \
            if xla and not whole_in_xla else plain(self._loss_and_grads_fn)
        self.compiled_update = tf.function(self._update, jit_compile=whole_in_xla)

    # -- public ------------------------------------------------------------------
    def update(self, batch: Batch, *, learning_rate: float, clip: float, clip_vf: float | None,
               rng: np.random.Generator) -> UpdateResult:
        """Run all epochs on ``batch``; minibatch shuffles are drawn from ``rng``."""
        if (clip_vf is None) != (self.semantics.value_clip == "off"):
            raise ValueError(f"clip_vf={clip_vf} does not fit value_clip={self.semantics.value_clip}")
        indices = self.plan.shuffles(rng, self._n_passes)
        f32 = lambda x: tf.constant(x, tf.float32)
        train, per_epoch, evaluation, steps, diag, nonfinite, final_kl = self.compiled_update(
            tf.constant(batch.obs), tf.constant(batch.actions), f32(batch.advantages), f32(batch.returns),
            f32(batch.values), f32(batch.neglogp), tf.constant(indices), f32(learning_rate), f32(clip),
            f32(clip_vf if clip_vf is not None else 0.0), f32(self.kl_beta))
        named = lambda row: {k: float(v) for k, v in zip(STAT_NAMES, row.numpy())}
        return UpdateResult(named(train), per_epoch.numpy(), named(evaluation) if self.semantics.eval_pass else None,
                            int(steps), diagnostics=dict(zip(DIAG_NAMES, (float(v) for v in diag.numpy()))),
                            nonfinite=int(nonfinite), final_kl=float(final_kl))

    def adapt_kl_beta(self, kl: float) -> None:
        """After an update, with d averaged over MPI ranks by the caller: only ``kl_penalty`` adapts β."""
        if self.semantics.policy_loss == "kl_penalty":
            self.kl_beta = losses.adapt_kl_beta(self.kl_beta, kl, self.semantics.kl_target)

    # -- graph ---------------------------------------------------------------------
    def _minibatch_stats(self, mb: dict, clip, clip_vf, beta, with_diag: bool = False):
        """Total loss and the STAT_NAMES vector of one minibatch (spec §6); with ``with_diag`` also
        [ratio max, ratio mean, advantage mean, advantage std] (the first four DIAG_NAMES)."""
        sem = self.semantics
        params, values = self.model(mb["obs"])
        neglogp = self.dist.neglogp(params, mb["actions"])
        if sem.adv_norm == "minibatch":
            # PPO2 recomputes Â = R − V_old per minibatch, then normalises it every time it is used (§4).
            adv = losses.normalize_advantages(mb["returns"] - mb["values"], sem.adv_norm_eps)
        else:
            adv = mb["advantages"]
        kl = self.dist.kl(mb["params_old"], params)
        pg_loss, ratio = losses.policy_loss(neglogp, mb["neglogp_old"], adv, clip, kl, beta, sem.policy_loss)
        vf_loss = losses.value_loss(values, mb["returns"], mb["values"], sem.value_loss,
                                    None if sem.value_clip == "off" else clip_vf)
        entropy = tf.reduce_mean(self.dist.entropy(params))
        total = pg_loss - self.ent_coef * entropy + sem.vf_coef * vf_loss
        stats = tf.stack([pg_loss, vf_loss, entropy, losses.approx_kl(neglogp, mb["neglogp_old"]),
                          losses.clip_fraction(ratio, clip), tf.reduce_mean(kl)])
        if not with_diag:
            return total, stats
        adv_mean = tf.reduce_mean(adv)
        diag = tf.stack([tf.reduce_max(ratio), tf.reduce_mean(ratio), adv_mean,
                         tf.sqrt(tf.reduce_mean(tf.square(adv - adv_mean)))])
        return total, stats, diag

    def _loss_and_grads_fn(self, mb: dict, clip, clip_vf, beta):
        """Loss, STAT_NAMES vector, diagnostics and the loss gradient of one minibatch (XLA-compiled alone
        under MPI)."""
        with tf.GradientTape() as tape:
            loss, stats, diag = self._minibatch_stats(mb, clip, clip_vf, beta, with_diag=True)
        return loss, stats, diag, tape.gradient(loss, self.model.trainable_variables)

    def _apply(self, grads: list[tf.Tensor], loss: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        """Average (MPI), check, clip and apply one gradient; returns (NONFINITE code, pre-clip global norm).

        A non-finite loss or gradient is never applied; parameters are checked right after the step so
        the trainer stops before the next one (and before any checkpoint could save them)."""
        variables = self.model.trainable_variables
        grads = [tf.zeros_like(v) if g is None else g for g, v in zip(grads, variables)]
        loss_ok = tf.math.is_finite(loss)
        if self.grad_reducer is not None:
            flat = tf.concat([tf.reshape(g, [-1]) for g in grads], axis=0)
            # A rank whose loss is non-finite poisons the average, so every rank skips this step together.
            flat = flat + tf.where(loss_ok, 0.0, float("nan"))
            flat_params = tf.concat([tf.reshape(v, [-1]) for v in variables], axis=0)
            reduced = tf.numpy_function(self.grad_reducer, [flat, flat_params], tf.float32, stateful=True)
            reduced = tf.reshape(reduced, tf.shape(flat))
            grads = [tf.reshape(part, tf.shape(v)) for part, v in
                     zip(tf.split(reduced, [int(np.prod(v.shape)) for v in variables]), variables)]
        norm = tf.linalg.global_norm(grads)

        def apply() -> tf.Tensor:
            clipped = grads
            if self.semantics.max_grad_norm is not None:
                clipped, _ = tf.clip_by_global_norm(grads, self.semantics.max_grad_norm, use_norm=norm)
            self.optimizer.apply_gradients(zip(clipped, variables))
            params_ok = tf.reduce_all([tf.reduce_all(tf.math.is_finite(v)) for v in variables])
            return tf.where(params_ok, 0, 3)

        code = tf.cond(loss_ok & tf.math.is_finite(norm), apply, lambda: tf.where(loss_ok, 2, 1))
        return code, norm

    def _update(self, obs, actions, advantages, returns, values, neglogp_stored, indices, lr, clip, clip_vf, beta):
        sem, plan = self.semantics, self.plan
        self._lr.assign(lr)
        # The frozen old policy (PPO1's oldpi, row 5) is never stepped during the epochs, so its
        # outputs over the batch, computed once here, are all that is needed of it.
        params_old, _ = self.model(obs)
        neglogp_old = self.dist.neglogp(params_old, actions) if sem.old_logp == "recomputed" else neglogp_stored
        if sem.adv_norm == "batch":
            advantages = losses.normalize_advantages(advantages, sem.adv_norm_eps)  # PPO1: once, whole batch (§4)
        data = dict(obs=obs, actions=actions, advantages=advantages, returns=returns, values=values,
                    neglogp_old=neglogp_old, params_old=params_old)
        take = lambda idx: {k: tf.gather(v, idx) for k, v in data.items()}

        n_stats = len(STAT_NAMES)
        per_epoch = tf.TensorArray(tf.float32, size=plan.n_epochs)
        total_sum = tf.zeros([n_stats])
        steps = tf.constant(0)
        stop = tf.constant(False)
        nonfinite = tf.constant(0)
        diag_sum = tf.zeros([len(DIAG_NAMES) - 1])  # ratio_mean, adv mean/std, grad_norm
        ratio_max = tf.constant(0.0)
        for epoch in tf.range(plan.n_epochs):
            epoch_sum = tf.zeros([n_stats])
            epoch_steps = tf.constant(0)
            for m in tf.range(plan.n_minibatches):
                if not stop:
                    loss, stats, diag, grads = self._loss_and_grads(take(indices[epoch, m]), clip, clip_vf, beta)
                    if sem.target_kl is not None and stats[3] > 1.5 * sem.target_kl:
                        stop = tf.constant(True)  # SB3-style early stop, before this step is applied
                    else:
                        code, grad_norm = self._apply(grads, loss)
                        if code != 0:
                            stop = tf.constant(True)  # NaN/Inf guard: nothing after this step runs
                            nonfinite = code
                        else:
                            epoch_sum += stats
                            epoch_steps += 1
                            ratio_max = tf.maximum(ratio_max, diag[0])
                            diag_sum += tf.concat([diag[1:], [grad_norm]], axis=0)
            per_epoch = per_epoch.write(epoch, epoch_sum / tf.cast(tf.maximum(epoch_steps, 1), tf.float32))
            total_sum += epoch_sum
            steps += epoch_steps
        train = total_sum / tf.cast(tf.maximum(steps, 1), tf.float32)
        diagnostics = tf.concat([[ratio_max], diag_sum / tf.cast(tf.maximum(steps, 1), tf.float32)], axis=0)

        evaluation = tf.zeros([n_stats])
        if sem.eval_pass:
            # PPO1 row 23: one more pass over fresh minibatches with no update; its means are logged.
            for m in tf.range(plan.n_minibatches):
                _, stats = self._minibatch_stats(take(indices[plan.n_epochs, m]), clip, clip_vf, beta)
                evaluation += stats
            evaluation /= float(plan.n_minibatches)
        final_kl = tf.constant(float("nan"))
        if sem.policy_loss == "kl_penalty":  # d of the adaptive rule: the updated policy against the old one
            params_new, _ = self.model(obs)
            final_kl = tf.reduce_mean(self.dist.kl(params_old, params_new))
        return train, per_epoch.stack(), evaluation, steps, diagnostics, nonfinite, final_kl
