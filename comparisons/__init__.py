"""The comparison engine: PPO1 vs PPO2 on matched seeds, with honest statistics.

suite (what to run) -> runner (runs it, resumably) -> results (tidy DataFrames) -> stats
(rliable, scipy) -> tables / plots -> report. Each stage reads the previous stage's files.
``python -m tfppo.comparisons`` (= ``python scripts/compare.py``) is the command line.
"""
from pathlib import Path

SUITES_DIR = Path(__file__).resolve().parent / "suites"


def bundled_suites() -> list[str]:
    """The suite names ``run`` accepts without a path (here, not in `suite`, so the CLI's help lists them
    without importing pandas and pydantic)."""
    return sorted(p.stem for p in SUITES_DIR.glob("*.yaml"))
