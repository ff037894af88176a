"""Idle switches (tfppo/switch_scope.py): which switches a run can never read, and proof by training that
flipping them changes nothing, while the same switch on a run that reads it does change the result."""
from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

import tfppo
from tfppo.config.hyperparameters import PPO1Config, PPO2Config
from tfppo.core.distributions import make_distribution
from tfppo.config.semantics import get_preset
from tfppo.core.switch_scope import idle_switches, same_computation

VECTOR = gym.spaces.Box(-1.0, 1.0, (4,), np.float32)
IMAGE = gym.spaces.Box(0, 255, (84, 84, 4), np.uint8)
B_PPO2 = get_preset("baselines-ppo2")  # matching_fc on, no normalisation


def _ppo2(hidden: tuple[int, ...], learning_rate: str = "lin_1e-3", cliprange: str = "0.2") -> PPO2Config:
    return PPO2Config.create("CartPole-v1", "baselines-ppo2", network={"hidden_sizes": hidden},
                             learning_rate=learning_rate, cliprange=cliprange)


@pytest.mark.parametrize("obs, actions, hidden, semantics, idle", [
    (VECTOR, gym.spaces.Discrete(2), (64, 64), B_PPO2, {"clip_actions", "matching_fc", "vecnorm_reset"}),
    (VECTOR, gym.spaces.Discrete(2), (64, 2), B_PPO2, {"clip_actions", "vecnorm_reset"}),  # latent 2 = 2 logits
    (VECTOR, gym.spaces.Box(-2, 2, (1,)), (64, 64), B_PPO2, {"matching_fc", "vecnorm_reset"}),
    (VECTOR, gym.spaces.Box(-2, 2, (3,)), (3,), B_PPO2, {"vecnorm_reset"}),  # latent 3 = the 3 means
    (VECTOR, gym.spaces.MultiDiscrete([3, 4]), (7,), B_PPO2, {"clip_actions", "vecnorm_reset"}),  # 3 + 4 logits
    (VECTOR, gym.spaces.MultiBinary(5), (64,), B_PPO2.replace(obs_norm="env"), {"clip_actions", "matching_fc"}),
    (VECTOR, gym.spaces.Box(-2, 2, (2,)), (64,), B_PPO2.replace(reward_norm=True), {"matching_fc"}),
    (IMAGE, gym.spaces.Discrete(512), (64, 64), B_PPO2, {"clip_actions", "vecnorm_reset"}),  # CNN fc is 512 wide
])
def test_idle_switches_follow_the_action_space_the_latent_width_and_vecnormalize(obs, actions, hidden, semantics,
                                                                                 idle):
    assert idle_switches(semantics, obs, actions, _ppo2(hidden)) == idle


def test_timestep_counting_is_idle_only_for_ppo2_without_an_annealed_schedule():
    """Row 10: PPO2 reads its counter only as the progress of lin_ schedules; PPO1's counter ends the run."""
    discrete, sem = gym.spaces.Discrete(2), get_preset("baselines-ppo1")
    constant = idle_switches(sem, VECTOR, discrete, _ppo2((64,), learning_rate="3e-4"))
    assert "timestep_counting" in constant
    assert "timestep_counting" not in idle_switches(sem, VECTOR, discrete, _ppo2((64,), learning_rate="3e-4",
                                                                                 cliprange="lin_0.2"))
    ppo1 = PPO1Config.create("CartPole-v1", "baselines-ppo1", schedule="constant", max_timesteps=1000)
    assert "timestep_counting" not in idle_switches(sem, VECTOR, discrete, ppo1)


@pytest.mark.parametrize("space", [gym.spaces.Discrete(5), gym.spaces.Box(-1, 1, (3,)),
                                   gym.spaces.MultiDiscrete([2, 3, 4]), gym.spaces.MultiBinary(6)])
def test_the_flat_size_of_an_action_space_is_its_distributions_head_size(space):
    """matching_fc's test compares the latent with gymnasium's flatdim: it must be the head's size."""
    assert gym.spaces.flatdim(space) == make_distribution(space).head_size


def test_same_computation_needs_the_switch_idle_under_both_records():
    config, discrete = _ppo2((64, 64)), gym.spaces.Discrete(2)
    assert same_computation(B_PPO2, B_PPO2.replace(clip_actions=False, matching_fc=False, vecnorm_reset="sb"),
                            VECTOR, discrete, config)
    assert not same_computation(B_PPO2, B_PPO2.replace(init="normc"), VECTOR, discrete, config)
    # the reset rule is idle without VecNormalize, but a record that turns VecNormalize on reads it
    assert not same_computation(B_PPO2, B_PPO2.replace(obs_norm="env", vecnorm_reset="sb"), VECTOR, discrete,
                                config)


def _trained_weights(hidden: tuple[int, ...], **switches) -> list[np.ndarray]:
    agent = tfppo.PPO2("CartPole-v1", preset="baselines-ppo2", semantics=switches, num_envs=2, n_steps=64,
                       nminibatches=2, noptepochs=2, total_timesteps=256, seed=3, verbose=0,
                       network={"hidden_sizes": hidden})
    agent.learn()
    return agent.model.get_weights()


def test_flipping_idle_switches_trains_the_same_weights_bit_for_bit():
    base = _trained_weights((64, 64))
    # baselines-ppo2's learning rate and clip range are constant: the timestep counter is idle too
    flipped = _trained_weights((64, 64), clip_actions=False, matching_fc=False, vecnorm_reset="sb",
                               timestep_counting="episodes")
    assert len(base) == len(flipped)
    for a, b in zip(base, flipped):
        np.testing.assert_array_equal(a, b)
    # the control: where the latent has the logits' width, matching_fc is read and drops the policy head
    narrow = _trained_weights((64, 2))
    assert len(_trained_weights((64, 2), matching_fc=False)) == len(narrow) + 2  # + the head's kernel and bias
