"""Policy export: a SavedModel that maps raw observations to the env's actions, run where tfppo is absent.

The exported actions are checked against ``agent.predict(obs, deterministic=True)`` followed by the clip to
Pendulum's bounds [-2, 2] (written here by hand) where the semantics clip actions, and against ``predict``
alone where they do not (baselines-ppo1); the sampling signature against the distribution the policy's
parameters describe.
"""
from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import tfppo

TIMEOUT = 240
PENDULUM_BOUND = 2.0  # Pendulum-v1's action space is Box(-2, 2, (1,))
FAST_PPO2 = dict(num_envs=2, n_steps=16, nminibatches=2, noptepochs=2, seed=0, verbose=0, xla=False)

# Runs with `python -I` (no cwd, no PYTHONPATH on sys.path) from outside the checkout, and a meta-path finder
# that refuses tfppo, so the editable install cannot supply it either: only TensorFlow reads the export.
BLOCK_TFPPO = textwrap.dedent('''
    import json, sys
    import numpy as np

    class NoTfppo:
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] == "tfppo":
                raise ImportError("tfppo is blocked in this process")

    sys.meta_path.insert(0, NoTfppo())
    try:
        import tfppo
    except ImportError:
        pass
    else:
        sys.exit("tfppo is importable")
    import tensorflow as tf
''')
LOADER = BLOCK_TFPPO + textwrap.dedent('''
    for job in json.loads(sys.argv[1]):
        obs = np.load(job["obs"])
        serve = tf.saved_model.load(job["export"]).signatures["serving_default"]
        np.save(job["out"], serve(observations=tf.constant(obs))["actions"].numpy())
    assert not any(name.split(".")[0] == "tfppo" for name in sys.modules)
''')


def cartpole_obs(n: int = 100, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return (rng.uniform(-1, 1, size=(n, 4)) * np.array([2.0, 2.0, 0.2, 2.0])).astype(np.float32)


def pendulum_obs(n: int = 100, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    theta, speed = rng.uniform(-np.pi, np.pi, n), rng.uniform(-8, 8, n)
    return np.stack([np.cos(theta), np.sin(theta), speed], axis=1).astype(np.float32)


def one_line(excinfo) -> str:
    message = str(excinfo.value)
    assert message and "\n" not in message
    return message


@pytest.fixture(scope="module")
def agents():
    """Two updates each, so the normalisation statistics are far from their priors: PPO2 with VecNormalize
    on CartPole (Discrete) and on Pendulum (Box, baselines-ppo2-mujoco), PPO1 with its filter on Pendulum."""
    cartpole = tfppo.PPO2("CartPole-v1", semantics={"obs_norm": "env"}, **FAST_PPO2).learn(64)
    pendulum = tfppo.PPO2("Pendulum-v1", preset="baselines-ppo2-mujoco", **FAST_PPO2).learn(64)
    # widen the policy head so that some mean actions leave [-2, 2] and the clip is exercised
    head = pendulum.policy.pi_head
    head.kernel.assign(head.kernel * 300.0)
    pendulum.actor.sync()
    ppo1 = tfppo.PPO1("Pendulum-v1", preset="baselines-ppo1", timesteps_per_actorbatch=32, optim_batchsize=16,
                      optim_epochs=2, max_timesteps=64, seed=0, verbose=0, xla=False).learn()
    built = {"cartpole": (cartpole, cartpole_obs()), "pendulum": (pendulum, pendulum_obs()),
             "ppo1": (ppo1, pendulum_obs(seed=1))}
    yield built
    for agent, _ in built.values():
        agent.close()


def test_the_statistics_are_not_the_priors(agents):
    for name in ("cartpole", "pendulum"):
        rms = agents[name][0].normalizer.obs_rms
        assert rms.count > 64 and np.all(np.abs(rms.var - 1.0) > 1e-3)
    ppo1 = agents["ppo1"][0]
    assert np.all(np.abs(ppo1.policy.obs_mean.numpy()) > 1e-3)


@pytest.fixture(scope="module")
def exported_without_tfppo(agents, tmp_path_factory):
    """Every agent's export, loaded and run in one process that cannot import tfppo. CartPole's goes through
    ``tfppo-evaluate --load_path CHECKPOINT --export PATH`` (its ``main``, in this process: a TensorFlow
    start-up less than a subprocess), the others through ``agent.export``."""
    from tfppo.cli.evaluate import main

    root = tmp_path_factory.mktemp("export")
    jobs = []
    for name, (agent, obs) in agents.items():
        np.save(root / f"{name}-obs.npy", obs)
        if name == "cartpole":
            agent.save(root / "cartpole-checkpoint")
            assert main(["--load_path", str(root / "cartpole-checkpoint"), "--export", str(root / name)]) == 0
        else:
            assert agent.export(root / name) == root / name
        jobs.append({"export": str(root / name), "obs": str(root / f"{name}-obs.npy"),
                     "out": str(root / f"{name}-actions.npy")})
    (root / "loader.py").write_text(LOADER)
    outside = tmp_path_factory.mktemp("elsewhere")
    proc = subprocess.run([sys.executable, "-I", str(root / "loader.py"), json.dumps(jobs)], cwd=outside,
                          capture_output=True, text=True, timeout=TIMEOUT)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return {name: np.load(root / f"{name}-actions.npy") for name in agents}, root


@pytest.mark.parametrize("name", ["cartpole", "pendulum", "ppo1"])
def test_the_export_gives_the_actions_of_predict(agents, exported_without_tfppo, name):
    agent, obs = agents[name]
    actions = exported_without_tfppo[0][name]
    predicted = agent.predict(obs, deterministic=True)
    if name == "pendulum":  # the preset clips actions (row 18): both sides of the bounds are in the batch
        outside = np.abs(predicted) > PENDULUM_BOUND
        assert 5 < outside.sum() < 95
        predicted = np.clip(predicted, -PENDULUM_BOUND, PENDULUM_BOUND)
    assert actions.shape == predicted.shape and actions.dtype == predicted.dtype
    if name == "cartpole":
        assert set(np.unique(actions)) == {0, 1}  # both actions occur: argmax is really compared
        np.testing.assert_array_equal(actions, predicted)
    else:
        np.testing.assert_allclose(actions, predicted, rtol=0, atol=1e-5)


def test_ppo1_export_is_unclipped_as_its_preset(agents, exported_without_tfppo):
    """baselines-ppo1 sends the Gaussian mean unclipped (row 18 off); the widened check needs a mean
    outside the bounds, so widen a copy of the policy head's bias instead of relying on luck."""
    agent, obs = agents["ppo1"]
    assert not agent.semantics.clip_actions
    root = exported_without_tfppo[1]
    head = agent.policy.pi_head
    saved = head.bias.numpy()
    head.bias.assign(saved + 5.0)
    try:
        from tfppo.training.export import ExportedPolicy

        agent.export(root / "ppo1-shifted")
        actions = ExportedPolicy(root / "ppo1-shifted").predict(obs)
        agent.actor.sync()
        predicted = agent.predict(obs)
    finally:
        head.bias.assign(saved)
        agent.actor.sync()
    assert np.all(predicted > PENDULUM_BOUND)
    np.testing.assert_allclose(actions, predicted, rtol=0, atol=1e-5)


def test_sampling_is_seeded_and_follows_the_policy_distribution(agents, exported_without_tfppo):
    from tfppo.training.export import ExportedPolicy

    root = exported_without_tfppo[1]
    cartpole, obs = agents["cartpole"]
    policy = ExportedPolicy(root / "cartpole")
    batch = np.repeat(obs[:1], 4000, axis=0)
    first, again, other = (policy.predict(batch, deterministic=False, seed=s) for s in (7, 7, 8))
    np.testing.assert_array_equal(first, again)
    assert np.any(first != other)
    logits, _ = cartpole.actor.forward(cartpole.normalizer.normalize_obs(obs[:1], update=False))
    p1 = np.exp(logits[0, 1]) / np.exp(logits[0]).sum()
    assert abs(first.mean() - p1) < 4 * np.sqrt(p1 * (1 - p1) / len(batch)) + 1e-3

    ppo1, obs = agents["ppo1"]
    draws = ExportedPolicy(root / "ppo1").predict(np.repeat(obs[:1], 4000, axis=0), deterministic=False, seed=3)
    std = float(np.exp(ppo1.policy.log_std.numpy()[0, 0]))
    mean = float(ppo1.predict(obs[0])[0])
    assert abs(draws.mean() - mean) < 4 * std / np.sqrt(len(draws))
    assert abs(draws.std() - std) < 0.05 * std


def test_an_image_policy_exports(tmp_path):
    from tfppo.training.export import ExportedPolicy

    agent = tfppo.PPO2("tests.test_policy:TinyImageEnv", n_steps=8, nminibatches=1, total_timesteps=8, verbose=0)
    obs = np.random.default_rng(0).integers(0, 256, size=(6, 84, 84, 4), dtype=np.uint8)
    policy = ExportedPolicy(agent.export(tmp_path / "image"))
    np.testing.assert_array_equal(policy.predict(obs), agent.predict(obs))
    assert policy.predict(obs[0]) == agent.predict(obs[0])


def test_a_bad_format_is_one_line(agents, tmp_path):
    with pytest.raises(tfppo.ConfigError) as excinfo:
        agents["cartpole"][0].export(tmp_path / "policy", format="pb")
    assert "'pb'" in one_line(excinfo) and "saved_model, onnx, litert" in str(excinfo.value)
    assert not (tmp_path / "policy").exists()


def test_a_missing_converter_names_the_extra(agents, tmp_path, monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "tf2onnx" else real(name, *a))
    with pytest.raises(tfppo.ConfigError) as excinfo:
        agents["cartpole"][0].export(tmp_path / "policy.onnx", format="onnx")
    assert "pip install tfppo[onnx]" in one_line(excinfo)
    assert not (tmp_path / "policy.onnx").exists()


def litert_interpreter():
    """LiteRT's own interpreter when installed (the `litert` extra), else TensorFlow's deprecated one."""
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError:
        import tensorflow as tf

        Interpreter = getattr(getattr(tf, "lite", None), "Interpreter", None)
        if Interpreter is None:
            pytest.skip("no LiteRT interpreter (pip install tfppo[litert])")
    return Interpreter


@pytest.mark.filterwarnings("ignore::UserWarning")
@pytest.mark.parametrize("name", ["cartpole", "pendulum"])
def test_litert_gives_the_actions_of_predict(agents, tmp_path, name):
    agent, obs = agents[name]
    path = agent.export(tmp_path / "policy.tflite", format="litert")
    runner = litert_interpreter()(model_path=str(path)).get_signature_runner("serving_default")
    actions = runner(observations=obs)["actions"]
    predicted = agent.predict(obs)
    if name == "pendulum":
        predicted = np.clip(predicted, -PENDULUM_BOUND, PENDULUM_BOUND)
    np.testing.assert_allclose(actions, predicted, rtol=0, atol=1e-5)


@pytest.mark.parametrize("name", ["cartpole", "pendulum"])
def test_onnx_gives_the_actions_of_predict(agents, tmp_path, name):
    pytest.importorskip("tf2onnx", reason="the onnx extra is not installed")
    ort = pytest.importorskip("onnxruntime", reason="the onnx extra is not installed")
    agent, obs = agents[name]
    session = ort.InferenceSession(str(agent.export(tmp_path / "policy.onnx", format="onnx")))
    assert [i.name for i in session.get_inputs()] == ["observations"]
    (actions,) = session.run(["actions"], {"observations": obs})
    predicted = agent.predict(obs)
    if name == "pendulum":
        predicted = np.clip(predicted, -PENDULUM_BOUND, PENDULUM_BOUND)
    np.testing.assert_allclose(actions, predicted, rtol=0, atol=1e-5)


def test_tfppo_evaluate_runs_an_export(agents, exported_without_tfppo, capsys):
    from tfppo.cli.evaluate import main
    from tfppo.training.evaluation import evaluate

    root = exported_without_tfppo[1]
    capsys.readouterr()
    assert main(["--load_path", str(root / "cartpole"), "--episodes", "2", "--seed", "5"]) == 0
    returns = evaluate(agents["cartpole"][0], 2, seed=5)  # the agent itself on the same episodes
    assert capsys.readouterr().out.strip() == \
        f"CartPole-v1: {np.mean(returns):.2f} ± {np.std(returns):.2f} over 2 deterministic episodes"


def test_tfppo_evaluate_export_errors_are_one_line(exported_without_tfppo, tmp_path):
    from tfppo.cli.evaluate import main

    root = exported_without_tfppo[1]
    with pytest.raises(tfppo.ConfigError) as excinfo:
        main(["--load_path", str(root / "cartpole"), "--export", str(tmp_path / "again")])
    assert "already an export" in one_line(excinfo)
    with pytest.raises(tfppo.ConfigError) as excinfo:
        main(["--load_path", str(root / "cartpole-checkpoint"), "--export", str(tmp_path / "x"),
              "--export_format", "pb"])
    assert "--export_format 'pb'" in one_line(excinfo) and not (tmp_path / "x").exists()
