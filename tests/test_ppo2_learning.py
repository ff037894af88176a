"""PPO2 learns: rl-zoo's CartPole-v1 settings learn it within 100k steps (the CI learning test).

Plus a cheap smoke run of the [B] MuJoCo preset (VecNormalize, separate towers,
Box actions) on Pendulum-v1 that checks the log files a run must leave behind.
"""
from __future__ import annotations

import re
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

# rl-baselines-zoo hyperparams/ppo2.yml, CartPole-v1 (n_timesteps 1e5).
ZOO_CARTPOLE = ["--env", "CartPole-v1", "--num_envs", "8", "--n_steps", "32", "--nminibatches", "1",
                "--noptepochs", "20", "--lam", "0.8", "--gamma", "0.98", "--learning_rate", "lin_1e-3",
                "--cliprange", "lin_0.2", "--ent_coef", "0", "--total_timesteps", "100000", "--seed", "0"]
# One seed's path depends on the machine's float rounding (XLA codegen differs between CPUs), so the test asks for
# what every seed of these settings reached in the published `classic` suite (sb-ppo2, CartPole-v1, 10 seeds): a
# best 100-episode training mean of 437–500 and a final deterministic evaluation of 288–500, against ≈ 22 for a
# random policy. CartPole's 475 "solved" threshold is reached by most seeds, not all (3 of 10 end below it).
LEARNED = 400.0
EVAL_LEARNED = 200.0

SB2_PPO2_KEYS = {"serial_timesteps", "n_updates", "total_timesteps", "fps", "explained_variance", "time_elapsed",
                 "policy_loss", "value_loss", "policy_entropy", "approxkl", "clipfrac"}


@pytest.mark.slow
def test_ppo2_solves_cartpole_with_zoo_settings(tmp_path, repo_root, subprocess_env):
    log_dir, save_path = tmp_path / "run", tmp_path / "run" / "model"
    train = subprocess.run([sys.executable, "scripts/ppo2.py", *ZOO_CARTPOLE, "--verbose", "0",
                            "--log_dir", str(log_dir), "--save_path", str(save_path)],
                           cwd=repo_root, env=subprocess_env, capture_output=True, text=True, timeout=300)
    assert train.returncode == 0, train.stderr[-3000:]
    # --save_path is a run directory: a periodic checkpoint at 50000 steps (the default) and the final one
    assert [p.name for p in sorted(save_path.iterdir())] == ["ckpt-000000050176", "ckpt-000000099840"]
    assert (save_path / "ckpt-000000099840" / "agent.json").is_file()

    progress = pd.read_csv(log_dir / "progress.csv")
    # floor(100000 / (8·32)) = 390 updates of 256 steps: 99840 steps in all.
    assert len(progress) == 100_000 // 256 == 390
    np.testing.assert_array_equal(progress["total_timesteps"], 256 * np.arange(1, 391))
    np.testing.assert_array_equal(progress["serial_timesteps"], 32 * np.arange(1, 391))
    # lin_1e-3 / lin_0.2: value·frac with frac = 1 − (u − 1)/390, so 1e-3 first and 1e-3/390 last.
    np.testing.assert_allclose(progress["learning_rate"].iloc[[0, -1]], [1e-3, 1e-3 / 390], rtol=1e-6)
    np.testing.assert_allclose(progress["cliprange"].iloc[[0, -1]], [0.2, 0.2 / 390], rtol=1e-6)

    rewards = progress["ep_reward_mean"]
    best = rewards.max()
    assert best >= LEARNED, f"best 100-episode mean {best:.1f} < {LEARNED}"

    evaluate = subprocess.run([sys.executable, "scripts/evaluate.py", "--load_path", str(save_path),
                               "--episodes", "5"],
                              cwd=repo_root, env=subprocess_env, capture_output=True, text=True, timeout=120)
    assert evaluate.returncode == 0, evaluate.stderr[-3000:]
    match = re.search(r"CartPole-v1: (-?[\d.]+) ± ([\d.]+) over 5 deterministic episodes", evaluate.stdout)
    assert match, evaluate.stdout
    assert float(match.group(1)) >= EVAL_LEARNED, evaluate.stdout


def test_ppo2_mujoco_preset_pendulum_smoke(tmp_path):
    import tfppo

    log_dir = tmp_path / "pendulum"
    agent = tfppo.PPO2("Pendulum-v1", preset="baselines-ppo2-mujoco", num_envs=2, n_steps=64, total_timesteps=256,
                       seed=0, log_dir=log_dir, verbose=0, log_keys="both")  # [SB] and [B] names side by side
    # The preset's switches: separate towers, env-side obs + reward normalisation, Gaussian actions.
    assert not agent.semantics.shared_towers and agent.semantics.obs_norm == "env" and agent.semantics.reward_norm
    assert agent.config.nminibatches == 32 and agent.config.noptepochs == 10  # [B] defaults.mujoco()
    agent.learn()
    agent.close()
    assert agent.num_timesteps == 256 and agent.n_updates == 2

    progress = pd.read_csv(log_dir / "progress.csv")
    missing = SB2_PPO2_KEYS - set(progress.columns)
    assert not missing, f"progress.csv lacks {sorted(missing)}"
    assert len(progress) == 2  # 256 / (2·64) updates
    assert progress["total_timesteps"].tolist() == [128, 256]
    assert progress["serial_timesteps"].tolist() == [64, 128]
    assert progress["n_updates"].tolist() == [1, 2]
    assert progress["misc/total_timesteps"].tolist() == [128, 256] and progress["misc/nupdates"].tolist() == [1, 2]
    for key in SB2_PPO2_KEYS:
        assert np.all(np.isfinite(progress[key])), key
    assert np.all(progress["fps"] > 0) and np.all(progress["value_loss"] > 0)
    # Pendulum episodes last 200 steps and each env has taken only 2·64 = 128: none has ended.
    assert agent.tracker.episodes == 0

    events = list((log_dir / "tb").glob("events.out.tfevents*"))
    assert events and all(e.stat().st_size > 0 for e in events)
    assert (log_dir / "semantics.json").is_file()
