"""Under mpirun -n 2: rank 1 holds different parameters; both sync checks must fail on every rank."""
import numpy as np

from tfppo.training import mpi

comm = mpi.world()
params = np.zeros(5, np.float32) + (1e-3 if comm.Get_rank() == 1 else 0.0)
checks = {"averager": lambda: mpi.GradientAverager(comm)(np.ones(5, np.float32), params),
          "replicator": lambda: mpi.BatchReplicator(comm).gather({"obs": np.ones(3)}, params)}
for name, check in checks.items():
    try:
        check()
    except mpi.RanksDivergedError as exc:
        print(f"{name} rank {comm.Get_rank()}: {exc}", flush=True)
