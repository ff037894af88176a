"""Env lookup and vector envs with Baselines VecEnv semantics (spec §2.3), on gymnasium.

Everything here is NumPy + gymnasium only — no TensorFlow — so the CLIs can validate an env id
and its spaces before paying for a TF import.
"""
from __future__ import annotations

import dataclasses
import difflib
import importlib
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import gymnasium
import numpy as np
from gymnasium import spaces

from tfppo.config.hyperparameters import VECTORIZATIONS
from tfppo.envs.families import make_family_env, register_family
from tfppo.envs.spaces import check_spaces
from tfppo.util.errors import ConfigError

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
            return make_family_env(self.env_id, **kwargs)  # Atari/MinAtar: their pipeline (tfppo.envs.families)
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
    register_family(env_id)  # ALE/..., MinAtar/...: their package registers them (one line if missing)
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



def probe_spaces(env_id: str) -> tuple[spaces.Space, spaces.Space]:
    """Observation and action space of ``env_id`` from one throw-away instance (checked, one-line errors)."""
    env = resolve_env(env_id)()
    try:
        check_spaces(env.observation_space, env.action_space)
        return env.observation_space, env.action_space
    finally:
        env.close()


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


