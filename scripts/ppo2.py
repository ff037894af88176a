#!/usr/bin/env python
"""Train PPO2 (vectorised envs, [B]/[SB] ppo2 semantics).

    python scripts/ppo2.py --env CartPole-v1 --num_envs 8 --n_steps 32 --nminibatches 1 \
        --noptepochs 20 --lam 0.8 --gamma 0.98 --learning_rate lin_1e-3 --cliprange lin_0.2 \
        --ent_coef 0 --total_timesteps 100000 --seed 0
    mpirun -n 2 python scripts/ppo2.py --env CartPole-v1 --num_envs 4   # N envs per rank, gradients averaged
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tfppo.console import quiet  # noqa: E402

quiet("--tf_verbose" in sys.argv)  # before anything imports TensorFlow

from tfppo.cli import (OneLineParser, add_common_flags, build_on_every_rank, check_resume_matches,  # noqa: E402
                       check_run_flags, network_overrides, optional_float, resume_config, run_guarded)
from tfppo.config import PPO2_PRESET_DEFAULTS, PPO2Config  # noqa: E402
from tfppo import mpi, zoo  # noqa: E402
from tfppo.semantics import get_preset  # noqa: E402

PROG = "ppo2.py"
FROM_PRESET = object()  # --max_grad_norm not given: keep the preset's (None means no clipping)


def parse_args(argv: list[str] | None = None):
    parser = OneLineParser(prog=PROG, description=__doc__.splitlines()[0])
    add_common_flags(parser, list(PPO2_PRESET_DEFAULTS))
    parser.add_argument("--num_envs", type=int, default=None, help="vectorised envs in this process (default 1)")
    parser.add_argument("--vectorization", default=None, help="sync or async (subprocess) vector env")
    parser.add_argument("--n_steps", type=int, default=None)
    parser.add_argument("--nminibatches", type=int, default=None)
    parser.add_argument("--noptepochs", type=int, default=None)
    parser.add_argument("--learning_rate", default=None, help="float or lin_<float>")
    parser.add_argument("--cliprange", default=None, help="float or lin_<float>")
    parser.add_argument("--cliprange_vf", default=None, help="unset: = cliprange; <0: no value clip; >0: separate")
    parser.add_argument("--ent_coef", type=float, default=None)
    parser.add_argument("--vf_coef", type=float, default=None)
    parser.add_argument("--max_grad_norm", type=optional_float, default=FROM_PRESET, help="float or none")
    parser.add_argument("--gamma", type=float, default=None)
    parser.add_argument("--lam", type=float, default=None)
    parser.add_argument("--total_timesteps", type=int, default=None)
    return parser.parse_args(argv)


def build_config(args) -> tuple[PPO2Config, object]:
    """Validate every flag without building anything; returns (config, semantics or None when
    continuing from --load_path) or raises ConfigError. `comparisons` validates suites with it."""
    check_run_flags(args)
    hyper = dict(num_envs=args.num_envs, vectorization=args.vectorization, n_steps=args.n_steps,
                 nminibatches=args.nminibatches, noptepochs=args.noptepochs, learning_rate=args.learning_rate,
                 cliprange=args.cliprange, cliprange_vf=args.cliprange_vf, ent_coef=args.ent_coef,
                 gamma=args.gamma, lam=args.lam, total_timesteps=args.total_timesteps, seed=args.seed,
                 network=network_overrides(args))
    from tfppo.envs import resolve_env

    if args.load_path and not args.resume:
        given = dict(hyper, env=args.env, preset=args.preset, semantics=args.semantics, vf_coef=args.vf_coef,
                     max_grad_norm=None if args.max_grad_norm is FROM_PRESET else args.max_grad_norm)
        config = resume_config(args.load_path, "ppo2", PPO2Config, given, ("total_timesteps",))
        resolve_env(config.env)
        return config, None
    env = args.env or "CartPole-v1"
    preset = args.preset or "sb-ppo2"
    hyper, from_zoo = zoo.merge(hyper, "ppo2", env, enabled=not args.no_zoo and args.preset is None)
    config = PPO2Config.create(env, preset, **hyper)  # validates every flag
    semantics = config.resolve_semantics(get_preset(preset).with_overrides(args.semantics))
    if args.vf_coef is not None:
        semantics = semantics.replace(vf_coef=args.vf_coef)
    if args.max_grad_norm is not FROM_PRESET:
        semantics = semantics.replace(max_grad_norm=args.max_grad_norm)
    if args.load_path:  # --resume found a checkpoint of this run
        check_resume_matches(args.load_path, config, semantics)
    resolve_env(env)  # unknown env / missing extra: one line, before anything is built
    if from_zoo and not args.resume and mpi.world().Get_rank() == 0:  # after validation: an error line comes first
        print(f"tuned hyperparameters for {env} (tfppo/zoo.py): {', '.join(from_zoo)}", flush=True)
    return config, semantics


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    config, semantics = build_on_every_rank(PROG, lambda: build_config(args))  # mpirun: all ranks agree
    env, preset = config.env, config.preset
    comm = mpi.world()

    from tfppo.console import start_tensorflow
    start_tensorflow(args.tf_verbose)  # TF's native start-up lines are silenced unless --tf_verbose
    from tfppo.device import configure_tensorflow
    configure_tensorflow(rank=comm.Get_rank(), deterministic=not args.no_determinism,
                         threads=args.threads or (1 if comm.Get_size() > 1 else None), device=args.device)
    import tfppo

    log_dir = args.log_dir or f"runs/ppo2/{env.replace(':', '_')}-seed{config.seed}"
    if args.load_path:
        agent = tfppo.load(args.load_path, log_dir=log_dir, verbose=args.verbose, log_keys=args.log_keys,
                           log_interval=args.log_interval, xla=args.xla == "on",
                           mpi_gradients=args.mpi_gradients)
    else:
        agent = tfppo.PPO2(env, preset=preset, semantics=semantics, log_dir=log_dir, verbose=args.verbose,
                           log_keys=args.log_keys, log_interval=args.log_interval, xla=args.xla == "on",
                           mpi_gradients=args.mpi_gradients,
                           **{k: v for k, v in config.to_dict().items() if k not in ("env", "preset")})
    try:
        agent.learn(config.total_timesteps, save_path=args.save_path, save_freq=args.save_freq,
                    keep_checkpoints=args.keep_checkpoints, eval_freq=args.eval_freq, eval_episodes=args.eval_episodes)
    finally:
        agent.close()
    if args.save_path and comm.Get_rank() == 0:
        print(f"saved {agent.last_checkpoint}")
    return 0


if __name__ == "__main__":
    sys.exit(run_guarded(PROG, main))
