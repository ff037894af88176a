"""Health warnings on crafted logs: each failure pattern warns once when it starts, never otherwise."""
from __future__ import annotations

import math

from tfppo.training.health import HealthMonitor

GOOD = {"approxkl": 0.01, "entropy": 0.69, "explained_variance": 0.5}


def _feed(rows: list[dict]) -> list[tuple[int, str]]:
    monitor = HealthMonitor()
    return [(u, line) for u, row in enumerate(rows, 1) for line in monitor.check(u, row)]


def test_healthy_run_gives_no_warning():
    assert _feed([GOOD] * 50) == []


def test_kl_explosion_warns_once_per_episode_of_it():
    rows = [GOOD] * 3 + [{**GOOD, "approxkl": 0.5}] * 3 + [GOOD] + [{**GOOD, "approxkl": 0.2}]
    warnings = _feed(rows)
    assert [u for u, _ in warnings] == [4, 8]
    assert warnings[0][1].startswith("health warning at update 4: approxkl 0.5 > 0.1")


def test_frozen_updates_after_ten_in_a_row():
    rows = [GOOD] + [{**GOOD, "approxkl": 1e-8}] * 9 + [GOOD] + [{**GOOD, "approxkl": 0.0}] * 12
    warnings = _feed(rows)
    assert [u for u, _ in warnings] == [21]  # 9 in a row is not enough; the second streak reaches 10 at 21
    assert "approxkl < 1e-06 for 10 updates" in warnings[0][1]


def test_entropy_collapse_relative_to_the_first_update():
    rows = [GOOD, {**GOOD, "entropy": 0.1}, {**GOOD, "entropy": 0.07}, {**GOOD, "entropy": 0.05}]
    warnings = _feed(rows)
    assert [u for u, _ in warnings] == [4]  # 0.05 < 10 % of 0.69 = 0.069; 0.07 is not
    assert "entropy 0.05 fell below 0.069" in warnings[0][1]


def test_entropy_collapse_of_a_negative_box_entropy():
    rows = [{**GOOD, "entropy": -0.5}, {**GOOD, "entropy": -2.4}, {**GOOD, "entropy": -2.6}]
    assert [u for u, _ in _feed(rows)] == [3]  # floor = -0.5 - 2 nats


def test_explained_variance_below_zero_for_ten_updates():
    rows = [{**GOOD, "explained_variance": -0.2}] * 9 + [GOOD] + [{**GOOD, "explained_variance": -1.0}] * 10
    warnings = _feed(rows)
    assert [u for u, _ in warnings] == [20]
    assert "explained variance below 0 for 10 updates" in warnings[0][1]


def test_nan_values_are_skipped():
    rows = [{"approxkl": math.nan, "entropy": math.nan, "explained_variance": math.nan}] * 20
    assert _feed(rows) == []
