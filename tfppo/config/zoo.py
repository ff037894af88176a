"""Env-tuned hyperparameters, rl-zoo style: what the CLIs use for a known env.

Used only when no ``--preset`` is given (an explicit preset means its original
defaults); then precedence is preset defaults < this table < explicit flags.
Only hyperparameters live here, never Semantics; the scripts print which
entries were applied and ``--no_zoo`` turns them off.

* ppo2 / CartPole-v1: rl-baselines-zoo ``ppo2.yml`` (anchors §1b).
* ppo1 / CartPole-v1: [SB] PPO1 defaults with 10 epochs and no entropy bonus;
  reaches EpRewMean ≥ 475 within 200k steps with 1 and with 4 workers (seed 0).
"""
from __future__ import annotations

from typing import Any

ZOO: dict[tuple[str, str], dict[str, Any]] = {
    ("ppo2", "CartPole-v1"): dict(num_envs=8, n_steps=32, nminibatches=1, noptepochs=20, lam=0.8, gamma=0.98,
                                  learning_rate="lin_1e-3", cliprange="lin_0.2", ent_coef=0.0,
                                  total_timesteps=100_000),
    ("ppo1", "CartPole-v1"): dict(optim_epochs=10, entcoeff=0.0),
}


def zoo_hyperparameters(algo: str, env: str) -> dict[str, Any]:
    """The tuned entries for (algo, env), or {} when the env has none."""
    return dict(ZOO.get((algo, env), {}))


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
