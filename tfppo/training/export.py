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

A recurrent policy (PPO2 ``--policy lstm|lnlstm``) is exported as one step of every env, with the LSTM state
held by the caller rather than by the graph, so one export serves any number of concurrent episodes:
``serving_default(observations [B, ...], episode_starts [B] float32, state [B, 2·nlstm]) -> {"actions",
"state"}`` and ``sample(…, seed)`` likewise. ``episode_starts`` is Baselines' mask (1 where the step begins a
new episode: the incoming state is zeroed first, as in training); the returned ``state`` goes in with the
next step; the initial state is zeros of the ``state_size`` that ``tfppo-export.json`` records with
``"recurrent": true``. LiteRT holds the same serving signature; ONNX is refused for a recurrent policy, as
an ONNX graph cannot have an input and an output of one name (``state``).
"""
from __future__ import annotations

import importlib.util
import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

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
STATE_KEY = "state"  # a recurrent export's LSTM state [B, 2·nlstm]: an input and an output
STARTS_KEY = "episode_starts"
SEED_SPEC = tf.TensorSpec([], tf.int64, name="seed")
ONNX_OPSET = 17
# what each optional format needs beyond TensorFlow: (module to find, the extra that installs it)
CONVERTERS = {"onnx": ("tf2onnx", "onnx")}
# the formats whose signatures can take and return a tensor of one name (the LSTM state)
RECURRENT_FORMATS = ("saved_model", "litert")


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
    TFLite converter reads the variables as uninitialised (NaN actions). The Keras model itself is not
    tracked (only its bound methods are kept): it would be saved with its own one-input default signature,
    which a recurrent model's three-input call fails to trace."""

    def __init__(self, policy, obs_norm: FrozenObsNorm | None, clip_space: gym.spaces.Box | None):
        super().__init__()
        self._forward = policy.__call__
        self._step_fn = getattr(policy, "step", None)
        self._observation_space = policy.observation_space
        self._state_size = getattr(policy, "state_size", None)
        self.policy_variables = [variable.value for variable in policy.variables]
        self._dist = policy.dist
        # NumPy, not tf.constant: arrays become constants inside each traced graph, where a tensor made
        # outside would be a captured input (tf2onnx turns captures into inputs the caller must feed)
        self._norm = None if obs_norm is None else (obs_norm.mean, obs_norm.std, obs_norm.clip)
        self._clip = None if clip_space is None else (np.nan_to_num(clip_space.low.astype(np.float32)),
                                                      np.nan_to_num(clip_space.high.astype(np.float32)),
                                                      tf.as_dtype(clip_space.dtype))
        self.input_specs = self._input_specs()
        self.serving_default = tf.function(self._deterministic, input_signature=self.input_specs)
        self.sample = tf.function(self._stochastic, input_signature=[*self.input_specs, SEED_SPEC])

    def _input_specs(self) -> list[tf.TensorSpec]:
        return [observation_spec(self._observation_space)]

    def _normalized(self, observations: tf.Tensor) -> tf.Tensor:
        if self._norm is None:
            return observations
        mean, std, clip = self._norm
        return tf.clip_by_value((tf.cast(observations, tf.float32) - mean) / std, -clip, clip)

    def _env_actions(self, actions: tf.Tensor) -> dict[str, tf.Tensor]:
        """Row 18 as the evaluation episodes apply it: NaN → 0, clip to [low, high], the Box's dtype; else the
        distribution's action dtype (what ``predict`` returns)."""
        if self._clip is None:
            return {ACTIONS_KEY: tf.cast(actions, tf.as_dtype(self._dist.action_dtype))}
        low, high, dtype = self._clip
        actions = tf.cast(actions, tf.float32)
        actions = tf.where(tf.math.is_nan(actions), tf.zeros_like(actions), actions)
        return {ACTIONS_KEY: tf.cast(tf.clip_by_value(actions, low, high), dtype)}

    def _sampled(self, params: tf.Tensor, seed: tf.Tensor) -> tf.Tensor:
        """Stateless sampling: the same seed gives the same actions on every call."""
        return self._dist.sample(params, tf.stack([seed, tf.constant(0, tf.int64)]))

    def _deterministic(self, observations: tf.Tensor) -> dict[str, tf.Tensor]:
        params, _ = self._forward(self._normalized(observations))
        return self._env_actions(self._dist.mode(params))

    def _stochastic(self, observations: tf.Tensor, seed: tf.Tensor) -> dict[str, tf.Tensor]:
        params, _ = self._forward(self._normalized(observations))
        return self._env_actions(self._sampled(params, seed))


class RecurrentPolicyModule(PolicyModule):
    """A recurrent policy's export: one step of every env from the state the caller carries.

    The graph is stateless (the caller holds the state, as a served model must for many episodes at once):
    ``(observations [B, ...], episode_starts [B] float32, state [B, 2n]) -> {actions, state}``, where
    ``episode_starts`` is Baselines' mask (1 where the step begins a new episode: the incoming state is
    zeroed, as in training) and the returned ``state`` is the one to pass with the next step. The step is
    the model's own cell (`tfppo.core.recurrent.RecurrentActorCritic.step`)."""

    def _input_specs(self) -> list[tf.TensorSpec]:
        return [observation_spec(self._observation_space), tf.TensorSpec([None], tf.float32, name=STARTS_KEY),
                tf.TensorSpec([None, self._state_size], tf.float32, name=STATE_KEY)]

    def _step(self, observations: tf.Tensor, episode_starts: tf.Tensor, state: tf.Tensor
              ) -> tuple[tf.Tensor, tf.Tensor]:
        params, _, next_state = self._step_fn(self._normalized(observations), episode_starts, state)
        return params, next_state

    def _deterministic(self, observations: tf.Tensor, episode_starts: tf.Tensor, state: tf.Tensor
                       ) -> dict[str, tf.Tensor]:
        params, next_state = self._step(observations, episode_starts, state)
        return {**self._env_actions(self._dist.mode(params)), STATE_KEY: next_state}

    def _stochastic(self, observations: tf.Tensor, episode_starts: tf.Tensor, state: tf.Tensor, seed: tf.Tensor
                    ) -> dict[str, tf.Tensor]:
        params, next_state = self._step(observations, episode_starts, state)
        return {**self._env_actions(self._sampled(params, seed)), STATE_KEY: next_state}


def policy_module(agent) -> PolicyModule:
    """The export graph of ``agent`` as it is now."""
    clips = agent.semantics.clip_actions and isinstance(agent.action_space, gym.spaces.Box)
    module = RecurrentPolicyModule if agent.recurrent else PolicyModule
    return module(agent.policy, FrozenObsNorm.from_normalizer(agent.normalizer), agent.action_space if clips else None)


SIGNATURES = {SERVING_SIGNATURE: "observations -> actions (mode)",
              SAMPLE_SIGNATURE: "observations, seed (int64) -> actions (sampled)"}
RECURRENT_SIGNATURES = {
    SERVING_SIGNATURE: "observations, episode_starts (float32), state -> actions (mode), state",
    SAMPLE_SIGNATURE: "observations, episode_starts (float32), state, seed (int64) -> actions (sampled), state"}


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
        # a recurrent export's initial state is zeros [B, state_size]
        "recurrent": bool(agent.recurrent),
        "policy": getattr(agent.config, "policy", "mlp"),
        "state_size": int(agent.policy.state_size) if agent.recurrent else None,
        "signatures": RECURRENT_SIGNATURES if agent.recurrent else SIGNATURES,
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
    if agent.recurrent and format not in RECURRENT_FORMATS:
        raise ConfigError(f"export format {format} cannot hold a recurrent policy (ONNX names every value once, and "
                          f"the state is an input and an output); allowed: {', '.join(RECURRENT_FORMATS)}")
    path = Path(path)
    module = policy_module(agent)
    if format == "saved_model":
        return write_atomic_dir(path, lambda tmp: _write_saved_model(module, tmp, export_meta(agent)))
    if format == "onnx":
        tf2onnx = _require_converter("onnx")
        model_proto, _ = tf2onnx.convert.from_function(
            module.serving_default, input_signature=module.input_specs, opset=ONNX_OPSET)
        _write_bytes(path, model_proto.SerializeToString())
        return path
    with tempfile.TemporaryDirectory() as saved:  # litert: TensorFlow's converter reads a SavedModel
        _write_saved_model(module, Path(saved), None)
        converter = tf.lite.TFLiteConverter.from_saved_model(saved, signature_keys=[SERVING_SIGNATURE])
        _write_bytes(path, converter.convert())
    return path


class ExportedPolicy:
    """A SavedModel written by `export_policy`, loaded with plain TensorFlow: actions for raw observations.

    A recurrent export (``recurrent`` true) is stateless on disk: ``predict`` takes the LSTM state and
    returns the next one, SB3's ``RecurrentPPO.predict(obs, state, episode_start)`` convention, so one
    loaded policy can serve any number of episodes; `EpisodeActor` carries it through whole episodes."""

    def __init__(self, path: str | os.PathLike):
        self.meta = read_export_meta(path)
        self.env: str | None = self.meta.get("env")
        self.recurrent: bool = bool(self.meta.get("recurrent", False))
        self.state_size: int | None = self.meta.get("state_size")
        loaded = tf.saved_model.load(str(path))
        self._loaded = loaded  # keeps the functions' variables alive
        self._mode = loaded.signatures[SERVING_SIGNATURE]
        self._sample = loaded.signatures[SAMPLE_SIGNATURE]
        obs_spec = self._mode.structured_input_signature[1]["observations"]
        self._dtype, self._obs_rank = obs_spec.dtype, len(obs_spec.shape)

    def initial_state(self, n: int) -> np.ndarray:
        """The state of ``n`` envs before their first step: zeros [n, state_size] (a recurrent export)."""
        return np.zeros((n, self.state_size), np.float32)

    def predict(self, obs: Any, deterministic: bool = True, seed: int = 0, *, state: Any = None,
                episode_start: Any = None) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
        """Env actions for one observation or a batch (``seed`` draws the stochastic ones). A recurrent export
        returns ``(actions, next_state)``: ``state`` None is the zero state, ``episode_start`` (bool or float,
        one or one per row; None: no row starts) zeroes the state of the rows where an episode begins."""
        obs = np.asarray(obs)
        single = obs.ndim == self._obs_rank - 1
        batch = obs[None] if single else obs
        inputs = {"observations": tf.constant(batch, dtype=self._dtype)}
        if self.recurrent:
            n = len(batch)
            state = self.initial_state(n) if state is None else np.asarray(state, np.float32).reshape(n, -1)
            starts = np.broadcast_to(np.asarray(0.0 if episode_start is None else episode_start, np.float32), (n,))
            inputs.update({STARTS_KEY: tf.constant(starts), STATE_KEY: tf.constant(state)})
        out = self._mode(**inputs) if deterministic else self._sample(**inputs, seed=tf.constant(seed, tf.int64))
        actions = out[ACTIONS_KEY].numpy()
        actions = actions[0] if single else actions
        if not self.recurrent:
            return actions
        next_state = out[STATE_KEY].numpy()
        return actions, next_state[0] if single else next_state


class EpisodeActor:
    """`tfppo.training.evaluation.play_episodes`' ``act`` and ``on_reset`` for an export: a recurrent export's
    state is carried from step to step and dropped at every reset (the next step is an episode start, as the
    masks make it in training); ``seeds`` gives each stochastic step its own seed (None: deterministic)."""

    def __init__(self, policy: ExportedPolicy, seeds: Iterator[int] | None = None):
        self.policy = policy
        self.seeds = seeds
        self.state: np.ndarray | None = None

    def __call__(self, obs: np.ndarray) -> np.ndarray:
        deterministic = self.seeds is None
        seed = 0 if deterministic else next(self.seeds)
        if not self.policy.recurrent:
            return self.policy.predict(obs, deterministic, seed)
        actions, self.state = self.policy.predict(obs, deterministic, seed, state=self.state,
                                                  episode_start=self.state is None)
        return actions

    def reset(self) -> None:
        self.state = None
