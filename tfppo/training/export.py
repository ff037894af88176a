"""Policy export: a trained agent as a file that runs without tfppo (TensorFlow SavedModel, ONNX, LiteRT).

Why a graph of its own rather than the Keras model: what the env receives from ``agent.predict`` is more
than the network. PPO2's VecNormalize normalises observations outside the model (spec §5.4), the
distribution's mode turns parameters into actions, and Box actions are clipped to the bounds before the
env sees them (row 18, as the evaluation episodes do). The export folds all three into one function of the
RAW observation, with the normalisation statistics frozen as constants at export time; PPO1's observation
filter (spec §5.1) lives inside the policy and is saved with its current values.

A SavedModel holds two signatures: ``serving_default(observations) -> {"actions"}`` (deterministic, the
actions of ``agent.predict(obs, deterministic=True)`` after clipping) and
``sample(observations, seed) -> {"actions"}`` (stateless sampling: one int64 seed gives the same actions
every call). ``tfppo-export.json`` beside ``saved_model.pb`` names the env, so ``tfppo-evaluate`` can run it.
ONNX (tf2onnx) and LiteRT (TensorFlow's TFLite converter) hold the deterministic function only.
"""
from __future__ import annotations

import importlib.util
import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import tensorflow as tf

from tfppo.training.checkpoint import write_atomic_dir
from tfppo.training.export_files import EXPORT_META, EXPORT_META_FORMAT, check_format, read_export_meta
from tfppo.util.atomic import replacing
from tfppo.util.errors import ConfigError

SERVING_SIGNATURE = "serving_default"
SAMPLE_SIGNATURE = "sample"
ACTIONS_KEY = "actions"
ONNX_OPSET = 17
# what each optional format needs beyond TensorFlow: (module to find, the extra that installs it)
CONVERTERS = {"onnx": ("tf2onnx", "onnx")}


@dataclass(frozen=True)
class FrozenObsNorm:
    """VecNormalize's observation transform with its statistics fixed: ``clip((obs − μ)/√(σ² + ε), ±c)``."""

    mean: np.ndarray
    std: np.ndarray
    clip: float

    @classmethod
    def from_normalizer(cls, normalizer) -> "FrozenObsNorm | None":
        """The transform ``normalizer.normalize_obs(obs, update=False)`` applies now; None when it leaves
        observations alone (no VecNormalize, or reward normalisation only)."""
        if normalizer is None or not normalizer.norm_obs:
            return None
        std = np.sqrt(normalizer.obs_rms.var + normalizer.epsilon)  # float64, then float32 constants
        return cls(normalizer.obs_rms.mean.astype(np.float32), std.astype(np.float32), float(normalizer.clip_obs))


def observation_spec(space: gym.Space) -> tf.TensorSpec:
    """A batch of raw env observations: int64 indices for Discrete, the Box's own dtype and shape otherwise."""
    if isinstance(space, gym.spaces.Discrete):
        return tf.TensorSpec([None], tf.int64, name="observations")
    return tf.TensorSpec([None, *space.shape], tf.as_dtype(space.dtype), name="observations")


class PolicyModule(tf.Module):
    """The exported graph: raw observations → (frozen normalisation) → policy → mode or sample → env action.

    ``tf.saved_model.save`` writes the policy's variables (weights and PPO1's filter) with their values at
    export time. They are tracked as the TensorFlow variables under the Keras ones, as Keras' own
    ``ExportArchive`` does: tracked only through the Keras model, the SavedModel runs in TensorFlow but the
    TFLite converter reads the variables as uninitialised (NaN actions)."""

    def __init__(self, policy, obs_norm: FrozenObsNorm | None, clip_space: gym.spaces.Box | None):
        super().__init__()
        self.policy = policy
        self.policy_variables = [variable.value for variable in policy.variables]
        self._dist = policy.dist
        # NumPy, not tf.constant: arrays become constants inside each traced graph, where a tensor made
        # outside would be a captured input (tf2onnx turns captures into inputs the caller must feed)
        self._norm = None if obs_norm is None else (obs_norm.mean, obs_norm.std, obs_norm.clip)
        self._clip = None if clip_space is None else (np.nan_to_num(clip_space.low.astype(np.float32)),
                                                      np.nan_to_num(clip_space.high.astype(np.float32)),
                                                      tf.as_dtype(clip_space.dtype))
        spec = observation_spec(policy.observation_space)
        self.serving_default = tf.function(self._deterministic, input_signature=[spec])
        self.sample = tf.function(self._stochastic, input_signature=[spec, tf.TensorSpec([], tf.int64, name="seed")])

    def _params(self, observations: tf.Tensor) -> tf.Tensor:
        x = observations
        if self._norm is not None:
            mean, std, clip = self._norm
            x = tf.clip_by_value((tf.cast(x, tf.float32) - mean) / std, -clip, clip)
        params, _ = self.policy(x)
        return params

    def _env_actions(self, actions: tf.Tensor) -> dict[str, tf.Tensor]:
        """Row 18 as the evaluation episodes apply it: NaN → 0, clip to [low, high], the Box's dtype; else the
        distribution's action dtype (what ``predict`` returns)."""
        if self._clip is None:
            return {ACTIONS_KEY: tf.cast(actions, tf.as_dtype(self._dist.action_dtype))}
        low, high, dtype = self._clip
        actions = tf.cast(actions, tf.float32)
        actions = tf.where(tf.math.is_nan(actions), tf.zeros_like(actions), actions)
        return {ACTIONS_KEY: tf.cast(tf.clip_by_value(actions, low, high), dtype)}

    def _deterministic(self, observations: tf.Tensor) -> dict[str, tf.Tensor]:
        return self._env_actions(self._dist.mode(self._params(observations)))

    def _stochastic(self, observations: tf.Tensor, seed: tf.Tensor) -> dict[str, tf.Tensor]:
        pair = tf.stack([seed, tf.constant(0, tf.int64)])
        return self._env_actions(self._dist.sample(self._params(observations), pair))


def policy_module(agent) -> PolicyModule:
    """The export graph of ``agent`` as it is now."""
    clips = agent.semantics.clip_actions and isinstance(agent.action_space, gym.spaces.Box)
    return PolicyModule(agent.policy, FrozenObsNorm.from_normalizer(agent.normalizer),
                        agent.action_space if clips else None)


def export_meta(agent) -> dict[str, Any]:
    """What a reader of the export needs beyond the graph: the env to run it on and what was folded in."""
    env = agent.config.env
    return {
        "format": EXPORT_META_FORMAT,
        "algo": agent.algo,
        "env": env if isinstance(env, str) else None,
        "observation_space": str(agent.observation_space),
        "action_space": str(agent.action_space),
        "obs_norm": agent.semantics.obs_norm,
        "clip_actions": bool(agent.semantics.clip_actions),
        "num_timesteps": int(agent.num_timesteps),
        "signatures": {SERVING_SIGNATURE: "observations -> actions (mode)",
                       SAMPLE_SIGNATURE: "observations, seed (int64) -> actions (sampled)"},
    }


def _write_saved_model(module: PolicyModule, directory: Path, meta: dict[str, Any] | None) -> None:
    signatures = {SERVING_SIGNATURE: module.serving_default.get_concrete_function(),
                  SAMPLE_SIGNATURE: module.sample.get_concrete_function()}
    tf.saved_model.save(module, str(directory), signatures=signatures)
    if meta is not None:
        (directory / EXPORT_META).write_text(json.dumps(meta, indent=2, sort_keys=True))


def _require_converter(format: str) -> Any:
    module, extra = CONVERTERS[format]
    if importlib.util.find_spec(module) is None:
        raise ConfigError(f"export format {format} needs {module}: pip install tfppo[{extra}]")
    return importlib.import_module(module)


def _write_bytes(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with replacing(path) as tmp:
        Path(tmp).write_bytes(data)


def export_policy(agent, path: str | os.PathLike, format: str = "saved_model") -> Path:
    """Write ``agent``'s policy to ``path`` as ``format`` (one of `tfppo.training.export_files.EXPORT_FORMATS`); returns ``path``.

    A SavedModel directory is written atomically (a crash leaves the old one or none); ONNX and LiteRT
    are single files."""
    check_format(format)
    if agent.recurrent:
        raise ConfigError(f"export of a recurrent policy (--policy {agent.config.policy}) is not supported yet; "
                          f"allowed: mlp policies")
    path = Path(path)
    module = policy_module(agent)
    if format == "saved_model":
        return write_atomic_dir(path, lambda tmp: _write_saved_model(module, tmp, export_meta(agent)))
    if format == "onnx":
        tf2onnx = _require_converter("onnx")
        model_proto, _ = tf2onnx.convert.from_function(
            module.serving_default, input_signature=[observation_spec(agent.observation_space)], opset=ONNX_OPSET)
        _write_bytes(path, model_proto.SerializeToString())
        return path
    with tempfile.TemporaryDirectory() as saved:  # litert: TensorFlow's converter reads a SavedModel
        _write_saved_model(module, Path(saved), None)
        converter = tf.lite.TFLiteConverter.from_saved_model(saved, signature_keys=[SERVING_SIGNATURE])
        _write_bytes(path, converter.convert())
    return path


class ExportedPolicy:
    """A SavedModel written by `export_policy`, loaded with plain TensorFlow: actions for raw observations."""

    def __init__(self, path: str | os.PathLike):
        self.meta = read_export_meta(path)
        self.env: str | None = self.meta.get("env")
        loaded = tf.saved_model.load(str(path))
        self._loaded = loaded  # keeps the functions' variables alive
        self._mode = loaded.signatures[SERVING_SIGNATURE]
        self._sample = loaded.signatures[SAMPLE_SIGNATURE]
        self._dtype = self._mode.structured_input_signature[1]["observations"].dtype

    def predict(self, obs: Any, deterministic: bool = True, seed: int = 0) -> np.ndarray:
        """Env actions for one observation or a batch (``seed`` draws the stochastic ones)."""
        obs = np.asarray(obs)
        single = obs.ndim == len(self._mode.structured_input_signature[1]["observations"].shape) - 1
        batch = tf.constant(obs[None] if single else obs, dtype=self._dtype)
        out = self._mode(observations=batch) if deterministic else \
            self._sample(observations=batch, seed=tf.constant(seed, tf.int64))
        actions = out[ACTIONS_KEY].numpy()
        return actions[0] if single else actions
