"""Under mpirun -n 2: the same PPO1 run with each way of averaging gradients (`--mpi_gradients`), and a
Gaussian-policy run under the default (replicate, XLA on).

argv: OUT. Writes OUT/<case>-rank{r}.npz with the weights after training.
"""
import sys

import numpy as np

import tfppo
from tfppo.training import mpi

out = sys.argv[1]
rank = mpi.world().Get_rank()
cases = {
    mode: dict(env="CartPole-v1", preset="sb-ppo1", timesteps_per_actorbatch=128, optim_epochs=2, max_iters=3,
               seed=7, xla=False, mpi_gradients=mode)
    for mode in ("replicate", "allreduce")
}
# Each rank once compiled its own XLA module (the rank index was a graph constant) and the ranks drifted
# apart by ~1e-10 at the first update on Pendulum: this case stops with RanksDivergedError if they do.
cases["pendulum-xla"] = dict(env="Pendulum-v1", preset="baselines-ppo1", timesteps_per_actorbatch=256,
                             optim_epochs=4, max_iters=2, seed=0, xla=True, mpi_gradients="replicate")
for name, kwargs in cases.items():
    env = kwargs.pop("env")
    agent = tfppo.PPO1(env, optim_batchsize=32, schedule="constant", verbose=0, **kwargs)
    agent.learn()
    np.savez(f"{out}/{name}-rank{rank}.npz", *agent.model.get_weights())
