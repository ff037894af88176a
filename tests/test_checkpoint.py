"""Checkpoints: a saved agent comes back bit-identical and keeps training identically.

Also the failure modes: atomic writes (no temp debris, safe overwrite, an
interrupted save leaves the old checkpoint intact) and one-line ConfigErrors
for missing, corrupt or mismatched checkpoints.
"""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

import tfppo
from tfppo.training import checkpoint
from tfppo.core.learner import Batch

CARTPOLE_KW = dict(num_envs=2, n_steps=16, nminibatches=2, noptepochs=2, total_timesteps=64, seed=0, verbose=0)


def _weights(agent) -> list[np.ndarray]:
    return [np.array(w) for w in agent.model.get_weights()]


def _optimizer_state(agent) -> list[np.ndarray]:
    return [np.array(v) for v in agent.learner.optimizer.variables]


def _assert_same_arrays(a: list[np.ndarray], b: list[np.ndarray], atol: float = 0.0) -> None:
    assert len(a) == len(b)
    for x, y in zip(a, b):
        assert x.shape == y.shape
        np.testing.assert_allclose(x, y, rtol=0, atol=atol)


def _cartpole_obs(n: int = 64, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    scale = np.array([1.0, 1.5, 0.15, 1.5], np.float32)
    return (rng.uniform(-1, 1, size=(n, 4)) * scale).astype(np.float32)


def _one_line_config_error(excinfo) -> str:
    message = str(excinfo.value)
    assert message and "\n" not in message
    return message


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A CartPole PPO2 after 64 steps (2 updates), and its checkpoint directory."""
    agent = tfppo.PPO2("CartPole-v1", **CARTPOLE_KW)
    agent.learn(64)
    path = tmp_path_factory.mktemp("ckpt") / "model"
    returned = agent.save(path)
    assert Path(returned) == path
    yield agent, path
    agent.close()


@pytest.fixture(scope="module")
def loaded(trained):
    _, path = trained
    return tfppo.load(path, verbose=0)


def test_checkpoint_layout(trained):
    agent, path = trained
    assert sorted(p.name for p in path.iterdir()) == sorted(
        ["agent.json", "model.weights.h5", "optimizer.npz", "semantics.json"])
    meta = json.loads((path / "agent.json").read_text())
    assert meta["algo"] == "ppo2"
    assert meta["counters"] == {"num_timesteps": 64, "n_updates": 2}  # 64 / (2·16) = 2 updates
    assert meta["config"]["env"] == "CartPole-v1" and meta["config"]["n_steps"] == 16


def test_load_restores_weights_optimizer_counters(trained, loaded):
    agent, _ = trained
    assert type(loaded) is type(agent)
    _assert_same_arrays(_weights(loaded), _weights(agent))
    # The weights really moved during training, so this is not trivially the seeded init.
    fresh = tfppo.PPO2("CartPole-v1", **CARTPOLE_KW)
    assert any(not np.array_equal(x, y) for x, y in zip(_weights(fresh), _weights(agent)))
    # Adam: step counter and both moment slots of every variable.
    opt_a, opt_b = _optimizer_state(agent), _optimizer_state(loaded)
    assert len(opt_a) >= 1 + 2 * len(agent.model.trainable_variables)
    _assert_same_arrays(opt_b, opt_a)
    assert int(agent.learner.optimizer.iterations.numpy()) == 2 * 2 * 2  # updates · epochs · minibatches
    assert int(loaded.learner.optimizer.iterations.numpy()) == 8
    assert (loaded.num_timesteps, loaded.n_updates) == (64, 2)
    assert loaded.semantics == agent.semantics
    assert list(loaded.tracker.returns) == list(agent.tracker.returns)
    assert loaded.config.to_dict() == agent.config.to_dict()


def test_loaded_config_equals_original(trained, loaded):
    """The config round-trips exactly: hidden_sizes stays a tuple, so configs compare equal and hash."""
    agent, _ = trained
    assert loaded.config.network.hidden_sizes == (64, 64)
    assert isinstance(loaded.config.network.hidden_sizes, tuple)
    assert loaded.config == agent.config
    assert hash(loaded.config) == hash(agent.config)


def test_load_predicts_identically(trained, loaded):
    agent, _ = trained
    obs = _cartpole_obs()
    a1 = agent.predict(obs, deterministic=True)
    a2 = loaded.predict(obs, deterministic=True)
    assert a1.shape == (64,)
    np.testing.assert_array_equal(a1, a2)
    # Deterministic means the argmax of the logits.
    logits = agent.model(obs)[0].numpy()
    np.testing.assert_array_equal(a1, np.argmax(logits, axis=-1))
    # A single observation gives a single action.
    assert np.shape(loaded.predict(obs[0])) == ()
    assert loaded.predict(obs[0]) == a1[0]


def test_load_restores_rng_state(trained, loaded):
    """The training streams (one action stream per env, the minibatch shuffles) continue where they were."""
    agent, _ = trained
    assert len(agent.action_rngs) == len(loaded.action_rngs) == 2  # num_envs
    fresh = tfppo.PPO2("CartPole-v1", **CARTPOLE_KW)
    for original, restored, unused in zip(agent.action_rngs, loaded.action_rngs, fresh.action_rngs):
        assert restored.bit_generator.state == original.bit_generator.state
        # 64 steps were sampled from each stream, so the restored state is not the seeded one.
        assert restored.bit_generator.state != unused.bit_generator.state
    assert loaded.shuffle_rng.bit_generator.state == agent.shuffle_rng.bit_generator.state
    assert loaded.shuffle_rng.bit_generator.state != fresh.shuffle_rng.bit_generator.state
    # Stochastic predictions of the two agents coincide too (same weights, same predict stream).
    obs = _cartpole_obs(256, seed=1)
    s1 = agent.predict(obs, deterministic=False)
    s2 = loaded.predict(obs, deterministic=False)
    np.testing.assert_array_equal(s1, s2)
    assert not np.array_equal(s1, agent.predict(obs, deterministic=True)), "sampling never left the mode"


def _batch(n: int = 32, seed: int = 7) -> Batch:
    rng = np.random.default_rng(seed)
    values = rng.normal(size=n).astype(np.float32)
    returns = (values + rng.normal(size=n)).astype(np.float32)
    return Batch(obs=_cartpole_obs(n, seed), actions=rng.integers(0, 2, size=n).astype(np.int64),
                 advantages=(returns - values).astype(np.float32), returns=returns, values=values,
                 neglogp=rng.uniform(0.5, 0.9, size=n).astype(np.float32))


def test_loaded_agent_continues_training_identically(tmp_path):
    # Own agents (not the module fixtures) because this test changes their weights.
    agent = tfppo.PPO2("CartPole-v1", **CARTPOLE_KW)
    agent.learn(64)
    agent.close()
    agent.save(tmp_path / "model")
    loaded = tfppo.load(tmp_path / "model", verbose=0)
    before = _weights(agent)
    batch = _batch()
    for step in range(2):
        kw = dict(learning_rate=1e-3, clip=0.2, clip_vf=0.2)
        r1 = agent.learner.update(batch, rng=np.random.default_rng(step), **kw)
        r2 = loaded.learner.update(batch, rng=np.random.default_rng(step), **kw)
        assert r1.n_gradient_steps == r2.n_gradient_steps == 4
        for key in r1.train:
            np.testing.assert_allclose(r1.train[key], r2.train[key], rtol=0, atol=1e-7)
    _assert_same_arrays(_weights(loaded), _weights(agent), atol=1e-7)
    _assert_same_arrays(_optimizer_state(loaded), _optimizer_state(agent), atol=1e-7)
    assert any(np.abs(x - y).max() > 1e-5 for x, y in zip(_weights(agent), before)), "the update did nothing"


def test_save_is_atomic_and_overwrites(tmp_path):
    agent = tfppo.PPO2("CartPole-v1", **CARTPOLE_KW)
    path = tmp_path / "sub" / "model"  # parent created on demand
    agent.save(path)
    first = _weights(agent)
    assert [p.name for p in path.parent.iterdir()] == ["model"]

    # Change the weights and save over the old checkpoint.
    for var in agent.model.trainable_variables:
        var.assign(var.numpy() + 0.5)
    agent.save(path)
    assert [p.name for p in path.parent.iterdir()] == ["model"], "temp/old dirs left behind"
    reloaded = tfppo.load(path, verbose=0)
    _assert_same_arrays(_weights(reloaded), _weights(agent))
    assert any(not np.array_equal(x, y) for x, y in zip(_weights(reloaded), first))


def test_interrupted_save_keeps_old_checkpoint(tmp_path, monkeypatch):
    agent = tfppo.PPO2("CartPole-v1", **CARTPOLE_KW)
    path = tmp_path / "model"
    agent.save(path)
    saved = _weights(agent)
    for var in agent.model.trainable_variables:
        var.assign(var.numpy() - 0.25)

    def boom(*args, **kwargs):
        raise RuntimeError("disk full")

    with monkeypatch.context() as patch:
        patch.setattr(checkpoint.np, "savez", boom)  # fails after the weights file was written
        with pytest.raises(RuntimeError, match="disk full"):
            agent.save(path)
    assert [p.name for p in tmp_path.iterdir()] == ["model"], "a failed save left debris"
    _assert_same_arrays(_weights(tfppo.load(path, verbose=0)), saved)


# --- bad checkpoints: one-line ConfigErrors ---------------------------------------------------


@pytest.fixture
def ckpt_copy(trained, tmp_path):
    _, path = trained
    dst = tmp_path / "copy"
    shutil.copytree(path, dst)
    return dst


def test_missing_checkpoint_dir(tmp_path):
    with pytest.raises(tfppo.ConfigError) as excinfo:
        tfppo.load(tmp_path / "does-not-exist")
    assert "does-not-exist" in _one_line_config_error(excinfo)


def test_garbage_agent_json(ckpt_copy):
    (ckpt_copy / "agent.json").write_text("{this is not json")
    with pytest.raises(tfppo.ConfigError) as excinfo:
        tfppo.load(ckpt_copy)
    assert "agent.json" in _one_line_config_error(excinfo)


@pytest.mark.parametrize("content", ["[1, 2, 3]", '{"format": 99, "algo": "ppo2"}', '{"format": 1, "algo": "dqn"}'])
def test_wrong_format_agent_json(ckpt_copy, content):
    (ckpt_copy / "agent.json").write_text(content)
    with pytest.raises(tfppo.ConfigError) as excinfo:
        tfppo.load(ckpt_copy)
    _one_line_config_error(excinfo)


@pytest.mark.parametrize("key", ["config", "semantics", "counters", "rng", "tracker"])
def test_incomplete_agent_json(ckpt_copy, key):
    """Valid JSON with the right format/algo but a required section missing is a corrupt checkpoint too."""
    meta = json.loads((ckpt_copy / "agent.json").read_text())
    del meta[key]
    (ckpt_copy / "agent.json").write_text(json.dumps(meta))
    with pytest.raises(tfppo.ConfigError) as excinfo:
        tfppo.load(ckpt_copy, verbose=0)
    _one_line_config_error(excinfo)


@pytest.mark.parametrize("name", ["model.weights.h5", "optimizer.npz"])
def test_truncated_or_missing_files(ckpt_copy, name):
    data = (ckpt_copy / name).read_bytes()
    (ckpt_copy / name).write_bytes(data[: len(data) // 3])
    with pytest.raises(tfppo.ConfigError) as excinfo:
        tfppo.load(ckpt_copy, verbose=0)
    _one_line_config_error(excinfo)
    (ckpt_copy / name).unlink()
    with pytest.raises(tfppo.ConfigError) as excinfo:
        tfppo.load(ckpt_copy, verbose=0)
    _one_line_config_error(excinfo)


@pytest.mark.parametrize("hidden", [[32, 32], [64], [64, 64, 64]])
def test_weights_not_matching_network(ckpt_copy, hidden):
    meta = json.loads((ckpt_copy / "agent.json").read_text())
    meta["config"]["network"]["hidden_sizes"] = hidden
    (ckpt_copy / "agent.json").write_text(json.dumps(meta))
    with pytest.raises(tfppo.ConfigError) as excinfo:
        tfppo.load(ckpt_copy, verbose=0)
    _one_line_config_error(excinfo)


def test_optimizer_state_not_matching(ckpt_copy):
    with np.load(ckpt_copy / "optimizer.npz") as data:
        arrays = [data[f"arr_{i}"] for i in range(len(data.files))]
    np.savez(ckpt_copy / "optimizer.npz", *arrays[:-1])
    with pytest.raises(tfppo.ConfigError) as excinfo:
        tfppo.load(ckpt_copy, verbose=0)
    assert "optimizer" in _one_line_config_error(excinfo)


# --- VecNormalize statistics ([B] ppo2 mujoco preset) -------------------------------------------


def test_vecnormalize_statistics_saved_and_restored(tmp_path):
    agent = tfppo.PPO2("Pendulum-v1", preset="baselines-ppo2-mujoco", num_envs=2, n_steps=64, total_timesteps=256,
                       seed=0, verbose=0)
    assert agent.normalizer is not None
    agent.learn(256)
    agent.close()
    rms = agent.normalizer.obs_rms
    # 2 envs × 128 steps of observations went into the statistics, plus the 2 reset observations
    # ([B] VecNormalize.reset counts them: vecnorm_reset=baselines in this preset) and the 1e-4 prior count.
    np.testing.assert_allclose(rms.count, 256 + 2 + 1e-4, rtol=1e-9)
    assert np.all(np.abs(rms.mean) > 0) and not np.allclose(rms.var, 1.0)
    agent.save(tmp_path / "model")
    loaded = tfppo.load(tmp_path / "model", verbose=0)
    assert loaded.normalizer is not None
    np.testing.assert_array_equal(loaded.normalizer.obs_rms.mean, rms.mean)
    np.testing.assert_array_equal(loaded.normalizer.obs_rms.var, rms.var)
    assert loaded.normalizer.obs_rms.count == rms.count
    np.testing.assert_array_equal(loaded.normalizer.ret_rms.var, agent.normalizer.ret_rms.var)
    assert loaded.normalizer.ret_rms.count == agent.normalizer.ret_rms.count
    # predict() normalises raw observations with the (frozen) restored statistics.
    rng = np.random.default_rng(0)
    theta = rng.uniform(-np.pi, np.pi, 32)
    obs = np.stack([np.cos(theta), np.sin(theta), rng.uniform(-8, 8, 32)], axis=1).astype(np.float32)
    np.testing.assert_array_equal(loaded.predict(obs), agent.predict(obs))
    np.testing.assert_array_equal(loaded.normalizer.obs_rms.mean, rms.mean)  # predict did not update them
    expected_input = np.clip((obs - rms.mean) / np.sqrt(rms.var + 1e-8), -10, 10).astype(np.float32)
    np.testing.assert_allclose(loaded.predict(obs), agent.model(expected_input)[0].numpy()[:, :1], rtol=1e-5,
                               atol=1e-6)
