"""What to run: a suite YAML file -> a validated `Suite` -> one `RunSpec` per (env, variant, seed).

A suite names envs (each with its budget and the hyperparameters every variant of a trainer
shares on it), variants (trainer, preset, flag and ``--semantics`` overrides, MPI workers for
PPO1 / envs for PPO2), seeds and the evaluation protocol. The schema is a set of pydantic
models with ``extra="forbid"``, so an unknown key, a wrong type or a malformed file stops
with one line naming the field; env ids, presets, switches and flag values are then checked
by the trainers' own validation (their CLIs' ``build_config``, `tfppo.comparisons.trainers`), before anything runs.

Ablations are generated, not listed: ``ablations: [{base: ppo2, towards: baselines-ppo1}]``
adds one variant per switch on which ``base``'s Semantics differs from the ``towards``
preset, each with that switch alone flipped (spec §10: one row, one effect). A ``factorial: {base: ppo2,
towards: baselines-ppo1, switches: [...]}`` adds the 2^k cells of those switches (`tfppo.comparisons.factorial`),
so that their interactions can be measured too.
"""
from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal, Optional, Union

import yaml
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from tfppo import PRESETS, ConfigError, Semantics
from tfppo.comparisons import SUITES_DIR, bundled_suites, factorial, rundir, trainers
from tfppo.config.semantics import get_preset

TRAINERS = ("ppo1", "ppo2")
# Switches that cannot be flipped alone because the record would be invalid (value_loss=mse needs
# value_clip=off) or because one spec row is several fields (row 6: scope and ε; row 7: loss, clip, weight).
SWITCH_GROUPS: tuple[tuple[str, ...], ...] = (("adv_norm", "adv_norm_eps"), ("value_loss", "value_clip", "vf_coef"))
# Flags the runner sets itself; a suite may not override them.
RESERVED_FLAGS = ("env", "preset", "seed", "semantics", "log_dir", "save_path", "load_path", "eval_freq",
                  "eval_episodes", "total_timesteps", "max_timesteps", "max_episodes", "max_iters",
                  "max_seconds", "num_envs", "verbose")

FlagValue = Union[int, float, str, bool, None, list]


def _known_preset(value: str) -> str:
    if value not in PRESETS:
        raise ValueError(f"unknown preset {value!r}; allowed: {', '.join(PRESETS)}")
    return value


PresetName = Annotated[str, AfterValidator(_known_preset)]


class SuiteError(ConfigError):
    """A suite file that cannot be run; the message is one line naming the field."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Evaluation(_Strict):
    """Deterministic evaluation every ``freq`` env steps over ``episodes`` episodes on a separate env."""

    freq: int = Field(gt=0)
    episodes: int = Field(default=10, gt=0)


class EnvEntry(_Strict):
    budget: int = Field(gt=0, description="env steps per run (PPO2 total_timesteps, PPO1 max_timesteps)")
    threshold: Optional[float] = Field(default=None, description="return that counts as solved (steps-to-threshold)")
    workers: Optional[int] = Field(default=None, gt=0, description="PPO1 workers on this env (overrides the variant)")
    num_envs: Optional[int] = Field(default=None, gt=0, description="PPO2 envs on this env (overrides the variant)")
    flags: dict[Literal["ppo1", "ppo2"], dict[str, FlagValue]] = Field(default_factory=dict)


class VariantEntry(_Strict):
    trainer: Literal["ppo1", "ppo2"]
    preset: PresetName
    workers: int = Field(default=1, gt=0, description="PPO1: mpirun -n workers")
    num_envs: int = Field(default=1, gt=0, description="PPO2: envs in the process")
    flags: dict[str, FlagValue] = Field(default_factory=dict)
    semantics: dict[str, Union[str, float, int, bool, None]] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _fits_trainer(self) -> "VariantEntry":
        if self.trainer == "ppo2" and self.workers != 1:
            raise ValueError("workers is for PPO1 (mpirun -n); PPO2 takes num_envs")
        if self.trainer == "ppo1" and self.num_envs != 1:
            raise ValueError("num_envs is for PPO2; PPO1 runs one env per worker")
        return self


class AblationEntry(_Strict):
    base: str = Field(description="variant whose Semantics is the starting point")
    towards: Optional[PresetName] = Field(default=None, description="preset whose switches are applied one at a time")
    set: dict[str, Union[str, float, int, bool, None]] = Field(
        default_factory=dict, description="one switch (with its grouped companions) set on base, for a switch on "
                                          "which the presets agree, e.g. policy_loss: kl_penalty")

    @model_validator(mode="after")
    def _one_kind(self) -> "AblationEntry":
        if (self.towards is None) == (not self.set):
            raise ValueError("give either towards (a preset) or set (switch: value), not both")
        return self


class FactorialEntry(_Strict):
    base: str = Field(description="variant whose Semantics is the (−, ..., −) cell")
    towards: PresetName = Field(description="preset whose value of each switch is its + level")
    switches: list[str] = Field(min_length=2, max_length=5, description="switch groups crossed (2^k cells)")

    @field_validator("switches")
    @classmethod
    def _distinct(cls, value: list[str]) -> list[str]:
        if len(set(value)) != len(value):
            raise ValueError("switches must be distinct")
        return value


class SuiteFile(_Strict):
    name: str = Field(pattern=r"^[A-Za-z0-9_.-]+$")
    description: str = ""
    seeds: Union[int, list[int]] = Field(description="a count N (seeds 0..N-1) or an explicit list")
    evaluation: Evaluation
    envs: dict[str, EnvEntry] = Field(min_length=1)
    variants: dict[str, VariantEntry] = Field(min_length=1)
    pairs: list[tuple[str, str]] = Field(default_factory=list, description="(a, b): report a − b")
    ablations: list[AblationEntry] = Field(default_factory=list)
    factorial: Optional[FactorialEntry] = None

    @field_validator("seeds")
    @classmethod
    def _seeds(cls, value: Union[int, list[int]]) -> Union[int, list[int]]:
        seeds = list(range(value)) if isinstance(value, int) else value
        if not seeds or any(s < 0 for s in seeds) or len(set(seeds)) != len(seeds):
            raise ValueError("seeds must be a positive count or a list of distinct non-negative integers")
        return value

    @field_validator("variants")
    @classmethod
    def _variant_names(cls, value: dict[str, VariantEntry]) -> dict[str, VariantEntry]:
        for name in value:
            if not name or "/" in name or name.startswith("."):
                raise ValueError(f"variant name {name!r} must be a non-empty directory name")
        return value

    @model_validator(mode="after")
    def _references(self) -> "SuiteFile":
        for a, b in self.pairs:
            for name in (a, b):
                if name not in self.variants:
                    raise ValueError(f"pairs: unknown variant {name!r}; defined: {', '.join(self.variants)}")
        for ablation in self.ablations:
            if ablation.base not in self.variants:
                raise ValueError(f"ablations: unknown base variant {ablation.base!r}; "
                                 f"defined: {', '.join(self.variants)}")
        if self.factorial is not None and self.factorial.base not in self.variants:
            raise ValueError(f"factorial: unknown base variant {self.factorial.base!r}; "
                             f"defined: {', '.join(self.variants)}")
        return self


@dataclass(frozen=True)
class Variant:
    """One column of the comparison: a trainer, a preset and its overrides."""

    name: str
    trainer: str
    preset: str
    workers: int = 1
    num_envs: int = 1
    flags: dict[str, Any] = field(default_factory=dict)
    semantics: dict[str, Any] = field(default_factory=dict)
    base: Optional[str] = None  # the variant an ablation flips one switch of
    switch: Optional[str] = None  # the flipped switch group, e.g. "adv_norm"
    factors: Optional[tuple[str, ...]] = None  # a factorial cell: the switch groups set to the `towards` preset

    def resolved_semantics(self) -> Semantics:
        return get_preset(self.preset).with_overrides([f"{k}={_cli_value(v)}" for k, v in self.semantics.items()])


@dataclass(frozen=True)
class RunSpec:
    """One process tree to run: (env, variant, seed) with its full command line arguments."""

    suite: str
    env: str
    variant: Variant
    seed: int
    budget: int
    evaluation: Evaluation
    env_flags: dict[str, Any]
    workers: int = 1
    num_envs: int = 1

    @property
    def processes(self) -> int:
        """Cores the run occupies (PPO1: one per MPI rank)."""
        return self.workers if self.variant.trainer == "ppo1" else 1

    @property
    def key(self) -> tuple[str, str, int]:
        return self.env, self.variant.name, self.seed

    def relative_dir(self) -> Path:
        return rundir.run_dir("", self.env, self.variant.name, self.seed)

    def semantics_and_config(self) -> tuple[Semantics, Any]:
        """What the run's trainer builds from its flags (no TF, no env)."""
        return trainers.semantics_and_config(self.variant.trainer, self.script_args("/nonexistent-log-dir"))

    def script_args(self, log_dir: Path | str) -> list[str]:
        """Arguments of tfppo-ppo1 or tfppo-ppo2 for this run (no interpreter, no mpirun)."""
        v = self.variant
        budget_flag = "--max_timesteps" if v.trainer == "ppo1" else "--total_timesteps"
        args = ["--env", self.env, "--preset", v.preset, "--seed", str(self.seed), budget_flag, str(self.budget),
                "--log_dir", str(log_dir), "--eval_freq", str(self.evaluation.freq),
                "--eval_episodes", str(self.evaluation.episodes)]
        if v.trainer == "ppo2":
            args += ["--num_envs", str(self.num_envs)]
        else:  # equal budgets: PPO1 never runs past the budget, as PPO2 never does (floor(total/nbatch))
            args += ["--stop_at_budget"]
        for name, value in {**self.env_flags, **v.flags}.items():
            args += _flag_args(name, value)
        for name, value in v.semantics.items():
            args += ["--semantics", f"{name}={_cli_value(value)}"]
        return args


def _cli_value(value: Any) -> str:
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return ",".join(str(v) for v in value)
    return str(value)


def _flag_args(name: str, value: Any) -> list[str]:
    if value is True:
        return [f"--{name}"]
    if value is False:
        return []
    return [f"--{name}", _cli_value(value)]


@dataclass(frozen=True)
class Suite:
    name: str
    description: str
    seeds: tuple[int, ...]
    evaluation: Evaluation
    envs: dict[str, EnvEntry]
    variants: dict[str, Variant]
    pairs: tuple[tuple[str, str], ...]
    source: Optional[Path] = None
    envs_selected: Optional[tuple[str, ...]] = None  # run only these now (the definition keeps them all)

    def runs(self) -> list[RunSpec]:
        """The grid, env-major then variant then seed (so early results cover every variant), without
        the ablations whose switch is idle on the env (`idle_ablations`)."""
        idle = self.idle_ablations
        return [self.run_spec(env_id, variant, seed)
                for env_id in self.envs if self.envs_selected is None or env_id in self.envs_selected
                for seed in self.seeds
                for variant in self.variants.values() if variant.name not in idle.get(env_id, ())]

    def run_spec(self, env_id: str, variant: Variant, seed: int) -> RunSpec:
        entry = self.envs[env_id]
        return RunSpec(self.name, env_id, variant, seed, entry.budget, self.evaluation,
                       dict(entry.flags.get(variant.trainer, {})), workers=entry.workers or variant.workers,
                       num_envs=entry.num_envs or variant.num_envs)

    @functools.cached_property
    def idle_ablations(self) -> dict[str, list[str]]:
        """Per env, the ablation variants whose switch no step of their run reads there
        (`tfppo.core.switch_scope`: e.g. ``clip_actions`` with Discrete actions). Such a run would repeat its
        base's bit for bit, so it is not run; the report names these switches instead."""
        from tfppo.envs.factory import probe_spaces
        from tfppo.core.switch_scope import same_computation

        ablations = [v for v in self.variants.values() if v.base is not None]
        idle: dict[str, list[str]] = {}
        for env_id in self.envs if ablations else ():
            spaces = probe_spaces(env_id)
            bases = {name: self.run_spec(env_id, self.variants[name], 0).semantics_and_config()[0]
                     for name in dict.fromkeys(v.base for v in ablations)}
            for variant in ablations:
                semantics, config = self.run_spec(env_id, variant, 0).semantics_and_config()
                if same_computation(semantics, bases[variant.base], *spaces, config):
                    idle.setdefault(env_id, []).append(variant.name)
        return idle

    def comparison_pairs(self) -> list[tuple[str, str]]:
        """Declared pairs, then every ablation variant against its base."""
        pairs = list(self.pairs)
        pairs += [(v.name, v.base) for v in self.variants.values() if v.base is not None]
        return pairs

    def definition(self) -> dict[str, Any]:
        """What decides what a run computes, except the seed list (more seeds extend a suite). The code
        itself is not in it: each run's versions.json records the git commit it ran."""
        return {
            "name": self.name,
            "evaluation": self.evaluation.model_dump(),
            "envs": {k: v.model_dump() for k, v in self.envs.items()},
            # the resolved records, so a results directory made under other presets (an older tfppo) is refused
            # (``factors`` only where it is set, so the definitions of suites without a factorial do not move)
            "variants": {k: {**{f: x for f, x in v.__dict__.items() if f != "factors" or x is not None},
                             "resolved_semantics": v.resolved_semantics().to_dict()}
                         for k, v in self.variants.items()},
        }

    def fingerprint(self) -> str:
        text = json.dumps(self.definition(), sort_keys=True, default=str)
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    def only_envs(self, envs: list[str]) -> "Suite":
        unknown = [e for e in envs if e not in self.envs]
        if unknown or not envs:
            raise SuiteError(f"--envs {','.join(unknown) or '(empty)'} not in suite {self.name!r}; "
                             f"allowed: {', '.join(self.envs)}")
        return dataclasses.replace(self, envs_selected=tuple(envs))

    def with_seeds(self, count: int) -> "Suite":
        if count <= 0:
            raise SuiteError(f"--seeds must be a positive integer, got {count}")
        return dataclasses.replace(self, seeds=tuple(range(count)))


# -- loading -------------------------------------------------------------------------------------
def resolve_suite_path(name_or_path: str | Path) -> Path:
    """A path to a YAML file, or the name of a bundled suite (comparisons/suites/NAME.yaml)."""
    path = Path(name_or_path)
    if path.suffix in (".yaml", ".yml") or path.exists():
        if not path.is_file():
            raise SuiteError(f"suite file {str(path)!r} does not exist")
        return path
    bundled = SUITES_DIR / f"{name_or_path}.yaml"
    if not bundled.is_file():
        raise SuiteError(f"unknown suite {str(name_or_path)!r}; bundled: {', '.join(bundled_suites())} "
                         "(or give a path to a .yaml file)")
    return bundled




def load_suite(name_or_path: str | Path, *, validate_runs: bool = True) -> Suite:
    """Parse, validate and expand a suite; any problem is one `SuiteError` line naming the field."""
    path = resolve_suite_path(name_or_path)
    try:
        raw = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        raise SuiteError(f"{path.name}: malformed YAML{where}: {getattr(exc, 'problem', None) or exc}") from None
    if not isinstance(raw, dict):
        raise SuiteError(f"{path.name}: a suite file must be a mapping with name, seeds, evaluation, envs, variants")
    try:
        parsed = SuiteFile.model_validate(raw)
    except ValidationError as exc:
        raise SuiteError(f"{path.name}: {_first_error(exc)}") from None
    suite = _build(parsed, path)
    if validate_runs:
        validate(suite, path.name)
    return suite


def _first_error(exc: ValidationError) -> str:
    error = exc.errors()[0]
    location = ".".join(str(part) for part in error["loc"])
    message = error["msg"].removeprefix("Value error, ")
    if error["type"] == "extra_forbidden":
        message = "unknown key"
    return f"{location}: {message}" if location else message


def _build(parsed: SuiteFile, path: Path) -> Suite:
    variants = {name: Variant(name, v.trainer, v.preset, v.workers, v.num_envs, dict(v.flags), dict(v.semantics))
                for name, v in parsed.variants.items()}
    for ablation in parsed.ablations:
        base = variants[ablation.base]
        generated = ablation_variants(base, ablation.towards) if ablation.towards else \
            [switch_variant(base, dict(ablation.set))]
        for variant in generated:
            if variant.name in variants:
                raise SuiteError(f"{path.name}: ablations: generated variant {variant.name!r} clashes with a "
                                 "variant of the same name")
            variants[variant.name] = variant
    if parsed.factorial is not None:
        for variant in factorial_variants(variants[parsed.factorial.base], parsed.factorial.towards,
                                          tuple(parsed.factorial.switches)):
            if variant.name in variants and variant.name != parsed.factorial.base:
                raise SuiteError(f"{path.name}: factorial: generated variant {variant.name!r} clashes with a "
                                 "variant of the same name")
            variants[variant.name] = variant
    seeds = tuple(range(parsed.seeds)) if isinstance(parsed.seeds, int) else tuple(parsed.seeds)
    return Suite(parsed.name, parsed.description, seeds, parsed.evaluation, dict(parsed.envs), variants,
                 tuple(parsed.pairs), path)


def ablation_variants(base: Variant, towards: str) -> list[Variant]:
    """One variant per switch group on which ``base``'s Semantics differs from preset ``towards``."""
    target = get_preset(towards)
    return [switch_variant(base, {name: getattr(target, name) for name in group})
            for group in switch_groups(base, towards).values()]


def switch_groups(base: Variant, towards: str) -> dict[str, tuple[str, ...]]:
    """The switch groups on which ``base``'s Semantics differs from preset ``towards``, by their first switch."""
    start = base.resolved_semantics()
    target = get_preset(towards)
    differing = [name for name in Semantics.field_names() if getattr(start, name) != getattr(target, name)]
    grouped: dict[str, tuple[str, ...]] = {}
    for name in differing:
        group = next((g for g in SWITCH_GROUPS if name in g), (name,))
        grouped.setdefault(group[0], group)
    return grouped


def factorial_variants(base: Variant, towards: str, switches: tuple[str, ...]) -> list[Variant]:
    """The 2^k cells: ``base`` itself (as the cell with no switch flipped) and ``base`` with every non-empty
    subset of ``switches`` set to preset ``towards``'s values, named ``<base>+<switch>+<switch>...``."""
    groups = switch_groups(base, towards)
    unknown = [s for s in switches if s not in groups]
    if unknown:
        raise SuiteError(f"factorial: switch {unknown[0]!r} does not differ between {base.name} and {towards}; "
                         f"allowed: {', '.join(groups)}")
    target = get_preset(towards)
    cells = []
    for subset in factorial.subsets(switches):
        changes = {name: getattr(target, name) for s in subset for name in groups[s]}
        try:
            base.resolved_semantics().replace(**changes)
        except (ConfigError, TypeError) as exc:
            raise SuiteError(f"factorial: switches {', '.join(subset)} cannot be set together on {base.name}: "
                             f"{exc}") from None
        cells.append(dataclasses.replace(base, name="+".join((base.name, *subset)),
                                         semantics={**base.semantics, **changes}, factors=subset))
    return cells


def switch_variant(base: Variant, changes: dict[str, Any]) -> Variant:
    """``base`` with one switch group set to ``changes``, named ``<base>+<first switch>``."""
    switch = next(iter(changes))
    try:
        base.resolved_semantics().replace(**changes)
    except (ConfigError, TypeError) as exc:
        raise SuiteError(f"ablations: switch {switch} cannot be set alone on {base.name}: {exc}") from None
    return Variant(name=f"{base.name}+{switch}", trainer=base.trainer, preset=base.preset, workers=base.workers,
                   num_envs=base.num_envs, flags=dict(base.flags), semantics={**base.semantics, **changes},
                   base=base.name, switch=switch)


def validate(suite: Suite, where: str) -> None:
    """Every run's flags through the trainer's own validation (env id, preset, switches, values)."""

    seen: set[tuple[str, str]] = set()
    for run in suite.runs():
        if (run.env, run.variant.name) in seen:
            continue
        seen.add((run.env, run.variant.name))
        for name in {**run.env_flags, **run.variant.flags}:
            if name in RESERVED_FLAGS:
                raise SuiteError(f"{where}: flag {name!r} of {run.env}/{run.variant.name} is set by the runner "
                                 f"(from env budget, seeds, evaluation, workers/num_envs); remove it")
        error = trainers.validate_args(run.variant.trainer, run.script_args("/nonexistent-log-dir"))
        if error:
            raise SuiteError(f"{where}: {run.env}/{run.variant.name}: {error}")
