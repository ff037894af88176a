"""Run a suite: expand the grid, launch what is not finished, resume after any interruption.

Results go to ``<out>/<suite>/<env>/<variant>/seed-<s>/`` (see `tfppo.comparisons.launch`). The rules:

* a run is finished when its ``summary.json`` exists; a finished run is never redone;
* a failed run is recorded (``status.json`` with its error, ``attempt-<n>.log``) and retried
  once in the same invocation; a later invocation tries it again;
* Ctrl-C or SIGTERM stops every running process tree and leaves the finished runs intact
  (an interrupted run is marked ``interrupted`` and simply rerun next time); a SIGKILLed runner
  takes its children with it (``PR_SET_PDEATHSIG``), and a rerun picks up the rest;
* ``<out>/<suite>/suite.json`` records the suite's fingerprint: a directory written by another
  definition of the suite is refused, never mixed (more seeds of the same definition extend it);
* one runner per suite directory at a time (an advisory lock).

Runs go through a `concurrent.futures` executor: local threads that each wait on one process
tree (default; ``--jobs`` cores filled at once, a PPO1 run with W workers takes W), or a Dask
distributed cluster (``--scheduler tcp://HOST:PORT``; optional extra ``cluster``) whose workers
run `tfppo.comparisons.launch.execute_run` on a filesystem they share with the runner — one run per
worker thread, so give each Dask worker as many threads as cores it may fill.
"""
from __future__ import annotations

import contextlib
import concurrent.futures as cf
import fcntl
import os
import re
import signal
import subprocess
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Optional

from tfppo.comparisons import launch
from tfppo.comparisons.suite import RunSpec, Suite, SuiteError
from tfppo.comparisons import rundir
from tfppo.comparisons.rundir import LOCK_NAME, STATUS_JSON, SUITE_JSON, SUITE_YAML, SUMMARY_JSON
from tfppo.util.atomic import write_json, write_text

MAX_ATTEMPTS = 2  # the first try and one retry


@dataclass
class RunCounts:
    total: int
    done: int = 0
    failed: int = 0
    running: int = 0
    skipped: int = 0

    @property
    def left(self) -> int:
        return self.total - self.done - self.failed - self.running

    def line(self) -> str:
        return f"done {self.done} · running {self.running} · failed {self.failed} · left {self.left}"


@dataclass
class SuiteOutcome:
    suite_dir: Path
    counts: RunCounts
    failures: dict[tuple[str, str, int], str] = field(default_factory=dict)
    interrupted: bool = False


@dataclass(eq=False)
class _Request:
    cores: int
    overtaken: int = 0


class CoreSlots:
    """At most ``capacity`` cores busy; a PPO1 run with W ranks takes W (capped at capacity).

    Requests are served in order, with bounded backfilling: a request that fits may start ahead of
    earlier ones that do not fit, but each request can be overtaken at most ``max_overtakes`` times,
    so none starves and runs start close to suite order. Strict order left a core idle for the whole
    length of every 1-core PPO2 run that a 2-core PPO1 run queued behind (a quarter of the cores in
    the ``classic`` suite, whose variants alternate PPO1 with 2 workers and PPO2).
    """

    def __init__(self, capacity: int, max_overtakes: int = 1):
        self.capacity = capacity
        self.free = capacity
        self.max_overtakes = max_overtakes
        self._cond = threading.Condition()
        self._waiting: list[_Request] = []  # request order

    def acquire(self, n: int) -> int:
        request = _Request(min(n, self.capacity))
        with self._cond:
            self._waiting.append(request)
            self._cond.wait_for(lambda: self._may_start(request))
            position = self._waiting.index(request)
            for earlier in self._waiting[:position]:
                earlier.overtaken += 1
            del self._waiting[position]
            self.free -= request.cores
            self._cond.notify_all()
        return request.cores

    def release(self, n: int) -> None:
        with self._cond:
            self.free += n
            self._cond.notify_all()

    def _may_start(self, request: _Request) -> bool:
        if request.cores > self.free:
            return False
        for earlier in self._waiting:
            if earlier is request:
                return True
            if earlier.cores <= self.free or earlier.overtaken >= self.max_overtakes:
                return False  # the earlier request goes first, or has been overtaken enough
        raise AssertionError("a request waits without being queued")


class SuiteRunner:
    """Runs one suite into ``out``; `run()` returns when every run finished or failed twice."""

    def __init__(self, suite: Suite, out: str | Path, *, jobs: Optional[int] = None, scheduler: Optional[str] = None,
                 command_factory: launch.CommandFactory | None = None, show_progress: Optional[bool] = None,
                 log: Callable[[str], None] | None = None):
        self.suite = suite
        self.suite_dir = Path(out) / suite.name
        self.jobs = jobs or os.cpu_count() or 1
        if self.jobs <= 0:
            raise SuiteError(f"--jobs must be a positive integer, got {jobs}")
        self.scheduler = scheduler
        self.command_factory = command_factory
        self.show_progress = sys.stderr.isatty() if show_progress is None else show_progress
        self.log = log or (lambda line: print(line, file=sys.stderr, flush=True))
        self._live: set[subprocess.Popen] = set()
        self._live_lock = threading.Lock()
        self._interrupted = threading.Event()
        self._slots = CoreSlots(self.jobs)

    # -- the results directory ---------------------------------------------------------------
    def prepare(self) -> None:
        """Create or check ``suite.json``: the same definition, possibly more seeds."""
        self.suite_dir.mkdir(parents=True, exist_ok=True)
        record = check_definition(self.suite, self.suite_dir)
        fingerprint = self.suite.fingerprint()
        seeds = sorted(set(record.get("seeds", []) if record else []) | set(self.suite.seeds))
        write_json(self.suite_dir / SUITE_JSON, {
            "fingerprint": fingerprint, "seeds": seeds, "definition": self.suite.definition(),
            "pairs": self.suite.comparison_pairs(), "idle_ablations": self.suite.idle_ablations,
            "description": self.suite.description,
            "source": str(self.suite.source) if self.suite.source else None})
        if self.suite.source is not None:
            write_text(self.suite_dir / SUITE_YAML, self.suite.source.read_text())

    def run_dir(self, run: RunSpec) -> Path:
        return self.suite_dir / run.relative_dir()

    def is_finished(self, run: RunSpec) -> bool:
        return (self.run_dir(run) / SUMMARY_JSON).exists()

    # -- running ---------------------------------------------------------------------------------
    def run(self) -> SuiteOutcome:
        with self._lock():
            self.prepare()
            runs = self.suite.runs()
            todo = [r for r in runs if not self.is_finished(r)]
            counts = RunCounts(total=len(todo), skipped=len(runs) - len(todo))
            outcome = SuiteOutcome(self.suite_dir, counts)
            for env_id, variants in self.suite.idle_ablations.items():
                self.log(f"{self.suite.name}: {env_id}: not run, their switch is idle there: {', '.join(variants)}")
            if counts.skipped:
                self.log(f"{self.suite.name}: {counts.skipped} of {len(runs)} runs already finished, "
                         f"{len(todo)} to run")
            if todo:
                self._run_all(todo, outcome)
            return outcome

    @contextlib.contextmanager
    def _lock(self) -> Iterator[None]:
        """One runner per suite directory (an advisory flock, released even if the runner is killed)."""
        self.suite_dir.mkdir(parents=True, exist_ok=True)
        with open(self.suite_dir / LOCK_NAME, "w") as handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise SuiteError(f"another runner is using {self.suite_dir}; wait for it or stop it") from None
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def _run_all(self, todo: list[RunSpec], outcome: SuiteOutcome) -> None:
        counts = outcome.counts
        executor, remote = self._executor()
        progress = _Progress(self.show_progress, counts, self.suite.name)
        attempts: dict[tuple[str, str, int], int] = {}
        futures: dict[cf.Future, RunSpec] = {}

        def submit(run: RunSpec) -> None:
            attempts[run.key] = attempts.get(run.key, 0) + 1
            if remote:
                fut = executor.submit(launch.execute_run, run, str(self.run_dir(run)), attempts[run.key],
                                      self.command_factory, cores=run.processes)
            else:
                fut = executor.submit(self._execute_local, run, attempts[run.key], counts, progress)
            futures[fut] = run

        # Ctrl-C and SIGTERM both stop the suite cleanly; SIGINT is installed explicitly because a process
        # started in the background of a non-interactive shell inherits it ignored (then Python has no handler).
        stop_signals = (signal.SIGINT, signal.SIGTERM)
        previous = {sig: signal.getsignal(sig) for sig in stop_signals}
        if threading.current_thread() is threading.main_thread():
            for sig in stop_signals:
                signal.signal(sig, _raise_keyboard_interrupt)
        try:
            with progress:
                for run in todo:
                    submit(run)
                if remote:
                    counts.running = len(futures)  # in flight on the cluster
                while futures:
                    finished, _ = cf.wait(list(futures), timeout=0.5, return_when=cf.FIRST_COMPLETED)
                    for fut in finished:
                        run = futures.pop(fut)
                        status = _result(fut)
                        if remote:
                            counts.running -= 1
                        if status.get("state") == "done":
                            counts.done += 1
                        elif attempts[run.key] < MAX_ATTEMPTS:
                            self.log(f"{'/'.join(map(str, run.key))}: failed ({status.get('error')}); retrying once")
                            submit(run)
                            if remote:
                                counts.running += 1
                        else:
                            counts.failed += 1
                            outcome.failures[run.key] = str(status.get("error"))
                            self.log(f"{'/'.join(map(str, run.key))}: failed twice: {status.get('error')}")
                    progress.update()
        except KeyboardInterrupt:
            outcome.interrupted = True
            self._interrupted.set()
            for fut in futures:
                fut.cancel()
            self._stop_live()
            self.log(f"{self.suite.name}: interrupted; finished runs are kept, rerun the same command to continue")
        finally:
            if threading.current_thread() is threading.main_thread():
                for sig, handler in previous.items():
                    signal.signal(sig, handler)
            executor.shutdown(wait=True, cancel_futures=True)
            if outcome.interrupted:
                for run in todo:
                    self._mark_interrupted(run)

    def _executor(self) -> tuple[cf.Executor, bool]:
        if self.scheduler is None:
            # Twice as many threads as cores: the waiting ones hold the next runs, so CoreSlots can backfill.
            return cf.ThreadPoolExecutor(max_workers=2 * self.jobs, thread_name_prefix="run"), False
        try:
            from distributed import Client
        except ImportError:
            raise SuiteError("--scheduler needs Dask distributed: pip install 'tfppo[cluster]'") from None
        if not SCHEDULER_ADDRESS.fullmatch(self.scheduler):
            raise SuiteError(f"--scheduler {self.scheduler!r} is not a scheduler address; give PROTOCOL://HOST:PORT, "
                             "e.g. tcp://10.0.0.5:8786")
        try:
            client = Client(self.scheduler, timeout="10s")
        except (OSError, TimeoutError, ValueError) as exc:
            raise SuiteError(f"--scheduler {self.scheduler}: cannot connect ({' '.join(str(exc).split())})") from None
        executor = _ClientExecutor(client)
        try:
            executor.check_cores(max(run.processes for run in self.suite.runs()))
        except SuiteError:
            executor.shutdown()
            raise
        return executor, True

    def _execute_local(self, run: RunSpec, attempt: int, counts: RunCounts, progress: "_Progress") -> dict[str, Any]:
        taken = self._slots.acquire(run.processes)
        try:
            if self._interrupted.is_set():
                return {"state": "interrupted"}
            with self._live_lock:
                counts.running += 1
            progress.update()
            try:
                return launch.execute_run(run, str(self.run_dir(run)), attempt, self.command_factory,
                                          on_start=self._track, on_exit=self._untrack)
            finally:
                with self._live_lock:
                    counts.running -= 1
        finally:
            self._slots.release(taken)

    def _track(self, proc: subprocess.Popen) -> None:
        with self._live_lock:
            self._live.add(proc)
        if self._interrupted.is_set():
            launch.terminate(proc)

    def _untrack(self, proc: subprocess.Popen) -> None:
        with self._live_lock:
            self._live.discard(proc)

    def _stop_live(self) -> None:
        with self._live_lock:
            live = list(self._live)
        threads = [threading.Thread(target=launch.terminate, args=(p,)) for p in live]
        for t in threads:
            t.start()
        for t in threads:
            t.join()

    def _mark_interrupted(self, run: RunSpec) -> None:
        """An attempt stopped by the interruption is not a failure: no attempt log, state ``interrupted``."""
        path = self.run_dir(run)
        status = rundir.read_json_if_present(path / STATUS_JSON)
        if status is None or (path / SUMMARY_JSON).exists():
            return
        if status.get("state") in ("running", "failed") and "attempt" in status:
            (path / f"attempt-{status['attempt']}.log").unlink(missing_ok=True)
            status["state"] = "interrupted"
            write_json(path / STATUS_JSON, status)


def check_definition(suite: Suite, suite_dir: Path) -> Optional[dict[str, Any]]:
    """The directory's ``suite.json`` record (None before the first run), refusing one written by another
    definition of the suite."""
    record = rundir.read_json_if_present(Path(suite_dir) / SUITE_JSON)
    fingerprint = suite.fingerprint()
    if record is not None and record.get("fingerprint") != fingerprint:
        raise SuiteError(f"{suite_dir} holds results of another definition of suite {suite.name!r} "
                         f"(fingerprint {record.get('fingerprint')} vs {fingerprint}); use another --out "
                         "or restore that definition")
    return record


def runner_active(suite_dir: Path) -> bool:
    """Whether a runner holds the directory's lock, tested with a shared, non-blocking flock released at
    once: the test never waits, and only a runner starting in that very instant would find the directory busy."""
    try:
        handle = open(Path(suite_dir) / LOCK_NAME)
    except FileNotFoundError:
        return False
    with handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        fcntl.flock(handle, fcntl.LOCK_UN)
        return False


SCHEDULER_ADDRESS = re.compile(r"[a-z][a-z0-9+.-]*://\S+")
CORES = "cores"  # the Dask worker resource a run asks for: one per process it starts (PPO1: W MPI ranks)


class _ClientExecutor(cf.Executor):
    """Dask's concurrent.futures executor, closing its client on shutdown. Each run asks its worker for as
    many ``cores`` (a worker resource: ``dask worker ADDRESS --nthreads N --resources cores=N``) as it starts
    processes, so no worker runs more processes than it declares."""

    def __init__(self, client):
        self.client = client
        self.executors: dict[int, Any] = {}

    def check_cores(self, needed: int) -> None:
        """Refuse, in one line, a cluster whose workers declare no ``cores`` or too few for the largest run."""
        declared = [w.get("resources", {}).get(CORES, 0) for w in self.client.scheduler_info()["workers"].values()]
        if not declared or max(declared) < needed:
            raise SuiteError(f"--scheduler {self.client.scheduler.address}: no Dask worker declares {needed} "
                             f"'{CORES}' (largest: {max(declared, default=0)}); start workers with "
                             f"`dask worker ADDRESS --nthreads N --resources {CORES}=N` (N >= {needed})")

    def submit(self, fn, /, *args, cores: int = 1, **kwargs):
        if cores not in self.executors:
            self.executors[cores] = self.client.get_executor(pure=False, resources={CORES: cores})
        return self.executors[cores].submit(fn, *args, **kwargs)

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        for executor in self.executors.values():
            executor.shutdown(wait=wait)
        self.client.close()


def _result(fut: cf.Future) -> dict[str, Any]:
    try:
        return fut.result()
    except cf.CancelledError:
        return {"state": "interrupted"}
    except Exception as exc:  # a runner-side error (e.g. a lost Dask worker) is a failed attempt
        return {"state": "failed", "error": f"{type(exc).__name__}: {exc}"}


def _raise_keyboard_interrupt(signum, frame) -> None:
    raise KeyboardInterrupt


class _Progress:
    """A rich live bar (done / running / failed / left, ETA) on a terminal; silent otherwise."""

    def __init__(self, enabled: bool, counts: RunCounts, name: str):
        self.enabled = enabled
        self.counts = counts
        self.name = name
        self._progress = None
        self._task = None

    def __enter__(self) -> "_Progress":
        if self.enabled:
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, \
                TimeRemainingColumn

            self._progress = Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                                      TextColumn("{task.fields[detail]}"), TimeElapsedColumn(), TextColumn("ETA"),
                                      TimeRemainingColumn(), transient=False)
            self._progress.start()
            self._task = self._progress.add_task(self.name, total=self.counts.total, detail=self.counts.line())
        return self

    def update(self) -> None:
        if self._progress is not None:
            self._progress.update(self._task, completed=self.counts.done + self.counts.failed,
                                  detail=self.counts.line())

    def __exit__(self, *exc) -> None:
        if self._progress is not None:
            self.update()
            self._progress.stop()
