"""Hyperparameters with the original names, per-preset defaults, validation (spec §1).

A config says *how much* (sizes, rates, coefficients); `Semantics` says *how*.
Every check raises a one-line `ConfigError` naming the flag and the allowed
values, before any env is created or anything is written.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Optional

from tfppo.util.errors import ConfigError
from tfppo.config.schedules import Schedule, parse_schedule
from tfppo.config.semantics import Semantics, get_preset

ACTIVATIONS = ("tanh", "relu")
POLICIES = ("mlp", "lstm", "lnlstm")
RECURRENT_POLICIES = ("lstm", "lnlstm")
# [SB] policy class names and [B] network names accepted for the same policies; the trunk follows the
# observation space (a CNN for images, the MLP otherwise), so [B] cnn_lstm / [SB] CnnLstmPolicy are lstm
POLICY_ALIASES = {"mlppolicy": "mlp", "mlplstmpolicy": "lstm", "mlplnlstmpolicy": "lnlstm",
                  "cnn_lstm": "lstm", "cnn_lnlstm": "lnlstm", "cnnlstmpolicy": "lstm", "cnnlnlstmpolicy": "lnlstm"}
VECTORIZATIONS: tuple[str, ...] = ("sync", "async")  # gymnasium SyncVectorEnv / AsyncVectorEnv (tfppo.envs.factory)


@dataclass(frozen=True)
class NetworkConfig:
    """Network shape: hidden sizes per tower and the hidden activation."""

    hidden_sizes: tuple[int, ...] = (64, 64)
    activation: str = "tanh"

    def __post_init__(self) -> None:
        try:
            object.__setattr__(self, "hidden_sizes", tuple(int(h) for h in self.hidden_sizes))
        except (TypeError, ValueError):
            raise ConfigError(f"--hidden_sizes must be positive integers, got {self.hidden_sizes!r}") from None
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
# PPO1 presets under the PPO2 trainer take the sizes of their PPO2 counterpart ([B] run_mujoco PPO1 and
# [B] mujoco() PPO2 already agree on batch, minibatch, epochs, lr and clip: spec §10).
PPO2_PRESET_DEFAULTS["baselines-ppo1"] = PPO2_PRESET_DEFAULTS["baselines-ppo2-mujoco"]
PPO2_PRESET_DEFAULTS["equivalent"] = PPO2_PRESET_DEFAULTS["baselines-ppo2-mujoco"]
PPO2_PRESET_DEFAULTS["sb-ppo1"] = PPO2_PRESET_DEFAULTS["sb-ppo2"]


def resolve_policy(name: Any) -> str:
    """A policy name (any case, [SB] class names accepted) as one of POLICIES."""
    key = str(name).lower()
    key = POLICY_ALIASES.get(key, key)
    if key not in POLICIES:
        raise ConfigError(f"--policy {name!r} is invalid; allowed: {', '.join(POLICIES)} "
                          f"(or MlpPolicy, MlpLstmPolicy, MlpLnLstmPolicy, cnn_lstm, cnn_lnlstm, CnnLstmPolicy, "
                          f"CnnLnLstmPolicy)")
    return key


def check_feedforward_policy(policy: Any, trainer: str) -> None:
    """PPO1 ([B]/[SB] pposgd_simple) has no recurrent policy: refuse one in a single line."""
    if policy is not None and resolve_policy(policy) != "mlp":
        raise ConfigError(f"--policy {policy} is PPO2 only: {trainer} (pposgd_simple) has no recurrent policy; "
                          f"allowed: mlp")


def _positive_int(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ConfigError(f"--{name} must be a positive integer, got {value!r}")
    return value


def _unit_interval(name: str, value: float) -> float:
    if not 0.0 < float(value) <= 1.0:
        raise ConfigError(f"--{name} must be in (0, 1], got {value!r}")
    return float(value)


class _TrainerConfig:
    """Shared construction and (de)serialisation of the two trainers' configs."""

    PRESET_DEFAULTS: dict[str, dict[str, Any]] = {}
    SCHEDULE_FIELDS: tuple[str, ...] = ()

    @classmethod
    def create(cls, env: str, preset: str, **overrides: Any):
        """Preset defaults, then explicit overrides (None means 'not given')."""
        get_preset(preset)
        if preset not in cls.PRESET_DEFAULTS:
            raise ConfigError(f"preset {preset!r} does not fit this trainer; allowed: {', '.join(cls.PRESET_DEFAULTS)}")
        values = dict(cls.PRESET_DEFAULTS[preset])
        values.update({k: v for k, v in overrides.items() if v is not None})
        unknown = sorted(set(values) - {f.name for f in dataclasses.fields(cls)})
        if unknown:
            raise ConfigError(f"unknown hyperparameter {unknown[0]!r} for {cls.__name__}")
        for name in cls.SCHEDULE_FIELDS:
            if values.get(name) is not None:
                values[name] = parse_schedule(values[name], f"--{name}")
        if isinstance(values.get("network"), dict):
            values["network"] = NetworkConfig(**values["network"])
        return cls(env=env, preset=preset, **values)

    def to_dict(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        for name in self.SCHEDULE_FIELDS:
            value = getattr(self, name)
            out[name] = None if value is None else str(value)
        out["network"] = {"hidden_sizes": list(self.network.hidden_sizes), "activation": self.network.activation}
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]):
        data = dict(data)
        network = data.pop("network", {})
        data["network"] = NetworkConfig(tuple(network.get("hidden_sizes", (64, 64))),
                                        network.get("activation", "tanh"))
        env, preset = data.pop("env"), data.pop("preset")
        return cls.create(env, preset, **data)

    def with_budget(self, **budget: Any):
        """This config with a new budget, validated as any config is; other fields stay as they are."""
        unknown = sorted(set(budget) - set(self.budget()))
        if unknown:
            raise ConfigError(f"{unknown[0]!r} is not a budget of {type(self).__name__}; allowed: "
                              f"{', '.join(self.budget())}")
        if len(self.budget()) > 1:  # PPO1: the budget given replaces the others (exactly one is > 0)
            budget = {name: budget.get(name) or 0 for name in self.budget()}
        return dataclasses.replace(self, **budget)

    def _check_common(self) -> None:
        _unit_interval("gamma", self.gamma)
        _unit_interval("lam", self.lam)
        if not isinstance(self.seed, int) or isinstance(self.seed, bool) or self.seed < 0:
            raise ConfigError(f"--seed must be a non-negative integer, got {self.seed!r}")


@dataclass(frozen=True)
class PPO2Config(_TrainerConfig):
    """[SB] PPO2 names (spec §1.4); ``num_envs`` envs in one process."""

    PRESET_DEFAULTS = PPO2_PRESET_DEFAULTS
    SCHEDULE_FIELDS = ("learning_rate", "cliprange", "cliprange_vf")

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
    # mlp, or [B] ppo2's recurrent networks lstm / lnlstm (`tfppo.core.recurrent`) with nlstm units
    policy: str = "mlp"
    nlstm: int = 128

    def __post_init__(self) -> None:
        object.__setattr__(self, "policy", resolve_policy(self.policy))
        for name in ("num_envs", "n_steps", "nminibatches", "noptepochs", "total_timesteps", "nlstm"):
            _positive_int(name, getattr(self, name))
        if self.batch_size % self.nminibatches:
            raise ConfigError(f"--nminibatches {self.nminibatches} must divide n_steps*num_envs = {self.batch_size}")
        if self.recurrent and self.num_envs % self.nminibatches:
            raise ConfigError(f"--nminibatches {self.nminibatches} must divide --num_envs {self.num_envs} with "
                              f"--policy {self.policy} (minibatches are whole env sequences, as in [B] ppo2)")
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
        if self.vectorization not in VECTORIZATIONS:
            raise ConfigError(f"--vectorization {self.vectorization!r} is invalid; allowed: {', '.join(VECTORIZATIONS)}")
        self._check_common()

    @property
    def batch_size(self) -> int:
        return self.n_steps * self.num_envs

    @property
    def recurrent(self) -> bool:
        return self.policy in RECURRENT_POLICIES

    def budget(self) -> dict[str, int]:
        """The budget fields (what ``with_budget`` takes)."""
        return {"total_timesteps": self.total_timesteps}

    def resolve_semantics(self, semantics: Semantics) -> Semantics:
        """Fold [SB] ``cliprange_vf`` into the value-clip switch (spec §6.2)."""
        if self.cliprange_vf is None:
            return semantics
        if self.cliprange_vf.value < 0:
            return semantics.replace(value_clip="off")
        return semantics.replace(value_clip="separate")


SCHEDULES = ("constant", "linear")
BUDGETS = ("max_timesteps", "max_episodes", "max_iters", "max_seconds")

# PPO1 hyperparameter defaults (spec §1.1-1.2): [B] learn() has none, so baselines-ppo1 takes
# run_mujoco.py's values; sb-ppo1 takes [SB] PPO1's constructor defaults (Atari-like).
PPO1_PRESET_DEFAULTS: dict[str, dict[str, Any]] = {
    "baselines-ppo1": dict(timesteps_per_actorbatch=2048, clip_param=0.2, entcoeff=0.0, optim_epochs=10,
                           optim_stepsize=3e-4, optim_batchsize=64, gamma=0.99, lam=0.95, schedule="linear"),
    "sb-ppo1": dict(timesteps_per_actorbatch=256, clip_param=0.2, entcoeff=0.01, optim_epochs=4,
                    optim_stepsize=1e-3, optim_batchsize=64, gamma=0.99, lam=0.95, schedule="linear"),
}
PPO1_PRESET_DEFAULTS["equivalent"] = PPO1_PRESET_DEFAULTS["baselines-ppo1"]
PPO1_PRESET_DEFAULTS["baselines-ppo2"] = PPO1_PRESET_DEFAULTS["baselines-ppo1"]
PPO1_PRESET_DEFAULTS["baselines-ppo2-mujoco"] = PPO1_PRESET_DEFAULTS["baselines-ppo1"]
PPO1_PRESET_DEFAULTS["sb-ppo2"] = PPO1_PRESET_DEFAULTS["sb-ppo1"]


@dataclass(frozen=True)
class PPO1Config(_TrainerConfig):
    """[B]/[SB] ``pposgd_simple`` names (spec §1.1-1.2); one env per MPI rank.

    Exactly one budget of max_timesteps / max_episodes / max_iters / max_seconds
    is > 0, as [B] asserts ([SB]'s total_timesteps is max_timesteps).
    """

    PRESET_DEFAULTS = PPO1_PRESET_DEFAULTS

    env: str = "CartPole-v1"
    preset: str = "sb-ppo1"
    timesteps_per_actorbatch: int = 256
    clip_param: float = 0.2
    entcoeff: float = 0.01
    optim_epochs: int = 4
    optim_stepsize: float = 1e-3
    optim_batchsize: int = 64
    gamma: float = 0.99
    lam: float = 0.95
    schedule: str = "linear"
    max_timesteps: int = 0
    max_episodes: int = 0
    max_iters: int = 0
    max_seconds: float = 0
    # tfppo, not in [B]: with max_timesteps, stop after floor(max_timesteps / (W·T)) updates even when [B]'s
    # episode counter (row 10) has not reached max_timesteps yet, so PPO1, like PPO2 (spec §7.2), never runs
    # past its budget. Off by default, as in [B]; the comparison suites turn it on (equal budgets).
    stop_at_budget: bool = False
    seed: int = 0
    network: NetworkConfig = field(default_factory=NetworkConfig)

    def __post_init__(self) -> None:
        if self.stop_at_budget and self.max_timesteps <= 0:
            raise ConfigError("--stop_at_budget needs --max_timesteps (it caps the updates at "
                              "floor(max_timesteps / (workers · timesteps_per_actorbatch)))")
        for name in ("timesteps_per_actorbatch", "optim_epochs"):
            _positive_int(name, getattr(self, name))
        if isinstance(self.optim_batchsize, bool) or not isinstance(self.optim_batchsize, int) \
                or self.optim_batchsize < 0:
            raise ConfigError(f"--optim_batchsize must be a non-negative integer (0 = full batch), "
                              f"got {self.optim_batchsize!r}")
        if self.optim_batchsize > self.timesteps_per_actorbatch:
            raise ConfigError(f"--optim_batchsize {self.optim_batchsize} must be <= timesteps_per_actorbatch "
                              f"{self.timesteps_per_actorbatch}")
        if self.clip_param <= 0:
            raise ConfigError(f"--clip_param must be > 0, got {self.clip_param}")
        if self.optim_stepsize <= 0:
            raise ConfigError(f"--optim_stepsize must be > 0, got {self.optim_stepsize}")
        if self.entcoeff < 0:
            raise ConfigError(f"--entcoeff must be >= 0, got {self.entcoeff}")
        if self.schedule not in SCHEDULES:
            raise ConfigError(f"--schedule {self.schedule!r} is invalid; allowed: {', '.join(SCHEDULES)}")
        budgets = [name for name in BUDGETS if getattr(self, name) > 0]
        if any(getattr(self, name) < 0 for name in BUDGETS) or len(budgets) != 1:
            raise ConfigError(f"give exactly one positive budget of --{', --'.join(BUDGETS)}; got "
                              f"{', '.join(budgets) or 'none'}")
        if self.schedule == "linear" and self.max_timesteps <= 0:
            raise ConfigError("--schedule linear needs --max_timesteps (lrmult = 1 − timesteps/max_timesteps)")
        self._check_common()

    @property
    def ent_coef(self) -> float:
        return self.entcoeff

    def budget(self) -> dict[str, float]:
        """The four budgets of [B] learn(), exactly one of them > 0."""
        return {name: getattr(self, name) for name in BUDGETS}
