"""Key/value training logger shared by the PPO1 and PPO2 trainers.

Each iteration a trainer ``record``s scalars and then ``dump``s one row. The row
goes to three sinks so a run can be followed live (stdout table, Baselines
style), compared with Baselines runs afterwards (``progress.csv``, read with
pandas) and browsed in TensorBoard (``tb/``). Nothing touches the disk before
the first non-empty dump, so a run that fails on bad input leaves no debris.

TensorFlow and Keras are imported lazily: only the TensorBoard sink and the
progress bar need them, and keeping this module light lets tools and tests use
it without paying the TF start-up cost.
"""

from __future__ import annotations

import csv
import io
import numbers
import os
import sys
from pathlib import Path
from types import TracebackType
from typing import Any, Callable

import numpy as np

from tfppo.util.atomic import replacing

__all__ = ["Logger", "format_table"]

CSV_NAME = "progress.csv"
TB_SUBDIR = "tb"
MAX_CELL_CHARS = 30  # stdout cells longer than this are cut, so one odd key cannot widen the table
TABLE_HIDDEN_PREFIXES = ("diag/",)  # health diagnostics go to CSV/TensorBoard only: the table stays readable


def _to_number(key: str, value: Any) -> float | int:
    """Convert ``value`` to a plain Python int or float.

    Numpy scalars (and 0-d arrays) are unwrapped so the csv writer, the table
    formatter and the returned row all see ordinary numbers; ints stay ints so
    counters such as ``total_timesteps`` print as ``100000``, not ``1e+05``.
    Anything else is a programming error and fails loudly at ``record`` time
    rather than at ``dump`` time, far from the call that caused it.
    """
    if isinstance(value, np.ndarray) and value.ndim == 0:
        value = value[()]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        return float(value)
    raise TypeError(f"logger value for {key!r} must be a real scalar, got {type(value).__name__}")


def _truncate(text: str, limit: int = MAX_CELL_CHARS) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _format_value(value: float | int) -> str:
    """Floats as ``%-8.3g`` (as Baselines prints them), ints verbatim."""
    if isinstance(value, float):
        return "%-8.3g" % value
    return str(value)


def format_table(row: dict[str, float | int]) -> str:
    """Render ``row`` as the boxed, key-sorted table Baselines prints each iteration.

    Kept public and pure so the format can be tested without capturing stdout.
    """
    cells = [(_truncate(k), _truncate(_format_value(v))) for k, v in sorted(row.items())]
    key_w = max(len(k) for k, _ in cells)
    val_w = max(len(v) for _, v in cells)
    border = "-" * (key_w + val_w + 7)
    lines = [border]
    lines += [f"| {k:<{key_w}} | {v:<{val_w}} |" for k, v in cells]
    lines.append(border)
    return "\n".join(lines) + "\n"


def _csv_cell(value: float | int) -> str:
    """``repr`` round-trips floats exactly and spells NaN/inf as pandas reads them."""
    return repr(value) if isinstance(value, float) else str(value)


class _CsvSink:
    """``progress.csv`` whose header is the sorted union of every key seen so far.

    Rows are appended and flushed, so a crash loses at most the row being
    written. A row with a new key forces a rewrite with the wider header; that
    rewrite goes through a temp file and ``os.replace`` so a crash mid-rewrite
    leaves either the old or the new file, never a truncated one. Old rows are
    re-read from disk rather than kept in memory, so long runs do not grow.
    """

    def __init__(self, path: Path, keep_rows: int | None = None) -> None:
        self.path = path
        self.fields: list[str] = []
        self._file: io.TextIOWrapper | None = None
        if keep_rows is not None and path.exists():
            self._truncate(keep_rows)

    def _truncate(self, keep_rows: int) -> None:
        """A resumed run continues the file: keep the header and the first ``keep_rows`` rows (those
        written up to its checkpoint), drop rows a killed run wrote after it; atomic like `_rewrite`."""
        with open(self.path, newline="", encoding="utf-8") as f:
            reader = csv.DictReader(f)
            fields, rows = list(reader.fieldnames or []), list(reader)[:keep_rows]
        self._replace(fields, rows)

    def write(self, row: dict[str, float | int]) -> None:
        cells = {k: _csv_cell(v) for k, v in row.items()}
        new_keys = set(cells) - set(self.fields)
        if self._file is None or new_keys:
            self._rewrite(sorted(set(self.fields) | new_keys))
        assert self._file is not None
        csv.DictWriter(self._file, self.fields, restval="").writerow(cells)
        self._file.flush()

    def _rewrite(self, fields: list[str]) -> None:
        if not self.fields:
            # First row: start fresh (truncating any file from an earlier run); no old rows to protect.
            self._file = open(self.path, "w", newline="", encoding="utf-8")
            csv.DictWriter(self._file, fields).writeheader()
            self.fields = fields
            return
        if self._file is not None:  # None only if an earlier rewrite failed half-way
            self._file.close()
            self._file = None
        with open(self.path, newline="", encoding="utf-8") as f:
            old_rows = list(csv.DictReader(f))
        self._replace(fields, old_rows)

    def _replace(self, fields: list[str], rows: list[dict[str, str]]) -> None:
        """Write ``rows`` under ``fields`` to a temp file and rename it over progress.csv: a crash leaves
        the old file or the new one, never a truncated one; then append from there."""
        with replacing(self.path) as tmp, open(tmp, "w", newline="", encoding="utf-8") as f:
            writer = csv.DictWriter(f, fields, restval="")
            writer.writeheader()
            writer.writerows(rows)
        self.fields = fields
        self._file = open(self.path, "a", newline="", encoding="utf-8")

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


class _TensorBoardSink:
    """One TF summary writer under ``log_dir/tb``, created at the first dump.

    Scalars are written with ``tf.summary.write`` plus the ``scalars`` plugin
    metadata: the same event records ``tf.summary.scalar`` emits. We do not
    call ``tf.summary.scalar`` itself because in recent TF (2.21 here) it lives
    in the ``tensorboard`` package, which TF no longer installs, and raises
    without it; the event files alone are all that is needed to view the run.
    """

    def __init__(self, path: Path, keep_until_step: int | None = None) -> None:
        import tensorflow as tf
        from tensorflow.core.framework import summary_pb2

        self._tf = tf
        old_files = sorted(path.glob("events.out.tfevents.*")) if keep_until_step is not None else []
        self._writer = tf.summary.create_file_writer(str(path))
        self._metadata = summary_pb2.SummaryMetadata(
            plugin_data=summary_pb2.SummaryMetadata.PluginData(plugin_name="scalars")
        )
        if old_files:
            self._carry_over(old_files, keep_until_step)

    def _carry_over(self, old_files: list[Path], keep_until_step: int) -> None:
        """A resumed run: copy the old runs' scalars up to the checkpoint's step into the new event file,
        then delete the old files, so TensorBoard shows each step once (a killed run may have logged
        steps after its last checkpoint, which the resumed run logs again)."""
        tf = self._tf
        with self._writer.as_default():
            for old in old_files:
                for event in tf.compat.v1.train.summary_iterator(str(old)):
                    if event.step > keep_until_step or not event.HasField("summary"):
                        continue
                    for value in event.summary.value:
                        if value.HasField("tensor"):
                            tf.summary.write(value.tag, tf.make_ndarray(value.tensor), step=event.step,
                                             metadata=self._metadata)
        self._writer.flush()
        for old in old_files:
            old.unlink(missing_ok=True)

    def write(self, row: dict[str, float | int], step: int) -> None:
        tf = self._tf
        with self._writer.as_default():
            for key, value in row.items():
                # float32 like tf.summary.scalar, so TensorBoard treats both the same.
                tf.summary.write(key, tf.constant(value, tf.float32), step=step, metadata=self._metadata)
        self._writer.flush()

    def close(self) -> None:
        self._writer.close()


class Logger:
    """Records scalar key/values during an iteration and dumps them as one row.

    ``record`` sets a key of the current row (a later value replaces an earlier one). ``dump``
    sends the row to every enabled sink, clears it and returns it.

    With ``enabled=False`` (MPI ranks > 0) every method returns immediately, so
    workers can share the trainer code without guarding each call.
    """

    def __init__(
        self,
        log_dir: str | os.PathLike | None,
        *,
        stdout: bool = True,
        csv: bool = True,
        tensorboard: bool = True,
        enabled: bool = True,
        total_timesteps: int | None = None,
        resume: tuple[int, int] | None = None,
        key_map: Callable[[str], tuple[str, ...]] | None = None,
        log_interval: int = 1,
    ) -> None:
        self.enabled = enabled
        # names each recorded key is written under (`tfppo.io.log_keys`), and the stdout table's cadence:
        # every ``log_interval``-th row and the first; progress.csv and TensorBoard get every row
        self._key_map = key_map or (lambda key: (key,))
        self._log_interval = max(int(log_interval), 1)
        self._dumps = 0
        # (rows, step) of the checkpoint a resumed run continues from: progress.csv keeps its first
        # ``rows`` rows and TensorBoard its events up to ``step``; None starts the files afresh.
        self._resume = resume
        self.rows_written = resume[0] if resume else 0
        self._last_row: dict[str, float | int] = {}
        self.log_dir = Path(log_dir) if log_dir is not None else None
        self._stdout = stdout
        self._want_csv = csv and self.log_dir is not None
        self._want_tb = tensorboard and self.log_dir is not None
        self._values: dict[str, float | int] = {}
        self._csv: _CsvSink | None = None
        self._tb: _TensorBoardSink | None = None
        self._closed = False
        # The bar redraws with \r; in a file or CI log it would be noise, so only on a terminal.
        isatty = getattr(sys.stdout, "isatty", None)
        self._bar_wanted = bool(enabled and total_timesteps and isatty is not None and isatty())
        self._total_timesteps = total_timesteps
        self._bar: Any = None  # tfppo.io.progress.ProgressBar, built at the first advance
        self._bar_done = False

    # -- recording -----------------------------------------------------------

    def record(self, key: str, value: float | int) -> None:
        """Set ``key`` in the current row, replacing any earlier value."""
        if not self.enabled:
            return
        value = _to_number(key, value)
        for name in self._key_map(key):
            self._values[name] = value

    # -- output --------------------------------------------------------------

    def dump(self, step: int) -> dict[str, float]:
        """Write the current row to every sink, clear it and return it.

        An empty row is not written anywhere (and creates no files), so a stray
        dump cannot add a blank CSV line or an empty table.
        """
        if not self.enabled:
            return {}
        row: dict[str, float | int] = dict(self._values)
        self._values.clear()
        if not row:
            return {}
        row = dict(sorted(row.items()))
        step = int(step)
        self.rows_written += 1
        self._last_row = row
        self._dumps += 1
        if self._stdout and (self._dumps == 1 or self._dumps % self._log_interval == 0):
            self._print_table(row)
        if self.log_dir is not None and (self._want_csv or self._want_tb):
            self.log_dir.mkdir(parents=True, exist_ok=True)
            if self._want_csv:
                if self._csv is None:
                    self._csv = _CsvSink(self.log_dir / CSV_NAME, self._resume[0] if self._resume else None)
                self._csv.write(row)
            if self._want_tb:
                if self._tb is None:
                    self._tb = _TensorBoardSink(self.log_dir / TB_SUBDIR, self._resume[1] if self._resume else None)
                self._tb.write(row, step)
        return row

    def _print_table(self, row: dict[str, float | int]) -> None:
        shown = {k: v for k, v in row.items() if not k.startswith(TABLE_HIDDEN_PREFIXES)}
        if shown:
            self.write_line(format_table(shown))

    def write_line(self, text: str) -> None:
        """Print above the progress bar when one is drawn (it is redrawn below), else plainly."""
        if not self.enabled:
            return
        if self._bar is not None and not self._bar_done:
            self._bar.write(text)
            return
        sys.stdout.write(text if text.endswith("\n") else text + "\n")
        sys.stdout.flush()

    def advance(self, timesteps: int) -> None:
        """Move the progress bar to ``timesteps`` (absolute, not an increment)."""
        if not self._bar_wanted or self._bar_done:
            return
        assert self._total_timesteps is not None
        if self._bar is None:
            from tfppo.io.progress import ProgressBar

            self._bar = ProgressBar(self._total_timesteps, initial=min(int(timesteps), self._total_timesteps))
        current = min(int(timesteps), self._total_timesteps)
        self._bar.update(current, self._last_row)
        if current >= self._total_timesteps:
            self._bar.close()
            self._bar_done = True

    def close(self) -> None:
        """Finish the bar, flush and close the files; safe to call twice."""
        if not self.enabled or self._closed:
            return
        self._closed = True
        if self._bar is not None and not self._bar_done:
            self._bar.close()
            self._bar_done = True
        if self._csv is not None:
            self._csv.close()
        if self._tb is not None:
            self._tb.close()

    def __enter__(self) -> Logger:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
