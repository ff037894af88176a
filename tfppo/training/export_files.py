"""What a policy export is on disk, without TensorFlow: the formats, the SavedModel marker and the
metadata file, so ``tfppo-evaluate`` checks its flags and tells an export from a checkpoint before
TensorFlow starts (`tfppo.training.export` writes and reads them)."""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from tfppo.util.errors import ConfigError

EXPORT_FORMATS = ("saved_model", "onnx", "litert")
SAVED_MODEL_PB = "saved_model.pb"
EXPORT_META = "tfppo-export.json"
EXPORT_META_FORMAT = 1


def check_format(format: str, what: str = "export format") -> None:
    """A format outside `EXPORT_FORMATS` is a one-line ConfigError naming the allowed ones."""
    if format not in EXPORT_FORMATS:
        raise ConfigError(f"{what} {format!r} is invalid; allowed: {', '.join(EXPORT_FORMATS)}")


def is_export(path: str | os.PathLike) -> bool:
    """Whether ``path`` is a SavedModel directory (an export), not a checkpoint."""
    return (Path(path) / SAVED_MODEL_PB).is_file()


def read_export_meta(path: str | os.PathLike) -> dict[str, Any]:
    """The ``tfppo-export.json`` of an exported SavedModel; a SavedModel tfppo did not write is a one-line
    ConfigError."""
    try:
        meta = json.loads((Path(path) / EXPORT_META).read_text())
    except (OSError, ValueError):
        meta = None
    if not isinstance(meta, dict) or meta.get("format") != EXPORT_META_FORMAT:
        raise ConfigError(f"--load_path {str(path)!r} is a SavedModel without a tfppo {EXPORT_META} (format "
                          f"{EXPORT_META_FORMAT}); export it with agent.export or tfppo-evaluate --export")
    return meta
