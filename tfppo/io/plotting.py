"""One run's curves from its progress.csv, as a PNG (matplotlib imported lazily, Agg backend).

Kept apart from the trainers so `scripts/plot_run.py` (and `comparisons/` later) can redraw a
figure from saved logs without rerunning anything or importing TensorFlow.
"""
from __future__ import annotations

import math
import os
from pathlib import Path

import pandas as pd

from tfppo.io.log_keys import aliases
from tfppo.util.atomic import replacing
from tfppo.util.errors import ConfigError

# (title, candidate columns: the first present is drawn): the all-steps diag/ mean where it exists, then the
# quantity's names in either trainer's log (`tfppo.io.log_keys.aliases`)
PANELS = (
    ("episode reward (mean of last 100)", aliases("train_return")),
    ("episode length (mean of last 100)", aliases("episode_length")),
    ("approxkl", ("diag/approxkl", *aliases("approxkl"))),
    ("clip fraction", ("diag/clipfrac", *aliases("clipfrac"))),
    ("entropy", ("diag/entropy", *aliases("entropy"))),
    ("explained variance", ("diag/explained_variance", *aliases("explained_variance"))),
    ("importance ratio max / mean", ("diag/ratio_max", "diag/ratio_mean")),
    ("gradient global norm (before clipping)", ("diag/grad_norm",)),
    ("advantages raw mean / std", ("diag/adv_raw_mean", "diag/adv_raw_std")),
    ("action std (Box)", ("diag/action_std",)),
    ("episodes ended: terminated / truncated", ("diag/episodes_terminated", "diag/episodes_truncated")),
)
MULTI = {"importance ratio max / mean", "advantages raw mean / std", "episodes ended: terminated / truncated"}
X_KEYS = aliases("timesteps")


def read_progress(log_dir: str | os.PathLike) -> pd.DataFrame:
    path = Path(log_dir) / "progress.csv"
    if not path.is_file():
        raise ConfigError(f"{log_dir!s} has no progress.csv (give the --log_dir of a tfppo run)")
    frame = pd.read_csv(path)
    if frame.empty:
        raise ConfigError(f"{path} has no rows yet")
    return frame


def plot_run(log_dir: str | os.PathLike, out: str | os.PathLike | None = None) -> Path:
    """Draw every panel whose columns the run logged; returns the PNG path (default LOG_DIR/run.png)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    frame = read_progress(log_dir)
    x_key = next((k for k in X_KEYS if k in frame), None)
    x = frame[x_key] if x_key else pd.Series(range(1, len(frame) + 1))
    panels = []
    for title, keys in PANELS:
        present = [k for k in keys if k in frame and frame[k].notna().any()]
        if present:
            panels.append((title, present if title in MULTI else present[:1]))
    cols = 3
    rows = max(1, math.ceil(len(panels) / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(5 * cols, 3.2 * rows), squeeze=False)
    for ax, (title, keys) in zip(axes.flat, panels):
        for key in keys:
            ax.plot(x, frame[key], label=key, linewidth=1.2)
        ax.set_title(title, fontsize=10)
        ax.set_xlabel(x_key or "update")
        ax.grid(alpha=0.3)
        if len(keys) > 1:
            ax.legend(fontsize=8)
    for ax in list(axes.flat)[len(panels):]:
        ax.axis("off")
    fig.suptitle(str(log_dir), fontsize=11)
    fig.tight_layout(rect=(0, 0, 1, 0.97))
    out = Path(out) if out is not None else Path(log_dir) / "run.png"
    out.parent.mkdir(parents=True, exist_ok=True)
    with replacing(out) as tmp:  # a reader never sees half a PNG
        fig.savefig(tmp, dpi=100)
    plt.close(fig)
    return out
