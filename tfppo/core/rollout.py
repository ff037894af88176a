"""Rollout collection and GAE, shared by PPO1 (one env per rank) and PPO2 (N envs).

`Runner` is both PPO2's vectorised ``Runner.run`` (spec §2.3-2.4) and PPO1's
segment generator (spec §2.1-2.2): it keeps env and episode state alive across
iterations, so episodes run across segment boundaries in both.  The rows where
they differ are `Semantics` switches: action clipping (row 18), the stale first
sample of a PPO1 segment (rows 5/27) and truncation bootstrap (row 19).
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import numpy as np

from tfppo.core.acting import Actor, PerRowGenerators, act
from tfppo.envs.episodes import EpisodeTracker
from tfppo.envs.normalize import VecNormalize
from tfppo.envs.spaces import clip_actions
from tfppo.core.learner import Batch
from tfppo.config.semantics import Semantics


def compute_gae(rewards: np.ndarray, values: np.ndarray, episode_starts: np.ndarray, last_values: np.ndarray,
                last_dones: np.ndarray, gamma: float, lam: float) -> tuple[np.ndarray, np.ndarray]:
    """GAE(γ, λ) and TD(λ) returns over [T, N] streams (spec §3, identical in all four originals).

    ``episode_starts[t]`` is d_t, "obs t is the first of a new episode" (PPO1 ``new``,
    PPO2 ``mb_dones``); ``last_dones`` is the done of the last step and
    ``last_values`` V(obs_T).  m_{t+1} = 1 − d_{t+1};
    δ_t = r_t + γ V_{t+1} m_{t+1} − V_t;  Â_t = δ_t + γλ m_{t+1} Â_{t+1};  R_t = Â_t + V_t.
    """
    n_steps = rewards.shape[0]
    advantages = np.zeros_like(rewards, dtype=np.float32)
    last_gae = np.zeros(rewards.shape[1:], dtype=np.float32)
    for t in reversed(range(n_steps)):
        if t == n_steps - 1:
            next_non_terminal = 1.0 - last_dones.astype(np.float32)
            next_values = last_values
        else:
            next_non_terminal = 1.0 - episode_starts[t + 1].astype(np.float32)
            next_values = values[t + 1]
        delta = rewards[t] + gamma * next_values * next_non_terminal - values[t]
        last_gae = delta + gamma * lam * next_non_terminal * last_gae
        advantages[t] = last_gae
    return advantages, (advantages + values).astype(np.float32)


@dataclass
class Rollout:
    """One iteration's data, time-major [T, N, ...]."""

    obs: np.ndarray
    actions: np.ndarray
    rewards: np.ndarray
    episode_starts: np.ndarray
    values: np.ndarray
    neglogp: np.ndarray
    last_values: np.ndarray
    last_dones: np.ndarray
    episodes: list[tuple[float, int]] = field(default_factory=list)
    n_terminated: int = 0  # episode ends by the MDP's terminal state ...
    n_truncated: int = 0   # ... and by a time limit (row 19's distinction), for the health diagnostics
    initial_states: np.ndarray | None = None  # recurrent policies: each env's state before step 0 [N, S]

    def to_batch(self, gamma: float, lam: float) -> Batch:
        """GAE per env stream, then swap-and-flatten to env-major order (spec §2.3)."""
        adv, ret = compute_gae(self.rewards, self.values, self.episode_starts, self.last_values,
                               self.last_dones, gamma, lam)
        flat = lambda x: np.swapaxes(x, 0, 1).reshape(-1, *x.shape[2:])
        batch = Batch(obs=flat(self.obs), actions=flat(self.actions), advantages=flat(adv), returns=flat(ret),
                      values=flat(self.values), neglogp=flat(self.neglogp))
        if self.initial_states is not None:
            batch = dataclasses.replace(batch, masks=flat(self.episode_starts).astype(np.float32),
                                        states=self.initial_states)
        return batch


class Runner:
    """Collects ``n_steps`` from every env of a gymnasium vector env (SAME_STEP autoreset)."""

    def __init__(self, venv, actor: Actor, dist, *, n_steps: int, semantics: Semantics, gamma: float,
                 rng: np.random.Generator | PerRowGenerators, tracker: EpisodeTracker, normalizer: VecNormalize | None,
                 first_obs: np.ndarray):
        self.venv, self.actor, self.dist = venv, actor, dist
        self.n_steps, self.semantics, self.gamma = n_steps, semantics, gamma
        self.rng, self.tracker, self.normalizer = rng, tracker, normalizer
        self.num_envs = venv.num_envs
        # A recurrent actor (`tfppo.core.recurrent.RecurrentState`) carries one LSTM state per env.
        self.recurrent = getattr(actor, "is_recurrent", False)
        self.restart(first_obs)

    def restart(self, first_obs: np.ndarray) -> None:
        """Start fresh episodes from a seeded ``venv.reset``: at construction, and at every periodic
        checkpoint boundary so the uninterrupted run and a run resumed there see the same envs
        (`tfppo.training.run_control`). Partial episodes are dropped from the statistics, in both."""
        self.obs = self.normalizer.reset(first_obs) if self.normalizer is not None else first_obs
        self.dones = np.zeros(self.num_envs, dtype=bool)
        self._pending: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None
        if self.recurrent:  # a resumed run starts from zero state too: checkpoints hold no LSTM state
            self.actor.reset(self.num_envs)
        self.tracker.discard_partial()

    def run(self) -> Rollout:
        T, N = self.n_steps, self.num_envs
        obs_buf = np.zeros((T, N, *self.obs.shape[1:]), dtype=self.obs.dtype)
        act_buf = np.zeros((T, N, *self.dist.action_shape), dtype=self.dist.action_dtype)
        rew_buf, val_buf, nlp_buf = (np.zeros((T, N), dtype=np.float32) for _ in range(3))
        start_buf = np.zeros((T, N), dtype=bool)
        episodes: list[tuple[float, int]] = []
        n_terminated = n_truncated = 0
        initial_states = self.actor.state.copy() if self.recurrent else None
        if isinstance(self.rng, PerRowGenerators):
            # this run's act() calls: every step but a pending PPO1 first sample, plus PPO1's sample of obs_T
            n_acts = T - (self._pending is not None) + (self.semantics.first_sample != "current")
            self.rng.prefetch(self.dist.noise_method, n_acts * self.dist.head_size)
        for t in range(T):
            if self.recurrent:
                self.actor.begin_step(self.dones)  # [B] M: the state is reset where the last step ended an episode
            actions, values, neglogp = self._first_sample() if t == 0 and self._pending else \
                act(self.actor, self.dist, self.obs, self.rng)
            if self.recurrent:
                self.actor.advance()
            obs_buf[t], act_buf[t], val_buf[t], nlp_buf[t], start_buf[t] = \
                self.obs, actions, values, neglogp, self.dones
            env_actions = clip_actions(actions, self.venv.single_action_space) \
                if self.semantics.clip_actions else actions  # row 18: the unclipped action is stored
            next_obs, raw_rewards, terminated, truncated, infos = self.venv.step(env_actions)
            self.dones = np.logical_or(terminated, truncated)
            n_terminated += int(np.count_nonzero(terminated))
            n_truncated += int(np.count_nonzero(truncated & ~terminated))
            episodes.extend(self.tracker.step(raw_rewards, self.dones, infos))
            rewards = self.normalizer.normalize_reward(raw_rewards, self.dones) if self.normalizer is not None \
                else raw_rewards
            rew_buf[t] = rewards
            if self.semantics.bootstrap_truncation:
                rew_buf[t] += self._truncation_bootstrap(terminated, truncated, infos)
            self.obs = self.normalizer.normalize_obs(next_obs) if self.normalizer is not None else next_obs
        if self.semantics.first_sample == "current":
            if self.recurrent:
                self.actor.begin_step(self.dones)  # [B] model.value(obs, S, M): the state is read, not moved
            last_values = self.actor.forward(self.obs)[1]
        else:
            # PPO1's generator samples the next action before yielding; V(obs_T) from that call is
            # ``nextvpred`` and the action becomes index 0 of the next segment (rows 5/27, spec §2.1).
            self._pending = act(self.actor, self.dist, self.obs, self.rng)
            last_values = self._pending[1]
        if isinstance(self.rng, PerRowGenerators) and self.rng.remaining:
            raise RuntimeError("the rollout drew less action noise than it prefetched")  # the streams would drift
        return Rollout(obs_buf, act_buf, rew_buf, start_buf, val_buf, nlp_buf, last_values.astype(np.float32),
                       self.dones.copy(), episodes, n_terminated, n_truncated, initial_states)

    def _first_sample(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The stale sample drawn before the update; [SB] recomputes its value with the new parameters."""
        actions, values, neglogp = self._pending
        self._pending = None
        if self.semantics.first_sample == "stale_action":
            values = self.actor.forward(self.obs)[1]
        return actions, values, neglogp

    def _truncation_bootstrap(self, terminated: np.ndarray, truncated: np.ndarray, infos: dict) -> np.ndarray:
        """γ·V(final obs) for envs cut by a time limit (row 19; off in both originals)."""
        bonus = np.zeros(self.num_envs, dtype=np.float32)
        cut = np.flatnonzero(truncated & ~terminated)
        if cut.size:
            final = np.stack([infos["final_obs"][i] for i in cut])
            if self.normalizer is not None:
                final = self.normalizer.normalize_obs(final, update=False)
            bonus[cut] = self.gamma * self.actor.forward(final)[1]
        return bonus


def explained_variance(predictions: np.ndarray, targets: np.ndarray) -> float:
    """1 − Var[y − ŷ]/Var[y], NaN when Var[y] = 0 (Baselines ``math_util``, spec §9)."""
    var_y = np.var(targets)
    return float("nan") if var_y == 0 else float(1.0 - np.var(targets - predictions) / var_y)
