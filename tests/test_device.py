"""`--device`: the choice table, the CPU placement this machine (and CI) must get, one-line errors."""
from __future__ import annotations

import subprocess
import sys

import gymnasium as gym
import numpy as np
import pytest
import tensorflow as tf

from tfppo.util.device import configure_tensorflow, select_device, update_device
from tfppo.util.errors import ConfigError
from tfppo.core.learner import Batch, Learner, MinibatchPlan
from tfppo.core.policy import ActorCritic
from tfppo.config.semantics import get_preset

HAS_GPU = bool(tf.config.list_physical_devices("GPU"))


@pytest.mark.parametrize("requested, n_gpus, expected", [
    ("auto", 0, "/CPU:0"), ("auto", 1, "/GPU:0"), ("auto", 4, "/GPU:0"),
    ("cpu", 0, "/CPU:0"), ("cpu", 2, "/CPU:0"),
    ("gpu", 1, "/GPU:0"), ("gpu", 3, "/GPU:0"),
])
def test_select_device_table(requested, n_gpus, expected):
    assert select_device(requested, n_gpus) == expected


@pytest.mark.parametrize("requested, n_gpus, needle", [("gpu", 0, "--device gpu"), ("tpu", 1, "'tpu'")])
def test_select_device_refuses_in_one_line(requested, n_gpus, needle):
    with pytest.raises(ConfigError) as info:
        select_device(requested, n_gpus)
    assert needle in str(info.value) and "\n" not in str(info.value)


@pytest.mark.skipif(HAS_GPU, reason="checks the CPU placement of a machine without a GPU (CI)")
def test_placement_code_picks_cpu_and_the_update_runs_there():
    assert configure_tensorflow(device="auto") == "/CPU:0"
    assert configure_tensorflow(device="cpu") == "/CPU:0"
    model = ActorCritic(gym.spaces.Box(-np.inf, np.inf, (4,), np.float32), gym.spaces.Discrete(2), seed=0)
    learner = Learner(model, get_preset("sb-ppo2"), MinibatchPlan.from_count(8, 2, 1), ent_coef=0.0)
    rng = np.random.default_rng(0)
    batch = Batch(obs=rng.normal(size=(8, 4)).astype(np.float32), actions=rng.integers(0, 2, 8),
                  advantages=np.ones(8, np.float32), returns=rng.normal(size=8).astype(np.float32),
                  values=np.zeros(8, np.float32), neglogp=np.full(8, np.log(2.0), np.float32))
    before = model.trainable_variables[0].numpy().copy()
    learner.update(batch, learning_rate=1e-2, clip=0.2, clip_vf=0.2, rng=rng)
    assert not np.array_equal(before, model.trainable_variables[0].numpy())  # the update ran
    for var in [*model.trainable_variables, learner.optimizer.iterations]:
        assert update_device(var) == "/CPU:0", var.device


@pytest.mark.skipif(HAS_GPU, reason="needs a machine without a GPU")
def test_cli_device_gpu_without_gpu_is_one_line(repo_root, subprocess_env, tmp_path):
    proc = subprocess.run([sys.executable, "scripts/ppo2.py", "--device", "gpu", "--total_timesteps", "256",
                           "--log_dir", str(tmp_path / "logs")], cwd=repo_root, env=subprocess_env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2, proc.stderr
    ours = [line for line in proc.stderr.splitlines() if line.startswith("ppo2.py:")]
    assert ours == [ours[0]] and "--device gpu" in ours[0] and "Traceback" not in proc.stderr
    assert not (tmp_path / "logs").exists()  # nothing written


@pytest.mark.parametrize("script", ["ppo1.py", "ppo2.py"])
def test_cli_device_choices(repo_root, subprocess_env, script):
    proc = subprocess.run([sys.executable, f"scripts/{script}", "--device", "tpu"], cwd=repo_root,
                          env=subprocess_env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines()[-1].startswith(f"{script}: error: argument --device")


@pytest.mark.parametrize("setting, user_flags, expected", [
    ("{tmp}", "", "{tmp}"), ("off", "", None), ("{tmp}", "--tf_xla_persistent_cache_directory=/elsewhere", None)])
def test_xla_cache_flag(monkeypatch, tmp_path, setting, user_flags, expected):
    from tfppo.util.device import enable_xla_cache

    monkeypatch.setenv("TFPPO_XLA_CACHE", setting.format(tmp=tmp_path))
    monkeypatch.setenv("TF_XLA_FLAGS", user_flags)
    got = enable_xla_cache()
    assert got == (expected.format(tmp=tmp_path) if expected else None)
    import os
    flags = os.environ["TF_XLA_FLAGS"]
    if expected:
        assert flags == f"--tf_xla_persistent_cache_directory={tmp_path}"
    else:
        assert flags == user_flags  # off, or the user's own directory wins


def test_xla_cache_holds_the_compiled_update_and_a_second_process_reuses_it(tmp_path):
    """A fresh process compiles a learner's update into the cache; a second one finds the same entry
    (TF keys it by the full HLO) and writes nothing new."""
    script = (
        "import numpy as np, gymnasium as gym\n"
        "from tfppo.core.learner import Batch, Learner, MinibatchPlan\n"
        "from tfppo.core.policy import ActorCritic\n"
        "from tfppo.config.semantics import get_preset\n"
        "sem = get_preset('sb-ppo2')\n"
        "model = ActorCritic(gym.spaces.Box(-1, 1, (3,), np.float32), gym.spaces.Discrete(2), seed=0)\n"
        "learner = Learner(model, sem, MinibatchPlan(32, 8, 2), ent_coef=0.0)\n"
        "rng = np.random.default_rng(0)\n"
        "f = lambda *s: rng.standard_normal(s).astype(np.float32)\n"
        "batch = Batch(f(32, 3), rng.integers(0, 2, 32), f(32), f(32), f(32), np.abs(f(32)))\n"
        "learner.update(batch, learning_rate=1e-3, clip=0.2, clip_vf=0.2, rng=rng)\n")
    env = {**__import__("os").environ, "TFPPO_XLA_CACHE": str(tmp_path / "xla"), "TF_XLA_FLAGS": "",
           "TF_CPP_MIN_LOG_LEVEL": "3"}
    entries = []
    for _ in range(2):
        proc = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=300)
        assert proc.returncode == 0, proc.stderr[-2000:]
        entries.append(sorted(p.name for p in (tmp_path / "xla").iterdir()))
    assert len(entries[0]) == 1 and entries[0][0].startswith("xla_compile_cache__")
    assert entries[1] == entries[0]
