"""Statistics against hand-computed values, tables from a fixed DataFrame, figures written."""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import scipy.stats

from tfppo.comparisons import stats, tables
from tfppo.comparisons.stats import BootstrapSettings

FAST = BootstrapSettings(reps=2000, seed=0)


def test_iqm_is_the_mean_of_the_middle_half():
    assert stats.iqm([1, 2, 3, 4, 5, 6, 7, 8]) == pytest.approx(4.5)
    assert stats.iqm([0, 10, 1, 2, 3, 100, 4, 5]) == pytest.approx(3.5)  # sorted middle half: 2, 3, 4, 5


def test_seeded_bootstrap_ci_contains_the_true_mean_and_is_reproducible():
    values = np.random.default_rng(1).normal(3.0, 1.0, size=50)
    point, low, high = stats.interval(values, np.mean, FAST)
    assert point == pytest.approx(values.mean())
    assert low < 3.0 < high and high - low < 1.0
    assert stats.interval(values, np.mean, FAST) == (point, low, high)
    assert stats.interval(values, np.mean, BootstrapSettings(reps=2000, seed=1)) != (point, low, high)


def test_welch_p_matches_the_hand_computed_statistic():
    a, b = [1.0, 2.0, 3.0, 4.0], [2.0, 4.0, 6.0, 8.0, 10.0]
    va, vb = 5 / 3, 10.0  # sample variances
    se2 = va / 4 + vb / 5
    t = (2.5 - 6.0) / math.sqrt(se2)
    df = se2 ** 2 / ((va / 4) ** 2 / 3 + (vb / 5) ** 2 / 4)
    assert t == pytest.approx(-2.251436, abs=1e-6) and df == pytest.approx(5.520788, abs=1e-6)
    assert stats.welch_p(a, b) == pytest.approx(2 * scipy.stats.t.sf(abs(t), df), rel=1e-12)
    assert stats.welch_p([500.0] * 3, [500.0] * 3) == 1.0  # identical constants: no difference
    assert math.isnan(stats.welch_p([1.0] * 3, [2.0] * 3))


def test_fast_statistics_equal_rlibles_to_the_last_bit():
    """iqm and probability_of_improvement replace rliable's per-resample calls; the published numbers must not move."""
    from rliable import metrics

    rng = np.random.default_rng(0)
    for n_a, n_b, tasks in [(5, 5, 1), (10, 7, 1), (3, 4, 3), (8, 8, 2)]:
        for draw in (lambda n: rng.normal(size=(n, tasks)) * 300,  # continuous returns
                     lambda n: rng.choice([500.0, 500.0, 480.0, 9.5], size=(n, tasks))):  # CartPole-like ties
            a, b = draw(n_a), draw(n_b)
            assert stats.iqm(a) == metrics.aggregate_iqm(a)
            assert stats.probability_of_improvement(a, b) == metrics.probability_of_improvement(a, b)
            assert stats.probability_of_improvement(a, a) == metrics.probability_of_improvement(a, a) == 0.5
    values = rng.normal(size=10)
    assert stats.interval(values, stats.iqm, FAST) == stats.interval(values, metrics.aggregate_iqm, FAST)
    curves = rng.normal(size=(7, 50))
    curves[2, 3] = np.nan
    expected = scipy.stats.trim_mean(curves, 0.25, axis=0)  # the learning-curve band's statistic
    np.testing.assert_array_equal(stats.iqm(curves, axis=0), expected)
    assert math.isnan(stats.iqm(curves))


def test_performance_profile_statistic_equals_rlibles_score_distributions():
    from rliable import library

    scores = np.random.default_rng(1).choice([0.0, 0.5, 0.5, 1.0, 1.3], size=(9, 3))
    taus = np.linspace(0.0, 1.5, 31)  # includes 0.5 and 1.0 exactly: ties with the scores must count as "not above"
    np.testing.assert_array_equal(stats.score_distribution(scores, taus), library.score_distributions(scores, taus))


def test_probability_of_improvement_counts_pairs():
    # a > b in 5 of 9 pairs, 2 ties count half: (5 + 1) / 9
    assert stats.probability_of_improvement(np.array([1.0, 2.0, 3.0]), np.array([2.0, 2.0, 0.0])) \
        == pytest.approx(6 / 9)
    point, low, high = stats.two_sample_interval(np.array([1.0, 2.0, 3.0]), np.array([2.0, 2.0, 0.0]),
                                                 stats.probability_of_improvement, FAST)
    assert point == pytest.approx(6 / 9) and 0.0 <= low <= point <= high <= 1.0


def test_holm_adjustment():
    assert stats.holm([0.01, 0.04, 0.03]) == pytest.approx([0.03, 0.06, 0.06])
    adjusted = stats.holm([0.02, float("nan")])
    assert adjusted[0] == pytest.approx(0.02) and math.isnan(adjusted[1])


def test_area_under_curve_and_steps_to_threshold():
    t, v = [0, 50, 100], [0.0, 100.0, 100.0]
    assert stats.area_under_curve(t, v, 100) == pytest.approx(75.0)  # (0.5·50·100 + 50·100) / 100
    assert stats.steps_to_threshold(t, v, 90) == 50
    assert math.isnan(stats.steps_to_threshold(t, v, 200)) and math.isnan(stats.steps_to_threshold(t, v, None))


def _runs() -> pd.DataFrame:
    rows = []
    for env, scale in (("CartPole-v1", 1.0), ("Pendulum-v1", -1.0)):
        for seed in range(5):
            for variant, shift in (("ppo1", 3.0), ("ppo2", 0.0)):
                rows.append({"env": env, "variant": variant, "backend": variant, "preset": f"baselines-{variant}",
                             "seed": seed, "budget": 1000, "timesteps": 1000, "train_return": 200 * scale + shift
                             + seed, "eval_return": 250 * scale + shift + seed, "steps_per_second": 1000.0,
                             "wall_time": 10.0, "base": None, "switch": None})
    return pd.DataFrame(rows)


def test_pairwise_difference_and_holm_across_envs():
    table = stats.pairwise(_runs(), [("ppo1", "ppo2")], "train_return", FAST)
    assert list(table["env"]) == ["CartPole-v1", "Pendulum-v1"]
    assert table["difference"].tolist() == pytest.approx([3.0, 3.0])
    assert (table["difference_low"] <= 3.0).all() and (table["difference_high"] >= 3.0).all()
    # ppo1 203..207 vs ppo2 200..204: 22 of 25 pairs won, 2 ties count half -> 23/25
    assert table["p_improvement"].tolist() == pytest.approx([0.92, 0.92])
    p = stats.welch_p([203, 204, 205, 206, 207], [200, 201, 202, 203, 204])
    assert table["welch_p"].tolist() == pytest.approx([p, p])
    assert table["welch_p_holm"].tolist() == pytest.approx(stats.holm([p, p]))
    assert table["matched_seeds"].tolist() == [5, 5]
    assert table["identical_seeds"].tolist() == [0, 0]  # ppo1 = ppo2 + 3 on every seed
    ppo2 = _runs().query("variant == 'ppo2'")
    same = stats.pairwise(pd.concat([ppo2.assign(variant="x"), ppo2.assign(variant="y")]), [("x", "y")],
                          "train_return", FAST)
    assert same["identical_seeds"].tolist() == [5, 5] and same["difference"].tolist() == [0.0, 0.0]


def test_report_wide_corrections_are_holm_and_benjamini_hochberg_over_every_test():
    # Hand-computed for p = (0.01, 0.04, 0.03, 0.5) and one row without a p (not counted, m = 4):
    # Holm: sorted 0.01·4, 0.03·3, 0.04·2 -> running max 0.04, 0.09, 0.09; 0.5·1 -> 0.5.
    # BH: p·m/rank = 0.04, 0.06, 0.0533, 0.5 -> running min from the top: 0.04, 0.0533, 0.0533, 0.5.
    # Split over two tables (pairwise rows and a factorial's effects, whose p column is "p"): one family of 4.
    pairs = pd.DataFrame({"welch_p": [0.01, 0.04, 0.03]})
    effects = pd.DataFrame({"p": [0.5, np.nan]})
    pairs_out, effects_out = stats.correct_over_report(pairs, effects)
    np.testing.assert_allclose([*pairs_out["p_holm_report"], *effects_out["p_holm_report"]],
                               [0.04, 0.09, 0.09, 0.5, np.nan])
    np.testing.assert_allclose([*pairs_out["q_bh_report"], *effects_out["q_bh_report"]],
                               [0.04, 0.16 / 3, 0.16 / 3, 0.5, np.nan])
    assert pairs_out["report_tests"].tolist() == [4] * 3 and effects_out["report_tests"].tolist() == [4] * 2
    assert [*pairs_out["reading"], *effects_out["reading"]] == ["finding", "suggestive", "suggestive", "–", "–"]
    assert "p_holm_report" not in pairs  # the input is left as it was


def test_pair_table_shows_tiny_p_values_as_below_a_thousandth_and_keeps_every_digit(tmp_path):
    # Ten seeds a side, 100 apart with spread ~3: Welch's p is ~1e-20, which "0.000" (or tabulate's "0") misreports.
    a, b = np.arange(100.0, 110.0), np.arange(0.0, 10.0)
    runs = pd.DataFrame({"env": "CartPole-v1", "variant": ["a"] * 10 + ["b"] * 10, "seed": [*range(10)] * 2,
                         "train_return": [*a, *b]})
    pairs = stats.correct_over_report(stats.pairwise(runs, [("a", "b")], "train_return", FAST))[0]
    assert pairs.loc[0, "welch_p"] < 1e-15
    row = tables.pairwise_table(pairs).iloc[0]
    assert (row["Welch p"], row["Holm p (pair over envs)"], row["Holm p (report, 1 tests)"], row["mean a"],
            row["mean b"]) == ("< 0.001", "< 0.001", "< 0.001", "104.5", "4.5")
    assert [tables.fmt_p(p) for p in (0.00049, 0.0005, 0.04567, 1.0, float("nan"))] == [
        "< 0.001", "0.001", "0.046", "1.000", "–"]
    md = tables.write_table(pd.DataFrame({"mean": ["144.0"], "Holm p": ["0.040"]}), tmp_path / "t", HEADER, "t")[0]
    assert "|  144.0 |    0.040 |" in md.read_text()  # right-aligned; tabulate would have printed 144 and 0.04


def test_normalised_scores_use_the_declared_references():
    refs = {"CartPole-v1": {"random": 22.2, "target": 500.0}}
    runs = pd.DataFrame({"env": ["CartPole-v1"] * 2, "variant": ["a", "a"], "seed": [0, 1],
                         "train_return": [261.1, 500.0]})
    scores, envs = stats.normalized_scores(runs, "train_return", refs)
    assert envs == ["CartPole-v1"] and scores["a"][:, 0] == pytest.approx([0.5, 1.0])
    declared = stats.load_references()
    assert declared["CartPole-v1"] == {"random": 22.2, "target": 500.0}
    assert declared["Hopper-v5"]["target"] == pytest.approx(2316.16)


HEADER = {"suite": "fixed", "description": "a fixed table", "budgets": {"CartPole-v1": 1000}, "seeds": [0, 1, 2],
          "evaluation": {"freq": 100, "episodes": 5}, "runs": 6, "versions": {"tfppo": "0.1.0"},
          "commit": "abc123", "machine": "test machine"}


def test_results_table_renders_both_metrics_with_header(tmp_path):
    per_variant = pd.DataFrame([
        {"env": "CartPole-v1", "variant": "ppo1", "backend": "ppo1", "preset": "baselines-ppo1", "metric": m,
         "n": 3, "mean": 461.5, "std": 5.25, "median": 462.0, "iqm": 461.5, "iqm_low": 454.9, "iqm_high": 466.2,
         "auc": 250.0, "steps_to_threshold": float("nan"), "reached": "0/3", "steps_per_second": 3854.4,
         "wall_time": 20.2, "timesteps": 51200} for m in ("train_return", "eval_return")])
    table = tables.results_table(per_variant)
    assert table.loc[0, "train_return IQM [95% CI]"] == "461.5 [454.9, 466.2]"
    assert table.loc[0, "eval_return mean ± std"] == "461.5 ± 5.2"
    assert table.loc[0, "train_return steps to threshold"] == "– (0/3)"
    assert table.loc[0, "env-steps/s"] == "3,854"
    md, csv, tex = tables.write_table(table, tmp_path / "results", HEADER, "Per env and variant")
    text = md.read_text()
    assert "> suite: fixed — a fixed table" in text and "> commit abc123; machine: test machine" in text
    row = next(line for line in text.splitlines() if line.startswith("| CartPole-v1"))
    cells = [c.strip() for c in row.strip("|").split("|")]
    assert cells[:5] == ["CartPole-v1", "ppo1", "ppo1", "baselines-ppo1", "3"]
    assert "461.5 [454.9, 466.2]" in cells
    assert pd.read_csv(csv).loc[0, "train_return IQM [95% CI]"] == "461.5 [454.9, 466.2]"
    latex = tex.read_text()
    assert latex.startswith("% suite: fixed") and "\\begin{tabular}" in latex


def test_learning_curve_and_ablation_figures_are_written(tmp_path):
    from tfppo.comparisons import plots

    runs = _runs()
    curves = pd.concat([pd.DataFrame({"env": r.env, "variant": r.variant, "backend": r.backend, "preset": r.preset,
                                      "seed": r.seed, "timesteps": [0, 500, 1000], "time": [0.0, 5.0, 10.0],
                                      "metric": "eval_return", "value": [0.0, r.eval_return / 2, r.eval_return]})
                        for r in runs.itertuples()], ignore_index=True)
    paths = plots.learning_curves(curves, runs, "eval_return", "timesteps", HEADER, tmp_path / "curves", FAST)
    assert [p.suffix for p in paths] == [".png", ".svg"]
    assert all(p.stat().st_size > 5000 for p in paths)
    effects = stats.correct_over_report(stats.pairwise(runs, [("ppo1", "ppo2")], "eval_return", FAST)
                                        )[0].assign(switch="init")
    gaps = pd.DataFrame({"env": effects["env"], "metric": "eval_return", "base": "ppo2", "other": "ppo1",
                         "gap": effects["difference"]})
    paths = plots.ablation_plot(effects, "eval_return", HEADER, tmp_path / "ablation", gaps)
    assert all(p.stat().st_size > 5000 for p in paths)
    again = plots.ablation_plot(effects, "eval_return", HEADER, tmp_path / "again" / "ablation", gaps)
    assert [p.read_bytes() for p in again] == [p.read_bytes() for p in paths]  # no date, no random SVG ids


def _effect_rows(cells: dict[tuple[str, str], list[tuple[str, float]]]) -> pd.DataFrame:
    return pd.DataFrame([{"env": env, "metric": "m", "a": f"{base}+{switch}", "b": base, "switch": switch,
                          "difference": d, "difference_low": d - 1.0, "difference_high": d + 1.0,
                          "welch_p_holm": 0.5, "reading": "–"}
                         for (env, base), effects in cells.items() for switch, d in effects])


def test_ablation_grid_is_env_rows_by_base_columns_with_empty_cells_kept():
    from tfppo.comparisons import plots

    effects = _effect_rows({("E", "ppo2"): [("a", 3.0), ("b", -2.0)], ("E", "ppo1"): [("c", 1.0)],
                            ("E", "ppo2-vecnorm"): [("vecnorm_reset", 0.5)],
                            ("F", "ppo2"): [("a", 0.0)], ("F", "ppo1"): [("c", -1.0)]})
    envs, bases, cells = plots.ablation_grid(effects, "m")
    assert envs == ["E", "F"]
    assert bases == ["ppo2", "ppo1", "ppo2-vecnorm"]
    assert ("F", "ppo2-vecnorm") not in cells
    assert cells["E", "ppo2"]["switch"].tolist() == ["b", "a"]  # sorted by effect, smallest at the bottom


def test_ablation_figure_keeps_long_switch_names_off_the_neighbouring_panel():
    from tfppo.comparisons import plots

    long_names = [(name, float(k)) for k, name in enumerate(["value_loss", "timestep_counting", "shared_towers"])]
    effects = _effect_rows({("E", "ppo2"): long_names, ("E", "ppo1"): long_names, ("F", "ppo2"): long_names,
                            ("F", "ppo1"): long_names, ("E", "ppo2-vecnorm"): [("vecnorm_reset", 0.5)]})
    gaps = pd.DataFrame([{"env": "E", "metric": "m", "base": "ppo2", "other": "ppo1", "gap": 2.5}])
    fig = plots.ablation_figure(effects, "m", gaps)
    renderer = fig.canvas.get_renderer()
    fig.canvas.draw()
    grid = fig.axes[0].get_gridspec()
    assert (grid.nrows, grid.ncols) == (2, 3)
    visible = [ax for ax in fig.axes if ax.axison]
    assert len(visible) == 5  # (F, ppo2-vecnorm) is blank
    for left, right in zip(fig.axes[:-1], fig.axes[1:]):
        same_row = left.get_subplotspec().rowspan == right.get_subplotspec().rowspan
        if same_row and left.axison and right.axison:
            labels = right.get_tightbbox(renderer)  # the right panel with its y tick labels
            assert labels.x0 >= left.get_window_extent(renderer).x1
    assert "whole gap ppo1 − ppo2 = +2.5" in fig.axes[0].get_title()
    dashed = [line.get_xdata()[0] for line in fig.axes[0].get_lines() if line.get_linestyle() == "--"]
    assert dashed == [2.5]  # the gap's line itself, where the title says
    assert not any(ax.get_legend() for ax in fig.axes)  # nothing drawn over the points
    plots.plt.close(fig)


def test_full_gap_is_the_declared_pair_seen_from_each_ablation_base():
    pairs = pd.DataFrame([
        {"env": "E", "metric": "m", "a": "ppo1", "b": "ppo2", "difference": 10.0},
        {"env": "E", "metric": "m", "a": "ppo2+x", "b": "ppo2", "difference": 3.0},
        {"env": "E", "metric": "m", "a": "ppo1+y", "b": "ppo1", "difference": -4.0},
        {"env": "F", "metric": "m", "a": "ppo1", "b": "ppo2", "difference": 7.0},  # no ablation on F
    ])
    runs = pd.DataFrame({"variant": ["ppo2+x", "ppo1+y", "ppo1"], "switch": ["x", "y", None]})
    gaps = stats.full_gaps(pairs, stats.ablation_effects(pairs, runs))
    got = {(r.env, r.base): (r.other, r.gap) for r in gaps.itertuples()}
    assert got == {("E", "ppo2"): ("ppo1", 10.0), ("E", "ppo1"): ("ppo2", -10.0)}


def test_anchor_comparison_says_where_each_mean_lands():
    anchors = pd.DataFrame([
        {"env": "CartPole-v1", "name": "A", "metric": "train_return", "mean": 497.54, "std": 4.02, "steps": 500000,
         "spread": "3 seeds"},
        {"env": "CartPole-v1", "name": "B", "metric": "train_return", "mean": 490.04, "std": 6.12, "steps": 500000,
         "spread": "3 seeds"},
        {"env": "Acrobot-v1", "name": "C", "metric": "train_return", "mean": -86.36, "std": 1.32, "steps": 500000,
         "spread": "3 seeds"},
        {"env": "Acrobot-v1", "name": "D", "metric": "eval_return", "mean": -73.5, "std": float("nan"),
         "steps": 1000000, "spread": "none"}])
    runs = pd.DataFrame({"env": ["CartPole-v1"] * 3 + ["Acrobot-v1"] * 2, "variant": ["x"] * 5,
                         "train_return": [500.0, 480.0, 490.0, -80.0, -90.0],
                         "eval_return": [500.0, 500.0, 500.0, -70.0, -100.0]})
    got = stats.anchor_comparison(runs, anchors).set_index("anchor")
    # CartPole mean 490: below A's [493.52, 501.56], inside B's [483.92, 496.16]
    assert got.loc["A", "mean"] == 490.0 and got.loc["A", "std"] == 10.0 and got.loc["A", "n"] == 3
    assert (got.loc["A", "lands"], got.loc["B", "lands"]) == ("below", "inside")
    # Acrobot mean −85 is above C's [−87.68, −85.04]; D has no spread, so no verdict
    assert got.loc["C", "mean"] == -85.0 and got.loc["C", "lands"] == "above"
    assert got.loc["D", "metric"] == "eval_return" and got.loc["D", "lands"] == "—"
    table = tables.anchor_table(got.reset_index())
    assert list(table["tfppo mean ± std (n)"])[0] == "490.0 ± 10.0 (3)"


def _analysis_with_seeds(seeds_per_variant: dict[str, int]):
    from tfppo.comparisons import report
    runs = pd.DataFrame([{"env": "CartPole-v1", "variant": v, "seed": s}
                         for v, n in seeds_per_variant.items() for s in range(n)])
    empty = pd.DataFrame()
    return report.Analysis(suite_dir=None, header={}, runs=runs, curves=empty, diagnostics=empty,
                           per_variant=empty, pairs=empty)


def test_method_note_warns_about_narrow_bootstrap_cis_only_when_a_variant_has_few_seeds():
    from tfppo.comparisons import report
    few = report.stats_note(_analysis_with_seeds({"ppo1": 10, "ppo2": 3}))
    assert "as few as 3 seeds per variant" in few and "Welch p" in few
    assert "as few as" not in report.stats_note(_analysis_with_seeds({"ppo1": 10, "ppo2": 10}))
