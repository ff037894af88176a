"""Deterministic evaluation episodes of a trained agent on a fresh env."""
from __future__ import annotations

import numpy as np

from tfppo.envs import clip_actions, resolve_env


def evaluate(agent, episodes: int, *, seed: int = 12345, deterministic: bool = True) -> list[float]:
    """Raw-reward returns of ``episodes`` episodes; normaliser statistics are used frozen."""
    env = resolve_env(agent.config.env)()
    returns = []
    try:
        for episode in range(episodes):
            obs, _ = env.reset(seed=seed + episode)
            total, done = 0.0, False
            while not done:
                action = agent.predict(obs, deterministic=deterministic)
                if agent.semantics.clip_actions:
                    action = clip_actions(np.asarray(action)[None], env.action_space)[0]
                obs, reward, terminated, truncated, _ = env.step(action)
                total += float(reward)
                done = terminated or truncated
            returns.append(total)
    finally:
        env.close()
    return returns
