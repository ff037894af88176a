#!/usr/bin/env python
"""Train PPO2: ``python scripts/ppo2.py --env CartPole-v1 --num_envs 8 --total_timesteps 100000``.

The same as ``tfppo-ppo2`` (installed with ``pip install .``); see ``tfppo.cli.ppo2`` for the flags.
"""
import sys

from tfppo.cli.ppo2 import run

if __name__ == "__main__":
    sys.exit(run())
