"""A suite's results directory and its run directories: the one definition of their file names, and the
one reader and writer of their JSON files.

    <out>/<suite>/suite.json, suite.yaml, .runner.lock, tidy/, report/, REPORT.md
    <out>/<suite>/<env>/<variant>/seed-<s>/summary.json, status.json, config.json, versions.json,
                                           semantics.json, progress.csv, evaluations.csv, stdout.log

Every stage (runner, status, tidy tables, report, publish) asks this module where a file is and reads it
here. A file that exists but does not parse is an error naming it (`CorruptFileError`), never "no file":
a results directory whose ``suite.json`` is corrupt must be refused, not silently overwritten with a new
definition (spec-independent safety; Standards: "a corrupt file is refused, never silently replaced").
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import tfppo
from tfppo.util.atomic import write_json
from tfppo.util.errors import ConfigError

# the suite directory
SUITE_JSON = "suite.json"
SUITE_YAML = "suite.yaml"
LOCK_NAME = ".runner.lock"
TIDY_DIR = "tidy"
REPORT_DIR = "report"
REPORT_MD = "REPORT.md"
HEADER_JSON = "header.json"  # under tidy/: what every table's header says
# a run directory
SUMMARY_JSON = "summary.json"  # written last, atomically: its presence marks a finished run
STATUS_JSON = "status.json"
CONFIG_JSON = "config.json"
VERSIONS_JSON = "versions.json"
SEMANTICS_JSON = "semantics.json"
PROGRESS_CSV = "progress.csv"
EVALUATIONS_CSV = "evaluations.csv"
LOG_NAME = "stdout.log"
ATTEMPT_LOG = "attempt-{attempt}.log"  # a failed attempt's log, kept
# what `publish` copies of each finished run (not its logs or TensorBoard events)
PUBLISHED_RUN_FILES = (SUMMARY_JSON, STATUS_JSON, VERSIONS_JSON, CONFIG_JSON, SEMANTICS_JSON)

__all__ = ["CorruptFileError", "read_json", "read_json_if_present", "write_json", "run_dir", "finished_run_dirs",
           "portable_command"]


class CorruptFileError(ConfigError):
    """A results file exists but cannot be read as JSON: refused, never treated as absent."""


def read_json(path: str | Path) -> Any:
    """The parsed file; FileNotFoundError when it is missing, `CorruptFileError` when it does not parse."""
    path = Path(path)
    text = path.read_text()
    try:
        return json.loads(text)
    except ValueError as exc:
        raise CorruptFileError(f"{path} is corrupt ({exc}); it is left as it is — restore or remove it") from None


def read_json_if_present(path: str | Path) -> Any:
    """Like `read_json`, but None when the file does not exist (a corrupt one is still an error)."""
    try:
        return read_json(path)
    except FileNotFoundError:
        return None


def run_dir(suite_dir: str | Path, env: str, variant: str, seed: int) -> Path:
    """``<suite_dir>/<env>/<variant>/seed-<seed>``; a namespaced id's ``/`` (``MinAtar/Breakout-v1``,
    ``ALE/Pong-v5``) becomes ``_``, so every run directory stays four levels below the results root."""
    return Path(suite_dir) / env.replace("/", "_") / variant / f"seed-{int(seed)}"


def finished_run_dirs(suite_dir: str | Path) -> list[Path]:
    """Run directories holding a ``summary.json``, in sorted order."""
    return sorted(p.parent for p in Path(suite_dir).glob(f"*/*/seed-*/{SUMMARY_JSON}"))


# The directory holding the `tfppo` package in use (a checkout, or site-packages): runs import the very same
# code (`tfppo.comparisons.launch`), and a published command names paths under it relative to it.
PACKAGE_ROOT = Path(tfppo.__file__).resolve().parents[1]
OUT_PLACEHOLDER = "<out>"  # the results root a run directory lives under (compare.py run --out)


def portable_command(argv: list[str], roots: tuple[str | Path, ...] = (PACKAGE_ROOT,)) -> list[str]:
    """A run's command as config.json records it: no path of the machine it ran on. The interpreter and
    mpirun by name, a script by its path in the checkout, the run directory relative to the results root
    (``<out>/<suite>/<env>/<variant>/seed-<s>``), any other path under one of ``roots`` (the checkout)
    relative to it. Published results then say how to rerun a run on any checkout; an absolute path that
    fits none of these is refused rather than published."""
    out: list[str] = []
    for arg in argv:
        name = Path(arg).name
        under = [Path(arg).relative_to(root) for root in map(Path, roots) if Path(arg).is_relative_to(root)]
        if arg.startswith("/"):
            if out and out[-1] == "--log_dir":
                arg = "/".join((OUT_PLACEHOLDER, *Path(arg).parts[-4:]))
            elif name in ("mpirun", "mpiexec") or name.startswith("mpiexec."):
                arg = "mpirun"
            elif name.startswith("python"):
                arg = "python"
            elif "/scripts/" in arg:
                arg = "scripts/" + arg.split("/scripts/", 1)[1]
            elif under:
                arg = str(under[0])
            else:
                raise ValueError(f"cannot publish the machine path {arg!r} of command {argv!r}")
        out.append(arg)
    return out
