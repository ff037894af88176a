"""The comparison engine: PPO1 vs PPO2 on matched seeds, with honest statistics.

suite (what to run) -> runner (runs it, resumably) -> results (tidy DataFrames) -> stats
(rliable, scipy) -> tables / plots -> report. Each stage reads the previous stage's files.
``python -m tfppo.comparisons`` (= ``python scripts/compare.py``) is the command line.
"""
