"""PPO2: the vectorised trainer of Baselines / Stable-Baselines ``ppo2`` (spec §1.3-1.4, §2.3-2.4, §7.2, §9).

Only the loop lives here: schedules at frac, one rollout of n_steps × num_envs,
GAE, the shared compiled update, one log row.  The maths is in the shared core.
"""
from __future__ import annotations

import os
import time
from typing import Any

from tfppo.algorithm import Algorithm, resolve_semantics
from tfppo.config import PPO2Config
from tfppo.learner import MinibatchPlan
from tfppo.logger import Logger
from tfppo.rollout import explained_variance
from tfppo.schedules import progress_remaining
from tfppo.semantics import Semantics


class PPO2(Algorithm):
    """``tfppo.PPO2("CartPole-v1", n_steps=32, ...).learn(100_000)``, SB-style.

    Hyperparameters take [SB] PPO2 names (``n_steps``, ``nminibatches``,
    ``noptepochs``, ``learning_rate``, ``cliprange``, ``cliprange_vf``,
    ``ent_coef``, ``gamma``, ``lam``, ``num_envs``); ``vf_coef`` and
    ``max_grad_norm`` override the preset's Semantics; ``semantics`` may pass a
    whole record or a dict of switches; ``xla=False`` runs the update as a plain TF graph.
    """

    algo = "ppo2"
    config_class = PPO2Config

    def __init__(self, env: str = "CartPole-v1", *, preset: str = "sb-ppo2", semantics: Semantics | dict | None = None,
                 vf_coef: float | None = None, max_grad_norm: float | str | None = "preset",
                 log_dir: str | os.PathLike | None = None, verbose: int = 1, xla: bool = True,
                 **hyperparameters: Any):
        config = PPO2Config.create(env, preset, **hyperparameters)
        sem = resolve_semantics(preset, semantics)
        if vf_coef is not None:
            sem = sem.replace(vf_coef=float(vf_coef))
        if max_grad_norm != "preset":
            sem = sem.replace(max_grad_norm=None if max_grad_norm is None else float(max_grad_norm))
        self.num_envs = config.num_envs
        super().__init__(config, config.resolve_semantics(sem), log_dir=log_dir, verbose=verbose, xla=xla)

    def minibatch_plan(self) -> MinibatchPlan:
        return MinibatchPlan.from_count(self.config.batch_size, self.config.nminibatches, self.config.noptepochs)

    def progress(self, update: int, n_updates: int, counted_steps: int) -> float:
        """frac = 1 − (u − 1)/nupdates (spec §7.2); with ``timestep_counting=episodes`` PPO1 [B]'s counter
        of completed-episode steps replaces the update count (row 10)."""
        if self.semantics.timestep_counting == "episodes":
            return max(1.0 - counted_steps / (n_updates * self.config.batch_size), 0.0)
        return progress_remaining(update, n_updates)

    def learn(self, total_timesteps: int | None = None, *, eval_freq: int = 0, eval_episodes: int = 10) -> "PPO2":
        """Run floor(total/nbatch) updates; ``total_timesteps`` defaults to the config's.
        ``eval_freq`` > 0 adds deterministic evaluations (`tfppo.evaluation.PeriodicEvaluator`)."""
        cfg = self.config
        total = int(total_timesteps or cfg.total_timesteps)
        n_updates = total // cfg.batch_size
        if n_updates < 1:
            raise ValueError(f"total_timesteps {total} is less than one batch ({cfg.batch_size})")
        if self.runner is None:
            self.runner = self.make_runner(cfg.n_steps, self.tracker, cfg.vectorization)
        logger = Logger(self.log_dir, stdout=self.verbose > 0, total_timesteps=self.num_timesteps + total)
        self.write_run_header()
        self.start_evaluation(eval_freq, eval_episodes)
        t_first, counted = time.perf_counter(), 0
        with logger:
            for update in range(1, n_updates + 1):
                t_start = time.perf_counter()
                frac = self.progress(update, n_updates, counted)
                lr = cfg.learning_rate(frac)
                clip, clip_vf = self.clip_ranges(cfg.cliprange(frac), lr / cfg.learning_rate(1.0), frac)
                rollout = self.runner.run()
                batch = rollout.to_batch(cfg.gamma, cfg.lam)
                self.update_policy_obs_stats(rollout)
                result = self.learner.update(batch, learning_rate=lr, clip=clip, clip_vf=clip_vf,
                                             rng=self.shuffle_rng)
                self.actor.sync()
                counted += sum(length for _, length in rollout.episodes)
                self.num_timesteps += cfg.batch_size
                self.n_updates += 1
                fps = int(cfg.batch_size / (time.perf_counter() - t_start))
                self._log(logger, update, fps, t_start - t_first, batch, result.logged, lr, clip)
                logger.advance(self.num_timesteps)
                self.evaluator.maybe_evaluate(self, self.num_timesteps, final=update == n_updates)
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
