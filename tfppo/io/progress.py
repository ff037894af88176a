"""The terminal progress bar: steps, env-steps/s, ep_reward_mean and ETA on one redrawn line (tqdm).

Only drawn when stdout is a terminal (the logger decides); in a file or a CI
log a redrawn line is noise. Lines printed while the bar is up (the stdout
table, health warnings) go through `write`, which clears the bar, prints the
text and redraws the bar below it, so the two never interleave.
"""
from __future__ import annotations

import math
import shutil
import sys
from typing import Any

REWARD_KEYS = ("ep_reward_mean", "EpRewMean")


class ProgressBar:
    def __init__(self, total: int, initial: int = 0) -> None:
        from tqdm import tqdm

        # A terminal that reports a 0×0 size (e.g. a detached pty) would make tqdm draw nothing at all.
        size = shutil.get_terminal_size((100, 20))
        self._bar = tqdm(total=int(total), initial=int(initial), unit="step", ncols=min(size.columns or 100, 120),
                         nrows=size.lines or 20, file=sys.stdout, smoothing=0.1)

    def update(self, current: int, row: dict[str, Any] | None = None) -> None:
        """Move to ``current`` steps (absolute) and show the last row's episode reward."""
        current = min(int(current), self._bar.total)
        reward = next((row[k] for k in REWARD_KEYS if row and k in row), None)
        if reward is not None and not math.isnan(reward):
            self._bar.set_postfix_str(f"ep_reward_mean={reward:.4g}", refresh=False)
        self._bar.update(current - self._bar.n)

    def write(self, text: str) -> None:
        self._bar.write(text.rstrip("\n"), file=sys.stdout)

    def close(self) -> None:
        self._bar.close()
