"""A resumed run's logs continue the killed run's: no duplicated or missing rows/steps; the tqdm bar."""
from __future__ import annotations

import csv
import io
import sys

from tfppo.io.logger import Logger


def _write(log_dir, steps, resume=None):
    with Logger(log_dir, stdout=False, resume=resume) as logger:
        for step in steps:
            logger.record("x", step * 10)
            logger.record("step", step)
            logger.dump(step)
        return logger.rows_written


def test_csv_keeps_the_checkpointed_rows_and_drops_the_killed_tail(tmp_path):
    _write(tmp_path, [1, 2, 3, 4, 5])  # the killed run got to row 5; its checkpoint was after row 3
    assert _write(tmp_path, [4, 5, 6], resume=(3, 3)) == 6
    with open(tmp_path / "progress.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert [row["step"] for row in rows] == ["1", "2", "3", "4", "5", "6"]
    assert [row["x"] for row in rows] == ["10", "20", "30", "40", "50", "60"]


def test_tensorboard_keeps_each_step_once(tmp_path):
    import tensorflow as tf

    _write(tmp_path, [1, 2, 3, 4, 5])
    _write(tmp_path, [4, 5, 6], resume=(3, 3))
    files = sorted((tmp_path / "tb").glob("events.out.tfevents.*"))
    assert len(files) == 1  # the old file was carried over and removed
    steps = [e.step for e in tf.compat.v1.train.summary_iterator(str(files[0]))
             for v in e.summary.value if v.tag == "x"]
    assert steps == [1, 2, 3, 4, 5, 6]


def test_progress_bar_shows_steps_and_reward(monkeypatch, tmp_path):
    out = io.StringIO()
    out.isatty = lambda: True
    monkeypatch.setattr(sys, "stdout", out)
    with Logger(tmp_path, stdout=False, total_timesteps=100) as logger:
        logger.record("ep_reward_mean", 42.5)
        logger.dump(50)
        logger.advance(50)
    text = out.getvalue()
    assert "50/100" in text and "step/s" in text and "ep_reward_mean=42.5" in text
