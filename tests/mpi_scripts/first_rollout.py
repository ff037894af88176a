"""Under mpirun: each PPO1 rank's first segment (equivalent preset) and initial weights -> OUT/rank{r}.npz."""
import sys

import numpy as np

import tfppo
from tfppo.training import mpi

out, env, steps = sys.argv[1], sys.argv[2], int(sys.argv[3])
rank = mpi.world().Get_rank()
agent = tfppo.PPO1(env, preset="equivalent", timesteps_per_actorbatch=steps, optim_batchsize=steps // 4,
                   max_iters=1, schedule="constant", seed=3, verbose=0)
weights = agent.model.get_weights()
rollout = agent.make_runner().run()
np.savez(f"{out}/rank{rank}.npz", *weights, obs=rollout.obs[:, 0], actions=rollout.actions[:, 0],
         rewards=rollout.rewards[:, 0], starts=rollout.episode_starts[:, 0], n_weights=len(weights))
