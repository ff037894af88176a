"""``tfppo-ppo2`` / ``python -m tfppo.cli.ppo2``: train PPO2 (vectorised envs, [B]/[SB] ppo2).

    tfppo-ppo2 --env CartPole-v1 --num_envs 8 --n_steps 32 --nminibatches 1 --noptepochs 20 --lam 0.8 \
        --gamma 0.98 --learning_rate lin_1e-3 --cliprange lin_0.2 --ent_coef 0 --total_timesteps 100000 --seed 0
    mpirun -n 2 tfppo-ppo2 --env CartPole-v1 --num_envs 4   # N envs per rank, gradients averaged

Flags take [SB] PPO2's names (spec §1.3-1.4). `build_config` validates every flag without TensorFlow or an
env; the comparison engine validates its suites with it.
"""
from __future__ import annotations

import sys

from tfppo.cli.common import (OneLineParser, add_common_flags, check_resume_matches, check_run_flags,
                              network_overrides, optional_float, prog_name, resume_config)
from tfppo.cli.train import train
from tfppo.config import zoo
from tfppo.config.hyperparameters import PPO2_PRESET_DEFAULTS, PPO2Config
from tfppo.config.semantics import Semantics, get_preset
from tfppo.envs.factory import resolve_env
from tfppo.training import mpi

FROM_PRESET = object()  # --max_grad_norm not given: keep the preset's (None means no clipping)


def parse_args(argv: list[str] | None = None):
    parser = OneLineParser(prog=prog_name(), description=__doc__.splitlines()[0])
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
    parser.add_argument("--nlstm", type=int, default=None, help="LSTM units of --policy lstm/lnlstm (default 128)")
    return parser.parse_args(argv)


def build_config(args) -> tuple[PPO2Config, Semantics | None]:
    """Validate every flag without building anything; returns (config, semantics or None when
    continuing from --load_path) or raises ConfigError. `comparisons` validates suites with it."""
    check_run_flags(args)
    hyper = dict(num_envs=args.num_envs, vectorization=args.vectorization, n_steps=args.n_steps,
                 nminibatches=args.nminibatches, noptepochs=args.noptepochs, learning_rate=args.learning_rate,
                 cliprange=args.cliprange, cliprange_vf=args.cliprange_vf, ent_coef=args.ent_coef,
                 gamma=args.gamma, lam=args.lam, total_timesteps=args.total_timesteps, seed=args.seed,
                 network=network_overrides(args), policy=args.policy, nlstm=args.nlstm)

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


def default_log_dir(config: PPO2Config, world_size: int) -> str:
    return f"runs/ppo2/{config.env.replace(':', '_')}-seed{config.seed}"


def main(argv: list[str] | None = None) -> int:
    return train(parse_args(argv), build_config, "PPO2", default_log_dir)


def run() -> int:
    """The console script: quiet TF start-up, one-line errors (`tfppo.cli.common.run_guarded`)."""
    from tfppo.cli.common import run_guarded
    from tfppo.util.console import quiet

    quiet("--tf_verbose" in sys.argv)  # before anything imports TensorFlow
    return run_guarded(prog_name(), main)


if __name__ == "__main__":
    sys.exit(run())
