"""Statistics -> tables (pandas -> Markdown, CSV, LaTeX), each under a header saying what was run.

The header (suite, budget, seeds, evaluation protocol, versions, commit, machine) is built from
``suite.json`` and the runs' ``versions.json`` and kept in ``tidy/header.json``, so tables redrawn
from the committed tidy CSVs alone carry the same header.
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from tfppo.comparisons import rundir
from tfppo.comparisons.rundir import HEADER_JSON, SUITE_JSON, TIDY_DIR, VERSIONS_JSON
from tfppo.util.atomic import replacing, write_json, write_text

METRIC_NOTES = {
    "train_return": "mean raw return of the last 100 training episodes (stochastic policy; openrlbenchmark/CleanRL)",
    "eval_return": "mean return of the deterministic policy on a separate env (rl-zoo)",
}


def build_header(suite_dir: Path, runs: pd.DataFrame) -> dict[str, Any]:
    """What a reader needs to trust a number: the suite, its budgets and seeds, versions, commit, machine."""
    suite_dir = Path(suite_dir)
    saved = suite_dir / TIDY_DIR / HEADER_JSON
    suite = rundir.read_json_if_present(suite_dir / SUITE_JSON)
    if suite is None and saved.exists():
        return rundir.read_json(saved)
    every_run = [rundir.read_json(p) for p in sorted(suite_dir.glob(f"*/*/seed-*/{VERSIONS_JSON}"))]
    versions = every_run[0] if every_run else {}
    # a suite resumed across sessions can span commits: name each, with its number of runs
    commits = pd.Series([v.get("git_commit", "unknown") for v in every_run]).value_counts(sort=False)
    definition = (suite or {}).get("definition", {})
    ran = set(runs["env"])
    budgets = {env: entry["budget"] for env, entry in definition.get("envs", {}).items() if env in ran}
    header = {
        "suite": definition.get("name", suite_dir.name),
        "description": (suite or {}).get("description", ""),
        "budgets": budgets,
        "seeds": sorted(int(s) for s in runs["seed"].unique()),
        "evaluation": definition.get("evaluation", {}),
        "runs": int(len(runs)),
        "versions": {k: v for k, v in versions.items() if k not in ("git_commit", "machine") and v},
        "commit": ", ".join(f"{c} ({n} runs)" for c, n in commits.items()) if len(commits) > 1
        else versions.get("git_commit", "unknown"),
        "machine": versions.get("machine", "unknown"),
    }
    saved.parent.mkdir(parents=True, exist_ok=True)
    write_json(saved, header)
    return header


def header_lines(header: dict[str, Any]) -> list[str]:
    budgets = ", ".join(f"{env} {steps:,}" for env, steps in header.get("budgets", {}).items())
    evaluation = header.get("evaluation") or {}
    versions = ", ".join(f"{k} {v}" for k, v in sorted(header.get("versions", {}).items()))
    return [
        f"suite: {header['suite']} — {header.get('description', '')}",
        f"budget (env steps): {budgets}; seeds: {_seed_text(header.get('seeds', []))} ({header.get('runs')} runs)",
        f"evaluation: deterministic, every {evaluation.get('freq', '?')} steps, {evaluation.get('episodes', '?')} "
        "episodes on a separate env",
        f"commit {header.get('commit')}; machine: {header.get('machine')}",
        f"versions: {versions}",
    ]


def _seed_text(seeds: list[int]) -> str:
    if seeds and seeds == list(range(seeds[0], seeds[-1] + 1)):
        return f"{seeds[0]}–{seeds[-1]}"
    return ", ".join(map(str, seeds))


def fmt(value: float, digits: int = 1) -> str:
    return "–" if value is None or not np.isfinite(value) else f"{value:,.{digits}f}"


def fmt_p(p: float) -> str:
    """A p value to 3 decimals; one that would round to 0.000 reads "< 0.001": no test gives a p of exactly 0."""
    return "< 0.001" if p is not None and np.isfinite(p) and p < 0.0005 else fmt(p, 3)


def ci_text(point: float, low: float, high: float, digits: int = 1) -> str:
    return f"{fmt(point, digits)} [{fmt(low, digits)}, {fmt(high, digits)}]"


def results_table(per_variant: pd.DataFrame) -> pd.DataFrame:
    """Both metrics side by side per env × variant: mean ± std, median, IQM [95% CI], AUC, speed."""
    rows = []
    for (env, variant), g in per_variant.groupby(["env", "variant"], sort=False):
        row: dict[str, Any] = {"env": env, "variant": variant, "backend": g["backend"].iloc[0],
                               "preset": g["preset"].iloc[0], "seeds": int(g["n"].max())}
        for _, m in g.iterrows():
            name = m["metric"]
            row[f"{name} mean ± std"] = f"{fmt(m.get('mean'))} ± {fmt(m.get('std'))}"
            row[f"{name} median"] = fmt(m.get("median"))
            row[f"{name} IQM [95% CI]"] = ci_text(m.get("iqm"), m.get("iqm_low"), m.get("iqm_high"))
            row[f"{name} AUC"] = fmt(m.get("auc"))
            row[f"{name} steps to threshold"] = (f"{fmt(m.get('steps_to_threshold'), 0)} ({m.get('reached')})")
        first = g.iloc[0]
        row["env-steps/s"] = fmt(first["steps_per_second"], 0)
        row["wall time (s)"] = fmt(first["wall_time"], 0)
        rows.append(row)
    return pd.DataFrame(rows)


FAMILY_HOLM = "Holm p (pair over envs)"


def report_holm(pairs: pd.DataFrame) -> str:
    """Column names that name their family: how many tests the report-wide corrections run over."""
    return f"Holm p (report, {int(pairs['report_tests'].iloc[0])} tests)"


def report_bh(pairs: pd.DataFrame) -> str:
    return f"BH q (report, {int(pairs['report_tests'].iloc[0])} tests)"


def _corrections(rows: pd.DataFrame) -> dict[str, Any]:
    """The per-family Holm p, the report-wide Holm p and BH q (`stats.correct_over_report`) and the reading."""
    family = {FAMILY_HOLM: rows["welch_p_holm"].map(fmt_p)} if "welch_p_holm" in rows else {}
    return {**family, report_holm(rows): rows["p_holm_report"].map(fmt_p),
            report_bh(rows): rows["q_bh_report"].map(fmt_p), "reading": rows["reading"]}


def pairwise_table(pairs: pd.DataFrame) -> pd.DataFrame:
    if pairs.empty:
        return pd.DataFrame()
    return pd.DataFrame({
        "env": pairs["env"], "comparison": pairs["a"] + " − " + pairs["b"], "metric": pairs["metric"],
        "mean a": pairs["mean_a"].map(fmt), "mean b": pairs["mean_b"].map(fmt),
        "difference [95% CI]": [ci_text(d, lo, hi) for d, lo, hi in
                                zip(pairs["difference"], pairs["difference_low"], pairs["difference_high"])],
        "P(a > b) [95% CI]": [ci_text(p, lo, hi, 2) for p, lo, hi in
                              zip(pairs["p_improvement"], pairs["p_improvement_low"], pairs["p_improvement_high"])],
        "Welch p": pairs["welch_p"].map(fmt_p),
        **_corrections(pairs),
        "identical seeds": [f"{i}/{m}" for i, m in zip(pairs["identical_seeds"], pairs["matched_seeds"])],
    })


def aggregate_table(aggregates: pd.DataFrame, metric: str) -> pd.DataFrame:
    if aggregates.empty:
        return pd.DataFrame()
    wide = aggregates.assign(text=[ci_text(v, lo, hi, 3) for v, lo, hi in
                                   zip(aggregates["value"], aggregates["low"], aggregates["high"])])
    table = wide.pivot(index="variant", columns="aggregate", values="text").reset_index()
    table.insert(1, "metric", metric)
    return table


def ablation_table(effects: pd.DataFrame) -> pd.DataFrame:
    """Which switch explains the gap: effect of each switch alone (variant − base) with CI."""
    if effects.empty:
        return pd.DataFrame()
    return pd.DataFrame({
        "env": effects["env"], "metric": effects["metric"], "base": effects["b"], "switch": effects["switch"],
        "effect [95% CI]": [ci_text(d, lo, hi) for d, lo, hi in
                            zip(effects["difference"], effects["difference_low"], effects["difference_high"])],
        "P(switch better)": effects["p_improvement"].map(lambda p: fmt(p, 2)),
        "Welch p": effects["welch_p"].map(fmt_p),
        **_corrections(effects),
    })


def factorial_table(effects: pd.DataFrame) -> pd.DataFrame:
    """Every main effect and interaction of a factorial (`tfppo.comparisons.factorial`) with its CI and p."""
    if effects.empty:
        return pd.DataFrame()
    return pd.DataFrame({
        "env": effects["env"], "metric": effects["metric"], "term": effects["term"],
        "effect [95% CI]": [ci_text(d, lo, hi) for d, lo, hi in
                            zip(effects["effect"], effects["effect_low"], effects["effect_high"])],
        "OLS p": effects["p"].map(fmt_p), **_corrections(effects)})


def anchor_table(comparison: pd.DataFrame) -> pd.DataFrame:
    """tfppo's mean ± std over seeds beside each published anchor (its ± is what `anchor_spread` says)."""
    return pd.DataFrame({
        "env": comparison["env"], "variant": comparison["variant"], "metric": comparison["metric"],
        "tfppo mean ± std (n)": [f"{fmt(m)} ± {fmt(s)} ({n})" for m, s, n in
                                 zip(comparison["mean"], comparison["std"], comparison["n"])],
        "anchor": comparison["anchor"],
        "anchor mean ± std": [f"{fmt(m)} ± {fmt(s)}" for m, s in zip(comparison["anchor_mean"],
                                                                   comparison["anchor_std"])],
        "anchor steps": [f"{int(x):,}" for x in comparison["anchor_steps"]],
        "anchor ±": comparison["anchor_spread"], "tfppo lands": comparison["lands"]})


_NUMBER_CELL = re.compile(r"(< )?-?[\d,]*\.?\d+|–")


def to_markdown(table: pd.DataFrame) -> str:
    """The cells exactly as formatted (tabulate's number parsing would turn "144.0" into "144" and "0.000" into
    "0"), numbers right-aligned."""
    if table.empty:
        return "(no rows)"
    align = ["right" if table[c].astype(str).str.fullmatch(_NUMBER_CELL).all() else "left" for c in table.columns]
    return table.to_markdown(index=False, disable_numparse=True, colalign=align)


def write_table(table: pd.DataFrame, path_stem: Path, header: dict[str, Any], title: str) -> list[Path]:
    """``<stem>.md`` (header + table), ``<stem>.csv`` and ``<stem>.tex`` (header as LaTeX comments)."""
    path_stem.parent.mkdir(parents=True, exist_ok=True)
    lines = header_lines(header)
    md = [f"### {title}", "", *[f"> {line}  " for line in lines], "", to_markdown(table), ""]
    outputs = [path_stem.with_suffix(".md"), path_stem.with_suffix(".csv"), path_stem.with_suffix(".tex")]
    write_text(outputs[0], "\n".join(md))
    with replacing(outputs[1]) as tmp:
        table.to_csv(tmp, index=False)
    latex = table.to_latex(index=False, escape=True, caption=title) if not table.empty else ""
    write_text(outputs[2], "".join(f"% {line}\n" for line in lines) + latex)
    return outputs
