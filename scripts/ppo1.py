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
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from tfppo.cli import (EXIT_BAD_INPUT, OneLineParser, add_common_flags, check_run_flags,  # noqa: E402
                       network_overrides, resume_config, run_guarded)
from tfppo.config import BUDGETS, PPO1_PRESET_DEFAULTS, SCHEDULES, PPO1Config  # noqa: E402
from tfppo import mpi, zoo  # noqa: E402
from tfppo.errors import ConfigError  # noqa: E402
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

    if args.load_path:
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
    if from_zoo and mpi.world().Get_rank() == 0:
        print(f"tuned hyperparameters for {env} (tfppo/zoo.py): {', '.join(from_zoo)}", flush=True)
    semantics = get_preset(preset).with_overrides(args.semantics)
    if args.adam_epsilon is not None:
        semantics = semantics.replace(adam_epsilon=args.adam_epsilon)
    resolve_env(env)
    return config, semantics


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    comm = mpi.world()
    # Validate on every rank, then agree: rank 0 prints the first error once and all ranks exit 2
    # together, before anything is built or written (no rank is left waiting in a collective).
    try:
        config, semantics = build_config(args)
        error, description = None, repr((config.to_dict(), semantics and semantics.to_dict()))
    except ConfigError as exc:
        error, description = str(exc), ""
    error = mpi.start_error(error, description, comm)
    if error:
        if comm.Get_rank() == 0:
            sys.stderr.write(f"{PROG}: error: {' '.join(error.split())}\n")
        return EXIT_BAD_INPUT
    mpi.abort_on_exception(comm)

    from tfppo.device import configure_tensorflow
    configure_tensorflow(rank=comm.Get_rank(), deterministic=not args.no_determinism,
                         threads=args.threads or (1 if comm.Get_size() > 1 else None), device=args.device)
    import tfppo

    log_dir = args.log_dir or f"runs/ppo1/{config.env.replace(':', '_')}-seed{config.seed}-w{comm.Get_size()}"
    kwargs = {k: v for k, v in config.to_dict().items() if k not in ("env", "preset")}
    if args.load_path:
        agent = tfppo.load(args.load_path, log_dir=log_dir, verbose=args.verbose, xla=args.xla == "on")
        agent.config = config  # the checkpoint's config with the new budget
    else:
        agent = tfppo.PPO1(config.env, preset=config.preset, semantics=semantics, log_dir=log_dir,
                           verbose=args.verbose, xla=args.xla == "on", **kwargs)
    try:
        agent.learn(eval_freq=args.eval_freq, eval_episodes=args.eval_episodes)
    finally:
        agent.close()
    if args.save_path:
        saved = agent.save(args.save_path)  # collective: every rank sends its RNG states, rank 0 writes
        if saved is not None:
            print(f"saved {saved}")
    return 0


if __name__ == "__main__":
    sys.exit(run_guarded(PROG, main))
