"""SIGINT/SIGTERM become a request to stop at the next iteration boundary.

Why: Ctrl-C or a scheduler's pre-emption in the middle of an update would lose
everything since the last checkpoint (or leave MPI ranks in different places).
The handler only sets a flag; the trainer checks it once per iteration, agrees
on it across MPI ranks, writes a checkpoint and raises `Interrupted`, which the
CLIs turn into one line and exit status 128 + signal (130 for SIGINT, 143 for
SIGTERM). A second Ctrl-C while waiting for the boundary stops at once.
"""
from __future__ import annotations

import signal
import threading
from types import FrameType
from typing import Any

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class Interrupted(Exception):
    """Raised at an iteration boundary after a stop signal; carries where the checkpoint went."""

    def __init__(self, signum: int, update: int, checkpoint: str | None):
        self.signum, self.update, self.checkpoint = int(signum), int(update), checkpoint
        where = f"checkpoint {checkpoint} (continue with --resume)" if checkpoint else "no checkpoint (no --save_path)"
        super().__init__(f"stopped by {signal.Signals(signum).name} after update {update}: {where}")

    @property
    def exit_code(self) -> int:
        return 128 + self.signum


class StopSignals:
    """Context manager installing the flag-setting handlers; the previous handlers come back on exit."""

    def __init__(self) -> None:
        self.requested: int = 0  # signal number, 0 while none arrived
        self._previous: dict[int, Any] = {}

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        self.requested = signum
        if signum == signal.SIGINT:
            signal.signal(signal.SIGINT, signal.default_int_handler)  # a second Ctrl-C interrupts now

    def __enter__(self) -> "StopSignals":
        if threading.current_thread() is threading.main_thread():  # handlers can only be set there
            for signum in STOP_SIGNALS:
                self._previous[signum] = signal.signal(signum, self._handle)
        return self

    def __exit__(self, *exc: Any) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        self._previous.clear()
