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
from tfppo.comparisons.rundir import (EVALUATIONS_CSV, PROGRESS_CSV, PUBLISHED_RUN_FILES, SEMANTICS_JSON,
                                      SUITE_JSON, SUITE_YAML, SUMMARY_JSON, TIDY_DIR)
from tfppo.io import log_keys
from tfppo.util.atomic import replacing

if TYPE_CHECKING:
    from tfppo.comparisons.suite import RunSpec

METRICS = ("train_return", "eval_return")
RUN_KEYS = ["env", "variant", "backend", "preset", "seed"]
TIDY_TABLES = ("runs", "curves", "diagnostics")
GZIPPED_TABLES = ("curves", "diagnostics")
TIDY_QUANTITIES = ("timesteps", "time", "train_return", "approxkl", "kl", "clipfrac", "entropy",
                   "explained_variance", "value_loss")
DIAGNOSTICS = ("approxkl", "kl", "clipfrac", "entropy", "explained_variance", "value_loss")


def canonical_progress(progress: pd.DataFrame) -> pd.DataFrame:
    """progress.csv of either trainer -> canonical columns (missing quantities are NaN)."""
    out = pd.DataFrame(index=progress.index)
    for name in TIDY_QUANTITIES:
        found = log_keys.find_key(progress.columns, name)
        out[name] = pd.to_numeric(progress[found], errors="coerce") if found else np.nan
    if out["timesteps"].isna().all():
        raise ValueError("progress.csv has no env-step column (total_timesteps or EnvStepsSoFar)")
    return out


def read_progress(run_dir: Path) -> pd.DataFrame:
    return canonical_progress(pd.read_csv(run_dir / PROGRESS_CSV))


def read_evaluations(run_dir: Path) -> pd.DataFrame:
    path = run_dir / EVALUATIONS_CSV
    if not path.exists():
        return pd.DataFrame(columns=["timesteps", "time_elapsed", "eval_return_mean"])
    return pd.read_csv(path)


def summarize_run(run_dir: Path, run: "RunSpec", *, wall_time: float) -> dict[str, Any]:
    """The final numbers of one finished run (written as its summary.json)."""
    progress = read_progress(run_dir)
    evaluations = read_evaluations(run_dir)
    last = progress.iloc[-1]
    env_steps = int(last["timesteps"])
    train_time = float(last["time"]) if np.isfinite(last["time"]) else wall_time
    semantics = rundir.read_json_if_present(run_dir / SEMANTICS_JSON) or {}
    return {
        "suite": run.suite, "env": run.env, "variant": run.variant.name, "backend": run.variant.trainer,
        "preset": run.variant.preset, "seed": run.seed, "budget": run.budget,
        "workers": run.workers if run.variant.trainer == "ppo1" else None,
        "num_envs": run.num_envs if run.variant.trainer == "ppo2" else None,
        "base": run.variant.base, "switch": run.variant.switch,
        "timesteps": env_steps, "updates": len(progress),
        "train_return": _finite_or_none(last["train_return"]),
        "eval_return": _finite_or_none(evaluations["eval_return_mean"].iloc[-1]) if len(evaluations) else None,
        "eval_timesteps": int(evaluations["timesteps"].iloc[-1]) if len(evaluations) else None,
        "wall_time": wall_time, "train_time": train_time,
        "steps_per_second": env_steps / train_time if train_time > 0 else None,
        "semantics": semantics,
    }


def _finite_or_none(value: Any) -> float | None:
    value = float(value)
    return value if np.isfinite(value) else None


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
            for frames, name in ((curves, "curves"), (diagnostics, "diagnostics")):
                table = earlier[name]
                frames.append(table[np.logical_and.reduce([table[k] == v for k, v in keys.items()])])
            continue
        progress = read_progress(run_dir)
        evaluations = read_evaluations(run_dir)
        train = pd.DataFrame({"timesteps": progress["timesteps"], "time": progress["time"],
                              "metric": "train_return", "value": progress["train_return"]})
        evals = pd.DataFrame({"timesteps": evaluations["timesteps"], "time": evaluations["time_elapsed"],
                              "metric": "eval_return", "value": evaluations["eval_return_mean"]})
        for frame in (train, evals):
            curves.append(frame.assign(**keys))
        diag = progress[["timesteps", "time", *DIAGNOSTICS]].assign(**keys)
        diagnostics.append(diag)
    if not runs:
        raise FileNotFoundError(f"no finished runs under {suite_dir} (expected <env>/<variant>/seed-<s>/summary.json)")
    return {
        "runs": pd.DataFrame(runs),
        "curves": _keys_first(pd.concat(curves, ignore_index=True)),
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
    Returns the number of runs published."""
    import shutil

    suite_dir, dest = Path(suite_dir), Path(dest)
    dirs = rundir.finished_run_dirs(suite_dir)
    tables = collect(suite_dir)
    dest.mkdir(parents=True, exist_ok=True)
    for name in (SUITE_JSON, SUITE_YAML):
        if (suite_dir / name).exists():
            shutil.copyfile(suite_dir / name, dest / name)
    for run_dir in dirs:
        target = dest / run_dir.relative_to(suite_dir)
        target.mkdir(parents=True, exist_ok=True)
        for name in PUBLISHED_RUN_FILES:
            if (run_dir / name).exists():
                shutil.copyfile(run_dir / name, target / name)
    save_tidy(tables, dest)
    return len(dirs)
