"""Env-tuned hyperparameters, rl-zoo style: what the CLIs use for a known env.

Used only when no ``--preset`` is given (an explicit preset means its original
defaults); then precedence is preset defaults < this table < explicit flags.
Only hyperparameters live here, never Semantics; the scripts print which
entries were applied and ``--no_zoo`` turns them off.

* ppo2 / CartPole-v1: rl-baselines-zoo ``ppo2.yml`` (anchors §1b).
* ppo1 / CartPole-v1: [SB] PPO1 defaults with 10 epochs and no entropy bonus;
  reaches EpRewMean ≥ 475 within 200k steps with 1 and with 4 workers (seed 0).
* every Atari id (``ALE/...``, ``...NoFrameskip-v4``; `tfppo.config.env_families`): ppo2 takes
  [B] ``ppo2/defaults.py`` ``atari()`` with ``baselines.run``'s 8 envs and 10M steps; ppo1 takes
  [B] ``ppo1/run_atari.py`` (its budget stays the CLI's: a zoo budget would clash with another
  budget flag).
"""
from __future__ import annotations

from typing import Any

from tfppo.config.env_families import ATARI, env_family

ZOO: dict[tuple[str, str], dict[str, Any]] = {
    ("ppo2", "CartPole-v1"): dict(num_envs=8, n_steps=32, nminibatches=1, noptepochs=20, lam=0.8, gamma=0.98,
                                  learning_rate="lin_1e-3", cliprange="lin_0.2", ent_coef=0.0,
                                  total_timesteps=100_000),
    ("ppo1", "CartPole-v1"): dict(optim_epochs=10, entcoeff=0.0),
}
# Entries for a whole env family, used when the id has no entry of its own.
FAMILY_ZOO: dict[tuple[str, str], dict[str, Any]] = {
    ("ppo2", ATARI): dict(num_envs=8, n_steps=128, nminibatches=4, noptepochs=4, lam=0.95, gamma=0.99,
                          ent_coef=0.01, learning_rate="lin_2.5e-4", cliprange="lin_0.1",
                          total_timesteps=10_000_000),
    ("ppo1", ATARI): dict(timesteps_per_actorbatch=256, clip_param=0.2, entcoeff=0.01, optim_epochs=4,
                          optim_stepsize=1e-3, optim_batchsize=64, gamma=0.99, lam=0.95, schedule="linear"),
}


def zoo_hyperparameters(algo: str, env: str) -> dict[str, Any]:
    """The tuned entries for (algo, env), else those of the env's family, or {} when there are none."""
    if (algo, env) in ZOO:
        return dict(ZOO[(algo, env)])
    return dict(FAMILY_ZOO.get((algo, env_family(env) or ""), {}))


def merge(flags: dict[str, Any], algo: str, env: str, enabled: bool = True) -> tuple[dict[str, Any], list[str]]:
    """Fill flags that were not given (None) from the zoo; returns (values, names taken from the zoo)."""
    merged = dict(flags)
    taken = []
    if enabled:
        for name, value in zoo_hyperparameters(algo, env).items():
            if merged.get(name) is None:
                merged[name] = value
                taken.append(name)
    return merged, taken
