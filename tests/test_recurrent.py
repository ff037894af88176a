"""Recurrent PPO2 (issue 27): Baselines' masked LSTM / LN-LSTM, its NumPy acting twin, env-wise minibatches.

The reference cell below is written out from [B] a2c/utils.py's formulas (gates i, f, o, u of
``x·wx + h·wh + b``; for lnlstm a layer norm with ε = 1e-5 on each product and on c; the state
``[c, h]`` multiplied by 1 − mask before each step), independently of `tfppo.core.recurrent`.
"""
from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf
from gymnasium import spaces

import tfppo
from tfppo.cli import ppo1 as ppo1_cli
from tfppo.cli import ppo2 as ppo2_cli
from tfppo.config.hyperparameters import NetworkConfig, PPO2Config
from tfppo.core.learner import MinibatchPlan
from tfppo.core.recurrent import NumpyRecurrentActor, RecurrentActorCritic, RecurrentState
from tfppo.util.errors import ConfigError

OBS = spaces.Box(-np.inf, np.inf, shape=(3,), dtype=np.float32)
NLSTM = 4


def make_model(layer_norm: bool, action_space=spaces.Discrete(2)) -> RecurrentActorCritic:
    """A small model with every weight random (LN gains and biases too, so none is trivially 1 or 0)."""
    model = RecurrentActorCritic(OBS, action_space, network=NetworkConfig((5,)), nlstm=NLSTM,
                                 layer_norm=layer_norm, seed=3)
    rng = np.random.default_rng(7)
    model.set_weights([rng.normal(0.0, 0.7, size=w.shape).astype(np.float32) for w in model.get_weights()])
    return model


def reference_unroll(model: RecurrentActorCritic, obs: np.ndarray, masks: np.ndarray, state: np.ndarray):
    """Baselines' cell by hand over one env's sequence: (logits per step, value per step, final state)."""
    sig = lambda x: 1.0 / (1.0 + np.exp(-x))
    ln = lambda x, g, b: (x - x.mean()) / np.sqrt(x.var() + 1e-5) * g + b
    w = {v.name: v.numpy().astype(np.float64) for v in model.cell.weights}
    (k0, b0), = [(layer.kernel.numpy(), layer.bias.numpy()) for layer in model.trunk]
    n = NLSTM
    c, h = state[:n].astype(np.float64), state[n:].astype(np.float64)
    logits, values = [], []
    for x, m in zip(obs, masks):
        c, h = c * (1 - m), h * (1 - m)
        x = np.tanh(x @ k0 + b0)
        if model.layer_norm:
            z = ln(x @ w["wx"], w["gx"], w["bx"]) + ln(h @ w["wh"], w["gh"], w["bh"]) + w["b"]
        else:
            z = x @ w["wx"] + h @ w["wh"] + w["b"]
        i, f, o, u = sig(z[:n]), sig(z[n:2 * n]), sig(z[2 * n:3 * n]), np.tanh(z[3 * n:])
        c = f * c + i * u
        h = o * np.tanh(ln(c, w["gc"], w["bc"]) if model.layer_norm else c)
        logits.append(h @ model.pi_head.kernel.numpy() + model.pi_head.bias.numpy())
        values.append(float(h @ model.vf_head.kernel.numpy()[:, 0] + model.vf_head.bias.numpy()[0]))
    return np.array(logits), np.array(values), np.concatenate([c, h])


@pytest.mark.parametrize("layer_norm", [False, True], ids=["lstm", "lnlstm"])
def test_keras_and_numpy_steps_match_the_reference_cell(layer_norm):
    """2 envs × 5 steps, env 1 starting an episode at t=2, from non-zero stored states: the Keras unroll
    (the learner's) and the NumPy step (acting's) both equal the hand-written cell to 1e-5."""
    model = make_model(layer_norm)
    rng = np.random.default_rng(0)
    T = 5
    obs = rng.normal(size=(2, T, 3)).astype(np.float32)
    masks = np.zeros((2, T), np.float32)
    masks[1, 2] = 1.0
    states = rng.normal(size=(2, 2 * NLSTM)).astype(np.float32)
    params, values = model(obs.reshape(2 * T, 3), masks.reshape(-1), states)
    actor = NumpyRecurrentActor(model)
    state = states.astype(np.float64)
    for e in range(2):
        ref_logits, ref_values, _ = reference_unroll(model, obs[e], masks[e], states[e])
        np.testing.assert_allclose(params.numpy()[e * T:(e + 1) * T], ref_logits, atol=1e-5)
        np.testing.assert_allclose(values.numpy()[e * T:(e + 1) * T], ref_values, atol=1e-5)
    for t in range(T):  # acting: all envs at once, one step at a time
        step_params, step_values, state = actor.step(obs[:, t], masks[:, t], state)
        np.testing.assert_allclose(step_params, params.numpy()[t::T], atol=1e-5)
        np.testing.assert_allclose(step_values, values.numpy()[t::T], atol=1e-5)


def test_gaussian_head_appends_the_state_independent_log_std():
    model = make_model(False, spaces.Box(-1, 1, shape=(2,), dtype=np.float32))
    params, _ = model(np.ones((3, 3), np.float32), np.zeros(3), model.initial_state(1))
    np.testing.assert_allclose(params.numpy()[:, 2:], np.broadcast_to(model.log_std.numpy(), (3, 2)))


def test_mask_resets_the_state_exactly_where_an_episode_starts():
    """From a non-zero state, with mask 1 at t=2: steps 2.. equal a fresh run of obs[2:] from zero state,
    and steps 0, 1 do depend on the stored state (so the equality is the reset, not an insensitive cell)."""
    model = make_model(False)
    rng = np.random.default_rng(1)
    obs = rng.normal(size=(4, 3)).astype(np.float32)
    state = rng.normal(size=(1, 2 * NLSTM)).astype(np.float32)
    masked, _ = model(obs, np.array([0, 0, 1, 0], np.float32), state)
    fresh, _ = model(obs[2:], np.zeros(2, np.float32), model.initial_state(1))
    from_zero, _ = model(obs, np.zeros(4, np.float32), model.initial_state(1))
    np.testing.assert_allclose(masked.numpy()[2:], fresh.numpy(), atol=1e-6)
    assert np.abs(masked.numpy()[:2] - from_zero.numpy()[:2]).max(axis=1).min() > 1e-2


def test_recurrent_state_reads_without_moving_and_resets_rows_that_ended():
    """`forward` is [B] ``model.value`` (the state stays); `advance` commits; a done row restarts from zero."""
    model = make_model(False)
    carrier = RecurrentState(NumpyRecurrentActor(model), 2)
    obs = np.ones((2, 3), np.float32)
    carrier.begin_step(np.zeros(2, bool))
    first = carrier.forward(obs)
    np.testing.assert_array_equal(carrier.forward(obs)[0], first[0])  # read twice, same answer
    carrier.advance()
    moved = carrier.state.copy()
    assert np.abs(moved).min() > 0
    carrier.begin_step(np.array([True, False]))
    after_done = carrier.forward(obs)
    np.testing.assert_allclose(after_done[0][0], first[0][0], atol=1e-7)  # env 0: zero state again
    assert np.abs(after_done[0][1] - first[0][1]).max() > 1e-4       # env 1: remembers


def test_env_wise_plan_takes_whole_env_sequences():
    """4 envs × 3 steps, 2 minibatches: each minibatch is 2 envs' rows e·3, e·3+1, e·3+2 in permuted order."""
    plan = MinibatchPlan.by_env(n_envs=4, n_steps=3, nminibatches=2, n_epochs=2)
    assert (plan.minibatch_size, plan.n_minibatches, plan.sequence_length) == (6, 2, 3)
    shuffles = plan.shuffles(np.random.default_rng(0), 2)
    a, b, c, d = np.random.default_rng(0).permutation(4)  # the first pass's env order
    np.testing.assert_array_equal(shuffles[0], [[3 * a, 3 * a + 1, 3 * a + 2, 3 * b, 3 * b + 1, 3 * b + 2],
                                                [3 * c, 3 * c + 1, 3 * c + 2, 3 * d, 3 * d + 1, 3 * d + 2]])
    assert sorted(shuffles[1].ravel()) == list(range(12))
    with pytest.raises(ConfigError, match="--nminibatches 3 must divide --num_envs 4"):
        MinibatchPlan.by_env(4, 3, 3, 1)


def test_config_refusals_are_one_line():
    with pytest.raises(ConfigError, match=r"--nminibatches 4 must divide --num_envs 2 with --policy lstm"):
        PPO2Config.create("CartPole-v1", "sb-ppo2", policy="lstm", num_envs=2, n_steps=8)
    with pytest.raises(ConfigError, match=r"--policy 'gru' is invalid; allowed: mlp, lstm, lnlstm"):
        PPO2Config.create("CartPole-v1", "sb-ppo2", policy="gru")
    assert PPO2Config.create("CartPole-v1", "sb-ppo2", policy="MlpLnLstmPolicy", num_envs=4).policy == "lnlstm"
    with pytest.raises(ConfigError, match="PPO1 .pposgd_simple. has no recurrent policy"):
        ppo1_cli.build_config(ppo1_cli.parse_args(["--policy", "lstm"]))
    with pytest.raises(ConfigError, match="PPO1 .pposgd_simple. has no recurrent policy"):
        tfppo.PPO1("CartPole-v1", policy="lstm")
    config, _ = ppo2_cli.build_config(ppo2_cli.parse_args(
        ["--policy", "lnlstm", "--nlstm", "16", "--num_envs", "2", "--nminibatches", "2", "--no_zoo"]))
    assert (config.policy, config.nlstm) == ("lnlstm", 16)


def test_recurrent_ppo2_trains_replays_acting_and_checkpoints(tmp_path):
    """A tiny CartPole run: the learner's unroll from the stored states with the masks gives the
    neglogp and values acting recorded (segments 2+ start from a non-zero state, episodes end inside
    them); updates give finite losses; a saved agent loads and acts the same from zero state."""
    agent = tfppo.PPO2("CartPole-v1", policy="lstm", nlstm=8, num_envs=4, n_steps=16, nminibatches=2,
                       noptepochs=2, verbose=0, seed=2, xla=False)
    agent.learn(4 * 16 * 3)
    assert agent.n_updates == 3
    rollout = agent.runner.run()
    batch = rollout.to_batch(agent.config.gamma, agent.config.lam)
    assert np.abs(batch.states).max() > 0 and batch.masks[1:].max() == 1.0
    params, values = agent.policy(batch.obs, batch.masks, batch.states)
    np.testing.assert_allclose(values.numpy(), batch.values, atol=1e-5)
    np.testing.assert_allclose(agent.policy.dist.neglogp(params, batch.actions).numpy(), batch.neglogp, atol=1e-5)
    result = agent.learner.update(batch, learning_rate=1e-3, clip=0.2, clip_vf=0.2, rng=np.random.default_rng(0))
    assert result.n_gradient_steps == 4 and all(np.isfinite(v) for v in result.train.values())
    path = agent.save(tmp_path / "ckpt")
    loaded = tfppo.load(path)
    assert loaded.config.policy == "lstm" and loaded.predict_state is None
    obs = np.stack([np.linspace(-0.1, 0.1, 4, dtype=np.float32)] * 3)
    agent.reset_state()
    for o in obs:  # the state is carried call to call: three steps of the same obs from zero state
        assert agent.predict(o) == loaded.predict(o)
    assert agent.predict_state.state.any()


def test_tower_switches_are_idle_under_the_recurrent_policy():
    """A suite must not spend runs ablating switches the recurrent policy never reads."""
    from tfppo.config.semantics import get_preset
    from tfppo.core.switch_scope import idle_switches
    cartpole = spaces.Box(-np.inf, np.inf, shape=(4,), dtype=np.float32)
    tower = {"shared_towers", "matching_fc", "init"}
    lstm = PPO2Config.create("CartPole-v1", "sb-ppo2", policy="lstm", num_envs=4)
    mlp = PPO2Config.create("CartPole-v1", "sb-ppo2", num_envs=4)
    assert tower <= idle_switches(get_preset("sb-ppo2"), cartpole, spaces.Discrete(2), lstm)
    assert not {"shared_towers", "init"} & idle_switches(get_preset("sb-ppo2"), cartpole, spaces.Discrete(2), mlp)
