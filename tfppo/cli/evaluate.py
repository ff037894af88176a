"""``tfppo-evaluate`` / ``python -m tfppo.cli.evaluate``: mean ± std return of deterministic episodes of a
saved agent.

    tfppo-evaluate --load_path runs/demo-ppo2/model --episodes 10
"""
from __future__ import annotations

import sys

from tfppo.cli.common import OneLineParser, prog_name, run_guarded
from tfppo.util.errors import ConfigError


def main(argv: list[str] | None = None) -> int:
    parser = OneLineParser(prog=prog_name(), description=__doc__.splitlines()[0])
    parser.add_argument("--load_path", required=True, help="a checkpoint, or a run directory: its newest one")
    parser.add_argument("--episodes", type=int, default=10)
    parser.add_argument("--seed", type=int, default=12345, help="seed of the evaluation episodes")
    parser.add_argument("--stochastic", action="store_true", help="sample actions instead of the mode")
    parser.add_argument("--tf_verbose", action="store_true", help="show TensorFlow's start-up log lines")
    args = parser.parse_args(argv)
    if args.episodes <= 0:
        raise ConfigError(f"--episodes must be a positive integer, got {args.episodes}")
    from tfppo.training import checkpoint
    args.load_path = str(checkpoint.latest(args.load_path))  # a run directory: its newest checkpoint
    checkpoint.read_meta(args.load_path)

    from tfppo.util.console import start_tensorflow
    start_tensorflow(args.tf_verbose)
    import numpy as np

    import tfppo
    from tfppo.training.evaluation import evaluate

    agent = tfppo.load(args.load_path, verbose=0)
    returns = evaluate(agent, args.episodes, seed=args.seed, deterministic=not args.stochastic)
    print(f"{agent.config.env}: {np.mean(returns):.2f} ± {np.std(returns):.2f} over {len(returns)} "
          f"{'stochastic' if args.stochastic else 'deterministic'} episodes")
    return 0


def run() -> int:
    from tfppo.util.console import quiet

    quiet("--tf_verbose" in sys.argv)  # before anything imports TensorFlow
    return run_guarded(prog_name(), main)


if __name__ == "__main__":
    sys.exit(run())
