"""Statistics over seeds, by rliable and scipy (not re-derived here).

Per env × variant: mean ± std, median, IQM with a 95% stratified-bootstrap CI (rliable,
≥ 2,000 resamples by default, seeded), area under the learning curve, steps to a threshold,
env-steps/s and wall-clock. Per pair (a − b, e.g. PPO1 − PPO2 or ablation − base): difference
of means with a bootstrap CI, probability of improvement P(a > b) with a CI (rliable), Welch's
t-test p with Holm's correction across envs (statsmodels), and over every test of the report (Holm and
Benjamini-Hochberg; ``correct_over_report``). Across envs: IQM, mean, median and
optimality gap of scores normalised by **fixed, declared** references (`references.yaml`), and
performance profiles.

Seeds pair configurations (same initial weights and env seeds) but runs are still independent
samples of each variant's return distribution, so the two-sample tests are the right ones
(anchors §4); a paired test would claim more than matched seeds give.
"""
from __future__ import annotations

import contextlib
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd
import scipy.stats
import yaml
from scipy.integrate import trapezoid

DEFAULT_REPS = 2000
DEFAULT_CONFIDENCE = 0.95
REFERENCES_FILE = Path(__file__).resolve().parent / "references.yaml"


@dataclass(frozen=True)
class BootstrapSettings:
    reps: int = DEFAULT_REPS
    seed: int = 0
    confidence: float = DEFAULT_CONFIDENCE

    def random_state(self) -> np.random.RandomState:
        """A fresh RandomState per estimate, so no number depends on the order the others were computed in."""
        return np.random.RandomState(self.seed)

    @contextlib.contextmanager
    def seeded(self):
        """rliable 1.2's StratifiedBootstrap ignores ``random_state`` when resampling: its
        ``update_indices`` draws from NumPy's *global* RNG (``np.random.choice``). So the global RNG is
        seeded for the duration of each estimate (and restored after), which makes it reproducible."""
        saved = np.random.get_state()
        np.random.seed(self.seed)
        try:
            yield self.random_state()
        finally:
            np.random.set_state(saved)


def _rliable():
    # rliable hands its RandomState to arch as ``random_state``, which arch 7 deprecates (FutureWarning)
    # but still honours; the bootstrap stays seeded, so the warning is noise for our users.
    warnings.filterwarnings("ignore", message="random_state is deprecated", category=FutureWarning)
    from rliable import library, metrics

    return library, metrics


def iqm(scores: np.ndarray, axis: int | None = None) -> float | np.ndarray:
    """Interquartile mean (25% trimmed mean, over all entries or along ``axis``): rliable's ``aggregate_iqm``,
    which is scipy's ``trim_mean``, computed here by the same partition and slice. It runs once per bootstrap
    resample, and scipy's argument handling costs ~0.5 ms a call, most of a 175-run report's time; this gives
    the same number to the last bit (tested against rliable and scipy), so published CIs do not move."""
    values = np.asarray(scores, dtype=float)
    if axis is None:
        values, axis = values.ravel(), 0
    n = values.shape[axis]
    cut = int(0.25 * n)
    middle = np.take(np.partition(values, (cut, n - cut - 1), axis=axis), np.arange(cut, n - cut), axis=axis)
    result = np.where(np.isnan(values).any(axis=axis), np.nan, np.mean(middle, axis=axis))  # NaN propagates
    return float(result) if np.ndim(result) == 0 else result


def score_distribution(scores: np.ndarray, taus: np.ndarray) -> np.ndarray:
    """Fraction of all entries above each τ: rliable's ``score_distributions`` (an ``np.vectorize`` over τ, one
    Python call per τ per resample) as one comparison; counts of 0/1 are exact, so the numbers are identical."""
    return (np.ravel(scores)[:, None] > np.asarray(taus)[None, :]).mean(axis=0)


def interval(scores: np.ndarray, func: Callable[[np.ndarray], float], settings: BootstrapSettings
             ) -> tuple[float, float, float]:
    """(point, low, high) of ``func`` over a (runs × tasks) matrix, stratified bootstrap over runs."""
    library, _ = _rliable()
    matrix = np.asarray(scores, dtype=float)
    matrix = matrix[:, None] if matrix.ndim == 1 else matrix
    with settings.seeded() as rng:
        point, ci = library.get_interval_estimates({"x": matrix}, lambda m: np.array([func(m)]), reps=settings.reps,
                                                   confidence_interval_size=settings.confidence, random_state=rng)
    return float(point["x"][0]), float(ci["x"][0, 0]), float(ci["x"][1, 0])


def two_sample_interval(a: np.ndarray, b: np.ndarray, func: Callable[[np.ndarray, np.ndarray], float],
                        settings: BootstrapSettings) -> tuple[float, float, float]:
    """(point, low, high) of ``func(a, b)``, each sample resampled independently (rliable)."""
    library, _ = _rliable()
    a2 = np.asarray(a, dtype=float).reshape(len(a), -1)
    b2 = np.asarray(b, dtype=float).reshape(len(b), -1)
    with settings.seeded() as rng:
        point, ci = library.get_interval_estimates({"x": [a2, b2]}, lambda x, y: np.array([func(x, y)]),
                                                   reps=settings.reps, confidence_interval_size=settings.confidence,
                                                   random_state=rng)
    return float(point["x"][0]), float(ci["x"][0, 0]), float(ci["x"][1, 0])


def probability_of_improvement(a: np.ndarray, b: np.ndarray) -> float:
    """P(a > b) + ½P(a = b) averaged over tasks: rliable's ``probability_of_improvement`` (Mann-Whitney U /
    (n_a n_b) per task), with U counted directly over all (a, b) pairs. It runs once per bootstrap resample, where
    ``scipy.stats.mannwhitneyu`` spends ~2 ms a call on argument handling; U from midranks is this pair count,
    so the number is the same to the last bit (tested against rliable)."""
    a2 = np.asarray(a, dtype=float).reshape(len(a), -1)
    b2 = np.asarray(b, dtype=float).reshape(len(b), -1)
    x, y = a2[:, None, :], b2[None, :, :]
    u = (x > y).sum(axis=(0, 1)) + 0.5 * (x == y).sum(axis=(0, 1))
    return float(np.mean(u / (len(a2) * len(b2))))


def welch_p(a: np.ndarray, b: np.ndarray) -> float:
    """Two-sided Welch t-test p (scipy). Two constant samples: 1 if equal, NaN otherwise (no variance to test)."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if np.ptp(a) == 0 and np.ptp(b) == 0:
        return 1.0 if a[0] == b[0] else float("nan")
    with warnings.catch_warnings():  # one constant sample (e.g. every seed at CartPole's 500) is a valid input
        warnings.simplefilter("ignore", RuntimeWarning)
        return float(scipy.stats.ttest_ind(a, b, equal_var=False).pvalue)


def adjust(pvalues: list[float], method: str) -> list[float]:
    """p-values adjusted for multiple testing by statsmodels' ``multipletests`` (``"holm"``: Holm-Bonferroni,
    family-wise error; ``"fdr_bh"``: Benjamini-Hochberg q, false-discovery rate); NaNs stay NaN, not counted."""
    from statsmodels.stats.multitest import multipletests

    p = np.asarray(pvalues, dtype=float)
    out = np.full_like(p, np.nan)
    ok = np.isfinite(p)
    if ok.any():
        out[ok] = multipletests(p[ok], method=method)[1]
    return out.tolist()


def holm(pvalues: list[float]) -> list[float]:
    """Holm-Bonferroni adjusted p-values; NaNs stay NaN and are not counted."""
    return adjust(pvalues, "holm")


FINDING_ALPHA = 0.05


def correct_over_report(*tables: pd.DataFrame, column: str = "welch_p") -> list[pd.DataFrame]:
    """Add the report-wide corrections to each table: Holm p and Benjamini-Hochberg q over *every* test of the
    report (every row with a p in ``column``, in all ``tables``: the pairwise rows, each pair × env × metric, and
    a factorial's effects), beside the per-family Holm p of ``pairwise`` (one pair and metric across envs). A
    report that tests dozens of differences finds some at p < 0.05 by chance, so a difference reads as a finding
    only when its report-wide Holm p < ``FINDING_ALPHA``; one with p < ``FINDING_ALPHA`` that does not survive is
    suggestive (``reading``). A table without ``column`` uses ``p``."""
    frames = [t.copy() for t in tables]
    columns = [column if column in t else "p" for t in frames]
    for t, c in zip(frames, columns):
        if c not in t:  # an empty table
            t[c] = pd.Series(dtype=float)
    p = np.concatenate([t[c].to_numpy(dtype=float) for t, c in zip(frames, columns)]) if frames else np.array([])
    holm_all, bh_all = np.asarray(holm(p.tolist())), np.asarray(adjust(p.tolist(), "fdr_bh"))
    tests = int(np.isfinite(p).sum())
    start = 0
    for t, c in zip(frames, columns):
        stop = start + len(t)
        t["p_holm_report"], t["q_bh_report"] = holm_all[start:stop], bh_all[start:stop]
        t["report_tests"] = tests
        t["reading"] = np.where(t["p_holm_report"] < FINDING_ALPHA, "finding",
                                np.where(t[c] < FINDING_ALPHA, "suggestive", "–"))
        start = stop
    return frames


# -- learning-curve summaries -----------------------------------------------------------------------
def area_under_curve(timesteps: np.ndarray, values: np.ndarray, budget: float) -> float:
    """Mean return over training: ∫ return d(steps) / budget (trapezoid over the logged points)."""
    t = np.asarray(timesteps, dtype=float)
    v = np.asarray(values, dtype=float)
    keep = np.isfinite(v)
    if keep.sum() < 2:
        return float("nan")
    return float(trapezoid(v[keep], t[keep]) / budget)


def steps_to_threshold(timesteps: np.ndarray, values: np.ndarray, threshold: float | None) -> float:
    """First logged env step at which the return reaches ``threshold`` (NaN: never, or no threshold)."""
    if threshold is None or not np.isfinite(threshold):
        return float("nan")
    v = np.asarray(values, dtype=float)
    hits = np.flatnonzero(np.isfinite(v) & (v >= threshold))
    return float(np.asarray(timesteps, dtype=float)[hits[0]]) if hits.size else float("nan")


def curve_summaries(curves: pd.DataFrame, budgets: dict[str, float], thresholds: dict[str, float | None]
                    ) -> pd.DataFrame:
    """Per run and metric: AUC and steps-to-threshold."""
    rows = []
    for (env, variant, seed, metric), g in curves.groupby(["env", "variant", "seed", "metric"], sort=False):
        g = g.sort_values("timesteps")
        rows.append({"env": env, "variant": variant, "seed": seed, "metric": metric,
                     "auc": area_under_curve(g["timesteps"], g["value"], budgets[env]),
                     "steps_to_threshold": steps_to_threshold(g["timesteps"], g["value"], thresholds.get(env))})
    return pd.DataFrame(rows)


# -- tables of numbers --------------------------------------------------------------------------------
def per_variant(runs: pd.DataFrame, curves: pd.DataFrame, metric: str, settings: BootstrapSettings,
                thresholds: dict[str, float | None]) -> pd.DataFrame:
    """One row per env × variant for ``metric`` (train_return or eval_return)."""
    budgets = runs.groupby("env")["budget"].max().to_dict()
    summaries = curve_summaries(curves[curves["metric"] == metric], budgets, thresholds)
    rows = []
    for (env, variant), g in runs.groupby(["env", "variant"], sort=False):
        values = g[metric].dropna().to_numpy(dtype=float)
        s = summaries[(summaries["env"] == env) & (summaries["variant"] == variant)]
        row = {"env": env, "variant": variant, "backend": g["backend"].iloc[0], "preset": g["preset"].iloc[0],
               "metric": metric, "n": len(values)}
        if len(values):
            point, low, high = interval(values, iqm, settings)
            row.update(mean=values.mean(), std=values.std(ddof=1) if len(values) > 1 else 0.0,
                       median=float(np.median(values)), iqm=point, iqm_low=low, iqm_high=high)
        reached = s["steps_to_threshold"].dropna()
        row.update(auc=float(s["auc"].mean()) if len(s) else np.nan,
                   steps_to_threshold=float(reached.median()) if len(reached) else np.nan,
                   reached=f"{len(reached)}/{len(s)}",
                   steps_per_second=float(g["steps_per_second"].median()),
                   wall_time=float(g["wall_time"].median()), timesteps=int(g["timesteps"].median()))
        rows.append(row)
    return pd.DataFrame(rows)


def pairwise(runs: pd.DataFrame, pairs: list[tuple[str, str]], metric: str, settings: BootstrapSettings
             ) -> pd.DataFrame:
    """Per env and pair (a, b): a − b of means with CI, P(a > b) with CI, Welch p, Holm-adjusted across envs,
    and how many matched seeds gave exactly the same number (the ``equivalent`` preset must give all)."""
    rows = []
    for a, b in pairs:
        for env, g in runs.groupby("env", sort=False):
            xa = g.loc[g["variant"] == a, metric].dropna().to_numpy(dtype=float)
            xb = g.loc[g["variant"] == b, metric].dropna().to_numpy(dtype=float)
            if len(xa) < 2 or len(xb) < 2:
                continue
            diff, dlo, dhi = two_sample_interval(xa, xb, lambda x, y: float(x.mean() - y.mean()), settings)
            poi, plo, phi = two_sample_interval(xa, xb, probability_of_improvement, settings)
            matched = pd.merge(g.loc[g["variant"] == a, ["seed", metric]], g.loc[g["variant"] == b, ["seed", metric]],
                               on="seed").dropna()
            rows.append({"env": env, "a": a, "b": b, "metric": metric, "n_a": len(xa), "n_b": len(xb),
                         "matched_seeds": len(matched),
                         "identical_seeds": int((matched[f"{metric}_x"] == matched[f"{metric}_y"]).sum()),
                         "mean_a": xa.mean(), "mean_b": xb.mean(), "difference": diff, "difference_low": dlo,
                         "difference_high": dhi, "p_improvement": poi, "p_improvement_low": plo,
                         "p_improvement_high": phi, "welch_p": welch_p(xa, xb)})
    frame = pd.DataFrame(rows)
    if len(frame):
        frame["welch_p_holm"] = np.nan
        for _, idx in frame.groupby(["a", "b"]).groups.items():
            frame.loc[idx, "welch_p_holm"] = holm(frame.loc[idx, "welch_p"].tolist())
    return frame


# -- across envs ---------------------------------------------------------------------------------------
def load_references(path: Path = REFERENCES_FILE) -> dict[str, dict[str, float]]:
    """Per-env ``random`` and ``target`` returns, declared once (never the min/max of the runs compared)."""
    data = yaml.safe_load(Path(path).read_text())
    return {env: {"random": float(v["random"]), "target": float(v["target"])} for env, v in data["envs"].items()}


def load_anchors(path: Path = REFERENCES_FILE) -> pd.DataFrame:
    """The published results with their spread (references.yaml ``anchors``), one row per anchor."""
    data = yaml.safe_load(Path(path).read_text())
    return pd.DataFrame([{"env": env, **entry} for env, entries in data.get("anchors", {}).items()
                         for entry in entries])


def anchor_comparison(runs: pd.DataFrame, anchors: pd.DataFrame) -> pd.DataFrame:
    """Each variant's mean ± std over seeds beside every anchor of its env on the comparable metric, and
    where the mean lands: inside the anchor's mean ± std, above or below it (``—`` without a spread)."""
    rows = []
    for (env, variant), g in runs.groupby(["env", "variant"], sort=False):
        for anchor in anchors[anchors["env"] == env].itertuples(index=False):
            values = g[anchor.metric].dropna().to_numpy(dtype=float)
            if not len(values):
                continue
            mean, std = float(values.mean()), float(values.std(ddof=1)) if len(values) > 1 else float("nan")
            low, high = anchor.mean - anchor.std, anchor.mean + anchor.std
            where = "—" if not np.isfinite(anchor.std) else \
                "inside" if low <= mean <= high else ("above" if mean > high else "below")
            rows.append({"env": env, "variant": variant, "metric": anchor.metric, "mean": mean, "std": std,
                         "n": len(values), "anchor": anchor.name, "anchor_mean": anchor.mean,
                         "anchor_std": anchor.std, "anchor_steps": anchor.steps, "anchor_spread": anchor.spread,
                         "lands": where})
    return pd.DataFrame(rows)


def normalized_scores(runs: pd.DataFrame, metric: str, references: dict[str, dict[str, float]]
                      ) -> tuple[dict[str, np.ndarray], list[str]]:
    """{variant: (runs × envs) matrix of (x − random) / (target − random)} over the envs with references
    and the seeds every variant finished on each env."""
    envs = [e for e in runs["env"].unique() if e in references]
    scores: dict[str, np.ndarray] = {}
    for variant, g in runs.groupby("variant", sort=False):
        columns = []
        for env in envs:
            ref = references[env]
            values = g.loc[g["env"] == env].sort_values("seed")[metric].to_numpy(dtype=float)
            columns.append((values - ref["random"]) / (ref["target"] - ref["random"]))
        n = min((len(c) for c in columns), default=0)
        if n:
            scores[variant] = np.stack([c[:n] for c in columns], axis=1)
    return scores, envs


def aggregate(scores: dict[str, np.ndarray], settings: BootstrapSettings) -> pd.DataFrame:
    """IQM, mean, median and optimality gap of normalised scores with stratified-bootstrap CIs (rliable)."""
    if not scores:
        return pd.DataFrame()
    library, metrics = _rliable()
    names = ["IQM", "mean", "median", "optimality_gap"]

    def func(m):
        return np.array([iqm(m), metrics.aggregate_mean(m), metrics.aggregate_median(m),
                         metrics.aggregate_optimality_gap(m)])

    with settings.seeded() as rng:
        point, ci = library.get_interval_estimates(scores, func, reps=settings.reps,
                                                   confidence_interval_size=settings.confidence, random_state=rng)
    rows = []
    for variant in scores:
        for i, name in enumerate(names):
            rows.append({"variant": variant, "aggregate": name, "value": point[variant][i],
                         "low": ci[variant][0, i], "high": ci[variant][1, i]})
    return pd.DataFrame(rows)


def performance_profiles(scores: dict[str, np.ndarray], settings: BootstrapSettings, points: int = 101
                         ) -> tuple[np.ndarray, dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Fraction of runs with normalised score > τ, with CIs, on a τ grid (rliable)."""
    library, _ = _rliable()
    high = max(1.0, max(float(np.nanmax(s)) for s in scores.values()))
    taus = np.linspace(0.0, high, points)
    with settings.seeded():
        profiles, cis = library.create_performance_profile(scores, taus, custom_profile_func=score_distribution,
                                                           reps=settings.reps,
                                                           confidence_interval_size=settings.confidence)
    return taus, profiles, cis


def ablation_effects(pair_table: pd.DataFrame, runs: pd.DataFrame) -> pd.DataFrame:
    """The pairwise rows of ablation variants against their base, labelled by the flipped switch."""
    if pair_table.empty or "switch" not in runs:
        return pd.DataFrame()
    switches = runs.dropna(subset=["switch"]).groupby("variant")["switch"].first().to_dict()
    effects = pair_table[pair_table["a"].isin(switches)].copy()
    effects["switch"] = effects["a"].map(switches)
    return effects.sort_values(["metric", "env", "difference"])


def full_gaps(pair_table: pd.DataFrame, effects: pd.DataFrame) -> pd.DataFrame:
    """For each (env, metric, base) of the ablation effects, the declared pair's difference seen from that
    base (other − base): the whole gap the base's single switches are to explain. A declared pair is one
    whose first variant is not an ablation; ``(ppo1, ppo2)`` gives ppo1 − ppo2 from ppo2 and its negative
    from ppo1."""
    if effects.empty:
        return pd.DataFrame(columns=["env", "metric", "base", "other", "gap"])
    declared = pair_table[~pair_table["a"].isin(set(effects["a"]))]
    rows = []
    for (env, metric, base), _ in effects.groupby(["env", "metric", "b"], sort=False):
        here = declared[(declared["env"] == env) & (declared["metric"] == metric)]
        for pair in here.itertuples():
            if base in (pair.a, pair.b):
                other, sign = (pair.a, 1.0) if pair.b == base else (pair.b, -1.0)
                rows.append({"env": env, "metric": metric, "base": base, "other": other,
                             "gap": sign * pair.difference})
    return pd.DataFrame(rows, columns=["env", "metric", "base", "other", "gap"])
