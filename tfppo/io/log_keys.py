"""The names a run's log rows use, as the originals print them (spec §9).

The trainers record Stable-Baselines' names; the logger renames them on the way in:

* ``sb``: [SB] PPO2 (``ep_reward_mean``, ``approxkl``, ...) and [B]/[SB] PPO1 (``EpRewMean``, ``loss_kl``, ...).
* ``baselines``: [B] ``ppo2.learn``'s ``misc/`` and ``loss/`` prefixes and ``eprewmean``/``eplenmean``,
  logged as NaN before the first episode ends ([B] ``safemean`` of an empty buffer) where [SB] omits them.
  PPO1's keys are the same in both libraries.
* ``both``: every row under both names, e.g. to compare with runs of either library.

The Baselines presets default to ``baselines`` (and [B] ppo2's stdout cadence, ``log_interval=10``), the
others to ``sb`` (``log_interval=1``). progress.csv and TensorBoard always get every update.
"""
from __future__ import annotations

from typing import Callable

from tfppo.util.errors import ConfigError

LOG_KEY_STYLES = ("baselines", "sb", "both")
# [SB] name -> [B] ppo2.learn name (its logger.logkv calls, spec §9)
BASELINES_PPO2 = {
    "serial_timesteps": "misc/serial_timesteps", "n_updates": "misc/nupdates",
    "total_timesteps": "misc/total_timesteps", "explained_variance": "misc/explained_variance",
    "time_elapsed": "misc/time_elapsed", "ep_reward_mean": "eprewmean", "ep_len_mean": "eplenmean",
    "policy_loss": "loss/policy_loss", "value_loss": "loss/value_loss", "policy_entropy": "loss/policy_entropy",
    "approxkl": "loss/approxkl", "clipfrac": "loss/clipfrac",
}


# One quantity -> the key [SB] PPO2 and PPO1 log it under. With the [B] ppo2 names above this is the one
# table of aliases: the logger writes these keys, the comparison's tidy tables and the run plots read them.
QUANTITY_KEYS: dict[str, tuple[str, str]] = {
    "timesteps": ("total_timesteps", "EnvStepsSoFar"),  # env steps of all ranks (not PPO1's TimestepsSoFar, row 10)
    "time": ("time_elapsed", "TimeElapsed"),
    "train_return": ("ep_reward_mean", "EpRewMean"),
    "episode_length": ("ep_len_mean", "EpLenMean"),
    "approxkl": ("approxkl", "approxkl"),
    "kl": ("kl", "loss_kl"),
    "clipfrac": ("clipfrac", "clipfrac"),
    "entropy": ("policy_entropy", "loss_ent"),
    "explained_variance": ("explained_variance", "ev_tdlam_before"),
    "value_loss": ("value_loss", "loss_vf_loss"),
}


# Keys whose values are wall-clock readings (the only columns two runs of the same command may differ in):
# time/elapsed is the one clock of both trainers (seconds from learn() to the end of each update); the others
# are the originals' own (PPO2's time_elapsed is read at the *start* of an update, as [SB]/[B] ppo2 log it).
UNIFIED_TIME_KEY = "time/elapsed"
WALL_CLOCK_KEYS = frozenset({UNIFIED_TIME_KEY, "time_elapsed", "misc/time_elapsed", "TimeElapsed", "fps",
                             "StepsPerSecRank", "StepsPerSecTotal"})


def aliases(quantity: str) -> tuple[str, ...]:
    """Every name ``quantity`` is logged under, in order of preference: [SB] PPO2, PPO1, [B] ppo2."""
    ppo2, ppo1 = QUANTITY_KEYS[quantity]
    return tuple(dict.fromkeys((ppo2, ppo1, BASELINES_PPO2.get(ppo2, ppo2))))


def find_key(columns, quantity: str) -> str | None:
    """The first of ``quantity``'s names present in ``columns`` (a progress.csv header), else None."""
    return next((name for name in aliases(quantity) if name in columns), None)


def default_style(preset: str) -> str:
    return "baselines" if preset.startswith("baselines") else "sb"


def default_log_interval(algo: str, preset: str) -> int:
    """[B] ppo2.learn prints every 10th update (and the first); [SB] and PPO1 every update."""
    return 10 if algo == "ppo2" and default_style(preset) == "baselines" else 1


def check(style: str | None, interval: int | None) -> None:
    if style is not None and style not in LOG_KEY_STYLES:
        raise ConfigError(f"--log_keys {style!r} is invalid; allowed: {', '.join(LOG_KEY_STYLES)}")
    if interval is not None and (isinstance(interval, bool) or not isinstance(interval, int) or interval < 1):
        raise ConfigError(f"--log_interval must be a positive integer, got {interval!r}")


def key_map(algo: str, style: str) -> Callable[[str], tuple[str, ...]]:
    """The names one recorded key is written under."""
    if algo != "ppo2" or style == "sb":
        return lambda key: (key,)
    if style == "baselines":
        return lambda key: (BASELINES_PPO2.get(key, key),)
    return lambda key: tuple(dict.fromkeys((key, BASELINES_PPO2.get(key, key))))
