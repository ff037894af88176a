"""Running mean / variance, mergeable across batches and MPI ranks.

Why a class of its own: the same statistics drive three things — VecNormalize's
observation and return normalisers (spec §5.4) and PPO1's policy-side
observation filter, which must agree across MPI ranks. Keeping the maths here,
in float64 and without TensorFlow, makes it cheap to import, easy to test by
hand, and trivially JSON-serialisable for checkpoints.

The merge is the parallel-variance formula of Chan, Golub & LeVeque (1979):
for two groups (mean_a, var_a, n_a) and (mean_b, var_b, n_b) with
``delta = mean_b - mean_a`` and ``n = n_a + n_b``::

    mean = mean_a + delta * n_b / n
    var  = (var_a * n_a + var_b * n_b + delta**2 * n_a * n_b / n) / n

Variances are population variances (ddof 0), as in Baselines / SB.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from tfppo.util.errors import ConfigError

__all__ = ["RunningMeanStd"]


class RunningMeanStd:
    """Running mean/var with the parallel (Chan et al.) merge; float64.

    Initial mean 0, var 1, count ``epsilon`` (1e-4 by default): the
    Baselines/SB VecNormalize convention (spec §5.4). The tiny prior count keeps
    the first normalisation finite and is washed out by the first real batch.
    """

    def __init__(self, shape: tuple[int, ...] = (), epsilon: float = 1e-4) -> None:
        self.shape: tuple[int, ...] = tuple(int(d) for d in shape)
        self.mean: np.ndarray = np.zeros(self.shape, dtype=np.float64)
        self.var: np.ndarray = np.ones(self.shape, dtype=np.float64)
        self.count: float = float(epsilon)

    # ------------------------------------------------------------------ updates
    def _as_batch(self, x: np.ndarray) -> np.ndarray:
        """Return ``x`` as a float64 ``[batch, *shape]`` array, refusing silent broadcasts."""
        arr = np.asarray(x, dtype=np.float64)
        if arr.shape[1:] != self.shape:
            raise ValueError(
                f"RunningMeanStd of shape {self.shape} got a batch of shape {arr.shape}; "
                f"expected [batch, *{self.shape}]"
            )
        return arr

    def update(self, x: np.ndarray) -> None:
        """Fold a batch ``x`` of shape ``[batch, *shape]`` into the statistics.

        Uses the batch mean, the ddof-0 batch variance and the batch size, exactly
        as Baselines/SB ``RunningMeanStd.update`` (spec §5.4).
        """
        arr = self._as_batch(x)
        if arr.shape[0] == 0:
            return
        if arr.shape[0] == 1:
            # One env (VecNormalize under MuJoCo's single env) updates every step: a row's mean is the row and
            # its variance exactly 0, and skipping NumPy's reductions saves ~40 µs a step, bit for bit the same.
            self.update_from_moments(arr[0], np.zeros(self.shape), 1)
            return
        self.update_from_moments(arr.mean(axis=0), arr.var(axis=0), arr.shape[0])

    def update_from_moments(
        self, batch_mean: np.ndarray, batch_var: np.ndarray, batch_count: float
    ) -> None:
        """Merge a group summarised by (mean, ddof-0 var, count) — Chan et al. formula."""
        batch_mean = np.asarray(batch_mean, dtype=np.float64)
        batch_var = np.asarray(batch_var, dtype=np.float64)
        batch_count = float(batch_count)
        if batch_count <= 0.0:
            return
        delta = batch_mean - self.mean
        total = self.count + batch_count
        new_mean = self.mean + delta * (batch_count / total)
        m2 = (
            self.var * self.count
            + batch_var * batch_count
            + np.square(delta) * (self.count * batch_count / total)
        )
        self.mean = np.asarray(new_mean, dtype=np.float64).reshape(self.shape)
        self.var = np.asarray(m2 / total, dtype=np.float64).reshape(self.shape)
        self.count = float(total)

    def update_mpi(self, x: np.ndarray, comm: Any = None) -> None:
        """Fold every rank's batch into the statistics, identically on every rank.

        PPO1 keeps one observation normaliser per rank that must stay in lock-step
        (spec §5.4). Two float64 ``Allreduce`` sums are used — first (count, sum)
        to get the pooled batch mean, then the sum of squared deviations from that
        mean — which is the numerically stable two-pass form rather than
        ``sumsq/n - mean**2``. The pooled moments are then merged with the Chan
        formula, so the result equals ``update`` on the concatenation of all
        ranks' data. ``comm=None`` (or a single-rank comm) is plain ``update``.
        mpi4py is imported lazily so single-process users never load MPI.
        """
        if comm is None:
            self.update(x)
            return
        from mpi4py import MPI  # lazy: keep this module cheap without MPI

        arr = self._as_batch(x)
        size = int(np.prod(self.shape, dtype=np.int64))
        flat = arr.reshape(arr.shape[0], size)

        local = np.empty(size + 1, dtype=np.float64)
        local[0] = float(arr.shape[0])
        local[1:] = flat.sum(axis=0)
        pooled = np.empty_like(local)
        comm.Allreduce(local, pooled, op=MPI.SUM)
        total_count = pooled[0]
        if total_count <= 0.0:
            return
        batch_mean = pooled[1:] / total_count

        local_sq = np.square(flat - batch_mean).sum(axis=0).astype(np.float64)
        pooled_sq = np.empty_like(local_sq)
        comm.Allreduce(local_sq, pooled_sq, op=MPI.SUM)
        batch_var = pooled_sq / total_count

        self.update_from_moments(
            batch_mean.reshape(self.shape), batch_var.reshape(self.shape), total_count
        )

    # ------------------------------------------------------------ serialisation
    def state_dict(self) -> dict[str, list | float]:
        """JSON-serialisable snapshot (plain lists/floats) for checkpoints."""
        return {
            "shape": list(self.shape),
            "mean": np.asarray(self.mean, dtype=np.float64).tolist(),
            "var": np.asarray(self.var, dtype=np.float64).tolist(),
            "count": float(self.count),
        }

    def load_state_dict(self, state: dict) -> None:
        """Restore from :meth:`state_dict`; a shape mismatch is a ``ConfigError``.

        A mismatch means the checkpoint belongs to a different environment, which
        is a user error worth one clear line rather than a broadcasting surprise.
        """
        for key in ("mean", "var", "count"):
            if key not in state:
                raise ConfigError(
                    f"running statistics state is missing '{key}'; expected keys: mean, var, count"
                )
        mean = np.asarray(state["mean"], dtype=np.float64)
        var = np.asarray(state["var"], dtype=np.float64)
        for name, arr in (("mean", mean), ("var", var)):
            if arr.shape != self.shape:
                raise ConfigError(
                    f"running statistics '{name}' has shape {tuple(arr.shape)} "
                    f"but this environment needs shape {self.shape}"
                )
        count = float(state["count"])
        if not np.isfinite(count) or count <= 0.0:
            raise ConfigError(f"running statistics 'count' must be a positive number, got {count}")
        self.mean = mean.copy()
        self.var = var.copy()
        self.count = count

    def __repr__(self) -> str:
        return f"RunningMeanStd(shape={self.shape}, count={self.count:g})"
