"""One suite directory -> statistics -> tables, figures and a Markdown report.

Every stage reads the previous stage's files (run directories or the tidy CSVs), so a table or a
figure can be redrawn without rerunning anything, from committed results alone.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from tfppo.comparisons import factorial, stats, tables
from tfppo.comparisons.tidy import METRICS, load_tidy
from tfppo.comparisons import rundir
from tfppo.comparisons.rundir import HEADER_JSON, REPORT_DIR, REPORT_MD, SUITE_JSON, TIDY_DIR
from tfppo.util.atomic import write_json, write_text

ABLATION_TITLE = "Which switch explains the gap"
FACTORIAL_TITLE = "Interactions: every main effect and interaction of the factorial"
# Below this many seeds a side, the report says that its bootstrap intervals run narrow (see ``stats_note``).
FEW_SEEDS = 10


@dataclass
class Analysis:
    """Everything computed from one suite directory."""

    suite_dir: Path
    header: dict[str, Any]
    runs: pd.DataFrame
    curves: pd.DataFrame
    diagnostics: pd.DataFrame
    per_variant: pd.DataFrame
    pairs: pd.DataFrame
    aggregates: dict[str, pd.DataFrame] = field(default_factory=dict)
    scores: dict[str, dict[str, Any]] = field(default_factory=dict)
    effects: pd.DataFrame = field(default_factory=pd.DataFrame)
    anchors: pd.DataFrame = field(default_factory=pd.DataFrame)
    idle_ablations: dict[str, list[str]] = field(default_factory=dict)  # env -> variants not run
    design: factorial.Design | None = None
    factorial: pd.DataFrame = field(default_factory=pd.DataFrame)  # `factorial.effects` of both metrics


def suite_record(suite_dir: Path) -> dict[str, Any]:
    """The directory's suite.json ({} when there is none; a corrupt one is an error, `tfppo.comparisons.rundir`)."""
    return rundir.read_json_if_present(Path(suite_dir) / SUITE_JSON) or {}


def analyse(suite_dir: Path, settings: stats.BootstrapSettings) -> Analysis:
    suite_dir = Path(suite_dir)
    data = load_tidy(suite_dir)
    runs, curves = data["runs"], data["curves"]
    header = tables.build_header(suite_dir, runs)
    record = suite_record(suite_dir)
    envs = record.get("definition", {}).get("envs", {})
    thresholds = {env: entry.get("threshold") for env, entry in envs.items()}
    pairs = [tuple(p) for p in record.get("pairs", header.get("pairs", []))]
    if pairs and "pairs" not in header:
        header["pairs"] = pairs
        write_json(suite_dir / TIDY_DIR / HEADER_JSON, header)
    per_variant = pd.concat([stats.per_variant(runs, curves, m, settings, thresholds) for m in METRICS],
                            ignore_index=True)
    pair_rows = pd.concat([stats.pairwise(runs, pairs, m, settings) for m in METRICS], ignore_index=True)
    design = factorial.design_from_record(record.get("definition", {}).get("variants", {}))
    effects = pd.DataFrame() if design is None else pd.concat(
        [factorial.effects(runs, design, m, settings.reps, settings.seed, settings.confidence) for m in METRICS],
        ignore_index=True)
    pair_rows, effects = stats.correct_over_report(pair_rows, effects)  # one family: every test of the report
    analysis = Analysis(suite_dir, header, runs, curves, data["diagnostics"], per_variant, pair_rows,
                        idle_ablations=record.get("idle_ablations", {}), design=design, factorial=effects)
    references = stats.load_references()
    for metric in METRICS:
        scores, envs_used = stats.normalized_scores(runs.dropna(subset=[metric]), metric, references)
        if scores:
            analysis.scores[metric] = {"scores": scores, "envs": envs_used}
            analysis.aggregates[metric] = stats.aggregate(scores, settings)
    analysis.effects = stats.ablation_effects(pair_rows, runs)
    analysis.anchors = stats.anchor_comparison(runs, stats.load_anchors())
    return analysis


def console_tables(analysis: Analysis) -> str:
    """The compact view printed after a run: both metrics with IQM + CI, speed, and every pair."""
    pv = analysis.per_variant
    rows = []
    for (env, variant), g in pv.groupby(["env", "variant"], sort=False):
        by_metric = {m["metric"]: m for _, m in g.iterrows()}
        row = {"env": env, "variant": variant, "preset": g["preset"].iloc[0], "seeds": int(g["n"].max())}
        for metric in METRICS:
            m = by_metric.get(metric)
            row[f"{metric} IQM [95% CI]"] = "–" if m is None else tables.ci_text(m["iqm"], m["iqm_low"], m["iqm_high"])
        row["env-steps/s"] = tables.fmt(g["steps_per_second"].iloc[0], 0)
        rows.append(row)
    lines = [*tables.header_lines(analysis.header), "", tables.to_markdown(pd.DataFrame(rows)), ""]
    pair_table = tables.pairwise_table(analysis.pairs)
    if not pair_table.empty:
        shown = pair_table[["env", "comparison", "metric", "difference [95% CI]", "P(a > b) [95% CI]",
                            tables.FAMILY_HOLM, tables.report_holm(analysis.pairs), "reading", "identical seeds"]]
        lines += [tables.to_markdown(shown), ""]
    lines.append(f"{stats_note(analysis)}")
    return "\n".join(lines)


def stats_note(analysis: Analysis) -> str:
    """How to read the statistics, with a warning when the seeds are few.

    Why the warning: a percentile bootstrap from n values has a spread √((n−1)/n) of the sample's and normal
    rather than t quantiles, so with 3–5 seeds its 95% interval covers less than 95% (Hesterberg 2015, "What
    teachers should know about the bootstrap"). A CI that only just excludes 0 then needs Welch's p beside it.
    """
    tested = [t for t in (analysis.pairs, analysis.factorial) if len(t) and "report_tests" in t]
    tests = int(tested[0]["report_tests"].iloc[0]) if tested else 0
    note = ("IQM and differences: 95% stratified-bootstrap CIs (rliable); P(a > b): Mann-Whitney probability of "
            "improvement with CI. Welch t-test p, corrected two ways: *Holm p (pair over envs)* over the envs of "
            f"one pair and metric; *Holm p* and *BH q (report, {tests} tests)* over every test of this report "
            f"(each pair × env × metric, and each factorial term × env × metric; Holm: family-wise error, "
            f"Benjamini-Hochberg: false-discovery rate). A "
            f"difference is a *finding* only when its report-wide Holm p < {stats.FINDING_ALPHA}; one with Welch "
            f"p < {stats.FINDING_ALPHA} that does not survive that is *suggestive* (column *reading*). "
            "train_return = "
            f"{tables.METRIC_NOTES['train_return']}; eval_return = {tables.METRIC_NOTES['eval_return']}.")
    if analysis.design is not None:
        note += (" Factorial: each switch coded −1 (base) / +1 (towards preset); a term's effect is 2β of the "
                 "saturated linear model over the codes: for a switch, the mean with it flipped minus without, "
                 "averaged over the other switches; for an interaction of two, half the difference between one "
                 "switch's effect with the other flipped and without. CIs: stratified bootstrap of the runs within "
                 "each cell; p: the OLS t-test of the coefficient (statsmodels).")
    fewest = int(analysis.runs.groupby(["env", "variant"])["seed"].nunique().min()) if len(analysis.runs) else 0
    if 0 < fewest < FEW_SEEDS:
        note += (f" With as few as {fewest} seeds per variant, the bootstrap CIs run narrow (they resample {fewest} "
                 "values a side and use no t-correction): read a CI that barely excludes 0 with the Welch p beside it.")
    return note


def write_tables(analysis: Analysis) -> list[Path]:
    out = analysis.suite_dir / REPORT_DIR / "tables"
    header = analysis.header
    written = tables.write_table(tables.results_table(analysis.per_variant), out / "results", header,
                                 "Per env and variant: both metrics")
    written += tables.write_table(tables.pairwise_table(analysis.pairs), out / "pairwise", header,
                                  "Pairwise comparisons (a − b)")
    for metric, aggregates in analysis.aggregates.items():
        written += tables.write_table(tables.aggregate_table(aggregates, metric), out / f"aggregate_{metric}",
                                      header, f"Across envs: normalised {metric} (fixed references)")
    if not analysis.effects.empty:
        written += tables.write_table(tables.ablation_table(analysis.effects), out / "ablation", header,
                                      "Which switch explains the gap: each switch alone, against its base")
    if not analysis.factorial.empty:
        written += tables.write_table(tables.factorial_table(analysis.factorial), out / "factorial", header,
                                      FACTORIAL_TITLE)
    if not analysis.anchors.empty:
        written += tables.write_table(tables.anchor_table(analysis.anchors), out / "anchors", header,
                                      "Against the published anchors (comparisons/references.yaml)")
    return written


def write_figures(analysis: Analysis, settings: stats.BootstrapSettings) -> list[Path]:
    from tfppo.comparisons import plots

    out = analysis.suite_dir / REPORT_DIR / "figures"
    header, written = analysis.header, []
    for metric in METRICS:
        for x, suffix in (("timesteps", "steps"), ("time", "wallclock")):
            written += plots.learning_curves(analysis.curves, analysis.runs, metric, x, header,
                                             out / f"curves_{metric}_{suffix}", settings)
        if not analysis.pairs.empty:
            written += plots.improvement_plot(analysis.pairs, metric, header, out / f"improvement_{metric}")
        if metric in analysis.aggregates:
            written += plots.aggregate_plot(analysis.aggregates[metric], metric, header, out / f"aggregate_{metric}")
            taus, profiles, cis = stats.performance_profiles(analysis.scores[metric]["scores"], settings)
            written += plots.profiles_plot(taus, profiles, cis, metric, header, out / f"profiles_{metric}")
        if analysis.design is not None:
            written += plots.interaction_plot(analysis.runs, analysis.design, metric, header,
                                              out / f"interactions_{metric}")
        if not analysis.effects.empty:
            written += plots.ablation_plot(analysis.effects, metric, header, out / f"ablation_{metric}",
                                           stats.full_gaps(analysis.pairs, analysis.effects))
    for env in dict.fromkeys(analysis.runs["env"]):
        written += plots.diagnostics_plot(analysis.diagnostics, analysis.runs, env, header,
                                          out / f"diagnostics_{_slug(env)}")
    return written


def _slug(text: str) -> str:
    return "".join(c if c.isalnum() or c in "-_" else "_" for c in text)


def _title(analysis: Analysis) -> str:
    """"PPO1 vs PPO2" when the suite runs both trainers; else what it compares within one (e.g. pomdp's
    "PPO2 lstm vs mlp")."""
    backends = sorted(set(analysis.per_variant["backend"])) if "backend" in analysis.per_variant else []
    if len(backends) != 1:
        return "PPO1 vs PPO2"
    pairs = ", ".join(f"{a} vs {b}" for a, b in analysis.header.get("pairs", []))
    return f"{backends[0].upper()} {pairs}" if pairs else f"{backends[0].upper()} variants"


def write_report(analysis: Analysis, figures: list[Path]) -> Path:
    """REPORT.md: header, tables inline, figures linked (PNG)."""
    root = analysis.suite_dir
    lines = [f"# {analysis.header['suite']}: {_title(analysis)}", "", *[f"> {line}  " for line in
                                                                   tables.header_lines(analysis.header)], ""]
    sections = [("Per env and variant", tables.results_table(analysis.per_variant)),
                ("Pairwise comparisons (a − b)", tables.pairwise_table(analysis.pairs))]
    sections += [(f"Across envs: normalised {m} (references: comparisons/references.yaml)",
                  tables.aggregate_table(a, m)) for m, a in analysis.aggregates.items()]
    if not analysis.effects.empty:
        sections.append((ABLATION_TITLE, tables.ablation_table(analysis.effects)))
    if not analysis.factorial.empty:
        sections.append((FACTORIAL_TITLE, tables.factorial_table(analysis.factorial)))
    if not analysis.anchors.empty:
        sections.append(("Against the published anchors (mean ± std over seeds; the anchor's ± as stated)",
                         tables.anchor_table(analysis.anchors)))
    for title, table in sections:
        lines += [f"## {title}", "", tables.to_markdown(table), ""]
        if title == ABLATION_TITLE and analysis.idle_ablations:
            lines += ["Not run, because their switch is idle on the env (no step of the run reads it, so the run "
                      "would repeat its base bit for bit; `tfppo/switch_scope.py`): " +
                      "; ".join(f"{env}: {', '.join(variants)}" for env, variants in analysis.idle_ablations.items())
                      + ".", ""]
    lines += ["## Figures", ""]
    for png in (p for p in figures if p.suffix == ".png"):
        rel = png.relative_to(root)
        lines += [f"![{png.stem}]({rel.as_posix()})", ""]
    suite = analysis.header["suite"]
    lines += ["## Method", "", stats_note(analysis), "",
              f"Produced by `python scripts/compare.py run {suite} --out <out>` (each run's exact trainer command "
              f"is its `config.json`), published with `python scripts/compare.py publish <out>/{suite} "
              f"{root.as_posix()}`.", "",
              "Regenerate: `python scripts/compare.py report " + root.as_posix() + "`", ""]
    path = root / REPORT_MD
    write_text(path, "\n".join(lines))
    return path
