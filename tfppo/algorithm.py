"""What PPO1 and PPO2 share around their loops: the policy, its acting path,
the learner, env-side normalisation, predict, save and load.

A trainer *has* a model, an actor, a learner and (while learning) a runner and
a logger; the only thing a subclass adds is its ``learn`` loop, its minibatch
plan and how gradients are averaged across processes.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, ClassVar

import keras
import numpy as np

from tfppo import checkpoint
from tfppo.acting import act, make_actor
from tfppo.envs import EpisodeTracker, VecNormalize, check_spaces, resolve_env
from tfppo.learner import GradReducer, Learner, MinibatchPlan
from tfppo.policy import build_policy
from tfppo.rollout import Runner
from tfppo.seeding import RunSeeds
from tfppo.semantics import Semantics

VEC_NORMALIZE_GAMMA = 0.99  # baselines.run / SB VecNormalize default (spec §5.4), independent of the algorithm's γ


def probe_spaces(env_id: str):
    """Observation and action space of ``env_id`` from one throw-away instance (checked, one-line errors)."""
    env = resolve_env(env_id)()
    try:
        check_spaces(env.observation_space, env.action_space)
        return env.observation_space, env.action_space
    finally:
        env.close()


class Algorithm:
    """Base of `tfppo.PPO1` and `tfppo.PPO2`: everything but the training loop."""

    algo: ClassVar[str]
    config_class: ClassVar[type]

    def __init__(self, config, semantics: Semantics, *, log_dir: str | os.PathLike | None = None,
                 verbose: int = 1, rank: int = 0, grad_reducer: GradReducer | None = None):
        self.config = config
        self.semantics = semantics
        self.log_dir = Path(log_dir) if log_dir is not None else None
        self.verbose = verbose
        self.rank = rank
        self.observation_space, self.action_space = probe_spaces(config.env)
        self.seeds = RunSeeds(config.seed)
        keras.utils.set_random_seed(config.seed)
        self.policy = build_policy(self.observation_space, self.action_space, semantics, config.network,
                                   seed=self.seeds.weights())
        self.actor = make_actor(self.policy)
        self.learner = Learner(self.policy, semantics, self.minibatch_plan(), ent_coef=config.ent_coef,
                               grad_reducer=grad_reducer)
        self.normalizer = self._make_normalizer()
        self.tracker = EpisodeTracker(self.num_envs)
        # one action stream per global env index: PPO2 envs 0..N-1 in a process, PPO1 rank r (seeding.py)
        self.action_rngs = [self.seeds.actions(self.first_env_index + i) for i in range(self.num_envs)]
        self.shuffle_rng = self.seeds.shuffles(rank)
        self.predict_rng = self.seeds.predict()
        self.num_timesteps = 0
        self.n_updates = 0
        self.runner: Runner | None = None  # built on the first learn(): loading for predict needs no envs

    # -- to be provided by the trainer -------------------------------------------------
    num_envs: int

    @property
    def first_env_index(self) -> int:
        """Global index of this process's first env (PPO1: the rank; PPO2: 0)."""
        return self.rank

    def minibatch_plan(self) -> MinibatchPlan:
        raise NotImplementedError

    # -- shared --------------------------------------------------------------------------
    @property
    def model(self) -> keras.Model:
        """The Keras actor-critic: ``model(obs) -> (pd_params, value)``."""
        return self.policy

    def _make_normalizer(self) -> VecNormalize | None:
        """Env-side VecNormalize (rows 16-17) when the semantics ask for it."""
        sem = self.semantics
        if sem.obs_norm != "env" and not sem.reward_norm:
            return None
        return VecNormalize(self.observation_space.shape, self.num_envs, norm_obs=sem.obs_norm == "env",
                            norm_reward=sem.reward_norm, gamma=VEC_NORMALIZE_GAMMA)

    def predict(self, obs: Any, deterministic: bool = True) -> np.ndarray:
        """Action(s) for one observation or a batch; env-side statistics are used frozen."""
        obs = np.asarray(obs)
        single = obs.shape == self.observation_space.shape
        batch = obs[None] if single else obs
        if self.normalizer is not None:
            batch = self.normalizer.normalize_obs(batch, update=False)
        actions, _, _ = act(self.actor, self.policy.dist, batch, self.predict_rng, deterministic)
        return actions[0] if single else actions

    def close(self) -> None:
        """Close the envs (they are rebuilt by the next ``learn``)."""
        if self.runner is not None:
            self.runner.venv.close()
            self.runner = None

    def write_run_header(self) -> None:
        """Print the resolved Semantics and save it as ``semantics.json`` in the run directory."""
        if self.verbose > 0:
            print(f"{self.algo} semantics: {self.semantics.to_dict()}", flush=True)
        if self.log_dir is not None:
            self.log_dir.mkdir(parents=True, exist_ok=True)
            (self.log_dir / "semantics.json").write_text(self.semantics.to_json())

    def save(self, path: str | os.PathLike) -> Path:
        """Write an atomic checkpoint directory (see `tfppo.checkpoint`)."""
        meta = {
            "algo": self.algo,
            "config": self.config.to_dict(),
            "semantics": self.semantics.to_dict(),
            "normalizer": self.normalizer.state_dict() if self.normalizer is not None else None,
            "tracker": self.tracker.state_dict(),
            "counters": {"num_timesteps": self.num_timesteps, "n_updates": self.n_updates},
            "rng": {"actions": [rng.bit_generator.state for rng in self.action_rngs],
                    "shuffles": self.shuffle_rng.bit_generator.state},
            "extra": self.extra_state(),
        }
        return checkpoint.save(path, self.policy, self.learner.optimizer, meta)

    def restore(self, path: str | os.PathLike, meta: dict[str, Any]) -> None:
        """Load weights, optimizer, statistics, counters and RNG states from a checkpoint."""
        checkpoint.restore_weights(path, self.policy, self.learner.optimizer)
        self.actor.sync()
        if self.normalizer is not None and meta.get("normalizer"):
            self.normalizer.load_state_dict(meta["normalizer"])
        self.tracker.load_state_dict(meta["tracker"])
        self.num_timesteps = int(meta["counters"]["num_timesteps"])
        self.n_updates = int(meta["counters"]["n_updates"])
        for rng, state in zip(self.action_rngs, meta["rng"]["actions"]):
            rng.bit_generator.state = state
        self.shuffle_rng.bit_generator.state = meta["rng"]["shuffles"]
        self.load_extra_state(meta.get("extra") or {})

    def extra_state(self) -> dict[str, Any]:
        """Trainer-specific JSON state for checkpoints (PPO1: counters, policy obs statistics)."""
        return {}

    def load_extra_state(self, state: dict[str, Any]) -> None:
        """Inverse of `extra_state`."""

    @classmethod
    def from_checkpoint(cls, path: str | os.PathLike, meta: dict[str, Any], **kwargs: Any) -> "Algorithm":
        """Rebuild the agent from ``agent.json`` (config + Semantics), then load its state."""
        config = cls.config_class.from_dict(meta["config"]).to_dict()
        env, preset = config.pop("env"), config.pop("preset")
        agent = cls(env, preset=preset, semantics=Semantics.from_dict(meta["semantics"]), **kwargs, **config)
        agent.restore(path, meta)
        return agent
