"""Partially observed envs where memory is needed: the test bed of the recurrent policies (issue 27).

``CartPoleNoVelocity-v1`` is CartPole-v1 showing only the cart position and the pole angle: the
velocities are hidden, so a feed-forward policy sees an aliased state and a recurrent one must infer
them from successive observations. `tfppo.envs.factory` imports this module, which registers the id,
so ``--env CartPoleNoVelocity-v1`` works in every trainer and suite (and gymnasium's ``module:id`` form
``tfppo.envs.pomdp:CartPoleNoVelocity-v1`` in plain gymnasium code); `MaskVelocity` is the wrapper
itself, for ``wrappers=[...]``.
"""
from __future__ import annotations

import gymnasium as gym
import numpy as np

POSITION_INDICES = (0, 2)  # CartPole's [x, ẋ, θ, θ̇]: keep x and θ
NO_VELOCITY_ID = "CartPoleNoVelocity-v1"


class MaskVelocity(gym.ObservationWrapper):
    """Keep only CartPole's positions (x, θ); the velocities ẋ, θ̇ are dropped."""

    def __init__(self, env: gym.Env):
        super().__init__(env)
        if env.observation_space.shape != (4,):
            raise ValueError(f"MaskVelocity wraps CartPole's 4-d observation, got {env.observation_space.shape}")
        keep = list(POSITION_INDICES)
        box = env.observation_space
        self.observation_space = gym.spaces.Box(box.low[keep], box.high[keep], dtype=box.dtype)

    def observation(self, observation: np.ndarray) -> np.ndarray:
        return observation[list(POSITION_INDICES)]


def make_cartpole_no_velocity(**kwargs) -> gym.Env:
    """CartPole-v1 (its 500-step time limit included) behind `MaskVelocity`."""
    return MaskVelocity(gym.make("CartPole-v1", **kwargs))


if NO_VELOCITY_ID not in gym.envs.registry:
    gym.register(NO_VELOCITY_ID, entry_point=make_cartpole_no_velocity)
