"""scripts/plot_run.py draws a PNG from a progress.csv; a missing log is one line, exit 2."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "scripts/plot_run.py", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=120, env=dict(os.environ, PYTHONPATH=str(ROOT)))


def test_plot_run_writes_a_png(tmp_path):
    rows = ["total_timesteps,ep_reward_mean,approxkl,diag/ratio_max,diag/ratio_mean,diag/grad_norm"]
    rows += [f"{128 * i},{10.0 * i},0.01,1.{i},1.0,0.5" for i in range(1, 6)]
    (tmp_path / "progress.csv").write_text("\n".join(rows) + "\n")
    proc = _run(str(tmp_path))
    assert proc.returncode == 0, proc.stderr
    png = tmp_path / "run.png"
    assert proc.stdout == f"wrote {png}\n"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 10_000


def test_plot_run_without_progress_csv_is_one_line(tmp_path):
    proc = _run(str(tmp_path))
    assert proc.returncode == 2
    assert proc.stderr == f"plot_run.py: error: {tmp_path} has no progress.csv (give the --log_dir of a tfppo run)\n"
