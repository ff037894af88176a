#!/usr/bin/env python
"""Draw one run's curves (rewards, lengths, approxkl and the health diagnostics) to a PNG.

    python scripts/plot_run.py runs/ppo2/CartPole-v1-seed0            # writes LOG_DIR/run.png
    python scripts/plot_run.py LOG_DIR --out curves.png
"""
from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tfppo.cli import OneLineParser, run_guarded  # noqa: E402

PROG = "plot_run.py"


def main() -> int:
    parser = OneLineParser(prog=PROG, description=__doc__.splitlines()[0])
    parser.add_argument("log_dir", help="a run's --log_dir (holds progress.csv)")
    parser.add_argument("--out", default=None, help="PNG path (default LOG_DIR/run.png)")
    args = parser.parse_args()
    from tfppo.plotting import plot_run

    print(f"wrote {plot_run(args.log_dir, args.out)}")
    return 0


if __name__ == "__main__":
    sys.exit(run_guarded(PROG, main))
