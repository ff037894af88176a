"""PPO2: the vectorised trainer of Baselines / Stable-Baselines ``ppo2`` (spec §1.3-1.4, §2.3-2.4, §7.2, §9).

Only the loop lives here: schedules at frac, one rollout of n_steps × num_envs,
GAE, the shared compiled update, one log row.  The maths is in the shared core.
"""
from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import numpy as np

from tfppo.algorithm import Algorithm
from tfppo.config import PPO2Config
from tfppo.envs import make_vec_env, seed_vec_env
from tfppo.learner import MinibatchPlan
from tfppo.logger import Logger
from tfppo.rollout import Runner, explained_variance
from tfppo.schedules import progress_remaining
from tfppo.semantics import Semantics, get_preset


class PPO2(Algorithm):
    """``tfppo.PPO2("CartPole-v1", n_steps=32, ...).learn(100_000)``, SB-style.

    Hyperparameters take [SB] PPO2 names (``n_steps``, ``nminibatches``,
    ``noptepochs``, ``learning_rate``, ``cliprange``, ``cliprange_vf``,
    ``ent_coef``, ``gamma``, ``lam``, ``num_envs``); ``vf_coef`` and
    ``max_grad_norm`` override the preset's Semantics; ``semantics`` may pass a
    whole record or a dict of switches.
    """

    algo = "ppo2"
    config_class = PPO2Config

    def __init__(self, env: str = "CartPole-v1", *, preset: str = "sb-ppo2", semantics: Semantics | dict | None = None,
                 vf_coef: float | None = None, max_grad_norm: float | str | None = "preset",
                 log_dir: str | os.PathLike | None = None, verbose: int = 1, **hyperparameters: Any):
        config = PPO2Config.create(env, preset, **hyperparameters)
        sem = semantics if isinstance(semantics, Semantics) else get_preset(preset).replace(**(semantics or {}))
        if vf_coef is not None:
            sem = sem.replace(vf_coef=float(vf_coef))
        if max_grad_norm != "preset":
            sem = sem.replace(max_grad_norm=None if max_grad_norm is None else float(max_grad_norm))
        self.num_envs = config.num_envs
        super().__init__(config, config.resolve_semantics(sem), log_dir=log_dir, verbose=verbose)

    def minibatch_plan(self) -> MinibatchPlan:
        return MinibatchPlan.from_count(self.config.batch_size, self.config.nminibatches, self.config.noptepochs)

    def _make_runner(self) -> Runner:
        cfg = self.config
        venv = make_vec_env(cfg.env, cfg.num_envs, vectorization=cfg.vectorization)
        first_obs = seed_vec_env(venv, self.seeds.envs(0, cfg.num_envs))
        return Runner(venv, self.actor, self.policy.dist, n_steps=cfg.n_steps, semantics=self.semantics,
                      gamma=cfg.gamma, rng=self.action_rngs, tracker=self.tracker, normalizer=self.normalizer,
                      first_obs=first_obs)

    def _clip_ranges(self, frac: float) -> tuple[float, float | None]:
        """ε(frac) and ε_v(frac) per the value-clip switch (spec §6.2)."""
        clip = self.config.cliprange(frac)
        mode = self.semantics.value_clip
        clip_vf = clip if mode == "cliprange" else self.config.cliprange_vf(frac) if mode == "separate" else None
        return clip, clip_vf

    def learn(self, total_timesteps: int | None = None) -> "PPO2":
        """Run floor(total/nbatch) updates; ``total_timesteps`` defaults to the config's."""
        cfg = self.config
        total = int(total_timesteps or cfg.total_timesteps)
        n_updates = total // cfg.batch_size
        if n_updates < 1:
            raise ValueError(f"total_timesteps {total} is less than one batch ({cfg.batch_size})")
        if self.runner is None:
            self.runner = self._make_runner()
        logger = Logger(self.log_dir, stdout=self.verbose > 0, total_timesteps=self.num_timesteps + total)
        self.write_run_header()
        t_first = time.perf_counter()
        with logger:
            for update in range(1, n_updates + 1):
                t_start = time.perf_counter()
                frac = progress_remaining(update, n_updates)
                lr = cfg.learning_rate(frac)
                clip, clip_vf = self._clip_ranges(frac)
                rollout = self.runner.run()
                batch, _ = rollout.to_batch(cfg.gamma, cfg.lam)
                result = self.learner.update(batch, learning_rate=lr, clip=clip, clip_vf=clip_vf,
                                             rng=self.shuffle_rng)
                self.actor.sync()
                self.num_timesteps += cfg.batch_size
                self.n_updates += 1
                fps = int(cfg.batch_size / (time.perf_counter() - t_start))
                self._log(logger, update, fps, t_start - t_first, batch, result.train, lr, clip)
                logger.advance(self.num_timesteps)
        return self

    def _log(self, logger: Logger, update: int, fps: int, elapsed: float, batch, stats: dict[str, float],
             lr: float, clip: float) -> None:
        """The [SB] PPO2 keys (spec §9), plus the exact KL and the schedules' values."""
        logger.record("serial_timesteps", update * self.config.n_steps)
        logger.record("n_updates", self.n_updates)
        logger.record("total_timesteps", self.num_timesteps)
        logger.record("fps", fps)
        logger.record("explained_variance", explained_variance(batch.values, batch.returns))
        if self.tracker.returns:
            logger.record("ep_reward_mean", self.tracker.mean_return())
            logger.record("ep_len_mean", self.tracker.mean_length())
        logger.record("time_elapsed", elapsed)
        logger.record("policy_loss", stats["policy_loss"])
        logger.record("value_loss", stats["value_loss"])
        logger.record("policy_entropy", stats["entropy"])
        logger.record("approxkl", stats["approxkl"])
        logger.record("clipfrac", stats["clipfrac"])
        logger.record("kl", stats["kl"])
        logger.record("learning_rate", lr)
        logger.record("cliprange", clip)
        self.last_log = logger.dump(self.num_timesteps)
