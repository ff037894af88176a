"""Periodic deterministic evaluation: when it runs, what it writes, and that it changes no update."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import tfppo
from tfppo.io.log_keys import WALL_CLOCK_KEYS
from tfppo.training.evaluation import PeriodicEvaluator


def test_evaluation_points_follow_the_iteration_boundaries():
    evaluator = PeriodicEvaluator(1000, 1, None, run_seed=0)
    # iteration boundaries of 256-step batches: a multiple of 1000 is crossed at 1024 and at 2048
    due = []
    for timesteps in (0, 256, 512, 768, 1024, 1280, 1536, 1792, 2048):
        if evaluator.due(timesteps):
            due.append(timesteps)
            evaluator.last_timesteps = timesteps
    assert due == [0, 1024, 2048]


def test_ppo2_writes_evaluations_and_training_is_unchanged(tmp_path):
    kwargs = dict(preset="sb-ppo2", n_steps=256, nminibatches=4, noptepochs=2, seed=3, verbose=0)
    with_eval = tfppo.PPO2("CartPole-v1", log_dir=tmp_path / "a", **kwargs).learn(2048, eval_freq=1000,
                                                                                   eval_episodes=2)
    without = tfppo.PPO2("CartPole-v1", log_dir=tmp_path / "b", **kwargs).learn(2048)
    evaluations = pd.read_csv(tmp_path / "a" / "evaluations.csv")
    assert evaluations["timesteps"].tolist() == [0, 1024, 2048]
    assert (evaluations["episodes"] == 2).all()
    assert (evaluations["eval_return_mean"] == evaluations["eval_length_mean"]).all()  # CartPole: +1 per step
    assert not (tmp_path / "b" / "evaluations.csv").exists()
    for a, b in zip(with_eval.policy.get_weights(), without.policy.get_weights()):
        np.testing.assert_array_equal(a, b)
    drop = sorted(WALL_CLOCK_KEYS & set(pd.read_csv(tmp_path / "a" / "progress.csv").columns))
    pd.testing.assert_frame_equal(pd.read_csv(tmp_path / "a" / "progress.csv").drop(columns=drop),
                                  pd.read_csv(tmp_path / "b" / "progress.csv").drop(columns=drop))


def test_ppo1_evaluates_before_training_and_after_the_last_update(tmp_path):
    agent = tfppo.PPO1("CartPole-v1", preset="baselines-ppo1", timesteps_per_actorbatch=256, optim_epochs=1,
                       max_timesteps=700, seed=0, verbose=0, log_dir=tmp_path)
    agent.learn(eval_freq=500, eval_episodes=1)
    evaluations = pd.read_csv(tmp_path / "evaluations.csv")
    progress = pd.read_csv(tmp_path / "progress.csv")
    steps = progress["EnvStepsSoFar"].tolist()
    assert steps == [256 * (i + 1) for i in range(len(steps))]  # one worker: 256 env steps per iteration
    crossings = [s for prev, s in zip([0] + steps, steps) if s // 500 > prev // 500]
    assert evaluations["timesteps"].tolist() == sorted({0, *crossings, steps[-1]})


def test_bad_evaluation_settings_are_refused():
    with pytest.raises(ValueError, match="eval_freq >= 0 and eval_episodes > 0"):
        PeriodicEvaluator(100, 0, None, run_seed=0)
