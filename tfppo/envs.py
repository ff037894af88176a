"""Environment plumbing: env lookup, space checks, vector envs, action clipping,
episode bookkeeping and VecNormalize maths.

Why this module exists: both algorithms (PPO1 per MPI rank, PPO2 vectorised)
need the same Baselines VecEnv semantics on top of gymnasium (spec §2.3), the
same action clipping (spec §2.3-2.4, row 18) and the same reward/observation
normalisation (spec §5.4). Everything here is NumPy + gymnasium only — no
TensorFlow — so CLIs can validate a config (env id, spaces) before paying for a
TF import.
"""

from __future__ import annotations

import collections
import dataclasses
import difflib
import importlib
import math
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import gymnasium
import numpy as np
from gymnasium import spaces

from tfppo.errors import ConfigError
from tfppo.running_stats import RunningMeanStd

__all__ = [
    "EnvFactory",
    "resolve_env",
    "check_spaces",
    "make_vec_env",
    "seed_vec_env",
    "clip_actions",
    "EpisodeTracker",
    "VecNormalize",
    "VECTORIZATIONS",
]

VECTORIZATIONS: tuple[str, ...] = ("sync", "async")

_EXAMPLE_IDS = "CartPole-v1, Pendulum-v1, LunarLander-v3"

# Substring of a gymnasium entry-point module -> the tfppo pip extra providing it.
_EXTRAS: tuple[tuple[str, str], ...] = (
    ("box2d", "box2d"),
    ("mujoco", "mujoco"),
)


def _one_line(text: str) -> str:
    """Collapse whitespace so a ConfigError stays a single line (errors.py contract)."""
    return " ".join(str(text).split())


# --------------------------------------------------------------------------- lookup
@dataclasses.dataclass(frozen=True)
class EnvFactory:
    """A picklable recipe for one env, produced by :func:`resolve_env`.

    Why not just ``gymnasium.make``: custom ``module:Class`` envs are supported
    too, and the factory must be picklable so ``AsyncVectorEnv`` workers can
    rebuild it. Registered ids go through ``gymnasium.make`` so the registry's
    ``TimeLimit`` (and hence truncation) is kept; custom classes are
    instantiated directly with the keyword arguments.
    """

    env_id: str
    registered: bool

    def __call__(self, **kwargs: Any) -> gymnasium.Env:
        if self.registered:
            return gymnasium.make(self.env_id, **kwargs)
        module_name, attr = self.env_id.split(":", 1)
        cls = getattr(importlib.import_module(module_name), attr)
        return cls(**kwargs)


def _extra_hint(entry_point: str) -> str:
    for needle, extra in _EXTRAS:
        if needle in entry_point.lower():
            return f"pip install tfppo[{extra}]"
    return "install the package that provides it"


def _import_entry_module(env_id: str, entry_point: Any) -> None:
    """Import a registered env's module so missing optional deps surface now, not mid-run."""
    if not isinstance(entry_point, str) or ":" not in entry_point:
        return  # a callable entry point is already imported
    module_name = entry_point.split(":", 1)[0]
    try:
        importlib.import_module(module_name)
    except (ImportError, gymnasium.error.DependencyNotInstalled) as exc:
        raise ConfigError(
            f"env '{env_id}' needs an optional dependency that is not installed "
            f"({_one_line(exc)}); run: {_extra_hint(entry_point)}"
        ) from None


def _unknown_env(env_id: str) -> ConfigError:
    message = (
        f"unknown env '{env_id}'; give a registered gymnasium id "
        f"(e.g. {_EXAMPLE_IDS}) or module:Class"
    )
    close = difflib.get_close_matches(env_id, list(gymnasium.envs.registry.keys()), n=3, cutoff=0.6)
    if close:
        message += f"; did you mean {', '.join(close)}?"
    return ConfigError(message)


def resolve_env(env_id: str) -> EnvFactory:
    """Validate ``env_id`` without creating an env and return a factory for it.

    Accepts a registered gymnasium id (looked up in ``gymnasium.envs.registry``;
    its entry-point module is imported so a missing Box2D/MuJoCo fails here with
    the pip extra to install) or ``"package.module:ClassName"`` naming a
    ``gymnasium.Env`` subclass. ``"module:RegisteredId"`` (a module whose import
    registers envs, gymnasium's own convention) is accepted as well.
    """
    if not isinstance(env_id, str) or not env_id.strip():
        raise ConfigError(
            f"env id must be a non-empty string, got {env_id!r}; give a registered "
            f"gymnasium id (e.g. {_EXAMPLE_IDS}) or module:Class"
        )
    registry = gymnasium.envs.registry

    if ":" in env_id:
        module_name, attr = env_id.split(":", 1)
        if not module_name or not attr:
            raise _unknown_env(env_id)
        try:
            module = importlib.import_module(module_name)
        except (ImportError, gymnasium.error.DependencyNotInstalled) as exc:
            raise ConfigError(
                f"cannot import module '{module_name}' for env '{env_id}' "
                f"({_one_line(exc)}); give an importable module:Class or a registered gymnasium id"
            ) from None
        target = getattr(module, attr, None)
        if target is None:
            if attr in registry:  # "module:Id" — the import registered the id
                _import_entry_module(env_id, registry[attr].entry_point)
                return EnvFactory(env_id=env_id, registered=True)
            raise ConfigError(
                f"module '{module_name}' has no attribute '{attr}' for env '{env_id}'; "
                f"give module:Class naming a gymnasium.Env subclass"
            )
        if not (isinstance(target, type) and issubclass(target, gymnasium.Env)):
            raise ConfigError(
                f"'{env_id}' is not a gymnasium.Env subclass; "
                f"give module:Class naming a gymnasium.Env subclass"
            )
        return EnvFactory(env_id=env_id, registered=False)

    spec = registry.get(env_id)
    if spec is None:
        raise _unknown_env(env_id)
    _import_entry_module(env_id, spec.entry_point)
    return EnvFactory(env_id=env_id, registered=True)


# --------------------------------------------------------------------------- spaces
_OBS_ALLOWED = "Box (any shape; uint8 HxWxC images for the CNN), Discrete"
_ACT_ALLOWED = "Discrete, Box with 1-d shape, MultiDiscrete (1-d), MultiBinary (1-d)"


def _describe(space: Any) -> str:
    """A compact, single-line space description (Box reprs can span lines)."""
    shape = getattr(space, "shape", None)
    dtype = getattr(space, "dtype", None)
    return f"{type(space).__name__}(shape={shape}, dtype={dtype})"


def is_image_space(space: spaces.Space) -> bool:
    """A 3-d uint8 Box: the policy reads it with the Nature CNN (spec §5.3)."""
    return isinstance(space, spaces.Box) and space.dtype == np.uint8 and len(space.shape) == 3


def probe_spaces(env_id: str) -> tuple[spaces.Space, spaces.Space]:
    """Observation and action space of ``env_id`` from one throw-away instance (checked, one-line errors)."""
    env = resolve_env(env_id)()
    try:
        check_spaces(env.observation_space, env.action_space)
        return env.observation_space, env.action_space
    finally:
        env.close()


def check_spaces(observation_space: spaces.Space, action_space: spaces.Space) -> None:
    """Refuse spaces the policies cannot handle, before any graph is built.

    Observations: ``Box`` of any shape (a 3-d ``uint8`` Box is an image for the
    CNN) or ``Discrete`` (one-hot encoded by the policy). Actions: ``Discrete``
    (categorical), 1-d ``Box`` (diagonal Gaussian), 1-d ``MultiDiscrete`` and
    1-d ``MultiBinary`` — the Baselines/SB probability distributions. Discrete /
    MultiDiscrete spaces with a non-zero ``start`` are refused because the
    policy samples indices from 0.
    """
    if isinstance(observation_space, spaces.Box):
        pass
    elif isinstance(observation_space, spaces.Discrete):
        if int(observation_space.start) != 0:
            raise ConfigError(
                f"unsupported observation space Discrete(n={observation_space.n}, "
                f"start={observation_space.start}); Discrete observations must start at 0"
            )
    else:
        raise ConfigError(
            f"unsupported observation space {_describe(observation_space)}; allowed: {_OBS_ALLOWED}"
        )

    supported = (
        isinstance(action_space, spaces.Discrete)
        or (isinstance(action_space, spaces.Box) and len(action_space.shape) == 1)
        or (isinstance(action_space, spaces.MultiDiscrete) and action_space.nvec.ndim == 1)
        or (isinstance(action_space, spaces.MultiBinary) and len(action_space.shape) == 1)
    )
    if supported and isinstance(action_space, (spaces.Discrete, spaces.MultiDiscrete)) \
            and np.any(np.asarray(action_space.start) != 0):
        raise ConfigError(
            f"unsupported action space {_describe(action_space)} with non-zero start; "
            f"allowed: {_ACT_ALLOWED} (Discrete/MultiDiscrete must start at 0)"
        )
    if supported:
        return
    raise ConfigError(f"unsupported action space {_describe(action_space)}; allowed: {_ACT_ALLOWED}")


# ----------------------------------------------------------------------- vector env
class _EnvThunk:
    """Zero-argument callable building one env (factory, then wrappers in order).

    A module-level class rather than a closure so ``AsyncVectorEnv`` workers
    receive a small, cleanly picklable recipe.
    """

    def __init__(
        self,
        factory: EnvFactory,
        env_kwargs: dict[str, Any],
        wrappers: tuple[Callable[[gymnasium.Env], gymnasium.Env], ...],
    ) -> None:
        self.factory = factory
        self.env_kwargs = env_kwargs
        self.wrappers = wrappers

    def __call__(self) -> gymnasium.Env:
        env = self.factory(**self.env_kwargs)
        for wrap in self.wrappers:
            env = wrap(env)
        return env


def make_vec_env(
    env_id: str,
    num_envs: int,
    *,
    vectorization: str = "sync",
    env_kwargs: dict[str, Any] | None = None,
    wrappers: Iterable[Callable[[gymnasium.Env], gymnasium.Env]] = (),
) -> gymnasium.vector.VectorEnv:
    """Build ``num_envs`` copies of ``env_id`` with Baselines VecEnv semantics.

    ``autoreset_mode=SAME_STEP`` reproduces Baselines' VecEnv (spec §2.3): when
    an env finishes, the returned observation is already the first observation
    of the next episode, and the true last observation is in
    ``info["final_obs"]`` (mask ``info["_final_obs"]``) for optional truncation
    bootstrapping. ``wrappers`` are ``env -> env`` callables applied in order to
    each env (they must be picklable for ``"async"``). Seeding is the caller's
    job (:func:`seed_vec_env`). The spaces are checked with
    :func:`check_spaces` before returning.
    """
    if isinstance(num_envs, bool) or not isinstance(num_envs, (int, np.integer)) or num_envs < 1:
        raise ConfigError(f"num_envs must be an integer >= 1, got {num_envs!r}")
    if vectorization not in VECTORIZATIONS:
        raise ConfigError(
            f"unknown vectorization {vectorization!r}; allowed: {', '.join(VECTORIZATIONS)}"
        )
    factory = resolve_env(env_id)
    thunk = _EnvThunk(factory, dict(env_kwargs or {}), tuple(wrappers))
    fns = [thunk for _ in range(int(num_envs))]
    mode = gymnasium.vector.AutoresetMode.SAME_STEP
    if vectorization == "sync":
        # copy=False: no deepcopy of every observation batch; the runner copies it into its buffer
        # before the next step overwrites it (≈10% of a one-env CartPole step, README Performance)
        venv: gymnasium.vector.VectorEnv = gymnasium.vector.SyncVectorEnv(fns, copy=False, autoreset_mode=mode)
    else:
        venv = gymnasium.vector.AsyncVectorEnv(fns, autoreset_mode=mode)
    try:
        check_spaces(venv.single_observation_space, venv.single_action_space)
    except ConfigError:
        venv.close()
        raise
    return venv


def seed_vec_env(venv: gymnasium.vector.VectorEnv, seeds: Sequence[int]) -> np.ndarray:
    """Reset every env with its own seed and seed the action spaces; return the first obs.

    Seeding the action spaces too makes any ``action_space.sample()`` (random
    baselines, env-internal sampling) reproducible. Per-env action spaces are
    reachable only in ``SyncVectorEnv``; for ``AsyncVectorEnv`` the batched and
    single action spaces in this process are seeded.
    """
    seeds = [int(s) for s in seeds]
    if len(seeds) != venv.num_envs:
        raise ValueError(f"need {venv.num_envs} seeds, got {len(seeds)}")
    obs, _ = venv.reset(seed=seeds)
    if isinstance(venv, gymnasium.vector.SyncVectorEnv):
        for env, seed in zip(venv.envs, seeds):
            env.action_space.seed(seed)
    venv.single_action_space.seed(seeds[0])
    venv.action_space.seed(seeds[0])
    return obs


# -------------------------------------------------------------------------- actions
def clip_actions(actions: np.ndarray, space: spaces.Space) -> np.ndarray:
    """Make policy actions safe to send to the env (Baselines ClipActionsWrapper).

    For ``Box``: ``nan_to_num`` then clip to ``[low, high]`` (spec §2.3-2.4,
    row 18), cast to the space dtype. Other spaces are returned unchanged. The
    caller stores the *unclipped* action in the rollout, so log-probabilities
    stay those of the sampled Gaussian action.
    """
    if isinstance(space, spaces.Box):
        clipped = np.clip(np.nan_to_num(np.asarray(actions)), space.low, space.high)
        return clipped.astype(space.dtype, copy=False)
    return actions


# ------------------------------------------------------------------------- episodes
class EpisodeTracker:
    """Per-env running sums of *raw* rewards and lengths -> completed episodes.

    Why: reported returns must be the env's own rewards, before VecNormalize
    (spec §5.4), and PPO1 must pool episodes across MPI ranks (``extend``).
    ``returns``/``lengths`` keep the last ``window`` episodes (Baselines' 100-
    episode ``eprewmean``/``eplenmean``); ``episodes`` counts all completed.
    """

    def __init__(self, num_envs: int, window: int = 100) -> None:
        self.num_envs = int(num_envs)
        self.window = int(window)
        self._sums = np.zeros(self.num_envs, dtype=np.float64)
        self._lens = np.zeros(self.num_envs, dtype=np.int64)
        self.returns: collections.deque[float] = collections.deque(maxlen=self.window)
        self.lengths: collections.deque[int] = collections.deque(maxlen=self.window)
        self.episodes: int = 0

    def step(self, rewards: np.ndarray, dones: np.ndarray) -> list[tuple[float, int]]:
        """Add one vector step; return (return, length) of episodes finished now.

        The finished envs' sums restart at zero, matching SAME_STEP autoreset
        where the next reward already belongs to the new episode.
        """
        rewards = np.asarray(rewards, dtype=np.float64).reshape(self.num_envs)
        dones = np.asarray(dones, dtype=bool).reshape(self.num_envs)
        self._sums += rewards
        self._lens += 1
        completed = [(float(self._sums[i]), int(self._lens[i])) for i in np.flatnonzero(dones)]
        self._sums[dones] = 0.0
        self._lens[dones] = 0
        self.extend(completed)
        return completed

    def discard_partial(self) -> None:
        """Forget the in-progress episodes (their envs were just reset)."""
        self._sums[:] = 0.0
        self._lens[:] = 0

    def extend(self, completed: Iterable[tuple[float, int]]) -> None:
        """Record externally gathered episodes (e.g. allgathered from MPI ranks)."""
        for ret, length in completed:
            self.returns.append(float(ret))
            self.lengths.append(int(length))
            self.episodes += 1

    def mean_return(self) -> float:
        """Mean of the windowed returns; NaN when no episode has finished yet."""
        return float(np.mean(self.returns)) if self.returns else math.nan

    def mean_length(self) -> float:
        """Mean of the windowed lengths; NaN when no episode has finished yet."""
        return float(np.mean(self.lengths)) if self.lengths else math.nan

    def state_dict(self) -> dict[str, Any]:
        """JSON-serialisable window and counter. In-progress sums are not saved:
        a resumed run resets its envs, so those episodes restart anyway."""
        return {
            "window": self.window,
            "returns": list(self.returns),
            "lengths": list(self.lengths),
            "episodes": self.episodes,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore the window and counter; in-progress sums restart at zero."""
        for key in ("returns", "lengths", "episodes"):
            if key not in state:
                raise ConfigError(
                    f"episode tracker state is missing '{key}'; expected keys: returns, lengths, episodes"
                )
        if len(state["returns"]) != len(state["lengths"]):
            raise ConfigError("episode tracker state has different numbers of returns and lengths")
        self.returns = collections.deque((float(r) for r in state["returns"]), maxlen=self.window)
        self.lengths = collections.deque((int(n) for n in state["lengths"]), maxlen=self.window)
        self.episodes = int(state["episodes"])
        self._sums[:] = 0.0
        self._lens[:] = 0


# ---------------------------------------------------------------------- VecNormalize
class VecNormalize:
    """Baselines/SB VecNormalize maths as a plain object the runner calls (spec §5.4).

    Not a gym wrapper, so its statistics live next to the model in checkpoints
    and PPO2's runner decides when to call it. Per vector step the runner calls,
    in SB ``VecNormalize.step_wait`` order::

        obs = vn.normalize_obs(obs)              # stats updated with the returned obs
        rew = vn.normalize_reward(rew, dones)    # discounted-return scaling, then ret[dones] = 0

    and ``vn.reset(obs)`` once after ``venv.reset``. Observation normalisation
    is ``clip((obs - mean) / sqrt(var + eps), ±clip_obs)``; reward
    normalisation divides by the std of the running *discounted return* (not of
    the reward) and clips to ``±clip_reward``. Rewards are never centred.
    """

    def __init__(
        self,
        obs_shape: tuple[int, ...],
        num_envs: int,
        *,
        norm_obs: bool = True,
        norm_reward: bool = True,
        clip_obs: float = 10.0,
        clip_reward: float = 10.0,
        gamma: float = 0.99,
        epsilon: float = 1e-8,
        reset_mode: str = "sb",
    ) -> None:
        if reset_mode not in ("baselines", "sb"):
            raise ConfigError(f"VecNormalize reset_mode {reset_mode!r} is invalid; allowed: baselines, sb")
        self.reset_mode = reset_mode
        self.obs_shape = tuple(int(d) for d in obs_shape)
        self.num_envs = int(num_envs)
        self.norm_obs = bool(norm_obs)
        self.norm_reward = bool(norm_reward)
        self.clip_obs = float(clip_obs)
        self.clip_reward = float(clip_reward)
        self.gamma = float(gamma)
        self.epsilon = float(epsilon)
        self.training: bool = True
        self.obs_rms = RunningMeanStd(shape=self.obs_shape)
        self.ret_rms = RunningMeanStd(shape=())
        self.ret = np.zeros(self.num_envs, dtype=np.float64)

    def normalize_obs(self, obs: np.ndarray, *, update: bool = True) -> np.ndarray:
        """Normalise a batch ``[num_envs, *obs_shape]``; float32 out.

        Statistics are updated first (when ``training`` and ``update``), as SB
        does in ``step_wait``. Pass ``update=False`` for observations that must
        not count twice, e.g. ``info["final_obs"]`` used for bootstrapping.
        """
        obs = np.asarray(obs)
        if not self.norm_obs:
            return obs.astype(np.float32)
        if self.training and update:
            self.obs_rms.update(obs)
        normed = (obs - self.obs_rms.mean) / np.sqrt(self.obs_rms.var + self.epsilon)
        return np.clip(normed, -self.clip_obs, self.clip_obs).astype(np.float32)

    def normalize_reward(self, rewards: np.ndarray, dones: np.ndarray) -> np.ndarray:
        """Scale rewards by the running std of the discounted return; reset ``ret`` on done.

        ``ret = ret * gamma + r``; when training ``ret_rms`` is updated with the
        ``num_envs`` current returns; out = ``clip(r / sqrt(ret_rms.var + eps),
        ±clip_reward)``; finally ``ret[dones] = 0`` (SB ``step_wait`` order).
        """
        rewards = np.asarray(rewards, dtype=np.float64).reshape(self.num_envs)
        dones = np.asarray(dones, dtype=bool).reshape(self.num_envs)
        if not self.norm_reward:
            self.ret[dones] = 0.0
            return rewards
        self.ret = self.ret * self.gamma + rewards
        if self.training:
            self.ret_rms.update(self.ret)
        scaled = np.clip(
            rewards / np.sqrt(self.ret_rms.var + self.epsilon), -self.clip_reward, self.clip_reward
        )
        self.ret[dones] = 0.0
        return scaled

    def reset(self, obs: np.ndarray) -> np.ndarray:
        """Handle a full ``venv.reset``: zero the returns, normalise the first obs (spec §5.4).

        ``reset_mode="baselines"``: the reset observations update ``obs_rms`` ([B] ``_obfilt``) and
        ``ret_rms`` is left alone. ``reset_mode="sb"``: the reset observations do not count, but when
        training with reward normalisation the zeroed returns are folded into ``ret_rms`` ([SB]
        ``reset`` calls ``_update_reward(zeros)``: ``num_envs`` zero returns, once per reset).
        """
        self.ret = np.zeros(self.num_envs, dtype=np.float64)
        if self.reset_mode == "baselines":
            return self.normalize_obs(obs, update=True)
        if self.training and self.norm_reward:
            self.ret_rms.update(self.ret)
        return self.normalize_obs(obs, update=False)

    def state_dict(self) -> dict[str, Any]:
        """JSON-serialisable statistics and settings (the live ``ret`` is not saved)."""
        return {
            "obs_shape": list(self.obs_shape),
            "norm_obs": self.norm_obs,
            "norm_reward": self.norm_reward,
            "clip_obs": self.clip_obs,
            "clip_reward": self.clip_reward,
            "gamma": self.gamma,
            "epsilon": self.epsilon,
            "obs_rms": self.obs_rms.state_dict(),
            "ret_rms": self.ret_rms.state_dict(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore from :meth:`state_dict`; an obs-shape mismatch is a ``ConfigError``.

        ``training`` is left as is: the caller decides whether loaded statistics
        keep adapting (resume) or stay frozen (evaluation).
        """
        required = ("norm_obs", "norm_reward", "clip_obs", "clip_reward", "gamma", "epsilon",
                    "obs_rms", "ret_rms")
        for key in required:
            if key not in state:
                raise ConfigError(
                    f"VecNormalize state is missing '{key}'; expected keys: {', '.join(required)}"
                )
        if "obs_shape" in state and tuple(state["obs_shape"]) != self.obs_shape:
            raise ConfigError(
                f"VecNormalize state is for observation shape {tuple(state['obs_shape'])} "
                f"but this environment has shape {self.obs_shape}"
            )
        self.obs_rms.load_state_dict(state["obs_rms"])
        self.ret_rms.load_state_dict(state["ret_rms"])
        self.norm_obs = bool(state["norm_obs"])
        self.norm_reward = bool(state["norm_reward"])
        self.clip_obs = float(state["clip_obs"])
        self.clip_reward = float(state["clip_reward"])
        self.gamma = float(state["gamma"])
        self.epsilon = float(state["epsilon"])
