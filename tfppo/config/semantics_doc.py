"""Render ``docs/semantics.md`` from the presets, so the table can never drift from the code.

``python scripts/semantics_table.py`` rewrites the file; ``tests/test_semantics_doc.py``
fails when the committed file differs from what the presets say now.
"""
from __future__ import annotations

from dataclasses import dataclass

from tfppo.config.semantics import PRESETS, Semantics, allowed_values

COLUMNS = (("Baselines PPO1", ("baselines-ppo1",)), ("SB PPO1", ("sb-ppo1",)),
           ("Baselines PPO2", ("baselines-ppo2", "baselines-ppo2-mujoco")), ("SB PPO2", ("sb-ppo2",)))


@dataclass(frozen=True)
class Row:
    """One row of spec §10: Semantics fields (values read from the presets) or a trainer option (text)."""

    number: int
    aspect: str
    fields: tuple[str, ...] = ()
    option: tuple[str, str, str, str, str] | None = None  # four columns + the tfppo option, when not a switch


ROWS = (
    Row(1, "Batch per iteration", option=("T per rank × W ranks", "T per rank × W ranks", "n_steps × N envs",
                                          "n_steps × N envs", "PPO1 `--timesteps_per_actorbatch` × `mpirun -n W`; "
                                          "PPO2 `--n_steps` × `--num_envs`")),
    Row(2, "Minibatch definition", option=("size B, remainder dropped", "size B, remainder dropped",
                                           "count, divisibility asserted", "count, divisibility asserted",
                                           "PPO1 `--optim_batchsize` (`MinibatchPlan.from_size`); PPO2 "
                                           "`--nminibatches` (`MinibatchPlan.from_count`)")),
    Row(3, "Gradient steps per iteration", option=("epochs × ⌊T/B⌋", "epochs × ⌊T/B⌋", "noptepochs × nminibatches",
                                                   "noptepochs × nminibatches", "follows rows 2 and `target_kl`")),
    Row(4, "Shuffling", option=("in-place data permutation, epochs + 2 per iteration", "same as [B]",
                                "index permutation per epoch", "same as [B]",
                                "fresh permutation per pass from the `shuffles` stream (`tfppo/seeding.py`), "
                                "one more when `eval_pass`")),
    Row(5, "Old log-prob in the ratio", ("old_logp",)),
    Row(6, "Advantage normalisation", ("adv_norm", "adv_norm_eps")),
    Row(7, "Value loss", ("value_loss", "value_clip", "vf_coef")),
    Row(8, "Entropy term", option=("−entcoeff·H", "−entcoeff·H", "−ent_coef·H", "−ent_coef·H",
                                   "PPO1 `--entcoeff`, PPO2 `--ent_coef`")),
    Row(9, "Policy clip ε", ("clip_anneal_with_lr",)),
    Row(10, "Learning-rate schedule counter", ("timestep_counting",)),
    Row(11, "Adam ε", ("adam_epsilon",)),
    Row(12, "Gradient clipping", ("max_grad_norm",)),
    Row(13, "Network towers", ("shared_towers",)),
    Row(14, "Initialisation (and [B] ppo2's head-less `_matching_fc`, §5.3)", ("init", "matching_fc")),
    Row(15, "Gaussian log σ", option=("state-independent, 0", "state-independent, 0", "state-independent, 0",
                                      "state-independent, 0", "fixed (identical in all four): `ActorCritic.log_std`")),
    Row(16, "Observation normalisation (and what a VecNormalize reset does, §5.4)", ("obs_norm", "vecnorm_reset")),
    Row(17, "Reward normalisation", ("reward_norm",)),
    Row(18, "Action clipping", ("clip_actions",)),
    Row(19, "Time-limit truncation", ("bootstrap_truncation",)),
    Row(20, "Value target", option=("TD(λ) return", "TD(λ) return", "TD(λ) return", "TD(λ) return",
                                    "fixed (identical in all four): `rollout.compute_gae`")),
    Row(21, "KL diagnostic", option=("exact KL", "exact KL", "approxkl (k2)", "approxkl (k2)",
                                     "both always logged: PPO1 `loss_kl`, PPO2 `approxkl` and `kl`")),
    Row(23, "Logged losses", ("eval_pass",)),
    Row(24, "Episode statistics", option=("all ranks (allgather), last 100", "all ranks, Monitor raw reward",
                                          "local Monitor raw reward, last 100", "local, raw reward",
                                          "PPO1 allgathers episodes of all ranks; PPO2 its envs; raw env reward")),
    Row(25, "Termination", option=("one of max_timesteps/episodes/iters/seconds", "total_timesteps",
                                   "⌊total/nbatch⌋ updates", "⌊total/nbatch⌋ updates",
                                   "PPO1 `--max_timesteps/--max_episodes/--max_iters/--max_seconds`; PPO2 "
                                   "`--total_timesteps`")),
    Row(27, "V₀ and action at index 0 of a segment", ("first_sample",)),
)


def _value(preset: str, name: str) -> str:
    value = getattr(PRESETS[preset], name)
    return "none" if value is None else str(value).lower() if isinstance(value, bool) else str(value)


def _cell(presets: tuple[str, ...], fields: tuple[str, ...]) -> str:
    parts = []
    for name in fields:
        values = [_value(p, name) for p in presets]
        parts.append(values[0] if len(set(values)) == 1 else " / ".join(values))
    return ", ".join(parts)


def render_table() -> str:
    header = "| # | difference | " + " | ".join(c for c, _ in COLUMNS) + " | tfppo switch: values |"
    lines = [header, "|" + "---|" * (len(COLUMNS) + 3)]
    for row in ROWS:
        if row.option is not None:
            cells, switch = list(row.option[:4]), row.option[4]
        else:
            cells = [_cell(presets, row.fields) for _, presets in COLUMNS]
            switch = "; ".join(f"`{name}`: {allowed_values(name)}" for name in row.fields)
        lines.append(f"| {row.number} | {row.aspect} | " + " | ".join(cells) + f" | {switch} |")
    return "\n".join(lines)


def render_presets() -> str:
    names = list(PRESETS)
    lines = ["| switch | " + " | ".join(names) + " |", "|" + "---|" * (len(names) + 1)]
    for name in Semantics.field_names():
        lines.append(f"| `{name}` | " + " | ".join(_value(p, name) for p in names) + " |")
    return "\n".join(lines)


INTRO = """# PPO1 vs PPO2: every difference, and the switch that sets it

Generated from `tfppo/semantics.py` by `python scripts/semantics_table.py`; a test fails when this file and
the presets disagree. Row numbers are those of §10 of the spec (`docs/spec.md`).
"Baselines PPO2" shows `baselines-ppo2 / baselines-ppo2-mujoco` where the two differ. Any switch can be set
with `--semantics key=value` in both scripts; rows without a switch are trainer options or identical in all
four originals. Row 22 (clip fraction, PPO2 only) and row 26 (recurrent policies) are not behavioural
switches: `clipfrac` is logged by both trainers and recurrent policies are out of scope.

Beyond the four originals (all four use the clipped surrogate): `target_kl` (SB3's early stop) and the PPO
paper's other algorithm, PPO-Penalty (Schulman et al. 2017 §4): `policy_loss` = `clip` | `kl_penalty`
(r·Â − β·KL(old‖new), β adapted after each update from d = mean KL of the updated policy: d < d_targ/1.5 → β/2,
d > 1.5·d_targ → 2β) | `fixed_kl` (constant β) | `clip_and_kl` (both terms), with β₀ = `kl_beta` and
d_targ = `kl_target`; β is logged (`kl_beta`, and d as `kl_final`) and saved in checkpoints.

Log names and cadence (spec §9) are a trainer option, not a switch: `--log_keys baselines` writes [B]
ppo2's `misc/`/`loss/` keys and `eprewmean`/`eplenmean` (NaN before the first episode ends) and prints every
10th update (`--log_interval`), `sb` the [SB] names every update, `both` both names; the preset's library is
the default. PPO1's keys are the same in both libraries; it also logs `approxkl` and `clipfrac`.
progress.csv and TensorBoard get every update whatever the cadence.

Image observations (uint8 H×W×C) take the Nature-CNN trunk (10×10 ones, as MinAtar's, a smaller CNN:
[Images](images.md)). Under `init=normc` it is [B] PPO1's `CnnPolicy`
('large'): Glorot-uniform convolutions (±√(6/(fan_in+fan_out))), normc fc and heads, and no observation
normalisation — `obs_norm=policy` on images means exactly that; the PPO2 presets use orthogonal √2."""

EQUIVALENCE = """## Proven equivalence

Under `--preset equivalent`, PPO1 with one worker and PPO2 with one env, the same seed and the same
batch/minibatch/epoch sizes take the same actions and end with the same parameters
(`tests/test_equivalence.py`, CartPole-v1 and Pendulum-v1, 3 iterations, max |Δθ| ≤ 1e-5). The two trainers
share the runner, GAE and the compiled update; `tfppo/seeding.py` gives PPO2's env *i* and PPO1's rank *i* the
same env seed and the same action stream, and both draw minibatch shuffles from stream 0.

**Two workers vs two envs.** PPO1 with `mpirun -n 2` and PPO2 with `--num_envs 2` cannot reach the same
parameters by construction, whatever the switches: (1) PPO1 normalises advantages per rank over its own
segment, PPO2 over the joint batch (or per joint minibatch); (2) each PPO1 step averages two per-rank
gradients of B samples each (a stratified minibatch of 2B), while PPO2's minibatches are slices of one joint
permutation of all 2T samples, and rank 1 shuffles with its own stream. What does hold, and is tested
(`test_ppo1_two_workers_and_ppo2_two_envs_collect_the_same_first_segment`), is identical initial weights and
an identical first segment per stream: observations, actions and rewards of rank *r* equal those of env *r*."""


def render() -> str:
    return "\n\n".join([INTRO, "## The differences (spec §10)", render_table(),
                        "## Presets, switch by switch", render_presets(), EQUIVALENCE]) + "\n"
