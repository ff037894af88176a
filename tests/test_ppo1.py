"""PPO1 specifics (spec §7.1, §8, rows 2, 10, 23) and the PPO1 CI learning test."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import gymnasium as gym
import numpy as np
import pandas as pd
import pytest
import tensorflow as tf

import tfppo
from tfppo.config.hyperparameters import NetworkConfig
from tfppo.core.learner import Batch, Learner, MinibatchPlan
from tfppo.core.policy import ActorCritic
from tfppo.config.semantics import get_preset

ROOT = Path(__file__).resolve().parents[1]


class FixedLengthEnv(gym.Env):
    """Every episode lasts exactly 7 steps, reward 1."""

    observation_space = gym.spaces.Box(-1.0, 1.0, (2,), np.float32)
    action_space = gym.spaces.Discrete(2)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.t = 0
        return np.zeros(2, np.float32), {}

    def step(self, action):
        self.t += 1
        return np.full(2, self.t / 10, np.float32), 1.0, self.t == 7, False, {}


def _agent(counting: str, **kwargs) -> tfppo.PPO1:
    sem = get_preset("sb-ppo1").replace(timestep_counting=counting)
    return tfppo.PPO1("tests.test_ppo1:FixedLengthEnv", preset="sb-ppo1", semantics=sem, timesteps_per_actorbatch=20,
                      optim_batchsize=10, optim_epochs=1, network=NetworkConfig((8,)), verbose=0, **kwargs)


@pytest.mark.parametrize("counting, expected", [("episodes", 35), ("exact", 40)])
def test_timestep_counting_conventions(counting, expected):
    # 40 steps in 2 iterations; episodes end after steps 7, 14, 21, 28, 35: [B] counts 5·7 = 35, [SB] 2·20 = 40.
    agent = _agent(counting, schedule="constant", max_iters=2)
    agent.learn()
    assert agent.timesteps_so_far == expected
    assert agent.episodes_so_far == 5
    assert agent.num_timesteps == 40


def test_stop_at_budget_never_runs_past_max_timesteps():
    # 7-step episodes, T = 20, budget 50 steps. [B]'s counter has counted 35 completed steps after 2
    # iterations (40 env steps) and 56 after 3 (60 steps): it runs a 3rd batch, 10 steps past the budget.
    baselines = _agent("episodes", schedule="linear", max_timesteps=50)
    baselines.learn()
    assert (baselines.n_updates, baselines.num_timesteps) == (3, 60)
    # stop_at_budget: floor(50 / 20) = 2 updates, as PPO2's floor(total / nbatch) (spec §7.2); lrmult is still
    # [B]'s, from the episode counter (row 10): 1 − 35/50 = 0.3 at the end
    capped = _agent("episodes", schedule="linear", max_timesteps=50, stop_at_budget=True)
    capped.learn()
    assert (capped.n_updates, capped.num_timesteps) == (2, 40)
    assert capped.lrmult() == pytest.approx(0.3)
    with pytest.raises(tfppo.ConfigError, match="--stop_at_budget needs --max_timesteps"):
        _agent("episodes", schedule="constant", max_iters=2, stop_at_budget=True)


def test_lrmult_follows_the_counter():
    agent = _agent("episodes", schedule="linear", max_timesteps=100)
    agent.timesteps_so_far = 35
    assert agent.lrmult() == pytest.approx(0.65)
    agent.timesteps_so_far = 150
    assert agent.lrmult() == 0.0


def _learner(batch_size: int, minibatch: int, epochs: int, **switches) -> Learner:
    model = ActorCritic(gym.spaces.Box(-np.inf, np.inf, (3,), np.float32), gym.spaces.Discrete(3),
                        network=NetworkConfig((8,)), seed=1)
    sem = get_preset("sb-ppo1").replace(**switches)
    return Learner(model, sem, MinibatchPlan.from_size(batch_size, minibatch, epochs), ent_coef=0.01)


def _batch(n: int, seed: int = 0) -> Batch:
    rng = np.random.default_rng(seed)
    f = lambda *s: rng.standard_normal(s).astype(np.float32)
    return Batch(obs=f(n, 3), actions=rng.integers(0, 3, n), advantages=f(n), returns=f(n), values=f(n),
                 neglogp=np.ones(n, np.float32))


def test_last_partial_minibatch_is_dropped():
    # T = 10, B = 4: floor(10/4) = 2 minibatches per epoch, 2 samples left out of each epoch.
    learner = _learner(10, 4, 3)
    result = learner.update(_batch(10), learning_rate=1e-3, clip=0.2, clip_vf=None, rng=np.random.default_rng(0))
    assert result.n_gradient_steps == 3 * 2
    shuffles = learner.plan.shuffles(np.random.default_rng(1), 3)
    assert shuffles.shape == (3, 2, 4)
    assert all(len(set(p.ravel())) == 8 for p in shuffles)


def _softmax(logits):
    z = np.exp(logits - logits.max(axis=1, keepdims=True))
    return z / z.sum(axis=1, keepdims=True)


def test_evaluation_pass_reports_losses_of_the_final_parameters():
    # T = B·2 so the evaluation pass covers the whole batch: its minibatch means equal full-batch means.
    learner = _learner(16, 8, 3)
    batch = _batch(16, seed=5)
    model = learner.model
    old_logits, _ = (x.numpy().astype(np.float64) for x in model(tf.constant(batch.obs)))
    result = learner.update(batch, learning_rate=1e-2, clip=0.2, clip_vf=None, rng=np.random.default_rng(0))
    new_logits, new_values = (x.numpy().astype(np.float64) for x in model(tf.constant(batch.obs)))
    p_old, p_new = _softmax(old_logits), _softmax(new_logits)
    idx = np.arange(16)
    ratio = p_new[idx, batch.actions] / p_old[idx, batch.actions]
    adv = (batch.advantages - batch.advantages.mean()) / batch.advantages.std()  # whole batch, no eps
    surrogate = -np.mean(np.minimum(ratio * adv, np.clip(ratio, 0.8, 1.2) * adv))
    value_loss = np.mean((new_values - batch.returns) ** 2)
    entropy = np.mean(-(p_new * np.log(p_new)).sum(axis=1))
    kl = np.mean((p_old * (np.log(p_old) - np.log(p_new))).sum(axis=1))
    ev = result.evaluation
    assert ev is not None
    np.testing.assert_allclose([ev["policy_loss"], ev["value_loss"], ev["entropy"], ev["kl"]],
                               [surrogate, value_loss, entropy, kl], rtol=2e-4, atol=1e-6)
    assert abs(ev["kl"]) > 1e-6  # the parameters really moved, so "old" and "final" differ
    assert result.n_gradient_steps == 3 * 2  # the evaluation pass applied no update


@pytest.mark.slow
def test_ppo1_one_worker_learns_cartpole(tmp_path):
    """CI learning test: sb-ppo1 preset + the zoo CartPole entry (optim_epochs 10, entcoeff 0) at the zoo's
    budget of 1e5 steps, i.e. T = 256, B = 64, lr 1e-3 linear, clip 0.2 annealed with lrmult, γ 0.99,
    λ 0.95, seed 0, one worker. (Seeds 0, 1, 2 first reached 475 at 55k, 94k and 70k steps.)"""
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    result = subprocess.run([sys.executable, "scripts/ppo1.py", "--env", "CartPole-v1", "--max_timesteps", "100000",
                             "--seed", "0", "--verbose", "0", "--log_dir", str(tmp_path)], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=400)
    assert result.returncode == 0, result.stderr[-2000:]
    progress = pd.read_csv(tmp_path / "progress.csv")
    reached = progress[progress.EpRewMean >= 475]
    assert not reached.empty, f"best EpRewMean {progress.EpRewMean.max():.1f}"
