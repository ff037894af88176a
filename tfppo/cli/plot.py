"""``python -m tfppo.cli.plot``: one run's curves (rewards, lengths, approxkl, health diagnostics) as a PNG.

    python -m tfppo.cli.plot runs/ppo2/CartPole-v1-seed0            # writes LOG_DIR/run.png
    python -m tfppo.cli.plot LOG_DIR --out curves.png
"""
from __future__ import annotations

import sys

from tfppo.cli.common import OneLineParser, prog_name, run_guarded


def main(argv: list[str] | None = None) -> int:
    parser = OneLineParser(prog=prog_name(), description=__doc__.splitlines()[0])
    parser.add_argument("log_dir", help="a run's --log_dir (holds progress.csv)")
    parser.add_argument("--out", default=None, help="PNG path (default LOG_DIR/run.png)")
    args = parser.parse_args(argv)
    from tfppo.io.plotting import plot_run

    print(f"wrote {plot_run(args.log_dir, args.out)}")
    return 0


def run() -> int:
    return run_guarded(prog_name(), main)


if __name__ == "__main__":
    sys.exit(run())
