"""The compiled PPO update against a reference written out from the spec's formulas (§4, §6, §7).

The reference below re-derives every step by hand — categorical log-probabilities from
log-softmax, the clipped surrogate, the value loss, the entropy bonus, advantage
normalisation (per minibatch with Â = R − V_old and +1e-8, or once per batch with no ε),
``tf.clip_by_global_norm`` and a fresh ``keras.optimizers.Adam(epsilon=1e-5)`` — on a
second copy of the network, and the Learner's parameters must match it to 1e-6.
"""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf
from gymnasium import spaces

from tfppo.config.hyperparameters import NetworkConfig
from tfppo.util.errors import ConfigError
from tfppo.core.learner import STAT_NAMES, Batch, Learner, MinibatchPlan
from tfppo.core.policy import ActorCritic
from tfppo.config.semantics import Semantics, get_preset

OBS_SPACE = spaces.Box(-np.inf, np.inf, shape=(4,), dtype=np.float32)  # CartPole-like
ACT_SPACE = spaces.Discrete(2)
ENT_COEF = 0.01
LR = 1e-2
CLIP = 0.2
STAT = {name: i for i, name in enumerate(STAT_NAMES)}


def make_model(seed: int = 0) -> ActorCritic:
    return ActorCritic(OBS_SPACE, ACT_SPACE, network=NetworkConfig((8,)), seed=seed)


def clone(model: ActorCritic) -> ActorCritic:
    ref = make_model(seed=99)
    ref.set_weights(model.get_weights())
    return ref


def np_neglogp(logits: np.ndarray, actions: np.ndarray) -> np.ndarray:
    z = logits.astype(np.float64) - logits.max(axis=-1, keepdims=True)
    logp = z - np.log(np.exp(z).sum(axis=-1, keepdims=True))
    return -logp[np.arange(len(actions)), actions]


def make_batch(model: ActorCritic, seed: int, n: int = 16) -> Batch:
    """Random data around the model's current outputs: V_old and neglogp_old are off by up to ±0.3,
    so value clipping and ratio clipping are active for some elements at the first step."""
    rng = np.random.default_rng(seed)
    obs = rng.normal(size=(n, 4)).astype(np.float32)
    actions = rng.integers(0, 2, size=n).astype(np.int64)
    logits, v = (x.numpy() for x in model(obs))
    values = (v + rng.uniform(-0.3, 0.3, n)).astype(np.float32)
    neglogp = (np_neglogp(logits, actions) + rng.uniform(-0.3, 0.3, n)).astype(np.float32)
    returns = (values + rng.normal(size=n)).astype(np.float32)
    advantages = (returns - values).astype(np.float32)  # what GAE gives: Â = R − V
    return Batch(obs=obs, actions=actions, advantages=advantages, returns=returns, values=values, neglogp=neglogp)


# ------------------------------------------------------------------- the reference
def ref_terms(ref, obs, actions, adv, returns, values_old, nlp_old, params_old, *, clip, clip_vf, vf_kind):
    """Loss terms written out from spec §6 for a categorical policy."""
    logits, v = ref(obs)
    logp_all = tf.nn.log_softmax(logits)
    nlp = -tf.gather(logp_all, actions, batch_dims=1)
    ratio = tf.exp(nlp_old - nlp)                                               # r = exp(nlp_old − nlp)
    pg = tf.reduce_mean(tf.maximum(-adv * ratio, -adv * tf.clip_by_value(ratio, 1 - clip, 1 + clip)))
    entropy = tf.reduce_mean(-tf.reduce_sum(tf.exp(logp_all) * logp_all, axis=-1))  # H = −Σ p log p
    if vf_kind == "mse":                                                        # PPO1: mean((V−R)²)
        vf = tf.reduce_mean(tf.square(v - returns))
    else:                                                                       # PPO2: ½·mean(max(...))
        v_clip = values_old + tf.clip_by_value(v - values_old, -clip_vf, clip_vf)
        vf = 0.5 * tf.reduce_mean(tf.maximum(tf.square(v - returns), tf.square(v_clip - returns)))
    approxkl = 0.5 * tf.reduce_mean(tf.square(nlp - nlp_old))
    clipfrac = tf.reduce_mean(tf.cast(tf.abs(ratio - 1.0) > clip, tf.float32))
    logp_old = tf.nn.log_softmax(params_old)
    kl = tf.reduce_mean(tf.reduce_sum(tf.exp(logp_old) * (logp_old - logp_all), axis=-1))  # KL(old ‖ new)
    stats = np.array([pg, vf, entropy, approxkl, clipfrac, kl], dtype=np.float64)
    return pg, vf, entropy, stats


def np_normalize(adv: np.ndarray, eps: float) -> np.ndarray:
    """(Â − mean)/(std + eps), numpy population std (ddof 0)."""
    adv = adv.astype(np.float64)
    return ((adv - adv.mean()) / (adv.std() + eps)).astype(np.float32)


def reference_update(ref, batch: Batch, indices: np.ndarray, *, n_epochs: int, adv_norm: str, vf_kind: str,
                     vf_coef: float, max_grad_norm, old_logp: str, clip_vf=CLIP, lr=LR, clip_mode="global"):
    """Applies n_epochs × n_minibatches hand-written steps to ``ref``; returns per-step stats."""
    opt = keras.optimizers.Adam(learning_rate=lr, beta_1=0.9, beta_2=0.999, epsilon=1e-5)
    params_old = ref(batch.obs)[0].numpy()
    nlp_old = np_neglogp(params_old, batch.actions).astype(np.float32) if old_logp == "recomputed" \
        else batch.neglogp
    adv_all = np_normalize(batch.advantages, 0.0) if adv_norm == "batch" else None  # PPO1: once, no ε
    step_stats, raw_grads = [], []
    for epoch in range(n_epochs):
        for idx in indices[epoch]:
            if adv_norm == "minibatch":
                # PPO2: Â = R − V_old recomputed on the minibatch, then (Â − mean)/(std + 1e-8)
                adv = np_normalize(batch.returns[idx] - batch.values[idx], 1e-8)
            else:
                adv = adv_all[idx]
            with tf.GradientTape() as tape:
                pg, vf, ent, stats = ref_terms(
                    ref, batch.obs[idx], batch.actions[idx], adv, batch.returns[idx], batch.values[idx],
                    nlp_old[idx], params_old[idx], clip=CLIP, clip_vf=clip_vf, vf_kind=vf_kind)
                loss = pg - ENT_COEF * ent + vf_coef * vf
            grads = tape.gradient(loss, ref.trainable_variables)
            raw_grads.append(np.concatenate([g.numpy().ravel() for g in grads]))
            if max_grad_norm is not None:
                if clip_mode == "global":
                    grads, _ = tf.clip_by_global_norm(grads, max_grad_norm)
                else:  # per-tensor, the wrong kind (Keras clipnorm), used to show the difference
                    grads = [tf.clip_by_norm(g, max_grad_norm) for g in grads]
            opt.apply_gradients(zip(grads, ref.trainable_variables))
            step_stats.append(stats)
    return np.array(step_stats), raw_grads


def params(model) -> list[np.ndarray]:
    return [v.numpy().copy() for v in model.trainable_variables]


def assert_params_close(a, b, atol=1e-6):
    assert len(a) == len(b)
    for x, y in zip(a, b):
        np.testing.assert_allclose(x, y, atol=atol, rtol=0)


def max_diff(a, b) -> float:
    return max(float(np.max(np.abs(x - y))) for x, y in zip(a, b))


def run_learner(semantics: Semantics, plan: MinibatchPlan, batch: Batch, seed: int = 7, model=None, **kw):
    model = model if model is not None else make_model()
    learner = Learner(model, semantics, plan, ent_coef=ENT_COEF, **kw)
    clip_vf = None if semantics.value_clip == "off" else CLIP
    result = learner.update(batch, learning_rate=LR, clip=CLIP, clip_vf=clip_vf, rng=np.random.default_rng(seed))
    return learner, result


def plan_indices(plan: MinibatchPlan, n_passes: int, seed: int = 7) -> np.ndarray:
    return plan.shuffles(np.random.default_rng(seed), n_passes)


PPO2_MB = Semantics(adv_norm="minibatch", adv_norm_eps=1e-8)
PPO1_BATCH = Semantics(adv_norm="batch", adv_norm_eps=0.0)


# ------------------------------------------------------------ (a) normalisation scope
@pytest.fixture(scope="module")
def scope_runs():
    """Learner and reference parameters for both scopes, with 2 minibatches and with 1."""
    base = make_model()
    batch = make_batch(base, seed=1)
    init = base.get_weights()
    out = {}
    for n_mb in (2, 1):
        plan = MinibatchPlan.from_count(16, n_mb, n_epochs=1)
        for name, sem in (("minibatch", PPO2_MB), ("batch", PPO1_BATCH)):
            model = make_model()
            model.set_weights(init)
            ref = clone(model)
            # PPO2 recomputes Â = R − V_old per minibatch and never reads batch.advantages: feed it garbage
            data = batch if name == "batch" else Batch(batch.obs, batch.actions, np.full(16, 123.0, np.float32),
                                                       batch.returns, batch.values, batch.neglogp)
            learner, result = run_learner(sem, plan, data, model=model)
            reference_update(ref, batch, plan_indices(plan, 1), n_epochs=1, adv_norm=name, vf_kind="clipped",
                             vf_coef=0.5, max_grad_norm=0.5, old_logp="stored")
            out[(n_mb, name)] = (params(model), params(ref), result)
    return out


@pytest.mark.parametrize("scope", ["minibatch", "batch"])
@pytest.mark.parametrize("n_mb", [2, 1])
def test_update_matches_hand_reference(scope_runs, scope, n_mb):
    learner_params, ref_params, result = scope_runs[(n_mb, scope)]
    assert result.n_gradient_steps == n_mb
    assert_params_close(learner_params, ref_params, atol=1e-6)
    # and something actually moved
    assert max_diff(learner_params, params(make_model())) > 1e-3


def test_two_minibatches_scopes_differ_one_minibatch_agree(scope_runs):
    mb2 = max_diff(scope_runs[(2, "minibatch")][0], scope_runs[(2, "batch")][0])
    mb1 = max_diff(scope_runs[(1, "minibatch")][0], scope_runs[(1, "batch")][0])
    assert mb2 > 1e-4, "per-minibatch and whole-batch normalisation must differ with 2 minibatches"
    assert mb1 < 1e-6, "with the whole batch as the minibatch the two scopes agree up to the 1e-8"


# ---------------------------------------------------------------------- (b) old_logp
def test_old_logp_recomputed_vs_stored():
    base = make_model()
    batch = make_batch(base, seed=3)
    true_nlp = np_neglogp(base(batch.obs)[0].numpy(), batch.actions)
    garbage = Batch(batch.obs, batch.actions, batch.advantages, batch.returns, batch.values,
                    np.full(16, 5.0, np.float32))
    plan = MinibatchPlan.from_count(16, 1, 1)  # one step: per_epoch[0] are the first step's stats

    m_rec = make_model()
    _, r_rec = run_learner(Semantics(old_logp="recomputed"), plan, garbage, model=m_rec)
    # ratio exactly 1 at the first minibatch: approxkl 0, no clipping, KL(old‖new) 0
    assert abs(r_rec.per_epoch[0, STAT["approxkl"]]) < 1e-12
    assert r_rec.per_epoch[0, STAT["clipfrac"]] == 0.0
    assert abs(r_rec.per_epoch[0, STAT["kl"]]) < 1e-7
    # the step is the reference step with neglogp_old = the current policy's: the garbage was never read
    ref = clone(make_model())
    reference_update(ref, garbage, plan_indices(plan, 1), n_epochs=1, adv_norm="minibatch", vf_kind="clipped",
                     vf_coef=0.5, max_grad_norm=0.5, old_logp="recomputed")
    assert_params_close(params(m_rec), params(ref), atol=1e-6)

    # "stored" with the garbage uses it: approxkl = ½·mean((nlp − 5)²), every ratio e^(5 − nlp) ≫ 1.2
    _, r_sto = run_learner(Semantics(old_logp="stored"), plan, garbage, model=make_model())
    expected_kl = 0.5 * np.mean((true_nlp - 5.0) ** 2)
    assert expected_kl > 1.0
    assert r_sto.per_epoch[0, STAT["approxkl"]] == pytest.approx(expected_kl, rel=1e-5)
    assert r_sto.per_epoch[0, STAT["clipfrac"]] == 1.0


# -------------------------------------------------------------------- (c) traces once
@pytest.mark.parametrize("xla", [True, False])
def test_update_traces_once(xla):
    """New learning rates and clip ranges are tensors fed in: no retrace, XLA or not."""
    model = make_model()
    learner = Learner(model, Semantics(), MinibatchPlan.from_count(16, 2, 2), ent_coef=ENT_COEF, xla=xla)
    assert learner.compiled_update._jit_compile is xla
    for i, (lr, clip, clip_vf) in enumerate([(1e-3, 0.2, 0.2), (5e-4, 0.1, 0.1), (2e-4, 0.3, 0.5)]):
        result = learner.update(make_batch(model, seed=10 + i), learning_rate=lr, clip=clip, clip_vf=clip_vf,
                                rng=np.random.default_rng(i))
        assert result.n_gradient_steps == 4
        assert result.evaluation is None  # no eval pass in PPO2 semantics
        assert result.per_epoch.shape == (2, len(STAT_NAMES))
    assert learner.compiled_update.experimental_get_tracing_count() == 1
    # the learning rate fed in is the one applied
    assert float(learner._lr.numpy()) == pytest.approx(2e-4, rel=1e-6)


# --------------------------------------------------------------------- (d) grad clip
def test_max_grad_norm_is_global_norm_clip():
    sem = Semantics(max_grad_norm=1e-3)
    base = make_model()
    batch = make_batch(base, seed=4)
    plan = MinibatchPlan.from_count(16, 2, 1)
    model = make_model()
    run_learner(sem, plan, batch, model=model)
    kw = dict(n_epochs=1, adv_norm="minibatch", vf_kind="clipped", vf_coef=0.5, old_logp="stored")

    ref = clone(make_model())
    _, raw = reference_update(ref, batch, plan_indices(plan, 1), max_grad_norm=1e-3, **kw)
    assert np.linalg.norm(raw[0]) > 1e-2  # the clip is active (raw norm ≫ 1e-3)
    assert_params_close(params(model), params(ref), atol=1e-6)

    # without clipping, or clipping each tensor separately, the result is measurably different
    unclipped = clone(make_model())
    reference_update(unclipped, batch, plan_indices(plan, 1), max_grad_norm=None, **kw)
    per_tensor = clone(make_model())
    reference_update(per_tensor, batch, plan_indices(plan, 1), max_grad_norm=1e-3, clip_mode="per_tensor", **kw)
    assert max_diff(params(model), params(unclipped)) > 1e-4
    assert max_diff(params(model), params(per_tensor)) > 1e-5


# -------------------------------------------------------------------- (e) MinibatchPlan
def test_plan_from_count():
    with pytest.raises(ConfigError) as info:
        MinibatchPlan.from_count(10, 3, 4)
    assert "\n" not in str(info.value) and "3" in str(info.value) and "10" in str(info.value)
    with pytest.raises(ConfigError):
        MinibatchPlan.from_count(10, 0, 4)
    plan = MinibatchPlan.from_count(12, 3, 4)
    assert (plan.minibatch_size, plan.n_minibatches, plan.n_epochs) == (4, 3, 4)
    shuffles = plan.shuffles(np.random.default_rng(0), 4)
    assert shuffles.shape == (4, 3, 4)
    for p in range(4):  # PPO2 covers the whole batch every epoch
        assert sorted(shuffles[p].ravel().tolist()) == list(range(12))


def test_plan_from_size_drops_remainder():
    plan = MinibatchPlan.from_size(10, 4, n_epochs=3)
    assert plan.n_minibatches == 2  # floor(10/4)
    shuffles = plan.shuffles(np.random.default_rng(0), 3)
    assert shuffles.shape == (3, 2, 4)
    assert shuffles.dtype == np.int32
    for p in range(3):
        used = shuffles[p].ravel()
        assert len(set(used.tolist())) == 8            # distinct within a pass
        assert used.min() >= 0 and used.max() < 10
        assert len(set(range(10)) - set(used.tolist())) == 2  # 10 mod 4 = 2 dropped per pass
    assert not np.array_equal(shuffles[0], shuffles[1])  # a fresh permutation per pass
    # 0/None means the full batch; larger than the batch is refused
    assert MinibatchPlan.from_size(10, None, 1).minibatch_size == 10
    assert MinibatchPlan.from_size(10, 0, 1).n_minibatches == 1
    with pytest.raises(ConfigError):
        MinibatchPlan.from_size(10, 11, 1)


# ------------------------------------------------------------------- (f) eval pass
def test_ppo1_update_with_eval_pass_matches_reference():
    sem = get_preset("sb-ppo1")  # batch norm no ε, mse ×1, no grad clip, recomputed old logp, eval pass
    base = make_model()
    batch = make_batch(base, seed=5, n=14)
    plan = MinibatchPlan.from_size(14, 4, n_epochs=2)  # 3 minibatches of 4 per epoch, 2 samples dropped
    model = make_model()
    learner, result = run_learner(sem, plan, batch, model=model)

    assert result.n_gradient_steps == 2 * 3
    assert int(learner.optimizer.iterations.numpy()) == 6  # the eval pass applies nothing
    assert set(result.evaluation) == set(STAT_NAMES)

    indices = plan_indices(plan, 3)  # 2 training passes + 1 evaluation pass
    ref = clone(make_model())
    params_old = ref(batch.obs)[0].numpy()
    step_stats, _ = reference_update(ref, batch, indices, n_epochs=2, adv_norm="batch", vf_kind="mse",
                                     vf_coef=1.0, max_grad_norm=None, old_logp="recomputed")
    assert_params_close(params(model), params(ref), atol=1e-6)

    # logged stats: per-epoch means of the pre-step minibatch stats, and their overall mean
    np.testing.assert_allclose(result.per_epoch, step_stats.reshape(2, 3, -1).mean(axis=1), atol=1e-5)
    np.testing.assert_allclose([result.train[k] for k in STAT_NAMES], step_stats.mean(axis=0), atol=1e-5)
    assert result.per_epoch[0, STAT["approxkl"]] > 0  # later steps move away from oldpi

    # evaluation: the third shuffle's minibatches at the final parameters, no update, averaged
    nlp_old = np_neglogp(params_old, batch.actions).astype(np.float32)
    adv = np_normalize(batch.advantages, 0.0)
    evals = [ref_terms(ref, batch.obs[idx], batch.actions[idx], adv[idx], batch.returns[idx], batch.values[idx],
                       nlp_old[idx], params_old[idx], clip=CLIP, clip_vf=None, vf_kind="mse")[3]
             for idx in indices[2]]
    np.testing.assert_allclose([result.evaluation[k] for k in STAT_NAMES], np.mean(evals, axis=0), atol=1e-5)


# ------------------------------------------------------------------ (g) grad_reducer
def test_grad_reducer_sits_between_gradient_and_clip_apply():
    """One learner, two updates: a pass-through reducer that records, then one that zeroes."""
    mode = {"zero": False}
    seen = []

    def reducer(flat_grad: np.ndarray, flat_params: np.ndarray) -> np.ndarray:
        seen.append((flat_grad.copy(), flat_params.copy()))
        return (flat_grad * 0).astype(np.float32) if mode["zero"] else flat_grad.copy()

    sem = Semantics(max_grad_norm=1e-3)
    batch = make_batch(make_model(), seed=9)
    plan = MinibatchPlan.from_count(16, 2, 1)
    model = make_model()
    initial = params(model)
    learner = Learner(model, sem, plan, ent_coef=ENT_COEF, grad_reducer=reducer)
    learner.update(batch, learning_rate=LR, clip=CLIP, clip_vf=CLIP, rng=np.random.default_rng(7))

    # Row 12: the reducer receives the raw gradient (clipping comes after it) and the pre-step parameters
    ref = clone(make_model())
    _, raw = reference_update(ref, batch, plan_indices(plan, 1), n_epochs=1, adv_norm="minibatch",
                              vf_kind="clipped", vf_coef=0.5, max_grad_norm=1e-3, old_logp="stored")
    assert len(seen) == 2  # once per gradient step
    n_params = sum(int(np.prod(v.shape)) for v in model.trainable_variables)
    for (got, flat_params), want in zip(seen, raw):
        assert got.shape == (n_params,) and flat_params.shape == (n_params,)
        np.testing.assert_allclose(got, want, atol=1e-6, rtol=1e-5)
    assert np.linalg.norm(seen[0][0]) > 1e-2  # so it was not clipped to 1e-3 before the reducer
    np.testing.assert_allclose(seen[0][1], np.concatenate([p.ravel() for p in initial]), atol=0)
    assert_params_close(params(model), params(ref), atol=1e-6)

    # a reducer that zeroes the gradient makes every Adam step of a fresh optimiser zero (m = v = 0):
    # the parameters do not move although the loss gradient is not zero
    mode["zero"] = True
    fresh = make_model()
    before = params(fresh)
    zero_learner = Learner(fresh, sem, plan, ent_coef=ENT_COEF, grad_reducer=reducer)
    result = zero_learner.update(batch, learning_rate=LR, clip=CLIP, clip_vf=CLIP, rng=np.random.default_rng(7))
    assert result.n_gradient_steps == 2 and len(seen) == 4
    assert np.linalg.norm(seen[2][0]) > 1e-2
    assert int(zero_learner.optimizer.iterations.numpy()) == 2  # the steps were applied, with zero gradients
    assert_params_close(params(fresh), before, atol=0)


# ------------------------------------------------------- (h) XLA and the plain graph: the same update
@pytest.mark.parametrize("preset, n, mb_size, epochs", [("sb-ppo2", 16, 4, 3), ("sb-ppo1", 14, 4, 2)])
def test_xla_and_plain_graph_match_the_reference(preset, n, mb_size, epochs):
    """The XLA-compiled update (default) and the plain tf.function graph take the hand-written
    reference's steps (to 1e-6, float rounding of fused ops), and log the same statistics."""
    sem = get_preset(preset)
    batch = make_batch(make_model(), seed=21, n=n)
    plan = MinibatchPlan.from_size(n, mb_size, n_epochs=epochs)
    out = {}
    for xla in (True, False):
        model = make_model()
        learner, result = run_learner(sem, plan, batch, model=model, xla=xla)
        assert learner.compiled_update._jit_compile is xla
        out[xla] = (params(model), result)
    ref = clone(make_model())
    clip_vf = None if sem.value_clip == "off" else CLIP
    reference_update(ref, batch, plan_indices(plan, epochs + (1 if sem.eval_pass else 0)), n_epochs=epochs,
                     adv_norm=sem.adv_norm, vf_kind=sem.value_loss, vf_coef=sem.vf_coef,
                     max_grad_norm=sem.max_grad_norm, old_logp=sem.old_logp, clip_vf=clip_vf)
    for xla in (True, False):
        assert_params_close(out[xla][0], params(ref), atol=1e-6)
    assert max_diff(out[True][0], params(make_model())) > 1e-3  # it moved
    np.testing.assert_allclose(out[True][1].per_epoch, out[False][1].per_epoch, rtol=1e-5, atol=1e-6)


def test_adam_step_equals_keras_apply_gradients_bit_for_bit():
    """`tfppo.core.adam_step` against Keras' own ``apply_gradients`` on twin variables: three steps of the same
    gradients inside one compiled function give identical parameters, moments and step counters."""
    from tfppo.core.adam_step import adam_step

    rng = np.random.default_rng(3)
    shapes = [(4, 3), (3,), (3, 1)]
    init = [rng.normal(size=s).astype(np.float32) for s in shapes]
    grads = [[tf.constant(rng.normal(size=s).astype(np.float32)) for s in shapes] for _ in range(3)]
    twins = []
    for _ in range(2):
        variables = [tf.Variable(v) for v in init]
        opt = keras.optimizers.Adam(learning_rate=3e-4, beta_1=0.9, beta_2=0.999, epsilon=1e-5)
        opt.build(variables)
        twins.append((variables, opt))
    (ref_vars, ref_opt), (vars_, opt) = twins

    @tf.function(jit_compile=True, autograph=False)
    def three_steps():
        for step in grads:
            ref_opt.apply_gradients(zip(step, ref_vars))
            adam_step(opt, step, vars_)

    three_steps()
    for a, b in zip(ref_vars + ref_opt.variables, vars_ + opt.variables):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    assert int(opt.iterations.numpy()) == 3
