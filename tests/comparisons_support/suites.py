"""Small suite files for the comparison tests."""
from __future__ import annotations

import sys
from pathlib import Path

FAKE_TRAINER = Path(__file__).resolve().parent / "fake_trainer.py"

TINY_SUITE = """\
name: tiny
description: two variants on CartPole, fake trainer
seeds: 2
evaluation: {freq: 1000, episodes: 2}
envs:
  CartPole-v1:
    budget: 4000
    threshold: 150
    flags:
      ppo1: {timesteps_per_actorbatch: 256, optim_batchsize: 64}
      ppo2: {n_steps: 256, nminibatches: 4}
variants:
  ppo1: {trainer: ppo1, preset: baselines-ppo1, workers: 1}
  ppo2: {trainer: ppo2, preset: baselines-ppo2, num_envs: 1}
pairs:
  - [ppo1, ppo2]
"""


def write_suite(directory: Path, text: str = TINY_SUITE, name: str = "tiny.yaml") -> Path:
    path = Path(directory) / name
    path.write_text(text)
    return path


def fake_command(run, log_dir) -> list[str]:
    """Command factory: the fake trainer with the run's real script arguments."""
    return [sys.executable, str(FAKE_TRAINER), *run.script_args(log_dir)]
