"""Under mpirun -n 2: rank 1 holds different parameters; the sync check must fail on every rank."""
import numpy as np

from tfppo import mpi

comm = mpi.world()
averager = mpi.GradientAverager(comm)
params = np.zeros(5, np.float32) + (1e-3 if comm.Get_rank() == 1 else 0.0)
try:
    averager(np.ones(5, np.float32), params)
except mpi.RanksDivergedError as exc:
    print(f"rank {comm.Get_rank()}: {exc}", flush=True)
