#!/usr/bin/env python
"""Train PPO1: ``mpirun -n 4 python scripts/ppo1.py --env CartPole-v1 --max_timesteps 200000``.

The same as ``tfppo-ppo1`` (installed with ``pip install .``); see ``tfppo.cli.ppo1`` for the flags.
"""
import sys

from tfppo.cli.ppo1 import run

if __name__ == "__main__":
    sys.exit(run())
