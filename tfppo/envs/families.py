"""Env families that need a package to register their ids and a pipeline around each env: Atari, MinAtar.

`tfppo.envs.factory` asks `register_family` before it looks an id up, and builds every env of a
family through `make_family_env`, so the probe, the training envs and the evaluation env all see the
same wrapped env. Ids outside the families are untouched.
"""
from __future__ import annotations

import dataclasses
import importlib
from collections.abc import Callable
from typing import Any

import gymnasium

from tfppo.config.env_families import ATARI, MINATAR, env_family
from tfppo.envs.atari import wrap_atari
from tfppo.util.errors import ConfigError


@dataclasses.dataclass(frozen=True)
class Family:
    """How one family's envs are registered and built.

    ``modules`` are imported in order (the first registers the ids; the others are what the pipeline
    needs), ``register`` is called after them when the import alone does not register, ``make_kwargs``
    go to ``gymnasium.make`` under the caller's, and ``wrap`` is the pipeline."""

    extra: str
    modules: tuple[str, ...]
    register: Callable[[], None] | None = None
    make_kwargs: dict[str, Any] = dataclasses.field(default_factory=dict)
    wrap: Callable[[gymnasium.Env], gymnasium.Env] | None = None


def _register_minatar() -> None:
    """MinAtar registers through gymnasium's plugin entry point, which gymnasium 1.x no longer loads."""
    from minatar.gym import register_envs

    register_envs()


FAMILIES: dict[str, Family] = {
    # ale-py registers ALE/... and the v4 ids on import; AtariPreprocessing needs OpenCV. The pipeline
    # skips frames itself, so the emulator must not (tfppo.envs.atari).
    ATARI: Family(extra="atari", modules=("ale_py", "cv2"), make_kwargs={"frameskip": 1}, wrap=wrap_atari),
    # 10×10×C bool observations go to the policy as they are (tfppo.envs.spaces.image_trunk)
    MINATAR: Family(extra="minatar", modules=("minatar.gym",), register=_register_minatar),
}
_registered: set[str] = set()


def register_family(env_id: str) -> None:
    """Make the family of ``env_id`` known to gymnasium (once per process); one line naming the pip extra
    when its package is missing."""
    name = env_family(env_id)
    if name is None or name in _registered:
        return
    family = FAMILIES[name]
    for module in family.modules:
        try:
            importlib.import_module(module)
        except ImportError as exc:
            raise ConfigError(f"env '{env_id}' needs the {family.extra} extra ({' '.join(str(exc).split())}); "
                              f"run: pip install tfppo[{family.extra}]") from None
    if family.register is not None:
        family.register()
    _registered.add(name)


def make_family_env(env_id: str, **kwargs: Any) -> gymnasium.Env:
    """``gymnasium.make(env_id)`` with the family's make kwargs (the caller's win), wrapped in its pipeline."""
    name = env_family(env_id)
    if name is None:
        return gymnasium.make(env_id, **kwargs)
    register_family(env_id)  # a spawned AsyncVectorEnv worker starts with gymnasium's own registry
    family = FAMILIES[name]
    env = gymnasium.make(env_id, **{**family.make_kwargs, **kwargs})
    return family.wrap(env) if family.wrap is not None else env
