"""Recurrent actor-critic for PPO2: Baselines' ``lstm`` / ``lnlstm`` networks ([B] a2c/utils.py, ppo2).

The model is the MLP trunk (``hidden_sizes``, shared) followed by one LSTM of ``nlstm`` units whose
output feeds the policy and value heads (Stable-Baselines' ``MlpLstmPolicy`` layout with Baselines'
cell; both originals share the LSTM between policy and value). On image observations the trunk is the
feed-forward policy's CNN ([B] ``cnn_lstm``, [SB] ``CnnLstmPolicy``). The cell is Baselines' own:
one orthogonal ``wx [in, 4n]``, ``wh [n, 4n]``, a zero bias, gates split in the order i, f, o, u,
and for ``lnlstm`` a layer norm (ε = 1e-5, gain 1, bias 0) on ``x·wx``, ``h·wh`` and on ``c`` before
its tanh. The state is ``[c, h]`` concatenated, ``[E, 2n]``.

Episode boundaries follow Baselines exactly: ``mask_t`` is the done of the previous step (the
rollout's ``episode_starts``) and the state is multiplied by ``1 − mask_t`` before step t, so no
memory crosses an episode end. The learner unrolls whole env sequences of ``n_steps`` from the
state stored at the start of the rollout segment (`tfppo.core.learner.MinibatchPlan.by_env`).

Acting stays NumPy like the MLP's (`tfppo.core.acting`): `NumpyRecurrentActor` is the same cell in
float64 over a copy of the weights, and `RecurrentState` carries one state per env across steps, so
a rollout pays no TF call per env step; MinAtar's small CNN trunk runs in NumPy too. After the Nature
CNN, `CompiledRecurrentActor` runs the model's own step as one tf.function per vector step instead, as
the feed-forward Nature-CNN policy does (`tfppo.core.acting.acts_in_numpy`).
"""
from __future__ import annotations

import math

import gymnasium as gym
import keras
import numpy as np
import tensorflow as tf

from tfppo.config.hyperparameters import NetworkConfig
from tfppo.core.acting import acts_in_numpy, numpy_image_input, numpy_image_trunk
from tfppo.core.distributions import ActionDistribution, make_distribution
from tfppo.core.policy import image_trunk_layers, layer_seeds
from tfppo.envs.spaces import is_image_space, pixel_scale
from tfppo.util.errors import ConfigError

LN_EPSILON = 1e-5  # [B] a2c/utils._ln
_NP_ACTIVATIONS = {"tanh": np.tanh, "relu": lambda x: np.maximum(x, 0.0)}


def check_recurrent_fit(observation_space: gym.Space, semantics) -> None:
    """What the recurrent policy does not take stops with one line before anything is built."""
    numeric_box = isinstance(observation_space, gym.spaces.Box) and observation_space.dtype not in (np.uint8, np.bool_)
    if not numeric_box and not is_image_space(observation_space):
        raise ConfigError(f"a recurrent policy takes a numeric Box or an image (3-d uint8 or bool Box) observation "
                          f"space; this env has {type(observation_space).__name__}"
                          f"({getattr(observation_space, 'dtype', None)}): use --policy mlp")
    for switch, value, allowed in (("obs_norm", semantics.obs_norm, ("none", "env")),
                                   ("first_sample", semantics.first_sample, ("current",)),
                                   ("bootstrap_truncation", semantics.bootstrap_truncation, (False,))):
        if value not in allowed:
            raise ConfigError(f"semantics {switch}={value} does not fit a recurrent policy; allowed: "
                              f"{', '.join(str(a).lower() for a in allowed)}")


class MaskedLSTM(keras.layers.Layer):
    """One Baselines LSTM cell step with the done-mask applied to the incoming state."""

    def __init__(self, units: int, layer_norm: bool, seed: int, **kwargs):
        super().__init__(**kwargs)
        self.units = units
        self.layer_norm = layer_norm
        self._seed = seed

    def build(self, input_shape) -> None:
        n, n_in = self.units, int(input_shape[-1])
        ortho = lambda offset: keras.initializers.Orthogonal(gain=1.0, seed=self._seed + offset)
        self.wx = self.add_weight(name="wx", shape=(n_in, 4 * n), initializer=ortho(0))
        self.wh = self.add_weight(name="wh", shape=(n, 4 * n), initializer=ortho(1))
        self.b = self.add_weight(name="b", shape=(4 * n,), initializer="zeros")
        if self.layer_norm:
            self.gx, self.bx, self.gh, self.bh = (self.add_weight(name=name, shape=(4 * n,), initializer=init)
                                                  for name, init in (("gx", "ones"), ("bx", "zeros"),
                                                                     ("gh", "ones"), ("bh", "zeros")))
            self.gc = self.add_weight(name="gc", shape=(n,), initializer="ones")
            self.bc = self.add_weight(name="bc", shape=(n,), initializer="zeros")

    @staticmethod
    def _ln(x: tf.Tensor, gain: tf.Tensor, bias: tf.Tensor) -> tf.Tensor:
        mean, var = tf.nn.moments(x, axes=[1], keepdims=True)
        return (x - mean) / tf.sqrt(var + LN_EPSILON) * gain + bias

    def call(self, x: tf.Tensor, starts: tf.Tensor, state: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        """(h_t, [c_t, h_t]) from x_t [B, in], mask_t [B] (1: a new episode starts) and [c, h] [B, 2n]."""
        keep = (1.0 - starts)[:, None]
        c, h = tf.split(state * keep, 2, axis=1)
        if self.layer_norm:
            z = self._ln(x @ self.wx, self.gx, self.bx) + self._ln(h @ self.wh, self.gh, self.bh) + self.b
        else:
            z = x @ self.wx + h @ self.wh + self.b
        i, f, o, u = tf.split(z, 4, axis=1)
        c = tf.sigmoid(f) * c + tf.sigmoid(i) * tf.tanh(u)
        h = tf.sigmoid(o) * tf.tanh(self._ln(c, self.gc, self.bc) if self.layer_norm else c)
        return h, tf.concat([c, h], axis=1)


class RecurrentActorCritic(keras.Model):
    """``call(obs [E·T, ...], masks [E·T], states [E, 2n]) -> (pd_params [E·T, P], value [E·T])``.

    Rows are env-major (env e's T steps are rows e·T … e·T+T−1, PPO2's swap-and-flatten order); the
    LSTM runs over each env's T steps from its row of ``states``."""

    is_recurrent = True
    policy_obs_norm = False

    def __init__(self, observation_space: gym.Space, action_space: gym.Space, *, network: NetworkConfig,
                 nlstm: int, layer_norm: bool, seed: int = 0):
        super().__init__()
        self.observation_space = observation_space
        self.action_space = action_space
        self.dist: ActionDistribution = make_distribution(action_space)
        self.network = network
        self.nlstm = nlstm
        self.layer_norm = layer_norm
        seeds = layer_seeds(seed)
        dense = lambda units, gain, activation, name: keras.layers.Dense(
            units, activation=activation, kernel_initializer=keras.initializers.Orthogonal(gain, seed=next(seeds)),
            bias_initializer="zeros", name=name)
        # [B] cnn_lstm / [SB] CnnLstmPolicy: image observations go through the CNN trunk of the MLP policy
        # (orthogonal √2, as ppo2's), the LSTM reads its fc output; otherwise [SB] MlpLstmPolicy's MLP
        self.is_image = is_image_space(observation_space)
        self.trunk = image_trunk_layers(observation_space, lambda: keras.initializers.Orthogonal(
            math.sqrt(2), seed=next(seeds)), lambda units: dense(units, math.sqrt(2), "relu", "fc")) \
            if self.is_image else [dense(h, math.sqrt(2), network.activation, f"fc{i}")
                                   for i, h in enumerate(network.hidden_sizes)]
        self.cell = MaskedLSTM(nlstm, layer_norm, seed=next(seeds) * 10, name="lnlstm" if layer_norm else "lstm")
        self.pi_head = dense(self.dist.head_size, 0.01, None, "pi")
        self.vf_head = dense(1, 1.0, None, "vf")
        if self.dist.uses_log_std:
            self.log_std = self.add_weight(name="logstd", shape=(1, self.dist.head_size), initializer="zeros")
        self.obs_size = int(np.prod(observation_space.shape))
        self(tf.zeros((1, *observation_space.shape)), tf.zeros((1,)), self.initial_state(1))

    @property
    def state_size(self) -> int:
        return 2 * self.nlstm

    def initial_state(self, n_envs: int) -> tf.Tensor:
        return tf.zeros((n_envs, self.state_size))

    def _features(self, obs: tf.Tensor) -> tf.Tensor:
        x = tf.cast(obs, tf.float32)
        x = x / pixel_scale(self.observation_space) if self.is_image else tf.reshape(x, (-1, self.obs_size))
        for layer in self.trunk:
            x = layer(x)
        return x

    def _heads(self, latent: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        head = self.pi_head(latent)
        if self.dist.uses_log_std:
            head = tf.concat([head, head * 0.0 + self.log_std], axis=-1)
        return head, tf.squeeze(self.vf_head(latent), axis=-1)

    def call(self, obs: tf.Tensor, masks: tf.Tensor, states: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        x = self._features(obs)
        n_envs = tf.shape(states)[0]
        time_major = lambda t: tf.transpose(tf.reshape(t, tf.concat([[n_envs, -1], tf.shape(t)[1:]], 0)),
                                            tf.concat([[1, 0], tf.range(2, tf.rank(t) + 1)], 0))
        xs, ms = time_major(x), time_major(tf.cast(masks, tf.float32)[:, None])[..., 0]

        def step(carry, inputs):
            _, state = carry
            return self.cell(inputs[0], inputs[1], state)

        hs, _ = tf.scan(step, (xs, ms), initializer=(tf.zeros((n_envs, self.nlstm)), states))
        return self._heads(tf.reshape(tf.transpose(hs, [1, 0, 2]), (-1, self.nlstm)))  # back to env-major rows

    def step(self, obs: tf.Tensor, masks: tf.Tensor, states: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
        """``call`` with T = 1 that also returns the next state ``[B, 2n]``: what an export serves. One
        cell call rather than a one-step ``tf.scan``, so the graph has no loop for ONNX or LiteRT to convert."""
        latent, next_states = self.cell(self._features(obs), tf.cast(masks, tf.float32), states)
        return (*self._heads(latent), next_states)


def build_recurrent_policy(observation_space: gym.Space, action_space: gym.Space, semantics,
                           network: NetworkConfig, policy: str, nlstm: int, seed: int) -> RecurrentActorCritic:
    """The ``lstm`` / ``lnlstm`` actor-critic (orthogonal init only, as both originals' recurrent nets)."""
    check_recurrent_fit(observation_space, semantics)
    return RecurrentActorCritic(observation_space, action_space, network=network, nlstm=nlstm,
                                layer_norm=policy == "lnlstm", seed=seed)


def _np_ln(x: np.ndarray, gain: np.ndarray, bias: np.ndarray) -> np.ndarray:
    mean = x.mean(axis=1, keepdims=True)
    return (x - mean) / np.sqrt(x.var(axis=1, keepdims=True) + LN_EPSILON) * gain + bias


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * x))  # overflow-free logistic


class NumpyRecurrentActor:
    """The model's step in float64 NumPy over a copy of the weights (refreshed by `sync`); a small-CNN
    trunk in float32, as `tfppo.core.acting.NumpyActor`'s."""

    is_recurrent = True

    def __init__(self, model: RecurrentActorCritic):
        self.model = model
        self.activation = _NP_ACTIVATIONS[model.network.activation]
        self.sync()

    def sync(self) -> None:
        """Copy the current Keras weights (call after every update)."""
        f64 = lambda v: v.numpy().astype(np.float64)
        m = self.model
        self.image_trunk = numpy_image_trunk(m.trunk) if m.is_image else None
        self.trunk = [] if m.is_image else [(f64(layer.kernel), f64(layer.bias)) for layer in m.trunk]
        cell = m.cell
        self.cell = {name: f64(getattr(cell, name)) for name in
                     (("wx", "wh", "b", "gx", "bx", "gh", "bh", "gc", "bc") if m.layer_norm else ("wx", "wh", "b"))}
        self.pi_head = (f64(m.pi_head.kernel), f64(m.pi_head.bias))
        self.vf_head = (f64(m.vf_head.kernel), f64(m.vf_head.bias))
        self.log_std = f64(m.log_std) if m.dist.uses_log_std else None

    def step(self, obs: np.ndarray, masks: np.ndarray, state: np.ndarray
             ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(pd_params float32, value float32, next state float64) of one step of every env."""
        if self.image_trunk is not None:
            x = numpy_image_input(obs, self.model.observation_space)
            for trunk_step in self.image_trunk:
                x = trunk_step(x)
        else:
            x = np.asarray(obs, dtype=np.float64).reshape(len(obs), -1)
        for kernel, bias in self.trunk:
            x = self.activation(x @ kernel + bias)
        w = self.cell
        c, h = np.split(state * (1.0 - np.asarray(masks, dtype=np.float64))[:, None], 2, axis=1)
        if self.model.layer_norm:
            z = _np_ln(x @ w["wx"], w["gx"], w["bx"]) + _np_ln(h @ w["wh"], w["gh"], w["bh"]) + w["b"]
        else:
            z = x @ w["wx"] + h @ w["wh"] + w["b"]
        i, f, o, u = np.split(z, 4, axis=1)
        c = _sigmoid(f) * c + _sigmoid(i) * np.tanh(u)
        h = _sigmoid(o) * np.tanh(_np_ln(c, w["gc"], w["bc"]) if self.model.layer_norm else c)
        params = h @ self.pi_head[0] + self.pi_head[1]
        if self.log_std is not None:
            params = np.concatenate([params, np.broadcast_to(self.log_std, params.shape)], axis=-1)
        value = (h @ self.vf_head[0] + self.vf_head[1])[:, 0]
        return params.astype(np.float32), value.astype(np.float32), np.concatenate([c, h], axis=1)


class CompiledRecurrentActor:
    """The model's own `RecurrentActorCritic.step` as one tf.function per batch of envs: what the Nature
    CNN trunk acts with, whose convolutions cost more than the TF call (as `tfppo.core.acting.CompiledActor`
    for the feed-forward policy)."""

    is_recurrent = True

    def __init__(self, model: RecurrentActorCritic):
        self.model = model
        self._step = tf.function(model.step, reduce_retracing=True)

    def sync(self) -> None:
        """Nothing to copy: the function reads the Keras variables themselves."""

    def step(self, obs: np.ndarray, masks: np.ndarray, state: np.ndarray
             ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        params, value, state = self._step(tf.convert_to_tensor(obs), tf.constant(masks, tf.float32),
                                          tf.constant(state, tf.float32))
        return params.numpy(), value.numpy(), state.numpy().astype(np.float64)


def make_recurrent_actor(model: RecurrentActorCritic) -> NumpyRecurrentActor | CompiledRecurrentActor:
    """NumPy for the MLP and small-CNN trunks (no TF call per env step), the compiled step for the Nature CNN."""
    return NumpyRecurrentActor(model) if acts_in_numpy(model) else CompiledRecurrentActor(model)


class RecurrentState:
    """One LSTM state per env carried across steps: the `tfppo.core.acting.Actor` the runner and
    ``predict`` use. ``begin_step(dones)`` records the mask of the coming step (Baselines' ``M``: the
    previous step's dones); ``forward`` reads the state without moving it (values, as [B]
    ``model.value``); ``advance`` commits the step ``forward`` computed (after an action was taken)."""

    is_recurrent = True

    def __init__(self, actor: NumpyRecurrentActor | CompiledRecurrentActor, n_envs: int):
        self.actor = actor
        self.reset(n_envs)

    def reset(self, n_envs: int) -> None:
        """Zero state, no pending step: a new run, a restart at a checkpoint boundary, a loaded agent."""
        self.state = np.zeros((n_envs, self.actor.model.state_size))
        self.masks = np.zeros(n_envs)
        self._next: np.ndarray | None = None

    def sync(self) -> None:
        self.actor.sync()

    def begin_step(self, dones: np.ndarray) -> None:
        self.masks = np.asarray(dones, dtype=np.float64)

    def forward(self, obs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        params, value, self._next = self.actor.step(obs, self.masks, self.state)
        return params, value

    def advance(self) -> None:
        self.state, self.masks, self._next = self._next, np.zeros_like(self.masks), None
