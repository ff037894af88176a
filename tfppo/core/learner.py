"""The one PPO update, shared by both trainers and driven by `Semantics`.

One call runs the whole epoch loop — ``n_epochs × n_minibatches`` minibatch
steps over fresh shuffles, plus PPO1's optional evaluation pass — inside a
single compiled ``tf.function`` traced once per run: a Python loop of compiled
steps costs ≈6× more for a 320-minibatch update on this class of machine.

Spec references: §4 (advantage normalisation), §6 (losses), §7 (optimiser and
minibatching).

Under MPI every Adam step uses the mean of the ranks' minibatch gradients
(spec §7.1; clipping after the averaging, row 12), computed one of two ways:

* ``replicas`` (the default for vector observations): the ranks exchange their
  batches and shuffles once per update, and every rank computes the mean over
  all ranks' minibatches itself — the whole update stays one XLA computation
  with no communication inside. Costs W× the minibatch arithmetic, which for
  PPO's small MLPs is far below one host round trip of TF (docs/performance.md).
* ``grad_reducer``: the flat gradient is Allreduce-averaged inside the graph (a
  ``tf.numpy_function`` between gradient and clip/apply, as [B]
  MpiAdamOptimizer's py_func); a plain graph, since XLA cannot hold the host
  call. For image policies, whose batches are too large to exchange.

With ``xla=True`` (the default) the whole update is one XLA computation
(``jit_compile=True``): the per-minibatch cost falls from ≈0.35 ms of TF
executor overhead to ≈0.1 ms on 2 cores (docs/performance.md). XLA fuses and
reorders float operations, so its parameters differ from the plain graph's by
float rounding only (tests hold both to the same reference). Image policies
always take the plain graph: XLA's CPU convolutions measured about 10× slower
than TF's own (MinAtar CNN, 1024 samples × 4 epochs: 1.6–1.9 s against
0.16–0.23 s; Nature CNN: over 5 min against 22 s, docs/performance.md).
"""
from __future__ import annotations

import enum

from dataclasses import dataclass
from typing import Callable, Optional, Protocol

import keras
import numpy as np
import tensorflow as tf

from tfppo.core import losses
from tfppo.core.adam_step import adam_step, check_plain_adam
from tfppo.util.errors import ConfigError
from tfppo.core.policy import ActorCritic
from tfppo.config.semantics import Semantics

STAT_NAMES = ("policy_loss", "value_loss", "entropy", "approxkl", "clipfrac", "kl")
STAT = {name: i for i, name in enumerate(STAT_NAMES)}  # a statistic's column, e.g. STAT["approxkl"]
# Training-health diagnostics from the same compiled update (no extra TF call): the largest and mean
# importance ratio π/π_old, the mean/std of the advantages the loss used (normalised when the
# semantics normalise), and the gradient global norm before clipping (after the MPI average).
# ratio_max is a max over the minibatch steps taken, the others are means over them.
DIAG_NAMES = ("ratio_max", "ratio_mean", "adv_used_mean", "adv_used_std", "grad_norm")



class StepCode(enum.IntEnum):
    """What became of one minibatch step, as the compiled update returns it. The non-finite codes name the
    quantity that was non-finite (checked before the step is applied; parameters right after it)."""

    STOPPED_BY_TARGET_KL = -1  # SB3-style early stop, before the step is applied
    APPLIED = 0
    NONFINITE_LOSS = 1
    NONFINITE_GRADIENT = 2
    NONFINITE_PARAMETER = 3


NONFINITE = {StepCode.NONFINITE_LOSS: "loss", StepCode.NONFINITE_GRADIENT: "gradient",
             StepCode.NONFINITE_PARAMETER: "parameter"}


@dataclass(frozen=True)
class MinibatchPlan:
    """How a batch is cut: PPO2 asserts divisibility; PPO1 drops the remainder (rows 2-3)."""

    batch_size: int
    minibatch_size: int
    n_epochs: int
    # Recurrent PPO2: minibatches are whole env sequences of this many steps (env-major rows), else None.
    sequence_length: int | None = None

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

    @classmethod
    def by_env(cls, n_envs: int, n_steps: int, nminibatches: int, n_epochs: int) -> "MinibatchPlan":
        """Recurrent PPO2 ([B] ppo2): ``n_envs // nminibatches`` whole env sequences per minibatch;
        nminibatches must divide num_envs."""
        if nminibatches <= 0 or n_envs % nminibatches:
            raise ConfigError(f"--nminibatches {nminibatches} must divide --num_envs {n_envs} with a recurrent "
                              f"policy (minibatches are whole env sequences)")
        return cls(n_envs * n_steps, n_envs // nminibatches * n_steps, n_epochs, sequence_length=n_steps)

    def shuffles(self, rng: np.random.Generator, n_passes: int) -> np.ndarray:
        """Fresh permutation per pass, cut into full minibatches: int32 [passes, n_mb, mb]. With
        ``sequence_length`` T the envs are permuted and each minibatch holds the rows e·T … e·T+T−1 of its
        envs, in permuted env order ([B] ppo2's ``flatinds[mbenvinds].ravel()``)."""
        if self.sequence_length is not None:
            steps = self.sequence_length
            envs = [rng.permutation(self.batch_size // steps) for _ in range(n_passes)]
            rows = np.stack([(e[:, None] * steps + np.arange(steps)).ravel() for e in envs])
            return rows.reshape(n_passes, self.n_minibatches, self.minibatch_size).astype(np.int32)
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
    # Recurrent policies only: 1.0 where a row's observation starts an episode, and the LSTM state of
    # every env at the start of the rollout [N, S] (`tfppo.core.recurrent`).
    masks: np.ndarray | None = None
    states: np.ndarray | None = None


@dataclass
class UpdateResult:
    train: dict[str, float]           # mean over all minibatch steps taken (PPO2's logged losses)
    per_epoch: np.ndarray             # [n_epochs, len(STAT_NAMES)] means (PPO1's per-epoch rows)
    evaluation: Optional[dict[str, float]]  # PPO1 evaluation pass (row 23), else None
    n_gradient_steps: int
    final_kl: float = float("nan")  # mean KL(old‖updated) over the batch: PPO-Penalty's d (kl_penalty only)
    diagnostics: dict[str, float] = None  # DIAG_NAMES over the steps taken
    nonfinite: int = StepCode.APPLIED     # the NONFINITE_* StepCode of the step that stopped the update, if any

    @property
    def nonfinite_quantity(self) -> str | None:
        return NONFINITE.get(self.nonfinite)

    @property
    def logged(self) -> dict[str, float]:
        """Row 23: the evaluation pass when there was one, else the training means."""
        return self.evaluation if self.evaluation is not None else self.train


# (flat gradient, flat parameters) -> averaged flat gradient; the parameters let MPI check sync.
GradReducer = Callable[[np.ndarray, np.ndarray], np.ndarray]


class BatchReplicas(Protocol):
    """Every replica's update inputs on every replica (MPI: `tfppo.training.mpi.BatchReplicator`)."""

    count: int  # replicas (MPI ranks)
    index: int  # this process's replica

    def gather(self, arrays: dict[str, np.ndarray], flat_params: np.ndarray) -> dict[str, np.ndarray]:
        """Each array of every replica, stacked on a new leading axis in replica order."""


class Learner:
    """Owns the optimiser and the compiled update of an `ActorCritic`."""

    def __init__(self, model: ActorCritic, semantics: Semantics, plan: MinibatchPlan, *, ent_coef: float,
                 grad_reducer: GradReducer | None = None, replicas: BatchReplicas | None = None, xla: bool = True):
        self.model = model
        self.dist = model.dist
        self.semantics = semantics
        self.plan = plan
        self.ent_coef = float(ent_coef)
        if grad_reducer is not None and replicas is not None:
            raise ValueError("average gradients either by grad_reducer or by replicas, not both")
        self.grad_reducer = grad_reducer
        self.replicas = replicas
        self._n_replicas = replicas.count if replicas is not None else 1
        self._replica = replicas.index if replicas is not None else 0
        self._lr = tf.Variable(0.0, trainable=False, dtype=tf.float32, name="learning_rate")
        self.kl_beta = float(semantics.kl_beta)  # PPO-Penalty's β: a graph input, so moving it never retraces
        # Row 11: Adam ε-hat form, β = (0.9, 0.999); Keras computes α = lr·√(1−β2ᵗ)/(1−β1ᵗ) as TF1 did.
        self.optimizer = keras.optimizers.Adam(learning_rate=lambda: self._lr, beta_1=0.9, beta_2=0.999,
                                               epsilon=semantics.adam_epsilon)
        self.optimizer.build(model.trainable_variables)
        check_plain_adam(self.optimizer)
        self._n_passes = plan.n_epochs + (1 if semantics.eval_pass else 0)
        self.recurrent = getattr(model, "is_recurrent", False)
        if self.recurrent != (plan.sequence_length is not None):
            raise ValueError("a recurrent policy needs an env-wise MinibatchPlan (MinibatchPlan.by_env), and only it")
        # The epoch loop is an explicit tf.while_loop, so nothing is autograph-converted: converting the
        # loop was most of the one-time trace (docs/performance.md). XLA cannot hold the host-side MPI
        # reducer, so with one the update is a plain graph (XLA pieces inside a graph loop measured slower:
        # each launch costs more than the arithmetic of a minibatch).
        jit = xla and grad_reducer is None and not model.is_image
        self.compiled_update = tf.function(self._update, jit_compile=jit, autograph=False)

    # -- public ------------------------------------------------------------------
    def update(self, batch: Batch, *, learning_rate: float, clip: float, clip_vf: float | None,
               rng: np.random.Generator) -> UpdateResult:
        """Run all epochs on ``batch``; minibatch shuffles are drawn from ``rng``."""
        train, per_epoch, evaluation, steps, diag, nonfinite, final_kl = self.compiled_update(
            *self.update_inputs(batch, learning_rate=learning_rate, clip=clip, clip_vf=clip_vf, rng=rng))
        named = lambda row: {k: float(v) for k, v in zip(STAT_NAMES, row.numpy())}
        return UpdateResult(named(train), per_epoch.numpy(), named(evaluation) if self.semantics.eval_pass else None,
                            int(steps), diagnostics=dict(zip(DIAG_NAMES, (float(v) for v in diag.numpy()))),
                            nonfinite=int(nonfinite), final_kl=float(final_kl))

    def update_inputs(self, batch: Batch, *, learning_rate: float, clip: float, clip_vf: float | None,
                      rng: np.random.Generator) -> tuple[tf.Tensor, ...]:
        """The arguments of ``compiled_update`` for one update (MPI: every rank's batch, gathered): apart from
        `update` so that scripts/bench.py can time the trace (``get_concrete_function``) and the first call
        separately, on exactly the inputs an update gets."""
        if (clip_vf is None) != (self.semantics.value_clip == "off"):
            raise ValueError(f"clip_vf={clip_vf} does not fit value_clip={self.semantics.value_clip}")
        arrays = dict(obs=batch.obs, actions=batch.actions, advantages=batch.advantages, returns=batch.returns,
                      values=batch.values, neglogp=batch.neglogp, indices=self.plan.shuffles(rng, self._n_passes))
        if self.recurrent:
            arrays.update(masks=batch.masks.astype(np.float32), states=batch.states.astype(np.float32))
        if self.replicas is not None:
            flat_params = np.concatenate([v.numpy().ravel() for v in self.model.trainable_variables])
            arrays = self.replicas.gather(arrays, flat_params)
        else:
            arrays = {k: v[None] for k, v in arrays.items()}
        f32 = lambda x: tf.constant(x, tf.float32)
        return (tf.constant(arrays["obs"]), tf.constant(arrays["actions"]), f32(arrays["advantages"]),
                f32(arrays["returns"]), f32(arrays["values"]), f32(arrays["neglogp"]), tf.constant(arrays["indices"]),
                tf.constant(self._replica), f32(learning_rate), f32(clip), f32(clip_vf if clip_vf is not None else 0.0),
                f32(self.kl_beta), *((f32(arrays["masks"]), f32(arrays["states"])) if self.recurrent else ()))

    def adapt_kl_beta(self, kl: float) -> None:
        """After an update, with d averaged over MPI ranks by the caller: only ``kl_penalty`` adapts β."""
        if self.semantics.policy_loss == "kl_penalty":
            self.kl_beta = losses.adapt_kl_beta(self.kl_beta, kl, self.semantics.kl_target)

    # -- graph ---------------------------------------------------------------------
    def _forward(self, rows: dict):
        """(pd_params, values) of a set of rows: the MLP row by row; the recurrent policy unrolled over
        each env's whole sequence from its stored state (rows hold whole env sequences, env-major)."""
        if self.recurrent:
            return self.model(rows["obs"], rows["masks"], rows["states"])
        return self.model(rows["obs"])

    def _gather(self, data: dict, replica, idx) -> dict:
        """One replica's minibatch: rows ``idx``; the per-env states of the envs whose sequences they are.
        ``tf.gather`` on the replica, never ``v[replica]``: XLA compiles a slice's bounds as constants, so each
        rank would compile (and round) its own module (tests/mpi_scripts/gradient_modes.py)."""
        mb = {k: tf.gather(tf.gather(v, replica), idx) for k, v in data.items() if k != "states"}
        if self.recurrent:
            mb["states"] = tf.gather(tf.gather(data["states"], replica), idx[::self.plan.sequence_length] //
                                     self.plan.sequence_length)
        return mb

    def _minibatch_stats(self, mb: dict, clip, clip_vf, beta, with_diag: bool = False):
        """Total loss and the STAT_NAMES vector of one minibatch (spec §6); with ``with_diag`` also
        [ratio max, ratio mean, advantage mean, advantage std] (the first four DIAG_NAMES)."""
        sem = self.semantics
        params, values = self._forward(mb)
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

    def _loss_and_grads(self, data: dict, idx, replica, clip, clip_vf, beta):
        """Loss, STAT_NAMES vector, diagnostics (this replica's) and the gradient of one minibatch step.

        ``data`` holds every replica's batch [R, N, ...] and ``idx`` each replica's minibatch [R, mb]: the
        loss is the mean of the replicas' minibatch losses, so its gradient is exactly the mean of their
        gradients — the MPI average of spec §7.1, computed on every rank with no communication."""
        variables = self.model.trainable_variables
        with tf.GradientTape() as tape:
            per_replica = [self._minibatch_stats(self._gather(data, r, idx[r]), clip, clip_vf, beta, with_diag=True)
                           for r in range(self._n_replicas)]
            loss = per_replica[0][0] if self._n_replicas == 1 else \
                tf.add_n([out[0] for out in per_replica]) / float(self._n_replicas)
        # This replica's statistics, picked by a tensor index: every rank then compiles one identical
        # XLA module (a Python index made each rank's module differ, so XLA fused — and rounded — the
        # shared gradient differently per rank and the replicas drifted apart by ~1e-7 per update).
        stats = tf.gather(tf.stack([out[1] for out in per_replica]), replica)
        diag = tf.gather(tf.stack([out[2] for out in per_replica]), replica)
        grads = [tf.zeros_like(v) if g is None else g for g, v in zip(tape.gradient(loss, variables), variables)]
        return loss, stats, diag, grads

    def _reduce(self, grads: list[tf.Tensor], loss: tf.Tensor) -> list[tf.Tensor]:
        """The MPI average of the gradient, in the graph ([B] MpiAdamOptimizer's py_func, one flat
        Allreduce); the parameters go along so the reducer can check the ranks are in sync. A rank whose
        loss is non-finite sends NaN, so the average is NaN on every rank and all of them skip the step."""
        variables = self.model.trainable_variables
        flat = tf.concat([tf.reshape(g, [-1]) for g in grads], axis=0)
        flat += tf.where(tf.math.is_finite(loss), 0.0, float("nan"))
        flat_params = tf.concat([tf.reshape(v, [-1]) for v in variables], axis=0)
        reduced = tf.numpy_function(self.grad_reducer, [flat, flat_params], tf.float32, stateful=True)
        parts = tf.split(tf.reshape(reduced, tf.shape(flat)), [int(np.prod(v.shape)) for v in variables])
        return [tf.reshape(part, v.shape) for part, v in zip(parts, variables)]

    def _apply(self, grads: list[tf.Tensor], loss: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        """Check, clip and apply one (already averaged) gradient; returns (NONFINITE code, pre-clip global
        norm). A non-finite loss or gradient is never applied; parameters are checked right after the step
        so the trainer stops before the next one (and before any checkpoint could save them)."""
        variables = self.model.trainable_variables
        norm = tf.linalg.global_norm(grads)
        # One IsFinite per check, over stacked/concatenated values: the test is exact whatever the grouping,
        # and XLA lowers each IsFinite through its own MLIR pipeline (≈8 ms of the first update apiece).
        loss_ok, norm_ok = tf.unstack(tf.math.is_finite(tf.stack([loss, norm])))

        def apply() -> tf.Tensor:
            clipped = grads
            if self.semantics.max_grad_norm is not None:
                clipped, _ = tf.clip_by_global_norm(grads, self.semantics.max_grad_norm, use_norm=norm)
            adam_step(self.optimizer, clipped, variables)  # apply_gradients' arithmetic, traced in fewer ops
            params_ok = tf.reduce_all(tf.math.is_finite(tf.concat([tf.reshape(v, [-1]) for v in variables], 0)))
            return tf.where(params_ok, int(StepCode.APPLIED), int(StepCode.NONFINITE_PARAMETER))

        code = tf.cond(loss_ok & norm_ok, apply,
                       lambda: tf.where(loss_ok, int(StepCode.NONFINITE_GRADIENT), int(StepCode.NONFINITE_LOSS)))
        return code, norm

    def _step(self, data: dict, idx, replica, clip, clip_vf, beta):
        """One minibatch step: (`StepCode`, STAT_NAMES, diagnostics, grad norm)."""
        loss, stats, diag, grads = self._loss_and_grads(data, idx, replica, clip, clip_vf, beta)

        def apply():
            return self._apply(grads if self.grad_reducer is None else self._reduce(grads, loss), loss)

        if self.semantics.target_kl is None:
            code, grad_norm = apply()
        else:  # SB3-style early stop, before this step is applied
            code, grad_norm = tf.cond(stats[STAT["approxkl"]] > 1.5 * self.semantics.target_kl,
                                      lambda: (tf.constant(int(StepCode.STOPPED_BY_TARGET_KL)), tf.constant(0.0)),
                                      apply)
        return code, stats, diag, grad_norm

    def _update(self, obs, actions, advantages, returns, values, neglogp_stored, indices, replica, lr, clip, clip_vf,
                beta, masks=None, states=None):
        """Every input has a leading replica axis R (1 without MPI replication); ``replica`` is this rank's
        index into it, a tensor so that all ranks trace and compile the same graph. ``masks`` [R, N] and
        ``states`` [R, envs, S] come only with a recurrent policy."""
        sem, plan = self.semantics, self.plan
        self._lr.assign(lr)
        # The frozen old policy (PPO1's oldpi, row 5) is never stepped during the epochs, so its
        # outputs over the batch, computed once here, are all that is needed of it.
        rows = obs.shape[0] * obs.shape[1]
        merge = lambda t: tf.reshape(t, [t.shape[0] * t.shape[1], *t.shape[2:]])  # replicas' rows in one batch
        sequences = dict(masks=merge(masks), states=merge(states)) if self.recurrent else {}
        params_old_rows, _ = self._forward(dict(obs=merge(obs), **sequences))
        params_old = tf.reshape(params_old_rows, [obs.shape[0], obs.shape[1], -1])
        if sem.old_logp == "recomputed":
            neglogp_old = tf.reshape(self.dist.neglogp(params_old_rows, tf.reshape(actions, [rows, *actions.shape[2:]])),
                                     neglogp_stored.shape)
        else:
            neglogp_old = neglogp_stored
        if sem.adv_norm == "batch":  # PPO1: once, over each rank's whole batch (§4)
            advantages = tf.stack([losses.normalize_advantages(advantages[r], sem.adv_norm_eps)
                                   for r in range(self._n_replicas)])
        data = dict(obs=obs, actions=actions, advantages=advantages, returns=returns, values=values,
                    neglogp_old=neglogp_old, params_old=params_old)
        if self.recurrent:
            data.update(masks=masks, states=states)
        n_mb, n_stats = plan.n_minibatches, len(STAT_NAMES)

        def step(i, stop, nonfinite, epoch_sums, epoch_counts, ratio_max, diag_sum):
            epoch = i // n_mb
            code, stats, diag, grad_norm = self._step(data, indices[:, epoch, i % n_mb], replica, clip, clip_vf, beta)
            ok = tf.equal(code, int(StepCode.APPLIED))
            at_epoch = [[epoch]]
            epoch_sums = tf.tensor_scatter_nd_add(epoch_sums, at_epoch, [tf.where(ok, stats, 0.0)])
            epoch_counts = tf.tensor_scatter_nd_add(epoch_counts, at_epoch, [tf.cast(ok, tf.int32)])
            ratio_max = tf.where(ok, tf.maximum(ratio_max, diag[0]), ratio_max)
            diag_sum += tf.where(ok, tf.concat([diag[1:], [grad_norm]], axis=0), 0.0)
            # A stop (NaN/Inf guard, or target_kl) ends the loop: nothing after that step runs.
            return i + 1, ~ok, tf.maximum(code, int(StepCode.APPLIED)), epoch_sums, epoch_counts, ratio_max, diag_sum

        _, _, nonfinite, epoch_sums, epoch_counts, ratio_max, diag_sum = tf.while_loop(
            lambda i, stop, *_: (i < plan.n_epochs * n_mb) & ~stop, step,
            (tf.constant(0), tf.constant(False), tf.constant(0), tf.zeros([plan.n_epochs, n_stats]),
             tf.zeros([plan.n_epochs], tf.int32), tf.constant(0.0), tf.zeros([len(DIAG_NAMES) - 1])))
        steps = tf.reduce_sum(epoch_counts)
        per_epoch = epoch_sums / tf.cast(tf.maximum(epoch_counts, 1), tf.float32)[:, None]
        n_taken = tf.cast(tf.maximum(steps, 1), tf.float32)
        train = tf.reduce_sum(epoch_sums, axis=0) / n_taken
        diagnostics = tf.concat([[ratio_max], diag_sum / n_taken], axis=0)

        evaluation = tf.zeros([n_stats])
        if sem.eval_pass:
            # PPO1 row 23: one more pass over fresh minibatches with no update; its means are logged.
            def eval_step(m, total):
                mb = self._gather(data, replica, tf.gather(indices, replica)[plan.n_epochs, m])
                return m + 1, total + self._minibatch_stats(mb, clip, clip_vf, beta)[1]

            _, evaluation = tf.while_loop(lambda m, _: m < n_mb, eval_step, (tf.constant(0), evaluation))
            evaluation /= float(n_mb)
        final_kl = tf.constant(float("nan"))
        if sem.policy_loss == "kl_penalty":  # d of the adaptive rule: the updated policy against the old one
            # this rank's batch, averaged over ranks by the caller
            params_new, _ = self._forward({k: tf.gather(v, replica) for k, v in dict(obs=obs, masks=masks,
                                                                                     states=states).items()
                                           if v is not None})
            final_kl = tf.reduce_mean(self.dist.kl(tf.gather(params_old, replica), params_new))
        return train, per_epoch, evaluation, steps, diagnostics, nonfinite, final_kl
