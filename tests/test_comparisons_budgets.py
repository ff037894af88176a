"""Equal budgets, one clock, portable provenance and refused corrupt files (issue 23), on hand-built runs."""
from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tfppo.comparisons import rundir, tidy
from tfppo.comparisons.runner import SuiteRunner
from tfppo.comparisons.suite import load_suite
from tfppo.util.errors import ConfigError
from tests.comparisons_support.suites import TINY_SUITE, fake_command, write_suite

KEYS = dict(variant="v", backend="ppo1", preset="p", seed=0)


def test_the_read_step_is_the_last_step_every_run_logged_within_the_budget():
    ppo1 = np.arange(1, 102) * 1024  # Baselines' episode counter ran one batch past the budget (row 10)
    ppo2 = np.arange(1, 101) * 1024
    assert tidy.read_step(102400, [ppo1, ppo2]) == 102400
    # grids that only meet every 4096 steps: 2048-step PPO1 batches, 4096-step PPO2 batches
    assert tidy.read_step(200000, [np.arange(1, 99) * 2048, np.arange(1, 49) * 4096]) == 196608
    assert tidy.read_step(100, [np.array([1024])]) == 0  # nothing logged within the budget


def _curves(run: dict, train: list[tuple[int, float, float]], evals: list[tuple[int, float, float]]) -> pd.DataFrame:
    rows = [dict(run, timesteps=t, time=s, metric="train_return", value=v) for t, s, v in train]
    rows += [dict(run, timesteps=t, time=s, metric="eval_return", value=v) for t, s, v in evals]
    return pd.DataFrame(rows)


def test_a_pair_is_read_at_the_same_step_never_past_the_budget():
    budget = 3000
    ppo1 = dict(env="E", variant="ppo1", backend="ppo1", preset="a", seed=0)
    ppo2 = dict(env="E", variant="ppo2", backend="ppo2", preset="b", seed=0)
    curves = pd.concat([
        # PPO1 ran 4 batches of 1000 (one past the budget); its last evaluation, after the 4th, is past it too
        _curves(ppo1, [(1000, 1.0, 10.0), (2000, 2.0, 20.0), (3000, 3.0, 30.0), (4000, 4.0, 40.0)],
                [(0, 0.1, 0.0), (2000, 2.1, 25.0), (4000, 4.1, 45.0)]),
        _curves(ppo2, [(1000, 1.5, 11.0), (2000, 3.0, 21.0), (3000, 4.5, 31.0)],
                [(0, 0.1, 1.0), (2000, 3.1, 26.0), (3000, 4.6, 36.0)]),
    ], ignore_index=True)
    runs = pd.DataFrame([dict(ppo1, budget=budget, train_return=40.0), dict(ppo2, budget=budget, train_return=31.0)])
    read = tidy.align_readings(runs, curves).set_index("variant")
    assert read.loc["ppo1", "train_return"] == 30.0 and read.loc["ppo2", "train_return"] == 31.0
    assert (read["train_timesteps"] == 3000).all()
    # the one evaluation both runs have within the budget: 2000 (PPO1 has none at 3000)
    assert (read["eval_timesteps"] == 2000).all()
    assert read.loc["ppo1", "eval_return"] == 25.0 and read.loc["ppo2", "eval_return"] == 26.0
    # env steps over the span to the end of the update that took them, on the one clock
    assert read.loc["ppo1", "steps_per_second"] == pytest.approx(3000 / 3.0)
    assert read.loc["ppo2", "steps_per_second"] == pytest.approx(3000 / 4.5)


def test_ppo2_start_of_update_times_become_end_of_update_times_once():
    progress = pd.DataFrame({"total_timesteps": [100, 200, 300], "time_elapsed": [0.5, 1.5, 2.5],
                             "ep_reward_mean": [1.0, 2.0, 3.0]})
    times = tidy.canonical_progress(progress)["time"].tolist()
    assert times[:2] == [1.5, 2.5] and math.isnan(times[2])  # update k ends when update k+1 starts
    ppo1 = pd.DataFrame({"EnvStepsSoFar": [100, 200], "TimeElapsed": [1.0, 2.0], "EpRewMean": [1.0, 2.0]})
    assert tidy.canonical_progress(ppo1)["time"].tolist() == [1.0, 2.0]  # already at the end of each update
    unified = progress.assign(**{"time/elapsed": [0.9, 1.9, 2.9]})
    assert tidy.canonical_progress(unified)["time"].tolist() == [0.9, 1.9, 2.9]

    run = dict(env="E", variant="ppo2", backend="ppo2", preset="b", seed=0)
    curves = _curves(run, [(100, 0.5, 1.0), (200, 1.5, 2.0), (300, 2.5, 3.0)], [(300, 2.6, 5.0)])
    diagnostics = pd.DataFrame([dict(run, timesteps=t, time=s) for t, s in ((100, 0.5), (200, 1.5), (300, 2.5))])
    legacy = {"backend": "ppo2"}
    moved, moved_diag = tidy.migrate_legacy_clock(legacy, curves, diagnostics)
    train = moved[moved["metric"] == "train_return"]["time"].tolist()
    assert train[:2] == [1.5, 2.5] and math.isnan(train[2])
    assert moved[moved["metric"] == "eval_return"]["time"].tolist() == [2.6]  # evaluations were always after
    assert moved_diag["time"].tolist()[:2] == [1.5, 2.5]
    again, _ = tidy.migrate_legacy_clock({"backend": "ppo2", "clock": tidy.CLOCK}, moved, moved_diag)
    pd.testing.assert_frame_equal(again, moved)  # a summary on the one clock is never shifted again
    unchanged, _ = tidy.migrate_legacy_clock({"backend": "ppo1"}, curves, diagnostics)
    pd.testing.assert_frame_equal(unchanged, curves)


def test_a_published_command_holds_no_path_of_the_machine():
    argv = ["/work/main/.venv/bin/mpirun", "-n", "2", "/work/main/.venv/bin/python", "/work/runs-wt/scripts/ppo1.py",
            "--env", "CartPole-v1", "--log_dir", "/work/results-out/ablation/CartPole-v1/ppo1/seed-3"]
    assert rundir.portable_command(argv, roots=()) == ["mpirun", "-n", "2", "python", "scripts/ppo1.py", "--env", "CartPole-v1",
                                             "--log_dir", "<out>/ablation/CartPole-v1/ppo1/seed-3"]
    now = ["/x/venv/bin/python3.11", "-m", "tfppo.cli.ppo2", "--log_dir", "/data/out/s/E/v/seed-0"]
    assert rundir.portable_command(now, roots=()) == ["python", "-m", "tfppo.cli.ppo2", "--log_dir", "<out>/s/E/v/seed-0"]
    assert rundir.portable_command(["python", "/repo/tests/fake.py"], roots=("/repo",)) == ["python", "tests/fake.py"]
    with pytest.raises(ValueError, match="cannot publish the machine path '/etc/passwd'"):
        rundir.portable_command(["python", "/etc/passwd"], roots=())


def _absolute_paths(value) -> list[str]:
    if isinstance(value, dict):
        return [p for v in value.values() for p in _absolute_paths(v)]
    if isinstance(value, list):
        return [p for v in value for p in _absolute_paths(v)]
    return [value] if isinstance(value, str) and value.startswith("/") else []


def test_publish_reads_every_run_within_its_budget_and_writes_no_machine_path(tmp_path):
    suite = load_suite(write_suite(tmp_path))
    outcome = SuiteRunner(suite, tmp_path / "out", jobs=2, command_factory=fake_command, show_progress=False,
                          log=lambda line: None).run()
    assert outcome.counts.done == 4
    dest = tmp_path / "published"
    assert tidy.publish(tmp_path / "out" / "tiny", dest) == 4
    summaries = sorted(dest.glob("*/*/seed-*/summary.json"))
    assert len(summaries) == 4
    for path in summaries:
        summary = json.loads(path.read_text())
        assert summary["train_timesteps"] <= summary["budget"] and summary["eval_timesteps"] <= summary["budget"]
        assert summary["clock"] == tidy.CLOCK
        assert (path.parent / "status.json").exists()  # attempts and errors are published with each run
        for name in rundir.PUBLISHED_RUN_FILES:
            assert _absolute_paths(json.loads((path.parent / name).read_text())) == [], name
    assert _absolute_paths(json.loads((dest / "suite.json").read_text())) == []


def test_a_corrupt_suite_json_is_refused_and_left_as_it_was(tmp_path):
    suite_dir = tmp_path / "out" / "tiny"
    suite_dir.mkdir(parents=True)
    (suite_dir / "suite.json").write_text('{"fingerprint": "abc", "seeds": [0')  # cut off mid-write by hand
    before = (suite_dir / "suite.json").read_bytes()
    runner = SuiteRunner(load_suite(write_suite(tmp_path, TINY_SUITE)), tmp_path / "out", jobs=1,
                         command_factory=fake_command, show_progress=False, log=lambda line: None)
    with pytest.raises(ConfigError, match=r"suite\.json is corrupt .*left as it is"):
        runner.run()
    assert (suite_dir / "suite.json").read_bytes() == before
    assert not list(suite_dir.glob("CartPole-v1/*"))  # nothing ran


def test_the_suite_cli_refuses_a_corrupt_suite_json_in_one_line(tmp_path, capsys):
    from tfppo.comparisons.cli import main

    suite_dir = tmp_path / "out" / "tiny"
    suite_dir.mkdir(parents=True)
    (suite_dir / "suite.json").write_text("not json")
    with pytest.raises(SystemExit) as exit_info:
        main(["status", str(write_suite(tmp_path)), "--out", str(tmp_path / "out")])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "suite.json is corrupt" in err


RESULTS = Path(__file__).resolve().parents[1] / "comparisons" / "results"  # the committed suites (not in the wheel)
PUBLISHED = sorted(p for p in RESULTS.iterdir() if (p / rundir.SUITE_JSON).exists())


@pytest.mark.parametrize("suite_dir", PUBLISHED, ids=[p.name for p in PUBLISHED])
def test_every_published_run_is_read_within_its_budget_and_names_no_machine_path(suite_dir):
    summaries = sorted(suite_dir.glob(f"*/*/seed-*/{rundir.SUMMARY_JSON}"))
    assert summaries
    for path in summaries:
        summary = rundir.read_json(path)
        assert summary["clock"] == "end_of_update", path
        assert 0 < summary["train_timesteps"] <= summary["budget"], path
        assert 0 < summary["eval_timesteps"] <= summary["train_timesteps"], path
        config = (path.parent / rundir.CONFIG_JSON).read_text()
        assert "/work/" not in config and "/root/" not in config and "/tmp/" not in config, path
        assert '"/' not in json.dumps(rundir.read_json(path.parent / rundir.CONFIG_JSON).get("command", [])), path
    report = (suite_dir / rundir.REPORT_MD).read_text()
    assert "Holm p (report, " in report and "BH q (report, " in report  # the suite-wide correction
