"""The acting path (NumPy and compiled TF) equals the Keras model it stands in for.

The rollout never calls the Keras model: it acts through `NumpyActor` (MLPs and
MinAtar's small CNN) or `CompiledActor` (the Nature CNN). These tests hold both to ``model(obs)`` for every
action-space kind, both tower layouts and both activations, and check that a
weight change reaches them (NumPy only after ``sync()``).
"""
from __future__ import annotations

import itertools

import gymnasium as gym
import numpy as np
import pytest
import tensorflow as tf

from tfppo.core.acting import CompiledActor, NumpyActor, PerRowGenerators, act, make_actor
from tfppo.config.hyperparameters import NetworkConfig
from tfppo.core.policy import ActorCritic

OBS = gym.spaces.Box(-np.inf, np.inf, (5,), np.float32)
ACTION_SPACES = {
    "discrete": gym.spaces.Discrete(4),
    "box": gym.spaces.Box(-1.0, 1.0, (3,), np.float32),
    "multidiscrete": gym.spaces.MultiDiscrete([3, 2, 4]),
    "multibinary": gym.spaces.MultiBinary(3),
}
CASES = list(itertools.product(ACTION_SPACES, [False, True], ["tanh", "relu"]))
CASE_IDS = [f"{a}-{'shared' if s else 'separate'}-{act_}" for a, s, act_ in CASES]
PARAM_SIZE = {"discrete": 4, "box": 6, "multidiscrete": 9, "multibinary": 3}


def _model(action: str, shared: bool, activation: str, seed: int = 0, obs_space=OBS, **kw) -> ActorCritic:
    model = ActorCritic(obs_space, ACTION_SPACES[action], network=NetworkConfig((32, 16), activation),
                        shared_towers=shared, seed=seed, **kw)
    # Non-zero biases and log-std, and larger heads, so every term of the forward pass matters.
    rng = np.random.default_rng(seed + 100)
    for var in model.trainable_variables:
        if "bias" in var.path or "logstd" in var.path:
            var.assign(rng.normal(scale=0.3, size=var.shape).astype(np.float32))
    for head in (model.pi_head, model.vf_head):
        head.kernel.assign(head.kernel.numpy() * 10.0)
    return model


def _obs(n: int = 16, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).normal(scale=2.0, size=(n, 5)).astype(np.float32)


def assert_close(got, want, msg: str = "") -> None:
    """rtol 1e-5, plus float32 round-off of the largest output (cancellation in the last layer)."""
    want = np.asarray(want, np.float64)
    scale = max(1.0, float(np.max(np.abs(want))))
    np.testing.assert_allclose(np.asarray(got, np.float64), want, rtol=1e-5, atol=1e-6 * scale, err_msg=msg)


def _perturb(model: ActorCritic, seed: int) -> None:
    rng = np.random.default_rng(seed)
    for var in model.trainable_variables:
        var.assign(var.numpy() + rng.normal(scale=0.2, size=var.shape).astype(np.float32))


@pytest.mark.parametrize("action,shared,activation", CASES, ids=CASE_IDS)
def test_actors_equal_keras_model(action, shared, activation):
    model = _model(action, shared, activation)
    obs = _obs()
    ref_params, ref_value = (t.numpy() for t in model(tf.constant(obs)))
    assert ref_params.shape == (16, PARAM_SIZE[action]) and ref_value.shape == (16,)
    assert np.std(ref_value) > 1e-3 and np.std(ref_params) > 1e-3  # a non-degenerate comparison
    for actor in (NumpyActor(model), CompiledActor(model)):
        params, value = actor.forward(obs)
        assert params.dtype == np.float32 and value.dtype == np.float32
        assert params.shape == ref_params.shape and value.shape == ref_value.shape
        assert_close(params, ref_params, type(actor).__name__)
        assert_close(value, ref_value, type(actor).__name__)


@pytest.mark.parametrize("action,shared,activation", CASES, ids=CASE_IDS)
def test_weight_change_reaches_actors(action, shared, activation):
    model = _model(action, shared, activation, seed=1)
    obs = _obs(seed=1)
    numpy_actor, compiled_actor = NumpyActor(model), CompiledActor(model)
    old_params, old_value = (t.numpy() for t in model(tf.constant(obs)))
    compiled_actor.forward(obs)  # trace before the change: the traced function must read live variables
    _perturb(model, seed=2)
    new_params, new_value = (t.numpy() for t in model(tf.constant(obs)))
    assert not np.allclose(new_value, old_value, atol=1e-3)

    # NumPy actor holds a copy of the weights: unchanged until sync().
    stale_params, stale_value = numpy_actor.forward(obs)
    assert_close(stale_value, old_value)
    assert_close(stale_params, old_params)
    numpy_actor.sync()
    for actor in (numpy_actor, compiled_actor):
        params, value = actor.forward(obs)
        assert_close(params, new_params, type(actor).__name__)
        assert_close(value, new_value, type(actor).__name__)


@pytest.mark.parametrize("action", list(ACTION_SPACES))
def test_act_numpy_and_compiled_give_same_actions(action):
    model = _model(action, False, "tanh", seed=3)
    dist = model.dist
    obs = _obs(n=64, seed=3)
    numpy_actor, compiled_actor = NumpyActor(model), CompiledActor(model)
    a1, v1, n1 = act(numpy_actor, dist, obs, np.random.default_rng(42))
    a2, v2, n2 = act(compiled_actor, dist, obs, np.random.default_rng(42))
    assert a1.shape == a2.shape == (64, *dist.action_shape)
    assert a1.dtype == a2.dtype == dist.action_dtype
    if action == "box":
        assert_close(a1, a2)
    else:
        np.testing.assert_array_equal(a1, a2)
    assert_close(v1, v2)
    np.testing.assert_allclose(n1, n2, rtol=1e-5, atol=1e-5)
    ref_params, ref_value = model(tf.constant(obs))
    assert_close(v1, ref_value.numpy())
    # The returned neglogp is that of the returned actions under the model's distribution (TF maths).
    np.testing.assert_allclose(n1, dist.neglogp(ref_params, tf.constant(a1)).numpy(), rtol=1e-4, atol=1e-4)
    # Sampling really is random: another seed gives other actions; the same seed repeats.
    a3, _, _ = act(numpy_actor, dist, obs, np.random.default_rng(43))
    assert not np.array_equal(a1, a3)
    a4, _, _ = act(numpy_actor, dist, obs, np.random.default_rng(42))
    np.testing.assert_array_equal(a1, a4)

    # Deterministic acting: the mode, identical on both paths and needing no randomness.
    d1, _, _ = act(numpy_actor, dist, obs, np.random.default_rng(0), deterministic=True)
    d2, _, _ = act(compiled_actor, dist, obs, np.random.default_rng(1), deterministic=True)
    params = ref_params.numpy()
    expected = {
        "discrete": lambda: np.argmax(params, axis=-1),
        "box": lambda: params[:, :3],
        "multidiscrete": lambda: np.stack([np.argmax(params[:, 0:3], -1), np.argmax(params[:, 3:5], -1),
                                           np.argmax(params[:, 5:9], -1)], axis=-1),
        "multibinary": lambda: (params > 0).astype(np.int64),
    }[action]()
    if action == "box":
        assert_close(d1, expected)
        assert_close(d2, expected)
    else:
        np.testing.assert_array_equal(d1, expected)
        np.testing.assert_array_equal(d2, expected)


def test_numpy_actor_with_discrete_observations_and_policy_obs_norm():
    """The other input paths of the NumPy forward: one-hot states, and PPO1's in-graph obs filter."""
    model = _model("discrete", False, "tanh", obs_space=gym.spaces.Discrete(7))
    states = np.array([0, 6, 3, 3, 1], np.int64)
    ref = [t.numpy() for t in model(tf.constant(states))]
    for actor in (NumpyActor(model), CompiledActor(model)):
        for got, want in zip(actor.forward(states), ref):
            assert_close(got, want)

    model = _model("box", True, "relu", policy_obs_norm=True)
    model.obs_mean.assign(np.array([0.5, -1.0, 0.0, 2.0, 0.1], np.float32))
    model.obs_std.assign(np.array([0.2, 3.0, 1.0, 0.5, 0.05], np.float32))
    obs = _obs(seed=4)
    ref = [t.numpy() for t in model(tf.constant(obs))]
    numpy_actor = NumpyActor(model)
    for actor in (numpy_actor, CompiledActor(model)):
        for got, want in zip(actor.forward(obs), ref):
            assert_close(got, want)
    # New statistics reach the NumPy actor at sync().
    model.obs_mean.assign(np.zeros(5, np.float32))
    numpy_actor.sync()
    ref = [t.numpy() for t in model(tf.constant(obs))]
    for got, want in zip(numpy_actor.forward(obs), ref):
        assert_close(got, want)


def small_cnn_features(model, image: np.ndarray) -> np.ndarray:
    """MinAtar's trunk by hand on one H×W×C image (bool 0/1, or uint8 /255): 3×3 VALID conv + ReLU, flatten
    (row, column, channel), fc + ReLU, in float64 with a loop over output positions."""
    conv, _, fc = model.trunk
    kernel, bias = conv.kernel.numpy(), conv.bias.numpy()  # [3, 3, C, F]
    x = image.astype(np.float64) / (255.0 if image.dtype == np.uint8 else 1.0)
    rows, cols = x.shape[0] - 2, x.shape[1] - 2
    out = np.array([[np.einsum("ijc,ijcf->f", x[r:r + 3, q:q + 3], kernel) + bias for q in range(cols)]
                    for r in range(rows)])
    return np.maximum(np.maximum(out, 0.0).reshape(-1) @ fc.kernel.numpy() + fc.bias.numpy(), 0.0)


SMALL_IMAGES = {
    "minatar-bool": gym.spaces.Box(0, 1, (10, 10, 4), bool),
    "uint8": gym.spaces.Box(0, 255, (12, 9, 3), np.uint8),
}


@pytest.mark.parametrize("name", list(SMALL_IMAGES))
def test_small_cnn_acts_in_numpy_equal_to_a_hand_written_conv(name):
    """MinAtar's small CNN acts through NumPy (no TF call per env step): its logits and values equal a
    loop-over-positions conv in float64 and the Keras model, a weight change reaches it after ``sync()``,
    and it samples the same actions as the compiled path."""
    space = SMALL_IMAGES[name]
    model = ActorCritic(space, gym.spaces.Discrete(5), seed=3)
    _perturb(model, 7)  # non-zero biases, so every term of the conv and fc matters
    rng = np.random.default_rng(4)
    obs = rng.random((6, *space.shape)) < 0.4 if space.dtype == bool else \
        rng.integers(0, 256, size=(6, *space.shape), dtype=np.uint8)
    actor = make_actor(model)
    assert isinstance(actor, NumpyActor)
    feats = np.stack([small_cnn_features(model, o) for o in obs])
    want_params = feats @ model.pi_head.kernel.numpy() + model.pi_head.bias.numpy()
    want_value = (feats @ model.vf_head.kernel.numpy() + model.vf_head.bias.numpy())[:, 0]
    assert np.std(want_value) > 1e-3 and np.std(want_params) > 1e-3
    params, value = actor.forward(obs)
    assert params.dtype == np.float32 and value.dtype == np.float32
    assert_close(params, want_params)
    assert_close(value, want_value)
    ref_params, ref_value = model(tf.constant(obs))
    assert_close(params, ref_params.numpy())
    assert_close(value, ref_value.numpy())

    _perturb(model, 8)
    stale, _ = actor.forward(obs)
    assert_close(stale, params)  # still the copied weights
    actor.sync()
    new_params, _ = actor.forward(obs)
    assert_close(new_params, model(tf.constant(obs))[0].numpy())
    assert np.max(np.abs(new_params - params)) > 1e-2

    streams = lambda: PerRowGenerators([np.random.default_rng(50 + i) for i in range(6)])
    a_np, v_np, _ = act(actor, model.dist, obs, streams())
    a_tf, v_tf, _ = act(CompiledActor(model), model.dist, obs, streams())
    np.testing.assert_array_equal(a_np, a_tf)
    assert_close(v_np, v_tf)


def test_the_nature_cnn_acts_through_one_compiled_call():
    image = ActorCritic(gym.spaces.Box(0, 255, (84, 84, 4), np.uint8), gym.spaces.Discrete(3), seed=0)
    actor = make_actor(image)
    assert isinstance(actor, CompiledActor)
    with pytest.raises(ValueError, match="Nature CNN acts through CompiledActor"):
        NumpyActor(image)
    obs = np.random.default_rng(0).integers(0, 256, size=(2, 84, 84, 4), dtype=np.uint8)
    params, value = actor.forward(obs)
    ref_params, ref_value = image(tf.constant(obs))
    assert_close(params, ref_params.numpy())
    assert_close(value, ref_value.numpy())
    assert isinstance(make_actor(_model("discrete", False, "tanh")), NumpyActor)


@pytest.mark.parametrize("action", list(ACTION_SPACES))
def test_act_with_one_generator_per_env(action):
    """Per-env streams: row i is sampled from generator i alone, on both acting paths."""
    model = _model(action, True, "relu", seed=5)
    dist = model.dist
    obs = _obs(n=4, seed=5)
    streams = lambda: PerRowGenerators([np.random.default_rng(1000 + i) for i in range(4)])
    a_np, v_np, n_np = act(NumpyActor(model), dist, obs, streams())
    a_tf, v_tf, n_tf = act(CompiledActor(model), dist, obs, streams())
    assert a_np.shape == (4, *dist.action_shape)
    if action == "box":
        assert_close(a_np, a_tf)
    else:
        np.testing.assert_array_equal(a_np, a_tf)
    assert_close(v_np, v_tf)
    np.testing.assert_allclose(n_np, n_tf, rtol=1e-5, atol=1e-5)
    # Row i alone with a fresh generator i gives the same action: no stream is shared between envs.
    actor = NumpyActor(model)
    for i in range(4):
        a_i, _, n_i = act(actor, dist, obs[i:i + 1], np.random.default_rng(1000 + i))
        np.testing.assert_array_equal(a_i[0], a_np[i])
        np.testing.assert_allclose(n_i[0], n_np[i], rtol=1e-6)


@pytest.mark.parametrize("action", list(ACTION_SPACES))
def test_prefetched_noise_gives_the_actions_of_step_by_step_draws(action):
    """A rollout's noise drawn ahead (one call per env) is the same stream: every act() gives the actions and
    neglogp of drawing step by step, and each generator ends where the step-by-step one does."""
    model = _model(action, False, "tanh", seed=7)
    dist, actor = model.dist, NumpyActor(model)
    observations = [_obs(n=3, seed=s) for s in range(5)]
    plain = PerRowGenerators([np.random.default_rng(50 + i) for i in range(3)])
    ahead = PerRowGenerators([np.random.default_rng(50 + i) for i in range(3)])
    ahead.prefetch(dist.noise_method, len(observations) * dist.head_size)
    for obs in observations:
        a_plain, _, n_plain = act(actor, dist, obs, plain)
        a_ahead, _, n_ahead = act(actor, dist, obs, ahead)
        np.testing.assert_array_equal(a_ahead, a_plain)
        np.testing.assert_array_equal(n_ahead, n_plain)
    assert ahead.remaining == 0
    for g_plain, g_ahead in zip(plain.generators, ahead.generators):
        assert g_plain.bit_generator.state == g_ahead.bit_generator.state


def test_prefetch_refuses_to_reorder_a_stream():
    streams = PerRowGenerators([np.random.default_rng(0), np.random.default_rng(1)])
    streams.prefetch("gumbel", 4)
    with pytest.raises(RuntimeError, match="does not fit"):
        streams.standard_normal((2, 2))  # another method while gumbel values are held
    with pytest.raises(RuntimeError, match="still unused"):
        streams.prefetch("gumbel", 2)


# ----------------------------------------------------- no TF call per env step (a guard, not a timing)
def _tf_calls_during(fn) -> int:
    """Python calls into TensorFlow, Keras or TFP code (and TF's C bindings) while ``fn`` runs."""
    marks = ("/tensorflow/", "/keras/", "/tensorflow_probability/", "/tf_keras/")
    count = 0

    def profiler(frame, event, arg):
        nonlocal count
        if event == "call" and any(mark in frame.f_code.co_filename for mark in marks):
            count += 1
        elif event == "c_call" and (getattr(arg, "__module__", None) or "").startswith(("tensorflow", "keras")):
            count += 1

    import sys
    sys.setprofile(profiler)
    try:
        fn()
    finally:
        sys.setprofile(None)
    return count


def test_rollout_makes_no_tf_call_per_env_step():
    """An MLP rollout acts, samples and steps envs in NumPy only: no TF/Keras/TFP code runs at all.
    The same detector counts the calls of the compiled actor (the positive control)."""
    import tfppo

    agent = tfppo.PPO2("CartPole-v1", num_envs=2, n_steps=32, nminibatches=1, noptepochs=1, total_timesteps=64,
                       verbose=0)
    runner = agent.make_runner()
    runner.run()  # env creation and first resets outside the measured window
    assert isinstance(runner.actor, NumpyActor)
    assert _tf_calls_during(runner.run) == 0
    runner.actor = CompiledActor(agent.policy)
    runner.run()  # trace outside the window
    assert _tf_calls_during(runner.run) >= 32  # at least one TF call per step when acting through TF
    runner.venv.close()
