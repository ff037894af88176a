"""The factorial suite key and its analysis (issue 24.4), against hand-computed effects."""
from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest
import scipy.stats

from tfppo.comparisons import factorial
from tfppo.comparisons.suite import SuiteError, load_suite
from tfppo.config.semantics import get_preset


def test_the_bundled_factorial_generates_the_eight_cells_with_each_switch_group_set_to_the_towards_preset():
    suite = load_suite("factorial")
    cells = {name: v for name, v in suite.variants.items() if v.factors is not None}
    assert len(cells) == 8 and "ppo2" in cells and cells["ppo2"].factors == ()
    ppo1, ppo2 = get_preset("baselines-ppo1"), get_preset("baselines-ppo2")
    full = cells["ppo2+shared_towers+value_loss+max_grad_norm"].resolved_semantics()
    assert (full.shared_towers, full.max_grad_norm) == (ppo1.shared_towers, ppo1.max_grad_norm)
    # value_loss is a group: the loss, its clip and its weight move together (suite.SWITCH_GROUPS)
    assert (full.value_loss, full.value_clip, full.vf_coef) == (ppo1.value_loss, ppo1.value_clip, ppo1.vf_coef)
    one = cells["ppo2+value_loss"].resolved_semantics()
    assert one.shared_towers == ppo2.shared_towers and one.max_grad_norm == ppo2.max_grad_norm
    assert len(suite.runs()) == 2 * 8 * 10


def test_a_factorial_switch_on_which_the_presets_agree_is_one_line(tmp_path):
    text = (factorial_yaml := (load_suite("factorial").source.read_text()))
    bad = tmp_path / "bad.yaml"
    bad.write_text(text.replace("switches: [shared_towers, value_loss, max_grad_norm]",
                                "switches: [shared_towers, gamma]"))
    with pytest.raises(SuiteError, match="switch 'gamma' does not differ") as err:
        load_suite(bad)
    assert "\n" not in str(err.value) and "allowed: " in str(err.value)
    assert factorial_yaml  # the bundled file was only read


def _runs(effect: dict[tuple[str, ...], float]) -> tuple[pd.DataFrame, factorial.Design]:
    """Two seeds per cell of a 2^3 design, y = 10 + Σ β_S · Π codes ± 0.5 (one seed each way)."""
    switches = ("a", "b", "c")
    cells = {"+".join(("base", *s)): frozenset(s) for s in factorial.subsets(switches)}
    design = factorial.Design(switches, cells)
    rows = []
    for name, flipped in cells.items():
        code = {s: 1.0 if s in flipped else -1.0 for s in switches}
        mean = 10.0 + sum(beta * np.prod([code[s] for s in term]) for term, beta in effect.items())
        rows += [{"env": "E", "variant": name, "seed": k, "train_return": mean + noise}
                 for k, noise in enumerate((0.5, -0.5))]
    return pd.DataFrame(rows), design


def test_effects_are_twice_the_coefficients_with_cis_and_ols_p():
    runs, design = _runs({("a",): 3.0, ("b",): 2.0, ("a", "b"): -1.0})
    table = factorial.effects(runs, design, "train_return", reps=400, seed=0, confidence=0.95).set_index("term")
    assert list(table.index) == ["a", "b", "c", "a × b", "a × c", "b × c", "a × b × c"]
    # independent check: a main effect is mean(y | a on) − mean(y | a off) in a balanced design
    on = runs["variant"].map(lambda v: "a" in design.cells[v])
    assert table.loc["a", "effect"] == pytest.approx(runs[on]["train_return"].mean() - runs[~on]["train_return"].mean())
    expected = {"a": 6.0, "b": 4.0, "c": 0.0, "a × b": -2.0, "a × c": 0.0, "b × c": 0.0, "a × b × c": 0.0}
    for term, value in expected.items():
        assert table.loc[term, "effect"] == pytest.approx(value, abs=1e-9)
        assert table.loc[term, "effect_low"] <= value + 1e-9 <= table.loc[term, "effect_high"] + 2e-9
    # by hand: residuals ±0.5, so σ² = 16·0.25 / (16 − 8) = 0.5 and SE(β) = √(0.5/16); t = β/SE on 8 df
    se = np.sqrt(0.5 / 16)
    for term, beta in {"a": 3.0, "b": 2.0, "a × b": -1.0, "c": 0.0}.items():
        assert table.loc[term, "p"] == pytest.approx(2 * scipy.stats.t.sf(abs(beta) / se, df=8), rel=1e-6)


def test_marginal_means_of_an_interaction_plot_average_the_other_switch():
    runs, design = _runs({("a",): 3.0, ("a", "b"): -1.0})
    means = factorial.marginal_means(runs, design, "train_return", "a", "b").set_index(["first_on", "second_on"])
    # y = 10 + 3a − ab: a on, b on -> 12; a on, b off -> 14; a off, b on -> 8; a off, b off -> 6
    for (a, b), value in {(True, True): 12.0, (True, False): 14.0, (False, True): 8.0, (False, False): 6.0}.items():
        assert means.loc[(a, b), "mean"] == pytest.approx(value)
    assert means.loc[(True, True), "se"] == pytest.approx(np.sqrt(2 * 0.5 / 2) / 2)  # two cells, var 0.5, n 2


def test_subsets_are_every_cell_once():
    cells = factorial.subsets(("x", "y", "z"))
    assert len(cells) == 8 and len(set(cells)) == 8 and cells[0] == () and cells[-1] == ("x", "y", "z")
    assert set(cells) == {c for r in range(4) for c in itertools.combinations(("x", "y", "z"), r)}


def test_a_factorial_suite_runs_and_its_report_has_the_interaction_table_and_plots(tmp_path, monkeypatch):
    """The runner with the fake trainer (tests/comparisons_support) on a 2^2 factorial, then the report."""
    from tests.comparisons_support.suites import TINY_SUITE
    from tests.test_comparisons_runner import make_runner
    from tfppo.comparisons import report, stats

    monkeypatch.setenv("FAKE_LEDGER", str(tmp_path / "ledger"))
    text = TINY_SUITE.replace("pairs:\n  - [ppo1, ppo2]\n", "") + \
        "factorial: {base: ppo2, towards: baselines-ppo1, switches: [shared_towers, max_grad_norm]}\n"
    runner, _ = make_runner(tmp_path, text)
    outcome = runner.run()
    assert (outcome.counts.done, outcome.counts.failed) == (2 * 5, 0)  # ppo1 + 4 cells, 2 seeds each
    suite_dir = tmp_path / "out" / "tiny"
    analysis = report.analyse(suite_dir, stats.BootstrapSettings(reps=200))
    assert analysis.design is not None and analysis.design.switches == ("shared_towers", "max_grad_norm")
    terms = analysis.factorial[analysis.factorial["metric"] == "train_return"]["term"].tolist()
    assert terms == ["shared_towers", "max_grad_norm", "shared_towers × max_grad_norm"]
    assert (analysis.factorial["report_tests"] == 6).all()  # no pairs: the 3 terms × 2 metrics
    figures = report.write_figures(analysis, stats.BootstrapSettings(reps=200))
    assert any(p.name == "interactions_train_return.png" for p in figures)
    text = report.write_report(analysis, figures).read_text()
    assert f"## {report.FACTORIAL_TITLE}" in text and "shared_towers × max_grad_norm" in text
