"""Atomic file replacement: one implementation for every file tfppo and `comparisons` write.

Standards: "nothing is lost: writes are atomic". A reader, or a crash, sees the old file or the new
one, never half of one: the new content goes to a temp file in the target's directory (so the
rename never crosses file systems), is flushed to disk, and is renamed over the target with
``os.replace``; the directory is then synced so the rename itself survives a power cut. The temp
name ends in the target's suffix, so writers that choose a format from the name (matplotlib's
``.png``/``.svg``) still do, and it starts with a dot so globs for results skip it.
"""
from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path
from typing import Any, Iterator

__all__ = ["replacing", "write_text", "write_json"]


def _fsync(path: Path) -> None:
    """Persist ``path`` (a file or a directory); best effort, since not every platform opens directories."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


@contextlib.contextmanager
def replacing(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temp path to write ``path``'s new content to; on leaving, rename it over ``path``.
    If the body raises, the temp file is removed and ``path`` is left as it was."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}{path.suffix}")
    try:
        yield tmp
        _fsync(tmp)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _fsync(path.parent)


def write_text(path: str | os.PathLike, text: str) -> None:
    with replacing(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def write_json(path: str | os.PathLike, data: Any) -> None:
    """Indented, key-sorted JSON (objects it cannot encode as their ``str``), written atomically."""
    write_text(path, json.dumps(data, indent=2, sort_keys=True, default=str))
