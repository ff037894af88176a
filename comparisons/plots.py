"""Figures (matplotlib, PNG + SVG), each carrying the suite's header under the plot.

* learning curves per env, IQM across seeds with a 95% stratified-bootstrap band (rliable), against
  env steps and against wall-clock, for ``train_return`` and ``eval_return``;
* aggregate interval estimates, probability of improvement and performance profiles of
  normalised scores (rliable's own plotting);
* per-run diagnostics (approxkl, exact KL, clipfrac, entropy, explained variance, value loss):
  a return table alone hides instability;
* the ablation figure: each switch's effect alone, sorted, with its CI.
"""
from __future__ import annotations

import itertools
import textwrap
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from tfppo.comparisons import factorial  # noqa: E402
from tfppo.comparisons.tidy import DIAGNOSTICS  # noqa: E402
from tfppo.comparisons.stats import BootstrapSettings  # noqa: E402
from tfppo.comparisons.tables import header_lines  # noqa: E402
from tfppo.util.atomic import replacing  # noqa: E402

GRID_POINTS = 50
HEADER_FONTSIZE = 6
MONOSPACE_ASPECT = 0.6  # a monospace character's advance as a fraction of the font size
MAX_CURVE_VARIANTS = 8  # beyond this (ablation suites) the curves show the base variants only


def save(fig: plt.Figure, stem: Path, header: dict[str, Any]) -> list[Path]:
    """Write ``stem``.png and ``stem``.svg with the header in small type below the axes."""
    stem.parent.mkdir(parents=True, exist_ok=True)
    fig.canvas.draw()  # lay out first, so the header goes below everything already drawn (x labels included)
    bottom = fig.get_tightbbox(fig.canvas.get_renderer()).y0  # inches from the figure's bottom edge
    # wrapped to the figure's width: one unwrapped line (the versions) would widen the saved image, since
    # bbox_inches="tight" grows to fit it, and shrink the plot beside it
    width = max(40, int(fig.get_figwidth() * 72 / (HEADER_FONTSIZE * MONOSPACE_ASPECT)))
    text = "\n".join(wrapped for line in header_lines(header) for wrapped in textwrap.wrap(line, width))
    fig.text(0.01, (bottom - 0.08) / fig.get_figheight(), text, fontsize=HEADER_FONTSIZE, va="top",
             ha="left", family="monospace")
    paths = [stem.with_suffix(".png"), stem.with_suffix(".svg")]
    # No date and fixed element ids in the SVG: redrawing the same figure gives the same bytes, so
    # republishing a suite does not rewrite every committed SVG.
    with plt.rc_context({"svg.hashsalt": "tfppo"}):
        for path in paths:
            with replacing(path) as tmp:
                fig.savefig(tmp, bbox_inches="tight", dpi=120,
                            metadata={"Date": None} if path.suffix == ".svg" else None)
    plt.close(fig)
    return paths


def _colors(names: list[str]) -> dict[str, Any]:
    cmap = plt.get_cmap("tab10" if len(names) <= 10 else "tab20")
    return {name: cmap(i % cmap.N) for i, name in enumerate(names)}


def iqm_band(matrix: np.ndarray, settings: BootstrapSettings) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """IQM over runs at every grid point, with a stratified-bootstrap CI (rliable, runs resampled)."""
    from tfppo.comparisons.stats import _rliable, iqm

    library, _ = _rliable()

    def per_point(m: np.ndarray) -> np.ndarray:
        return iqm(m, axis=0)

    with settings.seeded() as rng:
        point, ci = library.get_interval_estimates({"x": matrix}, per_point, reps=settings.reps,
                                                   confidence_interval_size=settings.confidence, random_state=rng)
    return point["x"], ci["x"][0], ci["x"][1]


def _on_grid(g: pd.DataFrame, x: str, grid: np.ndarray) -> np.ndarray:
    """Each seed's curve interpolated onto ``grid`` (a finished run holds its last value)."""
    rows = []
    for _, run in g.groupby("seed"):
        run = run.dropna(subset=["value", x]).sort_values(x)
        if len(run):
            rows.append(np.interp(grid, run[x].to_numpy(float), run["value"].to_numpy(float)))
    return np.array(rows)


def curve_variants(runs: pd.DataFrame) -> list[str]:
    variants = list(dict.fromkeys(runs["variant"]))
    if len(variants) > MAX_CURVE_VARIANTS and "base" in runs:
        bases = runs.loc[runs["base"].isna(), "variant"]
        variants = list(dict.fromkeys(bases))
    return variants


def learning_curves(curves: pd.DataFrame, runs: pd.DataFrame, metric: str, x: str, header: dict[str, Any],
                    stem: Path, settings: BootstrapSettings) -> list[Path]:
    """One panel per env: IQM of ``metric`` across seeds against ``x`` (timesteps or time)."""
    envs = list(dict.fromkeys(runs["env"]))
    variants = curve_variants(runs)
    colors = _colors(variants)
    data = curves[(curves["metric"] == metric) & curves["variant"].isin(variants)]
    fig, axes = plt.subplots(1, len(envs), figsize=(max(6.0, 4.2 * len(envs)), 3.6), squeeze=False,
                             layout="constrained")
    for ax, env in zip(axes[0], envs):
        env_data = data[data["env"] == env]
        if env_data.empty:
            continue
        grid = np.linspace(0.0, float(env_data[x].max()), GRID_POINTS)
        for variant in variants:
            matrix = _on_grid(env_data[env_data["variant"] == variant], x, grid)
            if len(matrix) == 0:
                continue
            mid, low, high = iqm_band(matrix, settings)
            ax.plot(grid, mid, color=colors[variant], label=f"{variant} (n={len(matrix)})")
            ax.fill_between(grid, low, high, color=colors[variant], alpha=0.2, linewidth=0)
        ax.set_title(env)
        ax.set_xlabel("env steps" if x == "timesteps" else "wall-clock seconds")
        ax.set_ylabel(f"{metric} (IQM, 95% CI)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    return save(fig, stem, header)


def aggregate_plot(aggregates: pd.DataFrame, metric: str, header: dict[str, Any], stem: Path) -> list[Path]:
    from rliable import plot_utils

    names = ["IQM", "mean", "median", "optimality_gap"]
    variants = list(dict.fromkeys(aggregates["variant"]))
    point, ci = {}, {}
    for variant in variants:
        g = aggregates[aggregates["variant"] == variant].set_index("aggregate").loc[names]
        point[variant] = g["value"].to_numpy()
        ci[variant] = np.stack([g["low"].to_numpy(), g["high"].to_numpy()])
    fig, _ = plot_utils.plot_interval_estimates(point, ci, metric_names=names, algorithms=variants,
                                                xlabel=f"normalised {metric}")
    return save(fig, stem, header)


def improvement_plot(pairs: pd.DataFrame, metric: str, header: dict[str, Any], stem: Path) -> list[Path]:
    """P(a > b) with its CI for each declared pair, one row per env (rliable's layout)."""
    from rliable import plot_utils

    rows = pairs[pairs["metric"] == metric]
    estimates = {f"{r.a} [{r.env}],{r.b}": np.array([r.p_improvement]) for r in rows.itertuples()}
    intervals = {f"{r.a} [{r.env}],{r.b}": np.array([[r.p_improvement_low], [r.p_improvement_high]])
                 for r in rows.itertuples()}
    fig, ax = plt.subplots(figsize=(5, 0.5 + 0.45 * max(1, len(estimates))))
    plot_utils.plot_probability_of_improvement(estimates, intervals, ax=ax, xlabel=f"P(a > b), {metric}")
    return save(fig, stem, header)


def profiles_plot(taus: np.ndarray, profiles: dict[str, np.ndarray], cis: dict[str, np.ndarray], metric: str,
                  header: dict[str, Any], stem: Path) -> list[Path]:
    from rliable import plot_utils

    colors = _colors(list(profiles))
    fig, ax = plt.subplots(figsize=(6, 3.6))
    plot_utils.plot_performance_profiles(profiles, taus, performance_profile_cis=cis, ax=ax, colors=colors,
                                         xlabel=rf"normalised {metric} ($\tau$)")
    ax.legend(handles=[plt.Line2D([], [], color=c, label=v) for v, c in colors.items()], fontsize=7)
    return save(fig, stem, header)


def diagnostics_plot(diagnostics: pd.DataFrame, runs: pd.DataFrame, env: str, header: dict[str, Any],
                     stem: Path) -> list[Path]:
    """Every run's per-update diagnostics on one env, one thin line per seed, coloured by variant."""
    variants = curve_variants(runs)
    colors = _colors(variants)
    data = diagnostics[(diagnostics["env"] == env) & diagnostics["variant"].isin(variants)]
    fig, axes = plt.subplots(2, 3, figsize=(13, 6.5), squeeze=False, layout="constrained")
    for ax, name in zip(axes.flat, DIAGNOSTICS):
        for (variant, _), run in data.groupby(["variant", "seed"]):
            if run[name].notna().any():
                # rasterized: hundreds of runs × updates as SVG paths made a 2 MB file; the PNG is unchanged
                ax.plot(run["timesteps"], run[name], color=colors[variant], alpha=0.6, linewidth=0.8, rasterized=True)
        ax.set_title(name + (" (PPO2 ½·clipped, PPO1 MSE)" if name == "value_loss" else ""), fontsize=9)
        ax.set_xlabel("env steps")
        ax.grid(alpha=0.3)
    handles = [plt.Line2D([], [], color=colors[v], label=v) for v in variants]
    fig.legend(handles=handles, loc="upper right", fontsize=8)
    fig.suptitle(f"{env}: training diagnostics per run")
    return save(fig, stem, header)


AblationCells = dict[tuple[str, str], pd.DataFrame]


def ablation_grid(effects: pd.DataFrame, metric: str) -> tuple[list[str], list[str], AblationCells]:
    """The ablation figure's layout: one row per env, one column per base (in order of first appearance), and
    each (env, base) cell's effects sorted by size. A base ablated on one env only (``ppo2-vecnorm``) leaves the
    other rows' cell empty rather than shifting the columns, so a column always reads as one base."""
    rows = effects[effects["metric"] == metric]
    envs = list(dict.fromkeys(rows["env"]))
    bases = list(dict.fromkeys(rows["b"]))
    cells = {key: g.sort_values("difference") for key, g in rows.groupby(["env", "b"], sort=False)}
    return envs, bases, cells


def ablation_plot(effects: pd.DataFrame, metric: str, header: dict[str, Any], stem: Path,
                  gaps: pd.DataFrame | None = None) -> list[Path]:
    """Write the ablation figure (`ablation_figure`) with the suite's header."""
    return save(ablation_figure(effects, metric, gaps), stem, header)


def ablation_figure(effects: pd.DataFrame, metric: str, gaps: pd.DataFrame | None = None) -> plt.Figure:
    """Each switch's effect alone (variant − base) with its 95% CI, sorted, in an env × base grid
    (`ablation_grid`); with ``gaps`` (`stats.full_gaps`) a dashed line at the whole gap from that base, the scale a
    switch is read on, named in the panel's title rather than in a legend that could cover a point."""
    envs, bases, cells = ablation_grid(effects, metric)
    row_heights = [0.9 + 0.3 * max((len(cells[env, b]) for b in bases if (env, b) in cells), default=1)
                   for env in envs] or [1.0]
    fig, axes = plt.subplots(max(1, len(envs)), max(1, len(bases)), squeeze=False, layout="constrained",
                             figsize=(4.4 * max(1, len(bases)), sum(row_heights)),
                             gridspec_kw={"height_ratios": row_heights})
    for (i, env), (j, base) in ((r, c) for r in enumerate(envs) for c in enumerate(bases)):
        ax = axes[i, j]
        if (env, base) not in cells:
            ax.set_axis_off()
            continue
        g = cells[env, base]
        y = np.arange(len(g))
        err = np.stack([g["difference"] - g["difference_low"], g["difference_high"] - g["difference"]])
        significant = g["reading"] == "finding"  # survives the report-wide Holm correction
        ax.errorbar(g["difference"], y, xerr=err, fmt="none", ecolor="grey", capsize=2)
        ax.scatter(g["difference"], y, c=np.where(significant, "tab:red", "tab:blue"), zorder=3, s=18)
        ax.axvline(0.0, color="black", linewidth=0.8)
        title = f"{env}: from {base}"
        if gaps is not None:
            for gap in gaps[(gaps["env"] == env) & (gaps["metric"] == metric) & (gaps["base"] == base)].itertuples():
                ax.axvline(gap.gap, color="tab:green", linestyle="--", linewidth=1.0)
                title += f"\ndashed: whole gap {gap.other} − {base} = {gap.gap:+.1f}"
        ax.set_yticks(y, g["switch"], fontsize=8)
        ax.set_title(title, fontsize=9)
        ax.set_xlabel(f"Δ {metric} (switch alone − base)", fontsize=8)
        ax.grid(alpha=0.3, axis="x")
    return fig


def interaction_plot(runs: pd.DataFrame, design: factorial.Design, metric: str, header: dict[str, Any],
                     stem: Path) -> list[Path]:
    """One panel per env × pair of switches: the mean of ``metric`` with the first switch off/on (x) and one line
    per level of the second, averaged over the other switches' cells, ± one standard error. Parallel lines: no
    interaction; crossing or diverging lines: the first switch's effect depends on the second."""
    pairs = list(itertools.combinations(design.switches, 2))
    envs = list(dict.fromkeys(runs.loc[runs["variant"].isin(list(design.cells)), "env"]))
    fig, axes = plt.subplots(max(1, len(envs)), len(pairs), squeeze=False, layout="constrained",
                             figsize=(3.6 * len(pairs), 2.9 * max(1, len(envs))))
    for j, (first, second) in enumerate(pairs):
        means = factorial.marginal_means(runs, design, metric, first, second)
        for i, env in enumerate(envs):
            ax = axes[i, j]
            g = means[means["env"] == env]
            for on, style in ((False, "tab:blue"), (True, "tab:red")):
                line = g[g["second_on"] == on].sort_values("first_on")
                ax.errorbar([0, 1], line["mean"], yerr=line["se"], color=style, marker="o", capsize=3,
                            label=f"{second} {'flipped' if on else 'base'}")
            ax.set_xticks([0, 1], [f"{first}\nbase", f"{first}\nflipped"], fontsize=8)
            ax.set_title(env, fontsize=9)
            ax.set_ylabel(metric, fontsize=8)
            ax.grid(alpha=0.3)
            ax.legend(fontsize=7)
    return save(fig, stem, header)
