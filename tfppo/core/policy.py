"""The one Keras actor-critic under both trainers (spec §5.1-5.3, rows 13-16).

MLP towers of configurable width and activation, shared ([B] ppo2 default) or
separate ([SB] MlpPolicy, [B] ``value_network='copy'``, PPO1); orthogonal
(√2 hidden, 0.01 policy head, 1.0 value head, zero biases) or normc init; a
state-independent Gaussian log-std initialised to 0; a shared CNN trunk for
image observations (3-d uint8 or bool Boxes): the Nature CNN for Atari-sized
frames, MinAtar's small CNN for 10×10 ones, uint8 pixels /255 and bool
channels as 0/1 (`tfppo.envs.spaces.image_trunk`); optionally [B] PPO1's in-graph
observation normalisation (clip ±5, statistics pushed in by the trainer).

The model maps observations to ``(pd_params, value)``: flat distribution
parameters as `tfppo.core.distributions` expects them, and V(s) of shape [B].
"""
from __future__ import annotations

import math
from collections.abc import Iterator

import gymnasium as gym
import keras
import numpy as np
import tensorflow as tf

from tfppo.config.hyperparameters import NetworkConfig
from tfppo.core.distributions import ActionDistribution, make_distribution
from tfppo.envs.spaces import image_trunk, is_image_space, pixel_scale
from tfppo.core.switch_scope import NATURE_CNN_LATENT, SMALL_CNN_LATENT, tower_output_size

POLICY_OBS_CLIP = 5.0  # [B] MlpPolicy: obz = clip((ob − μ)/σ, −5, 5) (spec §5.1)


@keras.saving.register_keras_serializable(package="tfppo")
class Normc(keras.initializers.Initializer):
    """[B] ``normc_initializer``: Gaussian, then every output column scaled to L2 norm ``std`` (spec §5.1)."""

    def __init__(self, std: float = 1.0, seed: int | None = None):
        self.std = std
        self.seed = seed

    def __call__(self, shape, dtype=None):
        rng = np.random.default_rng(self.seed)
        out = rng.standard_normal(shape)
        out *= self.std / np.sqrt(np.square(out).sum(axis=0, keepdims=True))
        return tf.constant(out, dtype=dtype or "float32")

    def get_config(self) -> dict:
        return {"std": self.std, "seed": self.seed}


def image_trunk_layers(space: gym.spaces.Box, conv_init, dense_fc) -> list[keras.layers.Layer]:
    """Nature-CNN trunk (spec §5.3): 32/8/4, 64/4/2, 64/3/1 VALID + fc 512, ReLU. Inputs smaller than the
    Nature CNN reads (MinAtar's 10×10) take MinAtar's network instead: one conv 16/3/1 VALID + fc 128, ReLU
    (Young & Tian 2019). ``conv_init()`` gives each conv's kernel initializer and ``dense_fc(units)`` the fc
    layer, so each policy keeps its own init rules ([B] PPO1's CnnPolicy: Glorot-uniform convs, normc fc;
    ppo2 and the recurrent ``cnn_lstm``: orthogonal √2)."""
    if image_trunk(space) == "nature":
        conv, latent = [(32, 8, 4), (64, 4, 2), (64, 3, 1)], NATURE_CNN_LATENT
    else:
        conv, latent = [(16, 3, 1)], SMALL_CNN_LATENT
    layers: list[keras.layers.Layer] = [
        keras.layers.Conv2D(f, k, strides=s, padding="valid", activation="relu", kernel_initializer=conv_init(),
                            name=f"c{i}")
        for i, (f, k, s) in enumerate(conv)
    ]
    return [*layers, keras.layers.Flatten(), dense_fc(latent)]


def layer_seeds(seed: int) -> Iterator[int]:
    """One initializer seed per layer, drawn in construction order from the run's weight seed: the same
    seed builds the same weights, and two seeds never share a layer's draw (999 layers at most)."""
    return iter(range(seed * 1000 + 1, seed * 1000 + 1000))


def observation_size(space: gym.Space) -> int:
    """Width of the flat MLP input: one-hot for Discrete, flattened Box otherwise."""
    if isinstance(space, gym.spaces.Discrete):
        return int(space.n)
    return int(np.prod(space.shape))


class ActorCritic(keras.Model):
    """Actor-critic with ``call(obs) -> (pd_params [B, P], value [B])``."""

    def __init__(
        self,
        observation_space: gym.Space,
        action_space: gym.Space,
        *,
        network: NetworkConfig = NetworkConfig(),
        shared_towers: bool = False,
        init: str = "orthogonal",
        policy_obs_norm: bool = False,
        matching_fc: bool = False,
        seed: int = 0,
    ):
        super().__init__()
        self.observation_space = observation_space
        self.action_space = action_space
        self.dist: ActionDistribution = make_distribution(action_space)
        self.network = network
        self.shared_towers = shared_towers
        self.init_kind = init
        self.is_image = is_image_space(observation_space)
        self.policy_obs_norm = policy_obs_norm and not self.is_image
        self._seeds = layer_seeds(seed)

        self.trunk = self._image_trunk() if self.is_image else []
        hidden = () if self.is_image else network.hidden_sizes
        self.pi_layers = [self._dense(h, math.sqrt(2), network.activation, f"pi_fc{i}") for i, h in enumerate(hidden)]
        self.vf_layers = [] if shared_towers or self.is_image else [
            self._dense(h, math.sqrt(2), network.activation, f"vf_fc{i}") for i, h in enumerate(hidden)
        ]
        latent_size = tower_output_size(observation_space, network)
        # [B] _matching_fc (spec §5.3): a latent already of the parameters' size is used as they are
        self.pi_head = None if matching_fc and latent_size == self.dist.head_size else \
            self._dense(self.dist.head_size, 0.01, None, "pi")
        self.vf_head = self._dense(1, 1.0, None, "vf")
        in_size = observation_size(observation_space)
        if self.dist.uses_log_std:
            self.log_std = self.add_weight(
                name="logstd", shape=(1, self.dist.head_size), initializer="zeros", trainable=True)
        if self.policy_obs_norm:
            self.obs_mean = self.add_weight(name="obs_mean", shape=(in_size,), initializer="zeros", trainable=False)
            self.obs_std = self.add_weight(name="obs_std", shape=(in_size,), initializer="ones", trainable=False)
        dummy = np.zeros((1, *observation_space.shape), dtype=observation_space.dtype) \
            if not isinstance(observation_space, gym.spaces.Discrete) else np.zeros((1,), np.int64)
        self(tf.constant(dummy))  # build all weights now, deterministically

    # -- construction helpers -------------------------------------------------
    def _kernel_init(self, gain: float):
        """Orthogonal(gain); under normc the same layer gets [B] PPO1's column norm (spec §5.1):
        1.0 for hidden layers (gain √2) and the value head (gain 1), 0.01 for the policy head."""
        seed = next(self._seeds)
        if self.init_kind == "normc":
            return Normc(min(gain, 1.0), seed=seed)
        return keras.initializers.Orthogonal(gain=gain, seed=seed)

    def _dense(self, units: int, gain: float, activation, name: str) -> keras.layers.Dense:
        return keras.layers.Dense(units, activation=activation, kernel_initializer=self._kernel_init(gain),
                                  bias_initializer="zeros", name=name)

    def _conv_init(self):
        """Orthogonal √2 ([B]/[SB] ppo2 Nature CNN); under normc, [B] PPO1's CnnPolicy ``U.conv2d``: uniform
        ±√(6/(fan_in + fan_out)) with fan_in = kh·kw·in, fan_out = kh·kw·out — Glorot-uniform (spec §5.1)."""
        if self.init_kind == "normc":
            return keras.initializers.GlorotUniform(seed=next(self._seeds))
        return self._kernel_init(math.sqrt(2))

    def _image_trunk(self) -> list[keras.layers.Layer]:
        """The CNN trunk (`image_trunk_layers`) with this policy's init rules."""
        return image_trunk_layers(self.observation_space, self._conv_init,
                                  lambda units: self._dense(units, math.sqrt(2), "relu", "fc"))

    # -- forward ----------------------------------------------------------------
    def preprocess(self, obs: tf.Tensor) -> tf.Tensor:
        """Observation -> float input: one-hot (Discrete), /255 (uint8 images; bool ones as 0/1), flatten,
        optional obs norm."""
        if isinstance(self.observation_space, gym.spaces.Discrete):
            return tf.one_hot(tf.cast(obs, tf.int32), self.observation_space.n)
        x = tf.cast(obs, tf.float32)
        if self.is_image:
            return x / pixel_scale(self.observation_space)
        x = tf.reshape(x, (-1, observation_size(self.observation_space)))
        if self.policy_obs_norm:
            x = tf.clip_by_value((x - self.obs_mean) / self.obs_std, -POLICY_OBS_CLIP, POLICY_OBS_CLIP)
        return x

    def call(self, obs: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        x = self.preprocess(obs)
        for layer in self.trunk:
            x = layer(x)
        pi = x
        for layer in self.pi_layers:
            pi = layer(pi)
        vf = pi if self.shared_towers or self.is_image else x
        for layer in self.vf_layers:
            vf = layer(vf)
        head = pi if self.pi_head is None else self.pi_head(pi)
        if self.dist.uses_log_std:
            head = tf.concat([head, head * 0.0 + self.log_std], axis=-1)  # [mean, mean·0 + logstd] (spec §5.1)
        return head, tf.squeeze(self.vf_head(vf), axis=-1)


def build_policy(observation_space: gym.Space, action_space: gym.Space, semantics, network: NetworkConfig,
                 seed: int) -> ActorCritic:
    """The actor-critic a `Semantics` record asks for (rows 13, 14, 16; ``matching_fc`` spec §5.3)."""
    return ActorCritic(
        observation_space, action_space, network=network, shared_towers=semantics.shared_towers,
        init=semantics.init, policy_obs_norm=semantics.obs_norm == "policy", matching_fc=semantics.matching_fc,
        seed=seed,
    )
