"""A CartPole that raises on MPI rank 1 after 50 steps: one failing rank must end the whole job."""
import os

from gymnasium.envs.classic_control.cartpole import CartPoleEnv


class ExplodingCartPole(CartPoleEnv):
    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.steps = 0

    def step(self, action):
        self.steps += 1
        if os.environ.get("PMI_RANK") == "1" and self.steps > 50:
            raise RuntimeError("boom on rank 1")
        return super().step(action)
