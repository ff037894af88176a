"""PPO2: the vectorised trainer of Baselines / Stable-Baselines ``ppo2`` (spec §1.3-1.4, §2.3-2.4, §7.2, §9).

The loop is `tfppo.training.algorithm`'s; this class supplies what is PPO2's own: schedules of frac,
floor(total / nbatch) updates, and the ppo2 log row. The maths is in the shared core.
"""
from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

from tfppo.config.hyperparameters import PPO2Config
from tfppo.config.schedules import progress_remaining
from tfppo.config.semantics import Semantics
from tfppo.core.learner import MinibatchPlan
from tfppo.core.rollout import explained_variance
from tfppo.envs.factory import EnvLike, EnvSource, Wrapper
from tfppo.io.logger import Logger
from tfppo.training.algorithm import Algorithm, IterationTimes, UpdateSchedule, resolve_semantics


class PPO2(Algorithm):
    """``tfppo.PPO2("CartPole-v1", n_steps=32, ...).learn(100_000)``, SB-style.

    Hyperparameters take [SB] PPO2 names (``n_steps``, ``nminibatches``,
    ``noptepochs``, ``learning_rate``, ``cliprange``, ``cliprange_vf``,
    ``ent_coef``, ``gamma``, ``lam``, ``num_envs``); ``vf_coef`` and
    ``max_grad_norm`` override the preset's Semantics; ``semantics`` may pass a
    whole record or a dict of switches; ``xla=False`` runs the update as a plain TF graph. ``env`` is an id,
    a callable returning a ``gymnasium.Env`` (called once per env) or, with one env, an instance;
    ``env_kwargs`` and ``wrappers`` reach every env (`tfppo.envs.factory.EnvSource`).
    Under ``mpirun -n W`` each rank runs
    ``num_envs`` envs and every minibatch gradient is averaged over the ranks
    ([B] ppo2 with ``MpiAdamOptimizer``); ``total_timesteps`` counts all ranks.
    """

    algo = "ppo2"
    config_class = PPO2Config

    def __init__(self, env: EnvLike = "CartPole-v1", *, preset: str = "sb-ppo2",
                 semantics: Semantics | dict | None = None, env_kwargs: dict[str, Any] | None = None,
                 wrappers: Sequence[Wrapper] | None = None, vf_coef: float | None = None, max_grad_norm: float | str | None = "preset",
                 log_dir: str | os.PathLike | None = None, verbose: int = 1, comm: Any = None,
                 log_keys: str | None = None, log_interval: int | None = None, xla: bool = True,
                 mpi_gradients: str = "auto",
                 **hyperparameters: Any):
        source = EnvSource(env, env_kwargs, wrappers)
        config = PPO2Config.create(source.label, preset, **hyperparameters)
        sem = resolve_semantics(preset, semantics)
        if vf_coef is not None:
            sem = sem.replace(vf_coef=float(vf_coef))
        if max_grad_norm != "preset":
            sem = sem.replace(max_grad_norm=None if max_grad_norm is None else float(max_grad_norm))
        self.num_envs = config.num_envs
        super().__init__(config, config.resolve_semantics(sem), env_source=source, log_dir=log_dir, verbose=verbose, comm=comm,
                         log_keys=log_keys, log_interval=log_interval, xla=xla,
                         mpi_gradients=mpi_gradients)

    def minibatch_plan(self) -> MinibatchPlan:
        cfg = self.config
        if cfg.recurrent:  # [B] ppo2 with a recurrent policy: whole env sequences per minibatch
            return MinibatchPlan.by_env(cfg.num_envs, cfg.n_steps, cfg.nminibatches, cfg.noptepochs)
        return MinibatchPlan.from_count(cfg.batch_size, cfg.nminibatches, cfg.noptepochs)

    def set_budget(self, total_timesteps: int) -> None:
        """Continue with a new budget of ``total_timesteps`` (the default of the next ``learn``)."""
        self.config = self.config.with_budget(total_timesteps=total_timesteps)

    # -- the loop's hooks ---------------------------------------------------------------
    @property
    def steps_per_update(self) -> int:
        """Env steps of one update over all ranks: n_steps × num_envs × W."""
        return self.config.batch_size * self.world_size

    def runner_shape(self) -> tuple[int, str]:
        return self.config.n_steps, self.config.vectorization

    def plan_run(self, total_timesteps: int | None) -> int:
        """floor(total/(nbatch·W)) updates (spec §7.2); fewer than one batch is refused."""
        total = int(total_timesteps or self.config.total_timesteps)
        if self.pending_resume is None and total // self.steps_per_update < 1:
            raise ValueError(f"total_timesteps {total} is less than one batch of all ranks ({self.steps_per_update})")
        return total

    def n_updates_planned(self, run: dict[str, Any]) -> int:
        return run["total_timesteps"] // self.steps_per_update

    def planned_total(self, run: dict[str, Any]) -> int | None:
        return run["start_timesteps"] + self.n_updates_planned(run) * self.steps_per_update

    def update_index(self, run: dict[str, Any]) -> int:
        """u of the coming update, 1-based within this run (the originals' ``for update in 1..nupdates``)."""
        return self.n_updates - run["updates_before"] + 1

    def budget_left(self, run: dict[str, Any], elapsed: float) -> bool:
        return self.update_index(run) <= self.n_updates_planned(run)

    def progress(self, update: int, n_updates: int, counted_steps: int) -> float:
        """frac = 1 − (u − 1)/nupdates (spec §7.2); with ``timestep_counting=episodes`` PPO1 [B]'s counter
        of completed-episode steps replaces the update count (row 10)."""
        if self.semantics.timestep_counting == "episodes":
            return max(1.0 - counted_steps / (n_updates * self.steps_per_update), 0.0)
        return progress_remaining(update, n_updates)

    def schedule(self, run: dict[str, Any]) -> UpdateSchedule:
        """lr(frac) and cliprange(frac), evaluated once per update before the rollout (spec §7.2)."""
        cfg = self.config
        frac = self.progress(self.update_index(run), self.n_updates_planned(run), run["counted"])
        lr = cfg.learning_rate(frac)
        clip, clip_vf = self.clip_ranges(cfg.cliprange(frac), lr / cfg.learning_rate(1.0), frac)
        return UpdateSchedule(lr, clip, clip_vf, position=frac)

    def count(self, run: dict[str, Any], episodes: list[tuple[float, int]]) -> None:
        """The completed-episode steps of every rank, for ``timestep_counting=episodes`` (row 10)."""
        run["counted"] += sum(length for _, length in episodes)

    def log_row(self, logger: Logger, run: dict[str, Any], schedule: UpdateSchedule, batch, losses: dict[str, float],
                result, episodes_this_iteration: int, times: IterationTimes) -> None:
        """The [SB] PPO2 keys (spec §9), plus the exact KL and the schedules' values. ``time_elapsed`` is
        read at the start of the update, as [B]/[SB] ppo2 log it (``tstart``)."""
        update = self.n_updates - run["updates_before"]
        logger.record("serial_timesteps", update * self.config.n_steps)
        logger.record("n_updates", self.n_updates)
        logger.record("total_timesteps", self.num_timesteps)
        logger.record("fps", int(self.steps_per_update / times.seconds))
        logger.record("explained_variance", explained_variance(batch.values, batch.returns))
        if self.tracker.returns:
            logger.record("ep_reward_mean", self.tracker.mean_return())
            logger.record("ep_len_mean", self.tracker.mean_length())
        elif self.log_keys != "sb":  # [B] safemean of no episodes is NaN; [SB] leaves the keys out
            logger.record("ep_reward_mean", float("nan"))
            logger.record("ep_len_mean", float("nan"))
        logger.record("time_elapsed", times.started)
        logger.record("policy_loss", losses["policy_loss"])
        logger.record("value_loss", losses["value_loss"])
        logger.record("policy_entropy", losses["entropy"])
        logger.record("approxkl", losses["approxkl"])
        logger.record("clipfrac", losses["clipfrac"])
        logger.record("kl", losses["kl"])
        logger.record("learning_rate", schedule.learning_rate)
        logger.record("cliprange", schedule.clip)
