"""Logging as the originals do it (spec §9): names per library, NaN before the first episode, stdout cadence."""
from __future__ import annotations

import math

import pandas as pd
import pytest

import tfppo
from tfppo.io.logger import Logger
from tfppo.io import log_keys


def test_key_maps():
    baselines, both = log_keys.key_map("ppo2", "baselines"), log_keys.key_map("ppo2", "both")
    assert baselines("ep_reward_mean") == ("eprewmean",) and baselines("n_updates") == ("misc/nupdates",)
    assert baselines("approxkl") == ("loss/approxkl",) and baselines("fps") == ("fps",)
    assert both("policy_loss") == ("policy_loss", "loss/policy_loss") and both("fps") == ("fps",)
    assert log_keys.key_map("ppo2", "sb")("ep_reward_mean") == ("ep_reward_mean",)
    assert log_keys.key_map("ppo1", "baselines")("EpRewMean") == ("EpRewMean",)  # PPO1: same keys in [B] and [SB]


def test_defaults_follow_the_preset_library():
    assert log_keys.default_style("baselines-ppo2") == "baselines" and log_keys.default_style("sb-ppo2") == "sb"
    assert log_keys.default_log_interval("ppo2", "baselines-ppo2-mujoco") == 10
    assert log_keys.default_log_interval("ppo2", "sb-ppo2") == 1 and log_keys.default_log_interval("ppo1",
                                                                                                    "baselines-ppo1") == 1
    with pytest.raises(tfppo.ConfigError, match="--log_keys 'gym' is invalid; allowed: baselines, sb, both"):
        log_keys.check("gym", None)
    with pytest.raises(tfppo.ConfigError, match="--log_interval must be a positive integer"):
        log_keys.check(None, 0)


def test_stdout_table_every_interval_and_csv_every_row(tmp_path, capsys):
    logger = Logger(tmp_path, tensorboard=False, log_interval=3)
    for i in range(7):
        logger.record("x", i)
        logger.dump(i)
    logger.close()
    printed = capsys.readouterr().out
    assert printed.count("| x ") == 3  # rows 1, 3 and 6 ([B]: update 1 and every log_interval-th)
    assert pd.read_csv(tmp_path / "progress.csv")["x"].tolist() == list(range(7))


@pytest.mark.parametrize("preset, style, present, absent", [
    ("baselines-ppo2", None, {"eprewmean", "misc/total_timesteps", "loss/approxkl"}, {"ep_reward_mean"}),
    ("sb-ppo2", None, {"total_timesteps", "approxkl"}, {"eprewmean", "misc/total_timesteps"}),  # [SB]: no episode, no key
    ("sb-ppo2", "both", {"ep_reward_mean", "eprewmean", "loss/clipfrac", "clipfrac"}, set()),
])
def test_ppo2_progress_columns(tmp_path, preset, style, present, absent):
    agent = tfppo.PPO2("CartPole-v1", preset=preset, log_keys=style, n_steps=8, nminibatches=1, noptepochs=1,
                       seed=0, verbose=0, log_dir=tmp_path)
    agent.learn(16)
    progress = pd.read_csv(tmp_path / "progress.csv")
    assert present <= set(progress.columns) and not absent & set(progress.columns)
    if "eprewmean" in progress.columns:  # 8 steps of a fresh CartPole: no episode has ended, [B] logs NaN
        assert math.isnan(progress["eprewmean"].iloc[0])


def test_ppo1_logs_approxkl_and_clipfrac(tmp_path):
    tfppo.PPO1("CartPole-v1", preset="baselines-ppo1", timesteps_per_actorbatch=64, optim_batchsize=32,
               optim_epochs=1, max_iters=1, schedule="constant", seed=0, verbose=0, log_dir=tmp_path).learn()
    progress = pd.read_csv(tmp_path / "progress.csv")
    assert {"approxkl", "clipfrac", "EpRewMean", "loss_kl"} <= set(progress.columns)
    assert 0.0 <= progress["clipfrac"].iloc[0] <= 1.0 and progress["approxkl"].iloc[0] >= 0.0
