"""The real thing: `compare.py run smoke` (PPO1 under mpirun vs PPO2), then a report, then `publish`
and the same tables redrawn from the published tidy CSVs alone (as committed results are)."""
from __future__ import annotations

import json
import shutil
import subprocess
import sys

import pandas as pd
import pytest


@pytest.mark.slow
@pytest.mark.mpi
def test_smoke_suite_end_to_end_and_report_from_tidy_csvs(tmp_path, repo_root, subprocess_env):
    compare = [sys.executable, str(repo_root / "scripts" / "compare.py")]
    # The demo's suite at a twelfth of its budget and 2 seeds: the same trainers, presets and pipeline, and the
    # learning itself is tested elsewhere (test_ppo1.py, test_ppo2_learning.py).
    smoke = (repo_root / "comparisons" / "suites" / "smoke.yaml").read_text()
    short = smoke.replace("budget: 49152", "budget: 4096").replace("freq: 10000", "freq: 2048")
    assert short.count("4096") == 1 and short.count("freq: 2048") == 1
    suite_path = tmp_path / "smoke.yaml"
    suite_path.write_text(short)
    out = tmp_path / "out"
    proc = subprocess.run([*compare, "run", str(suite_path), "--out", str(out), "--reps", "500", "--seeds", "2"],
                          capture_output=True, text=True, env=subprocess_env, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "| CartPole-v1 | ppo1" in proc.stdout and "| CartPole-v1 | ppo2" in proc.stdout
    assert "ppo1 − ppo2" in proc.stdout and "P(a > b)" in proc.stdout
    suite_dir = out / "smoke"
    runs = pd.read_csv(suite_dir / "tidy" / "runs.csv")
    assert len(runs) == 4 and set(runs["backend"]) == {"ppo1", "ppo2"} and sorted(set(runs["seed"])) == [0, 1]
    assert runs["train_return"].notna().all() and runs["eval_return"].notna().all()
    assert (runs.loc[runs["backend"] == "ppo2", "timesteps"] == 4096).all()  # 4 updates of 1024
    assert (runs.loc[runs["backend"] == "ppo1", "timesteps"] >= 4096).all()  # [B] counts completed episodes

    report = subprocess.run([*compare, "report", str(suite_dir), "--reps", "500"], capture_output=True, text=True,
                            env=subprocess_env, timeout=600)
    assert report.returncode == 0, report.stderr[-2000:]
    text = (suite_dir / "REPORT.md").read_text()
    assert "## Pairwise comparisons (a − b)" in text and "curves_eval_return_steps.png" in text
    figures = suite_dir / "report" / "figures"
    for name in ("curves_train_return_steps", "curves_eval_return_wallclock", "improvement_eval_return",
                 "diagnostics_CartPole-v1"):
        assert (figures / f"{name}.png").stat().st_size > 5000 and (figures / f"{name}.svg").exists()
    pairwise = pd.read_csv(suite_dir / "report" / "tables" / "pairwise.csv")

    # publish keeps what gets committed (suite.json, each run's small JSON files, tidy/) and reports there
    published = tmp_path / "results" / "smoke"
    pub = subprocess.run([*compare, "publish", str(suite_dir), str(published), "--reps", "500"],
                         capture_output=True, text=True, env=subprocess_env, timeout=600)
    assert pub.returncode == 0, pub.stderr[-2000:]
    assert "published 4 runs" in pub.stdout
    kept = {p.name for p in published.glob("CartPole-v1/*/seed-*/*")}
    # no logs, no TensorBoard; status.json says how many attempts each run took
    assert kept == {"summary.json", "versions.json", "config.json", "semantics.json", "status.json"}
    status = json.loads(next(published.glob("CartPole-v1/ppo1/seed-0/status.json")).read_text())
    assert status["state"] == "done" and status["attempt"] == 1
    assert len(list(published.glob("CartPole-v1/*/seed-*/summary.json"))) == 4
    pd.testing.assert_frame_equal(pd.read_csv(published / "report" / "tables" / "pairwise.csv"), pairwise)
    assert (published / "REPORT.md").exists()
    tidy_files = {p.name for p in (published / "tidy").glob("*.csv*")}
    assert tidy_files == {"runs.csv", "curves.csv.gz", "diagnostics.csv.gz"}
    shutil.rmtree(published / "report")
    again = subprocess.run([*compare, "table", str(published), "--reps", "500"], capture_output=True, text=True,
                           env=subprocess_env, timeout=600)
    assert again.returncode == 0, again.stderr[-2000:]
    pd.testing.assert_frame_equal(pd.read_csv(published / "report" / "tables" / "pairwise.csv"), pairwise)

    # continuing a published suite: copy it back into a results root, add a run that has its logs (here one
    # of the original runs), publish again: the published runs keep their curves, the new one brings its own
    cont = tmp_path / "continue" / "smoke"
    shutil.copytree(published, cont)
    fresh = "CartPole-v1/ppo2/seed-1"
    shutil.rmtree(cont / fresh)
    shutil.copytree(suite_dir / fresh, cont / fresh)
    merged_dir = tmp_path / "results2" / "smoke"
    merge = subprocess.run([*compare, "publish", str(cont), str(merged_dir), "--reps", "500"], capture_output=True,
                           text=True, env=subprocess_env, timeout=600)
    assert merge.returncode == 0, merge.stderr[-2000:]
    keys = ["env", "variant", "seed", "metric", "timesteps"]
    merged = pd.read_csv(merged_dir / "tidy" / "curves.csv.gz").sort_values(keys).reset_index(drop=True)
    original = pd.read_csv(suite_dir / "tidy" / "curves.csv.gz").sort_values(keys).reset_index(drop=True)
    pd.testing.assert_frame_equal(merged[keys + ["value"]], original[keys + ["value"]])
    pd.testing.assert_frame_equal(pd.read_csv(merged_dir / "report" / "tables" / "pairwise.csv"), pairwise)
