"""GAE, batch flattening, explained variance and the Runner against hand-computed values (spec §2-§3, §9)."""

from __future__ import annotations

import functools

import gymnasium
import numpy as np
import pytest
from gymnasium import spaces

from tfppo.core.acting import PerRowGenerators, make_actor
from tfppo.config.hyperparameters import NetworkConfig
from tfppo.envs.episodes import EpisodeTracker
from tfppo.core.policy import ActorCritic
from tfppo.core.rollout import Rollout, Runner, compute_gae, explained_variance
from tfppo.config.semantics import Semantics

# ----------------------------------------------------------------------------- GAE
# γ = 0.9, λ = 0.5 -> γλ = 0.45.  Arrays are [T=4, N=2].
#
# env 0: r = [1, 0, 2, 1], V = [0.5, 1.0, 1.5, 0.5], episode_starts = [1, 0, 1, 0]
#        (obs 2 starts a new episode, so step 1 ended one), last_done = 1 (terminal: no bootstrap;
#        its last_value 10.0 must be ignored)
#   t=3: m4 = 1 − last_done = 0:  δ3 = 1 + 0 − 0.5 = 0.5;                  Â3 = 0.5
#   t=2: m3 = 1 − d3 = 1:         δ2 = 2 + 0.9·0.5 − 1.5 = 0.95;           Â2 = 0.95 + 0.45·0.5 = 1.175
#   t=1: m2 = 1 − d2 = 0:         δ1 = 0 + 0 − 1.0 = −1.0;                 Â1 = −1.0
#   t=0: m1 = 1 − d1 = 1:         δ0 = 1 + 0.9·1.0 − 0.5 = 1.4;            Â0 = 1.4 + 0.45·(−1.0) = 0.95
#   R = Â + V = [1.45, 0.0, 2.675, 1.0]
#
# env 1: r = [0, 1, 1, 0.5], V = [1.0, 2.0, 0.0, 1.0], episode_starts = [0, 1, 0, 0],
#        last_done = 0, last_value = 2.0 (bootstrap)
#   t=3: m4 = 1:                  δ3 = 0.5 + 0.9·2.0 − 1.0 = 1.3;          Â3 = 1.3
#   t=2: m3 = 1:                  δ2 = 1 + 0.9·1.0 − 0.0 = 1.9;            Â2 = 1.9 + 0.45·1.3 = 2.485
#   t=1: m2 = 1:                  δ1 = 1 + 0.9·0.0 − 2.0 = −1.0;           Â1 = −1.0 + 0.45·2.485 = 0.11825
#   t=0: m1 = 1 − d1 = 0:         δ0 = 0 + 0 − 1.0 = −1.0;                 Â0 = −1.0
#   R = Â + V = [0.0, 2.11825, 2.485, 2.3]
GAMMA, LAM = 0.9, 0.5
REWARDS = np.array([[1.0, 0.0], [0.0, 1.0], [2.0, 1.0], [1.0, 0.5]], dtype=np.float32)
VALUES = np.array([[0.5, 1.0], [1.0, 2.0], [1.5, 0.0], [0.5, 1.0]], dtype=np.float32)
STARTS = np.array([[1, 0], [0, 1], [1, 0], [0, 0]], dtype=bool)
LAST_VALUES = np.array([10.0, 2.0], dtype=np.float32)
LAST_DONES = np.array([True, False])
ADV_ENV0 = [0.95, -1.0, 1.175, 0.5]
ADV_ENV1 = [-1.0, 0.11825, 2.485, 1.3]
RET_ENV0 = [1.45, 0.0, 2.675, 1.0]
RET_ENV1 = [0.0, 2.11825, 2.485, 2.3]


def test_compute_gae_hand_example():
    adv, ret = compute_gae(REWARDS, VALUES, STARTS, LAST_VALUES, LAST_DONES, GAMMA, LAM)
    assert adv.shape == (4, 2) and ret.shape == (4, 2)
    assert adv.dtype == np.float32 and ret.dtype == np.float32
    np.testing.assert_allclose(adv[:, 0], ADV_ENV0, atol=1e-6)
    np.testing.assert_allclose(adv[:, 1], ADV_ENV1, atol=1e-6)
    np.testing.assert_allclose(ret[:, 0], RET_ENV0, atol=1e-6)
    np.testing.assert_allclose(ret[:, 1], RET_ENV1, atol=1e-6)


def test_compute_gae_first_start_flag_and_terminal_last_value_are_ignored():
    # d_0 never enters the recursion, and a terminal last step never reads last_values.
    starts = STARTS.copy()
    starts[0] = [False, True]
    adv, _ = compute_gae(REWARDS, VALUES, starts, np.array([-123.0, 2.0], np.float32), LAST_DONES, GAMMA, LAM)
    np.testing.assert_allclose(adv[:, 0], ADV_ENV0, atol=1e-6)
    np.testing.assert_allclose(adv[:, 1], ADV_ENV1, atol=1e-6)


def test_compute_gae_single_step_td_and_monte_carlo_limits():
    # λ = 0: Â_t = δ_t.  env 1, t=1: δ1 = −1.0;  t=2: δ2 = 1.9;  t=3: δ3 = 1.3
    adv, _ = compute_gae(REWARDS, VALUES, STARTS, LAST_VALUES, LAST_DONES, GAMMA, 0.0)
    np.testing.assert_allclose(adv[:, 1], [-1.0, -1.0, 1.9, 1.3], atol=1e-6)
    # λ = 1, γ = 1, no boundaries, terminal end: R_t = Σ_{k≥t} r_k (Monte-Carlo return)
    r = np.array([[1.0], [2.0], [3.0]], np.float32)
    v = np.array([[5.0], [-1.0], [0.5]], np.float32)
    _, ret = compute_gae(r, v, np.zeros((3, 1), bool), np.array([9.0], np.float32), np.array([True]), 1.0, 1.0)
    np.testing.assert_allclose(ret[:, 0], [6.0, 5.0, 3.0], atol=1e-6)


def test_to_batch_is_env_major():
    T, N = 4, 2
    obs = np.zeros((T, N, 1), np.float32)
    actions = np.zeros((T, N), np.int64)
    neglogp = np.zeros((T, N), np.float32)
    for t in range(T):
        for n in range(N):
            obs[t, n, 0] = 10 * n + t
            actions[t, n] = 100 * n + t
            neglogp[t, n] = 0.5 * n + 0.01 * t
    rollout = Rollout(obs, actions, REWARDS, STARTS, VALUES, neglogp, LAST_VALUES, LAST_DONES)
    batch = rollout.to_batch(GAMMA, LAM)
    # env 0's T steps first, then env 1's
    np.testing.assert_array_equal(batch.obs[:, 0], [0, 1, 2, 3, 10, 11, 12, 13])
    np.testing.assert_array_equal(batch.actions, [0, 1, 2, 3, 100, 101, 102, 103])
    np.testing.assert_allclose(batch.neglogp, [0.0, 0.01, 0.02, 0.03, 0.5, 0.51, 0.52, 0.53], atol=1e-6)
    np.testing.assert_allclose(batch.values, [0.5, 1.0, 1.5, 0.5, 1.0, 2.0, 0.0, 1.0], atol=1e-7)
    np.testing.assert_allclose(batch.advantages, ADV_ENV0 + ADV_ENV1, atol=1e-6)
    np.testing.assert_allclose(batch.returns, RET_ENV0 + RET_ENV1, atol=1e-6)
    assert batch.obs.shape == (8, 1)


# -------------------------------------------------------------- explained variance
def test_explained_variance_hand_values():
    y = np.array([1.0, 2.0, 3.0, 4.0])
    # ŷ = [1, 2, 3, 5]: y − ŷ = [0, 0, 0, −1], mean −0.25, Var = (3·0.0625 + 0.5625)/4 = 0.1875
    # Var[y] = (2.25 + 0.25 + 0.25 + 2.25)/4 = 1.25;  EV = 1 − 0.1875/1.25 = 0.85
    assert explained_variance(np.array([1.0, 2.0, 3.0, 5.0]), y) == pytest.approx(0.85, abs=1e-12)
    assert explained_variance(y, y) == pytest.approx(1.0, abs=1e-12)        # perfect
    assert explained_variance(np.full(4, 2.5), y) == pytest.approx(0.0, abs=1e-12)  # predicting the mean
    # ŷ = −y: Var[2y] = 4·1.25 = 5 -> 1 − 5/1.25 = −3
    assert explained_variance(-y, y) == pytest.approx(-3.0, abs=1e-12)


def test_explained_variance_nan_for_constant_targets():
    assert np.isnan(explained_variance(np.array([1.0, 2.0, 3.0]), np.array([2.0, 2.0, 2.0])))


# ------------------------------------------------------------------------ Runner
class CounterEnv(gymnasium.Env):
    """obs = [steps taken in this episode]; reward 1 per step; ends after ``horizon`` steps.

    ``end`` picks how: "terminated" or "truncated". Records every action it receives.
    """

    def __init__(self, horizon: int = 3, end: str = "terminated", action_space: spaces.Space | None = None):
        self.horizon = horizon
        self.end = end
        self.observation_space = spaces.Box(-np.inf, np.inf, shape=(1,), dtype=np.float32)
        self.action_space = action_space if action_space is not None else spaces.Discrete(2)
        self.t = 0
        self.received: list = []

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.t = 0
        return np.array([0.0], np.float32), {}

    def step(self, action):
        self.received.append(np.array(action, copy=True))
        self.t += 1
        done = self.t >= self.horizon
        return (np.array([float(self.t)], np.float32), 1.0,
                done and self.end == "terminated", done and self.end == "truncated", {})


BOX_ACTIONS = spaces.Box(-0.1, 0.1, shape=(2,), dtype=np.float32)


def make_venv(*env_kwargs: dict) -> gymnasium.vector.SyncVectorEnv:
    return gymnasium.vector.SyncVectorEnv(
        [functools.partial(CounterEnv, **kw) for kw in env_kwargs],
        autoreset_mode=gymnasium.vector.AutoresetMode.SAME_STEP)


def make_runner(venv, semantics: Semantics, n_steps: int, gamma: float = 0.99, seed: int = 0):
    model = ActorCritic(venv.single_observation_space, venv.single_action_space,
                        network=NetworkConfig((8,)), seed=seed)
    actor = make_actor(model)
    first_obs, _ = venv.reset(seed=[seed + i for i in range(venv.num_envs)])
    tracker = EpisodeTracker(venv.num_envs)
    runner = Runner(venv, actor, model.dist, n_steps=n_steps, semantics=semantics, gamma=gamma,
                    rng=PerRowGenerators([np.random.default_rng(seed + i) for i in range(venv.num_envs)]),  # one per env
                    tracker=tracker, normalizer=None, first_obs=first_obs)
    return runner, model, actor, tracker


def test_runner_episode_boundaries_and_same_step_reset():
    venv = make_venv({}, {})
    runner, model, actor, tracker = make_runner(venv, Semantics(), n_steps=6)
    r = runner.run()
    # obs seen per env: 0 1 2 | reset 0 1 2; the obs stored after the terminal step is the reset obs 0
    for n in range(2):
        np.testing.assert_array_equal(r.obs[:, n, 0], [0, 1, 2, 0, 1, 2])
        np.testing.assert_array_equal(r.episode_starts[:, n], [False, False, False, True, False, False])
    np.testing.assert_array_equal(r.rewards, np.ones((6, 2)))
    np.testing.assert_array_equal(r.last_dones, [True, True])  # step 5 ended the second episode
    # two envs × two episodes of 3 rewards of 1.0
    assert r.episodes == [(3.0, 3)] * 4
    assert tracker.episodes == 4
    assert list(tracker.returns) == [3.0] * 4 and list(tracker.lengths) == [3] * 4
    # stored values / neglogp are the actor's on the stored obs and actions
    for t in range(6):
        params, values = actor.forward(r.obs[t])
        np.testing.assert_allclose(r.values[t], values, atol=1e-6)
        np.testing.assert_allclose(r.neglogp[t], model.dist.neglogp_numpy(params, r.actions[t]), atol=1e-6)
    np.testing.assert_allclose(r.last_values, actor.forward(np.zeros((2, 1), np.float32))[1], atol=1e-6)
    # the env received exactly the stored (discrete) actions
    for n in range(2):
        np.testing.assert_array_equal(np.array(venv.envs[n].received), r.actions[:, n])

    # the episode state carries over: the next segment starts with a new episode at index 0
    r2 = runner.run()
    np.testing.assert_array_equal(r2.episode_starts[:, 0], [True, False, False, True, False, False])
    np.testing.assert_array_equal(r2.obs[:, 0, 0], [0, 1, 2, 0, 1, 2])
    assert tracker.episodes == 8


@pytest.mark.parametrize("clip", [True, False])
def test_runner_clip_actions_stores_unclipped(clip):
    venv = make_venv({"action_space": BOX_ACTIONS}, {"action_space": BOX_ACTIONS})
    runner, model, actor, _ = make_runner(venv, Semantics(clip_actions=clip), n_steps=3)
    r = runner.run()
    stored = r.actions  # [T, N, 2]
    assert stored.shape == (3, 2, 2)
    # σ = 1 samples: some components fall outside ±0.1, so clipping is visible
    assert np.any(np.abs(stored) > 0.1)
    for n in range(2):
        received = np.array(venv.envs[n].received)
        expected = np.clip(stored[:, n], -0.1, 0.1) if clip else stored[:, n]
        np.testing.assert_allclose(received, expected, atol=0)
    # the stored neglogp is that of the stored (unclipped) sample
    for t in range(3):
        params, _ = actor.forward(r.obs[t])
        np.testing.assert_allclose(r.neglogp[t], model.dist.neglogp_numpy(params, stored[t]), atol=1e-5)


@pytest.mark.parametrize("bootstrap", [True, False])
def test_runner_truncation_bootstrap(bootstrap):
    gamma = 0.9
    venv = make_venv({"horizon": 2, "end": "truncated"}, {"horizon": 2, "end": "terminated"})
    runner, model, actor, tracker = make_runner(venv, Semantics(bootstrap_truncation=bootstrap), n_steps=4,
                                                gamma=gamma)
    r = runner.run()
    # episodes end at steps 1 and 3 in both envs; env 0 by time limit, env 1 by termination
    np.testing.assert_array_equal(r.episode_starts[:, 0], [False, False, True, False])
    np.testing.assert_array_equal(r.obs[:, 0, 0], [0, 1, 0, 1])
    v_final = float(actor.forward(np.array([[2.0]], np.float32))[1][0])   # V(final obs = [2])
    v_reset = float(actor.forward(np.array([[0.0]], np.float32))[1][0])   # V(obs after autoreset)
    assert abs(v_final - v_reset) > 1e-3  # so using the wrong obs would show
    bonus = gamma * v_final if bootstrap else 0.0
    np.testing.assert_allclose(r.rewards[:, 0], [1.0, 1.0 + bonus, 1.0, 1.0 + bonus], atol=1e-6)
    np.testing.assert_allclose(r.rewards[:, 1], [1.0, 1.0, 1.0, 1.0], atol=0)  # terminated: never
    # episode returns are the raw env rewards either way
    assert list(tracker.returns) == [2.0] * 4


def _box_runner(first_sample: str):
    venv = make_venv({"action_space": BOX_ACTIONS}, {"action_space": BOX_ACTIONS})
    return make_runner(venv, Semantics(first_sample=first_sample), n_steps=4)


@pytest.mark.parametrize("first_sample", ["stale_action", "stale_action_and_value"])
def test_runner_stale_first_sample(first_sample):
    runner, model, actor, _ = _box_runner(first_sample)
    r1 = runner.run()
    obs_T = runner.obs.copy()
    assert runner._pending is not None
    pend_actions, pend_values, pend_neglogp = (np.copy(x) for x in runner._pending)
    old_values = actor.forward(obs_T)[1]
    # nextvpred: the bootstrap value is the value of the pending sample, computed before the update
    np.testing.assert_allclose(r1.last_values, pend_values, atol=0)
    np.testing.assert_allclose(pend_values, old_values, atol=1e-6)

    # "update": shift the value head by +1 and perturb the policy mean, then refresh the actor
    model.vf_head.bias.assign(model.vf_head.bias + 1.0)
    model.pi_head.bias.assign(model.pi_head.bias + 0.5)
    actor.sync()
    new_values = actor.forward(obs_T)[1]
    np.testing.assert_allclose(new_values, old_values + 1.0, atol=1e-5)

    r2 = runner.run()
    np.testing.assert_allclose(r2.obs[0], obs_T, atol=0)
    np.testing.assert_allclose(r2.actions[0], pend_actions, atol=0)   # the stale action
    np.testing.assert_allclose(r2.neglogp[0], pend_neglogp, atol=0)   # and its old neglogp
    if first_sample == "stale_action":
        # [SB] PPO1: value recomputed with the updated parameters
        np.testing.assert_allclose(r2.values[0], new_values, atol=1e-6)
    else:
        # [B] PPO1: the old vpred is kept
        np.testing.assert_allclose(r2.values[0], old_values, atol=1e-6)
    # later indices are sampled fresh with the current actor
    np.testing.assert_allclose(r2.values[1], actor.forward(r2.obs[1])[1], atol=1e-6)
    # the env received the (clipped) stale action at index 0
    for n in range(2):
        np.testing.assert_allclose(runner.venv.envs[n].received[4], np.clip(pend_actions[n], -0.1, 0.1), atol=0)


def test_runner_current_first_sample_has_no_pending():
    runner, model, actor, _ = _box_runner("current")
    r1 = runner.run()
    assert runner._pending is None
    np.testing.assert_allclose(r1.last_values, actor.forward(runner.obs)[1], atol=1e-6)
    model.vf_head.bias.assign(model.vf_head.bias + 1.0)
    actor.sync()
    obs_T = runner.obs.copy()
    r2 = runner.run()
    np.testing.assert_allclose(r2.values[0], actor.forward(obs_T)[1], atol=1e-6)
