"""TensorFlow process set-up: device placement, threads, determinism.

``--device``: ``cpu`` hides every GPU from TensorFlow, ``gpu`` requires one
(one-line error without), ``auto`` takes a GPU when TensorFlow sees one. With
a GPU, the compiled update (and the variables it steps) live on it, while MLP
acting stays a NumPy forward pass on the CPU (`tfppo.core.acting`): the weights
cross once per iteration, never once per env step. MPI rank r uses GPU
(r mod count) with memory growth, so ranks neither share a device by accident
nor grab all its memory (anchors §6 #7). With several ranks on few cores, one
intra-op and one inter-op thread per rank stops them fighting over the cores.
Op determinism is on by default so the same command and seed give the same
numbers.
"""
from __future__ import annotations

import os
from pathlib import Path

from tfppo.util.errors import ConfigError

DEVICES = ("auto", "cpu", "gpu")
XLA_CACHE_ENV = "TFPPO_XLA_CACHE"
_XLA_CACHE_FLAG = "--tf_xla_persistent_cache_directory"


def enable_xla_cache() -> str | None:
    """Point TensorFlow's persistent XLA cache at ``$TFPPO_XLA_CACHE`` (default ``~/.cache/tfppo/xla``;
    ``off`` disables it); returns the directory, or None when off or already set by the user.

    Why: compiling the whole update to XLA is most of a short run's one-time cost (≈2–4 s on 2 cores);
    the cache keeps the executable, keyed by the full HLO (TF re-checks it on load, so a changed
    graph or shape compiles afresh), and every later run of the same configuration on the machine
    skips the compile. TF writes entries through a temp file and a rename, so parallel runs are safe.
    TF reads the flag once, when its runtime starts (the first op), so `import tfppo` calls this.
    """
    where = os.environ.get(XLA_CACHE_ENV, str(Path.home() / ".cache" / "tfppo" / "xla"))
    flags = os.environ.get("TF_XLA_FLAGS", "")
    if where.strip().lower() in ("", "off", "0", "none") or _XLA_CACHE_FLAG in flags:
        return None
    os.environ["TF_XLA_FLAGS"] = f"{flags} {_XLA_CACHE_FLAG}={where}".strip()
    return where


def select_device(requested: str, n_gpus: int) -> str:
    """"/GPU:0" or "/CPU:0" for ``--device requested`` when TensorFlow sees ``n_gpus`` GPUs."""
    if requested not in DEVICES:
        raise ConfigError(f"--device {requested!r} is invalid; allowed: {', '.join(DEVICES)}")
    if requested == "gpu" and n_gpus == 0:
        raise ConfigError("--device gpu: TensorFlow sees no GPU here (install tfppo[gpu] on a CUDA machine), "
                          "use --device cpu or auto")
    return "/GPU:0" if requested != "cpu" and n_gpus > 0 else "/CPU:0"


def configure_tensorflow(*, rank: int = 0, deterministic: bool = True, threads: int | None = None,
                         device: str = "auto") -> str:
    """Call before the first TF op. Returns the device the update runs on ("/GPU:0" or "/CPU:0")."""
    import tensorflow as tf

    gpus = tf.config.list_physical_devices("GPU")
    chosen = select_device(device, len(gpus))
    try:
        if chosen == "/GPU:0":
            gpu = gpus[rank % len(gpus)]
            tf.config.set_visible_devices(gpu, "GPU")
            tf.config.experimental.set_memory_growth(gpu, True)
        elif gpus:
            tf.config.set_visible_devices([], "GPU")  # --device cpu: nothing may land on a GPU
        if threads is not None:
            os.environ.setdefault("OMP_NUM_THREADS", str(threads))
            tf.config.threading.set_intra_op_parallelism_threads(threads)
            tf.config.threading.set_inter_op_parallelism_threads(threads)
    except RuntimeError:
        pass  # TF already initialised in this process (e.g. a second agent); keep its settings
    if deterministic:
        tf.config.experimental.enable_op_determinism()
    return chosen


def update_device(variable) -> str:
    """"/GPU:0" or "/CPU:0": where a variable (and so the compiled update that steps it) lives."""
    device = getattr(variable, "device", None) or variable.value.device  # Keras 3 wraps a tf.Variable
    return "/GPU:0" if "GPU" in device.upper() else "/CPU:0"
