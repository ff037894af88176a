"""Envs for the long-run tests, importable as ``tests.long_run_envs:Class`` by the scripts.

The slow ones sleep a little per step so a test can ``kill -9`` a run between
two checkpoints without racing it to the end; the sleep changes nothing else.
"""
from __future__ import annotations

import time

from gymnasium.envs.classic_control.cartpole import CartPoleEnv
from gymnasium.envs.classic_control.pendulum import PendulumEnv

STEP_SLEEP = 0.002


class SlowCartPole(CartPoleEnv):
    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.spec = None

    def step(self, action):
        time.sleep(STEP_SLEEP)
        return super().step(action)


class SlowPendulum(PendulumEnv):
    """Pendulum with the usual 200-step time limit done by hand (no registry wrapper for module:Class)."""

    def reset(self, **kwargs):
        self._t = 0
        return super().reset(**kwargs)

    def step(self, action):
        time.sleep(STEP_SLEEP)
        obs, reward, terminated, truncated, info = super().step(action)
        self._t += 1
        return obs, reward, terminated, truncated or self._t >= 200, info


class NanRewardCartPole(CartPoleEnv):
    """Returns NaN rewards from its ``NAN_FROM``-th step (counted over all its episodes) on."""

    NAN_FROM = 300

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self._total = 0

    def step(self, action):
        obs, reward, terminated, truncated, info = super().step(action)
        self._total += 1
        return obs, float("nan") if self._total >= self.NAN_FROM else reward, terminated, truncated, info
