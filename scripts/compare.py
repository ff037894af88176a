#!/usr/bin/env python
"""PPO1 vs PPO2 on matched seeds: run a suite, then tables, plots and a report (= python -m comparisons).

    python scripts/compare.py run smoke
    python scripts/compare.py report runs/compare/smoke
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from comparisons.cli import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
