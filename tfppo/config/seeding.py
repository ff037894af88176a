"""One integer seed -> every random stream of a run, identically for PPO1 and PPO2.

Each purpose gets its own stream from ``numpy.random.SeedSequence([seed, purpose, index])``:

* ``weights``  : the Keras initialisers (same for every rank and both backends,
  so matched runs start from the same network);
* ``env(i)``   : the reset seed of global env *i*; PPO2's env *i* in a process and
  PPO1's rank *i* get the same seed, so their first observations match;
* ``actions(i)``: the action-sampling generator of global env *i* (PPO2's env *i*,
  PPO1's rank *i*), so matched runs draw the same actions from the same observations;
* ``shuffles(i)``: the minibatch-shuffle generator of process/rank *i*.

Streams are independent of each other, so changing e.g. the number of epochs
does not change the actions sampled in the first rollout.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

_PURPOSES = {"weights": 0, "env": 1, "actions": 2, "shuffles": 3, "predict": 4}


@dataclass(frozen=True)
class RunSeeds:
    seed: int

    def _state(self, purpose: str, index: int = 0) -> np.random.SeedSequence:
        return np.random.SeedSequence([self.seed, _PURPOSES[purpose], index])

    def weights(self) -> int:
        return int(self._state("weights").generate_state(1)[0] % (2**31 - 1))

    def env(self, index: int, restart: int = 0) -> int:
        """Reset seed of global env ``index``; ``restart`` (updates done before a resume) gives fresh episodes."""
        entropy = [self.seed, _PURPOSES["env"], index] + ([restart] if restart else [])
        return int(np.random.SeedSequence(entropy).generate_state(1)[0] % (2**31 - 1))

    def envs(self, first: int, count: int, restart: int = 0) -> list[int]:
        return [self.env(first + i, restart) for i in range(count)]

    def actions(self, index: int = 0) -> np.random.Generator:
        return np.random.default_rng(self._state("actions", index))

    def shuffles(self, index: int = 0) -> np.random.Generator:
        return np.random.default_rng(self._state("shuffles", index))

    def predict(self) -> np.random.Generator:
        """Stochastic ``predict`` calls draw from their own stream, never the training one."""
        return np.random.default_rng(self._state("predict"))
