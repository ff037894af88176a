"""``tfppo-evaluate`` / ``python -m tfppo.cli.evaluate``: mean ± std return of deterministic episodes of a
saved agent or of an exported policy; ``--export`` writes a checkpoint's policy for use without tfppo.

    tfppo-evaluate --load_path runs/demo-ppo2/model --episodes 10
    tfppo-evaluate --load_path runs/demo-ppo2/model --export runs/demo-ppo2/policy
    tfppo-evaluate --load_path runs/demo-ppo2/policy --episodes 10
"""
from __future__ import annotations

import itertools
import sys

from tfppo.cli.common import OneLineParser, prog_name, run_guarded
from tfppo.util.errors import ConfigError


def main(argv: list[str] | None = None) -> int:
    parser = OneLineParser(prog=prog_name(), description=__doc__.splitlines()[0])
    parser.add_argument("--load_path", required=True,
                        help="a checkpoint, a run directory (its newest one), or an exported SavedModel directory")
    parser.add_argument("--episodes", type=int, default=10)
    parser.add_argument("--seed", type=int, default=12345, help="seed of the evaluation episodes")
    parser.add_argument("--stochastic", action="store_true", help="sample actions instead of the mode")
    parser.add_argument("--export", metavar="PATH", help="write the checkpoint's policy to PATH and exit")
    parser.add_argument("--export_format", default="saved_model", help="saved_model (default), onnx or litert")
    parser.add_argument("--tf_verbose", action="store_true", help="show TensorFlow's start-up log lines")
    args = parser.parse_args(argv)
    if args.episodes <= 0:
        raise ConfigError(f"--episodes must be a positive integer, got {args.episodes}")
    from tfppo.training import checkpoint
    from tfppo.training.export_files import check_format, is_export, read_export_meta
    check_format(args.export_format, "--export_format")
    exported = is_export(args.load_path)
    if exported and args.export:
        raise ConfigError(f"--export needs a checkpoint; --load_path {args.load_path!r} is already an export")
    if exported:
        read_export_meta(args.load_path)
    else:
        args.load_path = str(checkpoint.latest(args.load_path))  # a run directory: its newest checkpoint
        checkpoint.read_meta(args.load_path)

    from tfppo.util.console import start_tensorflow
    start_tensorflow(args.tf_verbose)
    if exported:
        return evaluate_export(args)

    import tfppo
    from tfppo.training.evaluation import evaluate

    agent = tfppo.load(args.load_path, verbose=0)
    if args.export:
        path = agent.export(args.export, format=args.export_format)
        print(f"{agent.config.env}: policy written to {path} ({args.export_format})")
        return 0
    returns = evaluate(agent, args.episodes, seed=args.seed, deterministic=not args.stochastic)
    report(agent.config.env, returns, args.stochastic)
    return 0


def evaluate_export(args) -> int:
    """Episodes of an exported SavedModel on the env its ``tfppo-export.json`` names; ``--stochastic`` draws
    each step's actions with the next seed from ``--seed`` (the export's ``sample`` signature). A recurrent
    export's state is carried through each episode and reset at every reset."""
    from tfppo.envs.factory import resolve_env
    from tfppo.training.evaluation import play_episodes
    from tfppo.training.export import EpisodeActor, ExportedPolicy

    policy = ExportedPolicy(args.load_path)
    if policy.env is None:
        raise ConfigError(f"--load_path {args.load_path!r}: the export names no env id to evaluate it on")
    actor = EpisodeActor(policy, itertools.count(args.seed) if args.stochastic else None)
    returns, _ = play_episodes(resolve_env(policy.env)(), actor, args.episodes, seed=args.seed, on_reset=actor.reset)
    report(policy.env, returns, args.stochastic)
    return 0


def report(env: str, returns: list[float], stochastic: bool) -> None:
    import numpy as np

    print(f"{env}: {np.mean(returns):.2f} ± {np.std(returns):.2f} over {len(returns)} "
          f"{'stochastic' if stochastic else 'deterministic'} episodes")


def run() -> int:
    from tfppo.util.console import quiet

    quiet("--tf_verbose" in sys.argv)  # before anything imports TensorFlow
    return run_guarded(prog_name(), main)


if __name__ == "__main__":
    sys.exit(run())
