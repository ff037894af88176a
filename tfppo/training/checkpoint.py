"""Atomic checkpoints: a directory written whole or not at all.

Layout: ``model.weights.h5`` (Keras weights), ``optimizer.npz`` (Adam slots and
step), ``agent.json`` (algorithm, resolved config, Semantics, normaliser and
episode statistics, counters, RNG states) and ``semantics.json`` for people.
Everything is written into a temporary sibling directory which is renamed
into place, so a crash never leaves a half-written checkpoint behind.

Periodic checkpoints (``save_freq``) are such directories named ``ckpt-<steps>``
under one run directory; `latest` resolves a run directory to its newest
complete one, so every loader accepts either form (see `tfppo.periodic`).
"""
from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from tfppo.util.errors import ConfigError

FORMAT_VERSION = 1
WEIGHTS = "model.weights.h5"
OPTIMIZER = "optimizer.npz"
AGENT = "agent.json"
REQUIRED_KEYS = ("config", "semantics", "tracker", "counters", "rng")
PERIODIC_PATTERN = re.compile(r"^ckpt-(\d+)$")


def periodic_dirs(run_dir: str | os.PathLike) -> list[Path]:
    """Complete periodic checkpoints under ``run_dir``, oldest first.

    Complete means renamed into place (temporaries start with a dot and never
    match) and holding ``agent.json``, which is written inside the temporary
    directory like every other file, so its presence proves the whole write.
    """
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in run_dir.iterdir()
             if (m := PERIODIC_PATTERN.match(p.name)) and (p / AGENT).is_file()]
    return [p for _, p in sorted(found)]


def latest(path: str | os.PathLike) -> Path:
    """``path`` itself when it is a checkpoint, else its newest complete ``ckpt-*`` (else ``path`` unchanged,
    so the caller's "not a tfppo checkpoint" error names what the user typed)."""
    path = Path(path)
    if (path / AGENT).is_file():
        return path
    found = periodic_dirs(path)
    return found[-1] if found else path


def write_atomic_dir(path: str | os.PathLike, write) -> Path:
    """Call ``write(tmp_dir)`` then rename ``tmp_dir`` onto ``path`` (replacing an old checkpoint)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.tmp-", dir=path.parent))
    try:
        write(tmp)
        if path.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{path.name}.old-", dir=path.parent))
            os.replace(path, old / "ckpt")
            os.replace(tmp, path)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, path)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return path


def save(path: str | os.PathLike, model, optimizer, meta: dict[str, Any]) -> Path:
    def write(tmp: Path) -> None:
        model.save_weights(str(tmp / WEIGHTS))
        np.savez(tmp / OPTIMIZER, *[np.asarray(v) for v in optimizer.variables])
        (tmp / AGENT).write_text(json.dumps({"format": FORMAT_VERSION, **meta}, indent=2, sort_keys=True))
        (tmp / "semantics.json").write_text(json.dumps(meta["semantics"], indent=2, sort_keys=True))
    return write_atomic_dir(path, write)


def read_meta(path: str | os.PathLike) -> dict[str, Any]:
    """Read and check ``agent.json``; a missing or corrupt checkpoint is a one-line ConfigError."""
    path = Path(path)
    try:
        meta = json.loads((path / AGENT).read_text())
    except FileNotFoundError:
        raise ConfigError(f"--load_path {str(path)!r} is not a tfppo checkpoint (no {AGENT})") from None
    except (OSError, ValueError) as exc:
        raise ConfigError(f"--load_path {str(path)!r}: unreadable {AGENT} ({type(exc).__name__})") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT_VERSION or meta.get("algo") not in ("ppo1", "ppo2"):
        raise ConfigError(f"--load_path {str(path)!r}: unsupported checkpoint format; expected format "
                          f"{FORMAT_VERSION} from ppo1 or ppo2")
    missing = [key for key in REQUIRED_KEYS if not isinstance(meta.get(key), dict)]
    if missing:
        raise ConfigError(f"--load_path {str(path)!r}: corrupt {AGENT} (missing or invalid: {', '.join(missing)})")
    return meta


def restore_weights(path: str | os.PathLike, model, optimizer) -> None:
    """Load weights and optimizer state into already-built objects; mismatches are ConfigErrors."""
    path = Path(path)
    try:
        model.load_weights(str(path / WEIGHTS))
        with np.load(path / OPTIMIZER) as data:
            arrays = [data[f"arr_{i}"] for i in range(len(data.files))]
    except Exception as exc:  # h5py/keras raise many types for corrupt or mismatched files
        raise ConfigError(f"--load_path {str(path)!r}: cannot load weights ({type(exc).__name__}: "
                          f"{' '.join(str(exc).split())[:160]})") from None
    variables = optimizer.variables
    if len(arrays) != len(variables) or any(a.shape != tuple(v.shape) for a, v in zip(arrays, variables)):
        raise ConfigError(f"--load_path {str(path)!r}: optimizer state does not match this network")
    for var, value in zip(variables, arrays):
        var.assign(value)
