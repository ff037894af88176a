"""Learning-rate and clip-range schedules of "progress remaining" (spec §7.2).

PPO2 evaluates every schedule once per update, before the rollout, at
frac = 1 − (u − 1)/nupdates for u = 1..nupdates: 1 at the first update and
1/nupdates at the last, never 0.  A schedule is written on the command line as
a float (constant) or ``lin_<value>`` (value·frac, rl-zoo's notation).
"""
from __future__ import annotations

from dataclasses import dataclass

from tfppo.util.errors import ConfigError


@dataclass(frozen=True)
class Schedule:
    """value·frac when ``linear``, else the constant ``value``."""

    value: float
    linear: bool = False

    def __call__(self, frac: float) -> float:
        return self.value * frac if self.linear else self.value

    def __str__(self) -> str:
        return f"lin_{self.value:g}" if self.linear else f"{self.value:g}"


def parse_schedule(spec: "str | float | int | Schedule", flag: str) -> Schedule:
    """Parse ``3e-4``, ``lin_3e-4`` (or a number) into a Schedule; one-line ConfigError otherwise."""
    if isinstance(spec, Schedule):
        return spec
    if isinstance(spec, bool):
        raise ConfigError(f"{flag}: expected a number or lin_<number>, got {spec!r}")
    if isinstance(spec, (int, float)):
        return Schedule(float(spec))
    text = str(spec).strip()
    linear = text.startswith("lin_")
    try:
        value = float(text[4:] if linear else text)
    except ValueError:
        raise ConfigError(f"{flag}: expected a number or lin_<number>, got {spec!r}") from None
    return Schedule(value, linear)


def progress_remaining(update: int, n_updates: int) -> float:
    """frac for update u (1-based) of n: 1 − (u − 1)/n (spec §7.2)."""
    return 1.0 - (update - 1.0) / n_updates
