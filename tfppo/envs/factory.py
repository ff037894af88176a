"""Env lookup and vector envs with Baselines VecEnv semantics (spec §2.3), on gymnasium.

Everything here is NumPy + gymnasium only — no TensorFlow — so the CLIs can validate an env id
and its spaces before paying for a TF import.
"""
from __future__ import annotations

import dataclasses
import difflib
import importlib
import json
from collections.abc import Callable, Iterable, Sequence
from typing import Any, Union

import gymnasium
import numpy as np
from gymnasium import spaces

from tfppo.config.hyperparameters import VECTORIZATIONS
from tfppo.envs import pomdp  # noqa: F401  registers tfppo's own ids (CartPoleNoVelocity-v1) by import
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

    Why not just ``gymnasium.make``: custom ``module:Class`` (or ``module:function``)
    envs are supported too, and the factory must be picklable so ``AsyncVectorEnv``
    workers can rebuild it. Registered ids go through ``gymnasium.make`` so the
    registry's ``TimeLimit`` (and hence truncation) is kept; custom classes and
    functions are called directly with the keyword arguments.
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
    the pip extra to install), ``"package.module:ClassName"`` naming a
    ``gymnasium.Env`` subclass or ``"package.module:function"`` naming a function
    that returns an env (checked when it is called, by `EnvSource`).
    ``"module:RegisteredId"`` (a module whose import registers envs, gymnasium's
    own convention) is accepted as well.
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
        if isinstance(target, type) and not issubclass(target, gymnasium.Env) or not callable(target):
            raise ConfigError(
                f"'{env_id}' is not a gymnasium.Env subclass; "
                f"give module:Class naming a gymnasium.Env subclass or module:function returning an env"
            )
        return EnvFactory(env_id=env_id, registered=False)

    spec = registry.get(env_id)
    if spec is None:
        raise _unknown_env(env_id)
    _import_entry_module(env_id, spec.entry_point)
    return EnvFactory(env_id=env_id, registered=True)



EnvLike = Union[str, Callable[..., gymnasium.Env], gymnasium.Env]
Wrapper = Callable[[gymnasium.Env], gymnasium.Env]


def _name(obj: Any) -> str:
    """``module.qualname`` of a function or class: the same on every MPI rank (no memory address)."""
    return f"{getattr(obj, '__module__', '?')}.{getattr(obj, '__qualname__', type(obj).__qualname__)}"


def _check_env(env: Any, what: str) -> gymnasium.Env:
    """``env`` if it is a ``gymnasium.Env``, else one line naming what ``what`` returned instead."""
    if not isinstance(env, gymnasium.Env):
        shown = _one_line(repr(env))
        shown = shown if len(shown) <= 60 else shown[:57] + "..."
        raise ConfigError(f"{what} returned {type(env).__name__} ({shown}), not a gymnasium.Env")
    return env


def _json_exact(value: Any) -> bool:
    """Whether ``value`` survives a JSON round trip unchanged (so a checkpoint can hold it)."""
    try:
        return json.loads(json.dumps(value)) == value
    except (TypeError, ValueError):
        return False


class EnvSource:
    """What a trainer builds its envs from: an id (or ``module:Class``), a callable returning a
    ``gymnasium.Env``, or one env instance; then ``env_kwargs`` (passed to ``gymnasium.make``, the class or
    the callable) and ``wrappers`` (``env -> env`` callables applied in order).

    Calling it builds one env, checked, so a factory that returns the wrong thing fails with one line
    naming what it returned. The trainers call it once per env and seed every env themselves
    (`seed_vec_env`), so an id and a callable making the same env give the same episodes. It is the
    picklable recipe ``AsyncVectorEnv`` workers rebuild (gymnasium cloudpickles it, so lambdas work).
    An instance is one env: it is wrapped once and then always returned, and cannot give a separate
    evaluation env.
    """

    def __init__(self, env: EnvLike, env_kwargs: dict[str, Any] | None = None,
                 wrappers: Iterable[Wrapper] | None = ()):
        if env_kwargs is not None and not isinstance(env_kwargs, dict):
            raise ConfigError(f"env_kwargs must be a dict of keyword arguments, got {type(env_kwargs).__name__}")
        self.env_kwargs = dict(env_kwargs or {})
        self.wrappers: tuple[Wrapper, ...] = tuple(wrappers or ())
        bad = [i for i, wrap in enumerate(self.wrappers) if not callable(wrap)]
        if bad:
            raise ConfigError(f"wrappers must be callables env -> env; item {bad[0]} is "
                              f"{type(self.wrappers[bad[0]]).__name__}")
        self._factory: Callable[..., Any] | None = None
        self._instance: gymnasium.Env | None = None
        self._wrapped: gymnasium.Env | None = None
        if isinstance(env, str):
            self.kind, self.label, self._factory = "id", env, resolve_env(env)
        elif isinstance(env, gymnasium.Env):
            if self.env_kwargs:
                raise ConfigError("env_kwargs cannot reach an env instance (it is already built); give env as an "
                                  "id or a callable")
            self.kind, self.label, self._instance = "instance", f"<instance {_name(type(env))}>", env
        elif callable(env):
            self.kind, self.label, self._factory = "callable", f"<callable {_name(env)}>", env
        else:
            raise ConfigError(f"env must be a gymnasium id, a callable returning a gymnasium.Env or a "
                              f"gymnasium.Env instance; got {type(env).__name__}")

    def __call__(self) -> gymnasium.Env:
        if self._instance is not None:
            if self._wrapped is None:
                self._wrapped = self._wrap(self._instance)
            return self._wrapped
        return self._wrap(_check_env(self._factory(**self.env_kwargs), f"env factory {self.label}"))

    def _wrap(self, env: gymnasium.Env) -> gymnasium.Env:
        for wrap in self.wrappers:
            env = _check_env(wrap(env), f"wrapper {_name(wrap)}")
        return env

    def check_num_envs(self, num_envs: int) -> None:
        if self.kind == "instance" and num_envs > 1:
            raise ConfigError(f"an env instance is one env, but num_envs={num_envs}; give env as an id or a "
                              f"callable (called once per env)")

    def check_separate(self, purpose: str) -> None:
        """An env beside the training envs (evaluation) cannot come from an instance."""
        if self.kind == "instance":
            raise ConfigError(f"{purpose} needs an env of its own, but an env instance is the training env; give "
                              f"env as an id or a callable")

    def separate(self, purpose: str) -> gymnasium.Env:
        """A new env beside the training envs, built as they are."""
        self.check_separate(purpose)
        return self()

    def description(self) -> dict[str, Any]:
        """JSON, the same on every MPI rank: what checkpoints record and the ranks compare. Only an id and
        env_kwargs that survive JSON (``env_kwargs_exact``) can be rebuilt from it; a callable, an instance
        and wrappers are recorded by name only."""
        kwargs = {key: value if _json_exact(value) else f"<{type(value).__name__}>"
                  for key, value in sorted(self.env_kwargs.items())}
        return {"kind": self.kind, "label": self.label, "env_kwargs": kwargs,
                "env_kwargs_exact": _json_exact(self.env_kwargs), "wrappers": [_name(wrap) for wrap in self.wrappers]}


def env_source(env: EnvLike | EnvSource, env_kwargs: dict[str, Any] | None = None,
               wrappers: Iterable[Wrapper] | None = ()) -> EnvSource:
    """``env`` as an `EnvSource` (an EnvSource already is one and takes no further kwargs or wrappers)."""
    if isinstance(env, EnvSource):
        if env_kwargs or wrappers:
            raise ValueError("env_kwargs and wrappers belong to the EnvSource itself")
        return env
    return EnvSource(env, env_kwargs, wrappers)


def probe_spaces(env: EnvLike | EnvSource) -> tuple[spaces.Space, spaces.Space]:
    """Observation and action space of one env (after its wrappers), checked with one-line errors: from a
    throw-away env, except for an instance, which is the training env itself."""
    source = env_source(env)
    made = source()
    try:
        check_spaces(made.observation_space, made.action_space)
        return made.observation_space, made.action_space
    finally:
        if source.kind != "instance":
            made.close()


# ----------------------------------------------------------------------- vector env
def make_vec_env(
    env: EnvLike | EnvSource,
    num_envs: int,
    *,
    vectorization: str = "sync",
    env_kwargs: dict[str, Any] | None = None,
    wrappers: Iterable[Callable[[gymnasium.Env], gymnasium.Env]] = (),
) -> gymnasium.vector.VectorEnv:
    """Build ``num_envs`` envs of ``env`` (an id, a callable, an instance for one env, or an
    `EnvSource`), each by one call of its `EnvSource`, with Baselines VecEnv semantics.

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
    source = env_source(env, env_kwargs, wrappers)
    source.check_num_envs(int(num_envs))
    fns = [source for _ in range(int(num_envs))]
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


