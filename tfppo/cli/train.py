"""What both trainer CLIs do once their flags are a config: agree over MPI ranks, start TensorFlow, build
or load the agent, learn, close. Written once so the two front ends cannot drift apart."""
from __future__ import annotations

import argparse
from typing import Any, Callable

from tfppo.cli.common import build_on_every_rank, prog_name
from tfppo.training import mpi


def train(args: argparse.Namespace, build_config: Callable[[argparse.Namespace], tuple], agent_name: str,
          default_log_dir: Callable[[Any, int], str]) -> int:
    """Validate on every rank (one-line errors before anything is built), then train ``tfppo.<agent_name>``
    (named, not passed: importing a trainer imports TensorFlow, which must wait until the flags are valid).

    Continuing from ``--load_path`` keeps the checkpoint's configuration and takes only the budget of the
    flags (`tfppo.cli.common.resume_config`); the counters so far count toward it."""
    config, semantics = build_on_every_rank(prog_name(), lambda: build_config(args))  # mpirun: all ranks agree
    comm = mpi.world()

    from tfppo.util.console import start_tensorflow
    start_tensorflow(args.tf_verbose)  # TF's native start-up lines are silenced unless --tf_verbose
    from tfppo.util.device import configure_tensorflow
    configure_tensorflow(rank=comm.Get_rank(), deterministic=not args.no_determinism,
                         threads=args.threads or (1 if comm.Get_size() > 1 else None), device=args.device)
    import tfppo

    options = dict(log_dir=args.log_dir or default_log_dir(config, comm.Get_size()), verbose=args.verbose,
                   log_keys=args.log_keys, log_interval=args.log_interval, xla=args.xla == "on",
                   mpi_gradients=args.mpi_gradients)
    if args.load_path:
        agent = tfppo.load(args.load_path, **options)
        agent.set_budget(**config.budget())
    else:
        hyperparameters = {k: v for k, v in config.to_dict().items() if k not in ("env", "preset")}
        agent = getattr(tfppo, agent_name)(config.env, preset=config.preset, semantics=semantics, **options, **hyperparameters)
    try:
        agent.learn(save_path=args.save_path, save_freq=args.save_freq, keep_checkpoints=args.keep_checkpoints,
                    eval_freq=args.eval_freq, eval_episodes=args.eval_episodes)
    finally:
        agent.close()
    if args.save_path and comm.Get_rank() == 0:
        print(f"saved {agent.last_checkpoint}")
    return 0
