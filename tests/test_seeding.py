"""Matched seeds (tfppo/seeding.py) and reproducible runs (TF op determinism on by default)."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tfppo.config.seeding import RunSeeds
from tfppo.io.log_keys import WALL_CLOCK_KEYS

ROOT = Path(__file__).resolve().parents[1]
TIMING_COLUMNS = WALL_CLOCK_KEYS


def test_streams_are_reproducible_and_independent():
    a, b = RunSeeds(3), RunSeeds(3)
    assert a.weights() == b.weights()
    assert a.envs(0, 4) == b.envs(0, 4)
    assert len(set(a.envs(0, 4))) == 4  # every env its own seed
    np.testing.assert_array_equal(a.actions(1).random(5), b.actions(1).random(5))
    assert not np.array_equal(a.actions(0).random(5), a.actions(1).random(5))
    assert not np.array_equal(a.actions(0).random(5), a.shuffles(0).random(5))
    assert RunSeeds(4).weights() != a.weights()


def test_ppo1_rank_and_ppo2_env_get_the_same_env_seed():
    # PPO2's env i (envs(0, N)[i]) and PPO1's rank i (env(i)) use one scheme.
    seeds = RunSeeds(11)
    assert seeds.envs(0, 3) == [seeds.env(0), seeds.env(1), seeds.env(2)]


def _progress(args: list[str], log_dir: Path) -> pd.DataFrame:
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    result = subprocess.run([sys.executable, *args, "--log_dir", str(log_dir), "--verbose", "0"], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    frame = pd.read_csv(log_dir / "progress.csv")
    return frame.drop(columns=[c for c in frame.columns if c in TIMING_COLUMNS])


@pytest.mark.parametrize("args", [
    ["scripts/ppo2.py", "--env", "Pendulum-v1", "--preset", "baselines-ppo2-mujoco", "--num_envs", "2",
     "--n_steps", "128", "--nminibatches", "4", "--noptepochs", "3", "--total_timesteps", "1024", "--seed", "1"],
    ["scripts/ppo1.py", "--env", "CartPole-v1", "--preset", "baselines-ppo1", "--timesteps_per_actorbatch", "256",
     "--optim_batchsize", "64", "--optim_epochs", "3", "--max_timesteps", "1024", "--seed", "1"],
], ids=["ppo2", "ppo1"])
def test_same_command_twice_gives_identical_progress(tmp_path, args):
    first, second = _progress(args, tmp_path / "a"), _progress(args, tmp_path / "b")
    assert len(first) >= 4
    pd.testing.assert_frame_equal(first, second, check_exact=True)
