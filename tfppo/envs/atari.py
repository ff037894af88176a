"""Baselines' Atari pipeline (``make_atari`` + ``wrap_deepmind`` + PPO2's ``VecFrameStack(4)``) on gymnasium.

`wrap_atari` builds, from the inside out (the first wrapper sees the emulator):

======================  =====================================================  ==========================================
piece                   here                                                   against Baselines
======================  =====================================================  ==========================================
no frame skip below     ``gymnasium.make(id, frameskip=1)`` (`tfppo.envs.      ``<Game>NoFrameskip-v4``. ``ALE/...-v5`` keeps
                        families`)                                             its sticky actions (p = 0.25, Machado et al.
                                                                               2018), which v4 does not have; use
                                                                               ``<Game>NoFrameskip-v4`` for Baselines' env.
noop reset (1..30)      gymnasium ``AtariPreprocessing(noop_max=30)``          same: NoopResetEnv draws 1..30 no-ops from
                                                                               the env's RNG, resetting if one ends it.
frame skip 4, max-pool  ``AtariPreprocessing(frame_skip=4)``                   same frames (the last two of the four) and
                                                                               the same early stop on a terminal frame;
                                                                               gymnasium pools the ALE's grey screens,
                                                                               Baselines pools RGB and then greys
                                                                               (``cv2.COLOR_RGB2GRAY``): grey values can
                                                                               differ by a few levels where colours mix.
84×84 grey              ``AtariPreprocessing(screen_size=84, grayscale_obs)``  same ``cv2.INTER_AREA`` resize (WarpFrame).
raw game score          gymnasium ``RecordEpisodeStatistics`` with the key     Baselines' ``Monitor`` at the same place
                        `tfppo.envs.episodes.GAME_STATS_KEY`                   (below the life and clip wrappers): the
                                                                               logged return is the raw score of a whole
                                                                               game. (Baselines PPO1 logged its own
                                                                               per-life sums of clipped rewards; tfppo
                                                                               reports the game score for both trainers.)
episodic life           `EpisodicLife` (own)                                   same as EpisodicLifeEnv. gymnasium's
                                                                               ``terminal_on_life_loss`` resets the whole
                                                                               game after a lost life, so it is off.
fire reset              `FireReset` (own; games whose action 1 is FIRE)        same as FireResetEnv; gymnasium has none.
reward clipping         `ClipReward` (own): sign of the reward                 same as ClipRewardEnv.
4-frame stack           gymnasium ``FrameStackObservation(4, padding_type=      same as PPO2's VecFrameStack: zeros after
                        "zero")``, then `ChannelsLast`                         every reset, frames on the last axis (H×W×4).
                                                                               Baselines PPO1 (run_atari.py) stacked no
                                                                               frames (84×84×1); tfppo stacks for both.
======================  =====================================================  ==========================================

A reset with a seed is always a new game (Baselines had no seeded resets): the runner's seeded restarts
then start the same games in an uninterrupted and in a resumed run.
"""
from __future__ import annotations

from typing import Any

import gymnasium
import numpy as np
from gymnasium import spaces
from gymnasium.wrappers import AtariPreprocessing, FrameStackObservation, RecordEpisodeStatistics

from tfppo.envs.episodes import GAME_STATS_KEY, LIFE_LOST_KEY

NOOP_MAX = 30
FRAME_SKIP = 4
SCREEN_SIZE = 84
FRAME_STACK = 4
FIRE_ACTION = 1  # ALE's action meanings: 0 NOOP, 1 FIRE in every game that has FIRE
FIRE_FOLLOW_UP = 2  # Baselines' FireResetEnv also presses action 2 (UP or RIGHT) after FIRE


def _ale_lives(env: gymnasium.Env) -> int:
    return int(env.unwrapped.ale.lives())


class EpisodicLife(gymnasium.Wrapper):
    """A lost life ends the training episode (``terminated``, ``info[LIFE_LOST_KEY]``); the game itself is
    reset only when it is over, otherwise the next reset is one no-op step of the running game.

    Why: DeepMind's value-estimation trick, kept because Baselines' Atari results were made with it. A
    life is counted as lost only while lives remain (Baselines: Q*bert can sit at 0 lives for a few frames
    before the game reports its end)."""

    def __init__(self, env: gymnasium.Env):
        super().__init__(env)
        self.lives = 0
        self.game_over = True

    def step(self, action: Any):
        obs, reward, terminated, truncated, info = self.env.step(action)
        self.game_over = terminated or truncated
        lives = _ale_lives(self.env)
        if 0 < lives < self.lives and not self.game_over:
            terminated = True
            info = {**info, LIFE_LOST_KEY: True}
        self.lives = lives
        return obs, reward, terminated, truncated, info

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        if self.game_over or seed is not None or options is not None:
            obs, info = self.env.reset(seed=seed, options=options)
        else:
            obs, _, terminated, truncated, info = self.env.step(0)
            if terminated or truncated:  # the no-op ended the game: start a new one
                obs, info = self.env.reset()
        self.game_over = False
        self.lives = _ale_lives(self.env)
        return obs, info


class FireReset(gymnasium.Wrapper):
    """Press FIRE, then action 2, after every reset (also after a lost life): games such as Breakout
    stand still until FIRE, and a policy that has not yet learned to press it would see no reward."""

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        obs, info = self.env.reset(seed=seed, options=options)
        for action in (FIRE_ACTION, FIRE_FOLLOW_UP):
            obs, _, terminated, truncated, info = self.env.step(action)
            if terminated or truncated:
                obs, info = self.env.reset()
        return obs, info


class ClipReward(gymnasium.RewardWrapper):
    """The sign of the reward, −1, 0 or +1 (DQN's clipping): one scale of advantages for every game."""

    def reward(self, reward: float) -> float:
        return float(np.sign(reward))


class ChannelsLast(gymnasium.ObservationWrapper):
    """Stacked frames (S, H, W) -> (H, W, S): Baselines' channel order, which the Nature CNN reads."""

    def __init__(self, env: gymnasium.Env):
        super().__init__(env)
        inner = env.observation_space
        self.observation_space = spaces.Box(low=np.moveaxis(inner.low, 0, -1), high=np.moveaxis(inner.high, 0, -1),
                                            dtype=inner.dtype)

    def observation(self, observation: np.ndarray) -> np.ndarray:
        return np.ascontiguousarray(np.moveaxis(observation, 0, -1))


def has_fire(env: gymnasium.Env) -> bool:
    """Whether the game's action 1 is FIRE (Baselines' wrap_deepmind tests for FIRE among the meanings;
    FireResetEnv then requires it at index 1)."""
    meanings = env.unwrapped.get_action_meanings()
    return len(meanings) > FIRE_FOLLOW_UP and meanings[FIRE_ACTION] == "FIRE"


def wrap_atari(env: gymnasium.Env) -> gymnasium.Env:
    """The whole pipeline (module docstring) around an ALE env made with ``frameskip=1``."""
    env = AtariPreprocessing(env, noop_max=NOOP_MAX, frame_skip=FRAME_SKIP, screen_size=SCREEN_SIZE,
                             terminal_on_life_loss=False, grayscale_obs=True, scale_obs=False)
    env = RecordEpisodeStatistics(env, stats_key=GAME_STATS_KEY)
    env = EpisodicLife(env)
    if has_fire(env):
        env = FireReset(env)
    env = ClipReward(env)
    env = FrameStackObservation(env, FRAME_STACK, padding_type="zero")
    return ChannelsLast(env)
