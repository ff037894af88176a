"""Command-line front ends: flags with the original names, one-line errors, exit code 2.

Every check runs before TensorFlow is imported, before any env is built and
before anything is written; a bad value prints ``<prog>: error: <one line>``
on stderr and exits with status 2, without a traceback.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any, Callable, NoReturn

from tfppo.util.errors import ConfigError

EXIT_BAD_INPUT = 2
DEFAULT_SAVE_FREQ = 50_000  # steps between periodic checkpoints when --save_path is given


def prog_name() -> str:
    """The name the user typed: ``tfppo-ppo2`` for the console script, ``ppo2.py`` for ``scripts/ppo2.py``
    or ``python -m tfppo.cli.ppo2`` — so an error line names the command that failed."""
    return Path(sys.argv[0]).name if sys.argv and sys.argv[0] else "tfppo"


class OneLineParser(argparse.ArgumentParser):
    """argparse whose errors are a single line (no usage block)."""

    def error(self, message: str) -> NoReturn:
        # Under mpirun every rank parses the same flags; only rank 0 prints the line.
        rank = os.environ.get("PMI_RANK", os.environ.get("OMPI_COMM_WORLD_RANK", "0"))
        self.exit(EXIT_BAD_INPUT, f"{self.prog}: error: {message}\n" if rank == "0" else None)


def _is_rank0() -> bool:
    return os.environ.get("PMI_RANK", os.environ.get("OMPI_COMM_WORLD_RANK", "0")) == "0"


def fail(prog: str, message: str) -> NoReturn:
    sys.stderr.write(f"{prog}: error: {' '.join(str(message).split())}\n")
    raise SystemExit(EXIT_BAD_INPUT)


def optional_float(text: str) -> float | None:
    """A number, or none/off (e.g. ``--max_grad_norm none``)."""
    if text.strip().lower() in ("none", "off", "null"):
        return None
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number or none, got {text!r}") from None


def hidden_sizes(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(x) for x in text.replace(" ", "").split(",") if x)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers like 64,64, got {text!r}") from None


def add_common_flags(parser: argparse.ArgumentParser, presets: list[str]) -> None:
    """Flags both trainers share: env, seed, preset, network, semantics, I/O."""
    parser.add_argument("--env", default=None, help="registered gymnasium id or module:Class (default CartPole-v1)")
    parser.add_argument("--seed", type=int, default=None, help="one seed for weights, envs, actions, shuffles")
    parser.add_argument("--preset", choices=presets, default=None, help="semantics and hyperparameter preset")
    parser.add_argument("--semantics", action="append", default=[], metavar="KEY=VALUE",
                        help="set any Semantics switch (repeatable), e.g. adv_norm=batch")
    parser.add_argument("--hidden_sizes", type=hidden_sizes, default=None, help="MLP sizes, e.g. 64,64")
    parser.add_argument("--activation", default=None, help="hidden activation: tanh or relu")
    parser.add_argument("--policy", default=None,
                        help="mlp (default), or PPO2's recurrent lstm / lnlstm ([SB] MlpLstmPolicy, MlpLnLstmPolicy; "
                             "on images [B] cnn_lstm, [SB] CnnLstmPolicy: the trunk follows the observations)")
    parser.add_argument("--policy_kwargs", default=None,
                        help='JSON, e.g. \'{"hidden_sizes": [64, 64], "activation": "tanh"}\'')
    parser.add_argument("--log_dir", default=None, help="progress.csv, TensorBoard, semantics.json")
    parser.add_argument("--save_path", default=None,
                        help="run directory: checkpoints ckpt-<steps> every --save_freq steps and at the end")
    parser.add_argument("--save_freq", type=int, default=DEFAULT_SAVE_FREQ,
                        help=f"steps between checkpoints under --save_path (0: only at the end; default {DEFAULT_SAVE_FREQ})")
    parser.add_argument("--keep_checkpoints", type=int, default=2, help="newest checkpoints kept (default 2)")
    parser.add_argument("--resume", action="store_true",
                        help="continue the run in --save_path from its newest checkpoint (start it if there is none)")
    parser.add_argument("--load_path", default=None,
                        help="checkpoint (or run directory: its newest checkpoint) to continue from")
    parser.add_argument("--tf_verbose", action="store_true", help="show TensorFlow's start-up log lines")
    parser.add_argument("--no_determinism", action="store_true", help="turn TF op determinism off")
    parser.add_argument("--no_zoo", action="store_true", help="ignore the env-tuned hyperparameters (tfppo/zoo.py; never used with --preset)")
    parser.add_argument("--verbose", type=int, default=1)
    parser.add_argument("--log_keys", default=None, help="log names: baselines|sb|both (default: the preset's library)")
    parser.add_argument("--log_interval", type=int, default=None,
                        help="print the stdout table every N updates (default 10 for Baselines PPO2 presets, else 1); "
                             "progress.csv and TensorBoard get every update")
    parser.add_argument("--eval_freq", type=int, default=0,
                        help="deterministic evaluation every N env steps on a separate env -> evaluations.csv (0: off)")
    parser.add_argument("--eval_episodes", type=int, default=10, help="episodes per evaluation")
    parser.add_argument("--threads", type=int, default=None,
                        help="TF intra- and inter-op threads (default: TF's choice; 1 per rank under mpirun)")
    parser.add_argument("--device", choices=("auto", "cpu", "gpu"), default="auto",
                        help="where the update runs (acting of MLPs stays NumPy on the CPU); auto: a GPU if TF sees one")
    parser.add_argument("--xla", choices=("on", "off"), default="on",
                        help="compile the whole update with XLA (default; same update up to float rounding)")
    parser.add_argument("--mpi_gradients", choices=("auto", "replicate", "allreduce"), default="auto",
                        help="under mpirun, how minibatch gradients are averaged: replicate (exchange batches once "
                             "per update, the update stays compiled) or allreduce (per step); auto: replicate, "
                             "allreduce for image policies")


def network_overrides(args: argparse.Namespace) -> dict[str, Any] | None:
    """--policy_kwargs JSON merged with --hidden_sizes/--activation; None when nothing was given."""
    network: dict[str, Any] = {}
    if args.policy_kwargs:
        try:
            network = dict(json.loads(args.policy_kwargs))
        except (ValueError, TypeError):
            raise ConfigError(f"--policy_kwargs must be a JSON object, got {args.policy_kwargs!r}") from None
        unknown = sorted(set(network) - {"hidden_sizes", "activation"})
        if unknown:
            raise ConfigError(f"--policy_kwargs key {unknown[0]!r} is unknown; allowed: hidden_sizes, activation")
    if args.hidden_sizes is not None:
        network["hidden_sizes"] = args.hidden_sizes
    if args.activation is not None:
        network["activation"] = args.activation
    if not network:
        return None
    from tfppo.config.hyperparameters import NetworkConfig
    defaults = NetworkConfig()
    return {"hidden_sizes": tuple(network.get("hidden_sizes", defaults.hidden_sizes)),
            "activation": network.get("activation", defaults.activation)}


def check_run_flags(args: argparse.Namespace) -> None:
    """The flags add_common_flags adds beyond the hyperparameters, one-line errors before anything runs;
    ``--resume`` becomes ``--load_path`` of the newest checkpoint under ``--save_path``."""
    if args.eval_freq < 0:
        raise ConfigError(f"--eval_freq must be >= 0 (0 turns evaluation off), got {args.eval_freq}")
    if args.eval_episodes <= 0:
        raise ConfigError(f"--eval_episodes must be a positive integer, got {args.eval_episodes}")
    if args.threads is not None and args.threads <= 0:
        raise ConfigError(f"--threads must be a positive integer, got {args.threads}")
    from tfppo.io import log_keys

    log_keys.check(args.log_keys, args.log_interval)
    if args.save_freq < 0:
        raise ConfigError(f"--save_freq must be an integer >= 0 (0: checkpoint only at the end), got {args.save_freq}")
    if args.keep_checkpoints < 1:
        raise ConfigError(f"--keep_checkpoints must be an integer >= 1, got {args.keep_checkpoints}")
    from tfppo.training import checkpoint

    if args.resume:
        if not args.save_path:
            raise ConfigError("--resume needs --save_path (the run directory to continue)")
        if args.load_path:
            raise ConfigError("--resume and --load_path are exclusive (--resume loads the newest checkpoint "
                              "under --save_path)")
        found = checkpoint.periodic_dirs(args.save_path)
        args.load_path = str(found[-1]) if found else None
    elif args.load_path:
        args.load_path = str(checkpoint.latest(args.load_path))


def check_resume_matches(load_path: str, config, semantics) -> None:
    """``--resume`` repeats the interrupted command: its flags must describe the checkpoint's run exactly
    (a scheduler re-queues the same line), else one line names the first setting that differs."""
    from tfppo.training import checkpoint

    meta = checkpoint.read_meta(load_path)
    norm = lambda d: json.loads(json.dumps(d, sort_keys=True))
    for kind, given, saved in (("", norm(config.to_dict()), meta["config"]),
                               ("semantics ", norm(semantics.to_dict()), meta["semantics"])):
        for key in sorted(set(given) | set(saved)):
            if given.get(key) != saved.get(key):
                raise ConfigError(f"--resume: {kind}{key} is {given.get(key)!r} but the run in {load_path} "
                                  f"used {saved.get(key)!r}; resume with the same flags")


def build_on_every_rank(prog: str, build: Callable[[], tuple]) -> tuple:
    """Validate on every MPI rank, then agree: rank 0 prints the first error (or a config mismatch)
    once and every rank exits 2 together, before anything is built or written, so no rank is left
    waiting in a collective. Returns ``build()``'s result; installs the abort-on-exception hook."""
    from tfppo.training import mpi

    comm = mpi.world()
    try:
        result = build()
        error, description = None, repr([getattr(part, "to_dict", lambda p=part: p)() for part in result])
    except ConfigError as exc:
        result, error, description = None, str(exc), ""
    error = mpi.start_error(error, description, comm)
    if error:
        if comm.Get_rank() == 0:
            sys.stderr.write(f"{prog}: error: {' '.join(error.split())}\n")
        raise SystemExit(EXIT_BAD_INPUT)
    mpi.abort_on_exception(comm)
    return result


def run_guarded(prog: str, main: Callable[[], int]) -> int:
    """Turn a ConfigError anywhere in ``main`` into the one-line error and exit 2; a stop signal into its
    one line and 128 + signal; a non-finite update into its one line and exit 3 (rank 0 prints)."""
    from tfppo.training.guards import EXIT_NONFINITE, NonFiniteError
    from tfppo.training.signals import Interrupted

    try:
        return main()
    except ConfigError as exc:
        fail(prog, str(exc))
    except Interrupted as exc:
        if _is_rank0():
            sys.stderr.write(f"{prog}: {exc}\n")
        return exc.exit_code
    except NonFiniteError as exc:
        if _is_rank0():
            sys.stderr.write(f"{prog}: error: {exc}\n")
        return EXIT_NONFINITE


def resume_config(load_path: str, algo: str, config_class, given: dict[str, Any], budgets: tuple[str, ...]):
    """The checkpoint's config for ``--load_path``; only the budget flags may change when continuing.

    Any other hyperparameter, preset or semantics flag would silently disagree with the
    saved network and optimiser state, so it is refused with a one-line error.
    """
    from tfppo.training import checkpoint

    meta = checkpoint.read_meta(load_path)
    if meta["algo"] != algo:
        raise ConfigError(f"--load_path {load_path!r} holds a {meta['algo']} checkpoint; this script needs {algo}")
    saved = dict(meta["config"])
    if given.get("env") not in (None, saved.get("env")):
        raise ConfigError(f"--env {given['env']} does not match the checkpoint's env {saved.get('env')}")
    changed = sorted(k for k, v in given.items() if v not in (None, [], False) and k not in (*budgets, "env"))
    if changed:
        raise ConfigError(f"--{changed[0]} cannot be changed when continuing from --load_path (only "
                          f"--{', --'.join(budgets)})")
    if any(given.get(b) is not None for b in budgets):
        saved.update({b: given.get(b) or 0 for b in budgets})
    try:
        return config_class.from_dict(saved)
    except (KeyError, TypeError) as exc:
        raise ConfigError(f"--load_path {load_path!r}: corrupt config in the checkpoint ({exc})") from None
