"""Suite files: parsing, every validation error (one line naming the field), grid expansion, ablations."""
from __future__ import annotations

import subprocess
import sys

import pytest

from tfppo.comparisons.suite import SuiteError, ablation_variants, bundled_suites, load_suite
from tests.comparisons_support.suites import TINY_SUITE, write_suite


def test_bundled_suites_parse_and_validate():
    assert {"smoke", "classic", "mujoco", "ablation", "equivalence", "atari", "minatar"} <= set(bundled_suites())
    for name in ("smoke", "classic", "ablation", "equivalence"):
        suite = load_suite(name)
        assert suite.runs(), name


@pytest.mark.parametrize("name, package, runs", [("atari", "ale_py", 2 * 2 * 3), ("minatar", "minatar", 2 * 4 * 5)])
def test_image_suites_parse_and_validate(name, package, runs):
    """Their validation builds each trainer's config and looks the env up, which needs the env's extra."""
    pytest.importorskip(package)
    suite = load_suite(name)
    assert len(suite.runs()) == runs


def test_a_namespaced_env_id_is_one_directory_of_a_run():
    from tfppo.comparisons.rundir import run_dir

    assert run_dir("out/minatar", "MinAtar/Breakout-v1", "ppo1", 3).parts == \
        ("out", "minatar", "MinAtar_Breakout-v1", "ppo1", "seed-3")


def test_smoke_is_ppo1_vs_ppo2_under_their_own_presets():
    suite = load_suite("smoke")
    assert {v.trainer: v.preset for v in suite.variants.values()} == {"ppo1": "baselines-ppo1",
                                                                      "ppo2": "baselines-ppo2"}
    assert suite.seeds == (0, 1, 2) and list(suite.envs) == ["CartPole-v1"]
    assert suite.comparison_pairs() == [("ppo1", "ppo2")]


def test_grid_expansion_order_and_arguments(tmp_path):
    suite = load_suite(write_suite(tmp_path))
    runs = suite.runs()
    assert [r.key for r in runs] == [("CartPole-v1", "ppo1", 0), ("CartPole-v1", "ppo2", 0),
                                     ("CartPole-v1", "ppo1", 1), ("CartPole-v1", "ppo2", 1)]
    ppo1, ppo2 = runs[0], runs[1]
    assert ppo1.relative_dir().as_posix() == "CartPole-v1/ppo1/seed-0"
    args1 = ppo1.script_args("LOG")
    assert args1[:10] == ["--env", "CartPole-v1", "--preset", "baselines-ppo1", "--seed", "0",
                          "--max_timesteps", "4000", "--log_dir", "LOG"]
    assert args1[args1.index("--eval_freq") + 1] == "1000" and args1[args1.index("--eval_episodes") + 1] == "2"
    assert args1[args1.index("--timesteps_per_actorbatch") + 1] == "256"
    args2 = ppo2.script_args("LOG")
    assert args2[args2.index("--total_timesteps") + 1] == "4000"
    assert args2[args2.index("--num_envs") + 1] == "1" and "--timesteps_per_actorbatch" not in args2


def test_env_level_workers_and_envs_override_the_variant(tmp_path):
    text = TINY_SUITE.replace("    threshold: 150\n", "    threshold: 150\n    num_envs: 4\n    workers: 2\n")
    text = text.replace("ppo2: {n_steps: 256, nminibatches: 4}", "ppo2: {n_steps: 64, nminibatches: 4}")
    runs = load_suite(write_suite(tmp_path, text)).runs()
    assert (runs[0].workers, runs[0].processes) == (2, 2)
    assert runs[1].num_envs == 4 and runs[1].processes == 1
    args = runs[1].script_args("LOG")
    assert args[args.index("--num_envs") + 1] == "4"


def test_seed_list_and_seed_override(tmp_path):
    suite = load_suite(write_suite(tmp_path, TINY_SUITE.replace("seeds: 2", "seeds: [3, 7]")))
    assert suite.seeds == (3, 7)
    assert suite.with_seeds(4).seeds == (0, 1, 2, 3)
    assert suite.with_seeds(4).fingerprint() == suite.fingerprint()  # more seeds extend, not redefine


@pytest.mark.parametrize("old,new,expected", [
    ("name: tiny", "name: tiny\ncolour: red", "colour: unknown key"),
    ("seeds: 2", "seeds: two", "seeds"),
    ("seeds: 2", "seeds: [1, 1]", "seeds: seeds must be a positive count or a list of distinct"),
    ("budget: 4000", "budget: -5", "envs.CartPole-v1.budget"),
    ("budget: 4000", "budget: 4000\n    speed: 3", "envs.CartPole-v1.speed: unknown key"),
    ("preset: baselines-ppo1,", "preset: baseline-ppo1,", "variants.ppo1.preset: unknown preset 'baseline-ppo1'"),
    ("trainer: ppo1,", "trainer: ppo3,", "variants.ppo1.trainer"),
    ("{trainer: ppo2, preset: baselines-ppo2, num_envs: 1}",
     "{trainer: ppo2, preset: baselines-ppo2, workers: 2}", "PPO2 takes num_envs"),
    ("  - [ppo1, ppo2]", "  - [ppo1, ppo3]", "pairs: unknown variant 'ppo3'"),
    ("evaluation: {freq: 1000, episodes: 2}", "evaluation: {freq: 0, episodes: 2}", "evaluation.freq"),
    ("evaluation: {freq: 1000, episodes: 2}\n", "", "evaluation: Field required"),
])
def test_schema_errors_name_the_field(tmp_path, old, new, expected):
    assert old in TINY_SUITE
    with pytest.raises(SuiteError) as info:
        load_suite(write_suite(tmp_path, TINY_SUITE.replace(old, new, 1)))
    message = str(info.value)
    assert "\n" not in message and message.startswith("tiny.yaml: ")
    assert expected in message


@pytest.mark.parametrize("old,new,expected", [
    ("CartPole-v1:", "CartPoleXYZ-v1:", "CartPoleXYZ-v1"),
    ("num_envs: 1}", "num_envs: 1, semantics: {adv_norm: sideways}}", "adv_norm"),
    ("num_envs: 1}", "num_envs: 1, semantics: {colour: red}}", "unknown semantics key 'colour'"),
    ("{n_steps: 256, nminibatches: 4}", "{n_steps: 256, nminibatches: 4, n_stepz: 3}", "n_stepz"),
    ("{n_steps: 256, nminibatches: 4}", "{n_steps: 256, nminibatches: 3}", "--nminibatches 3 must divide"),
    ("{n_steps: 256, nminibatches: 4}", "{n_steps: 256, nminibatches: 4, seed: 3}", "flag 'seed'"),
])
def test_runtime_validation_uses_the_trainers_own_checks(tmp_path, old, new, expected):
    assert old in TINY_SUITE
    with pytest.raises(SuiteError) as info:
        load_suite(write_suite(tmp_path, TINY_SUITE.replace(old, new, 1)))
    assert "\n" not in str(info.value) and expected in str(info.value)


def test_malformed_yaml_and_not_a_mapping(tmp_path):
    with pytest.raises(SuiteError, match=r"tiny.yaml: malformed YAML at line \d+"):
        load_suite(write_suite(tmp_path, "name: [tiny\nseeds: 2\n"))
    with pytest.raises(SuiteError, match="must be a mapping"):
        load_suite(write_suite(tmp_path, "- a\n- b\n"))
    with pytest.raises(SuiteError, match="unknown suite 'nope'; bundled: .*smoke"):
        load_suite("nope")


def test_cli_prints_one_line_and_exits_2_for_a_bad_suite(tmp_path, repo_root, subprocess_env):
    path = write_suite(tmp_path, TINY_SUITE.replace("name: tiny", "name: tiny\ncolour: red"))
    proc = subprocess.run([sys.executable, str(repo_root / "scripts" / "compare.py"), "run", str(path),
                           "--out", str(tmp_path / "out")], capture_output=True, text=True, env=subprocess_env,
                          timeout=120)
    assert proc.returncode == 2
    assert proc.stderr == "compare.py: error: tiny.yaml: colour: unknown key\n"
    assert not (tmp_path / "out").exists()  # nothing written


def test_ablation_flips_each_differing_switch_alone():
    suite = load_suite("ablation")
    base = suite.variants["ppo2"]
    generated = ablation_variants(base, "baselines-ppo1")
    # baselines-ppo2 and baselines-ppo1 differ on these switches (docs/semantics.md); grouped ones move together
    assert [v.switch for v in generated] == ["adv_norm", "value_loss", "max_grad_norm", "shared_towers", "init",
                                             "matching_fc", "obs_norm", "clip_actions", "old_logp", "first_sample",
                                             "timestep_counting", "eval_pass"]
    value = next(v for v in generated if v.switch == "value_loss")
    assert value.semantics == {"value_loss": "mse", "value_clip": "off", "vf_coef": 1.0}
    init = next(v for v in generated if v.switch == "init")
    assert init.semantics == {"init": "normc"} and init.base == "ppo2" and init.preset == "baselines-ppo2"
    resolved = init.resolved_semantics()
    assert resolved.init == "normc" and resolved.shared_towers is True  # everything else stays PPO2's
    reverse = [v for v in suite.variants.values() if v.base == "ppo1" and v.switch != "policy_loss"]
    assert len(reverse) == len(generated) and all(v.trainer == "ppo1" for v in reverse)
    assert ("ppo2+init", "ppo2") in suite.comparison_pairs() and ("ppo1", "ppo2") in suite.comparison_pairs()


def test_set_ablations_flip_a_switch_the_presets_share():
    suite = load_suite("ablation")
    penalty = suite.variants["ppo2+policy_loss"]
    assert penalty.base == "ppo2" and penalty.switch == "policy_loss"
    assert penalty.resolved_semantics().policy_loss == "kl_penalty"
    assert suite.variants["ppo1+policy_loss"].resolved_semantics().policy_loss == "kl_penalty"
    reset = suite.variants["ppo2-vecnorm+vecnorm_reset"].resolved_semantics()
    # the base turns VecNormalize on (else the reset switch has nothing to act on); the variant flips the reset only
    assert (reset.obs_norm, reset.reward_norm, reset.vecnorm_reset) == ("env", True, "sb")
    assert suite.variants["ppo2-vecnorm"].resolved_semantics().vecnorm_reset == "baselines"
    assert ("ppo2-vecnorm+vecnorm_reset", "ppo2-vecnorm") in suite.comparison_pairs()


def test_ablations_of_switches_idle_on_an_env_leave_the_grid():
    """Hand-derived: CartPole and LunarLander have Discrete actions (clip_actions idle) and Pendulum a
    1-d Box; no env has 64 actions or action dims, the width of the last hidden layer (matching_fc idle);
    PPO2 anneals its learning rate on CartPole only (timestep_counting idle elsewhere)."""
    suite = load_suite("ablation")
    assert suite.idle_ablations == {
        "CartPole-v1": ["ppo2+matching_fc", "ppo2+clip_actions", "ppo1+matching_fc", "ppo1+clip_actions"],
        "Pendulum-v1": ["ppo2+matching_fc", "ppo2+timestep_counting", "ppo1+matching_fc"],
        "LunarLander-v3": ["ppo2+matching_fc", "ppo2+clip_actions", "ppo2+timestep_counting", "ppo1+matching_fc",
                           "ppo1+clip_actions"]}
    runs = suite.runs()
    assert len(runs) == 5 * (3 * len(suite.variants) - 12)
    assert not any(run.variant.name in suite.idle_ablations[run.env] for run in runs)
    assert load_suite("classic").idle_ablations == {}  # no ablations: nothing probed, nothing idle


@pytest.mark.parametrize("entry, message", [
    ("{base: ppo2, towards: sb-ppo2, set: {policy_loss: kl_penalty}}", "give either towards"),
    ("{base: ppo2}", "give either towards"),
    ("{base: ppo2, set: {policy_loss: bogus}}", "policy_loss"),
])
def test_bad_ablation_entries_are_refused(tmp_path, entry, message):
    path = write_suite(tmp_path, TINY_SUITE + f"ablations:\n  - {entry}\n")
    with pytest.raises(SuiteError, match=message):
        load_suite(path)


def test_env_subset_runs_fewer_without_changing_the_definition():
    suite = load_suite("classic")
    subset = suite.only_envs(["CartPole-v1", "Pendulum-v1"])
    assert {r.env for r in subset.runs()} == {"CartPole-v1", "Pendulum-v1"}
    assert len(subset.runs()) == len(suite.runs()) // 2 and subset.fingerprint() == suite.fingerprint()
    with pytest.raises(SuiteError, match="--envs Hopper-v5 not in suite 'classic'; allowed: CartPole-v1"):
        suite.only_envs(["Hopper-v5"])


def test_fingerprint_follows_the_resolved_semantics(tmp_path, monkeypatch):
    from tfppo.config import semantics

    suite = load_suite(write_suite(tmp_path))
    before = suite.fingerprint()
    changed = dict(semantics.PRESETS, **{"baselines-ppo2": semantics.PRESETS["baselines-ppo2"].replace(
        shared_towers=False)})
    monkeypatch.setattr(semantics, "PRESETS", changed)  # a later tfppo whose preset means something else
    assert suite.fingerprint() != before
