"""What keeps a long run trustworthy, around both training loops: periodic atomic checkpoints with
exact resume, stop signals, the NaN/Inf guard and the training-health diagnostics.

The one loop (`tfppo.training.algorithm.Algorithm.learn`) uses it in four lines::

    with logger, self.run_control(logger, save_path, save_freq, keep_checkpoints) as control:
        ... result = self.learner.update(...)
        control.check(result)                          # NaN/Inf guard, before anything is logged or saved
        control.record(logger, rollout, batch, result) # diag/ keys and health warnings
        self._log(...)                                 # the trainer's own row; then:
        control.end_iteration()                        # periodic checkpoint, stop signals
    control.finish()                                   # final checkpoint (inside the with)

Exact resume (docs/long-runs.md): the envs' internal state cannot be saved, so at every periodic
checkpoint boundary the uninterrupted run re-seeds its envs exactly as a run resumed from that
checkpoint does (seed, global env index, updates so far; `Algorithm.restart_envs`). Everything else
that decides the future — weights, Adam slots and step, normalisers, RNG states of every env and rank,
episode windows, counters, schedule position, logged-row count — is in the checkpoint, so the resumed
run repeats the uninterrupted one bit for bit. The price: episodes in flight at a checkpoint
boundary are cut (not counted), once every ``save_freq`` steps, in both runs.
"""
from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import numpy as np

from tfppo.training import checkpoint, guards
from tfppo.training.health import HealthMonitor, diagnostics
from tfppo.core.rollout import explained_variance
from tfppo.training.signals import Interrupted, StopSignals

DEFAULT_KEEP = 2


def checkpoint_name(num_timesteps: int) -> str:
    return f"ckpt-{int(num_timesteps):012d}"


def prune(run_dir: Path, keep: int) -> None:
    """Delete all but the newest ``keep`` complete checkpoints. Each is renamed to a dot-name first,
    so a crash mid-delete leaves no half-deleted directory that still looks like a checkpoint."""
    for old in checkpoint.periodic_dirs(run_dir)[:-keep] if keep > 0 else []:
        trash = old.with_name(f".trash-{old.name}")
        old.rename(trash)
        shutil.rmtree(trash, ignore_errors=True)


class RunControl:
    """One `learn` call's checkpoint schedule, signal handlers, NaN guard and health monitor."""

    def __init__(self, agent, logger, *, save_path: str | None, save_freq: int, keep_checkpoints: int,
                 comm: Any = None):
        if save_freq < 0 or keep_checkpoints < 1:
            raise ValueError(f"save_freq must be >= 0 and keep_checkpoints >= 1, got {save_freq}, {keep_checkpoints}")
        self.agent, self.logger, self.comm = agent, logger, comm
        self.save_path = Path(save_path) if save_path else None
        self.save_freq = int(save_freq) if self.save_path else 0
        self.keep = int(keep_checkpoints)
        self.last_checkpoint: str | None = None
        found = checkpoint.periodic_dirs(self.save_path) if self.save_path else []
        if found:
            self.last_checkpoint = str(found[-1])
        self._bucket = agent.num_timesteps // self.save_freq if self.save_freq else 0
        self.signals = StopSignals()
        self.health = HealthMonitor()
        self._printing = agent.rank == 0 and agent.verbose > 0

    def __enter__(self) -> "RunControl":
        self.signals.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.signals.__exit__(*exc)

    # -- per update ------------------------------------------------------------------------
    def check(self, result) -> None:
        """NaN/Inf guard: stop before the bad step is used anywhere (exit 3 in the CLIs)."""
        guards.check_update(result, self.agent.n_updates + 1, self.last_checkpoint)

    def record(self, logger, rollout, batch, result) -> None:
        """Log the diag/ keys and print the health warnings that start at this update."""
        agent = self.agent
        counts = np.array([rollout.n_terminated, rollout.n_truncated], dtype=np.int64)
        if self.comm is not None and self.comm.Get_size() > 1:
            counts = self.comm.allreduce(counts)  # episodes of every rank, like EpThisIter
        log_std = getattr(agent.policy, "log_std", None)
        action_std = float(np.mean(np.exp(log_std.numpy()))) if log_std is not None else None
        row = diagnostics(result, batch, rollout, action_std=action_std,
                          explained_variance=explained_variance(batch.values, batch.returns),
                          terminated=int(counts[0]), truncated=int(counts[1]))
        for key, value in row.items():
            logger.record(key, value)
        warnings = self.health.check(agent.n_updates, {"approxkl": row["diag/approxkl"], "entropy": row["diag/entropy"],
                                                       "explained_variance": row["diag/explained_variance"]})
        if self._printing:
            for line in warnings:
                logger.write_line(line)

    def end_iteration(self) -> None:
        """After the row is logged: checkpoint when ``save_freq`` steps have passed, then act on a stop
        signal (agreed over MPI ranks: the largest signal number any rank received)."""
        agent = self.agent
        if self.save_freq and agent.num_timesteps // self.save_freq > self._bucket:
            self._bucket = agent.num_timesteps // self.save_freq
            self.save(complete=False)
            agent.restart_envs()  # what a run resumed from this checkpoint does first (module docstring)
        signum = self.signals.requested
        if self.comm is not None and self.comm.Get_size() > 1:
            signum = self.comm.allreduce(signum, op=_mpi_max())
        if signum:
            path = self.save(complete=False) if self.save_path else None
            raise Interrupted(signum, agent.n_updates, path)

    def finish(self) -> str | None:
        """The final checkpoint of a completed run (continuing it later starts a new budget)."""
        return self.save(complete=True) if self.save_path else None

    def save(self, *, complete: bool) -> str:
        """Collective under MPI (every rank's RNG states); rank 0 writes and prunes."""
        agent = self.agent
        agent.run_state.update(rows=self.logger.rows_written, complete=complete)
        path = self.save_path / checkpoint_name(agent.num_timesteps)
        agent.save(path)
        if agent.rank == 0:
            prune(self.save_path, self.keep)
        self.last_checkpoint = agent.last_checkpoint = str(path)
        return self.last_checkpoint


def _mpi_max():
    from mpi4py import MPI
    return MPI.MAX
