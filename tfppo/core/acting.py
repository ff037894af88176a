"""The acting path: policy outputs for a batch of env observations, no eager call per step.

For the small MLPs of PPO a TF call costs far more than the arithmetic (eager
Keras ≈ 2.9 ms, tf.function ≈ 0.46 ms, NumPy ≈ 9 µs per call on this class of
machine), so MLP policies and MinAtar's small CNN act through `NumpyActor`, a
NumPy forward pass over the same Keras weights, refreshed once per iteration
after the update.  The Nature CNN acts through `CompiledActor`, one tf.function
per batch of envs (`acts_in_numpy` says why).  Both sample with the same seeded
NumPy generator, so the two paths give the same actions; a test holds them equal.
"""
from __future__ import annotations

from typing import Callable, Protocol, Sequence

import gymnasium as gym
import keras
import numpy as np
import tensorflow as tf
from numpy.lib.stride_tricks import sliding_window_view

from tfppo.core.policy import POLICY_OBS_CLIP, ActorCritic
from tfppo.envs.spaces import image_trunk, pixel_scale

# In place (``out=x``): the rollout's forward pass is a few dozen NumPy calls on [N, 64] arrays, where each
# temporary's allocation costs about as much as its arithmetic.
_NP_ACTIVATIONS = {"tanh": lambda x: np.tanh(x, out=x), "relu": lambda x: np.maximum(x, 0.0, out=x)}


def acts_in_numpy(model) -> bool:
    """Whether a policy acts through NumPy: MLPs and MinAtar's small CNN, not the Nature CNN. Why: for 8
    envs the small CNN is ≈ 1.3M multiply-adds (0.11 ms in float32 NumPy on the project's machine), less
    than one TF call costs (≈ 0.45 ms for a tf.function that does nothing, on the same loaded machine);
    the Nature CNN's ≈ 70M (2.8 ms in NumPy, 3.4 ms through TF on one core) are work for TF's kernels, its
    intra-op threads and a GPU."""
    return not model.is_image or image_trunk(model.observation_space) != "nature"


def _conv_relu(x: np.ndarray, kernel: np.ndarray, bias: np.ndarray, stride: int) -> np.ndarray:
    """Keras ``Conv2D(padding="valid", activation="relu")`` on NHWC ``x``: every output position's window
    (a strided view) laid out as ``[kh, kw, C]`` in one copy and multiplied by the kernel reshaped to
    ``[kh·kw·C, F]``; half the time of ``np.tensordot`` over the view (32 against 62 µs for MinAtar's
    conv on 8 envs)."""
    kh, kw, channels, filters = kernel.shape
    windows = sliding_window_view(x, (kh, kw), axis=(1, 2))[:, ::stride, ::stride]  # [N, Ho, Wo, C, kh, kw]
    n, ho, wo = windows.shape[:3]
    columns = windows.transpose(0, 1, 2, 4, 5, 3).reshape(n, ho, wo, kh * kw * channels)
    out = columns @ kernel.reshape(kh * kw * channels, filters)
    out += bias
    return np.maximum(out, 0.0, out=out)


def numpy_image_trunk(layers: Sequence[keras.layers.Layer]) -> list[Callable[[np.ndarray], np.ndarray]]:
    """The image trunk (`tfppo.core.policy.image_trunk_layers`: VALID ReLU convs, flatten, fc ReLU) as
    NumPy steps over a float32 copy of its weights: float32 as the TF graph computes it, since a conv's
    arithmetic is a hundred times an MLP's and float64 would double it."""
    steps: list[Callable[[np.ndarray], np.ndarray]] = []
    for layer in layers:
        config = layer.get_config()
        if isinstance(layer, keras.layers.Flatten):
            steps.append(lambda x: x.reshape(len(x), -1))  # NHWC row-major: Keras' channels_last Flatten
            continue
        kernel, bias = layer.kernel.numpy(), layer.bias.numpy()
        if config.get("activation") != "relu":
            raise ValueError(f"image trunk layer {layer.name}: activation {config.get('activation')}, not relu")
        if isinstance(layer, keras.layers.Conv2D):
            if config["padding"] != "valid" or tuple(config["dilation_rate"]) != (1, 1) \
                    or len(set(config["strides"])) != 1 or config["data_format"] != "channels_last":
                raise ValueError(f"image trunk layer {layer.name}: only square-strided VALID NHWC convs act in NumPy")
            steps.append(lambda x, k=kernel, b=bias, s=config["strides"][0]: _conv_relu(x, k, b, s))
        elif isinstance(layer, keras.layers.Dense):
            steps.append(lambda x, k=kernel, b=bias: np.maximum(x @ k + b, 0.0))
        else:
            raise ValueError(f"image trunk layer {layer.name}: {type(layer).__name__} has no NumPy form")
    return steps


def numpy_image_input(obs: np.ndarray, space: gym.spaces.Box) -> np.ndarray:
    """The float32 image the trunk reads: /255 for uint8 pixels, bool channels as 0/1 (as ``preprocess``)."""
    return np.asarray(obs, dtype=np.float32) / np.float32(pixel_scale(space))


class Actor(Protocol):
    def sync(self) -> None: ...
    def forward(self, obs: np.ndarray) -> tuple[np.ndarray, np.ndarray]: ...


class NumpyActor:
    """NumPy forward pass of an MLP or small-CNN `ActorCritic` (towers and heads in float64, the CNN
    trunk in float32; float32 out)."""

    def __init__(self, model: ActorCritic):
        if not acts_in_numpy(model):
            raise ValueError("NumpyActor supports MLP policies and the small CNN; the Nature CNN acts through "
                             "CompiledActor")
        self.model = model
        self.activation = _NP_ACTIVATIONS[model.network.activation]
        self.sync()

    def sync(self) -> None:
        """Copy the current Keras weights (call after every update)."""
        dense = lambda layer: (layer.kernel.numpy().astype(np.float64), layer.bias.numpy().astype(np.float64))
        m = self.model
        self.trunk = numpy_image_trunk(m.trunk)  # [] for an MLP
        self.pi_layers = [dense(layer) for layer in m.pi_layers]
        self.vf_layers = [dense(layer) for layer in m.vf_layers]
        self.pi_head = dense(m.pi_head) if m.pi_head is not None else None  # None: [B] _matching_fc
        self.vf_head = dense(m.vf_head)
        self.log_std = m.log_std.numpy().astype(np.float64) if m.dist.uses_log_std else None
        self.obs_norm = (m.obs_mean.numpy().astype(np.float64), m.obs_std.numpy().astype(np.float64)) \
            if m.policy_obs_norm else None

    def _input(self, obs: np.ndarray) -> np.ndarray:
        space = self.model.observation_space
        if isinstance(space, gym.spaces.Discrete):
            return np.eye(space.n)[np.asarray(obs, dtype=np.int64)]
        if self.model.is_image:
            return numpy_image_input(obs, space)
        x = np.asarray(obs, dtype=np.float64).reshape(len(obs), -1)
        if self.obs_norm is not None:
            mean, std = self.obs_norm
            x = np.clip((x - mean) / std, -POLICY_OBS_CLIP, POLICY_OBS_CLIP)
        return x

    def _tower(self, x: np.ndarray, layers) -> np.ndarray:
        for kernel, bias in layers:
            x = x @ kernel
            x += bias  # the same sum as ``x @ kernel + bias``, without a second temporary
            self.activation(x)
        return x

    def forward(self, obs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        x = self._input(obs)
        for step in self.trunk:
            x = step(x)
        pi = self._tower(x, self.pi_layers)
        vf = pi if self.model.shared_towers else self._tower(x, self.vf_layers)
        params = pi if self.pi_head is None else pi @ self.pi_head[0] + self.pi_head[1]
        if self.log_std is not None:
            params = np.concatenate([params, np.broadcast_to(self.log_std, params.shape)], axis=-1)
        value = (vf @ self.vf_head[0] + self.vf_head[1])[:, 0]
        return params.astype(np.float32), value.astype(np.float32)


class CompiledActor:
    """One compiled forward per batch of envs (any policy; what the Nature CNN acts with)."""

    def __init__(self, model: ActorCritic):
        self.model = model
        self._forward = tf.function(model.call, reduce_retracing=True)

    def sync(self) -> None:
        """Nothing to copy: the compiled function reads the live variables."""

    def forward(self, obs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        params, value = self._forward(tf.convert_to_tensor(obs))
        return params.numpy(), value.numpy()


def make_actor(model: ActorCritic) -> Actor:
    """NumPy for MLPs and the small CNN (no TF call per env step), compiled TF for the Nature CNN."""
    return NumpyActor(model) if acts_in_numpy(model) else CompiledActor(model)


class PerRowGenerators:
    """Duck-typed ``np.random.Generator``: row *i* of every draw comes from generator *i*.

    Per-env streams make env *i* of a PPO2 process and MPI rank *i* of PPO1 draw the
    same actions from the same observations (matched seeds, `tfppo.config.seeding`), while the
    distribution maths stays vectorised: only the raw noise is drawn row by row.
    """

    def __init__(self, generators: Sequence[np.random.Generator]):
        self.generators = list(generators)
        self._block: np.ndarray | None = None  # prefetched draws [rows, n] of one method, served in order
        self._block_method = ""
        self._served = 0

    def prefetch(self, method: str, per_row: int) -> None:
        """Draw the next ``per_row`` values of ``method`` from every generator now, one call each, and serve
        the following draws of that method from them. Why: a rollout step made one Generator call per env
        (≈ 1.5 µs each, an eighth of a CartPole env step); a whole rollout's noise in one call per env is the
        same stream — each method draws value by value, so ``gumbel(size=(T, n))`` gives the values of T
        calls of ``size=(n,)`` — and leaves each generator where the T calls would. The caller asks for
        exactly what it will use: values still held when another method is drawn would reorder the stream."""
        if self.remaining:
            raise RuntimeError(f"{self.remaining} prefetched {self._block_method} values per row are still unused")
        self._block = np.stack([getattr(g, method)(size=per_row) for g in self.generators])
        self._block_method, self._served = method, 0

    @property
    def remaining(self) -> int:
        """Prefetched values per row not yet served."""
        return 0 if self._block is None else self._block.shape[1] - self._served

    def _rows(self, method: str, size: tuple[int, ...]) -> np.ndarray:
        if self.remaining:
            return self._from_block(method, size)
        if len(self.generators) == 1:  # one env (PPO1, a PPO2 with num_envs=1): skip the stack, same draws
            return getattr(self.generators[0], method)(size=size[1:])[None]
        rows = np.empty(size)  # filled row by row: the same draws as np.stack, without its per-call set-up
        for row, generator in zip(rows, self.generators):
            row[...] = getattr(generator, method)(size=size[1:])
        return rows

    def _from_block(self, method: str, size: tuple[int, ...]) -> np.ndarray:
        count = int(np.prod(size[1:], dtype=np.int64))
        if method != self._block_method or count > self.remaining:
            raise RuntimeError(f"a draw of {count} {method} values per row does not fit the {self.remaining} "
                               f"prefetched {self._block_method} values")
        start, self._served = self._served, self._served + count
        return self._block[:, start:self._served].reshape(size)

    def gumbel(self, size):
        return self._rows("gumbel", tuple(size))

    def standard_normal(self, size):
        return self._rows("standard_normal", tuple(size))

    def random(self, size):
        return self._rows("random", tuple(size))


def act(actor: Actor, dist, obs: np.ndarray, rng: np.random.Generator | PerRowGenerators,
        deterministic: bool = False) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Sample (or take the mode of) actions: returns (actions, values, neglogp)."""
    params, values = actor.forward(obs)
    actions, neglogp = dist.mode_numpy(params) if deterministic else dist.sample_numpy(params, rng)
    return actions, values, neglogp.astype(np.float32, copy=False)
