"""PPO1 over real MPI: `mpirun -n 2` subprocesses from the venv (spec §7.1, §8)."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
MPIRUN = shutil.which("mpirun", path=os.path.dirname(sys.executable)) or shutil.which("mpirun")
pytestmark = pytest.mark.mpi


def run_mpi(args: list[str], timeout: float = 180, ranks: int = 2) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(ROOT), TF_CPP_MIN_LOG_LEVEL="3", OMP_NUM_THREADS="1")
    return subprocess.run([MPIRUN, "-n", str(ranks), sys.executable, *args], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=timeout)


def test_mpirun_comes_from_the_venv():
    assert MPIRUN is not None and Path(MPIRUN).exists()


def test_averaged_gradient_equals_mean_of_the_two_batch_gradients(tmp_path):
    result = run_mpi(["tests/mpi_scripts/average_gradient.py", str(tmp_path)])
    assert result.returncode == 0, result.stderr[-2000:]
    from tests.mpi_scripts.common import gradient_of_batch, make_batch, make_learner

    learner = make_learner()
    expected = (gradient_of_batch(learner, make_batch(0)) + gradient_of_batch(learner, make_batch(1))) / 2
    ranks = [np.load(tmp_path / f"rank{r}.npz") for r in (0, 1)]
    assert not np.allclose(ranks[0]["local"], ranks[1]["local"])  # the two batches really differ
    for data in ranks:
        np.testing.assert_allclose(data["averaged"], expected, rtol=1e-5, atol=1e-7)


def _weights(path: Path) -> list[np.ndarray]:
    data = np.load(path)
    return [data[f"arr_{i}"] for i in range(int(data["n_weights"]))]


def test_replicated_batches_make_the_same_update_as_the_allreduce(tmp_path):
    """`--mpi_gradients replicate` (every rank computes the mean of both ranks' minibatch gradients) and
    `allreduce` (each rank's gradient, Allreduce-averaged per step) are one update up to float rounding;
    either way, and with XLA on a Gaussian policy, the ranks stay bit-identical."""
    result = run_mpi(["tests/mpi_scripts/gradient_modes.py", str(tmp_path)])
    assert result.returncode == 0, result.stderr[-2000:]
    load = lambda name: [a for _, a in sorted(np.load(tmp_path / name).items(), key=lambda kv: int(kv[0][4:]))]
    for case in ("replicate", "allreduce", "pendulum-xla"):
        for a, b in zip(load(f"{case}-rank0.npz"), load(f"{case}-rank1.npz")):
            np.testing.assert_array_equal(a, b)  # ranks stay bit-identical either way
    initial = tfppo_initial_weights()
    moved = False
    for a, b, w0 in zip(load("replicate-rank0.npz"), load("allreduce-rank0.npz"), initial):
        np.testing.assert_allclose(a, b, atol=2e-6, rtol=1e-5)
        moved |= not np.allclose(a, w0)
    assert moved  # the runs trained


def tfppo_initial_weights() -> list[np.ndarray]:
    import tfppo

    agent = tfppo.PPO1("CartPole-v1", preset="sb-ppo1", timesteps_per_actorbatch=128, optim_batchsize=32, seed=7,
                       schedule="constant", max_iters=3, verbose=0)
    return agent.model.get_weights()


def test_ranks_train_on_their_own_data_into_identical_parameters_and_all_ranks_obs_statistics_and_stop_together(
        tmp_path):
    result = run_mpi(["tests/mpi_scripts/train_ppo1.py", str(tmp_path), "baselines-ppo1", "3"])
    assert result.returncode == 0, result.stderr[-2000:]
    ranks = [np.load(tmp_path / f"rank{r}.npz") for r in (0, 1)]
    for r in ranks:  # rank 0's callback stopped both ranks after 3 of the 4 budgeted iterations
        assert int(r["n_updates"]) == int(r["iters_so_far"]) == 3 and len(r["obs"]) == 3 * 128
    assert not np.array_equal(ranks[0]["obs"], ranks[1]["obs"])  # different env seeds per rank: different data
    for a, b in zip(_weights(tmp_path / "rank0.npz"), _weights(tmp_path / "rank1.npz")):
        np.testing.assert_array_equal(a, b)  # the averaged gradient (spec §7.1) keeps every rank in step
    data = np.concatenate([r["obs"] for r in ranks]).astype(np.float64)
    # [B] RunningMeanStd prior: sum = 0, sumsq = count = 1e-2 (mean 0, var 1, weight 1e-2), then all data.
    prior = 1e-2
    n = prior + len(data)
    mean = data.sum(axis=0) / n
    var = (prior * 1.0 + np.square(data).sum(axis=0)) / n - mean**2
    for r in ranks:
        np.testing.assert_allclose(r["obs_mean"], mean, rtol=1e-9, atol=1e-9)
        np.testing.assert_allclose(r["obs_var"], var, rtol=1e-7, atol=1e-9)
        np.testing.assert_allclose(r["model_obs_std"], np.maximum(np.sqrt(var), 0.1), rtol=1e-6)


def test_one_failing_rank_ends_the_job_quickly(tmp_path):
    start = time.monotonic()
    result = run_mpi(["scripts/ppo1.py", "--env", "tests.mpi_scripts.exploding_env:ExplodingCartPole",
                      "--max_iters", "20", "--timesteps_per_actorbatch", "64", "--schedule", "constant",
                      "--log_dir", str(tmp_path / "run")], timeout=120)
    elapsed = time.monotonic() - start
    assert result.returncode != 0
    assert elapsed < 30, f"job took {elapsed:.1f}s to end"
    output = result.stdout + result.stderr
    assert output.count("RuntimeError: boom on rank 1") == 1, output[-3000:]


def test_ranks_with_different_configurations_stop_at_start(tmp_path):
    env = dict(os.environ, PYTHONPATH=str(ROOT), TF_CPP_MIN_LOG_LEVEL="3")
    common = ["scripts/ppo1.py", "--max_iters", "1", "--schedule", "constant", "--log_dir", str(tmp_path / "run")]
    result = subprocess.run([MPIRUN, "-n", "1", sys.executable, *common, "--seed", "0", ":",
                             "-n", "1", sys.executable, *common, "--seed", "1"], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    assert result.stderr.count("different configuration") == 1
    assert "[1]" in result.stderr
    assert not (tmp_path / "run").exists()


def test_bad_flag_under_mpirun_prints_once_and_exits_2(tmp_path):
    result = run_mpi(["scripts/ppo1.py", "--optim_epochs", "0", "--max_iters", "1", "--log_dir", str(tmp_path / "r")],
                     timeout=120)
    assert result.returncode == 2
    lines = [line for line in result.stderr.splitlines() if line.startswith("ppo1.py: error:")]
    assert len(lines) == 1 and "--optim_epochs" in lines[0]
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "r").exists()


def test_sync_check_fails_loudly_on_every_rank_when_parameters_diverge():
    result = run_mpi(["tests/mpi_scripts/diverge.py"], timeout=60)
    assert result.returncode == 0, result.stderr[-2000:]
    # the two ranks' lines may interleave on the shared pipe: count, don't split
    for name, where in (("averager", "gradient step 0"), ("replicator", "update 0")):
        for rank in (0, 1):
            assert result.stdout.count(f"{name} rank {rank}: MPI ranks diverged: parameters differ from rank 0 at "
                                       f"{where}") == 1, result.stdout
    assert result.stdout.count("max |Δθ| = 0.001") == 4


# ------------------------------------------------------------------- PPO2 over MPI ([B] ppo2 + MpiAdamOptimizer)
def test_ppo2_ranks_stay_identical_and_use_the_global_env_streams(tmp_path):
    result = run_mpi(["tests/mpi_scripts/ppo2_ranks.py", str(tmp_path), "2", "3"])
    assert result.returncode == 0, result.stderr[-2000:]
    ranks = [np.load(tmp_path / f"rank{r}.npz") for r in (0, 1)]
    for a, b in zip(_weights(tmp_path / "rank0.npz"), _weights(tmp_path / "rank1.npz")):
        np.testing.assert_array_equal(a, b)  # the averaged gradient keeps every rank on the same parameters
    for r in ranks:  # total_timesteps counts all ranks: 3 updates of 32 steps × 2 envs × 2 ranks
        assert int(r["num_timesteps"]) == 3 * 32 * 2 * 2 and int(r["n_updates"]) == 3
    assert int(ranks[0]["episodes"]) == int(ranks[1]["episodes"])  # episode statistics gathered from both
    # Rank r's envs are global envs 2r, 2r+1: the same observations and actions as one process with 4 envs.
    import tfppo

    single = tfppo.PPO2("CartPole-v1", preset="sb-ppo2", num_envs=4, n_steps=32, nminibatches=2, noptepochs=2,
                        seed=5, verbose=0)
    rollout = single.make_runner().run()
    for r, data in enumerate(ranks):
        np.testing.assert_array_equal(data["obs"], rollout.obs[:, 2 * r:2 * r + 2])
        np.testing.assert_array_equal(data["actions"], rollout.actions[:, 2 * r:2 * r + 2])
    # The lstm policy: ranks act on their own envs, yet the averaged gradient keeps them bit-identical.
    lstm = [np.load(tmp_path / f"rank{r}-lstm.npz") for r in (0, 1)]
    assert not np.array_equal(lstm[0]["obs"], lstm[1]["obs"]) and int(lstm[0]["n_updates"]) == 2
    n = int(lstm[0]["n_weights"])
    trained = [[data[f"arr_{i}"] for i in range(n)] for data in lstm]
    initial = [lstm[0][f"arr_{i}"] for i in range(n, 2 * n)]
    for a, b in zip(*trained):
        np.testing.assert_array_equal(a, b)
    assert any(not np.allclose(a, w0) for a, w0 in zip(trained[0], initial))  # it trained


def test_ppo2_one_failing_rank_ends_the_job_quickly(tmp_path):
    start = time.monotonic()
    result = run_mpi(["scripts/ppo2.py", "--env", "tests.mpi_scripts.exploding_env:ExplodingCartPole",
                      "--num_envs", "1", "--n_steps", "64", "--nminibatches", "1", "--total_timesteps", "100000",
                      "--log_dir", str(tmp_path / "run")], timeout=120)
    elapsed = time.monotonic() - start
    assert result.returncode != 0
    assert elapsed < 30, f"job took {elapsed:.1f}s to end"
    assert (result.stdout + result.stderr).count("RuntimeError: boom on rank 1") == 1


def test_ppo2_bad_flag_under_mpirun_prints_once_and_exits_2(tmp_path):
    result = run_mpi(["scripts/ppo2.py", "--noptepochs", "0", "--log_dir", str(tmp_path / "r")], timeout=120)
    assert result.returncode == 2
    lines = [line for line in result.stderr.splitlines() if line.startswith("ppo2.py: error:")]
    assert len(lines) == 1 and "--noptepochs" in lines[0]
    assert not (tmp_path / "r").exists()
