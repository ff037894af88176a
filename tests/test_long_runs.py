"""Long runs that survive (issue 9): kill -9 + resume equivalence, interrupted checkpoint writes,
SIGTERM, the NaN guard and the quiet one-line errors, all through the real scripts in subprocesses.

The reference for every resumed run is an *independent* uninterrupted run of the same command: the
resumed run's progress.csv (minus wall-clock columns) and final weights must equal it exactly.
"""
from __future__ import annotations

import csv
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from tfppo import checkpoint

ROOT = Path(__file__).resolve().parents[1]
MPIRUN = shutil.which("mpirun", path=os.path.dirname(sys.executable)) or shutil.which("mpirun")
WALL_CLOCK = {"time_elapsed", "fps", "TimeElapsed", "StepsPerSecRank", "StepsPerSecTotal"}
TIMEOUT = 300


def _env() -> dict[str, str]:
    env = dict(os.environ, PYTHONPATH=str(ROOT), PYTHONHASHSEED="0", OMP_NUM_THREADS="1")
    env.pop("TF_CPP_MIN_LOG_LEVEL", None)  # the scripts must be quiet on their own
    return env


def _cmd(script: str, args: list[str], ranks: int = 0) -> list[str]:
    base = [sys.executable, f"scripts/{script}", *args]
    return [MPIRUN, "-n", str(ranks), *base] if ranks else base


def _run(cmd: list[str]) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, cwd=ROOT, env=_env(), capture_output=True, text=True, timeout=TIMEOUT)


def _kill9_after_first_checkpoint(cmd: list[str], save_path: Path) -> None:
    """Start ``cmd`` in its own process group, wait for its first periodic checkpoint, then SIGKILL the
    whole group (mpirun and its ranks too): no handler, no flush, no final checkpoint."""
    proc = subprocess.Popen(cmd, cwd=ROOT, env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            start_new_session=True)
    deadline = time.monotonic() + TIMEOUT
    while not checkpoint.periodic_dirs(save_path):
        assert proc.poll() is None, f"run ended before its first checkpoint: {proc.stderr.read()[-2000:]}"
        assert time.monotonic() < deadline
        time.sleep(0.005)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=60)
    proc.stderr.close()
    assert proc.returncode == -signal.SIGKILL
    newest = checkpoint.read_meta(checkpoint.latest(save_path))
    assert newest["run"]["complete"] is False, "the kill came after the run finished"


def _rows(log_dir: Path) -> list[dict[str, str]]:
    with open(log_dir / "progress.csv", newline="") as f:
        return [{k: v for k, v in row.items() if k not in WALL_CLOCK} for row in csv.DictReader(f)]


def _state(save_path: Path) -> list[np.ndarray]:
    """Final weights and Adam state of the newest checkpoint, read from the files (no TF needed)."""
    import h5py

    final = checkpoint.latest(save_path)
    arrays: list[np.ndarray] = []
    with h5py.File(final / checkpoint.WEIGHTS, "r") as f:
        f.visititems(lambda name, obj: arrays.append(np.asarray(obj)) if isinstance(obj, h5py.Dataset) else None)
    with np.load(final / checkpoint.OPTIMIZER) as data:
        arrays += [data[f"arr_{i}"] for i in range(len(data.files))]
    return arrays


def _resume_equivalence(tmp_path: Path, script: str, args: list[str], ranks: int = 0) -> float:
    ref_log, ref_save = tmp_path / "ref", tmp_path / "ref" / "ckpt"
    run_log, run_save = tmp_path / "run", tmp_path / "run" / "ckpt"
    ref = _run(_cmd(script, [*args, "--log_dir", str(ref_log), "--save_path", str(ref_save)], ranks))
    assert ref.returncode == 0, ref.stderr[-3000:]
    cmd = _cmd(script, [*args, "--log_dir", str(run_log), "--save_path", str(run_save)], ranks)
    _kill9_after_first_checkpoint(cmd, run_save)
    killed_rows = len(_rows(run_log))
    resumed = _run(cmd + ["--resume"])
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    expected, got = _rows(ref_log), _rows(run_log)
    assert killed_rows < len(expected)
    assert len(got) == len(expected)  # no duplicated or missing rows
    for i, (want, have) in enumerate(zip(expected, got)):
        assert have == want, f"row {i} differs"
    ref_state, run_state = _state(ref_save), _state(run_save)
    assert [a.shape for a in ref_state] == [a.shape for a in run_state]
    delta = max(float(np.max(np.abs(a.astype(np.float64) - b.astype(np.float64)))) if a.size else 0.0
                for a, b in zip(ref_state, run_state))
    print(f"max |delta weights/optimizer| = {delta}")
    assert delta == 0.0
    return delta


PPO2_ONE_ENV = ["--env", "tests.long_run_envs:SlowCartPole", "--num_envs", "1", "--n_steps", "64",
                "--nminibatches", "2", "--noptepochs", "2", "--total_timesteps", "640", "--seed", "5",
                "--save_freq", "128", "--verbose", "0"]


@pytest.mark.slow
def test_kill9_resume_ppo2_one_env(tmp_path):
    _resume_equivalence(tmp_path, "ppo2.py", PPO2_ONE_ENV)


@pytest.mark.slow
def test_kill9_resume_ppo2_eight_envs_vecnormalize(tmp_path):
    args = ["--env", "tests.long_run_envs:SlowPendulum", "--preset", "baselines-ppo2-mujoco", "--num_envs", "8",
            "--n_steps", "16", "--nminibatches", "4", "--noptepochs", "2", "--total_timesteps", "1024",
            "--seed", "7", "--save_freq", "256", "--verbose", "0"]
    _resume_equivalence(tmp_path, "ppo2.py", args)


@pytest.mark.slow
@pytest.mark.mpi
def test_kill9_resume_ppo1_mpirun_two_ranks(tmp_path):
    args = ["--env", "tests.long_run_envs:SlowCartPole", "--timesteps_per_actorbatch", "64", "--optim_batchsize",
            "32", "--optim_epochs", "2", "--max_timesteps", "1024", "--seed", "9", "--save_freq", "256",
            "--verbose", "0"]
    _resume_equivalence(tmp_path, "ppo1.py", args, ranks=2)
