"""Every PPO1/PPO2 difference as one named switch (spec §10).

`Semantics` is the single record that decides *how* an update is computed; the
hyperparameters that only say *how much* (learning rate, clip range, batch
sizes) live in `tfppo.config.hyperparameters`.  Each field cites the row of the spec's §10
table it reproduces, so an ablation is one field flipped and "equivalent"
settings can be checked by a test.

Presets reproduce the original code paths:

* ``baselines-ppo2``        [B] ``ppo2.learn`` called directly: shared towers.
* ``baselines-ppo2-mujoco`` [B] ``ppo2`` through ``baselines.run`` on MuJoCo:
  ``value_network='copy'`` and ``VecNormalize`` (spec §1.3, §5.4).
* ``sb-ppo2``               [SB] ``PPO2`` with ``MlpPolicy`` (separate towers).
* ``baselines-ppo1``        [B] ``pposgd_simple`` with ``MlpPolicy``.
* ``sb-ppo1``               [SB] ``PPO1``.
* ``equivalent``            the meeting point where PPO1 and PPO2 make identical updates.

Every preset runs under either trainer: the record says how an update is
computed, the trainer only how data is collected and gradients averaged.
"""
from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass, fields
from typing import Any, Literal, Optional, get_args, get_origin, get_type_hints

from tfppo.util.errors import ConfigError

AdvantageScope = Literal["minibatch", "batch", "none"]
ValueLossKind = Literal["clipped", "mse"]
ValueClipMode = Literal["cliprange", "separate", "off"]
InitKind = Literal["orthogonal", "normc"]
ObsNormMode = Literal["none", "env", "policy"]
OldLogpSource = Literal["stored", "recomputed"]
FirstSample = Literal["current", "stale_action", "stale_action_and_value"]
TimestepCounting = Literal["exact", "episodes"]
VecNormReset = Literal["baselines", "sb"]
PolicyLoss = Literal["clip", "kl_penalty", "fixed_kl", "clip_and_kl"]


@dataclass(frozen=True)
class Semantics:
    """How one PPO iteration is computed. Defaults are [SB] PPO2's."""

    # Row 6 (spec §4): where advantages are normalised. PPO2: every minibatch,
    # every epoch; PPO1: once over the whole local batch, before shuffling.
    adv_norm: AdvantageScope = "minibatch"
    # Row 6: added to the std. PPO2 1e-8; PPO1 none (a zero std gives inf/NaN).
    adv_norm_eps: float = 1e-8
    # Row 7 (spec §6): "clipped" is PPO2's 0.5·mean(max((V−R)², (V_clip−R)²));
    # "mse" is PPO1's mean((V−R)²) with no ½ and no clip.
    value_loss: ValueLossKind = "clipped"
    # Row 7 / spec §6.2: ε_v is the policy cliprange ([B], [SB] cliprange_vf=None),
    # a separate schedule ([SB] cliprange_vf>0) or off ([SB] cliprange_vf<0).
    value_clip: ValueClipMode = "cliprange"
    # Row 7: weight of the value loss in the total loss (PPO2 0.5, PPO1 1).
    vf_coef: float = 0.5
    # Row 12: global-norm clip over all gradients after any MPI averaging; None = off (PPO1).
    max_grad_norm: Optional[float] = 0.5
    # Row 11: Adam ε (ε-hat form, β=(0.9, 0.999)); 1e-5 in all four originals.
    adam_epsilon: float = 1e-5
    # Row 13: one MLP trunk for policy and value ([B] ppo2 default) or two ('copy', [SB], PPO1).
    shared_towers: bool = False
    # Row 14: orthogonal (√2 hidden, 0.01 policy head, 1 value head) or normc ([B] PPO1).
    init: InitKind = "orthogonal"
    # Row 14 / spec §5.3: [B] ppo2's ``_matching_fc``: when the last hidden width equals the size of the
    # distribution parameters (action dim for Box, number of actions for Discrete) the latent *is* the
    # parameters, with no 0.01 head. [B] PPO1's MlpPolicy and [SB] always add the head.
    matching_fc: bool = False
    # Row 16: no obs normalisation, env-side VecNormalize (per step, clip 10), or
    # policy-side running statistics ([B] PPO1 MlpPolicy: per iteration, clip 5, σ ≥ 0.1, MPI-global).
    obs_norm: ObsNormMode = "none"
    # Row 17: VecNormalize return-based reward scaling (clip 10).
    reward_norm: bool = False
    # Rows 16-17 / spec §5.4: what a VecNormalize reset does. [B] updates obs statistics with the reset
    # observations and leaves the return statistics alone; [SB] skips the obs update and folds the
    # zeroed returns into the return statistics. Matters only with obs_norm=env or reward_norm.
    vecnorm_reset: VecNormReset = "sb"
    # Row 18: clip Box actions to the bounds before env.step; the unclipped action is stored.
    clip_actions: bool = True
    # Row 19: both originals treat a time-limit truncation as terminal. True adds
    # γ·V(final obs) to the reward of a truncated step (SB3 #633) — a deliberate deviation.
    bootstrap_truncation: bool = False
    # Row 5: ratio denominator from the rollout's stored neglogp (PPO2) or recomputed
    # at update time by the frozen old policy (PPO1's oldpi).
    old_logp: OldLogpSource = "stored"
    # Rows 5/27: index 0 of each segment. PPO2 samples it with the current parameters;
    # [SB] PPO1 keeps the action drawn before the update; [B] PPO1 keeps action and value.
    first_sample: FirstSample = "current"
    # Row 9: [SB] PPO1 clips with ε·lrmult, so the clip range anneals with the step size.
    clip_anneal_with_lr: bool = False
    # Row 10: PPO1 lrmult counts exact timesteps ([SB]) or steps of completed episodes only ([B]).
    timestep_counting: TimestepCounting = "exact"
    # Row 23: PPO1 logs losses from one extra no-update pass after the epochs.
    eval_pass: bool = False
    # Not in the originals (SB3 #417): stop the epochs once approxkl exceeds 1.5·target_kl.
    target_kl: Optional[float] = None
    # The PPO paper's other algorithm (Schulman et al. 2017 §4, "PPO-Penalty", which many texts call PPO1;
    # none of the four originals implements it): "clip" is the clipped surrogate of all four originals;
    # "kl_penalty" maximises r·Â − β·KL(old‖new) with β adapted after each update (d < d_targ/1.5 → β/2,
    # d > 1.5·d_targ → 2β, d = mean KL of the updated policy); "fixed_kl" keeps β constant;
    # "clip_and_kl" adds the penalty to the clipped surrogate.
    policy_loss: PolicyLoss = "clip"
    kl_beta: float = 1.0  # β₀ (the paper's initial coefficient)
    kl_target: float = 0.01  # d_targ of the adaptive rule

    def __post_init__(self) -> None:
        for f in fields(self):
            _check_field(f.name, getattr(self, f.name))
        if self.value_loss == "mse" and self.value_clip != "off":
            raise ConfigError("semantics: value_loss=mse is PPO1's unclipped MSE; it needs value_clip=off")
        if self.max_grad_norm is not None and self.max_grad_norm <= 0:
            raise ConfigError(f"semantics: max_grad_norm must be > 0 or None, got {self.max_grad_norm}")
        if self.target_kl is not None and self.target_kl <= 0:
            raise ConfigError(f"semantics: target_kl must be > 0 or None, got {self.target_kl}")
        if self.kl_beta < 0 or self.kl_target <= 0:
            raise ConfigError(f"semantics: kl_beta must be >= 0 and kl_target > 0, got {self.kl_beta}, {self.kl_target}")
        if self.vf_coef < 0 or self.adv_norm_eps < 0 or self.adam_epsilon <= 0:
            raise ConfigError("semantics: vf_coef and adv_norm_eps must be >= 0, adam_epsilon > 0")

    def replace(self, **changes: Any) -> "Semantics":
        unknown = sorted(set(changes) - set(self.field_names()))
        if unknown:
            raise ConfigError(f"unknown semantics key {unknown[0]!r}; allowed: {', '.join(self.field_names())}")
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Semantics":
        return cls().replace(**data)

    @classmethod
    def field_names(cls) -> list[str]:
        return [f.name for f in fields(cls)]

    def with_overrides(self, assignments: list[str]) -> "Semantics":
        """Apply ``key=value`` strings (the CLI's ``--semantics``), parsing by field type."""
        changes: dict[str, Any] = {}
        for item in assignments:
            key, sep, raw = item.partition("=")
            if not sep:
                raise ConfigError(f"--semantics expects key=value, got {item!r}")
            if key not in self.field_names():
                raise ConfigError(f"unknown semantics key {key!r}; allowed: {', '.join(self.field_names())}")
            changes[key] = parse_field_value(key, raw)
        return self.replace(**changes)


def _hints() -> dict[str, Any]:
    return get_type_hints(Semantics)


def allowed_values(name: str) -> str:
    hint = _hints()[name]
    if get_origin(hint) is Literal:
        return "|".join(get_args(hint))
    if hint is bool:
        return "true|false"
    if get_origin(hint) is not None and type(None) in get_args(hint):
        return "a number or none"
    return "a number"


def parse_field_value(name: str, raw: str) -> Any:
    """Parse one CLI string into the field's type, or raise a one-line ConfigError."""
    hint = _hints()[name]
    text = raw.strip().lower()
    try:
        if get_origin(hint) is Literal:
            return raw.strip()
        if hint is bool:
            if text in ("true", "1", "yes", "on"):
                return True
            if text in ("false", "0", "no", "off"):
                return False
            raise ValueError
        if get_origin(hint) is not None and type(None) in get_args(hint):
            return None if text in ("none", "null", "off") else float(text)
        return float(text)
    except ValueError:
        raise ConfigError(f"semantics {name}={raw!r} is invalid; allowed: {allowed_values(name)}") from None


def _check_field(name: str, value: Any) -> None:
    hint = _hints()[name]
    if get_origin(hint) is Literal:
        if value not in get_args(hint):
            raise ConfigError(f"semantics {name}={value!r} is invalid; allowed: {allowed_values(name)}")
    elif hint is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"semantics {name}={value!r} is invalid; allowed: true|false")
    elif value is not None or type(None) not in get_args(hint):
        # numbers: real and finite (a NaN would slip through every "<= 0" check below)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise ConfigError(f"semantics {name}={value!r} is invalid; allowed: {allowed_values(name)}")


_PPO2 = Semantics()
_PPO1 = Semantics(
    adv_norm="batch", adv_norm_eps=0.0, value_loss="mse", value_clip="off", vf_coef=1.0,
    max_grad_norm=None, old_logp="recomputed", eval_pass=True,
)

PRESETS: dict[str, Semantics] = {
    # [B] ppo2.learn defaults: value_network=None -> shared trunk; ClipActionsWrapper via make_env (§2.3).
    "baselines-ppo2": _PPO2.replace(shared_towers=True, vecnorm_reset="baselines", matching_fc=True),
    # [B] ppo2 defaults.mujoco(): value_network='copy'; baselines.run wraps MuJoCo in VecNormalize (§5.4).
    "baselines-ppo2-mujoco": _PPO2.replace(shared_towers=False, obs_norm="env", reward_norm=True,
                                           vecnorm_reset="baselines", matching_fc=True),
    # [SB] PPO2 + MlpPolicy: separate pi/vf towers, runner clips Box actions (§2.4, §5.2).
    "sb-ppo2": _PPO2,
    # [B] pposgd_simple + MlpPolicy: normc init, in-graph obs normalisation, no action clipping,
    # constant clip at HEAD, episode-based timestep counter, stale action+value at index 0 (§2.1, §5.1, §8).
    "baselines-ppo1": _PPO1.replace(
        init="normc", obs_norm="policy", clip_actions=False, first_sample="stale_action_and_value",
        timestep_counting="episodes", vecnorm_reset="baselines",
    ),
    # [SB] PPO1: orthogonal init, no obs normalisation, runner clips actions, value recomputed
    # after the update but the action at index 0 stale, clip annealed with lrmult, exact counter (§2.2, §5.2, §8).
    "sb-ppo1": _PPO1.replace(first_sample="stale_action", clip_anneal_with_lr=True, timestep_counting="exact"),
    # One update rule for both trainers (spec §10 "Equivalence configuration"): PPO1's loss (whole-batch
    # advantages, MSE value loss of weight 1 ≡ PPO2 cliprange_vf<0 with vf_coef 2, no gradient clipping)
    # on PPO2's data path (stored behaviour log-probs, index 0 sampled with the current parameters),
    # separate orthogonal towers, no normalisation. With one PPO1 worker and one PPO2 env of the same
    # sizes and seed, the two trainers make the same updates (tests/test_equivalence.py).
    "equivalent": _PPO1.replace(adv_norm_eps=1e-8, old_logp="stored", eval_pass=False),
}


def get_preset(name: str) -> Semantics:
    if name not in PRESETS:
        raise ConfigError(f"unknown preset {name!r}; allowed: {', '.join(PRESETS)}")
    return PRESETS[name]
