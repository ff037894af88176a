"""Training-health diagnostics and the warnings every PPO tutorial teaches people to look for.

`diagnostics` turns one update's outputs into logged scalars (``diag/...`` in
progress.csv and TensorBoard, for both trainers under the same names).
`HealthMonitor` watches four failure patterns and prints one warning line
when a pattern starts (never stopping the run; it re-arms when the pattern
clears, so a long run is not flooded):

* approxkl explodes (> ``kl_high``, 0.1): the policy moves too far per update;
* updates freeze (approxkl < ``kl_frozen``, 1e-6, for ``frozen_updates``, 10, updates in a row);
* entropy collapses (below ``entropy_fraction``, 10 %, of the first update's entropy when that was
  positive, else more than ``entropy_drop_nats``, 2, below it): the policy became deterministic early;
* explained variance stays below 0 for ``ev_updates`` (10) updates: the value function is worse than
  predicting the mean.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Mapping

import numpy as np

from tfppo.core.learner import STAT

PREFIX = "diag/"


def diagnostics(result, batch, rollout, *, action_std: float | None, explained_variance: float,
                terminated: int, truncated: int) -> dict[str, float]:
    """The ``diag/`` scalars of one update (raw advantages and counts come from NumPy, the rest from
    the compiled update, so nothing here adds a TF call)."""
    row: dict[str, float] = {f"{PREFIX}{k}": v for k, v in (result.diagnostics or {}).items()}
    row[f"{PREFIX}adv_raw_mean"] = float(np.mean(batch.advantages))
    row[f"{PREFIX}adv_raw_std"] = float(np.std(batch.advantages))
    stats = result.train
    row[f"{PREFIX}entropy"] = stats["entropy"]
    row[f"{PREFIX}clipfrac"] = stats["clipfrac"]
    row[f"{PREFIX}approxkl"] = stats["approxkl"]
    for epoch, kl in enumerate(result.per_epoch[:, STAT["approxkl"]]):
        row[f"{PREFIX}approxkl_epoch{epoch}"] = float(kl)
    row[f"{PREFIX}explained_variance"] = explained_variance
    if action_std is not None:
        row[f"{PREFIX}action_std"] = action_std
    row[f"{PREFIX}episodes_terminated"] = terminated
    row[f"{PREFIX}episodes_truncated"] = truncated
    return row


@dataclass
class HealthMonitor:
    """Feed one update at a time with `check`; returns the warning lines that start at this update."""

    kl_high: float = 0.1
    kl_frozen: float = 1e-6
    frozen_updates: int = 10
    entropy_fraction: float = 0.1
    entropy_drop_nats: float = 2.0
    ev_updates: int = 10
    _first_entropy: float | None = None
    _frozen_run: int = 0
    _ev_run: int = 0
    _active: set = field(default_factory=set)

    def check(self, update: int, stats: Mapping[str, Any]) -> list[str]:
        """``stats`` needs ``approxkl``, ``entropy`` and ``explained_variance`` (NaN values are skipped)."""
        kl, ent, ev = (float(stats.get(k, math.nan)) for k in ("approxkl", "entropy", "explained_variance"))
        found: dict[str, str] = {}
        if kl > self.kl_high:
            found["kl_high"] = (f"approxkl {kl:.3g} > {self.kl_high:g}: the policy moves too far per update "
                                "(lower the learning rate or clip range, or set target_kl)")
        self._frozen_run = self._frozen_run + 1 if kl < self.kl_frozen else 0
        if self._frozen_run >= self.frozen_updates:
            found["frozen"] = (f"approxkl < {self.kl_frozen:g} for {self._frozen_run} updates: the policy has "
                               "stopped changing (learning rate annealed to 0, or dead gradients?)")
        if not math.isnan(ent):
            if self._first_entropy is None:
                self._first_entropy = ent
            first = self._first_entropy
            floor = first * self.entropy_fraction if first > 0 else first - self.entropy_drop_nats
            if ent < floor:
                found["entropy"] = (f"entropy {ent:.3g} fell below {floor:.3g} (first update {first:.3g}): "
                                    "exploration has collapsed (raise ent_coef?)")
        self._ev_run = self._ev_run + 1 if ev < 0 else 0
        if self._ev_run >= self.ev_updates:
            found["ev"] = (f"explained variance below 0 for {self._ev_run} updates ({ev:.3g}): the value "
                           "function predicts worse than a constant (check reward scale, vf_coef, lr)")
        new = [f"health warning at update {update}: {text}" for key, text in found.items() if key not in self._active]
        self._active = set(found)
        return new
