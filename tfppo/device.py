"""TensorFlow process set-up: device placement, threads, determinism.

With GPUs, MPI rank r uses GPU (r mod count) with memory growth, so ranks
neither share a device by accident nor grab all its memory (anchors §6 #7).
With several ranks on few cores, one intra-op and one inter-op thread per
rank stops them fighting over the cores. Op determinism is on by default so
the same command and seed give the same numbers.
"""
from __future__ import annotations

import os

import tensorflow as tf


def configure_tensorflow(*, rank: int = 0, deterministic: bool = True, threads: int | None = None) -> str:
    """Call before the first TF op. Returns the device string used ("/GPU:0" or "/CPU:0")."""
    device = "/CPU:0"
    try:
        gpus = tf.config.list_physical_devices("GPU")
        if gpus:
            gpu = gpus[rank % len(gpus)]
            tf.config.set_visible_devices(gpu, "GPU")
            tf.config.experimental.set_memory_growth(gpu, True)
            device = "/GPU:0"
        if threads is not None:
            os.environ.setdefault("OMP_NUM_THREADS", str(threads))
            tf.config.threading.set_intra_op_parallelism_threads(threads)
            tf.config.threading.set_inter_op_parallelism_threads(threads)
    except RuntimeError:
        pass  # TF already initialised in this process (e.g. a second agent); keep its settings
    if deterministic:
        tf.config.experimental.enable_op_determinism()
    return device
