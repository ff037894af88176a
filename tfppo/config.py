"""Hyperparameters with the original names, per-preset defaults, validation (spec §1).

A config says *how much* (sizes, rates, coefficients); `Semantics` says *how*.
Every check raises a one-line `ConfigError` naming the flag and the allowed
values, before any env is created or anything is written.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Optional

from tfppo.errors import ConfigError
from tfppo.schedules import Schedule, parse_schedule
from tfppo.semantics import Semantics, get_preset

VECTORIZATION = ("sync", "async")
ACTIVATIONS = ("tanh", "relu")


@dataclass(frozen=True)
class NetworkConfig:
    """Network shape: hidden sizes per tower and the hidden activation."""

    hidden_sizes: tuple[int, ...] = (64, 64)
    activation: str = "tanh"

    def __post_init__(self) -> None:
        if self.activation not in ACTIVATIONS:
            raise ConfigError(f"--activation {self.activation!r} is invalid; allowed: {', '.join(ACTIVATIONS)}")
        if not self.hidden_sizes or any(int(h) <= 0 for h in self.hidden_sizes):
            raise ConfigError(f"--hidden_sizes must be positive integers, got {list(self.hidden_sizes)}")



# Hyperparameter defaults of each PPO2 preset (spec §1.3 [B] ppo2.learn / defaults.mujoco(), §1.4 [SB] PPO2).
PPO2_PRESET_DEFAULTS: dict[str, dict[str, Any]] = {
    "baselines-ppo2": dict(n_steps=2048, nminibatches=4, noptepochs=4, learning_rate="3e-4", cliprange="0.2",
                           ent_coef=0.0, gamma=0.99, lam=0.95),
    "baselines-ppo2-mujoco": dict(n_steps=2048, nminibatches=32, noptepochs=10, learning_rate="lin_3e-4",
                                  cliprange="0.2", ent_coef=0.0, gamma=0.99, lam=0.95),
    "sb-ppo2": dict(n_steps=128, nminibatches=4, noptepochs=4, learning_rate="2.5e-4", cliprange="0.2",
                    ent_coef=0.01, gamma=0.99, lam=0.95),
}


def _positive_int(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ConfigError(f"--{name} must be a positive integer, got {value!r}")
    return value


def _unit_interval(name: str, value: float) -> float:
    if not 0.0 < float(value) <= 1.0:
        raise ConfigError(f"--{name} must be in (0, 1], got {value!r}")
    return float(value)


@dataclass(frozen=True)
class PPO2Config:
    """[SB] PPO2 names (spec §1.4); ``num_envs`` envs in one process."""

    env: str = "CartPole-v1"
    preset: str = "sb-ppo2"
    num_envs: int = 1
    n_steps: int = 128
    nminibatches: int = 4
    noptepochs: int = 4
    learning_rate: Schedule = Schedule(2.5e-4)
    cliprange: Schedule = Schedule(0.2)
    # [SB] cliprange_vf: None -> ε_v = cliprange; negative -> no value clipping; positive -> separate (§6.2).
    cliprange_vf: Optional[Schedule] = None
    ent_coef: float = 0.01
    gamma: float = 0.99
    lam: float = 0.95
    total_timesteps: int = 1_000_000
    seed: int = 0
    vectorization: str = "sync"
    network: NetworkConfig = field(default_factory=NetworkConfig)

    @classmethod
    def create(cls, env: str, preset: str = "sb-ppo2", **overrides: Any) -> "PPO2Config":
        """Preset defaults, then explicit overrides (None means 'not given')."""
        get_preset(preset)
        values = dict(PPO2_PRESET_DEFAULTS[preset])
        values.update({k: v for k, v in overrides.items() if v is not None})
        unknown = sorted(set(values) - {f.name for f in dataclasses.fields(cls)})
        if unknown:
            raise ConfigError(f"unknown PPO2 hyperparameter {unknown[0]!r}")
        for name in ("learning_rate", "cliprange"):
            values[name] = parse_schedule(values[name], f"--{name}")
        if values.get("cliprange_vf") is not None:
            values["cliprange_vf"] = parse_schedule(values["cliprange_vf"], "--cliprange_vf")
        if isinstance(values.get("network"), dict):
            values["network"] = NetworkConfig(**values["network"])
        return cls(env=env, preset=preset, **values)

    def __post_init__(self) -> None:
        for name in ("num_envs", "n_steps", "nminibatches", "noptepochs", "total_timesteps"):
            _positive_int(name, getattr(self, name))
        if self.batch_size % self.nminibatches:
            raise ConfigError(f"--nminibatches {self.nminibatches} must divide n_steps*num_envs = {self.batch_size}")
        if self.total_timesteps < self.batch_size:
            raise ConfigError(f"--total_timesteps {self.total_timesteps} must be >= n_steps*num_envs = "
                              f"{self.batch_size} (one update)")
        if self.cliprange.value <= 0:
            raise ConfigError(f"--cliprange must be > 0, got {self.cliprange}")
        if self.learning_rate.value <= 0:
            raise ConfigError(f"--learning_rate must be > 0, got {self.learning_rate}")
        if self.cliprange_vf is not None and self.cliprange_vf.value == 0:
            raise ConfigError("--cliprange_vf must be > 0 (separate clip), < 0 (no value clipping) or unset")
        if self.ent_coef < 0:
            raise ConfigError(f"--ent_coef must be >= 0, got {self.ent_coef}")
        _unit_interval("gamma", self.gamma)
        _unit_interval("lam", self.lam)
        if self.vectorization not in VECTORIZATION:
            raise ConfigError(f"--vectorization {self.vectorization!r} is invalid; allowed: {', '.join(VECTORIZATION)}")
        if not isinstance(self.seed, int) or self.seed < 0:
            raise ConfigError(f"--seed must be a non-negative integer, got {self.seed!r}")

    @property
    def batch_size(self) -> int:
        return self.n_steps * self.num_envs

    @property
    def n_updates(self) -> int:
        """floor(total/nbatch); leftover steps are never collected (spec §7.2)."""
        return self.total_timesteps // self.batch_size

    def resolve_semantics(self, semantics: Semantics) -> Semantics:
        """Fold [SB] ``cliprange_vf`` into the value-clip switch (spec §6.2)."""
        if self.cliprange_vf is None:
            return semantics
        if self.cliprange_vf.value < 0:
            return semantics.replace(value_clip="off")
        return semantics.replace(value_clip="separate")

    def to_dict(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        for name in ("learning_rate", "cliprange", "cliprange_vf"):
            value = getattr(self, name)
            out[name] = None if value is None else str(value)
        out["network"] = {"hidden_sizes": list(self.network.hidden_sizes), "activation": self.network.activation}
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "PPO2Config":
        data = dict(data)
        network = data.pop("network", {})
        data["network"] = NetworkConfig(tuple(network.get("hidden_sizes", (64, 64))),
                                        network.get("activation", "tanh"))
        env, preset = data.pop("env"), data.pop("preset")
        return cls.create(env, preset, **data)
