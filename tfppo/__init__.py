"""tfppo: Baselines/Stable-Baselines PPO1 (MPI) and PPO2 (vectorised) in TensorFlow 2 / Keras.

Public API: ``tfppo.PPO2(env, **hyperparameters).learn(total_timesteps)``,
``.save(dir)``, ``tfppo.load(dir)`` and ``.predict(obs, deterministic=True)``.
"""
from __future__ import annotations

import importlib
import os
from typing import Any

from tfppo.util.device import enable_xla_cache
from tfppo.util.errors import ConfigError
from tfppo.config.semantics import PRESETS, Semantics

enable_xla_cache()  # before TF's runtime starts: it reads the flag once (tfppo.util.device)

__all__ = ["PPO1", "PPO2", "load", "Semantics", "PRESETS", "ConfigError"]
__version__ = "0.1.0"


def __getattr__(name: str):
    # Import the trainers lazily: `import tfppo` stays cheap (no TensorFlow) for CLI validation.
    if name == "PPO2":
        from tfppo.training.ppo2 import PPO2
        return PPO2
    if name == "PPO1":
        from tfppo.training.ppo1 import PPO1
        return PPO1
    if name == "callbacks":  # `import tfppo` then `tfppo.callbacks.X`, as for the trainers
        return importlib.import_module("tfppo.callbacks")
    raise AttributeError(name)


def load(path: str | os.PathLike, **kwargs: Any):
    """Load a checkpoint directory written by ``.save``; returns a PPO1 or PPO2 agent."""
    from tfppo.training import checkpoint

    path = checkpoint.latest(path)  # a run directory of periodic checkpoints: the newest complete one
    meta = checkpoint.read_meta(path)
    if meta["algo"] == "ppo1":
        from tfppo.training.ppo1 import PPO1
        return PPO1.from_checkpoint(path, meta, **kwargs)
    from tfppo.training.ppo2 import PPO2
    return PPO2.from_checkpoint(path, meta, **kwargs)
