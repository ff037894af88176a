"""Interactions, measured: a full 2^k factorial over k switches and its main effects and interactions.

One-switch ablations (`tfppo.comparisons.suite.ablation_variants`) measure each switch with all others at the
base's value; when the effect of one switch depends on another (a shared trunk that is harmless only under
PPO2's value and gradient clips, say), that dependence is an interaction, which only a factorial measures.

A suite's ``factorial: {base: ppo2, towards: baselines-ppo1, switches: [shared_towers, value_loss, max_grad_norm]}``
generates the 2^k cells: the base and every subset of the switches set to the ``towards`` preset's value (switch
groups as in the ablations: ``value_loss`` brings ``value_clip`` and ``vf_coef``). Each switch is coded −1 at the
base's value and +1 at the ``towards`` value, and the return of a run is fit by the saturated linear model over
those codes (intercept, k main effects, every interaction). With the model saturated, each coefficient is a signed
average of the cell means, β_S = 2^-k Σ_c s_S(c) m_c, so a term's *effect* is reported as 2β_S: for a main effect,
the mean return with the switch flipped minus the mean without it, averaged over the other switches (Box, Hunter &
Hunter's convention). CIs: the same effect on stratified bootstrap resamples of the runs within each cell; p: the
OLS t-test of the coefficient (statsmodels), corrected with every other test of the report.
"""
from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

TERM_SEPARATOR = " × "


@dataclass(frozen=True)
class Design:
    """The cells of one factorial: switch names in order, and per variant the switches it sets (+1)."""

    switches: tuple[str, ...]
    cells: dict[str, frozenset[str]]

    def codes(self, variant: str) -> np.ndarray:
        """±1 per switch for a variant's cell."""
        flipped = self.cells[variant]
        return np.array([1.0 if s in flipped else -1.0 for s in self.switches])

    def terms(self) -> list[tuple[str, ...]]:
        """Main effects first, then the two-way interactions, ..., up to the k-way one."""
        return [combo for order in range(1, len(self.switches) + 1)
                for combo in itertools.combinations(self.switches, order)]


def subsets(switches: tuple[str, ...]) -> list[tuple[str, ...]]:
    """Every subset of ``switches`` in a fixed order (size, then position): the 2^k cells to run."""
    return [combo for order in range(len(switches) + 1) for combo in itertools.combinations(switches, order)]


def design_from_record(variants: dict[str, dict[str, Any]]) -> Design | None:
    """The factorial of a suite.json definition, or None when it has none. Each cell's ``factors`` lists its
    switches in the suite's order, so the cell with every switch names them all, in order."""
    factors = {name: tuple(v["factors"]) for name, v in variants.items() if v.get("factors") is not None}
    if not factors:
        return None
    return Design(max(factors.values(), key=len), {name: frozenset(f) for name, f in factors.items()})


def _model_matrix(design: Design, variants: list[str]) -> np.ndarray:
    """Columns: intercept, then one product of ±1 codes per term of `Design.terms`."""
    codes = np.stack([design.codes(v) for v in variants])
    index = {s: i for i, s in enumerate(design.switches)}
    columns = [np.ones(len(variants))]
    columns += [np.prod(codes[:, [index[s] for s in term]], axis=1) for term in design.terms()]
    return np.stack(columns, axis=1)


def _effects_from_cell_means(means: np.ndarray, signs: np.ndarray) -> np.ndarray:
    """2β_S = 2 · 2^-k Σ_c s_S(c) m_c for every term (rows of ``signs``), on one or many rows of cell means."""
    return 2.0 * means @ signs.T / signs.shape[1]


def effects(runs: pd.DataFrame, design: Design, metric: str, reps: int, seed: int, confidence: float
            ) -> pd.DataFrame:
    """Per env: every main effect and interaction of ``metric`` with a bootstrap CI and the OLS p."""
    import statsmodels.api as sm

    rows = []
    cells = list(design.cells)
    signs = _model_matrix(design, cells)[:, 1:].T  # terms × cells
    for env, g in runs[runs["variant"].isin(cells)].groupby("env", sort=False):
        g = g.dropna(subset=[metric])
        samples = [g.loc[g["variant"] == c, metric].to_numpy(dtype=float) for c in cells]
        if any(len(s) < 2 for s in samples):
            continue  # a cell without replicates: no variance within cells to test against
        point = _effects_from_cell_means(np.array([s.mean() for s in samples]), signs)
        rng = np.random.RandomState(seed)
        boot_means = np.stack([s[rng.randint(0, len(s), size=(reps, len(s)))].mean(axis=1) for s in samples], axis=1)
        boot = _effects_from_cell_means(boot_means, signs)
        tail = (1.0 - confidence) / 2.0
        low, high = np.quantile(boot, [tail, 1.0 - tail], axis=0)
        fit = sm.OLS(g[metric].to_numpy(dtype=float), _model_matrix(design, g["variant"].tolist())).fit()
        for i, term in enumerate(design.terms()):
            rows.append({"env": env, "metric": metric, "term": TERM_SEPARATOR.join(term), "order": len(term),
                         "effect": point[i], "effect_low": low[i], "effect_high": high[i],
                         "p": float(fit.pvalues[i + 1]), "runs": len(g), "cells": len(cells)})
    return pd.DataFrame(rows)


def marginal_means(runs: pd.DataFrame, design: Design, metric: str, first: str, second: str) -> pd.DataFrame:
    """Mean and standard error of ``metric`` per env at each (first, second) level, averaged over the cells of
    the other switches (each cell weighted equally, as the effects are): the points of an interaction plot."""
    rows = []
    for env, g in runs[runs["variant"].isin(list(design.cells))].groupby("env", sort=False):
        by_cell = g.dropna(subset=[metric]).groupby("variant")[metric].agg(["mean", "var", "count"])
        for a, b in itertools.product((False, True), repeat=2):
            chosen = [c for c, flipped in design.cells.items() if (first in flipped) == a and (second in flipped) == b
                      and c in by_cell.index]
            cell = by_cell.loc[chosen]
            mean = float(cell["mean"].mean())
            se = float(np.sqrt((cell["var"] / cell["count"]).sum()) / len(cell))
            rows.append({"env": env, "first": first, "second": second, "first_on": a, "second_on": b,
                         "mean": mean, "se": se})
    return pd.DataFrame(rows)
