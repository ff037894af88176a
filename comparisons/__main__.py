"""``python -m tfppo.comparisons``: the comparison engine's command line (`tfppo.comparisons.cli`)."""
import sys

from tfppo.comparisons.cli import run

sys.exit(run())
