"""Where a long suite stands: ``compare.py status SUITE --out DIR``, safe beside a live runner.

Suites such as ``ablation`` outlive a session and are continued by rerunning ``compare.py run``; this
answers, with the same arguments, what that rerun would find: per env the runs finished, running, failed,
interrupted and not started, and a planning estimate of the time left taken from the finished runs' own
wall times. It writes nothing and takes no lock; it only tests whether a runner holds one, which is what
tells a run still marked ``running`` (a live runner) from one whose runner was killed (``interrupted``).
"""
from __future__ import annotations

import statistics
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import pandas as pd

from tfppo.comparisons import rundir
from tfppo.comparisons.rundir import STATUS_JSON, SUMMARY_JSON
from tfppo.comparisons.runner import check_definition, runner_active
from tfppo.comparisons.suite import RunSpec, Suite

STATES = ("done", "running", "failed", "interrupted", "not started")


@dataclass(frozen=True)
class RunState:
    run: RunSpec
    state: str  # one of STATES
    wall_time: Optional[float] = None  # seconds, for a finished run
    elapsed: Optional[float] = None  # seconds since it started, for a running one
    error: Optional[str] = None  # for a failed one


def run_states(suite: Suite, suite_dir: Path, runner_at_work: bool) -> list[RunState]:
    """The state of every run `compare.py run` would consider, in its order (`Suite.runs`)."""
    states = []
    for run in suite.runs():
        path = suite_dir / run.relative_dir()
        status = rundir.read_json_if_present(path / STATUS_JSON) or {}
        if (path / SUMMARY_JSON).exists():
            states.append(RunState(run, "done", wall_time=status.get("wall_time")))
        elif status.get("state") == "running" and runner_at_work:
            states.append(RunState(run, "running", elapsed=max(0.0, time.time() - status.get("started", time.time()))))
        elif status.get("state") == "failed":
            states.append(RunState(run, "failed", error=status.get("error")))
        elif status.get("state") in ("running", "interrupted"):  # "running" without a runner: it was killed
            states.append(RunState(run, "interrupted"))
        else:
            states.append(RunState(run, "not started"))
    return states


def _typical_wall_times(states: list[RunState]) -> dict[tuple[str, str], float]:
    """Median wall time of the finished runs per (env, trainer): PPO1 and PPO2 runs of an env differ."""
    finished: dict[tuple[str, str], list[float]] = {}
    for s in states:
        if s.state == "done" and s.wall_time is not None:
            finished.setdefault((s.run.env, s.run.variant.trainer), []).append(s.wall_time)
    return {key: statistics.median(times) for key, times in finished.items()}


def status_table(states: list[RunState], jobs: int) -> pd.DataFrame:
    """One row per env: counts per state, the median finished run, and the hours left at ``jobs`` cores.

    Hours left = the core-seconds still to spend / ``jobs``: each unfinished run costs the median wall
    time of its env's finished runs of the same trainer, times the cores it takes (`RunSpec.processes`),
    less what a running one has already spent. Empty when an unfinished run has no finished peer to
    estimate from. A planning estimate: it assumes the cores stay full and the machine's speed steady.
    """
    typical = _typical_wall_times(states)
    rows = []
    for env in dict.fromkeys(s.run.env for s in states):
        here = [s for s in states if s.run.env == env]
        counts = {state: sum(s.state == state for s in here) for state in STATES}
        unfinished = [s for s in here if s.state != "done"]
        known = all((s.run.env, s.run.variant.trainer) in typical for s in unfinished)
        core_seconds = sum(max(0.0, typical[(s.run.env, s.run.variant.trainer)] - (s.elapsed or 0.0))
                           * s.run.processes for s in unfinished) if known else None
        done_times = [s.wall_time for s in here if s.state == "done" and s.wall_time is not None]
        rows.append({
            "env": env, **counts,
            "median finished run (min)": f"{statistics.median(done_times) / 60:.1f}" if done_times else "",
            f"left at {jobs} cores (h)": f"{core_seconds / jobs / 3600:.1f}" if core_seconds is not None else "",
        })
    return pd.DataFrame(rows)


def describe(suite: Suite, suite_dir: Path, jobs: int) -> str:
    """The status as text: a Markdown table, the failed runs' errors, and whether a runner is at work."""
    from tfppo.comparisons.tables import to_markdown

    check_definition(suite, suite_dir)
    at_work = runner_active(suite_dir)
    states = run_states(suite, suite_dir, at_work)
    done = sum(s.state == "done" for s in states)
    lines = [f"{suite.name} in {suite_dir}: {done} of {len(states)} runs finished", "",
             to_markdown(status_table(states, jobs))]
    failed = [s for s in states if s.state == "failed"]
    if failed:
        lines += ["", "failed (a rerun of `compare.py run` tries them again):"]
        lines += [f"  {'/'.join(map(str, s.run.key))}: {s.error}" for s in failed]
    lines += ["", "a runner is at work on this directory" if at_work
              else "no runner is at work on this directory: `compare.py run` with the same arguments continues"]
    return "\n".join(lines)
