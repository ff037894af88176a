"""NaN/Inf guard: a non-finite loss, gradient or parameter ends the run (spec-independent safety net).

The compiled update (`tfppo.core.learner`) refuses to apply a step whose loss or
gradient is non-finite and stops the epoch loop, reporting which quantity it
was; this module turns that report into one error line naming the update, the
quantity and the last good checkpoint. No checkpoint is written afterwards,
so nothing good on disk is overwritten. The CLIs exit with status 3.
"""
from __future__ import annotations

EXIT_NONFINITE = 3


class NonFiniteError(RuntimeError):
    """A non-finite value stopped training; the message is the one line the CLIs print."""

    def __init__(self, update: int, quantity: str, last_checkpoint: str | None):
        self.update, self.quantity, self.last_checkpoint = update, quantity, last_checkpoint
        super().__init__(f"non-finite {quantity} in update {update}; stopped before applying it. "
                         f"Last good checkpoint: {last_checkpoint or 'none'}")


def check_update(result, update: int, last_checkpoint: str | None) -> None:
    """Raise `NonFiniteError` when the learner's result reports a non-finite quantity."""
    quantity = result.nonfinite_quantity
    if quantity is not None:
        raise NonFiniteError(update, quantity, last_checkpoint)
