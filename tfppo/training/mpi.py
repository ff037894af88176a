"""MPI plumbing for PPO1 (spec §7.1, §8): one env per rank, gradients averaged.

* `BatchReplicator` (default for vector observations): every rank's batch and
  shuffles on every rank, once per update, so each rank computes the ranks'
  mean minibatch gradient itself inside one XLA update (`tfppo.core.learner`).
* `GradientAverager` (image policies): Allreduce-SUM / W of the flat float32
  gradient, called from inside the compiled update between gradient and apply
  ([B] MpiAdam with ``scale_grad_by_procs``).
* Both check that all ranks hold bit-identical parameters (MpiAdam
  ``check_synced``): the averager every 100 gradient steps, the replicator at
  every update.
* `broadcast_weights`: rank 0's parameters to every rank at start (``adam.sync()``).
* `allgather_episodes`, `mean_over_ranks`: episode statistics and logged losses.
* `abort_on_exception`: an exception on any rank prints once and calls
  ``MPI.Abort``, so the whole job ends instead of hanging in a collective.
* `check_same_config`: ranks started with different settings fail at start.
"""
from __future__ import annotations

import sys
import time
import traceback
from typing import Any

import numpy as np

SYNC_CHECK_EVERY = 100  # MpiAdam checks every 100 calls (spec §7.1)
ABORT_GRACE_SECONDS = 1.0


def _max_op():
    from mpi4py import MPI

    return MPI.MAX


def world():
    """MPI.COMM_WORLD (a singleton of size 1 when not started by mpirun)."""
    from mpi4py import MPI

    return MPI.COMM_WORLD


class RanksDivergedError(RuntimeError):
    """Parameters differ between ranks: the sync check failed."""


def check_synced(comm, flat_params: np.ndarray, where: str) -> None:
    """Rank 0 broadcasts its parameters; every rank learns the verdict, so all raise together."""
    root = comm.bcast(flat_params if comm.Get_rank() == 0 else None, root=0)
    diff = float(np.max(np.abs(root - flat_params))) if root.shape == flat_params.shape else float("inf")
    worst = comm.allreduce(diff, op=_max_op())
    if worst != 0.0:
        raise RanksDivergedError(f"MPI ranks diverged: parameters differ from rank 0 at {where} "
                                 f"(max |Δθ| = {worst:.3g})")


class GradientAverager:
    """The ``grad_reducer`` of `tfppo.core.learner.Learner` under MPI."""

    def __init__(self, comm):
        self.comm = comm
        self.calls = 0

    def __call__(self, flat_grad: np.ndarray, flat_params: np.ndarray) -> np.ndarray:
        from mpi4py import MPI

        if self.calls % SYNC_CHECK_EVERY == 0:
            check_synced(self.comm, flat_params, f"gradient step {self.calls}")
        self.calls += 1
        total = np.empty_like(flat_grad)
        self.comm.Allreduce(np.ascontiguousarray(flat_grad, dtype=np.float32), total, op=MPI.SUM)
        return total / np.float32(self.comm.Get_size())


class BatchReplicator:
    """The ``replicas`` of `tfppo.core.learner.Learner` under MPI: one allgather per update instead of one
    Allreduce per minibatch step (a host round trip out of the compiled update each)."""

    def __init__(self, comm):
        self.comm = comm
        self.count, self.index = comm.Get_size(), comm.Get_rank()
        self.calls = 0

    def gather(self, arrays: dict[str, np.ndarray], flat_params: np.ndarray) -> dict[str, np.ndarray]:
        check_synced(self.comm, flat_params, f"update {self.calls}")
        self.calls += 1
        every_rank = self.comm.allgather(arrays)
        return {k: np.stack([ranks_arrays[k] for ranks_arrays in every_rank]) for k in arrays}


def broadcast_weights(model, comm) -> None:
    """Rank 0's weights (trainable and not) onto every rank."""
    model.set_weights(comm.bcast(model.get_weights() if comm.Get_rank() == 0 else None, root=0))


def allgather_episodes(episodes: list[tuple[float, int]], comm) -> list[tuple[float, int]]:
    """Episodes completed this iteration on every rank, rank order ([B] allgather of lens/rets)."""
    return [episode for rank_episodes in comm.allgather(list(episodes)) for episode in rank_episodes]


def mean_over_ranks(values: dict[str, float], comm) -> dict[str, float]:
    """Average a dict of floats over ranks ([B] ``mpi_moments`` of the evaluation losses)."""
    keys = sorted(values)
    local = np.array([values[k] for k in keys], dtype=np.float64)
    total = np.empty_like(local)
    from mpi4py import MPI

    comm.Allreduce(local, total, op=MPI.SUM)
    return dict(zip(keys, (total / comm.Get_size()).tolist()))


def start_error(error: str | None, description: str, comm) -> str | None:
    """Agree at start: the first rank's validation error, or a config mismatch, or None.

    Every rank calls this (an allgather), so all of them learn the same verdict and
    can exit together before any collective of training could hang.
    """
    gathered = comm.allgather((error, description))
    errors = [err for err, _ in gathered if err]
    if errors:
        return errors[0]
    different = [rank for rank, (_, desc) in enumerate(gathered) if desc != gathered[0][1]]
    if different:
        return (f"MPI ranks {different} were started with a different configuration than rank 0; "
                f"every rank needs the same flags")
    return None


def check_same_config(description: dict[str, Any], comm) -> None:
    """Every rank must run the same configuration; otherwise the Allreduce counts differ."""
    from tfppo.util.errors import ConfigError

    error = start_error(None, repr(sorted(description.items())), comm)
    if error:
        raise ConfigError(error)


def abort_on_exception(comm, exit_code: int = 1) -> None:
    """Install an excepthook that prints the error once (from the failing rank) and aborts every rank."""
    if comm.Get_size() == 1:
        return

    def hook(exc_type, exc, tb) -> None:
        from tfppo.util.errors import ConfigError

        if issubclass(exc_type, ConfigError):
            sys.stderr.write(f"{sys.argv[0].rsplit('/', 1)[-1]}: error: {exc}\n")
            code = 2
        else:
            sys.stderr.write(f"[rank {comm.Get_rank()}] " + "".join(traceback.format_exception(exc_type, exc, tb)))
            code = exit_code
        sys.stderr.flush()
        time.sleep(ABORT_GRACE_SECONDS)  # let mpirun's I/O forwarder deliver the message before the kill
        comm.Abort(code)

    sys.excepthook = hook
