"""Semantics presets against the spec's §10 table, CLI override parsing and validation."""

from __future__ import annotations

import json

import pytest

from tfppo.util.errors import ConfigError
from tfppo.config.semantics import PRESETS, Semantics, get_preset

# Expected key values, written out from the spec (§4, §5, §6, §7, §10 rows 5-23), not read from the code.
PPO2_COMMON = dict(
    adv_norm="minibatch", adv_norm_eps=1e-8,            # row 6: per minibatch, + 1e-8
    value_loss="clipped", value_clip="cliprange",         # row 7: 0.5·max(...), ε_v = ε
    vf_coef=0.5,                                           # row 7
    max_grad_norm=0.5,                                     # row 12
    adam_epsilon=1e-5,                                     # row 11
    init="orthogonal",                                     # row 14
    old_logp="stored",                                     # row 5: rollout neglogp
    first_sample="current",                                # row 27
    clip_anneal_with_lr=False,                             # row 9: cliprange(f), constant in presets
    eval_pass=False,                                       # row 23: mean over training steps
    clip_actions=True,                                     # row 18: [B] ClipActionsWrapper, [SB] runner
    bootstrap_truncation=False,                            # row 19: time limit is terminal
    target_kl=None,                                        # not in the originals
)
PPO1_COMMON = dict(
    adv_norm="batch", adv_norm_eps=0.0,                    # row 6: whole batch, no ε
    value_loss="mse", value_clip="off", vf_coef=1.0,       # row 7: mean((V−R)²), weight 1
    max_grad_norm=None,                                    # row 12: no clipping
    adam_epsilon=1e-5,                                     # row 11
    shared_towers=False,                                   # row 13: separate towers
    old_logp="recomputed",                                 # row 5: frozen oldpi
    eval_pass=True,                                        # row 23
    reward_norm=False,                                     # row 17
    bootstrap_truncation=False,                            # row 19
    target_kl=None,
)
EXPECTED = {
    "baselines-ppo2": dict(PPO2_COMMON, shared_towers=True, obs_norm="none", reward_norm=False),
    "baselines-ppo2-mujoco": dict(PPO2_COMMON, shared_towers=False, obs_norm="env", reward_norm=True),
    "sb-ppo2": dict(PPO2_COMMON, shared_towers=False, obs_norm="none", reward_norm=False),
    "baselines-ppo1": dict(PPO1_COMMON, init="normc", obs_norm="policy", clip_actions=False,
                           first_sample="stale_action_and_value", clip_anneal_with_lr=False,
                           timestep_counting="episodes"),
    "sb-ppo1": dict(PPO1_COMMON, init="orthogonal", obs_norm="none", clip_actions=True,
                    first_sample="stale_action", clip_anneal_with_lr=True, timestep_counting="exact"),
}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_preset_matches_spec_table(name):
    preset = get_preset(name)
    for key, expected in EXPECTED[name].items():
        actual = getattr(preset, key)
        if isinstance(expected, float):
            assert actual == pytest.approx(expected, rel=1e-12, abs=0.0), (name, key)
        else:
            assert actual == expected, (name, key, actual)


def test_every_preset_is_covered_and_unknown_preset_lists_allowed():
    assert set(EXPECTED) <= set(PRESETS)
    with pytest.raises(ConfigError) as info:
        get_preset("ppo3")
    assert "\n" not in str(info.value)
    for name in EXPECTED:
        assert name in str(info.value)


def test_defaults_are_sb_ppo2():
    assert Semantics() == get_preset("sb-ppo2")


def test_with_overrides_parses_by_field_type():
    sem = get_preset("sb-ppo2").with_overrides(
        ["adv_norm=batch", "max_grad_norm=none", "clip_actions=false", "vf_coef=2", "target_kl=0.015",
         "adv_norm_eps=0", "shared_towers=TRUE"])
    assert sem.adv_norm == "batch"
    assert sem.max_grad_norm is None
    assert sem.clip_actions is False
    assert sem.vf_coef == 2.0 and isinstance(sem.vf_coef, float)
    assert sem.target_kl == pytest.approx(0.015, rel=1e-12)
    assert sem.adv_norm_eps == 0.0
    assert sem.shared_towers is True
    # untouched fields keep the preset's values; the original is frozen and unchanged
    assert sem.value_loss == "clipped" and sem.init == "orthogonal"
    assert get_preset("sb-ppo2").adv_norm == "minibatch"
    # a number for an Optional float, and "off" as None
    assert Semantics().with_overrides(["max_grad_norm=1.5"]).max_grad_norm == 1.5
    assert Semantics().with_overrides(["max_grad_norm=off"]).max_grad_norm is None


def test_unknown_key_lists_allowed_keys():
    with pytest.raises(ConfigError) as info:
        Semantics().with_overrides(["adv_scope=batch"])
    msg = str(info.value)
    assert "\n" not in msg and "adv_scope" in msg
    for key in Semantics.field_names():
        assert key in msg
    with pytest.raises(ConfigError):
        Semantics().replace(adv_scope="batch")
    with pytest.raises(ConfigError):
        Semantics().with_overrides(["adv_norm"])  # no '='


@pytest.mark.parametrize("assignment, allowed", [
    ("adv_norm=epoch", "minibatch|batch|none"),
    ("adv_norm=Batch", "minibatch|batch|none"),           # Literal values are case-sensitive
    ("value_clip=sometimes", "cliprange|separate|off"),
    ("first_sample=stale", "current|stale_action|stale_action_and_value"),
    ("clip_actions=maybe", "true|false"),
    ("max_grad_norm=big", "a number or none"),
    ("vf_coef=half", "a number"),
])
def test_bad_value_lists_allowed_values(assignment, allowed):
    with pytest.raises(ConfigError) as info:
        Semantics().with_overrides([assignment])
    msg = str(info.value)
    assert "\n" not in msg
    assert assignment.split("=")[0] in msg
    assert allowed in msg


def test_bad_value_in_constructor_is_config_error():
    with pytest.raises(ConfigError, match="minibatch\\|batch\\|none"):
        Semantics(adv_norm="epoch")
    with pytest.raises(ConfigError, match="true\\|false"):
        Semantics(clip_actions="false")  # a string is not a bool
    with pytest.raises(ConfigError):
        Semantics(max_grad_norm=0.0)
    with pytest.raises(ConfigError):
        Semantics(target_kl=-0.01)
    with pytest.raises(ConfigError):
        Semantics(vf_coef=-1.0)
    with pytest.raises(ConfigError):
        Semantics(adam_epsilon=0.0)


@pytest.mark.parametrize("assignment", ["max_grad_norm=nan", "vf_coef=nan", "adam_epsilon=nan",
                                        "target_kl=nan", "adv_norm_eps=nan"])
def test_nan_numbers_are_rejected(assignment):
    # NaN passes every "<= 0" check; a NaN max_grad_norm/adam_epsilon/vf_coef would turn every update
    # into NaN parameters, so it is a bad value like any other.
    with pytest.raises(ConfigError):
        Semantics().with_overrides([assignment])


def test_mse_needs_value_clip_off():
    with pytest.raises(ConfigError) as info:
        Semantics(value_loss="mse")  # default value_clip="cliprange"
    assert "\n" not in str(info.value)
    with pytest.raises(ConfigError):
        get_preset("sb-ppo2").with_overrides(["value_loss=mse"])
    with pytest.raises(ConfigError):
        get_preset("baselines-ppo1").with_overrides(["value_clip=separate"])
    # flipping both together is fine
    sem = get_preset("sb-ppo2").with_overrides(["value_loss=mse", "value_clip=off"])
    assert (sem.value_loss, sem.value_clip) == ("mse", "off")


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_json_round_trip(name):
    preset = get_preset(name)
    text = preset.to_json()
    data = json.loads(text)
    assert data["adv_norm"] == EXPECTED[name]["adv_norm"]
    assert data["max_grad_norm"] == EXPECTED[name]["max_grad_norm"]
    assert set(data) == set(Semantics.field_names())
    restored = Semantics.from_dict(data)
    assert restored == preset
    assert restored.to_json() == text


def test_from_dict_with_wrong_type_is_config_error():
    # A hand-edited or corrupted saved semantics must fail with the one-line ConfigError
    # (errors.py: every invalid ... checkpoint raises ConfigError), not a TypeError.
    data = get_preset("sb-ppo2").to_dict()
    data["vf_coef"] = "half"
    with pytest.raises(ConfigError):
        Semantics.from_dict(data)
    data = get_preset("sb-ppo2").to_dict()
    data["max_grad_norm"] = "0.5"
    with pytest.raises(ConfigError):
        Semantics.from_dict(data)
    data = get_preset("sb-ppo2").to_dict()
    data["unknown_switch"] = 1
    with pytest.raises(ConfigError):
        Semantics.from_dict(data)
