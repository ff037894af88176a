#!/usr/bin/env python
"""Evaluate a saved agent: ``python scripts/evaluate.py --load_path RUN_DIR --episodes 10``.

The same as ``tfppo-evaluate`` (installed with ``pip install .``); see ``tfppo.cli.evaluate`` for the flags.
"""
import sys

from tfppo.cli.evaluate import run

if __name__ == "__main__":
    sys.exit(run())
