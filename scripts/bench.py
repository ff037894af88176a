#!/usr/bin/env python
"""Speed of the parts that matter (never asserted in tests; run `make bench`).

1. acting: one policy evaluation for a batch of envs — eager Keras call, compiled
   tf.function (`CompiledActor`) and NumPy (`NumpyActor`, what MLP policies use);
2. update: the whole compiled epoch loop (one tf.function) for a given number of minibatches;
3. end to end: env-steps/s of PPO2 (1 and 8 envs) and PPO1 (1 worker) on CartPole-v1,
   and of Stable-Baselines3 PPO in the same run when it is installed.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import gymnasium as gym  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from tfppo.acting import CompiledActor, NumpyActor  # noqa: E402
from tfppo.learner import Batch, Learner, MinibatchPlan  # noqa: E402
from tfppo.policy import ActorCritic  # noqa: E402
from tfppo.semantics import get_preset  # noqa: E402


def per_call(fn, repeats: int) -> float:
    fn()
    start = time.perf_counter()
    for _ in range(repeats):
        fn()
    return (time.perf_counter() - start) / repeats


def bench_acting(num_envs: int) -> dict[str, float]:
    model = ActorCritic(gym.spaces.Box(-np.inf, np.inf, (4,), np.float32), gym.spaces.Discrete(2), seed=0)
    obs = np.random.default_rng(0).standard_normal((num_envs, 4)).astype(np.float32)
    numpy_actor, compiled = NumpyActor(model), CompiledActor(model)
    return {"eager_keras_ms": 1e3 * per_call(lambda: model(tf.constant(obs)), 200),
            "tf_function_ms": 1e3 * per_call(lambda: compiled.forward(obs), 500),
            "numpy_ms": 1e3 * per_call(lambda: numpy_actor.forward(obs), 5000)}


def bench_update(batch_size: int, nminibatches: int, epochs: int) -> float:
    model = ActorCritic(gym.spaces.Box(-np.inf, np.inf, (4,), np.float32), gym.spaces.Discrete(2), seed=0)
    learner = Learner(model, get_preset("sb-ppo2"), MinibatchPlan.from_count(batch_size, nminibatches, epochs),
                      ent_coef=0.0)
    rng = np.random.default_rng(0)
    f = lambda *s: rng.standard_normal(s).astype(np.float32)
    batch = Batch(obs=f(batch_size, 4), actions=rng.integers(0, 2, batch_size), advantages=f(batch_size),
                  returns=f(batch_size), values=f(batch_size), neglogp=np.abs(f(batch_size)))
    run = lambda: learner.update(batch, learning_rate=3e-4, clip=0.2, clip_vf=0.2, rng=rng)
    return per_call(run, 5)


def bench_training(steps: int) -> dict[str, float]:
    import tfppo

    out = {}
    for num_envs in (1, 8):
        agent = tfppo.PPO2("CartPole-v1", num_envs=num_envs, n_steps=2048 // num_envs, nminibatches=32,
                           noptepochs=10, total_timesteps=steps, verbose=0)
        start = time.perf_counter()
        agent.learn()
        out[f"ppo2_{num_envs}env_steps_per_s"] = agent.num_timesteps / (time.perf_counter() - start)
        agent.close()
    agent = tfppo.PPO1("CartPole-v1", timesteps_per_actorbatch=2048, optim_batchsize=64, optim_epochs=10,
                       schedule="constant", max_timesteps=steps, verbose=0)
    start = time.perf_counter()
    agent.learn()
    out["ppo1_1worker_steps_per_s"] = agent.num_timesteps / (time.perf_counter() - start)
    try:
        import stable_baselines3 as sb3
        from stable_baselines3.common.env_util import make_vec_env
    except ImportError:
        return out
    for num_envs in (1, 8):
        venv = make_vec_env("CartPole-v1", n_envs=num_envs, seed=0)
        model = sb3.PPO("MlpPolicy", venv, n_steps=2048 // num_envs, batch_size=64, n_epochs=10, device="cpu",
                        seed=0)
        start = time.perf_counter()
        model.learn(steps)
        out[f"sb3_{num_envs}env_steps_per_s"] = model.num_timesteps / (time.perf_counter() - start)
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=40960, help="env steps per end-to-end run")
    args = parser.parse_args()
    for num_envs in (1, 8):
        print(f"acting, batch of {num_envs}:", {k: round(v, 4) for k, v in bench_acting(num_envs).items()})
    for batch, mbs, epochs in ((2048, 32, 10), (256, 1, 20)):
        seconds = bench_update(batch, mbs, epochs)
        print(f"update, {mbs * epochs} minibatch steps of {batch // mbs}: {1e3 * seconds:.1f} ms")
    for key, value in bench_training(args.steps).items():
        print(f"{key}: {value:.0f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
