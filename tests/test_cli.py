"""Command-line errors: exit code 2, one ``<prog>: error: ...`` line naming the problem, nothing written.

Each case runs the real script in a subprocess. Every error must happen before
training starts (so each run is quick) and before anything is written, so the
given ``--log_dir`` and ``--save_path`` must not exist afterwards.

This module is also imported by those subprocesses (``--env
tests.test_cli:DictActionEnv``), so it keeps its imports light: no TensorFlow.
"""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import gymnasium
import numpy as np
import pytest
from gymnasium import spaces

REPO_ROOT = Path(__file__).resolve().parents[1]
TIMEOUT = 60  # generous ceiling; the cases take ~1-6 s each


class DictActionEnv(gymnasium.Env):
    """A valid env except for its Dict action space, which no PPO distribution covers."""

    observation_space = spaces.Box(-1.0, 1.0, (3,), np.float32)
    action_space = spaces.Dict({"move": spaces.Discrete(2), "force": spaces.Box(-1.0, 1.0, (1,), np.float32)})

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        return np.zeros(3, np.float32), {}

    def step(self, action):
        return np.zeros(3, np.float32), 0.0, True, False, {}


def run_script(script: str, args: list[str], repo_root, env) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, f"scripts/{script}", *args], cwd=repo_root, env=env,
                          capture_output=True, text=True, timeout=TIMEOUT)


def assert_one_line_error(proc: subprocess.CompletedProcess, prog: str, *needles: str) -> str:
    detail = f"\nstdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"
    assert proc.returncode == 2, f"exit code {proc.returncode}{detail}"
    assert "Traceback" not in proc.stderr and "Traceback" not in proc.stdout, detail
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert lines, f"nothing on stderr{detail}"
    last = lines[-1]
    assert last.startswith(f"{prog}: error: "), detail
    assert len(last) > len(f"{prog}: error: ") + 5, detail
    # Exactly one error line from our program (TF may add its own log lines, never ours twice).
    assert sum(line.startswith(f"{prog}:") for line in lines) == 1, detail
    assert "usage:" not in proc.stderr, f"the error should be one line, not a usage block{detail}"
    for needle in needles:
        assert needle in last, f"{needle!r} not in the error line {last!r}"
    return last


@pytest.fixture
def io_dirs(tmp_path):
    log_dir, save_path = tmp_path / "logs", tmp_path / "model"
    yield log_dir, save_path
    assert not log_dir.exists(), "a failing run wrote its log_dir"
    assert not save_path.exists(), "a failing run wrote its save_path"


# Valid, fast base: the errors below are each a single change to it.
BASE = ["--env", "CartPole-v1", "--num_envs", "2", "--n_steps", "8", "--nminibatches", "2",
        "--total_timesteps", "16", "--verbose", "0"]

CASES = {
    # id: (replacement flags, substrings of the error line)
    "nminibatches-not-dividing": (["--nminibatches", "3"], ["--nminibatches", "3", "16"]),
    "n_steps-zero": (["--n_steps", "0"], ["--n_steps", "0"]),
    "num_envs-negative": (["--num_envs", "-1"], ["--num_envs", "-1"]),
    "cliprange-zero": (["--cliprange", "0"], ["--cliprange"]),
    "cliprange-negative": (["--cliprange", "-0.1"], ["--cliprange", "-0.1"]),
    "gamma-above-one": (["--gamma", "1.5"], ["--gamma", "1.5"]),
    "lam-zero": (["--lam", "0"], ["--lam"]),
    "unknown-env": (["--env", "NoSuchEnv-v0"], ["NoSuchEnv-v0"]),
    "dict-action-space": (["--env", "tests.test_cli:DictActionEnv"], ["action space", "Dict"]),
    "unknown-preset": (["--preset", "no-such-preset"], ["--preset", "no-such-preset"]),
    "unknown-semantics-key": (["--semantics", "nosuchkey=1"], ["semantics", "nosuchkey"]),
    "bad-semantics-value": (["--semantics", "adv_norm=weird"], ["adv_norm", "weird"]),
    "bad-learning-rate": (["--learning_rate", "lin_abc"], ["--learning_rate", "lin_abc"]),
}


def _with(base: list[str], change: list[str]) -> list[str]:
    """``base`` with the flags in ``change`` replaced (or appended)."""
    out = list(base)
    for flag, value in zip(change[::2], change[1::2]):
        if flag in out:
            out[out.index(flag) + 1] = value
        else:
            out += [flag, value]
    return out


@pytest.mark.parametrize("change,needles", list(CASES.values()), ids=list(CASES))
def test_ppo2_bad_flag(change, needles, io_dirs, repo_root, subprocess_env):
    log_dir, save_path = io_dirs
    args = _with(BASE, change) + ["--log_dir", str(log_dir), "--save_path", str(save_path)]
    proc = run_script("ppo2.py", args, repo_root, subprocess_env)
    assert_one_line_error(proc, "ppo2.py", *needles)


def test_ppo2_load_path_missing(io_dirs, repo_root, subprocess_env, tmp_path):
    log_dir, save_path = io_dirs
    missing = tmp_path / "no-checkpoint-here"
    proc = run_script("ppo2.py", BASE + ["--load_path", str(missing), "--log_dir", str(log_dir),
                                         "--save_path", str(save_path)], repo_root, subprocess_env)
    assert_one_line_error(proc, "ppo2.py", "--load_path", "no-checkpoint-here")
    assert not missing.exists()


def test_ppo2_load_path_corrupt(io_dirs, repo_root, subprocess_env, tmp_path):
    log_dir, save_path = io_dirs
    corrupt = tmp_path / "corrupt"
    corrupt.mkdir()
    (corrupt / "agent.json").write_text("{ not json at all")
    proc = run_script("ppo2.py", BASE + ["--load_path", str(corrupt), "--log_dir", str(log_dir),
                                         "--save_path", str(save_path)], repo_root, subprocess_env)
    assert_one_line_error(proc, "ppo2.py", "--load_path", "agent.json")
    assert [p.name for p in corrupt.iterdir()] == ["agent.json"]


def test_ppo2_load_path_incomplete_agent_json(io_dirs, repo_root, subprocess_env, tmp_path):
    """Right format and algo but no config section: still a bad --load_path, not a KeyError traceback."""
    log_dir, save_path = io_dirs
    incomplete = tmp_path / "incomplete"
    incomplete.mkdir()
    (incomplete / "agent.json").write_text('{"format": 1, "algo": "ppo2"}')
    proc = run_script("ppo2.py", BASE + ["--load_path", str(incomplete), "--log_dir", str(log_dir),
                                         "--save_path", str(save_path)], repo_root, subprocess_env)
    assert_one_line_error(proc, "ppo2.py", "--load_path")


@pytest.fixture(scope="module")
def checkpoint_192(tmp_path_factory):
    """A real PPO2 checkpoint whose batch (2 envs x 96 steps = 192) is larger than sb-ppo2's default 128."""
    path = tmp_path_factory.mktemp("cli-ckpt") / "model"
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    proc = subprocess.run(
        [sys.executable, "scripts/ppo2.py", "--env", "CartPole-v1", "--num_envs", "2", "--n_steps", "96",
         "--nminibatches", "2", "--noptepochs", "1", "--total_timesteps", "192", "--verbose", "0",
         "--log_dir", str(path.parent / "logs"), "--save_path", str(path)],
        cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=TIMEOUT)
    assert proc.returncode == 0, proc.stderr
    return path


def test_ppo2_load_path_total_timesteps_below_checkpoint_batch(checkpoint_192, io_dirs, repo_root,
                                                                 subprocess_env):
    """Continuing a checkpoint for fewer steps than its own batch (150 < 192) is a bad flag:
    one line and exit 2, not a ValueError traceback from inside learn()."""
    log_dir, save_path = io_dirs
    proc = run_script("ppo2.py", ["--load_path", str(checkpoint_192), "--total_timesteps", "150", "--verbose", "0",
                                  "--log_dir", str(log_dir), "--save_path", str(save_path)],
                      repo_root, subprocess_env)
    assert_one_line_error(proc, "ppo2.py", "--total_timesteps", "150")


def test_evaluate_load_path_missing(repo_root, subprocess_env, tmp_path):
    proc = run_script("evaluate.py", ["--load_path", str(tmp_path / "missing")], repo_root, subprocess_env)
    assert_one_line_error(proc, "evaluate.py", "--load_path", "missing")


def test_evaluate_bad_episodes(repo_root, subprocess_env, tmp_path):
    proc = run_script("evaluate.py", ["--load_path", str(tmp_path), "--episodes", "0"], repo_root, subprocess_env)
    assert_one_line_error(proc, "evaluate.py", "--episodes")


def test_dict_action_env_is_importable_and_really_dict():
    """Guard for the dict-action-space case: the env itself is fine, only its action space is not."""
    env = DictActionEnv()
    obs, _ = env.reset(seed=0)
    assert obs.shape == (3,) and isinstance(env.action_space, spaces.Dict)


PPO1_BASE = ["--env", "CartPole-v1", "--timesteps_per_actorbatch", "32", "--optim_batchsize", "16",
             "--max_timesteps", "64", "--verbose", "0"]

PPO1_CASES = {
    "optim_epochs-zero": (["--optim_epochs", "0"], ["--optim_epochs", "0"]),
    "clip_param-zero": (["--clip_param", "0"], ["--clip_param"]),
    "batch-larger-than-T": (["--optim_batchsize", "64"], ["--optim_batchsize", "64", "32"]),
    "two-budgets": (["--max_iters", "3"], ["max_timesteps", "max_iters"]),
    "linear-without-max_timesteps": (["--max_timesteps", "0", "--max_iters", "2", "--schedule", "linear"],
                                     ["--schedule linear", "--max_timesteps"]),
    "bad-schedule": (["--schedule", "cosine"], ["--schedule", "cosine"]),
    "unknown-env": (["--env", "NoSuchEnv-v0"], ["NoSuchEnv-v0"]),
    "unknown-preset": (["--preset", "no-such-preset"], ["--preset", "no-such-preset"]),
    "lam-above-one": (["--lam", "2"], ["--lam", "2"]),
}


@pytest.mark.parametrize("change,needles", list(PPO1_CASES.values()), ids=list(PPO1_CASES))
def test_ppo1_bad_flag(change, needles, io_dirs, repo_root, subprocess_env):
    log_dir, save_path = io_dirs
    args = _with(PPO1_BASE, change) + ["--log_dir", str(log_dir), "--save_path", str(save_path)]
    assert_one_line_error(run_script("ppo1.py", args, repo_root, subprocess_env), "ppo1.py", *needles)


def test_ppo1_load_path_refuses_changed_hyperparameters(tmp_path, repo_root, subprocess_env):
    model = tmp_path / "model"
    done = run_script("ppo1.py", PPO1_BASE + ["--schedule", "constant", "--save_path", str(model),
                                              "--log_dir", str(tmp_path / "first")], repo_root, subprocess_env)
    assert done.returncode == 0, done.stderr[-2000:]
    log_dir = tmp_path / "second"
    proc = run_script("ppo1.py", ["--load_path", str(model), "--optim_epochs", "3", "--log_dir", str(log_dir)],
                      repo_root, subprocess_env)
    assert_one_line_error(proc, "ppo1.py", "--optim_epochs", "--load_path")
    assert not log_dir.exists()
    # a new budget is allowed and continues from the saved counters (64 steps done, 32 per iteration)
    proc = run_script("ppo1.py", ["--load_path", str(model), "--max_timesteps", "128", "--log_dir", str(log_dir),
                                  "--verbose", "0"], repo_root, subprocess_env)
    assert proc.returncode == 0, proc.stderr[-2000:]
    import pandas as pd

    assert list(pd.read_csv(log_dir / "progress.csv").TimestepsSoFar) == [96, 128]
