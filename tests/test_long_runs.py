"""Long runs that survive (issue 9): kill -9 + resume equivalence, interrupted checkpoint writes,
SIGTERM, the NaN guard and the quiet one-line errors, all through the real scripts in subprocesses.

The reference for every resumed run is an *independent* uninterrupted run of the same command: the
resumed run's progress.csv (minus wall-clock columns) and final weights must equal it exactly. The rows
the killed run wrote before the kill come from a second process of the same command, so these tests are
also the check that one command gives the same run twice (reproducible seeding, TF op determinism).
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

from tfppo.io.log_keys import WALL_CLOCK_KEYS
from tfppo.training import checkpoint

ROOT = Path(__file__).resolve().parents[1]
MPIRUN = shutil.which("mpirun", path=os.path.dirname(sys.executable)) or shutil.which("mpirun")
WALL_CLOCK = WALL_CLOCK_KEYS
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


def _tb_steps(log_dir: Path) -> list[int]:
    import tensorflow as tf

    files = sorted((log_dir / "tb").glob("events.out.tfevents.*"))
    return sorted(e.step for f in files for e in tf.compat.v1.train.summary_iterator(str(f))
                  for v in e.summary.value if v.tag == "diag/grad_norm")


def _resume_equivalence(tmp_path: Path, script: str, args: list[str], ranks: int = 0) -> subprocess.CompletedProcess:
    """Returns the uninterrupted reference run."""
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
    assert _tb_steps(run_log) == _tb_steps(ref_log)  # TensorBoard: every step once, none missing
    if "--eval_freq" in args:  # evaluations continue from the checkpoint too, none repeated or missing
        strip = lambda rows: [{k: v for k, v in row.items() if k not in WALL_CLOCK_KEYS} for row in rows]
        read = lambda path: list(csv.DictReader(open(path / "evaluations.csv", newline="")))
        assert strip(read(run_log)) == strip(read(ref_log))
    ref_state, run_state = _state(ref_save), _state(run_save)
    assert [a.shape for a in ref_state] == [a.shape for a in run_state]
    delta = max(float(np.max(np.abs(a.astype(np.float64) - b.astype(np.float64)))) if a.size else 0.0
                for a, b in zip(ref_state, run_state))
    print(f"max |delta weights/optimizer| = {delta}")
    assert delta == 0.0
    return ref


PPO2_ONE_ENV = ["--env", "tests.long_run_envs:SlowCartPole", "--num_envs", "1", "--n_steps", "64",
                "--nminibatches", "2", "--noptepochs", "2", "--total_timesteps", "640", "--seed", "5",
                "--save_freq", "128", "--verbose", "0", "--eval_freq", "100", "--eval_episodes", "2"]


@pytest.mark.slow
def test_kill9_resume_ppo2_one_env(tmp_path):
    reference = _resume_equivalence(tmp_path, "ppo2.py", PPO2_ONE_ENV)
    # _env() leaves TF_CPP_MIN_LOG_LEVEL unset: a successful quiet run still writes nothing to stderr
    # (no TensorFlow start-up lines), with evaluation, checkpoints and TensorBoard all on.
    assert reference.stderr == ""


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


# -- signals, NaN guard, one-line errors -------------------------------------------------------------
def _start(cmd: list[str]) -> subprocess.Popen:
    return subprocess.Popen(cmd, cwd=ROOT, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)


def _wait_for_rows(proc: subprocess.Popen, log_dir: Path, rows: int) -> None:
    deadline = time.monotonic() + TIMEOUT
    while not (log_dir / "progress.csv").exists() or len(_rows(log_dir)) < rows:
        assert proc.poll() is None, proc.stderr.read()[-2000:]
        assert time.monotonic() < deadline
        time.sleep(0.01)


@pytest.mark.parametrize("signum, code", [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_stop_signal_writes_a_checkpoint_and_exits_128_plus_signal(tmp_path, signum, code):
    log_dir, save_path = tmp_path / "log", tmp_path / "ckpt"
    args = [*PPO2_ONE_ENV, "--total_timesteps", "64000", "--save_freq", "0", "--log_dir", str(log_dir),
            "--save_path", str(save_path)]
    proc = _start(_cmd("ppo2.py", args))
    _wait_for_rows(proc, log_dir, 2)
    os.kill(proc.pid, signum)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == code
    saved = checkpoint.periodic_dirs(save_path)
    assert len(saved) == 1
    name = signal.Signals(signum).name
    assert err.splitlines() == [f"ppo2.py: stopped by {name} after update {len(_rows(log_dir))}: checkpoint "
                                f"{saved[0]} (continue with --resume)"]
    meta = checkpoint.read_meta(saved[0])
    assert meta["run"]["complete"] is False
    assert meta["counters"]["n_updates"] == len(_rows(log_dir))  # the boundary after the last logged row


@pytest.mark.mpi
def test_sigterm_to_one_mpi_rank_stops_every_rank(tmp_path):
    """Only rank 1 receives SIGTERM; the ranks agree at the next boundary, rank 0 writes the checkpoint
    and prints the one line, and the job exits 143."""
    log_dir, save_path = tmp_path / "log", tmp_path / "ckpt"
    args = ["--env", "tests.long_run_envs:SlowCartPole", "--timesteps_per_actorbatch", "64", "--max_timesteps",
            "100000", "--seed", "2", "--verbose", "0", "--log_dir", str(log_dir), "--save_path", str(save_path)]
    proc = _start(_cmd("ppo1.py", args, ranks=2))
    _wait_for_rows(proc, log_dir, 2)
    rank1 = [pid for pid in _pids_with(str(save_path)) if _environ(pid).get("PMI_RANK") == "1"]
    assert len(rank1) == 1
    os.kill(rank1[0], signal.SIGTERM)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 143, err[-2000:]
    saved = checkpoint.periodic_dirs(save_path)
    assert len(saved) == 1
    assert [line for line in err.splitlines() if line] == [
        f"ppo1.py: stopped by SIGTERM after update {len(_rows(log_dir))}: checkpoint {saved[0]} "
        "(continue with --resume)"]
    assert len(checkpoint.read_meta(saved[0])["rng"]["ranks"]) == 2  # both ranks took part in the save


def _pids_with(text: str) -> list[int]:
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                cmdline = (entry / "cmdline").read_bytes().decode(errors="replace")
            except OSError:
                continue
            if text in cmdline and "ppo1.py" in cmdline and "mpirun" not in cmdline and "hydra" not in cmdline:
                pids.append(int(entry.name))
    return pids


def _environ(pid: int) -> dict[str, str]:
    try:
        raw = Path(f"/proc/{pid}/environ").read_bytes().decode(errors="replace")
    except OSError:
        return {}
    return dict(item.split("=", 1) for item in raw.split("\0") if "=" in item)


def test_nan_rewards_stop_the_run_with_one_line_and_exit_3(tmp_path):
    """NaN rewards from env step 300: updates 1-4 (steps 0-255) are fine and checkpointed at 128 and 256;
    update 5's loss is NaN, so the run stops before applying it, naming the last good checkpoint."""
    log_dir, save_path = tmp_path / "log", tmp_path / "ckpt"
    args = ["--env", "tests.long_run_envs:NanRewardCartPole", "--num_envs", "1", "--n_steps", "64",
            "--nminibatches", "2", "--noptepochs", "2", "--total_timesteps", "1280", "--seed", "1",
            "--save_freq", "128", "--keep_checkpoints", "5", "--verbose", "0", "--log_dir", str(log_dir),
            "--save_path", str(save_path)]
    proc = _run(_cmd("ppo2.py", args))
    assert proc.returncode == 3
    last_good = save_path / "ckpt-000000000256"
    assert proc.stderr == (f"ppo2.py: error: non-finite loss in update 5; stopped before applying it. "
                           f"Last good checkpoint: {last_good}\n")
    assert checkpoint.periodic_dirs(save_path) == [save_path / "ckpt-000000000128", last_good]
    assert len(_rows(log_dir)) == 4
    assert all(np.isfinite(a).all() for a in _state(save_path))


@pytest.mark.parametrize("flags, message", [
    (["--save_freq", "-5"], "--save_freq must be an integer >= 0 (0: checkpoint only at the end), got -5"),
    (["--keep_checkpoints", "0"], "--keep_checkpoints must be an integer >= 1, got 0"),
    (["--resume"], "--resume needs --save_path (the run directory to continue)"),
    (["--nminibatches", "3", "--n_steps", "64", "--num_envs", "1"],
     "--nminibatches 3 must divide n_steps*num_envs = 64"),
])
def test_bad_flag_is_exactly_one_line_with_nothing_before_it(flags, message):
    proc = _run(_cmd("ppo2.py", ["--env", "CartPole-v1", *flags]))
    assert proc.returncode == 2
    assert proc.stderr == f"ppo2.py: error: {message}\n"
    assert proc.stdout == ""


def test_bad_env_is_exactly_one_line():
    proc = _run(_cmd("ppo2.py", ["--env", "NoSuchEnv-v0"]))
    assert proc.returncode == 2
    assert proc.stdout == "" and len(proc.stderr.splitlines()) == 1
    assert proc.stderr.startswith("ppo2.py: error: ") and "NoSuchEnv-v0" in proc.stderr


