"""Under mpirun: PPO2 with N envs per rank. Saves each rank's first rollout (before any update) and its
weights after ITERS updates, then the same for the recurrent policy (lstm, 2 updates) to rank{r}-lstm.npz
with its weights before training. argv: OUT NUM_ENVS ITERS"""
import sys

import numpy as np

import tfppo
from tfppo.training import mpi

out, num_envs, iters = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
comm = mpi.world()
rank = comm.Get_rank()
agent = tfppo.PPO2("CartPole-v1", preset="sb-ppo2", num_envs=num_envs, n_steps=32, nminibatches=2, noptepochs=2,
                   seed=5, verbose=0)
first = agent.make_runner().run()  # the env and action streams of this rank
agent.close()
agent.learn(32 * num_envs * comm.Get_size() * iters)
np.savez(f"{out}/rank{rank}.npz", *agent.model.get_weights(), n_weights=len(agent.model.get_weights()),
         obs=first.obs, actions=first.actions, num_timesteps=agent.num_timesteps, n_updates=agent.n_updates,
         episodes=len(agent.tracker.returns))

# [B] ppo2 with an lstm policy: minibatches of whole env sequences, gradients averaged over the ranks
lstm = tfppo.PPO2("CartPole-v1", preset="sb-ppo2", policy="lstm", nlstm=8, num_envs=num_envs, n_steps=16,
                  nminibatches=2, noptepochs=2, seed=6, verbose=0)
initial = lstm.model.get_weights()
lstm_first = lstm.make_runner().run()
lstm.close()
lstm.learn(16 * num_envs * comm.Get_size() * 2)
np.savez(f"{out}/rank{rank}-lstm.npz", *lstm.model.get_weights(), *initial, n_weights=len(initial),
         obs=lstm_first.obs, n_updates=lstm.n_updates)
