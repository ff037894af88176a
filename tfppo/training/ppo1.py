"""PPO1: the MPI trainer of Baselines / Stable-Baselines ``pposgd_simple``
(spec §1.1-1.2, §2.1-2.2, §7.1, §8, §9).

One env per MPI rank; each minibatch gradient is averaged over the ranks before the Adam step
(inside the compiled update, see `tfppo.core.learner`). The loop is `tfppo.training.algorithm`'s; this
class supplies what is PPO1's own: lrmult and its timestep counter (row 10), the four budgets, and the
pposgd_simple log row.
"""
from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

from tfppo.config.hyperparameters import PPO1Config, check_feedforward_policy
from tfppo.config.semantics import Semantics
from tfppo.core.learner import STAT_NAMES, MinibatchPlan
from tfppo.core.rollout import explained_variance
from tfppo.envs.factory import EnvLike, EnvSource, Wrapper
from tfppo.io.logger import Logger
from tfppo.training.algorithm import Algorithm, IterationTimes, UpdateSchedule, resolve_semantics


class PPO1(Algorithm):
    """``tfppo.PPO1("CartPole-v1", timesteps_per_actorbatch=256, max_timesteps=200_000).learn()``.

    Hyperparameters take the ``pposgd_simple`` names (``timesteps_per_actorbatch``,
    ``clip_param``, ``entcoeff``, ``optim_epochs``, ``optim_stepsize``,
    ``optim_batchsize``, ``gamma``, ``lam``, ``schedule`` and one of
    ``max_timesteps/max_episodes/max_iters/max_seconds``); ``adam_epsilon``
    overrides the Semantics; ``xla=False`` runs the update as a plain TF graph. ``env``, ``env_kwargs`` and
    ``wrappers`` as for PPO2 (each rank builds its one env from them). Run under
    ``mpirun -n W`` for W workers. ``learn(total_timesteps)`` ([SB] PPO1's one budget) replaces the
    configured budget by ``max_timesteps=total_timesteps``.
    """

    algo = "ppo1"
    config_class = PPO1Config
    num_envs = 1
    rng_per_rank = True
    pools_rank_episodes = True

    def __init__(self, env: EnvLike = "CartPole-v1", *, preset: str = "sb-ppo1",
                 semantics: Semantics | dict | None = None, env_kwargs: dict[str, Any] | None = None,
                 wrappers: Sequence[Wrapper] | None = None, adam_epsilon: float | None = None, log_dir: str | os.PathLike | None = None, verbose: int = 1,
                 comm: Any = None, log_keys: str | None = None, log_interval: int | None = None,
                 xla: bool = True, mpi_gradients: str = "auto", **hyperparameters: Any):
        source = EnvSource(env, env_kwargs, wrappers)
        check_feedforward_policy(hyperparameters.pop("policy", None), "PPO1")
        config = PPO1Config.create(source.label, preset, **hyperparameters)
        sem = resolve_semantics(preset, semantics)
        if adam_epsilon is not None:
            sem = sem.replace(adam_epsilon=float(adam_epsilon))
        super().__init__(config, sem, env_source=source, log_dir=log_dir, verbose=verbose, comm=comm, log_keys=log_keys,
                         log_interval=log_interval, xla=xla, mpi_gradients=mpi_gradients)
        self.timesteps_so_far = 0  # the lrmult counter (row 10): exact or completed-episode steps
        self.episodes_so_far = 0
        self.iters_so_far = 0

    def minibatch_plan(self) -> MinibatchPlan:
        cfg = self.config
        return MinibatchPlan.from_size(cfg.timesteps_per_actorbatch, cfg.optim_batchsize, cfg.optim_epochs)

    def set_budget(self, **budget: Any) -> None:
        """Continue with a new budget (one of max_timesteps/max_episodes/max_iters/max_seconds; the others
        0), validated like the constructor's; the counters so far count toward it."""
        self.config = self.config.with_budget(**budget)

    # -- the loop's hooks ---------------------------------------------------------------
    @property
    def steps_per_update(self) -> int:
        """T env steps on each of the W ranks."""
        return self.config.timesteps_per_actorbatch * self.world_size

    def runner_shape(self) -> tuple[int, str]:
        return self.config.timesteps_per_actorbatch, "sync"

    def plan_run(self, total_timesteps: int | None) -> int:
        if total_timesteps is not None:
            self.set_budget(max_timesteps=int(total_timesteps))
        return self.config.max_timesteps or 0

    def planned_total(self, run: dict[str, Any]) -> int | None:
        return self.config.max_timesteps or None

    def budget_left(self, run: dict[str, Any], elapsed: float) -> bool:
        """[B]'s top-of-iteration check of the one budget given (spec §9); rank 0 decides for max_seconds.
        ``stop_at_budget`` also stops once the next update would pass max_timesteps env steps."""
        cfg = self.config
        if cfg.max_timesteps:
            if cfg.stop_at_budget and self.num_timesteps + self.steps_per_update > cfg.max_timesteps:
                return False
            return self.timesteps_so_far < cfg.max_timesteps
        if cfg.max_episodes:
            return self.episodes_so_far < cfg.max_episodes
        if cfg.max_iters:
            return self.iters_so_far < cfg.max_iters
        return not bool(self.comm.bcast(elapsed >= cfg.max_seconds, root=0))

    def lrmult(self) -> float:
        """max(1 − timesteps_so_far/max_timesteps, 0) for 'linear', else 1 (spec §7.1), before the rollout."""
        if self.config.schedule == "constant":
            return 1.0
        return max(1.0 - self.timesteps_so_far / self.config.max_timesteps, 0.0)

    def schedule(self, run: dict[str, Any]) -> UpdateSchedule:
        """Adam's step size optim_stepsize·lrmult; ε = clip_param (·lrmult under row 9)."""
        lrmult = self.lrmult()
        clip, clip_vf = self.clip_ranges(self.config.clip_param, lrmult, lrmult)
        return UpdateSchedule(self.config.optim_stepsize * lrmult, clip, clip_vf, position=lrmult)

    def count(self, run: dict[str, Any], episodes: list[tuple[float, int]]) -> None:
        """Row 10: [B] adds the lengths of episodes completed this iteration; [SB] adds W·T."""
        self.episodes_so_far += len(episodes)
        if self.semantics.timestep_counting == "episodes":
            self.timesteps_so_far += sum(length for _, length in episodes)
        else:
            self.timesteps_so_far += self.steps_per_update
        self.iters_so_far += 1

    def progress_position(self) -> int:
        return min(self.timesteps_so_far, self.config.max_timesteps or self.timesteps_so_far)

    def log_row(self, logger: Logger, run: dict[str, Any], schedule: UpdateSchedule, batch, losses: dict[str, float],
                result, episodes_this_iteration: int, times: IterationTimes) -> None:
        """The pposgd_simple keys (spec §9) plus env-steps/s per rank and in total."""
        if self.verbose > 1 and self.rank == 0:
            self._print_epochs(result)
        rank_fps = self.config.timesteps_per_actorbatch / times.seconds
        logger.record("loss_pol_surr", losses["policy_loss"])
        logger.record("loss_pol_entpen", -self.config.entcoeff * losses["entropy"])
        logger.record("loss_vf_loss", losses["value_loss"])
        logger.record("loss_kl", losses["kl"])
        logger.record("loss_ent", losses["entropy"])
        logger.record("ev_tdlam_before", explained_variance(batch.values, batch.returns))
        if self.tracker.returns:
            logger.record("EpLenMean", self.tracker.mean_length())
            logger.record("EpRewMean", self.tracker.mean_return())
        logger.record("EpThisIter", episodes_this_iteration)
        logger.record("EpisodesSoFar", self.episodes_so_far)
        logger.record("TimestepsSoFar", self.timesteps_so_far)
        logger.record("TimeElapsed", times.finished)
        logger.record("approxkl", losses["approxkl"])  # PPO2's diagnostics, for a like-for-like comparison
        logger.record("clipfrac", losses["clipfrac"])
        logger.record("lrmult", schedule.position)
        logger.record("StepsPerSecRank", rank_fps)
        logger.record("StepsPerSecTotal", rank_fps * self.world_size)
        # env steps taken by all ranks: TimestepsSoFar is the lrmult counter, which [B] advances by
        # completed episodes only (row 10), so it cannot serve as the x axis of a learning curve
        logger.record("EnvStepsSoFar", self.num_timesteps)

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
