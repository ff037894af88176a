"""PPO2: the vectorised trainer of Baselines / Stable-Baselines ``ppo2`` (spec §1.3-1.4, §2.3-2.4, §7.2, §9).

Only the loop lives here: schedules at frac, one rollout of n_steps × num_envs,
GAE, the shared compiled update, one log row.  The maths is in the shared core.
"""
from __future__ import annotations

import os
import time
from typing import Any

from tfppo import mpi
from tfppo.algorithm import Algorithm, resolve_semantics
from tfppo.config import PPO2Config
from tfppo.envs import EpisodeTracker
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
    Under ``mpirun -n W`` each rank runs
    ``num_envs`` envs and every minibatch gradient is averaged over the ranks
    ([B] ppo2 with ``MpiAdamOptimizer``); ``total_timesteps`` counts all ranks.
    """

    algo = "ppo2"
    config_class = PPO2Config

    def __init__(self, env: str = "CartPole-v1", *, preset: str = "sb-ppo2", semantics: Semantics | dict | None = None,
                 vf_coef: float | None = None, max_grad_norm: float | str | None = "preset",
                 log_dir: str | os.PathLike | None = None, verbose: int = 1, comm: Any = None,
                 log_keys: str | None = None, log_interval: int | None = None, xla: bool = True,
                 mpi_gradients: str = "auto",
                 **hyperparameters: Any):
        config = PPO2Config.create(env, preset, **hyperparameters)
        sem = resolve_semantics(preset, semantics)
        if vf_coef is not None:
            sem = sem.replace(vf_coef=float(vf_coef))
        if max_grad_norm != "preset":
            sem = sem.replace(max_grad_norm=None if max_grad_norm is None else float(max_grad_norm))
        self.num_envs = config.num_envs
        super().__init__(config, config.resolve_semantics(sem), log_dir=log_dir, verbose=verbose, comm=comm,
                         log_keys=log_keys, log_interval=log_interval, xla=xla,
                         mpi_gradients=mpi_gradients)

    def minibatch_plan(self) -> MinibatchPlan:
        return MinibatchPlan.from_count(self.config.batch_size, self.config.nminibatches, self.config.noptepochs)

    @property
    def steps_per_update(self) -> int:
        """Env steps of one update over all ranks: n_steps × num_envs × W."""
        return self.config.batch_size * self.world_size

    def progress(self, update: int, n_updates: int, counted_steps: int) -> float:
        """frac = 1 − (u − 1)/nupdates (spec §7.2); with ``timestep_counting=episodes`` PPO1 [B]'s counter
        of completed-episode steps replaces the update count (row 10)."""
        if self.semantics.timestep_counting == "episodes":
            return max(1.0 - counted_steps / (n_updates * self.steps_per_update), 0.0)
        return progress_remaining(update, n_updates)

    def learn(self, total_timesteps: int | None = None, *, save_path: str | os.PathLike | None = None,
              save_freq: int = 0, keep_checkpoints: int = 2, eval_freq: int = 0, eval_episodes: int = 10) -> "PPO2":
        """Run floor(total/(nbatch·W)) updates; ``total_timesteps`` defaults to the config's. An agent loaded from
        an unfinished periodic checkpoint resumes that run to its own budget instead. With ``save_path``,
        a checkpoint ``save_path/ckpt-<steps>`` is written every ``save_freq`` steps and at the end, keeping
        the newest ``keep_checkpoints`` (`tfppo.run_control`). ``eval_freq`` > 0 adds deterministic
        evaluations (`tfppo.evaluation.PeriodicEvaluator`)."""
        cfg = self.config
        run = self.begin_run(int(total_timesteps or cfg.total_timesteps))
        total = run["total_timesteps"]
        n_updates = total // self.steps_per_update
        if n_updates < 1:
            raise ValueError(f"total_timesteps {total} is less than one batch of all ranks ({self.steps_per_update})")
        if self.runner is None:
            # Under MPI the runner's tracker is this rank's; self.tracker holds the episodes of all ranks.
            local = self.tracker if self.world_size == 1 else EpisodeTracker(self.num_envs)
            self.runner = self.make_runner(cfg.n_steps, local, cfg.vectorization)
        logger = self.make_logger(run["start_timesteps"] + n_updates * self.steps_per_update)
        self.write_run_header()
        self.start_evaluation(eval_freq, eval_episodes)
        t_first = time.perf_counter()
        with logger, self.run_control(logger, save_path, save_freq, keep_checkpoints) as control:
            for update in range(self.n_updates - run["updates_before"] + 1, n_updates + 1):
                t_start = time.perf_counter()
                frac = self.progress(update, n_updates, run["counted"])
                lr = cfg.learning_rate(frac)
                clip, clip_vf = self.clip_ranges(cfg.cliprange(frac), lr / cfg.learning_rate(1.0), frac)
                rollout = self.runner.run()
                batch = rollout.to_batch(cfg.gamma, cfg.lam)
                self.update_policy_obs_stats(rollout, self.comm if self.world_size > 1 else None)
                result = self.learner.update(batch, learning_rate=lr, clip=clip, clip_vf=clip_vf,
                                             rng=self.shuffle_rng)
                control.check(result)
                self.actor.sync()
                episodes = rollout.episodes
                losses = result.logged
                if self.world_size > 1:
                    episodes = mpi.allgather_episodes(episodes, self.comm)
                    self.tracker.extend(episodes)
                    losses = mpi.mean_over_ranks(losses, self.comm)
                run["counted"] += sum(length for _, length in episodes)
                self.num_timesteps += self.steps_per_update
                self.n_updates += 1
                fps = int(self.steps_per_update / (time.perf_counter() - t_start))
                self.penalty_step(logger, result, self.comm if self.world_size > 1 else None)
                control.record(logger, rollout, batch, result)
                self._log(logger, update, fps, t_start - t_first, batch, losses, lr, clip)
                self.evaluator.maybe_evaluate(self, self.num_timesteps)  # before a checkpoint can be written
                control.end_iteration()
                logger.advance(self.num_timesteps)
            self.evaluator.maybe_evaluate(self, self.num_timesteps, final=True)
            control.finish()
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
        elif self.log_keys != "sb":  # [B] safemean of no episodes is NaN; [SB] leaves the keys out
            logger.record("ep_reward_mean", float("nan"))
            logger.record("ep_len_mean", float("nan"))
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
