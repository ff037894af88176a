"""PPO1: the MPI trainer of Baselines / Stable-Baselines ``pposgd_simple``
(spec §1.1-1.2, §2.1-2.2, §7.1, §8, §9).

One env per MPI rank; each minibatch gradient is Allreduce-averaged over the
ranks before the Adam step (inside the compiled update, see `tfppo.learner`).
Only the loop lives here: lrmult, one segment, GAE, policy-side observation
statistics, the shared update, episode statistics over all ranks, one log row.
"""
from __future__ import annotations

import os
import time
from typing import Any


from tfppo import mpi
from tfppo.algorithm import Algorithm, resolve_semantics
from tfppo.config import PPO1Config
from tfppo.envs import EpisodeTracker
from tfppo.learner import STAT_NAMES, MinibatchPlan
from tfppo.logger import Logger
from tfppo.rollout import explained_variance
from tfppo.semantics import Semantics


class PPO1(Algorithm):
    """``tfppo.PPO1("CartPole-v1", timesteps_per_actorbatch=256, max_timesteps=200_000).learn()``.

    Hyperparameters take the ``pposgd_simple`` names (``timesteps_per_actorbatch``,
    ``clip_param``, ``entcoeff``, ``optim_epochs``, ``optim_stepsize``,
    ``optim_batchsize``, ``gamma``, ``lam``, ``schedule`` and one of
    ``max_timesteps/max_episodes/max_iters/max_seconds``); ``adam_epsilon``
    overrides the Semantics; ``xla=False`` runs the update as a plain TF graph. Run under
    ``mpirun -n W`` for W workers.
    """

    algo = "ppo1"
    config_class = PPO1Config
    num_envs = 1
    rng_per_rank = True

    def __init__(self, env: str = "CartPole-v1", *, preset: str = "sb-ppo1", semantics: Semantics | dict | None = None,
                 adam_epsilon: float | None = None, log_dir: str | os.PathLike | None = None, verbose: int = 1,
                 comm: Any = None, log_keys: str | None = None, log_interval: int | None = None,
                 xla: bool = True, mpi_gradients: str = "auto", **hyperparameters: Any):
        config = PPO1Config.create(env, preset, **hyperparameters)
        sem = resolve_semantics(preset, semantics)
        if adam_epsilon is not None:
            sem = sem.replace(adam_epsilon=float(adam_epsilon))
        super().__init__(config, sem, log_dir=log_dir, verbose=verbose, comm=comm, log_keys=log_keys,
                         log_interval=log_interval, xla=xla, mpi_gradients=mpi_gradients)
        self.timesteps_so_far = 0  # the lrmult counter (row 10): exact or completed-episode steps
        self.episodes_so_far = 0
        self.iters_so_far = 0

    def minibatch_plan(self) -> MinibatchPlan:
        cfg = self.config
        return MinibatchPlan.from_size(cfg.timesteps_per_actorbatch, cfg.optim_batchsize, cfg.optim_epochs)

    # -- schedule and budget ----------------------------------------------------------
    def lrmult(self) -> float:
        """max(1 − timesteps_so_far/max_timesteps, 0) for 'linear', else 1 (spec §7.1), before the rollout."""
        if self.config.schedule == "constant":
            return 1.0
        return max(1.0 - self.timesteps_so_far / self.config.max_timesteps, 0.0)

    def budget_reached(self, elapsed: float) -> bool:
        """[B]'s top-of-iteration check of the one budget given (spec §9); rank 0 decides for max_seconds."""
        cfg = self.config
        if cfg.max_timesteps:
            return self.timesteps_so_far >= cfg.max_timesteps
        if cfg.max_episodes:
            return self.episodes_so_far >= cfg.max_episodes
        if cfg.max_iters:
            return self.iters_so_far >= cfg.max_iters
        return bool(self.comm.bcast(elapsed >= cfg.max_seconds, root=0))

    def _count_timesteps(self, episodes: list[tuple[float, int]]) -> int:
        """Row 10: [B] adds the lengths of episodes completed this iteration; [SB] adds W·T."""
        if self.semantics.timestep_counting == "episodes":
            return sum(length for _, length in episodes)
        return self.config.timesteps_per_actorbatch * self.world_size

    # -- loop ---------------------------------------------------------------------------
    def learn(self, *, save_path: str | os.PathLike | None = None, save_freq: int = 0, keep_checkpoints: int = 2,
              eval_freq: int = 0, eval_episodes: int = 10) -> "PPO1":
        """Iterate until the configured budget is reached (counters restored from a checkpoint count toward
        it). With ``save_path``, a checkpoint ``save_path/ckpt-<steps>`` is written every ``save_freq`` steps
        of all ranks together and at the end, keeping the newest ``keep_checkpoints`` (`tfppo.run_control`).
        ``eval_freq`` > 0 adds deterministic evaluations on rank 0 (`tfppo.evaluation.PeriodicEvaluator`),
        the last one after the final update."""
        cfg = self.config
        self.begin_run(cfg.max_timesteps or 0)
        if self.runner is None:
            # The runner's tracker is this rank's; self.tracker holds the episodes of all ranks (spec §8).
            self.runner = self.make_runner(cfg.timesteps_per_actorbatch, EpisodeTracker(1))
        logger = self.make_logger(cfg.max_timesteps or None)
        self.write_run_header()
        self.start_evaluation(eval_freq, eval_episodes)
        t_first = time.perf_counter()
        with logger, self.run_control(logger, save_path, save_freq, keep_checkpoints) as control:
            while not self.budget_reached(time.perf_counter() - t_first):
                t_iter = time.perf_counter()
                lrmult = self.lrmult()
                clip, clip_vf = self.clip_ranges(cfg.clip_param, lrmult, lrmult)
                rollout = self.runner.run()
                batch = rollout.to_batch(cfg.gamma, cfg.lam)
                self.update_policy_obs_stats(rollout, self.comm if self.world_size > 1 else None)
                result = self.learner.update(batch, learning_rate=cfg.optim_stepsize * lrmult, clip=clip,
                                             clip_vf=clip_vf, rng=self.shuffle_rng)
                control.check(result)
                if self.verbose > 1 and self.rank == 0:
                    self._print_epochs(result)
                self.actor.sync()
                episodes = mpi.allgather_episodes(rollout.episodes, self.comm)
                self.tracker.extend(episodes)
                self.episodes_so_far += len(episodes)
                self.timesteps_so_far += self._count_timesteps(episodes)
                self.num_timesteps += cfg.timesteps_per_actorbatch * self.world_size
                self.iters_so_far += 1
                self.n_updates += 1
                losses = result.logged
                if self.world_size > 1:
                    losses = mpi.mean_over_ranks(losses, self.comm)
                rank_fps = cfg.timesteps_per_actorbatch / (time.perf_counter() - t_iter)
                self.penalty_step(logger, result, self.comm if self.world_size > 1 else None)
                control.record(logger, rollout, batch, result)
                self._log(logger, losses, batch, len(episodes), rank_fps, time.perf_counter() - t_first, lrmult)
                self.evaluator.maybe_evaluate(self, self.num_timesteps)  # before a checkpoint can be written
                control.end_iteration()
                logger.advance(min(self.timesteps_so_far, cfg.max_timesteps or self.timesteps_so_far))
            self.evaluator.maybe_evaluate(self, self.num_timesteps, final=True)
            control.finish()
        return self

    def _log(self, logger: Logger, losses: dict[str, float], batch, ep_this_iter: int, rank_fps: float,
             elapsed: float, lrmult: float) -> None:
        """The pposgd_simple keys (spec §9) plus env-steps/s per rank and in total."""
        logger.record("loss_pol_surr", losses["policy_loss"])
        logger.record("loss_pol_entpen", -self.config.entcoeff * losses["entropy"])
        logger.record("loss_vf_loss", losses["value_loss"])
        logger.record("loss_kl", losses["kl"])
        logger.record("loss_ent", losses["entropy"])
        logger.record("ev_tdlam_before", explained_variance(batch.values, batch.returns))
        if self.tracker.returns:
            logger.record("EpLenMean", self.tracker.mean_length())
            logger.record("EpRewMean", self.tracker.mean_return())
        logger.record("EpThisIter", ep_this_iter)
        logger.record("EpisodesSoFar", self.episodes_so_far)
        logger.record("TimestepsSoFar", self.timesteps_so_far)
        logger.record("TimeElapsed", elapsed)
        logger.record("approxkl", losses["approxkl"])  # PPO2's diagnostics, for a like-for-like comparison
        logger.record("clipfrac", losses["clipfrac"])
        logger.record("lrmult", lrmult)
        logger.record("StepsPerSecRank", rank_fps)
        logger.record("StepsPerSecTotal", rank_fps * self.world_size)
        # env steps taken by all ranks: TimestepsSoFar is the lrmult counter, which [B] advances by
        # completed episodes only (row 10), so it cannot serve as the x axis of a learning curve
        logger.record("EnvStepsSoFar", self.num_timesteps)
        self.last_log = logger.dump(self.num_timesteps)

    @staticmethod
    def _print_epochs(result) -> None:
        """[B]'s per-epoch rows: the mean losses of each epoch's minibatches, measured during training."""
        print("Optimizing...\n" + " ".join(f"{name:>12}" for name in STAT_NAMES))
        for row in result.per_epoch:
            print(" ".join(f"{value:12.4g}" for value in row))

    # -- checkpoint ----------------------------------------------------------------------
    def extra_state(self) -> dict[str, Any]:
        return {"timesteps_so_far": self.timesteps_so_far, "episodes_so_far": self.episodes_so_far,
                "iters_so_far": self.iters_so_far}

    def load_extra_state(self, state: dict[str, Any]) -> None:
        self.timesteps_so_far = int(state.get("timesteps_so_far", 0))
        self.episodes_so_far = int(state.get("episodes_so_far", 0))
        self.iters_so_far = int(state.get("iters_so_far", 0))
