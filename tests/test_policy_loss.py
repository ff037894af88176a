"""PPO-Penalty (Schulman et al. 2017 §4) as the ``policy_loss`` switch: the loss on a crafted batch, the
adaptive β rule, β in the compiled update (no retrace), in checkpoints and in the logs."""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import tensorflow as tf

import tfppo
from tfppo.core import losses
from tfppo.core.learner import Learner, MinibatchPlan
from tfppo.config.semantics import Semantics
from tests.test_learner import ENT_COEF, clone, make_batch, make_model

NEGLOGP = np.array([0.5, 1.0, 0.2], np.float32)
NEGLOGP_OLD = np.array([0.7, 0.9, 0.2], np.float32)
ADV = np.array([1.0, -2.0, 0.5], np.float32)
KL = np.array([0.01, 0.03, 0.02], np.float32)


def _loss(kind: str, beta: float = 2.0, clip: float = 0.1) -> float:
    loss, _ = losses.policy_loss(tf.constant(NEGLOGP), tf.constant(NEGLOGP_OLD), tf.constant(ADV),
                                 tf.constant(clip), tf.constant(KL), tf.constant(beta), kind)
    return float(loss)


def test_policy_loss_on_a_crafted_batch():
    r = [math.exp(0.2), math.exp(-0.1), 1.0]  # exp(neglogp_old − neglogp)
    surrogate = -(1.0 * r[0] - 2.0 * r[1] + 0.5 * r[2]) / 3  # −mean(r·Â) = −(1.2214 − 1.8097 + 0.5)/3
    penalty = 2.0 * (0.01 + 0.03 + 0.02) / 3  # β·mean(KL) = 0.04
    # clipped at ε = 0.1: max(−Â·r, −Â·clip(r)) per sample = (−1.1, 1.8097, −0.5)
    clipped = (-1.1 + 2.0 * r[1] - 0.5) / 3
    assert _loss("kl_penalty") == pytest.approx(surrogate + penalty, abs=1e-6)
    assert _loss("fixed_kl") == pytest.approx(surrogate + penalty, abs=1e-6)
    assert _loss("clip_and_kl") == pytest.approx(clipped + penalty, abs=1e-6)
    assert _loss("clip") == pytest.approx(clipped, abs=1e-6)
    assert _loss("kl_penalty", beta=0.0) == pytest.approx(surrogate, abs=1e-6)


def test_adaptive_beta_sequence():
    beta, seq = 1.0, []
    for d in (0.001, 0.02, 0.016, 0.01, 0.015, 0.006, 0.0066):
        beta = losses.adapt_kl_beta(beta, d, 0.01)
        seq.append(beta)
    # d < 0.00667 halves, d > 0.015 doubles, otherwise β stays
    assert seq == [0.5, 1.0, 2.0, 2.0, 2.0, 1.0, 0.5]


def _learner(kind: str, beta: float = 1.0):
    model = make_model()
    sem = Semantics(policy_loss=kind, kl_beta=beta)
    return model, Learner(model, sem, MinibatchPlan.from_count(16, 2, 3), ent_coef=ENT_COEF)


def test_kl_penalty_adapts_beta_from_the_updated_policy_and_never_retraces():
    model, learner = _learner("kl_penalty")
    betas = [learner.kl_beta]
    for i in range(3):
        batch = make_batch(model, seed=20 + i)
        old = clone(model)
        result = learner.update(batch, learning_rate=1e-2, clip=0.2, clip_vf=0.2, rng=np.random.default_rng(i))
        # d by hand: KL(old‖new) of two categoricals over the batch
        p_old = tf.nn.softmax(old(batch.obs)[0]).numpy().astype(np.float64)
        p_new = tf.nn.softmax(model(batch.obs)[0]).numpy().astype(np.float64)
        d = float(np.mean(np.sum(p_old * (np.log(p_old) - np.log(p_new)), axis=1)))
        assert result.final_kl == pytest.approx(d, rel=1e-4, abs=1e-8)
        learner.adapt_kl_beta(result.final_kl)
        betas.append(learner.kl_beta)
        assert betas[-1] == losses.adapt_kl_beta(betas[-2], d, 0.01)
    assert learner.compiled_update.experimental_get_tracing_count() == 1


def test_fixed_kl_keeps_beta_and_clip_ignores_it():
    model, learner = _learner("fixed_kl", beta=3.0)
    result = learner.update(make_batch(model, seed=1), learning_rate=1e-2, clip=0.2, clip_vf=0.2,
                            rng=np.random.default_rng(0))
    learner.adapt_kl_beta(0.5)
    assert learner.kl_beta == 3.0 and math.isnan(result.final_kl)


def test_beta_penalty_pulls_the_update_towards_the_old_policy():
    moved = {}
    for beta in (0.0, 100.0):
        model, learner = _learner("fixed_kl", beta=beta)
        batch = make_batch(make_model(), seed=5)
        before = tf.nn.softmax(model(batch.obs)[0]).numpy()
        learner.update(batch, learning_rate=1e-2, clip=0.2, clip_vf=0.2, rng=np.random.default_rng(0))
        moved[beta] = float(np.abs(tf.nn.softmax(model(batch.obs)[0]).numpy() - before).max())
    assert moved[100.0] < 0.5 * moved[0.0]


def test_beta_is_logged_adapted_and_saved(tmp_path):
    agent = tfppo.PPO2("CartPole-v1", semantics={"policy_loss": "kl_penalty", "kl_beta": 1.0}, n_steps=128,
                       nminibatches=2, noptepochs=4, seed=0, verbose=0, log_dir=tmp_path / "log")
    agent.learn(128 * 4)
    progress = pd.read_csv(tmp_path / "log" / "progress.csv")
    betas, kls = progress["kl_beta"].tolist(), progress["kl_final"].tolist()
    assert betas[0] == 1.0
    for i in range(1, len(betas)):  # each row's β is the rule applied to the previous row's β and d
        assert betas[i] == losses.adapt_kl_beta(betas[i - 1], kls[i - 1], 0.01)
    final = losses.adapt_kl_beta(betas[-1], kls[-1], 0.01)
    assert agent.learner.kl_beta == final
    agent.save(tmp_path / "model")
    assert tfppo.load(tmp_path / "model", verbose=0).learner.kl_beta == final


def test_bad_penalty_settings_are_refused():
    with pytest.raises(tfppo.ConfigError, match="policy_loss='kl' is invalid; allowed: clip|kl_penalty"):
        Semantics(policy_loss="kl")
    with pytest.raises(tfppo.ConfigError, match="kl_beta must be >= 0 and kl_target > 0"):
        Semantics(kl_target=0.0)
