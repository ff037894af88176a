"""Tests for tfppo.io.logger: CSV, stdout table, TensorBoard, progress bar, no-op mode."""

from __future__ import annotations

import math
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tfppo.io.logger import Logger, format_table


def _files(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*"))


def test_two_dumps_round_trip_through_pandas(tmp_path: Path) -> None:
    log_dir = tmp_path / "run"
    with Logger(log_dir, stdout=False, tensorboard=False) as logger:
        logger.record("loss", 0.5)
        logger.record("timesteps", 128)
        assert logger.dump(step=1) == {"loss": 0.5, "timesteps": 128}
        logger.record("loss", 0.25)
        logger.record("timesteps", 256)
        logger.dump(step=2)

    df = pd.read_csv(log_dir / "progress.csv")
    assert list(df.columns) == ["loss", "timesteps"]
    assert df["loss"].tolist() == [0.5, 0.25]
    assert df["timesteps"].tolist() == [128, 256]


def test_new_key_extends_header_atomically(tmp_path: Path) -> None:
    with Logger(tmp_path, stdout=False, tensorboard=False) as logger:
        logger.record("b", 1.0)
        logger.dump(step=0)
        logger.record("b", 2.0)
        logger.record("a", 3.0)  # sorts before the existing column
        logger.dump(step=1)
        logger.record("b", 4.0)  # a row without "a" after the rewrite
        logger.dump(step=2)

    df = pd.read_csv(tmp_path / "progress.csv")
    assert list(df.columns) == ["a", "b"]
    assert math.isnan(df["a"][0]) and df["a"][1] == 3.0 and math.isnan(df["a"][2])
    assert df["b"].tolist() == [1.0, 2.0, 4.0]
    assert _files(tmp_path) == ["progress.csv"]  # no temp file left behind
    (tmp_path / "fresh").touch()  # the rewrite keeps the umask mode, not mkstemp's 0600
    assert (tmp_path / "progress.csv").stat().st_mode == (tmp_path / "fresh").stat().st_mode


def test_record_overwrites_and_a_dump_clears_the_row(tmp_path: Path) -> None:
    logger = Logger(None, stdout=False)
    logger.record("lr", 1e-3)
    logger.record("lr", 2e-3)
    logger.record("kl", 3.0)
    assert logger.dump(step=0) == {"kl": 3.0, "lr": 2e-3}
    logger.record("kl", 10.0)  # the row starts empty after a dump
    assert logger.dump(step=1) == {"kl": 10.0}
    assert logger.dump(step=2) == {}  # nothing recorded -> nothing written


def test_numpy_scalars_written_as_plain_numbers(tmp_path: Path) -> None:
    with Logger(tmp_path, stdout=False, tensorboard=False) as logger:
        logger.record("f32", np.float32(0.5))
        logger.record("i64", np.int64(7))
        logger.record("nan", float("nan"))
        logger.record("m", np.float64(2.0))
        row = logger.dump(step=0)
    assert type(row["f32"]) is float and type(row["i64"]) is int and type(row["m"]) is float
    text = (tmp_path / "progress.csv").read_text()
    assert text.splitlines() == ["f32,i64,m,nan", "0.5,7,2.0,nan"]
    df = pd.read_csv(tmp_path / "progress.csv")
    assert df["i64"][0] == 7 and math.isnan(df["nan"][0])


def test_rejects_non_numeric_values() -> None:
    logger = Logger(None, stdout=False)
    with pytest.raises(TypeError, match="'name'"):
        logger.record("name", "CartPole")  # type: ignore[arg-type]


def test_stdout_table(capsys: pytest.CaptureFixture[str]) -> None:
    logger = Logger(None)
    logger.record("policy_loss", -0.012345)
    logger.record("total_timesteps", 100000)
    logger.record("a" * 40, 1.0)
    logger.dump(step=0)
    out = capsys.readouterr().out
    lines = out.splitlines()
    long_key = "a" * 27 + "..."
    assert lines[0] == lines[-1] == "-" * len(lines[1]) and set(lines[0]) == {"-"}
    assert lines[1:-1] == [
        f"| {long_key} | 1        |",
        f"| {'policy_loss':<30} | -0.0123  |",
        f"| {'total_timesteps':<30} | 100000   |",
    ]
    assert out == format_table({"policy_loss": -0.012345, "total_timesteps": 100000, "a" * 40: 1.0})


def test_stdout_false_prints_nothing(capsys: pytest.CaptureFixture[str]) -> None:
    logger = Logger(None, stdout=False)
    logger.record("x", 1.0)
    logger.dump(step=0)
    assert capsys.readouterr().out == ""


def test_tensorboard_scalars(tmp_path: Path) -> None:
    import tensorflow as tf
    from tensorflow.core.util import event_pb2

    with Logger(tmp_path, stdout=False, csv=False) as logger:
        logger.record("loss/value", 0.25)
        logger.record("steps", np.int64(64))
        logger.dump(step=3)
        events = list((tmp_path / "tb").glob("events.out.tfevents.*"))
        assert len(events) == 1  # flushed at dump, before close
        logger.record("loss/value", 0.5)
        logger.dump(step=4)

    seen = {}
    for record in tf.data.TFRecordDataset(str(events[0])):
        event = event_pb2.Event.FromString(record.numpy())
        for value in event.summary.value:
            assert value.metadata.plugin_data.plugin_name == "scalars"
            seen[(value.tag, event.step)] = float(tf.make_ndarray(value.tensor))
    assert seen == {("loss/value", 3): 0.25, ("steps", 3): 64.0, ("loss/value", 4): 0.5}
    assert not (tmp_path / "progress.csv").exists()


def test_disabled_is_a_no_op(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    log_dir = tmp_path / "rank1"
    with Logger(log_dir, enabled=False, total_timesteps=100) as logger:
        logger.record("x", 1.0)
        logger.advance(50)
        assert logger.dump(step=0) == {}
    assert not log_dir.exists()
    assert capsys.readouterr().out == ""


def test_nothing_written_before_first_dump(tmp_path: Path) -> None:
    log_dir = tmp_path / "a" / "b"
    logger = Logger(log_dir, stdout=False)
    logger.record("x", 1.0)
    assert not log_dir.exists()
    logger.close()
    assert not log_dir.exists()


def test_no_log_dir_writes_no_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    with Logger(None, stdout=False) as logger:
        logger.record("x", 1.0)
        logger.dump(step=0)
    assert _files(tmp_path) == []


def test_no_progress_bar_without_terminal(capsys: pytest.CaptureFixture[str]) -> None:
    with Logger(None, stdout=False, total_timesteps=10) as logger:
        logger.advance(5)
        logger.advance(10)
    assert capsys.readouterr().out == ""


def test_progress_bar_on_terminal(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys.stdout, "isatty", lambda: True)
    with Logger(None, total_timesteps=10) as logger:
        logger.advance(4)
        logger.record("x", 1.0)
        logger.dump(step=0)
        logger.advance(10)
        logger.advance(12)  # past the end: ignored, no second final line
    out = capsys.readouterr().out
    assert "10/10" in out
    assert "\n---" in out  # the table starts on its own line after the bar
    assert out.endswith("\n")


def test_failed_rewrite_keeps_old_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    logger = Logger(tmp_path, stdout=False, tensorboard=False)
    logger.record("b", 1.0)
    logger.dump(step=0)

    def crash(src: str, dst: str) -> None:
        raise OSError("disk gone")

    monkeypatch.setattr("tfppo.io.logger.os.replace", crash)
    logger.record("a", 2.0)
    with pytest.raises(OSError, match="disk gone"):
        logger.dump(step=1)
    assert (tmp_path / "progress.csv").read_text().splitlines() == ["b", "1.0"]
    assert _files(tmp_path) == ["progress.csv"]
    logger.close()
