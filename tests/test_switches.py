"""Each Semantics switch not covered elsewhere changes exactly the quantity it names.

(adv_norm, adv_norm_eps, value_loss, max_grad_norm, old_logp: test_learner/test_losses; first_sample,
bootstrap_truncation, clip_actions: test_rollout; timestep_counting, eval_pass: test_ppo1;
shared_towers, init: test_policy.)
"""
from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import tensorflow as tf

import tfppo
from tfppo.config.hyperparameters import NetworkConfig
from tfppo.core.learner import Batch, Learner, MinibatchPlan
from tfppo.core.policy import ActorCritic
from tfppo.config.semantics import get_preset

OBS = gym.spaces.Box(-np.inf, np.inf, (3,), np.float32)


def _learner(n: int = 16, minibatches: int = 1, epochs: int = 1, **switches) -> Learner:
    model = ActorCritic(OBS, gym.spaces.Discrete(2), network=NetworkConfig((8,)), seed=2)
    return Learner(model, get_preset("sb-ppo2").replace(**switches), MinibatchPlan.from_count(n, minibatches, epochs),
                   ent_coef=0.0)


def _batch(learner: Learner, n: int = 16) -> Batch:
    rng = np.random.default_rng(0)
    obs = rng.standard_normal((n, 3)).astype(np.float32)
    actions = rng.integers(0, 2, n)
    params, values = learner.model(tf.constant(obs))
    neglogp = learner.dist.neglogp(params, tf.constant(actions)).numpy()  # stored = behaviour policy
    returns = rng.standard_normal(n).astype(np.float32)
    return Batch(obs=obs, actions=actions, advantages=returns - values.numpy(), returns=returns,
                 values=values.numpy(), neglogp=neglogp)


def _gradients(learner: Learner, batch: Batch) -> dict[str, np.ndarray]:
    obs = tf.constant(batch.obs)
    params_old, _ = learner.model(obs)
    mb = dict(obs=obs, actions=tf.constant(batch.actions), advantages=tf.constant(batch.advantages),
              returns=tf.constant(batch.returns), values=tf.constant(batch.values),
              neglogp_old=tf.constant(batch.neglogp), params_old=params_old)
    with tf.GradientTape() as tape:
        loss, _ = learner._minibatch_stats(mb, tf.constant(0.2), tf.constant(0.2), tf.constant(1.0))
    variables = learner.model.trainable_variables
    return {v.path: g.numpy() for v, g in zip(variables, tape.gradient(loss, variables))}


def test_vf_coef_scales_only_the_value_tower_gradient():
    low, high = _learner(vf_coef=0.5), _learner(vf_coef=1.0)
    g_low, g_high = _gradients(low, _batch(low)), _gradients(high, _batch(high))
    for (path, low_grad), high_grad in zip(g_low.items(), g_high.values()):
        if "/vf" in path:
            np.testing.assert_allclose(high_grad, 2.0 * low_grad, rtol=1e-5, atol=1e-8)
            assert np.abs(low_grad).max() > 0
        else:
            np.testing.assert_allclose(high_grad, low_grad, rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize("epsilon", [1e-5, 1e-8])
def test_adam_epsilon_sets_the_eps_hat_step(epsilon):
    # Row 11, first Adam step (t = 1) in the ε-hat form: α = lr·√(1−β2)/(1−β1), m = (1−β1)g, v = (1−β2)g²,
    # Δθ = −α·m/(√v + ε) = −lr·√(1−β2)·g/(√(1−β2)·g + ε).
    learner = _learner(adam_epsilon=epsilon)
    learner._lr.assign(0.01)
    variables = learner.model.trainable_variables
    before = [v.numpy() for v in variables]
    g = 1e-3
    learner.optimizer.apply_gradients([(tf.fill(v.shape, g), v) for v in variables])
    expected = -0.01 * np.sqrt(1e-3) * g / (np.sqrt(1e-3) * g + epsilon)
    for b, v in zip(before, variables):
        np.testing.assert_allclose(v.numpy() - b, expected, rtol=1e-4)


def test_target_kl_stops_the_epochs_once_approxkl_exceeds_it():
    # The first minibatch sees the behaviour policy (approxkl 0); after one step approxkl > 1.5·1e-9.
    stopped, full = _learner(minibatches=4, epochs=3, target_kl=1e-9), _learner(minibatches=4, epochs=3)
    rng = np.random.default_rng(1)
    res_stopped = stopped.update(_batch(stopped), learning_rate=1e-2, clip=0.2, clip_vf=0.2, rng=rng)
    res_full = full.update(_batch(full), learning_rate=1e-2, clip=0.2, clip_vf=0.2, rng=np.random.default_rng(1))
    assert res_stopped.n_gradient_steps == 1
    assert res_full.n_gradient_steps == 12


@pytest.mark.parametrize("cliprange_vf, mode, expected", [(None, "cliprange", 0.3), (0.05, "separate", 0.05),
                                                          (-1.0, "off", None)])
def test_value_clip_mode_picks_the_value_clip_range(cliprange_vf, mode, expected):
    agent = tfppo.PPO2("CartPole-v1", cliprange=0.3, cliprange_vf=cliprange_vf, n_steps=16, nminibatches=1,
                       total_timesteps=16, verbose=0)
    assert agent.semantics.value_clip == mode
    clip, clip_vf = agent.clip_ranges(agent.config.cliprange(1.0), lr_multiplier=1.0, frac=1.0)
    assert clip == 0.3 and clip_vf == expected


@pytest.mark.parametrize("anneal", [True, False])
def test_clip_anneal_with_lr_multiplies_the_clip_range_by_lrmult(anneal):
    sem = get_preset("sb-ppo1").replace(clip_anneal_with_lr=anneal)
    agent = tfppo.PPO1("CartPole-v1", semantics=sem, timesteps_per_actorbatch=64, optim_batchsize=32, optim_epochs=1,
                       schedule="linear", max_timesteps=256, clip_param=0.2, verbose=0)
    seen = []
    update = agent.learner.update

    def recording_update(batch, **kwargs):
        seen.append((kwargs["clip"], kwargs["learning_rate"]))
        return update(batch, **kwargs)

    agent.learner.update = recording_update
    agent.learn()
    lrmults = [1.0, 0.75, 0.5, 0.25]  # 1 − 64k/256 for k = 0..3 ([SB] exact counter)
    assert [round(lr / 1e-3, 6) for _, lr in seen] == lrmults
    assert [round(c, 6) for c, _ in seen] == [round(0.2 * (m if anneal else 1.0), 6) for m in lrmults]


class ConstantEnv(gym.Env):
    """Observation always (2, 2), reward always 1, never done: raw values are known exactly."""

    observation_space = gym.spaces.Box(-10.0, 10.0, (2,), np.float32)
    action_space = gym.spaces.Box(-1.0, 1.0, (1,), np.float32)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        return np.full(2, 2.0, np.float32), {}

    def step(self, action):
        return np.full(2, 2.0, np.float32), 1.0, False, False, {}


@pytest.mark.parametrize("obs_norm, reward_norm", [("none", False), ("env", False), ("none", True), ("env", True),
                                                   ("policy", False)])
def test_obs_and_reward_normalisation_switches(obs_norm, reward_norm):
    sem = get_preset("sb-ppo2").replace(obs_norm=obs_norm, reward_norm=reward_norm)
    agent = tfppo.PPO2("tests.test_switches:ConstantEnv", semantics=sem, n_steps=32, nminibatches=1,
                       total_timesteps=32, verbose=0)
    rollout = agent.make_runner().run()
    assert (agent.normalizer is not None) == (obs_norm == "env" or reward_norm)
    assert agent.model.policy_obs_norm == (obs_norm == "policy")
    if obs_norm == "env":  # VecNormalize: mean → 2, var → 0, so stored observations are ≈ 0, not the raw 2
        assert np.abs(rollout.obs[1:]).max() < 0.1
    else:  # raw observations stored; a policy-side normaliser works inside the model
        np.testing.assert_array_equal(rollout.obs, 2.0)
    if reward_norm:
        # return-based scaling: r / sqrt(var(ret) + 1e-8), recomputed here step by step (γ = 0.99)
        from tfppo.util.running_stats import RunningMeanStd

        rms, ret, expected = RunningMeanStd(()), 0.0, []
        rms.update(np.zeros(1))  # SB reset: one zero return per env
        for _ in range(32):
            ret = ret * 0.99 + 1.0
            rms.update(np.array([ret]))
            expected.append(np.clip(1.0 / np.sqrt(rms.var + 1e-8), -10, 10))
        np.testing.assert_allclose(rollout.rewards[:, 0], expected, rtol=1e-5)
    else:
        np.testing.assert_array_equal(rollout.rewards, 1.0)


@pytest.mark.parametrize("preset, counted", [("baselines-ppo2-mujoco", 1e-4 + 1), ("sb-ppo2", 1e-4)])
def test_vecnorm_reset_switch_reaches_the_runner(preset, counted):
    # spec §5.4: [B]'s reset counts the first observation in obs_rms, [SB]'s does not
    sem = get_preset(preset).replace(obs_norm="env", reward_norm=True)
    agent = tfppo.PPO2("tests.test_switches:ConstantEnv", preset=preset, semantics=sem, n_steps=32,
                       nminibatches=1, total_timesteps=32, verbose=0)
    agent.make_runner()  # resets the envs once, steps nothing
    assert agent.normalizer.reset_mode == ("baselines" if preset.startswith("baselines") else "sb")
    assert agent.normalizer.obs_rms.count == pytest.approx(counted)


def test_value_clip_under_ppo1_uses_the_policy_clip_range():
    # A PPO2 preset run by the PPO1 trainer clips the value with ε_v = ε (row 7), never with 0.
    agent = tfppo.PPO1("CartPole-v1", preset="sb-ppo2", timesteps_per_actorbatch=64, optim_batchsize=32,
                       schedule="constant", max_iters=1, clip_param=0.25, verbose=0)
    assert agent.clip_ranges(0.25, lr_multiplier=1.0, frac=1.0) == (0.25, 0.25)


def test_clip_anneal_under_ppo2_follows_the_learning_rate_multiplier():
    sem = get_preset("sb-ppo2").replace(clip_anneal_with_lr=True)
    agent = tfppo.PPO2("CartPole-v1", semantics=sem, learning_rate="lin_1e-3", cliprange=0.2, n_steps=16,
                       nminibatches=1, total_timesteps=16, verbose=0)
    lr_mult = agent.config.learning_rate(0.25) / agent.config.learning_rate(1.0)  # = 0.25
    assert agent.clip_ranges(0.2, lr_mult, 0.25) == pytest.approx((0.05, 0.05))


def test_policy_obs_norm_statistics_update_under_ppo2():
    sem = get_preset("sb-ppo2").replace(obs_norm="policy")
    agent = tfppo.PPO2("tests.test_switches:ConstantEnv", semantics=sem, n_steps=32, nminibatches=1,
                       total_timesteps=64, verbose=0).learn()
    # prior (mean 0, var 1, count 1e-2) merged with 64 observations equal to 2: mean = 128/64.01
    np.testing.assert_allclose(agent.model.obs_mean.numpy(), 2 * 64 / 64.01, rtol=1e-5)


@pytest.mark.parametrize("obs_norm", ["env", "policy"])
def test_obs_norm_needs_a_float_box_observation_space(obs_norm):
    sem = get_preset("sb-ppo2").replace(obs_norm=obs_norm)
    with pytest.raises(tfppo.ConfigError, match="obs_norm"):
        tfppo.PPO2("FrozenLake-v1", semantics=sem, n_steps=16, nminibatches=1, total_timesteps=16, verbose=0)


def test_separate_value_clip_needs_cliprange_vf():
    with pytest.raises(tfppo.ConfigError, match="cliprange_vf"):
        tfppo.PPO2("CartPole-v1", semantics={"value_clip": "separate"}, n_steps=16, nminibatches=1,
                   total_timesteps=16, verbose=0)
