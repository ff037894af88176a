"""The runner: finished runs are never redone, a failed run is retried once, an interrupted suite
completes on rerun with every run exactly once, another definition is refused, Dask runs the same."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections import Counter

import pytest

from tfppo.comparisons.tidy import collect
from tfppo.comparisons.runner import SuiteRunner
from tfppo.comparisons.suite import SuiteError, load_suite
from tests.comparisons_support.suites import TINY_SUITE, fake_command, write_suite

KEYS = {("CartPole-v1", v, s) for v in ("ppo1", "ppo2") for s in (0, 1)}


def make_runner(tmp_path, suite_text=TINY_SUITE, **kwargs):
    suite = load_suite(write_suite(tmp_path, suite_text))
    messages: list[str] = []
    runner = SuiteRunner(suite, tmp_path / "out", jobs=2, command_factory=fake_command, show_progress=False,
                         log=messages.append, **kwargs)
    return runner, messages


def ledger_counts(path) -> Counter:
    return Counter(path.read_text().split()) if path.exists() else Counter()


def test_runs_every_run_once_and_skips_finished_ones(tmp_path, monkeypatch):
    ledger = tmp_path / "ledger"
    monkeypatch.setenv("FAKE_LEDGER", str(ledger))
    runner, _ = make_runner(tmp_path)
    outcome = runner.run()
    assert (outcome.counts.done, outcome.counts.failed, outcome.counts.skipped) == (4, 0, 0)
    for env, variant, seed in KEYS:
        run_dir = tmp_path / "out" / "tiny" / env / variant / f"seed-{seed}"
        for name in ("progress.csv", "evaluations.csv", "semantics.json", "config.json", "summary.json",
                     "stdout.log", "versions.json", "status.json"):
            assert (run_dir / name).exists(), (run_dir, name)
        summary = json.loads((run_dir / "summary.json").read_text())
        expected = 100.0 + 10.0 * seed + (5.0 if variant == "ppo1" else 0.0)  # what the fake trainer logs
        assert summary["train_return"] == expected and summary["eval_return"] == 2 * expected
        assert summary["timesteps"] == 4000 and summary["backend"] == variant
    again = make_runner(tmp_path)[0].run()
    assert (again.counts.total, again.counts.skipped) == (0, 4)
    assert set(ledger_counts(ledger).values()) == {1} and len(ledger_counts(ledger)) == 4


def test_an_ablation_whose_switch_is_idle_on_the_env_is_not_run_and_the_report_says_so(tmp_path, monkeypatch):
    """clip_actions cannot act with CartPole's Discrete actions; init can (tfppo/switch_scope.py)."""
    from tfppo.comparisons import report, stats

    monkeypatch.setenv("FAKE_LEDGER", str(tmp_path / "ledger"))
    ablations = "ablations:\n  - {base: ppo2, set: {clip_actions: false}}\n  - {base: ppo2, set: {init: normc}}\n"
    runner, messages = make_runner(tmp_path, TINY_SUITE + ablations)
    outcome = runner.run()
    assert (outcome.counts.done, outcome.counts.failed) == (6, 0)  # ppo1, ppo2, ppo2+init: 2 seeds each
    assert {line.split("/")[1] for line in ledger_counts(tmp_path / "ledger")} == {"ppo1", "ppo2", "ppo2+init"}
    suite_dir = tmp_path / "out" / "tiny"
    idle = json.loads((suite_dir / "suite.json").read_text())["idle_ablations"]
    assert idle == {"CartPole-v1": ["ppo2+clip_actions"]}
    assert "tiny: CartPole-v1: not run, their switch is idle there: ppo2+clip_actions" in messages
    analysis = report.analyse(suite_dir, stats.BootstrapSettings(reps=200))
    assert set(analysis.effects["switch"]) == {"init"}
    text = report.write_report(analysis, []).read_text()
    assert "idle on the env" in text and "CartPole-v1: ppo2+clip_actions." in text


def test_a_failed_run_is_recorded_and_retried_once(tmp_path, monkeypatch):
    monkeypatch.setenv("FAKE_FAIL_ONCE", "1")
    runner, messages = make_runner(tmp_path)
    outcome = runner.run()
    assert (outcome.counts.done, outcome.counts.failed) == (4, 0)
    assert sum("retrying once" in m for m in messages) == 4
    run_dir = tmp_path / "out" / "tiny" / "CartPole-v1" / "ppo2" / "seed-0"
    assert "planned failure" in (run_dir / "attempt-1.log").read_text()
    status = json.loads((run_dir / "status.json").read_text())
    assert status["state"] == "done" and status["attempt"] == 2


def test_a_run_failing_twice_is_reported_and_the_rest_finish(tmp_path, monkeypatch):
    monkeypatch.setenv("FAKE_ALWAYS_FAIL", "ppo1")
    runner, messages = make_runner(tmp_path)
    outcome = runner.run()
    assert (outcome.counts.done, outcome.counts.failed) == (2, 2)
    assert set(outcome.failures) == {("CartPole-v1", "ppo1", 0), ("CartPole-v1", "ppo1", 1)}
    assert all("exit code 1: fake_trainer: error: this variant always fails" == e for e in outcome.failures.values())
    status = json.loads((tmp_path / "out/tiny/CartPole-v1/ppo1/seed-0/status.json").read_text())
    assert status["state"] == "failed" and status["attempt"] == 2 and "always fails" in status["error"]
    monkeypatch.delenv("FAKE_ALWAYS_FAIL")
    rerun = make_runner(tmp_path)[0].run()  # a later invocation tries the failed runs again
    assert (rerun.counts.done, rerun.counts.skipped) == (2, 2)


def test_another_definition_is_refused_more_seeds_extend(tmp_path):
    make_runner(tmp_path)[0].run()
    changed = TINY_SUITE.replace("budget: 4000", "budget: 8000")
    with pytest.raises(SuiteError, match="holds results of another definition of suite 'tiny'"):
        make_runner(tmp_path, changed)[0].run()
    more = make_runner(tmp_path, TINY_SUITE.replace("seeds: 2", "seeds: 3"))[0].run()
    assert (more.counts.done, more.counts.skipped) == (2, 4)
    assert json.loads((tmp_path / "out/tiny/suite.json").read_text())["seeds"] == [0, 1, 2]


DRIVER = textwrap.dedent("""
    import sys
    sys.path.insert(0, {root!r})
    from tfppo.comparisons.runner import SuiteRunner
    from tfppo.comparisons.suite import load_suite
    from tests.comparisons_support.suites import fake_command
    outcome = SuiteRunner(load_suite({suite!r}), {out!r}, jobs=1, command_factory=fake_command,
                          show_progress=False).run()
    sys.exit(130 if outcome.interrupted else 0)
""")


def test_ctrl_c_keeps_finished_runs_and_a_rerun_completes_each_run_exactly_once(tmp_path, repo_root,
                                                                                subprocess_env):
    suite_path = write_suite(tmp_path)
    ledger = tmp_path / "ledger"
    env = dict(subprocess_env, FAKE_LEDGER=str(ledger), FAKE_SLEEP="1.0")
    driver = tmp_path / "driver.py"
    driver.write_text(DRIVER.format(root=str(repo_root), suite=str(suite_path), out=str(tmp_path / "out")))
    proc = subprocess.Popen([sys.executable, str(driver)], env=env, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 60
    while sum(ledger_counts(ledger).values()) < 1 and time.time() < deadline:
        time.sleep(0.1)
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130, stderr
    assert "interrupted; finished runs are kept" in stderr
    finished_before = sum(ledger_counts(ledger).values())
    assert 1 <= finished_before < 4
    statuses = [json.loads(p.read_text())["state"] for p in (tmp_path / "out/tiny").glob("*/*/seed-*/status.json")]
    assert "running" not in statuses and "failed" not in statuses
    rerun = subprocess.run([sys.executable, str(driver)], env=env, capture_output=True, text=True, timeout=120)
    assert rerun.returncode == 0, rerun.stderr
    counts = ledger_counts(ledger)
    assert set(counts) == {"/".join(map(str, k)) for k in KEYS} and set(counts.values()) == {1}
    assert len(collect(tmp_path / "out" / "tiny")["runs"]) == 4
    assert not list((tmp_path / "out/tiny").glob("*/*/seed-*/attempt-*.log"))  # an interruption is no failure


def test_dask_localcluster_runs_the_same_suite(tmp_path, monkeypatch):
    import distributed  # tfppo[test] installs the cluster extra: a missing Dask is a failure, not a skip
    ledger = tmp_path / "ledger"
    monkeypatch.setenv("FAKE_LEDGER", str(ledger))
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=False, dashboard_address=None,
                                  resources={"cores": 1}) as c:
        runner, _ = make_runner(tmp_path, scheduler=c.scheduler_address)
        outcome = runner.run()
    assert (outcome.counts.done, outcome.counts.failed) == (4, 0)
    runs = collect(tmp_path / "out" / "tiny")["runs"]
    assert set(zip(runs["env"], runs["variant"], runs["seed"])) == KEYS
    assert set(ledger_counts(ledger).values()) == {1}


TWO_WORKER_PPO1 = TINY_SUITE.replace("ppo1: {trainer: ppo1, preset: baselines-ppo1, workers: 1}",
                                     "ppo1: {trainer: ppo1, preset: baselines-ppo1, workers: 2}")


def test_a_ppo1_run_of_two_ranks_takes_two_cores_of_a_dask_worker(tmp_path, monkeypatch):
    """One worker with 2 threads and 2 declared cores: the two 2-rank PPO1 runs must not overlap (2 threads
    alone would run both at once: 4 processes on 2 cores)."""
    import distributed

    intervals = tmp_path / "intervals"
    monkeypatch.setenv("FAKE_INTERVALS", str(intervals))
    monkeypatch.setenv("FAKE_SLEEP", "0.5")
    with distributed.LocalCluster(n_workers=1, threads_per_worker=2, processes=False, dashboard_address=None,
                                  resources={"cores": 2}) as c:
        only_ppo1 = TWO_WORKER_PPO1.split("  ppo2: {trainer")[0]
        runner, _ = make_runner(tmp_path, only_ppo1, scheduler=c.scheduler_address)
        outcome = runner.run()
    assert (outcome.counts.done, outcome.counts.failed) == (2, 0)
    (a0, a1, _), (b0, b1, _) = sorted(tuple(map(float, line.split())) for line in intervals.read_text().splitlines())
    assert a1 <= b0, "two 2-rank PPO1 runs ran at once on a worker that declares 2 cores"


def test_dask_workers_without_enough_cores_are_refused_in_one_line(tmp_path):
    import distributed

    with distributed.LocalCluster(n_workers=1, threads_per_worker=2, processes=False, dashboard_address=None) as c:
        runner, _ = make_runner(tmp_path, TWO_WORKER_PPO1, scheduler=c.scheduler_address)
        with pytest.raises(SuiteError, match=r"no Dask worker declares 2 'cores' \(largest: 0\); start workers with"):
            runner.run()


@pytest.mark.parametrize("address", ["notanaddress", "tcp:/x:1", "10.0.0.5 8786"])
def test_a_malformed_scheduler_address_is_one_line(tmp_path, address):
    runner, _ = make_runner(tmp_path, scheduler=address)
    with pytest.raises(SuiteError, match="is not a scheduler address; give PROTOCOL://HOST:PORT"):
        runner.run()


def test_unreachable_scheduler_is_one_clear_error(tmp_path):
    runner, _ = make_runner(tmp_path, scheduler="tcp://127.0.0.1:1")
    with pytest.raises(SuiteError, match="--scheduler tcp://127.0.0.1:1: cannot connect"):
        runner.run()


def test_concurrent_runner_on_the_same_directory_is_refused(tmp_path):
    import fcntl

    runner, _ = make_runner(tmp_path)
    (tmp_path / "out" / "tiny").mkdir(parents=True)
    with open(tmp_path / "out" / "tiny" / ".runner.lock", "w") as held:
        fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)
        with pytest.raises(SuiteError, match="another runner is using"):
            runner.run()
    assert os.path.exists(tmp_path / "out" / "tiny" / ".runner.lock")


def _start_waiting(slots, cores: int, name: str, order: list[str]):
    """A thread that takes ``cores`` and records ``name`` when it starts; returns it with its release."""
    import threading

    done = threading.Event()

    def run():
        slots.acquire(cores)
        order.append(name)
        done.wait(10)
        slots.release(cores)

    thread = threading.Thread(target=run)
    thread.start()
    time.sleep(0.2)  # queued (or started) before the next request
    return thread, done.set


def test_core_slots_backfill_a_free_core_but_overtake_a_waiting_run_only_once():
    from tfppo.comparisons.runner import CoreSlots

    slots, order = CoreSlots(2), []
    assert slots.acquire(1) == 1  # a 1-core run (PPO2) busy
    wide, finish_wide = _start_waiting(slots, 2, "wide", order)  # a 2-worker PPO1 run must wait for it
    narrow1, finish_narrow1 = _start_waiting(slots, 1, "narrow1", order)
    assert order == ["narrow1"]  # fits the idle core: overtakes the waiting wide run
    slots.release(1)  # the first run ends: one core free again, but wide was overtaken once already
    narrow2, finish_narrow2 = _start_waiting(slots, 1, "narrow2", order)
    assert order == ["narrow1"]  # so the later 1-core run waits behind it
    finish_narrow1()
    time.sleep(0.2)
    assert order == ["narrow1", "wide"]  # both cores free: wide first, then the rest in order
    finish_wide()
    for thread, finish in ((wide, finish_wide), (narrow1, finish_narrow1), (narrow2, finish_narrow2)):
        finish()
        thread.join(5)
    assert order == ["narrow1", "wide", "narrow2"]
    assert slots.free == 2 and slots.acquire(5) == 2  # capped at capacity


def test_core_slots_keep_request_order_among_runs_that_fit():
    from tfppo.comparisons.runner import CoreSlots

    slots, order = CoreSlots(1), []
    assert slots.acquire(1) == 1
    first, finish_first = _start_waiting(slots, 1, "first", order)
    second, finish_second = _start_waiting(slots, 1, "second", order)
    slots.release(1)
    time.sleep(0.2)
    assert order == ["first"]  # the earlier request fits, so the later one never jumps it
    finish_first()
    finish_second()
    first.join(5)
    second.join(5)
    assert order == ["first", "second"]


def test_git_commit_is_read_per_run_not_once_per_runner(tmp_path, monkeypatch):
    """A suite that outlives a checkout must record the code each run actually ran."""
    from tfppo.comparisons import launch

    repo = tmp_path / "repo"
    repo.mkdir()
    git = lambda *args: subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True, text=True).stdout
    git("init", "-q")
    commits = []
    for text in ("one", "two"):
        (repo / "f.txt").write_text(text)
        git("add", "f.txt")
        git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", text)
        commits.append(git("rev-parse", "--short=12", "HEAD").strip())
        monkeypatch.setattr(launch, "PACKAGE_ROOT", repo)
        assert launch.versions()["git_commit"] == commits[-1]
    assert commits[0] != commits[1]


def test_versions_name_the_simulators_the_cpu_and_the_runner_environment(monkeypatch):
    """Provenance: the env simulators change dynamics, the CPU changes speed, the runner's variables the threads."""
    from tfppo.comparisons import launch

    monkeypatch.setenv("OMP_NUM_THREADS", "7")  # the runner overrides whatever the caller had
    recorded = launch.versions()
    assert {"mujoco", "box2d", "tf-keras", "statsmodels", "matplotlib", "ale-py", "minatar"} <= set(recorded)
    assert recorded["box2d"] is not None  # installed with the test extra (gymnasium[box2d])
    assert recorded["cpu_model"] and recorded["cpu_model"] != "unknown"
    assert recorded["environment"]["OMP_NUM_THREADS"] == "1"
    assert recorded["environment"]["PYTHONHASHSEED"] == "0"


def test_tidy_long_tables_are_gzipped_byte_stable_and_plain_csv_is_still_read(tmp_path):
    import pandas as pd

    from tfppo.comparisons.tidy import load_tidy, save_tidy

    keys = {"env": "CartPole-v1", "variant": "ppo2", "backend": "ppo2", "preset": "baselines-ppo2", "seed": 0}
    tables = {"runs": pd.DataFrame([{**keys, "train_return": 500.0}]),
              "curves": pd.DataFrame([{**keys, "timesteps": t, "metric": "train_return", "value": t / 10}
                                      for t in range(0, 5000, 100)]),
              "diagnostics": pd.DataFrame([{**keys, "timesteps": t, "approxkl": 1e-3 * t} for t in range(50)])}
    tidy = save_tidy(tables, tmp_path / "a")
    assert sorted(p.name for p in tidy.iterdir()) == ["curves.csv.gz", "diagnostics.csv.gz", "runs.csv"]
    first = (tidy / "curves.csv.gz").read_bytes()
    assert first[:2] == b"\x1f\x8b"  # gzip
    assert first[3] == 0 and first[4:8] == bytes(4)  # no file name (the temp file's) and no time stamp stored
    save_tidy(tables, tmp_path / "a")
    assert (tidy / "curves.csv.gz").read_bytes() == first  # republishing the same suite changes no file
    for name, frame in load_tidy(tmp_path / "a").items():
        pd.testing.assert_frame_equal(frame, tables[name])

    legacy = tmp_path / "b" / "tidy"  # written before the long tables were gzipped
    legacy.mkdir(parents=True)
    for name, frame in tables.items():
        frame.to_csv(legacy / f"{name}.csv", index=False)
    for name, frame in load_tidy(tmp_path / "b").items():
        pd.testing.assert_frame_equal(frame, tables[name])
    save_tidy(tables, tmp_path / "b")
    assert sorted(p.name for p in legacy.iterdir()) == ["curves.csv.gz", "diagnostics.csv.gz", "runs.csv"]
