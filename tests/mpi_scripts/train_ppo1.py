"""Under mpirun: a few PPO1 iterations; each rank saves its weights, policy obs statistics and update count.

A budget of ITERS + 1 iterations, but rank 0's callback stops training after ITERS updates (rank 1's never
does): rank 0's decision must end the loop on every rank together.

argv: OUT PRESET ITERS
"""
import sys

import numpy as np

import tfppo
from tfppo.training import mpi

out, preset, iters = sys.argv[1], sys.argv[2], int(sys.argv[3])
comm = mpi.world()
rank = comm.Get_rank()
agent = tfppo.PPO1("CartPole-v1", preset=preset, timesteps_per_actorbatch=128, optim_batchsize=32, optim_epochs=2,
                   schedule="constant", max_iters=iters + 1, seed=7, verbose=0)
observations = []
original_make_runner = agent.make_runner


def recording_runner(*args, **kwargs):
    runner = original_make_runner(*args, **kwargs)
    run = runner.run

    def run_and_record():
        rollout = run()
        observations.append(rollout.obs.reshape(-1, 4).copy())
        return rollout

    runner.run = run_and_record
    return runner


agent.make_runner = recording_runner
agent.learn(callback=(lambda cb: cb.agent.n_updates < iters) if rank == 0 else (lambda cb: None))
stats = agent.obs_stats
np.savez(f"{out}/rank{rank}.npz", *agent.model.get_weights(), obs=np.concatenate(observations),
         obs_mean=stats.mean if stats else np.zeros(4), obs_var=stats.var if stats else np.ones(4),
         model_obs_mean=agent.model.obs_mean.numpy() if stats else np.zeros(4),
         model_obs_std=agent.model.obs_std.numpy() if stats else np.ones(4),
         n_weights=len(agent.model.get_weights()), n_updates=agent.n_updates, iters_so_far=agent.iters_so_far)
