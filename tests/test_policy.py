"""The Keras actor-critic against the spec's network and initialisation rules (spec §5.1-5.3).

Every expectation is written down by hand here: orthogonality (WᵀW = g²·I),
normc column norms, parameter counts, and forward passes recomputed in NumPy
(or with raw ``tf.nn`` ops for the CNN) from the layers' weights.
"""
from __future__ import annotations

import math

import gymnasium as gym
import keras
import numpy as np
import pytest
import tensorflow as tf

from tfppo.config.hyperparameters import NetworkConfig
from tfppo.core.policy import ActorCritic

OBS4 = gym.spaces.Box(-np.inf, np.inf, (4,), np.float32)
BOX2 = gym.spaces.Box(-1.0, 1.0, (2,), np.float32)
DISC3 = gym.spaces.Discrete(3)
IMAGE = gym.spaces.Box(0, 255, (84, 84, 4), np.uint8)


def assert_orthogonal(kernel: np.ndarray, gain: float, atol: float = 1e-5) -> None:
    """WᵀW = g²·I when fan-in ≥ fan-out, else WWᵀ = g²·I (kernel flattened to [fan_in, out])."""
    w = np.asarray(kernel, np.float64).reshape(-1, kernel.shape[-1])
    n_in, n_out = w.shape
    gram = w.T @ w if n_in >= n_out else w @ w.T
    np.testing.assert_allclose(gram, gain**2 * np.eye(min(n_in, n_out)), rtol=0, atol=atol * max(gain**2, 1e-4))


def dense_layers(model: ActorCritic):
    return [*model.pi_layers, *model.vf_layers, model.pi_head, model.vf_head]


def np_act(name: str):
    return {"tanh": np.tanh, "relu": lambda x: np.maximum(x, 0.0)}[name]


def np_dense(x, layer, activation=None):
    y = x @ layer.kernel.numpy().astype(np.float64) + layer.bias.numpy().astype(np.float64)
    return activation(y) if activation is not None else y


# --- orthogonal initialisation ([SB] MlpPolicy, [B] ortho_init) -------------------------------------


@pytest.mark.parametrize("action_space", [BOX2, DISC3], ids=["box", "discrete"])
def test_orthogonal_init_gains_and_zero_biases(action_space):
    model = ActorCritic(OBS4, action_space, network=NetworkConfig((64, 64), "tanh"), seed=3)
    assert len(model.pi_layers) == 2 and len(model.vf_layers) == 2
    # Hidden: √2.  The first layer is 4 -> 64 (rows orthogonal), the second 64 -> 64 (square).
    assert model.pi_layers[0].kernel.shape == (4, 64) and model.pi_layers[1].kernel.shape == (64, 64)
    for layer in [*model.pi_layers, *model.vf_layers]:
        assert_orthogonal(layer.kernel.numpy(), math.sqrt(2))
    n_act = 2 if isinstance(action_space, gym.spaces.Box) else 3
    assert model.pi_head.kernel.shape == (64, n_act)
    assert model.vf_head.kernel.shape == (64, 1)
    assert_orthogonal(model.pi_head.kernel.numpy(), 0.01)
    assert_orthogonal(model.vf_head.kernel.numpy(), 1.0)
    # The head gains are really different scales, not all √2.
    np.testing.assert_allclose(np.linalg.norm(model.vf_head.kernel.numpy()), 1.0, rtol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(model.pi_head.kernel.numpy(), axis=0), [0.01] * n_act, rtol=1e-4)
    for layer in dense_layers(model):
        assert np.all(layer.bias.numpy() == 0.0), layer.name


def test_orthogonal_init_when_input_is_wider_than_layer():
    """fan-in 100 > fan-out 64: the columns are the orthonormal ones (WᵀW = 2·I)."""
    obs = gym.spaces.Box(-1, 1, (100,), np.float32)
    model = ActorCritic(obs, DISC3, network=NetworkConfig((64, 16)), seed=0)
    k0, k1 = model.pi_layers[0].kernel.numpy(), model.pi_layers[1].kernel.numpy()
    assert k0.shape == (100, 64) and k1.shape == (64, 16)
    np.testing.assert_allclose(k0.T @ k0, 2 * np.eye(64), atol=1e-5)
    np.testing.assert_allclose(k1.T @ k1, 2 * np.eye(16), atol=1e-5)
    vk = model.vf_head.kernel.numpy()  # 16 -> 1
    np.testing.assert_allclose(vk.T @ vk, [[1.0]], atol=1e-5)


def test_box_action_log_std_weight():
    model = ActorCritic(OBS4, gym.spaces.Box(-1, 1, (3,), np.float32), seed=0)
    assert tuple(model.log_std.shape) == (1, 3)
    assert model.log_std.trainable
    assert np.all(model.log_std.numpy() == 0.0)
    assert any(v is model.log_std for v in model.trainable_variables)
    # Discrete actions have no log-std at all.
    assert not hasattr(ActorCritic(OBS4, DISC3, seed=0), "log_std")


def test_gaussian_params_are_mean_then_state_independent_log_std():
    """Forward pass recomputed in NumPy: params = [mean, mean·0 + logstd], value from the vf tower."""
    model = ActorCritic(OBS4, BOX2, network=NetworkConfig((8, 5), "tanh"), seed=1)
    model.log_std.assign([[0.3, -0.7]])
    for layer in dense_layers(model):  # non-zero biases so they are exercised too
        layer.bias.assign(np.linspace(-0.5, 0.5, layer.bias.shape[0]).astype(np.float32))
    obs = np.random.default_rng(0).normal(size=(6, 4)).astype(np.float32)
    params, value = (t.numpy() for t in model(tf.constant(obs)))
    x = obs.astype(np.float64)
    pi = np_dense(np_dense(x, model.pi_layers[0], np.tanh), model.pi_layers[1], np.tanh)
    vf = np_dense(np_dense(x, model.vf_layers[0], np.tanh), model.vf_layers[1], np.tanh)
    assert params.shape == (6, 4) and value.shape == (6,)
    np.testing.assert_allclose(params[:, :2], np_dense(pi, model.pi_head), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(params[:, 2:], np.tile([[0.3, -0.7]], (6, 1)), rtol=1e-6)
    np.testing.assert_allclose(value, np_dense(vf, model.vf_head)[:, 0], rtol=1e-5, atol=1e-6)


# --- normc initialisation ([B] PPO1 MlpPolicy) --------------------------------------------------


@pytest.mark.parametrize("action_space", [BOX2, DISC3], ids=["box", "discrete"])
def test_normc_init_column_norms(action_space):
    model = ActorCritic(OBS4, action_space, network=NetworkConfig((64, 32)), init="normc", seed=2)
    for layer in [*model.pi_layers, *model.vf_layers]:
        k = layer.kernel.numpy()
        np.testing.assert_allclose(np.linalg.norm(k, axis=0), np.ones(k.shape[1]), rtol=1e-5)
    pk, vk = model.pi_head.kernel.numpy(), model.vf_head.kernel.numpy()
    np.testing.assert_allclose(np.linalg.norm(pk, axis=0), np.full(pk.shape[1], 0.01), rtol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(vk, axis=0), [1.0], rtol=1e-5)
    # normc is a Gaussian rescaled per column, not an orthogonal matrix: the 4 -> 64 layer
    # has unit columns but 64 columns cannot be orthonormal in R^4.
    k0 = model.pi_layers[0].kernel.numpy()
    assert not np.allclose(k0 @ k0.T, 2 * np.eye(4), atol=1e-3)
    for layer in dense_layers(model):
        assert np.all(layer.bias.numpy() == 0.0), layer.name
    if isinstance(action_space, gym.spaces.Box):
        assert np.all(model.log_std.numpy() == 0.0)


# --- shared vs separate towers ([B] value_network=None vs 'copy') -------------------------------


def n_params(model) -> int:
    return int(sum(np.prod(v.shape) for v in model.weights))


def test_shared_towers_parameter_count_and_value_on_policy_latent():
    net = NetworkConfig((64, 64), "tanh")
    separate = ActorCritic(OBS4, DISC3, network=net, shared_towers=False, seed=0)
    shared = ActorCritic(OBS4, DISC3, network=net, shared_towers=True, seed=0)
    assert shared.vf_layers == []
    # Tower 4 -> 64 -> 64: (4·64 + 64) + (64·64 + 64) = 320 + 4160 = 4480 parameters.
    vf_tower = (4 * 64 + 64) + (64 * 64 + 64)
    assert vf_tower == 4480
    heads = (64 * 3 + 3) + (64 * 1 + 1)
    assert heads == 195 + 65 == 260
    assert n_params(shared) == vf_tower + heads == 4740
    assert n_params(separate) == 2 * vf_tower + heads == 9220
    assert n_params(separate) - n_params(shared) == vf_tower
    assert shared.vf_head.kernel.shape == (64, 1)

    # The value head reads the policy latent: recompute it from the pi tower's weights.
    obs = np.random.default_rng(1).normal(size=(5, 4)).astype(np.float32)
    logits, value = (t.numpy() for t in shared(tf.constant(obs)))
    latent = np_dense(np_dense(obs.astype(np.float64), shared.pi_layers[0], np.tanh), shared.pi_layers[1], np.tanh)
    np.testing.assert_allclose(value, np_dense(latent, shared.vf_head)[:, 0], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(logits, np_dense(latent, shared.pi_head), rtol=1e-5, atol=1e-7)

    # ...so the value has a gradient w.r.t. the pi tower, which it does not with separate towers.
    for model, expect_grad in ((shared, True), (separate, False)):
        with tf.GradientTape() as tape:
            _, v = model(tf.constant(obs))
            loss = tf.reduce_sum(v)
        grad = tape.gradient(loss, model.pi_layers[0].kernel)
        has_grad = grad is not None and float(tf.reduce_max(tf.abs(grad))) > 0
        assert has_grad == expect_grad


# --- seeding -----------------------------------------------------------------------------------


@pytest.mark.parametrize("init", ["orthogonal", "normc"])
def test_same_seed_same_weights_different_seed_different(init):
    make = lambda seed: ActorCritic(OBS4, BOX2, init=init, seed=seed)
    a, b, c = make(7), make(7), make(8)
    wa, wb, wc = a.get_weights(), b.get_weights(), c.get_weights()
    assert len(wa) == len(wb) == len(wc)
    for x, y in zip(wa, wb):
        np.testing.assert_array_equal(x, y)
    kernels = [layer.kernel.numpy() for layer in dense_layers(a)]
    kernels_c = [layer.kernel.numpy() for layer in dense_layers(c)]
    for x, y in zip(kernels, kernels_c):
        assert not np.allclose(x, y), "different seeds gave the same kernel"
    # Within one network no two same-shaped kernels are copies of each other (a seed per layer).
    assert not np.allclose(a.pi_layers[1].kernel.numpy(), a.vf_layers[1].kernel.numpy())


# --- observation preprocessing -----------------------------------------------------------------


def test_discrete_observation_is_one_hot():
    obs_space = gym.spaces.Discrete(5)
    model = ActorCritic(obs_space, DISC3, network=NetworkConfig((8,), "tanh"), seed=0)
    assert model.pi_layers[0].kernel.shape == (5, 8)
    assert model.vf_layers[0].kernel.shape == (5, 8)
    for layer in dense_layers(model):
        layer.bias.assign(np.full(layer.bias.shape, 0.1, np.float32))
    states = np.array([0, 3, 4, 3], np.int64)
    logits, value = (t.numpy() for t in model(tf.constant(states)))
    # One-hot input selects a row of the first kernel: h = tanh(W[s] + b).
    w_pi, w_vf = model.pi_layers[0].kernel.numpy(), model.vf_layers[0].kernel.numpy()
    pi = np.tanh(w_pi[states].astype(np.float64) + 0.1)
    vf = np.tanh(w_vf[states].astype(np.float64) + 0.1)
    np.testing.assert_allclose(logits, np_dense(pi, model.pi_head), rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(value, np_dense(vf, model.vf_head)[:, 0], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(model.preprocess(tf.constant(states)).numpy(), np.eye(5)[states])


def test_nature_cnn_for_uint8_images():
    model = ActorCritic(IMAGE, gym.spaces.Discrete(6), seed=0)
    assert model.is_image
    assert model.pi_layers == [] and model.vf_layers == []
    convs = [layer for layer in model.trunk if isinstance(layer, keras.layers.Conv2D)]
    assert [tuple(c.kernel.shape) for c in convs] == [(8, 8, 4, 32), (4, 4, 32, 64), (3, 3, 64, 64)]
    assert [tuple(c.strides) for c in convs] == [(4, 4), (2, 2), (1, 1)]
    dense = [layer for layer in model.trunk if isinstance(layer, keras.layers.Dense)]
    # 84 -(8/4)-> 20 -(4/2)-> 9 -(3/1)-> 7: 7·7·64 = 3136 features into fc 512.
    assert len(dense) == 1 and tuple(dense[0].kernel.shape) == (3136, 512)
    assert tuple(model.pi_head.kernel.shape) == (512, 6) and tuple(model.vf_head.kernel.shape) == (512, 1)
    for c in [*convs, *dense]:
        assert_orthogonal(c.kernel.numpy(), math.sqrt(2), atol=2e-5)
        assert np.all(c.bias.numpy() == 0.0)
    assert_orthogonal(model.pi_head.kernel.numpy(), 0.01)
    assert_orthogonal(model.vf_head.kernel.numpy(), 1.0)

    obs = np.random.default_rng(0).integers(0, 256, size=(3, 84, 84, 4), dtype=np.uint8)
    logits, value = model(tf.constant(obs))
    assert tuple(logits.shape) == (3, 6) and tuple(value.shape) == (3,)

    # The trunk recomputed with raw TF ops on obs/255, with the weights shifted so values are O(1).
    for c in [*convs, *dense, model.pi_head, model.vf_head]:
        c.bias.assign(np.full(c.bias.shape, 0.01, np.float32))
    logits, value = (t.numpy() for t in model(tf.constant(obs)))
    x = tf.constant(obs.astype(np.float32) / 255.0)
    for c, s in zip(convs, (4, 2, 1)):
        x = tf.nn.relu(tf.nn.conv2d(x, c.kernel, strides=s, padding="VALID") + c.bias)
    assert tuple(x.shape) == (3, 7, 7, 64)
    x = tf.nn.relu(tf.reshape(x, (3, -1)) @ dense[0].kernel + dense[0].bias)
    np.testing.assert_allclose(logits, (x @ model.pi_head.kernel + model.pi_head.bias).numpy(), rtol=1e-4,
                               atol=1e-6)
    np.testing.assert_allclose(value, (x @ model.vf_head.kernel + model.vf_head.bias).numpy()[:, 0], rtol=1e-4,
                               atol=1e-5)


def test_nature_cnn_with_box_actions_has_log_std():
    model = ActorCritic(IMAGE, BOX2, seed=0)
    params, value = model(tf.constant(np.zeros((2, 84, 84, 4), np.uint8)))
    assert tuple(params.shape) == (2, 4) and tuple(value.shape) == (2,)
    assert tuple(model.log_std.shape) == (1, 2)


@pytest.mark.parametrize("shared", [False, True])
def test_policy_obs_norm_equals_manual_normalise_and_clip(shared):
    net = NetworkConfig((16, 16), "tanh")
    normed = ActorCritic(OBS4, BOX2, network=net, shared_towers=shared, policy_obs_norm=True, seed=4)
    plain = ActorCritic(OBS4, BOX2, network=net, shared_towers=shared, policy_obs_norm=False, seed=99)
    assert tuple(normed.obs_mean.shape) == (4,) and tuple(normed.obs_std.shape) == (4,)
    assert not normed.obs_mean.trainable and not normed.obs_std.trainable
    # Defaults are the identity normalisation (mean 0, std 1).
    assert np.all(normed.obs_mean.numpy() == 0) and np.all(normed.obs_std.numpy() == 1)
    # Same weights in both models, layer by layer (the normed model has two extra variables).
    for src, dst in zip(dense_layers(normed), dense_layers(plain)):
        dst.set_weights(src.get_weights())
    normed.log_std.assign([[0.2, -0.1]])
    plain.log_std.assign([[0.2, -0.1]])

    mean = np.array([1.0, -2.0, 0.5, 10.0], np.float32)
    std = np.array([0.5, 2.0, 0.1, 3.0], np.float32)
    normed.obs_mean.assign(mean)
    normed.obs_std.assign(std)
    rng = np.random.default_rng(5)
    obs = (mean + std * rng.normal(scale=4.0, size=(64, 4))).astype(np.float32)
    obs[0] = mean + 100 * std  # far outside: clipped to +5 everywhere
    obs[1] = mean - 100 * std
    manual = np.clip((obs.astype(np.float64) - mean) / std, -5.0, 5.0)
    assert (np.abs(manual) == 5.0).any(axis=1).sum() > 2, "the test must exercise the clip"
    p1, v1 = (t.numpy() for t in normed(tf.constant(obs)))
    p2, v2 = (t.numpy() for t in plain(tf.constant(manual.astype(np.float32))))
    np.testing.assert_allclose(p1, p2, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(v1, v2, rtol=1e-5, atol=1e-6)
    # Without normalisation the raw inputs give different outputs (the switch does something).
    p3, _ = (t.numpy() for t in plain(tf.constant(obs)))
    assert not np.allclose(p1, p3, atol=1e-4)


CARTPOLE_OBS = gym.spaces.Box(-np.inf, np.inf, (4,), np.float32)


@pytest.mark.parametrize("matching_fc, hidden, has_head", [
    (True, (64, 2), False),   # last width 2 = CartPole's 2 actions: the latent is the logits ([B] _matching_fc)
    (False, (64, 2), True),   # [SB] / [B] PPO1: always a 0.01 head
    (True, (64, 64), True),   # widths differ: [B] adds the head too
])
def test_matching_fc_uses_the_latent_as_logits(matching_fc, hidden, has_head):
    from tfppo.core.acting import NumpyActor

    model = ActorCritic(CARTPOLE_OBS, gym.spaces.Discrete(2), network=NetworkConfig(hidden), matching_fc=matching_fc,
                        seed=3)
    assert (model.pi_head is not None) == has_head
    obs = np.random.default_rng(0).standard_normal((5, 4)).astype(np.float32)
    x = obs.astype(np.float64)
    for layer in model.pi_layers:  # the policy tower by hand: tanh(x W + b) per layer
        x = np.tanh(x @ layer.kernel.numpy() + layer.bias.numpy())
    expected = x if not has_head else x @ model.pi_head.kernel.numpy() + model.pi_head.bias.numpy()
    logits, _ = model(tf.constant(obs))
    np.testing.assert_allclose(logits.numpy(), expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(NumpyActor(model).forward(obs)[0], expected, rtol=1e-5, atol=1e-6)


def test_matching_fc_box_mean_is_the_latent_and_log_std_follows():
    model = ActorCritic(gym.spaces.Box(-1, 1, (3,), np.float32), gym.spaces.Box(-2, 2, (1,), np.float32),
                        network=NetworkConfig((16, 1)), matching_fc=True, seed=1)
    assert model.pi_head is None
    obs = np.ones((2, 3), np.float32)
    x = obs.astype(np.float64)
    for layer in model.pi_layers:
        x = np.tanh(x @ layer.kernel.numpy() + layer.bias.numpy())
    params, _ = model(tf.constant(obs))
    np.testing.assert_allclose(params.numpy(), np.concatenate([x, np.zeros((2, 1))], axis=1), atol=1e-6)


def test_matching_fc_is_on_only_in_the_baselines_ppo2_presets():
    from tfppo.config.semantics import PRESETS

    assert {name for name, sem in PRESETS.items() if sem.matching_fc} == {"baselines-ppo2", "baselines-ppo2-mujoco"}


def test_baselines_ppo1_cnn_policy_init():
    # [B] PPO1 CnnPolicy: U.conv2d uniform ±√(6/(fan_in+fan_out)), fc 512 and value normc(1), logits normc(0.01)
    model = ActorCritic(IMAGE, gym.spaces.Discrete(6), init="normc", policy_obs_norm=True, seed=2)
    assert not model.policy_obs_norm  # images are only /255
    convs = [layer for layer in model.trunk if isinstance(layer, keras.layers.Conv2D)]
    for conv in convs:
        kh, kw, cin, cout = conv.kernel.shape
        bound = math.sqrt(6.0 / (kh * kw * cin + kh * kw * cout))
        kernel = conv.kernel.numpy()
        assert np.abs(kernel).max() <= bound
        assert kernel.var() == pytest.approx(bound ** 2 / 3, rel=0.1)  # variance of U(−b, b)
        assert np.all(conv.bias.numpy() == 0.0)
    fc = next(layer for layer in model.trunk if isinstance(layer, keras.layers.Dense))
    for layer, norm in ((fc, 1.0), (model.pi_head, 0.01), (model.vf_head, 1.0)):
        np.testing.assert_allclose(np.linalg.norm(layer.kernel.numpy(), axis=0), norm, rtol=1e-5)


class TinyImageEnv(gym.Env):
    """uint8 84×84×4 frames, 3 actions: enough to build an Atari-shaped agent."""

    observation_space = IMAGE
    action_space = gym.spaces.Discrete(3)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        return np.zeros(IMAGE.shape, np.uint8), {}

    def step(self, action):
        return np.zeros(IMAGE.shape, np.uint8), 0.0, False, False, {}


def test_baselines_ppo1_accepts_image_observations():
    import tfppo

    agent = tfppo.PPO1("tests.test_policy:TinyImageEnv", preset="baselines-ppo1", timesteps_per_actorbatch=8,
                       optim_batchsize=8, max_timesteps=8, verbose=0)
    assert agent.model.is_image and not agent.model.policy_obs_norm
    with pytest.raises(tfppo.ConfigError, match="obs_norm=env needs a float Box"):
        tfppo.PPO2("tests.test_policy:TinyImageEnv", semantics={"obs_norm": "env"}, n_steps=8, nminibatches=1,
                   total_timesteps=8, verbose=0)
