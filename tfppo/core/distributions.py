"""Action distributions over flat parameter tensors (spec §5.5).

The policy network emits one flat float32 tensor per observation; this module
decides how that tensor is read as a distribution for the action space, the
way Baselines' ``common/distributions.py`` does:

* ``Box((d,))``         -> diagonal Gaussian, params ``concat([mean, logstd])``
  (``[B, 2d]``). The log-std half is state-independent and owned by the policy
  (``uses_log_std``); samples are never squashed or clipped here.
* ``Discrete(n)``       -> categorical over logits ``[B, n]``.
* ``MultiDiscrete(nvec)`` -> independent categoricals over concatenated logits
  ``[B, sum(nvec)]``; log-prob, entropy and KL are sums over dimensions.
* ``MultiBinary(n)``    -> independent Bernoullis over logits ``[B, n]``.

The TF methods go through real ``tfp.distributions`` objects built from
logits (never probabilities) so they are differentiable and stable inside
``tf.function``. The ``*_numpy`` twins exist because the acting path runs the
small MLP forward pass in NumPy (~50x cheaper than a TF call); they reproduce
the same maths in float64 and return float32 neglogp that agrees with the TF
versions.
"""

from __future__ import annotations

import math

import gymnasium
import numpy as np
import tensorflow as tf
import tensorflow_probability as tfp

from tfppo.util.errors import ConfigError

tfd = tfp.distributions

_SUPPORTED = "supported: Discrete, Box (1-d), MultiDiscrete, MultiBinary (1-d)"


def _unsupported(space: gymnasium.spaces.Space, why: str = "") -> ConfigError:
    """One-line ConfigError naming the space and the supported kinds."""
    detail = f" ({why})" if why else ""
    shown = " ".join(repr(space).split())  # multi-dim reprs span lines; the message must not
    return ConfigError(f"unsupported action space {shown}{detail}; {_SUPPORTED}")


def _tf_seed(seed: tf.Tensor) -> tf.Tensor:
    """Derive the int32 ``[2]`` seed TFP's stateless samplers require.

    TFP rejects int64 seeds and a plain cast would make seeds that differ only
    above bit 31 collide, so the seed is hashed through a stateless op (which
    accepts both int32 and int64) into a fresh int32 pair.
    """
    return tf.random.stateless_uniform(
        [2], seed=seed, minval=None, maxval=None, dtype=tf.int32
    )


def _as_params(params: tf.Tensor) -> tf.Tensor:
    return tf.convert_to_tensor(params, dtype_hint=tf.float32)


# --- shared categorical helpers (Discrete and MultiDiscrete) -----------------


def _categorical(logits: tf.Tensor) -> tfd.Categorical:
    """Categorical on logits; int64 samples so actions match ``action_dtype``."""
    return tfd.Categorical(logits=logits, dtype=tf.int64)


def _log_softmax_np(logits: np.ndarray) -> np.ndarray:
    """Stable float64 log-softmax over the last axis."""
    z = np.asarray(logits, dtype=np.float64)
    z = z - z.max(axis=-1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=-1, keepdims=True))


def _categorical_neglogp_np(logits: np.ndarray, actions: np.ndarray) -> np.ndarray:
    """``-log softmax(logits)[a]`` per row, float64 ``[B]``."""
    logp = _log_softmax_np(logits)
    idx = np.asarray(actions, dtype=np.int64)
    # plain integer indexing: the same element as take_along_axis, without its per-call set-up cost
    return -logp.reshape(-1, logp.shape[-1])[np.arange(idx.size), idx.reshape(-1)].reshape(idx.shape)


def _categorical_sample_np(logits: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Gumbel-max sampling: ``argmax(logits + Gumbel noise)`` is exact softmax sampling."""
    noise = rng.gumbel(size=np.shape(logits))
    return np.argmax(np.asarray(logits, np.float64) + noise, axis=-1).astype(np.int64)


def _categorical_mode_np(logits: np.ndarray) -> np.ndarray:
    return np.argmax(logits, axis=-1).astype(np.int64)


# --- base class ---------------------------------------------------------------


class ActionDistribution:
    """Reads a flat ``[B, param_size]`` tensor as a batch of action distributions.

    Subclasses set the shape attributes and implement ``tfp`` plus the NumPy
    twins; neglogp/entropy/kl/sample/mode are derived from the TFP object so
    every space shares one code path for the learner's maths.
    """

    param_size: int
    head_size: int
    uses_log_std: bool = False
    action_shape: tuple[int, ...]
    action_dtype: np.dtype
    # The np.random.Generator method ``sample_numpy`` draws its noise with; it draws ``head_size`` values per
    # row, in order (several calls for MultiDiscrete, one per part). The rollout draws a whole iteration's
    # noise ahead in one call per env from this (`tfppo.core.acting.PerRowGenerators.prefetch`).
    noise_method: str

    def tfp(self, params: tf.Tensor) -> tfd.Distribution:
        """TFP distribution with batch shape ``[B]`` and one event per row."""
        raise NotImplementedError

    def _tf_actions(self, actions: tf.Tensor) -> tf.Tensor:
        """Cast actions to what ``log_prob`` of ``tfp()`` expects."""
        return tf.cast(actions, tf.int64)

    def neglogp(self, params: tf.Tensor, actions: tf.Tensor) -> tf.Tensor:
        """``-log p(actions)``, ``[B]`` float32, differentiable w.r.t. params."""
        return -self.tfp(_as_params(params)).log_prob(self._tf_actions(actions))

    def entropy(self, params: tf.Tensor) -> tf.Tensor:
        """Exact entropy per row, ``[B]``."""
        return self.tfp(_as_params(params)).entropy()

    def kl(self, params_p: tf.Tensor, params_q: tf.Tensor) -> tf.Tensor:
        """Exact closed-form ``KL(p || q)`` per row, ``[B]`` (PPO1's KL logging/penalty)."""
        return tfd.kl_divergence(
            self.tfp(_as_params(params_p)), self.tfp(_as_params(params_q))
        )

    def sample(self, params: tf.Tensor, seed: tf.Tensor) -> tf.Tensor:
        """Stateless sample: the same ``seed`` (shape ``[2]``) gives the same actions."""
        return self.tfp(_as_params(params)).sample(seed=_tf_seed(seed))

    def mode(self, params: tf.Tensor) -> tf.Tensor:
        """Most likely action (deterministic evaluation)."""
        return self.tfp(_as_params(params)).mode()

    def neglogp_numpy(self, params: np.ndarray, actions: np.ndarray) -> np.ndarray:
        """NumPy twin of ``neglogp``; float32 ``[B]``."""
        return self._neglogp_np(np.asarray(params, np.float64), actions).astype(np.float32)

    def sample_numpy(
        self, params: np.ndarray, rng: np.random.Generator
    ) -> tuple[np.ndarray, np.ndarray]:
        """Sample with a seeded Generator; returns ``(actions, neglogp float32 [B])``. Called once per env
        step: the float64 parameters are converted once for both, and no array is copied to the dtype it has."""
        params64 = np.asarray(params, np.float64)
        actions = self._sample_np(params64, rng).astype(self.action_dtype, copy=False)
        return actions, self._neglogp_np(params64, actions).astype(np.float32)

    def mode_numpy(self, params: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Mode actions and their neglogp (float32 ``[B]``)."""
        actions = self._mode_np(np.asarray(params, np.float64)).astype(self.action_dtype)
        return actions, self.neglogp_numpy(params, actions)

    def _neglogp_np(self, params: np.ndarray, actions: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def _sample_np(self, params: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        raise NotImplementedError

    def _mode_np(self, params: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}(param_size={self.param_size}, action_shape={self.action_shape})"


# --- per-space subclasses -----------------------------------------------------


class DiagGaussian(ActionDistribution):
    """Box((d,)): params ``[mean | logstd]``, logstd a policy-owned variable (spec §5.5).

    The head only predicts the mean (``head_size = d``); the policy appends a
    state-independent ``logstd`` so ``param_size = 2d``. Unbounded: the
    environment wrapper/runner decides about clipping, as in Baselines.
    """

    uses_log_std = True
    action_dtype = np.dtype(np.float32)

    noise_method = "standard_normal"

    def __init__(self, dim: int) -> None:
        self.dim = dim
        self.head_size = dim
        self.param_size = 2 * dim
        self.action_shape = (dim,)

    def _split(self, params: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        return params[..., : self.dim], params[..., self.dim :]

    def tfp(self, params: tf.Tensor) -> tfd.Distribution:
        mean, logstd = self._split(_as_params(params))
        # Independent(Normal) gives the Σ-over-dims log-prob/entropy/KL of the spec formulas.
        return tfd.Independent(tfd.Normal(loc=mean, scale=tf.exp(logstd)), 1)

    def _tf_actions(self, actions: tf.Tensor) -> tf.Tensor:
        return tf.cast(actions, tf.float32)

    def _neglogp_np(self, params: np.ndarray, actions: np.ndarray) -> np.ndarray:
        mean, logstd = params[..., : self.dim], params[..., self.dim :]
        z = (np.asarray(actions, np.float64) - mean) / np.exp(logstd)
        return (
            0.5 * np.sum(z * z, axis=-1)
            + 0.5 * math.log(2.0 * math.pi) * self.dim
            + np.sum(logstd, axis=-1)
        )

    def _sample_np(self, params: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        mean, logstd = params[..., : self.dim], params[..., self.dim :]
        return mean + np.exp(logstd) * rng.standard_normal(mean.shape)

    def _mode_np(self, params: np.ndarray) -> np.ndarray:
        return params[..., : self.dim]


class CategoricalDist(ActionDistribution):
    """Discrete(n): params are logits ``[B, n]``, actions int64 ``[B]``."""

    action_dtype = np.dtype(np.int64)
    action_shape = ()

    noise_method = "gumbel"

    def __init__(self, n: int) -> None:
        self.n = n
        self.param_size = self.head_size = n

    def tfp(self, params: tf.Tensor) -> tfd.Distribution:
        return _categorical(_as_params(params))

    def _neglogp_np(self, params: np.ndarray, actions: np.ndarray) -> np.ndarray:
        return _categorical_neglogp_np(params, actions)

    def _sample_np(self, params: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        return _categorical_sample_np(params, rng)

    def _mode_np(self, params: np.ndarray) -> np.ndarray:
        return _categorical_mode_np(params)


class MultiCategoricalDist(ActionDistribution):
    """MultiDiscrete(nvec): one categorical per dimension over split logits.

    ``tfp()`` is a ``tfd.Blockwise`` of categoricals, so log-prob, entropy and
    KL are the per-dimension sums Baselines computes (spec §5.5).
    """

    action_dtype = np.dtype(np.int64)

    noise_method = "gumbel"

    def __init__(self, nvec: list[int]) -> None:
        self.nvec = [int(n) for n in nvec]
        self.param_size = self.head_size = sum(self.nvec)
        self.action_shape = (len(self.nvec),)
        self._cuts = np.cumsum(self.nvec)[:-1]

    def _blocks(self, params: tf.Tensor) -> list[tf.Tensor]:
        return tf.split(params, self.nvec, axis=-1)

    def tfp(self, params: tf.Tensor) -> tfd.Distribution:
        return tfd.Blockwise([_categorical(b) for b in self._blocks(_as_params(params))])

    def mode(self, params: tf.Tensor) -> tf.Tensor:
        # Blockwise has no mode(); the joint mode of independent parts is the per-part argmax.
        blocks = self._blocks(_as_params(params))
        return tf.stack([tf.argmax(b, axis=-1, output_type=tf.int64) for b in blocks], axis=-1)

    def _neglogp_np(self, params: np.ndarray, actions: np.ndarray) -> np.ndarray:
        actions = np.asarray(actions)
        parts = np.split(params, self._cuts, axis=-1)
        return sum(_categorical_neglogp_np(p, actions[..., i]) for i, p in enumerate(parts))

    def _sample_np(self, params: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        parts = np.split(params, self._cuts, axis=-1)
        return np.stack([_categorical_sample_np(p, rng) for p in parts], axis=-1)

    def _mode_np(self, params: np.ndarray) -> np.ndarray:
        parts = np.split(params, self._cuts, axis=-1)
        return np.stack([_categorical_mode_np(p) for p in parts], axis=-1)


class BernoulliDist(ActionDistribution):
    """MultiBinary(n): independent Bernoullis on logits ``[B, n]``; sums over dims.

    Actions may be int or float 0/1 for ``neglogp``; samples and modes are int64.
    """

    action_dtype = np.dtype(np.int64)

    noise_method = "random"

    def __init__(self, n: int) -> None:
        self.n = n
        self.param_size = self.head_size = n
        self.action_shape = (n,)

    def tfp(self, params: tf.Tensor) -> tfd.Distribution:
        return tfd.Independent(tfd.Bernoulli(logits=_as_params(params), dtype=tf.int64), 1)

    def _neglogp_np(self, params: np.ndarray, actions: np.ndarray) -> np.ndarray:
        # -log p(x) = softplus(l) - x*l, with logaddexp for a stable softplus.
        x = np.asarray(actions, np.float64)
        return np.sum(np.logaddexp(0.0, params) - x * params, axis=-1)

    def _sample_np(self, params: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        p = 0.5 * (1.0 + np.tanh(0.5 * params))  # overflow-free sigmoid
        return (rng.random(params.shape) < p).astype(np.int64)

    def _mode_np(self, params: np.ndarray) -> np.ndarray:
        return (params > 0).astype(np.int64)  # ties (logit 0) -> 0, as tfp's Bernoulli.mode


# --- factory --------------------------------------------------------------------


def _check_start(space: gymnasium.spaces.Space) -> None:
    """Reject a nonzero ``start``: the distributions index actions from 0 (spec §5.5)."""
    if np.any(np.asarray(getattr(space, "start", 0)) != 0):
        raise _unsupported(space, "nonzero start; only start=0 is supported")


def make_distribution(space: gymnasium.spaces.Space) -> ActionDistribution:
    """Pick the distribution for an action space, or raise a one-line ConfigError."""
    spaces = gymnasium.spaces
    if isinstance(space, spaces.Box) and len(space.shape) == 1 and space.shape[0] > 0:
        return DiagGaussian(int(space.shape[0]))
    if isinstance(space, spaces.Discrete):
        _check_start(space)
        return CategoricalDist(int(space.n))
    if isinstance(space, spaces.MultiDiscrete) and space.nvec.ndim == 1 and space.nvec.size > 0:
        _check_start(space)
        return MultiCategoricalDist(space.nvec.tolist())
    if isinstance(space, spaces.MultiBinary) and len(space.shape) == 1 and space.shape[0] > 0:
        return BernoulliDist(int(space.shape[0]))
    raise _unsupported(space)
