#!/usr/bin/env python
"""Draw one run's curves to a PNG: ``python scripts/plot_run.py LOG_DIR [--out PNG]``.

The same as ``python -m tfppo.cli.plot`` (installed with ``pip install .``); see ``tfppo.cli.plot`` for the flags.
"""
import sys

from tfppo.cli.plot import run

if __name__ == "__main__":
    sys.exit(run())
