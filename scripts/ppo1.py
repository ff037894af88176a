#!/usr/bin/env python
"""Train PPO1 (one env per MPI rank, [B]/[SB] pposgd_simple semantics).

    mpirun -n 4 python scripts/ppo1.py --env CartPole-v1 --max_timesteps 200000 --seed 0
    python scripts/ppo1.py --env Pendulum-v1 --preset baselines-ppo1 --max_timesteps 100000
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tfppo.console import quiet  # noqa: E402

quiet("--tf_verbose" in sys.argv)  # before anything imports TensorFlow

from tfppo.cli import (OneLineParser, add_common_flags, build_on_every_rank, check_resume_matches,  # noqa: E402
                       check_run_flags, network_overrides, resume_config, run_guarded)
from tfppo.config import BUDGETS, PPO1_PRESET_DEFAULTS, SCHEDULES, PPO1Config  # noqa: E402
from tfppo import mpi, zoo  # noqa: E402
from tfppo.semantics import get_preset  # noqa: E402

PROG = "ppo1.py"
DEFAULT_MAX_TIMESTEPS = 1_000_000  # when no budget flag is given ([SB] total_timesteps has no default)


def parse_args(argv: list[str] | None = None):
    parser = OneLineParser(prog=PROG, description=__doc__.splitlines()[0])
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
    return parser.parse_args(argv)


def build_config(args) -> tuple[PPO1Config, object]:
    """Validate every flag; returns (config, semantics) or raises ConfigError."""
    check_run_flags(args)
    hyper = {name: getattr(args, name) for name in (
        "timesteps_per_actorbatch", "clip_param", "entcoeff", "optim_epochs", "optim_stepsize", "optim_batchsize",
        "gamma", "lam", "schedule", "seed", *BUDGETS)}
    hyper["network"] = network_overrides(args)
    from tfppo.envs import resolve_env

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


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    config, semantics = build_on_every_rank(PROG, lambda: build_config(args))
    comm = mpi.world()

    from tfppo.console import start_tensorflow
    start_tensorflow(args.tf_verbose)  # TF's native start-up lines are silenced unless --tf_verbose
    from tfppo.device import configure_tensorflow
    configure_tensorflow(rank=comm.Get_rank(), deterministic=not args.no_determinism,
                         threads=args.threads or (1 if comm.Get_size() > 1 else None), device=args.device)
    import tfppo

    log_dir = args.log_dir or f"runs/ppo1/{config.env.replace(':', '_')}-seed{config.seed}-w{comm.Get_size()}"
    kwargs = {k: v for k, v in config.to_dict().items() if k not in ("env", "preset")}
    if args.load_path:
        agent = tfppo.load(args.load_path, log_dir=log_dir, verbose=args.verbose, log_keys=args.log_keys,
                           log_interval=args.log_interval, xla=args.xla == "on",
                           mpi_gradients=args.mpi_gradients)
        agent.config = config  # the checkpoint's config with the new budget
    else:
        agent = tfppo.PPO1(config.env, preset=config.preset, semantics=semantics, log_dir=log_dir,
                           verbose=args.verbose, log_keys=args.log_keys, log_interval=args.log_interval,
                           xla=args.xla == "on",
                           mpi_gradients=args.mpi_gradients, **kwargs)
    try:
        agent.learn(save_path=args.save_path, save_freq=args.save_freq, keep_checkpoints=args.keep_checkpoints,
                    eval_freq=args.eval_freq, eval_episodes=args.eval_episodes)
    finally:
        agent.close()
    if args.save_path and comm.Get_rank() == 0:
        print(f"saved {agent.last_checkpoint}")
    return 0


if __name__ == "__main__":
    sys.exit(run_guarded(PROG, main))
