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

from tfppo.errors import ConfigError

LOG_KEY_STYLES = ("baselines", "sb", "both")
# [SB] name -> [B] ppo2.learn name (its logger.logkv calls, spec §9)
BASELINES_PPO2 = {
    "serial_timesteps": "misc/serial_timesteps", "n_updates": "misc/nupdates",
    "total_timesteps": "misc/total_timesteps", "explained_variance": "misc/explained_variance",
    "time_elapsed": "misc/time_elapsed", "ep_reward_mean": "eprewmean", "ep_len_mean": "eplenmean",
    "policy_loss": "loss/policy_loss", "value_loss": "loss/value_loss", "policy_entropy": "loss/policy_entropy",
    "approxkl": "loss/approxkl", "clipfrac": "loss/clipfrac",
}


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
