"""A quiet console: no TensorFlow/absl/CUDA start-up lines unless asked for (``--tf_verbose``).

Why: six lines of C++ and absl noise before every run (and before a one-line
config error) bury what matters. The C++ side reads ``TF_CPP_MIN_LOG_LEVEL``
once, when TensorFlow is first imported, so `quiet` must run before that
import (the CLIs call it before anything imports TF); the Python side is
absl's logger and the ``tensorflow`` logging module, silenced once TF is in.
"""
from __future__ import annotations

import logging
import os
import sys
import warnings

ABSL_KEYS = ("TF_CPP_MIN_LOG_LEVEL", "TF_CPP_MIN_VLOG_LEVEL")


def quiet(tf_verbose: bool = False) -> None:
    """Before importing TF: level 3 hides C++ INFO/WARNING/ERROR start-up lines (cuDNN/cuBLAS factory
    registration, oneDNN, CPU feature notes); ``tf_verbose`` restores TF's own defaults."""
    if tf_verbose:
        for key in ABSL_KEYS:
            os.environ.pop(key, None)
        return
    os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
    os.environ.setdefault("GRPC_VERBOSITY", "ERROR")
    os.environ.setdefault("GLOG_minloglevel", "3")
    warnings.filterwarnings("ignore", module=r"(tensorflow|keras|tensorflow_probability|tf_keras)(\..*)?")
    logging.getLogger("tensorflow").setLevel(logging.ERROR)
    logging.getLogger("absl").setLevel(logging.ERROR)


def quiet_after_import(tf_verbose: bool = False) -> None:
    """After TF is imported: its Python logger and absl's to ERROR (they log e.g. retracing notes)."""
    if tf_verbose or "tensorflow" not in sys.modules:
        return
    import tensorflow as tf

    tf.get_logger().setLevel(logging.ERROR)
    try:
        from absl import logging as absl_logging

        absl_logging.set_verbosity(absl_logging.ERROR)
    except ImportError:  # absl comes with TF; without it there is nothing to silence
        pass


class native_stderr_silenced:
    """Context manager: C/C++ writes to file descriptor 2 go to /dev/null, Python's ``sys.stderr`` keeps
    the real terminal.

    Why: TF 2.x's C++ side logs through absl *before* ``absl::InitializeLog`` (oneDNN, CUDA stubs,
    cuInit, CPU features), and those lines ignore ``TF_CPP_MIN_LOG_LEVEL``. Only the process's own fd 2
    can silence them. Python warnings and our one-line errors are written through ``sys.stderr``, which is
    pointed at a duplicate of the original descriptor meanwhile, so nothing of ours is lost.
    """

    def __init__(self, enabled: bool = True) -> None:
        self.enabled = enabled
        self._saved_fd: int | None = None
        self._saved_stream = None

    def __enter__(self) -> "native_stderr_silenced":
        if not self.enabled:
            return self
        try:
            sys.stderr.flush()
            self._saved_fd = os.dup(2)
        except (OSError, ValueError):  # no real fd 2 (embedded interpreters): nothing to silence
            self._saved_fd = None
            return self
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, 2)
        os.close(devnull)
        self._saved_stream = sys.stderr
        sys.stderr = os.fdopen(os.dup(self._saved_fd), "w", buffering=1, encoding="utf-8", errors="replace")
        return self

    def __exit__(self, *exc) -> None:
        if self._saved_fd is None:
            return
        sys.stderr.flush()
        sys.stderr.close()
        sys.stderr = self._saved_stream
        os.dup2(self._saved_fd, 2)
        os.close(self._saved_fd)
        self._saved_fd = None


def start_tensorflow(tf_verbose: bool = False) -> None:
    """Import TensorFlow (and the libraries that load its kernels) with its native start-up lines
    silenced, and probe the GPUs now so CUDA's own lines (cuInit) fall inside the silence too. Listing
    devices does not initialise the runtime, so `tfppo.util.device.configure_tensorflow` can still pin one."""
    quiet(tf_verbose)
    with native_stderr_silenced(not tf_verbose):
        import tensorflow as tf
        import tensorflow_probability  # noqa: F401  (registers kernels; prints its own lines)

        tf.config.list_physical_devices("GPU")
    quiet_after_import(tf_verbose)
