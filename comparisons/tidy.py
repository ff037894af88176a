"""Run directories -> tidy pandas tables, with both metrics named explicitly everywhere.

* ``train_return``: mean raw return of the last 100 *training* episodes (the stochastic policy),
  as the trainers log it (`EpRewMean` / `ep_reward_mean`); the openrlbenchmark / CleanRL metric.
* ``eval_return``: mean return of the deterministic policy over the suite's evaluation episodes
  on a separate env (``evaluations.csv``); the rl-zoo metric.

Three tables, saved under ``<suite dir>/tidy/`` as CSV (and Parquet when pyarrow is present), so
every later stage (stats, tables, plots, report) can be redone from them without the run
directories: ``runs`` (one row per finished run), ``curves`` (one row per logged point, both
metrics) and ``diagnostics`` (per-update approxkl, clipfrac, entropy, explained variance, value loss).
``runs.csv`` stays plain text to be read by eye; the two long tables are gzipped CSV
(``curves.csv.gz``, ``diagnostics.csv.gz``; pandas reads them as they are): their rows repeat the run's
keys, so gzip makes them 3-5x smaller, which keeps committed suites well under the 50 MB budget.
"""
from __future__ import annotations

import gzip
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from tfppo.comparisons import rundir
from tfppo.comparisons.rundir import (CONFIG_JSON, EVALUATIONS_CSV, PROGRESS_CSV, PUBLISHED_RUN_FILES,
                                      SEMANTICS_JSON, STATUS_JSON, SUITE_JSON, SUITE_YAML, SUMMARY_JSON, TIDY_DIR,
                                      VERSIONS_JSON)
from tfppo.io import log_keys
from tfppo.util.atomic import replacing, write_text

if TYPE_CHECKING:
    from tfppo.comparisons.suite import RunSpec

METRICS = ("train_return", "eval_return")
RUN_KEYS = ["env", "variant", "backend", "preset", "seed"]
TIDY_TABLES = ("runs", "curves", "diagnostics")
GZIPPED_TABLES = ("curves", "diagnostics")
TIDY_QUANTITIES = ("timesteps", "time", "train_return", "approxkl", "kl", "clipfrac", "entropy",
                   "explained_variance", "value_loss")
DIAGNOSTICS = ("approxkl", "kl", "clipfrac", "entropy", "explained_variance", "value_loss")


# One clock for both trainers (issue 23): seconds from the start of learn() to the END of each update. Runs
# since the one loop log it as time/elapsed; earlier PPO1 runs logged TimeElapsed at the same point, earlier
# PPO2 runs only [SB]'s time_elapsed at the START of each update, which is taken as the end of the update
# before (a summary marked "clock": CLOCK has had this done, so it is never shifted twice).
CLOCK = "end_of_update"
UNIFIED_TIME_KEY = log_keys.UNIFIED_TIME_KEY
START_OF_UPDATE_TIME_KEYS = ("time_elapsed", "misc/time_elapsed")


def canonical_progress(progress: pd.DataFrame) -> pd.DataFrame:
    """progress.csv of either trainer -> canonical columns (missing quantities are NaN), times on `CLOCK`."""
    out = pd.DataFrame(index=progress.index)
    for name in TIDY_QUANTITIES:
        found = log_keys.find_key(progress.columns, name)
        out[name] = pd.to_numeric(progress[found], errors="coerce") if found else np.nan
    if out["timesteps"].isna().all():
        raise ValueError("progress.csv has no env-step column (total_timesteps or EnvStepsSoFar)")
    if UNIFIED_TIME_KEY in progress.columns:
        out["time"] = pd.to_numeric(progress[UNIFIED_TIME_KEY], errors="coerce")
    elif log_keys.find_key(progress.columns, "time") in START_OF_UPDATE_TIME_KEYS:
        out["time"] = end_of_update_times(out["time"])
    return out


def end_of_update_times(start_times: pd.Series) -> pd.Series:
    """[SB]/[B] ppo2's time_elapsed of update k+1 is the end of update k; the last update's end is unknown."""
    return start_times.shift(-1)


def read_step(budget: int, step_grids: list[np.ndarray]) -> int:
    """The env step every run of a comparison is read at: the largest step ≤ the budget that every run logged
    (a pair is compared at the same env step, never past the budget: PPO1's episode counter, row 10, can
    overshoot by a batch). 0 when the runs share no logged step ≤ the budget."""
    common = None
    for steps in step_grids:
        inside = set(int(t) for t in np.asarray(steps) if t <= budget)
        common = inside if common is None else common & inside
    return max(common) if common else 0


def reading(train: pd.DataFrame, evals: pd.DataFrame, step: int, eval_step: int | None = None) -> dict[str, Any]:
    """One run's metrics read at ``step``: train_return of the row at ``step``, eval_return of the evaluation
    at ``eval_step`` (default: the last one at or before ``step``), env-steps/s over the span from the start
    of learn() to the last end-of-update time ≤ ``step`` (the same span for both trainers)."""
    train = train.sort_values("timesteps")
    evals = evals.sort_values("timesteps")
    at = train[train["timesteps"] == step]
    timed = train[(train["timesteps"] <= step) & np.isfinite(train["time"].astype(float))]
    done = evals[(evals["timesteps"] <= (step if eval_step is None else eval_step))
                 & np.isfinite(evals["value"].astype(float))]
    if eval_step is not None:
        done = done[done["timesteps"] == eval_step]
    seconds = float(timed["time"].iloc[-1]) if len(timed) else None
    return {
        "train_return": _finite_or_none(at["value"].iloc[-1]) if len(at) else None,
        "train_timesteps": int(step) if len(at) else None,
        "eval_return": _finite_or_none(done["value"].iloc[-1]) if len(done) else None,
        "eval_timesteps": int(done["timesteps"].iloc[-1]) if len(done) else None,
        "train_time": seconds,
        "steps_per_second": float(timed["timesteps"].iloc[-1]) / seconds if seconds else None,
        "clock": CLOCK,
    }


def read_progress(run_dir: Path) -> pd.DataFrame:
    return canonical_progress(pd.read_csv(run_dir / PROGRESS_CSV))


def read_evaluations(run_dir: Path) -> pd.DataFrame:
    path = run_dir / EVALUATIONS_CSV
    if not path.exists():
        return pd.DataFrame(columns=["timesteps", "time_elapsed", "eval_return_mean"])
    return pd.read_csv(path)


def run_curves(progress: pd.DataFrame, evaluations: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """A run's train_return and eval_return curves (timesteps, time, value), times on `CLOCK`."""
    train = pd.DataFrame({"timesteps": progress["timesteps"], "time": progress["time"],
                          "value": progress["train_return"]})
    evals = pd.DataFrame({"timesteps": evaluations["timesteps"], "time": evaluations["time_elapsed"],
                          "value": evaluations["eval_return_mean"]})
    return train, evals


def summarize_run(run_dir: Path, run: "RunSpec", *, wall_time: float) -> dict[str, Any]:
    """The numbers of one finished run (its summary.json), read at the last logged step ≤ the budget; the
    tidy tables read every run of an env again at the step all of them logged (`align_readings`)."""
    progress = read_progress(run_dir)
    train, evals = run_curves(progress, read_evaluations(run_dir))
    semantics = rundir.read_json_if_present(run_dir / SEMANTICS_JSON) or {}
    return {
        "suite": run.suite, "env": run.env, "variant": run.variant.name, "backend": run.variant.trainer,
        "preset": run.variant.preset, "seed": run.seed, "budget": run.budget,
        "workers": run.workers if run.variant.trainer == "ppo1" else None,
        "num_envs": run.num_envs if run.variant.trainer == "ppo2" else None,
        "base": run.variant.base, "switch": run.variant.switch,
        "timesteps": int(progress["timesteps"].iloc[-1]), "updates": len(progress),
        **reading(train, evals, read_step(run.budget, [train["timesteps"].to_numpy()])),
        "wall_time": wall_time,
        "semantics": semantics,
    }


def _finite_or_none(value: Any) -> float | None:
    value = float(value)
    return value if np.isfinite(value) else None


def align_readings(runs: pd.DataFrame, curves: pd.DataFrame) -> pd.DataFrame:
    """Read every run of an env at the same steps from the curves: train_return at the largest step ≤ the
    budget that every run logged, eval_return at the largest evaluation step ≤ that which every run has
    (`read_step`), so each pair — and each variant's seeds — is compared at one env step."""
    out = runs.copy()
    for env, group in runs.groupby("env", sort=False):
        budget = int(group["budget"].iloc[0])
        env_curves = curves[curves["env"] == env]
        train_of = {key: c for key, c in env_curves[env_curves["metric"] == "train_return"].groupby(RUN_KEYS)}
        evals_of = {key: c for key, c in env_curves[env_curves["metric"] == "eval_return"].groupby(RUN_KEYS)}
        keys = [tuple(row[k] for k in RUN_KEYS) for _, row in group.iterrows()]
        step = read_step(budget, [train_of[key]["timesteps"].to_numpy() for key in keys])
        empty = env_curves.iloc[0:0]
        # the evaluation every run of the env has at or before the step (all runs share eval_freq)
        eval_step = read_step(step, [evals_of.get(key, empty)["timesteps"].to_numpy() for key in keys])
        for index, key in zip(group.index, keys):
            for field, value in reading(train_of[key], evals_of.get(key, empty), step, eval_step).items():
                out.loc[index, field] = value
    return out


def migrate_legacy_clock(summary: dict[str, Any], curves: pd.DataFrame, diagnostics: pd.DataFrame
                         ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """A run published before the one clock: PPO2's train-curve and diagnostics times move from the start to
    the end of each update (`end_of_update_times`); PPO1's were already end-of-update. Evaluation times are
    unchanged (both trainers always took them after the update)."""
    if summary.get("clock") == CLOCK or summary["backend"] != "ppo2":
        return curves, diagnostics
    curves = curves.copy()
    train = curves["metric"] == "train_return"
    ordered = curves[train].sort_values("timesteps")
    curves.loc[ordered.index, "time"] = end_of_update_times(ordered["time"]).to_numpy()
    diagnostics = diagnostics.sort_values("timesteps").copy()
    diagnostics["time"] = end_of_update_times(diagnostics["time"]).to_numpy()
    return curves, diagnostics


# -- collecting a suite directory -------------------------------------------------------------------
def collect(suite_dir: Path) -> dict[str, pd.DataFrame]:
    """The three tidy tables from the run directories under ``suite_dir``. A run published earlier (its
    summary.json without logs: a published suite copied back into a results root to be continued) takes
    its curves and diagnostics from the suite's existing tidy/ tables, so publishing again merges both."""
    runs, curves, diagnostics = [], [], []
    earlier = _existing_tidy(Path(suite_dir))
    for run_dir in rundir.finished_run_dirs(suite_dir):
        summary = rundir.read_json(run_dir / SUMMARY_JSON)
        keys = {k: summary[k] for k in RUN_KEYS}
        runs.append({k: v for k, v in summary.items() if k != "semantics"})
        if not (run_dir / PROGRESS_CSV).exists():
            if earlier is None:
                raise FileNotFoundError(f"{run_dir}: neither progress.csv nor earlier tidy tables to take it from")
            mine = {name: earlier[name][np.logical_and.reduce([earlier[name][k] == v for k, v in keys.items()])]
                    for name in GZIPPED_TABLES}
            run_curve, run_diag = migrate_legacy_clock(summary, mine["curves"], mine["diagnostics"])
            curves.append(run_curve)
            diagnostics.append(run_diag)
            continue
        progress = read_progress(run_dir)
        train, evals = run_curves(progress, read_evaluations(run_dir))
        curves += [train.assign(metric="train_return", **keys), evals.assign(metric="eval_return", **keys)]
        diagnostics.append(progress[["timesteps", "time", *DIAGNOSTICS]].assign(**keys))
    if not runs:
        raise FileNotFoundError(f"no finished runs under {suite_dir} (expected <env>/<variant>/seed-<s>/summary.json)")
    curve_table = _keys_first(pd.concat(curves, ignore_index=True))
    curve_table = curve_table[[*RUN_KEYS, "timesteps", "time", "metric", "value"]]
    return {
        "runs": align_readings(pd.DataFrame(runs), curve_table),
        "curves": curve_table,
        "diagnostics": _keys_first(pd.concat(diagnostics, ignore_index=True)),
    }


def tidy_file(tidy: Path, name: str) -> Path:
    """Where table ``name`` is written under ``tidy``."""
    return tidy / (f"{name}.csv.gz" if name in GZIPPED_TABLES else f"{name}.csv")


def _stored_tidy(tidy: Path, name: str) -> Path | None:
    """The file holding table ``name``, also in a tidy/ written before the long tables were gzipped (plain CSV)."""
    return next((p for p in (tidy_file(tidy, name), tidy / f"{name}.csv") if p.exists()), None)


def read_tidy(tidy: Path, name: str) -> pd.DataFrame:
    path = _stored_tidy(tidy, name)
    if path is None:
        raise FileNotFoundError(f"{tidy}: no {tidy_file(tidy, name).name}")
    return pd.read_csv(path)


def _existing_tidy(suite_dir: Path) -> dict[str, pd.DataFrame] | None:
    tidy = suite_dir / TIDY_DIR
    if _stored_tidy(tidy, "curves") is None:
        return None
    return {name: read_tidy(tidy, name) for name in GZIPPED_TABLES}


def _keys_first(frame: pd.DataFrame) -> pd.DataFrame:
    return frame[RUN_KEYS + [c for c in frame.columns if c not in RUN_KEYS]]


def _gzip(text: str) -> bytes:
    """Gzip with no time stamp and no file name in the header: the same table always gives the same bytes,
    so republishing an unchanged suite changes no file in git (pandas' gzip would store the temp file's name)."""
    return gzip.compress(text.encode("utf-8"), mtime=0)


def save_tidy(tables: dict[str, pd.DataFrame], suite_dir: Path) -> Path:
    """CSV always (the long tables gzipped, replacing any plain copy), Parquet as well when pyarrow is installed."""
    out = Path(suite_dir) / TIDY_DIR
    out.mkdir(parents=True, exist_ok=True)
    for name, frame in tables.items():
        target = tidy_file(out, name)
        with replacing(target) as tmp:
            if name in GZIPPED_TABLES:
                tmp.write_bytes(_gzip(frame.to_csv(index=False)))
            else:
                frame.to_csv(tmp, index=False)
        if name in GZIPPED_TABLES:
            (out / f"{name}.csv").unlink(missing_ok=True)  # a plain copy from before the gzip
        try:
            with replacing(out / f"{name}.parquet") as tmp:
                frame.to_parquet(tmp, index=False)
        except ImportError:
            pass
    return out


def load_tidy(suite_dir: Path) -> dict[str, pd.DataFrame]:
    """From the run directories when any holds its logs (and refresh tidy/; published runs among them keep
    their tidy rows), else from tidy/*.csv alone (a published results directory keeps only each run's
    summary.json beside the tidy tables)."""
    suite_dir = Path(suite_dir)
    if any((d / PROGRESS_CSV).exists() for d in rundir.finished_run_dirs(suite_dir)):
        tables = collect(suite_dir)
        save_tidy(tables, suite_dir)
        return tables
    tidy = suite_dir / TIDY_DIR
    if _stored_tidy(tidy, "runs") is None:
        raise FileNotFoundError(f"{suite_dir}: neither finished run directories nor {TIDY_DIR}/runs.csv")
    return {name: read_tidy(tidy, name) for name in TIDY_TABLES}


def publish(suite_dir: Path, dest: Path) -> int:
    """Copy what a published suite needs into ``dest``: suite.json/yaml, every finished run's small JSON
    files (not its logs or TensorBoard events) and the tidy tables built from the full run directories.
    What is published says nothing of the machine's paths (`published_json`), and each summary.json holds
    the reading of the tidy runs table (every run of an env read at the same step, `align_readings`).
    Returns the number of runs published."""
    suite_dir, dest = Path(suite_dir), Path(dest)
    dirs = rundir.finished_run_dirs(suite_dir)
    tables = collect(suite_dir)
    readings = tables["runs"].set_index(RUN_KEYS)
    dest.mkdir(parents=True, exist_ok=True)
    record = rundir.read_json_if_present(suite_dir / SUITE_JSON)
    if record is not None:
        rundir.write_json(dest / SUITE_JSON, published_json(SUITE_JSON, record))
    if (suite_dir / SUITE_YAML).exists():
        write_text(dest / SUITE_YAML, (suite_dir / SUITE_YAML).read_text())
    for run_dir in dirs:
        target = dest / run_dir.relative_to(suite_dir)
        target.mkdir(parents=True, exist_ok=True)
        for name in PUBLISHED_RUN_FILES:
            if not (run_dir / name).exists():
                continue
            data = rundir.read_json(run_dir / name)
            if name == SUMMARY_JSON:
                aligned = readings.loc[tuple(data[k] for k in RUN_KEYS)]
                data.update({field: _json_value(aligned[field]) for field in READING_FIELDS})
            rundir.write_json(target / name, published_json(name, data))
    save_tidy(tables, dest)
    return len(dirs)


READING_FIELDS = ("train_return", "train_timesteps", "eval_return", "eval_timesteps", "train_time",
                  "steps_per_second", "clock")
# what a run's versions.json could not record when it ran before a field existed
VERSIONS_ADDED_LATER = ("cpu_model", "environment", "tf-keras", "mujoco", "box2d", "ale-py", "minatar",
                        "statsmodels", "matplotlib")


def published_json(name: str, data: dict[str, Any]) -> dict[str, Any]:
    """A results file as it is published: commands without the machine's paths (`rundir.portable_command`),
    the suite file by its name, and, in a versions.json written before a field existed, that field named as
    not recorded (never guessed)."""
    data = dict(data)
    if name in (CONFIG_JSON, STATUS_JSON) and "command" in data:
        data["command"] = rundir.portable_command(data["command"])
    if name == SUITE_JSON and data.get("source"):
        data["source"] = f"comparisons/suites/{Path(data['source']).name}"
    if name == VERSIONS_JSON:
        missing = [key for key in VERSIONS_ADDED_LATER if key not in data]
        if missing:
            data["not_recorded_at_run_time"] = missing
    return data


def _json_value(value: Any) -> Any:
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (np.floating, float)):
        return float(value) if np.isfinite(value) else None
    return None if value is None or (isinstance(value, float) and not np.isfinite(value)) else value
