#!/usr/bin/env python
"""PPO1 vs PPO2 on matched seeds: ``python scripts/compare.py run smoke``, then ``report runs/compare/smoke``.

The same as ``tfppo-compare`` (installed with ``pip install .``); see ``tfppo.comparisons.cli`` for the flags.
"""
import sys

from tfppo.comparisons.cli import run

if __name__ == "__main__":
    sys.exit(run())
