"""Schedules of "progress remaining" against hand values (spec §7.2)."""

from __future__ import annotations

import pytest

from tfppo.util.errors import ConfigError
from tfppo.config.schedules import Schedule, parse_schedule, progress_remaining


def test_progress_remaining_is_one_at_first_update_and_one_over_n_at_last():
    # frac = 1 − (u − 1)/n
    # n = 5: u=1 -> 1 − 0/5 = 1;  u=2 -> 1 − 1/5 = 0.8;  u=5 -> 1 − 4/5 = 0.2 = 1/5 (never 0)
    assert progress_remaining(1, 5) == pytest.approx(1.0, abs=1e-12)
    assert progress_remaining(2, 5) == pytest.approx(0.8, abs=1e-12)
    assert progress_remaining(5, 5) == pytest.approx(1 / 5, abs=1e-12)
    # n = 1: the single update runs at frac 1
    assert progress_remaining(1, 1) == pytest.approx(1.0, abs=1e-12)
    # n = 488 (e.g. 1e6 // 2048): last update at 1/488
    assert progress_remaining(488, 488) == pytest.approx(1 / 488, abs=1e-12)


def test_linear_schedule_value_times_frac():
    sched = parse_schedule("lin_1e-3", "--learning_rate")
    assert sched.linear is True
    assert sched.value == pytest.approx(1e-3, rel=1e-12)
    n = 4
    # first update: 1e-3 · 1 = 1e-3; second: 1e-3 · (1 − 1/4) = 7.5e-4; last: 1e-3 · 1/4 = 2.5e-4
    assert sched(progress_remaining(1, n)) == pytest.approx(1e-3, rel=1e-12)
    assert sched(progress_remaining(2, n)) == pytest.approx(7.5e-4, rel=1e-12)
    assert sched(progress_remaining(n, n)) == pytest.approx(1e-3 / n, rel=1e-12)
    assert str(sched) == "lin_0.001"


def test_constant_schedule_ignores_frac():
    for spec in ("3e-4", " 3e-4 ", 3e-4):
        sched = parse_schedule(spec, "--learning_rate")
        assert sched.linear is False
        assert sched(1.0) == pytest.approx(3e-4, rel=1e-12)
        assert sched(0.25) == pytest.approx(3e-4, rel=1e-12)
    # an int is accepted as a constant (unlike [B]'s callable assertion) and stored as float
    sched = parse_schedule(1, "--cliprange")
    assert sched == Schedule(1.0) and isinstance(sched.value, float)
    # a Schedule passes through unchanged
    lin = Schedule(0.2, linear=True)
    assert parse_schedule(lin, "--cliprange") is lin
    assert lin(0.5) == pytest.approx(0.1, rel=1e-12)


@pytest.mark.parametrize("bad", ["lin_", "lin_abc", "linear_1e-3", "fast", "", "1e-3x", "lin 1e-3", True])
def test_bad_schedule_raises_one_line_config_error(bad):
    with pytest.raises(ConfigError) as info:
        parse_schedule(bad, "--learning_rate")
    message = str(info.value)
    assert "\n" not in message
    assert "--learning_rate" in message
    assert "lin_<number>" in message
