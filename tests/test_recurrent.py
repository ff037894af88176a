"""Recurrent PPO2 (issue 27): Baselines' masked LSTM / LN-LSTM, its NumPy acting twin, env-wise minibatches.

The reference cell below is written out from [B] a2c/utils.py's formulas (gates i, f, o, u of
``x·wx + h·wh + b``; for lnlstm a layer norm with ε = 1e-5 on each product and on c; the state
``[c, h]`` multiplied by 1 − mask before each step), independently of `tfppo.core.recurrent`.
"""
from __future__ import annotations

import json
import subprocess
import sys
import textwrap

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
from tests.test_acting import small_cnn_features
from tests.test_export import BLOCK_TFPPO, PENDULUM_BOUND, TIMEOUT, litert_interpreter, pendulum_obs

OBS = spaces.Box(-np.inf, np.inf, shape=(3,), dtype=np.float32)
NLSTM = 4


def make_model(layer_norm: bool, action_space=spaces.Discrete(2)) -> RecurrentActorCritic:
    """A small model with every weight random (LN gains and biases too, so none is trivially 1 or 0)."""
    model = RecurrentActorCritic(OBS, action_space, network=NetworkConfig((5,)), nlstm=NLSTM,
                                 layer_norm=layer_norm, seed=3)
    rng = np.random.default_rng(7)
    model.set_weights([rng.normal(0.0, 0.7, size=w.shape).astype(np.float32) for w in model.get_weights()])
    return model


def mlp_features(model: RecurrentActorCritic, x: np.ndarray) -> np.ndarray:
    """The one tanh layer of `make_model`'s trunk."""
    (kernel, bias), = [(layer.kernel.numpy(), layer.bias.numpy()) for layer in model.trunk]
    return np.tanh(x @ kernel + bias)


def reference_unroll(model: RecurrentActorCritic, obs: np.ndarray, masks: np.ndarray, state: np.ndarray,
                     features=mlp_features):
    """Baselines' cell by hand over one env's sequence: (logits per step, value per step, final state)."""
    sig = lambda x: 1.0 / (1.0 + np.exp(-x))
    ln = lambda x, g, b: (x - x.mean()) / np.sqrt(x.var() + 1e-5) * g + b
    w = {v.name: v.numpy().astype(np.float64) for v in model.cell.weights}
    n = NLSTM
    c, h = state[:n].astype(np.float64), state[n:].astype(np.float64)
    logits, values = [], []
    for x, m in zip(obs, masks):
        c, h = c * (1 - m), h * (1 - m)
        x = features(model, x)
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


def test_cnn_trunk_feeds_the_lstm_and_both_acting_steps():
    """[B] cnn_lstm / [SB] CnnLstmPolicy: a bool image goes through MinAtar's CNN, then the masked cell. The
    Keras unroll and both acting steps (NumPy, which MinAtar's small CNN acts with, and the compiled model
    step, which the Nature CNN acts with) equal the hand-written conv and cell to 1e-5, with env 1 starting
    an episode at t=1; the SB class name reaches the same policy."""
    from tfppo.config.hyperparameters import resolve_policy
    from tfppo.core.recurrent import CompiledRecurrentActor, make_recurrent_actor

    assert resolve_policy("CnnLstmPolicy") == resolve_policy("cnn_lstm") == "lstm"
    image = spaces.Box(0, 1, shape=(5, 5, 2), dtype=bool)
    model = RecurrentActorCritic(image, spaces.Discrete(3), network=NetworkConfig(), nlstm=NLSTM,
                                 layer_norm=False, seed=2)
    rng = np.random.default_rng(5)
    model.set_weights([rng.normal(0.0, 0.3, size=w.shape).astype(np.float32) for w in model.get_weights()])
    T = 3
    obs = rng.random((2, T, 5, 5, 2)) < 0.4
    masks = np.zeros((2, T), np.float32)
    masks[1, 1] = 1.0
    states = rng.normal(size=(2, 2 * NLSTM)).astype(np.float32)
    params, values = model(obs.reshape(2 * T, 5, 5, 2), masks.reshape(-1), states)
    for e in range(2):
        ref_logits, ref_values, _ = reference_unroll(model, obs[e], masks[e], states[e], small_cnn_features)
        np.testing.assert_allclose(params.numpy()[e * T:(e + 1) * T], ref_logits, atol=1e-5)
        np.testing.assert_allclose(values.numpy()[e * T:(e + 1) * T], ref_values, atol=1e-5)
    assert isinstance(make_recurrent_actor(model), NumpyRecurrentActor)
    for actor in (make_recurrent_actor(model), CompiledRecurrentActor(model)):
        state = states.astype(np.float64)
        for t in range(T):
            step_params, step_values, state = actor.step(obs[:, t], masks[:, t], state)
            np.testing.assert_allclose(step_params, params.numpy()[t::T], atol=1e-5, err_msg=type(actor).__name__)
            np.testing.assert_allclose(step_values, values.numpy()[t::T], atol=1e-5, err_msg=type(actor).__name__)
    nature = RecurrentActorCritic(spaces.Box(0, 255, shape=(84, 84, 4), dtype=np.uint8), spaces.Discrete(3),
                                  network=NetworkConfig(), nlstm=NLSTM, layer_norm=False, seed=2)
    assert isinstance(make_recurrent_actor(nature), CompiledRecurrentActor)


@pytest.mark.parametrize("space", [spaces.Discrete(4), spaces.Box(0, 255, shape=(4,), dtype=np.uint8)],
                         ids=["discrete", "flat-uint8"])
def test_observations_neither_numeric_nor_images_are_refused_in_one_line(space):
    from tfppo.core.recurrent import check_recurrent_fit

    with pytest.raises(ConfigError, match=r"numeric Box or an image .* use --policy mlp$"):
        check_recurrent_fit(space, tfppo.Semantics())


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


# -- export (the SavedModel takes and returns the state) ------------------------------------------------
RECURRENT_LOADER = BLOCK_TFPPO + textwrap.dedent('''
    export, inputs, out = sys.argv[1:]
    data = np.load(inputs)
    serve = tf.saved_model.load(export).signatures["serving_default"]
    step = lambda obs, starts, state: serve(observations=tf.constant(obs), episode_starts=tf.constant(starts),
                                            state=tf.constant(state))
    state = np.zeros(data["state_shape"], np.float32)
    actions, states = [], []
    for obs, starts in zip(data["obs"], data["starts"]):
        result = step(obs, starts, state)
        state = result["state"].numpy()
        actions.append(result["actions"].numpy())
        states.append(state)
    ones, zeros = np.ones(len(data["noise"]), np.float32), np.zeros(len(data["noise"]), np.float32)
    outputs = lambda result: {key: result[key].numpy() for key in ("actions", "state")}
    reset = outputs(step(data["obs"][0], ones, data["noise"]))
    fresh = outputs(step(data["obs"][0], zeros, np.zeros_like(data["noise"])))
    kept = step(data["obs"][0], zeros, data["noise"])["state"].numpy()
    np.savez(out, actions=np.stack(actions), states=np.stack(states), reset_actions=reset["actions"],
             reset_state=reset["state"], fresh_actions=fresh["actions"], fresh_state=fresh["state"], kept_state=kept)
    assert not any(name.split(".")[0] == "tfppo" for name in sys.modules)
''')
T_EXPORT, E_EXPORT = 6, 2


@pytest.fixture(scope="module")
def lstm_pendulum():
    """One update of an lstm policy on Pendulum under baselines-ppo2-mujoco (VecNormalize on observations,
    actions clipped to [-2, 2]); the head is made wide so that some mean actions leave the bounds. ``obs`` is a
    short sequence of 2 envs with env 0 starting an episode at t=3 (``starts``)."""
    agent = tfppo.PPO2("Pendulum-v1", preset="baselines-ppo2-mujoco", policy="lstm", nlstm=NLSTM, num_envs=2,
                       n_steps=16, nminibatches=2, noptepochs=1, seed=0, verbose=0, xla=False).learn(32)
    head = agent.policy.pi_head
    head.kernel.assign(np.random.default_rng(1).normal(0.0, 20.0, size=head.kernel.shape).astype(np.float32))
    agent.actor.sync()
    obs = pendulum_obs(T_EXPORT * E_EXPORT, seed=2).reshape(T_EXPORT, E_EXPORT, 3)
    starts = np.zeros((T_EXPORT, E_EXPORT), np.float32)
    starts[3, 0] = 1.0
    yield agent, obs, starts
    agent.close()


def predicted_sequence(agent, obs: np.ndarray, starts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``agent.predict`` over the sequence from zero state, clipped to Pendulum's bounds by hand, and the
    state it carries after each step."""
    agent.reset_state()
    actions, states = [], []
    for o, s in zip(obs, starts):
        actions.append(agent.predict(o, episode_start=s))
        states.append(agent.predict_state.state.copy())
    return np.stack(actions), np.stack(states)


def test_a_recurrent_export_reproduces_predict_without_tfppo(lstm_pendulum, tmp_path):
    """In a process that cannot import tfppo: the SavedModel's actions and states over the sequence equal
    ``predict``'s (clipped) to 1e-5, and episode_starts=1 from a random state gives what a zero state gives."""
    agent, obs, starts = lstm_pendulum
    actions, states = predicted_sequence(agent, obs, starts)
    assert 0 < (np.abs(actions) > PENDULUM_BOUND).sum() < actions.size  # the clip is exercised both ways
    noise = np.random.default_rng(3).normal(size=(E_EXPORT, 2 * NLSTM)).astype(np.float32)
    np.savez(tmp_path / "inputs.npz", obs=obs, starts=starts, state_shape=np.array([E_EXPORT, 2 * NLSTM]),
             noise=noise)
    export = agent.export(tmp_path / "policy")
    meta = json.loads((export / "tfppo-export.json").read_text())
    assert (meta["recurrent"], meta["state_size"], meta["policy"]) == (True, 2 * NLSTM, "lstm")
    (tmp_path / "loader.py").write_text(RECURRENT_LOADER)
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    proc = subprocess.run([sys.executable, "-I", str(tmp_path / "loader.py"), str(export),
                           str(tmp_path / "inputs.npz"), str(tmp_path / "out.npz")],
                          cwd=outside, capture_output=True, text=True, timeout=TIMEOUT)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = np.load(tmp_path / "out.npz")
    np.testing.assert_allclose(out["actions"], np.clip(actions, -PENDULUM_BOUND, PENDULUM_BOUND), rtol=0, atol=1e-5)
    np.testing.assert_allclose(out["states"], states, rtol=0, atol=1e-5)
    np.testing.assert_array_equal(out["reset_state"], out["fresh_state"])
    np.testing.assert_array_equal(out["reset_actions"], out["fresh_actions"])
    assert np.abs(out["kept_state"] - out["fresh_state"]).max() > 1e-3  # the state matters when not reset


def test_a_recurrent_export_carries_its_state_through_episodes(lstm_pendulum, tmp_path, capsys):
    """ExportedPolicy.predict carries the state as SB3's RecurrentPPO (state in, state out; a single
    observation too); LiteRT holds the same step; ``tfppo-evaluate`` on the export scores the episodes of
    the agent itself (whose evaluation resets the state at every reset); ONNX is refused in one line."""
    from tfppo.cli.evaluate import main
    from tfppo.training.evaluation import evaluate
    from tfppo.training.export import ExportedPolicy

    agent, obs, starts = lstm_pendulum
    actions, states = predicted_sequence(agent, obs, starts)
    policy = ExportedPolicy(agent.export(tmp_path / "policy"))
    state = None
    for t in range(T_EXPORT):
        got, state = policy.predict(obs[t], state=state, episode_start=starts[t].astype(bool))
        np.testing.assert_allclose(got, np.clip(actions[t], -PENDULUM_BOUND, PENDULUM_BOUND), atol=1e-5)
        np.testing.assert_allclose(state, states[t], atol=1e-5)
    single, single_state = policy.predict(obs[0, 1])  # zero state, no batch axis in or out
    assert single.shape == (1,) and single_state.shape == (2 * NLSTM,)
    np.testing.assert_allclose(single_state, states[0, 1], atol=1e-5)
    sampled = [policy.predict(obs[0], False, seed=4) for _ in range(2)]
    np.testing.assert_array_equal(sampled[0][0], sampled[1][0])
    np.testing.assert_allclose(sampled[0][1], states[0], atol=1e-5)  # sampling moves the state as the mode does

    runner = litert_interpreter()(model_path=str(agent.export(tmp_path / "policy.tflite", format="litert"))
                                  ).get_signature_runner("serving_default")
    lite = runner(observations=obs[0], episode_starts=starts[0], state=np.zeros((E_EXPORT, 2 * NLSTM), np.float32))
    np.testing.assert_allclose(lite["state"], states[0], atol=1e-5)
    np.testing.assert_allclose(lite["actions"], np.clip(actions[0], -PENDULUM_BOUND, PENDULUM_BOUND), atol=1e-5)
    with pytest.raises(ConfigError, match=r"^export format onnx cannot hold a recurrent policy .*; allowed: "
                                          r"saved_model, litert$"):
        agent.export(tmp_path / "policy.onnx", format="onnx")

    capsys.readouterr()
    assert main(["--load_path", str(tmp_path / "policy"), "--episodes", "2", "--seed", "5"]) == 0
    mean = float(capsys.readouterr().out.split(": ")[1].split(" ± ")[0])
    assert mean == pytest.approx(np.mean(evaluate(agent, 2, seed=5)), abs=0.011)


def test_a_resumed_recurrent_run_repeats_the_uninterrupted_one(tmp_path):
    """3 updates with a checkpoint after each; the run loaded from the first checkpoint and continued logs
    the same rows 2 and 3 (losses, returns, counters) as the uninterrupted run, and ends on the same
    weights. Both start the LSTM state from zero at the checkpoint boundary, where both re-seed the envs
    (`tfppo.core.rollout.Runner.restart`): checkpoints hold no LSTM state, as they hold no env state."""
    import csv

    from tfppo.io.log_keys import WALL_CLOCK_KEYS
    from tfppo.training.run_control import checkpoint_name

    kwargs = dict(policy="lstm", nlstm=NLSTM, num_envs=2, n_steps=16, nminibatches=2, noptepochs=2, seed=1,
                  verbose=0, xla=False)
    schedule = dict(save_freq=32, keep_checkpoints=10)
    reference = tfppo.PPO2("CartPole-v1", log_dir=tmp_path / "ref", **kwargs)
    reference.learn(3 * 32, save_path=tmp_path / "ref" / "ckpt", **schedule)
    reference.close()
    resumed = tfppo.load(tmp_path / "ref" / "ckpt" / checkpoint_name(32), log_dir=tmp_path / "run", verbose=0,
                         xla=False)  # as the reference: XLA's float rounding would differ
    resumed.learn(save_path=tmp_path / "run" / "ckpt", **schedule)
    resumed.close()
    rows = lambda run: [{k: v for k, v in row.items() if k not in WALL_CLOCK_KEYS}
                        for row in csv.DictReader(open(tmp_path / run / "progress.csv", newline=""))]
    expected, got = rows("ref"), rows("run")
    assert len(expected) == 3 and got == expected[1:]
    assert any(float(v) != 0.0 for k, v in got[-1].items() if "loss" in k)  # the rows hold real losses
    for a, b in zip(reference.model.get_weights(), resumed.model.get_weights()):
        np.testing.assert_array_equal(a, b)


def reference_forward(ref: RecurrentActorCritic, obs, masks, states, steps: int):
    """Baselines' cell written out in TF ops on ``ref``'s variables (not its ``call``), env by env and step by
    step, so the gradient flows through an unroll independent of the model's scan."""
    n = NLSTM
    obs, masks, states = (tf.constant(a, tf.float32) for a in (obs, masks, states))  # TF ops, so the tape sees them
    (kernel, bias), = [(layer.kernel, layer.bias) for layer in ref.trunk]
    wx, wh, b = ref.cell.wx, ref.cell.wh, ref.cell.b
    logits, values = [], []
    for e in range(len(states)):
        c, h = states[e:e + 1, :n], states[e:e + 1, n:]
        for t in range(steps):
            row = e * steps + t
            keep = 1.0 - masks[row]
            c, h = c * keep, h * keep
            x = tf.tanh(obs[row:row + 1] @ kernel + bias)
            z = x @ wx + h @ wh + b
            i, f, o, u = tf.sigmoid(z[:, :n]), tf.sigmoid(z[:, n:2 * n]), tf.sigmoid(z[:, 2 * n:3 * n]), tf.tanh(z[:, 3 * n:])
            c = f * c + i * u
            h = o * tf.tanh(c)
            logits.append(h @ ref.pi_head.kernel + ref.pi_head.bias)
            values.append((h @ ref.vf_head.kernel + ref.vf_head.bias)[:, 0])
    return tf.concat(logits, 0), tf.concat(values, 0)


def test_recurrent_update_equals_a_hand_written_ppo2_step():
    """4 envs × 3 steps in 2 env-wise minibatches, one epoch: the learner's two Adam steps equal PPO2's loss
    written out (`tests.test_learner.ref_terms`: clipped surrogate, clipped value loss ½·max, entropy 0.01;
    advantages R − V normalised per minibatch) through `reference_forward` from each minibatch's stored states, with the gradients clipped to
    global norm 0.5 and Keras' Adam (ε 1e-5), to 1e-5. Env 2 starts an episode at t=1 inside its sequence."""
    import keras

    from tfppo.core.learner import Batch, Learner
    from tests.test_learner import np_neglogp, np_normalize, ref_terms

    envs, steps, lr, clip, ent_coef = 4, 3, 1e-2, 0.2, 0.01
    model = make_model(False)
    ref = make_model(False)
    ref.set_weights(model.get_weights())
    rng = np.random.default_rng(11)
    obs = rng.normal(size=(envs * steps, 3)).astype(np.float32)
    actions = rng.integers(0, 2, size=envs * steps).astype(np.int64)
    masks = np.zeros(envs * steps, np.float32)
    masks[2 * steps + 1] = 1.0
    states = rng.normal(0.0, 0.5, size=(envs, 2 * NLSTM)).astype(np.float32)
    logits, v = (x.numpy() for x in model(obs, masks, states))
    values = (v + rng.uniform(-0.3, 0.3, envs * steps)).astype(np.float32)
    neglogp = (np_neglogp(logits, actions) + rng.uniform(-0.3, 0.3, envs * steps)).astype(np.float32)
    returns = (values + rng.normal(size=envs * steps)).astype(np.float32)
    batch = Batch(obs=obs, actions=actions, advantages=returns - values, returns=returns, values=values,
                  neglogp=neglogp, masks=masks, states=states)
    plan = MinibatchPlan.by_env(envs, steps, nminibatches=2, n_epochs=1)
    learner = Learner(model, tfppo.Semantics(adv_norm="minibatch", adv_norm_eps=1e-8), plan, ent_coef=ent_coef)
    result = learner.update(batch, learning_rate=lr, clip=clip, clip_vf=clip, rng=np.random.default_rng(7))
    assert result.n_gradient_steps == 2

    opt = keras.optimizers.Adam(learning_rate=lr, beta_1=0.9, beta_2=0.999, epsilon=1e-5)
    for idx in plan.shuffles(np.random.default_rng(7), 1)[0]:
        adv = np_normalize(returns[idx] - values[idx], 1e-8)
        forward = lambda rows: reference_forward(ref, rows, masks[idx], states[idx[::steps] // steps], steps)
        with tf.GradientTape() as tape:  # spec §6's PPO2 terms, as the MLP learner's reference writes them
            pg, vf, entropy, _ = ref_terms(forward, obs[idx], actions[idx], adv, returns[idx], values[idx],
                                           neglogp[idx], logits[idx], clip=clip, clip_vf=clip, vf_kind="clipped")
            loss = pg - ent_coef * entropy + 0.5 * vf
        grads, _ = tf.clip_by_global_norm(tape.gradient(loss, ref.trainable_variables), 0.5)
        opt.apply_gradients(zip(grads, ref.trainable_variables))
    moved = max(float(np.abs(a - b).max()) for a, b in zip(model.get_weights(), make_model(False).get_weights()))
    assert moved > 1e-3
    for got, want in zip(model.trainable_variables, ref.trainable_variables):
        np.testing.assert_allclose(got.numpy(), want.numpy(), atol=1e-5, rtol=0)
