"""`compare.py status`: each run's state read from its files, the time left estimated by hand-computable
arithmetic, and a run marked ``running`` told apart from one whose runner was killed by the runner's lock."""
from __future__ import annotations

import fcntl
import json
import time

import pytest

from tfppo.comparisons.cli import main
from tfppo.comparisons.runner import SuiteRunner
from tfppo.comparisons.status import describe, run_states, status_table
from tfppo.comparisons.suite import load_suite
from tests.comparisons_support.suites import TINY_SUITE, write_suite

# PPO1 with 2 MPI workers takes 2 cores per run; PPO2 one.
SUITE = TINY_SUITE.replace("seeds: 2", "seeds: 3").replace("workers: 1", "workers: 2")
HOUR = 3600.0


def _write(run_dir, status: dict, finished: bool = False) -> None:
    run_dir.mkdir(parents=True)
    (run_dir / "status.json").write_text(json.dumps(status))
    if finished:
        (run_dir / "summary.json").write_text("{}")


@pytest.fixture
def suite_dir(tmp_path):
    """Six runs: three finished (PPO1 1 h and 3 h, PPO2 0.5 h), one failed, one left marked running
    (started an hour ago), one never started."""
    suite = load_suite(write_suite(tmp_path, SUITE))
    runner = SuiteRunner(suite, tmp_path / "out", jobs=2, show_progress=False)
    runner.prepare()
    root = runner.suite_dir / "CartPole-v1"
    _write(root / "ppo1/seed-0", {"state": "done", "wall_time": 1 * HOUR}, finished=True)
    _write(root / "ppo1/seed-1", {"state": "done", "wall_time": 3 * HOUR}, finished=True)
    _write(root / "ppo2/seed-0", {"state": "done", "wall_time": 0.5 * HOUR}, finished=True)
    _write(root / "ppo2/seed-1", {"state": "failed", "error": "exit code 1: boom"})
    _write(root / "ppo1/seed-2", {"state": "running", "started": time.time() - 1 * HOUR})
    return suite, runner.suite_dir


def test_a_run_left_running_by_a_killed_runner_is_interrupted_and_the_time_left_counts_it_whole(suite_dir):
    suite, path = suite_dir
    states = {s.run.key: s.state for s in run_states(suite, path, runner_at_work=False)}
    assert states == {("CartPole-v1", "ppo1", 0): "done", ("CartPole-v1", "ppo1", 1): "done",
                      ("CartPole-v1", "ppo2", 0): "done", ("CartPole-v1", "ppo2", 1): "failed",
                      ("CartPole-v1", "ppo1", 2): "interrupted", ("CartPole-v1", "ppo2", 2): "not started"}
    row = status_table(run_states(suite, path, runner_at_work=False), jobs=2).iloc[0].to_dict()
    # left: PPO2 seeds 1 and 2 at PPO2's median 0.5 h, PPO1 seed 2 at PPO1's median 2 h on 2 cores:
    # (0.5 + 0.5 + 2 * 2) core-hours / 2 cores = 2.5 h; the median finished run is 1 h = 60 min.
    assert row == {"env": "CartPole-v1", "done": 3, "running": 0, "failed": 1, "interrupted": 1,
                   "not started": 1, "median finished run (min)": "60.0", "left at 2 cores (h)": "2.5"}
    text = describe(suite, path, jobs=2)
    assert text.startswith(f"tiny in {path}: 3 of 6 runs finished")
    assert "  CartPole-v1/ppo2/1: exit code 1: boom" in text
    assert text.endswith("no runner is at work on this directory: `compare.py run` with the same arguments continues")


def test_under_a_live_runner_a_running_run_counts_only_its_remaining_time(suite_dir):
    suite, path = suite_dir
    with open(path / ".runner.lock", "w") as held:
        fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)  # what a live runner holds
        text = describe(suite, path, jobs=2)
        row = status_table(run_states(suite, path, runner_at_work=True), jobs=2).iloc[0].to_dict()
    # PPO1 seed 2 has run 1 h of its 2 h: (0.5 + 0.5 + 2 * 1) / 2 = 1.5 h
    assert (row["running"], row["interrupted"], row["left at 2 cores (h)"]) == (1, 0, "1.5")
    assert text.endswith("a runner is at work on this directory")
    # the same 3 core-hours on 3 cores
    assert status_table(run_states(suite, path, runner_at_work=True), jobs=3).iloc[0]["left at 3 cores (h)"] == "1.0"


def test_no_estimate_without_a_finished_peer(tmp_path):
    suite = load_suite(write_suite(tmp_path, SUITE))
    runner = SuiteRunner(suite, tmp_path / "out", jobs=2, show_progress=False)
    runner.prepare()
    _write(runner.suite_dir / "CartPole-v1/ppo2/seed-0", {"state": "done", "wall_time": HOUR}, finished=True)
    row = status_table(run_states(suite, runner.suite_dir, runner_at_work=False), jobs=2).iloc[0]
    assert row["done"] == 1 and row["not started"] == 5
    assert row["left at 2 cores (h)"] == ""  # no PPO1 run has finished: nothing to estimate PPO1's from


def test_cli_prints_the_status_and_refuses_a_missing_directory_or_another_definition(suite_dir, tmp_path, capsys):
    suite, path = suite_dir
    suite_file = str(tmp_path / "tiny.yaml")
    assert main(["status", suite_file, "--out", str(tmp_path / "out"), "--jobs", "2"]) == 0
    out = capsys.readouterr().out
    assert "3 of 6 runs finished" in out and "| CartPole-v1 |" in out

    with pytest.raises(SystemExit) as exit_info:
        main(["status", suite_file, "--out", str(tmp_path / "elsewhere")])
    assert exit_info.value.code == 2
    # one line, named after the command typed (here pytest's own argv[0], in-process)
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and err.split(": error: ", 1)[1].startswith("no results of suite 'tiny' under")

    (tmp_path / "tiny.yaml").write_text(SUITE.replace("budget: 4000", "budget: 8000"))
    with pytest.raises(SystemExit) as exit_info:
        main(["status", suite_file, "--out", str(tmp_path / "out")])
    assert exit_info.value.code == 2
    assert "holds results of another definition of suite 'tiny'" in capsys.readouterr().err
