"""Envs the way users have them: a callable or an instance instead of an id, env_kwargs and wrappers, through
both trainers' constructors, the evaluation env and checkpoints."""
from __future__ import annotations

import gymnasium
import numpy as np
import pytest

import tfppo

SMALL = dict(n_steps=32, nminibatches=1, noptepochs=1, seed=3, verbose=0)


def cartpole() -> gymnasium.Env:
    return gymnasium.make("CartPole-v1")


def plus_one(env: gymnasium.Env) -> gymnasium.Env:
    return gymnasium.wrappers.TransformObservation(env, lambda obs: obs + 1, env.observation_space)


def mirrored(env: gymnasium.Env) -> gymnasium.Env:
    """4 → 8 observations: the trainer must read its spaces after the wrappers."""
    space = gymnasium.spaces.Box(-np.inf, np.inf, (8,), np.float32)
    return gymnasium.wrappers.TransformObservation(env, lambda obs: np.concatenate([obs, -obs]), space)


def test_a_lambda_env_trains():
    agent = tfppo.PPO2(lambda: gymnasium.make("CartPole-v1"), num_envs=4, xla=False, **SMALL)  # XLA: not the point
    agent.learn(3 * 4 * 32)
    assert agent.n_updates == 3 and agent.num_timesteps == 384 and agent.tracker.episodes > 0


def test_a_callable_gives_the_same_first_rollout_as_the_id():
    by_id = tfppo.PPO2("CartPole-v1", num_envs=2, **SMALL).make_runner().run()
    by_callable = tfppo.PPO2(cartpole, num_envs=2, **SMALL).make_runner().run()
    for name in ("obs", "actions", "rewards"):
        np.testing.assert_array_equal(getattr(by_callable, name), getattr(by_id, name))


def test_env_kwargs_reach_every_env_of_both_trainers_and_the_evaluation_env():
    ppo2 = tfppo.PPO2("Pendulum-v1", num_envs=2, env_kwargs={"g": 2.0}, **SMALL)
    ppo1 = tfppo.PPO1(lambda g: gymnasium.make("Pendulum-v1", g=g), env_kwargs={"g": 3.0}, max_timesteps=1000,
                      verbose=0)
    assert [env.unwrapped.g for env in ppo2.make_runner().venv.envs] == [2.0, 2.0]
    assert [env.unwrapped.g for env in ppo1.make_runner().venv.envs] == [3.0]
    assert ppo2.env_source.separate("evaluation").unwrapped.g == 2.0


def test_gym_make_kwargs_cut_cartpole_episodes_at_five_steps():
    agent = tfppo.PPO2("CartPole-v1", num_envs=2, env_kwargs={"max_episode_steps": 5}, **SMALL)
    rollout = agent.make_runner().run()
    # CartPole cannot fall within 5 steps from its start (|θ| ≤ 0.05 rad, 12° to fall): every episode is
    # cut by the time limit, 32 // 5 = 6 per env
    assert [length for _, length in rollout.episodes] == [5] * 12
    assert rollout.n_truncated == 12 and rollout.n_terminated == 0


def test_wrappers_are_applied_in_order_and_set_the_spaces():
    plain = tfppo.PPO2("CartPole-v1", num_envs=2, **SMALL)
    wrapped = tfppo.PPO2("CartPole-v1", num_envs=2, wrappers=[plus_one, mirrored], **SMALL)
    assert wrapped.observation_space.shape == (8,)
    first = plain.make_runner().run().obs[0]  # the reset observations: same seeds, before any action
    np.testing.assert_allclose(wrapped.make_runner().run().obs[0], np.concatenate([first + 1, -(first + 1)], axis=1),
                               rtol=1e-6)


@pytest.mark.parametrize("env, wrappers, pattern", [
    (lambda: "CartPole-v1", None, r"env factory <callable .*<lambda>> returned str \('CartPole-v1'\), not a "
                                  r"gymnasium.Env"),
    (cartpole, [lambda env: None], r"wrapper .*<lambda> returned NoneType \(None\), not a gymnasium.Env"),
    (3, None, "env must be a gymnasium id, a callable returning a gymnasium.Env or a gymnasium.Env instance; "
              "got int"),
])
def test_a_factory_or_wrapper_returning_something_else_is_one_line(env, wrappers, pattern):
    with pytest.raises(tfppo.ConfigError, match=pattern) as info:
        tfppo.PPO2(env, wrappers=wrappers, verbose=0)
    assert "\n" not in str(info.value)


def test_an_instance_is_one_env_without_a_separate_evaluation_env():
    with pytest.raises(tfppo.ConfigError, match="an env instance is one env, but num_envs=4"):
        tfppo.PPO2(cartpole(), num_envs=4, verbose=0)
    with pytest.raises(tfppo.ConfigError, match="env_kwargs cannot reach an env instance"):
        tfppo.PPO2(cartpole(), env_kwargs={"render_mode": None}, verbose=0)
    instance = cartpole()
    agent = tfppo.PPO2(instance, num_envs=1, **SMALL)
    assert agent.make_runner().venv.envs[0] is instance
    with pytest.raises(tfppo.ConfigError, match="eval_freq needs an env of its own"):
        agent.learn(32, eval_freq=32)


def test_a_checkpoint_of_a_callable_env_needs_the_env_at_load(tmp_path):
    agent = tfppo.PPO2(cartpole, num_envs=2, wrappers=[plus_one], **SMALL)
    agent.save(tmp_path / "ckpt")
    with pytest.raises(tfppo.ConfigError, match=r"trained on <callable .*cartpole>, which a checkpoint cannot hold; "
                                                r"pass it again: tfppo.load\(path, env=\.\.\.\)"):
        tfppo.load(tmp_path / "ckpt")
    with pytest.raises(tfppo.ConfigError, match=r"trained with wrappers \['.*plus_one'\].*wrappers=\[\.\.\.\]"):
        tfppo.load(tmp_path / "ckpt", env=cartpole)
    loaded = tfppo.load(tmp_path / "ckpt", env=cartpole, wrappers=[plus_one], verbose=0)
    for a, b in zip(loaded.model.get_weights(), agent.model.get_weights()):
        np.testing.assert_array_equal(a, b)


def pendulum(g: float) -> gymnasium.Env:
    return gymnasium.make("Pendulum-v1", g=g)


def test_a_checkpoint_keeps_json_env_kwargs_of_an_id_and_of_a_callable(tmp_path):
    tfppo.PPO2("Pendulum-v1", num_envs=2, env_kwargs={"g": 2.0}, **SMALL).save(tmp_path / "id")
    tfppo.PPO2(pendulum, num_envs=2, env_kwargs={"g": 4.0}, **SMALL).save(tmp_path / "callable")
    assert tfppo.load(tmp_path / "id", verbose=0).make_runner().venv.envs[0].unwrapped.g == 2.0
    assert tfppo.load(tmp_path / "callable", env=pendulum, verbose=0).make_runner().venv.envs[0].unwrapped.g == 4.0
