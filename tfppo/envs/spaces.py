"""Which observation and action spaces the policies take, and making actions safe for the env.

The checks run before any graph is built, so an unsupported env stops with one line naming the
allowed spaces; `clip_actions` is Baselines' ClipActionsWrapper (spec §2.3-2.4, row 18).
"""
from __future__ import annotations

from typing import Any

import numpy as np
from gymnasium import spaces

from tfppo.util.errors import ConfigError

# --------------------------------------------------------------------------- spaces
_OBS_ALLOWED = "Box (any shape; uint8 or bool HxWxC images for a CNN), Discrete"
IMAGE_DTYPES = (np.uint8, np.bool_)  # 3-d Boxes of these dtypes are images (pixels, or MinAtar's 0/1 channels)
NATURE_CNN_MIN_SIDE = 36  # the smallest height and width the Nature CNN's VALID convs 8/4, 4/2, 3/1 accept
_ACT_ALLOWED = "Discrete, Box with 1-d shape, MultiDiscrete (1-d), MultiBinary (1-d)"


def _describe(space: Any) -> str:
    """A compact, single-line space description (Box reprs can span lines)."""
    shape = getattr(space, "shape", None)
    dtype = getattr(space, "dtype", None)
    return f"{type(space).__name__}(shape={shape}, dtype={dtype})"


def is_image_space(space: spaces.Space) -> bool:
    """A 3-d uint8 or bool Box (H×W×C): the policy reads it with a CNN instead of flattening it."""
    return isinstance(space, spaces.Box) and space.dtype in IMAGE_DTYPES and len(space.shape) == 3


def image_trunk(space: spaces.Box) -> str:
    """Which CNN reads an image space: ``"nature"`` (spec §5.3) when both sides are at least
    `NATURE_CNN_MIN_SIDE`, else ``"small"`` — MinAtar's one 3×3 conv and fc 128 (Young & Tian 2019), since
    the Nature CNN's strided convs cannot read a 10×10 image."""
    return "nature" if min(space.shape[:2]) >= NATURE_CNN_MIN_SIDE else "small"


def pixel_scale(space: spaces.Box) -> float:
    """What an image is divided by: 255 for uint8 pixels, 1 for bool channels (already 0/1)."""
    return 255.0 if space.dtype == np.uint8 else 1.0


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


