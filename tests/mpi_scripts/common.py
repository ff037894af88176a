"""Helpers shared by the MPI test scripts and the tests that check them."""
import gymnasium as gym
import numpy as np
import tensorflow as tf

from tfppo.config.hyperparameters import NetworkConfig
from tfppo.core.learner import Batch, Learner, MinibatchPlan
from tfppo.core.policy import ActorCritic
from tfppo.config.semantics import get_preset

OBS_SPACE = gym.spaces.Box(-np.inf, np.inf, (4,), np.float32)
ACTION_SPACE = gym.spaces.Discrete(2)
BATCH = 32


def make_learner() -> Learner:
    model = ActorCritic(OBS_SPACE, ACTION_SPACE, network=NetworkConfig((16, 16)), seed=3)
    return Learner(model, get_preset("sb-ppo1"), MinibatchPlan.from_size(BATCH, BATCH, 1), ent_coef=0.01)


def make_batch(index: int) -> Batch:
    rng = np.random.default_rng(100 + index)
    f = lambda *shape: rng.standard_normal(shape).astype(np.float32)
    return Batch(obs=f(BATCH, 4), actions=rng.integers(0, 2, BATCH), advantages=f(BATCH), returns=f(BATCH),
                 values=f(BATCH), neglogp=np.abs(f(BATCH)))


def gradient_of_batch(learner: Learner, batch: Batch) -> np.ndarray:
    """Flat gradient of the PPO1 loss (whole-batch advantages, recomputed old log-probs) on one batch."""
    model = learner.model
    obs = tf.constant(batch.obs)
    params_old, _ = model(obs)
    adv = tf.constant(batch.advantages)
    adv = (adv - tf.reduce_mean(adv)) / tf.math.reduce_std(adv)
    mb = dict(obs=obs, actions=tf.constant(batch.actions), advantages=adv, returns=tf.constant(batch.returns),
              values=tf.constant(batch.values), params_old=params_old,
              neglogp_old=model.dist.neglogp(params_old, tf.constant(batch.actions)))
    with tf.GradientTape() as tape:
        loss, _ = learner._minibatch_stats(mb, tf.constant(0.2), tf.constant(0.0), tf.constant(1.0))
    grads = tape.gradient(loss, model.trainable_variables)
    return np.concatenate([g.numpy().ravel() for g in grads]).astype(np.float32)
