"""Under mpirun -n 2: the same PPO1 run with each way of averaging gradients (`--mpi_gradients`).

argv: OUT. Writes OUT/<mode>-rank{r}.npz with the weights after 3 iterations.
"""
import sys

import numpy as np

import tfppo
from tfppo import mpi

out = sys.argv[1]
rank = mpi.world().Get_rank()
for mode in ("replicate", "allreduce"):
    agent = tfppo.PPO1("CartPole-v1", preset="sb-ppo1", timesteps_per_actorbatch=128, optim_batchsize=32,
                       optim_epochs=2, schedule="constant", max_iters=3, seed=7, verbose=0, xla=False,
                       mpi_gradients=mode)
    agent.learn()
    np.savez(f"{out}/{mode}-rank{rank}.npz", *agent.model.get_weights())
