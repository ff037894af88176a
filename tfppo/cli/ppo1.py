"""``tfppo-ppo1`` / ``python -m tfppo.cli.ppo1``: train PPO1 (one env per MPI rank, [B]/[SB] pposgd_simple).

    mpirun -n 4 tfppo-ppo1 --env CartPole-v1 --max_timesteps 200000 --seed 0
    tfppo-ppo1 --env Pendulum-v1 --preset baselines-ppo1 --max_timesteps 100000

Flags take pposgd_simple's names (spec §1.1-1.2). `build_config` validates every flag without TensorFlow or
an env; the comparison engine validates its suites with it.
"""
from __future__ import annotations

import sys

from tfppo.cli.common import (OneLineParser, add_common_flags, check_resume_matches, check_run_flags,
                              network_overrides, prog_name, resume_config)
from tfppo.cli.train import train
from tfppo.config import zoo
from tfppo.config.hyperparameters import check_feedforward_policy, BUDGETS, PPO1_PRESET_DEFAULTS, SCHEDULES, PPO1Config
from tfppo.config.semantics import Semantics, get_preset
from tfppo.envs.factory import resolve_env
from tfppo.training import mpi

DEFAULT_MAX_TIMESTEPS = 1_000_000  # when no budget flag is given ([SB] total_timesteps has no default)


def parse_args(argv: list[str] | None = None):
    parser = OneLineParser(prog=prog_name(), description=__doc__.splitlines()[0])
    add_common_flags(parser, list(PPO1_PRESET_DEFAULTS))
    parser.add_argument("--timesteps_per_actorbatch", type=int, default=None, help="T per worker")
    parser.add_argument("--clip_param", type=float, default=None)
    parser.add_argument("--entcoeff", type=float, default=None)
    parser.add_argument("--optim_epochs", type=int, default=None)
    parser.add_argument("--optim_stepsize", type=float, default=None)
    parser.add_argument("--optim_batchsize", type=int, default=None, help="B; 0 = full batch")
    parser.add_argument("--gamma", type=float, default=None)
    parser.add_argument("--lam", type=float, default=None)
    parser.add_argument("--adam_epsilon", type=float, default=None)
    parser.add_argument("--schedule", choices=SCHEDULES, default=None)
    for budget in BUDGETS:
        parser.add_argument(f"--{budget}", type=float if budget == "max_seconds" else int, default=None)
    parser.add_argument("--stop_at_budget", action="store_true",
                        help="with --max_timesteps: never run past it (stop after floor(max_timesteps/(W*T)) updates "
                             "even if Baselines' episode counter has not reached it; tfppo, off as in Baselines)")
    return parser.parse_args(argv)


def build_config(args) -> tuple[PPO1Config, Semantics | None]:
    """Validate every flag; returns (config, semantics) or raises ConfigError."""
    check_feedforward_policy(args.policy, "PPO1")
    check_run_flags(args)
    hyper = {name: getattr(args, name) for name in (
        "timesteps_per_actorbatch", "clip_param", "entcoeff", "optim_epochs", "optim_stepsize", "optim_batchsize",
        "gamma", "lam", "schedule", "seed", *BUDGETS)}
    hyper["stop_at_budget"] = args.stop_at_budget or None
    hyper["network"] = network_overrides(args)
    if args.load_path and not args.resume:
        given = dict(hyper, env=args.env, preset=args.preset, semantics=args.semantics,
                     adam_epsilon=args.adam_epsilon)
        config = resume_config(args.load_path, "ppo1", PPO1Config, given, BUDGETS)
        resolve_env(config.env)
        return config, None
    env = args.env or "CartPole-v1"
    preset = args.preset or "sb-ppo1"
    hyper, from_zoo = zoo.merge(hyper, "ppo1", env, enabled=not args.no_zoo and args.preset is None)
    if all(hyper[budget] is None for budget in BUDGETS):
        hyper["max_timesteps"] = DEFAULT_MAX_TIMESTEPS
    config = PPO1Config.create(env, preset, **hyper)
    if from_zoo and not args.resume and mpi.world().Get_rank() == 0:
        print(f"tuned hyperparameters for {env} (tfppo/zoo.py): {', '.join(from_zoo)}", flush=True)
    semantics = get_preset(preset).with_overrides(args.semantics)
    if args.adam_epsilon is not None:
        semantics = semantics.replace(adam_epsilon=args.adam_epsilon)
    resolve_env(env)
    if args.load_path:  # --resume found a checkpoint of this run
        check_resume_matches(args.load_path, config, semantics)
    return config, semantics


def default_log_dir(config: PPO1Config, world_size: int) -> str:
    return f"runs/ppo1/{config.env.replace(':', '_')}-seed{config.seed}-w{world_size}"


def main(argv: list[str] | None = None) -> int:
    return train(parse_args(argv), build_config, "PPO1", default_log_dir)


def run() -> int:
    """The console script: quiet TF start-up, one-line errors (`tfppo.cli.common.run_guarded`)."""
    from tfppo.cli.common import run_guarded
    from tfppo.util.console import quiet

    quiet("--tf_verbose" in sys.argv)  # before anything imports TensorFlow
    return run_guarded(prog_name(), main)


if __name__ == "__main__":
    sys.exit(run())
