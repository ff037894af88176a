#!/usr/bin/env python
"""Evaluate a saved tfppo agent: mean ± std return of deterministic episodes.

    python scripts/evaluate.py --load_path runs/demo-ppo2/model --episodes 10
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tfppo.console import quiet  # noqa: E402

quiet("--tf_verbose" in sys.argv)  # before anything imports TensorFlow

from tfppo.cli import OneLineParser, run_guarded  # noqa: E402
from tfppo.errors import ConfigError  # noqa: E402

PROG = "evaluate.py"


def main() -> int:
    parser = OneLineParser(prog=PROG, description=__doc__.splitlines()[0])
    parser.add_argument("--load_path", required=True)
    parser.add_argument("--episodes", type=int, default=10)
    parser.add_argument("--seed", type=int, default=12345, help="seed of the evaluation episodes")
    parser.add_argument("--stochastic", action="store_true", help="sample actions instead of the mode")
    args = parser.parse_args()
    if args.episodes <= 0:
        raise ConfigError(f"--episodes must be a positive integer, got {args.episodes}")
    from tfppo import checkpoint
    args.load_path = str(checkpoint.latest(args.load_path))  # a run directory: its newest checkpoint
    checkpoint.read_meta(args.load_path)

    from tfppo.console import start_tensorflow
    start_tensorflow("--tf_verbose" in sys.argv)
    import numpy as np
    import tfppo
    from tfppo.evaluation import evaluate

    agent = tfppo.load(args.load_path, verbose=0)
    returns = evaluate(agent, args.episodes, seed=args.seed, deterministic=not args.stochastic)
    print(f"{agent.config.env}: {np.mean(returns):.2f} ± {np.std(returns):.2f} over {len(returns)} "
          f"{'stochastic' if args.stochastic else 'deterministic'} episodes")
    return 0


if __name__ == "__main__":
    sys.exit(run_guarded(PROG, main))
