"""Completed-episode bookkeeping on raw rewards (spec §5.4, §8).

Reported returns must be the env's own rewards, before VecNormalize, and PPO1 pools its
episodes across MPI ranks: one small class does both for every runner.

Envs whose training episodes are not the task's episodes say so in their step infos, as Baselines'
Monitor does below its Atari wrappers: ``info[LIFE_LOST_KEY]`` marks an episode end that only ended a
life (the game goes on after the reset), and ``info[GAME_STATS_KEY]`` (gymnasium
``RecordEpisodeStatistics`` with that key: ``{"r": return, "l": length}``) carries the raw score and
length of a whole game when it ends. The reported episode is then the game, not the life, and its return
is the raw score, not the clipped training rewards (`tfppo.envs.atari`).
"""
from __future__ import annotations

import collections
import math
from collections.abc import Iterable
from typing import Any

import numpy as np

from tfppo.util.errors import ConfigError

LIFE_LOST_KEY = "life_lost"  # step info: this episode end is a lost life, not the end of the game
GAME_STATS_KEY = "game"  # step info at a game's end: {"r": raw score, "l": length} of the whole game


def episode_result(info: dict[str, Any], summed_return: float, length: int) -> tuple[float, int] | None:
    """(return, length) of the episode that ended with this single-env step ``info``: the game's own
    statistics when the env reports them, else the caller's sums; None when only a life ended."""
    if info.get(LIFE_LOST_KEY, False):
        return None
    game = info.get(GAME_STATS_KEY)
    if game is not None:
        return float(game["r"]), int(game["l"])
    return float(summed_return), int(length)


def _env_info(infos: dict[str, Any], index: int) -> dict[str, Any]:
    """Env ``index``'s entries of a vector env's batched info dict (gymnasium: key -> array, "_key" -> mask)."""
    out: dict[str, Any] = {}
    for key, value in infos.items():
        if key.startswith("_") or not infos.get(f"_{key}", np.zeros(index + 1, bool))[index]:
            continue
        out[key] = _env_info(value, index) if isinstance(value, dict) else value[index]
    return out

# ------------------------------------------------------------------------- episodes
class EpisodeTracker:
    """Per-env running sums of *raw* rewards and lengths -> completed episodes.

    Why: reported returns must be the env's own rewards, before VecNormalize
    (spec §5.4), and PPO1 must pool episodes across MPI ranks (``extend``).
    ``returns``/``lengths`` keep the last ``window`` episodes (Baselines' 100-
    episode ``eprewmean``/``eplenmean``); ``episodes`` counts all completed.
    """

    def __init__(self, num_envs: int, window: int = 100) -> None:
        self.num_envs = int(num_envs)
        self.window = int(window)
        self._sums = np.zeros(self.num_envs, dtype=np.float64)
        self._lens = np.zeros(self.num_envs, dtype=np.int64)
        self.returns: collections.deque[float] = collections.deque(maxlen=self.window)
        self.lengths: collections.deque[int] = collections.deque(maxlen=self.window)
        self.episodes: int = 0

    def step(self, rewards: np.ndarray, dones: np.ndarray,
             infos: dict[str, Any] | None = None) -> list[tuple[float, int]]:
        """Add one vector step; return (return, length) of episodes finished now.

        The finished envs' sums restart at zero, matching SAME_STEP autoreset
        where the next reward already belongs to the new episode. ``infos`` is
        the vector env's info dict: a finished env's step info (SAME_STEP keeps
        it under ``final_info``) can replace the sums by a whole game's raw
        statistics or mark the end as a lost life (`episode_result`).
        """
        rewards = np.asarray(rewards, dtype=np.float64).reshape(self.num_envs)
        dones = np.asarray(dones, dtype=bool).reshape(self.num_envs)
        self._sums += rewards
        self._lens += 1
        final = (infos or {}).get("final_info", {})
        results = (episode_result(_env_info(final, int(i)), self._sums[i], self._lens[i]) for i in np.flatnonzero(dones))
        completed = [result for result in results if result is not None]
        self._sums[dones] = 0.0
        self._lens[dones] = 0
        self.extend(completed)
        return completed

    def discard_partial(self) -> None:
        """Forget the in-progress episodes (their envs were just reset)."""
        self._sums[:] = 0.0
        self._lens[:] = 0

    def extend(self, completed: Iterable[tuple[float, int]]) -> None:
        """Record externally gathered episodes (e.g. allgathered from MPI ranks)."""
        for ret, length in completed:
            self.returns.append(float(ret))
            self.lengths.append(int(length))
            self.episodes += 1

    def mean_return(self) -> float:
        """Mean of the windowed returns; NaN when no episode has finished yet."""
        return float(np.mean(self.returns)) if self.returns else math.nan

    def mean_length(self) -> float:
        """Mean of the windowed lengths; NaN when no episode has finished yet."""
        return float(np.mean(self.lengths)) if self.lengths else math.nan

    def state_dict(self) -> dict[str, Any]:
        """JSON-serialisable window and counter. In-progress sums are not saved:
        a resumed run resets its envs, so those episodes restart anyway."""
        return {
            "window": self.window,
            "returns": list(self.returns),
            "lengths": list(self.lengths),
            "episodes": self.episodes,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore the window and counter; in-progress sums restart at zero."""
        for key in ("returns", "lengths", "episodes"):
            if key not in state:
                raise ConfigError(
                    f"episode tracker state is missing '{key}'; expected keys: returns, lengths, episodes"
                )
        if len(state["returns"]) != len(state["lengths"]):
            raise ConfigError("episode tracker state has different numbers of returns and lengths")
        self.returns = collections.deque((float(r) for r in state["returns"]), maxlen=self.window)
        self.lengths = collections.deque((int(n) for n in state["lengths"]), maxlen=self.window)
        self.episodes = int(state["episodes"])
        self._sums[:] = 0.0
        self._lens[:] = 0


