"""Matched seeds (tfppo/seeding.py) and reproducible runs (TF op determinism on by default)."""
from __future__ import annotations

import numpy as np

from tfppo.config.seeding import RunSeeds


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


# That the same command run twice gives the same progress.csv, bit for bit (TF op determinism), is what the
# kill -9 resume tests in test_long_runs.py check first: their uninterrupted reference and the killed run are two
# processes of one command, compared row by row (PPO2 with VecNormalize, PPO1 under mpirun).
