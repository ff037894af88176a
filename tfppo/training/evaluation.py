"""Deterministic evaluation episodes of an agent on a separate env, once or periodically.

Why a separate env: the training envs' episodes are mid-flight at an iteration
boundary, and their returns are those of the *stochastic* policy; rl-zoo's
convention (``EvalCallback``) scores the *deterministic* policy on its own env.
Evaluation touches no training stream: actions are the distribution's mode,
normaliser statistics are used frozen and the env seeds are the evaluator's own,
so a run with evaluation makes exactly the same updates as one without.
"""
from __future__ import annotations

import csv
import os
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np

from tfppo.util.atomic import replacing
from tfppo.envs.episodes import episode_result
from tfppo.envs.spaces import clip_actions

EVALUATIONS_CSV = "evaluations.csv"
EVALUATION_FIELDS = ("timesteps", "time_elapsed", "eval_return_mean", "eval_return_std", "eval_length_mean",
                     "episodes")
EVAL_SEED_OFFSET = 1_000_003  # eval episode seeds never coincide with the training envs' reset seeds


def play_episodes(env, act: Callable[[np.ndarray], Any], episodes: int, *,
                  seed: int = 12345, on_reset: Callable[[], None] | None = None) -> tuple[list[float], list[int]]:
    """Raw-reward returns and lengths of ``episodes`` episodes of ``act`` (observation → the env's action;
    episode k reset with ``seed + k``) on ``env``, which it closes: the loop shared by agents and exported
    policies. An env that reports whole games (Atari, `tfppo.envs.episodes`) is played to the game's end
    through its lost lives, and the game's raw score is the return. ``on_reset`` runs after every reset (a
    recurrent agent forgets its state there, as its masks make it do in training)."""
    returns, lengths = [], []
    try:
        for episode in range(episodes):
            obs, _ = env.reset(seed=seed + episode)
            if on_reset is not None:
                on_reset()
            total, length, result = 0.0, 0, None
            while result is None:
                obs, reward, terminated, truncated, info = env.step(act(obs))
                total += float(reward)
                length += 1
                if terminated or truncated:
                    result = episode_result(info, total, length)
                    if result is None:  # a life ended: the game goes on from an unseeded reset
                        obs, _ = env.reset()
                        if on_reset is not None:
                            on_reset()
            returns.append(result[0])
            lengths.append(result[1])
    finally:
        env.close()
    return returns, lengths


def run_episodes(agent, episodes: int, *, seed: int = 12345,
                 deterministic: bool = True) -> tuple[list[float], list[int]]:
    """`play_episodes` of an agent: ``predict``, then row 18's clipping when the semantics clip actions."""
    env = agent.env_source.separate("evaluation")

    def act(obs: np.ndarray) -> Any:
        action = agent.predict(obs, deterministic=deterministic)
        if agent.semantics.clip_actions:  # the agent's action space is the one probed from this env id
            action = clip_actions(np.asarray(action)[None], agent.action_space)[0]
        return action

    return play_episodes(env, act, episodes, seed=seed, on_reset=agent.reset_state)


def evaluate(agent, episodes: int, *, seed: int = 12345, deterministic: bool = True) -> list[float]:
    """Raw-reward returns of ``episodes`` episodes; normaliser statistics are used frozen."""
    return run_episodes(agent, episodes, seed=seed, deterministic=deterministic)[0]


class PeriodicEvaluator:
    """Evaluates every ``freq`` env steps (at the first iteration boundary past each multiple),
    before the first update and after the last, appending rows to ``log_dir/evaluations.csv``.

    Every evaluation uses the same episode seeds (derived from the run seed), so points on the
    curve differ only by the policy, and matched runs of PPO1 and PPO2 face the same episodes.
    """

    def __init__(self, freq: int, episodes: int, log_dir: str | os.PathLike | None, run_seed: int):
        if freq < 0 or episodes <= 0:
            raise ValueError(f"evaluation needs eval_freq >= 0 and eval_episodes > 0, got {freq}, {episodes}")
        self.freq = int(freq)
        self.episodes = int(episodes)
        self.path = Path(log_dir) / EVALUATIONS_CSV if log_dir is not None else None
        self.seed = EVAL_SEED_OFFSET + 1000 * int(run_seed)
        self.last_timesteps: int | None = None
        self.history: list[dict[str, float]] = []
        self._t0 = time.perf_counter()

    @property
    def enabled(self) -> bool:
        return self.freq > 0

    def due(self, timesteps: int) -> bool:
        if not self.enabled or timesteps == self.last_timesteps:
            return False
        return self.last_timesteps is None or timesteps // self.freq > self.last_timesteps // self.freq

    def maybe_evaluate(self, agent, timesteps: int, *, final: bool = False) -> dict[str, float] | None:
        """Evaluate when a multiple of ``freq`` was crossed (or ``final``), once per timestep count."""
        if not self.enabled or timesteps == self.last_timesteps or not (final or self.due(timesteps)):
            return None
        returns, lengths = run_episodes(agent, self.episodes, seed=self.seed)
        row = {"timesteps": int(timesteps), "time_elapsed": time.perf_counter() - self._t0,
               "eval_return_mean": float(np.mean(returns)), "eval_return_std": float(np.std(returns)),
               "eval_length_mean": float(np.mean(lengths)), "episodes": len(returns)}
        self.last_timesteps = int(timesteps)
        self.history.append(row)
        self._append(row)
        return row

    def resume(self, timesteps: int) -> None:
        """Continue a run at ``timesteps`` (a checkpoint): rows written after it are dropped (they belong to
        the interrupted tail), the schedule continues from there and elapsed time from the last kept row."""
        self.last_timesteps = int(timesteps)
        if self.path is None or not self.path.exists():
            return
        with open(self.path, newline="", encoding="utf-8") as f:
            rows = [row for row in csv.DictReader(f) if int(row["timesteps"]) <= timesteps]
        with replacing(self.path) as tmp, open(tmp, "w", newline="", encoding="utf-8") as f:
            writer = csv.DictWriter(f, EVALUATION_FIELDS)
            writer.writeheader()
            writer.writerows(rows)
        if rows:
            self._t0 -= float(rows[-1]["time_elapsed"])

    def _append(self, row: dict[str, float]) -> None:
        if self.path is None:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        new = not self.path.exists()
        with open(self.path, "a", newline="", encoding="utf-8") as f:
            writer = csv.DictWriter(f, EVALUATION_FIELDS)
            if new:
                writer.writeheader()
            writer.writerow(row)
            f.flush()
