"""How one run is executed: the command line, the process, and the files left in its directory.

`execute_run` is the unit of work an executor (local threads or a Dask worker) is given: it
runs ``scripts/ppo2.py`` directly or ``scripts/ppo1.py`` under the venv's ``mpirun -n W``, in a
new process group (so an interrupted suite can stop the whole tree), with one TF thread per
process (``--threads 1``, ``OMP_NUM_THREADS=1``) so concurrent runs do not fight over cores and
both backends get the same compute. On success it writes ``summary.json`` last, atomically:
its presence is what marks a run finished (`tfppo.comparisons.runner`).
"""
from __future__ import annotations

import contextlib
import ctypes
import os
import platform
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import asdict
from importlib import metadata
from pathlib import Path
from typing import Any, Callable

from tfppo import ConfigError
from tfppo.comparisons import rundir
from tfppo.comparisons.suite import RunSpec
from tfppo.comparisons.trainers import TRAINER_MODULES
from tfppo.comparisons.tidy import summarize_run
from tfppo.comparisons.rundir import (CONFIG_JSON, LOG_NAME, PACKAGE_ROOT, STATUS_JSON, SUMMARY_JSON, VERSIONS_JSON,
                                      write_json)

# Everything that changes a run's numbers: the training stack, the env simulators (mujoco, Box2D, ale-py and
# minatar change the dynamics themselves) and the statistics stack that reads the results.
VERSIONED_PACKAGES = ("tfppo", "tensorflow", "tensorflow-probability", "keras", "tf-keras", "gymnasium", "numpy",
                      "mpi4py", "mpich", "mujoco", "box2d", "ale-py", "minatar", "pandas", "rliable", "scipy",
                      "statsmodels", "matplotlib")
# The variables the runner sets for every run (`run_environment`), recorded with it.
RUN_ENVIRONMENT_KEYS = ("OMP_NUM_THREADS", "PYTHONHASHSEED", "TF_CPP_MIN_LOG_LEVEL", "PYTHONUNBUFFERED",
                        "TFPPO_XLA_CACHE", "TF_XLA_FLAGS", "TF_DETERMINISTIC_OPS", "CUDA_VISIBLE_DEVICES")
def mpirun_path() -> str:
    """The venv's mpirun (the mpich wheel), else one on PATH."""
    beside = Path(sys.executable).parent / "mpirun"
    found = str(beside) if beside.exists() else shutil.which("mpirun")
    if not found:
        raise ConfigError("mpirun not found beside the interpreter or on PATH; install the mpich wheel (pip)")
    return found


def command(run: RunSpec, log_dir: Path, python: str = sys.executable) -> list[str]:
    """The full command line: the installed trainer (``python -m tfppo.cli.ppoN``, what the console scripts
    run), PPO1 always through mpirun (-n workers), PPO2 directly."""
    script = [python, "-m", TRAINER_MODULES[run.variant.trainer], *run.script_args(log_dir), "--threads", "1",
              "--verbose", "1"]
    if run.variant.trainer == "ppo1":
        return [mpirun_path(), "-n", str(run.workers), *script]
    return script


def run_environment() -> dict[str, str]:
    env = dict(os.environ)
    env.update({"OMP_NUM_THREADS": "1", "TF_CPP_MIN_LOG_LEVEL": env.get("TF_CPP_MIN_LOG_LEVEL", "3"),
                "PYTHONHASHSEED": "0", "PYTHONUNBUFFERED": "1"})
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(PACKAGE_ROOT), env.get("PYTHONPATH", "")) if p)
    return env


def versions() -> dict[str, Any]:
    """Package versions, interpreter, machine and the repository's git commit (with a dirty flag)."""
    out: dict[str, Any] = {}
    for name in VERSIONED_PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    out["python"] = platform.python_version()
    out["machine"] = machine_description()
    out["cpu_model"] = cpu_model()
    environment = run_environment()
    out["environment"] = {key: environment.get(key) for key in RUN_ENVIRONMENT_KEYS}
    out["git_commit"] = git_commit()
    return out


def machine_description() -> str:
    return f"{socket.gethostname()} {platform.system()} {platform.machine()}, {os.cpu_count()} cores"


def cpu_model() -> str:
    """The CPU's model name (Linux: /proc/cpuinfo), else what `platform` knows: speed figures need it."""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.split(":")[0].strip() in ("model name", "Model", "cpu model"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def git_commit() -> str:
    """Read at every run, not once per runner: a long suite can outlive a checkout of new code under it."""
    try:
        commit = subprocess.run(["git", "rev-parse", "--short=12", "HEAD"], cwd=PACKAGE_ROOT, capture_output=True,
                                text=True, timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=PACKAGE_ROOT,
                               capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return (commit + ("-dirty" if dirty else "")) if commit else "unknown"


CommandFactory = Callable[[RunSpec, Path], list[str]]


def execute_run(run: RunSpec, run_dir: str, attempt: int, command_factory: CommandFactory | None = None,
                on_start: Callable[[subprocess.Popen], None] | None = None,
                on_exit: Callable[[subprocess.Popen], None] | None = None) -> dict[str, Any]:
    """Run one attempt in ``run_dir``; returns the status dict (state ``done`` or ``failed``).

    The directory is cleared of an earlier attempt's files first (a failed attempt's log is kept
    as ``attempt-<n>.log``), so nothing from a killed or failed attempt is ever mixed in.
    """
    path = Path(run_dir)
    path.mkdir(parents=True, exist_ok=True)
    _clear_attempt(path)
    argv = (command_factory or command)(run, path)
    status = {"state": "running", "attempt": attempt, "host": socket.gethostname(), "started": time.time(),
              "command": argv}
    write_json(path / STATUS_JSON, status)
    # config.json says how to rerun the run on any checkout (no path of this machine); status.json keeps
    # the command exactly as it was started, for the record of this machine's attempt
    write_json(path / CONFIG_JSON, {"run": _run_record(run), "command": rundir.portable_command(argv)})
    write_json(path / VERSIONS_JSON, versions())
    t0 = time.perf_counter()
    with open(path / LOG_NAME, "w") as log:
        proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, env=run_environment(),
                                start_new_session=True,
                                preexec_fn=_die_with_parent if sys.platform.startswith("linux") else None)
        if on_start is not None:
            on_start(proc)
        try:
            returncode = proc.wait()
        finally:
            if on_exit is not None:
                on_exit(proc)
    wall = time.perf_counter() - t0
    status.update(finished=time.time(), wall_time=wall, returncode=returncode)
    if returncode == 0:
        try:
            summary = summarize_run(path, run, wall_time=wall)
        except (OSError, ValueError, KeyError) as exc:
            status.update(state="failed", error=f"finished but its logs cannot be summarised: {exc}")
        else:
            write_json(path / SUMMARY_JSON, summary)
            status["state"] = "done"
    else:
        status.update(state="failed", error=_last_error_line(path / LOG_NAME, returncode))
    if status["state"] == "failed":
        shutil.copyfile(path / LOG_NAME, path / rundir.ATTEMPT_LOG.format(attempt=attempt))
    write_json(path / STATUS_JSON, status)
    return status


def _die_with_parent() -> None:
    """In the child before exec: SIGKILL it when the runner dies, even by SIGKILL (Linux), so a killed
    runner leaves no orphan writing into a run directory that the next invocation reruns."""
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG = 1
    except (OSError, AttributeError):
        pass


def _run_record(run: RunSpec) -> dict[str, Any]:
    return {"suite": run.suite, "env": run.env, "seed": run.seed, "budget": run.budget, "workers": run.workers,
            "num_envs": run.num_envs,
            "evaluation": run.evaluation.model_dump(), "env_flags": run.env_flags, "variant": asdict(run.variant)}


def _clear_attempt(path: Path) -> None:
    for child in path.iterdir():
        if child.name.startswith("attempt-"):
            continue
        if child.is_dir():
            shutil.rmtree(child)
        else:
            child.unlink()


def _last_error_line(log: Path, returncode: int) -> str:
    try:
        lines = [line.strip() for line in log.read_text(errors="replace").splitlines() if line.strip()]
    except OSError:
        lines = []
    interesting = [line for line in lines if "error" in line.lower() or "exception" in line.lower()]
    last = (interesting or lines or ["(no output)"])[-1]
    if returncode < 0:
        return f"killed by signal {signal.Signals(-returncode).name}: {last}"[:500]
    return f"exit code {returncode}: {last}"[:500]


def terminate(proc: subprocess.Popen, grace: float = 5.0) -> None:
    """SIGTERM the run's process group (mpirun and its ranks), SIGKILL after ``grace`` seconds."""
    for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, grace)):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, sig)
        try:
            proc.wait(timeout=wait)
            return
        except subprocess.TimeoutExpired:
            continue
