"""What the trainer CLIs say about a run's flags, without TensorFlow or an env: the same parser and
``build_config`` as ``tfppo-ppo1`` / ``tfppo-ppo2`` (`tfppo.cli.ppo1`, `tfppo.cli.ppo2`), so a suite is
validated by exactly the code that will run it."""
from __future__ import annotations

import contextlib
import io
from types import ModuleType
from typing import Optional

from tfppo.cli import ppo1, ppo2
from tfppo.config.hyperparameters import PPO1Config, PPO2Config
from tfppo.config.semantics import Semantics
from tfppo.util.errors import ConfigError

TRAINER_CLIS: dict[str, ModuleType] = {"ppo1": ppo1, "ppo2": ppo2}
# the module each trainer runs as, ``python -m <module>`` (the console scripts tfppo-ppo1 / tfppo-ppo2)
TRAINER_MODULES = {trainer: module.__name__ for trainer, module in TRAINER_CLIS.items()}


def validate_args(trainer: str, args: list[str]) -> Optional[str]:
    """The trainer CLI's own verdict on ``args`` (parser + build_config): None or one line."""
    module = TRAINER_CLIS[trainer]
    stderr = io.StringIO()
    try:
        with contextlib.redirect_stderr(stderr), contextlib.redirect_stdout(io.StringIO()):
            module.build_config(module.parse_args(args))
    except SystemExit:  # argparse: unknown flag or bad value, already one line on stderr
        return stderr.getvalue().strip().split(": error: ", 1)[-1] or "invalid flags"
    except ConfigError as exc:
        return str(exc)
    return None


def semantics_and_config(trainer: str, args: list[str]) -> tuple[Semantics, PPO1Config | PPO2Config]:
    """The Semantics record and config the trainer builds from ``args``."""
    module = TRAINER_CLIS[trainer]
    config, semantics = module.build_config(module.parse_args(args))
    return semantics, config
