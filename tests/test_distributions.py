"""Action distributions vs hand-written closed forms (spec §5.5).

Reference values are computed here in float64 NumPy from the textbook
formulas, never from the module, so a shared bug cannot hide.
"""

from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import gymnasium.spaces as S  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import tensorflow as tf  # noqa: E402

from tfppo.core.distributions import make_distribution  # noqa: E402
from tfppo.util.errors import ConfigError  # noqa: E402

RNG = np.random.default_rng(1234)
B = 6


def _log_softmax(z: np.ndarray) -> np.ndarray:
    z = z.astype(np.float64)
    m = z.max(-1, keepdims=True)
    return z - m - np.log(np.exp(z - m).sum(-1, keepdims=True))


def _cat_ref(lp: np.ndarray, lq: np.ndarray, a: np.ndarray):
    """Closed-form categorical neglogp(a), entropy(p), KL(p||q)."""
    logp, logq = _log_softmax(lp), _log_softmax(lq)
    p = np.exp(logp)
    nlp = -np.take_along_axis(logp, a[:, None], -1)[:, 0]
    ent = -(p * logp).sum(-1)
    kl = (p * (logp - logq)).sum(-1)
    return nlp, ent, kl


def _f32(x: np.ndarray) -> np.ndarray:
    return x.astype(np.float32)


def _close(tf_val, ref, rtol=1e-5, atol=1e-5):
    np.testing.assert_allclose(np.asarray(tf_val, np.float64), ref, rtol=rtol, atol=atol)


# --- closed forms -------------------------------------------------------------


def test_gaussian_closed_forms():
    d = 3
    dist = make_distribution(S.Box(-1.0, 1.0, (d,), np.float32))
    assert (dist.param_size, dist.head_size, dist.uses_log_std) == (6, 3, True)
    assert dist.action_shape == (3,) and dist.action_dtype == np.float32
    mu_p, mu_q = RNG.normal(size=(B, d)), RNG.normal(size=(B, d))
    ls_p, ls_q = RNG.normal(scale=0.5, size=(1, d)), RNG.normal(scale=0.5, size=(1, d))
    pp = _f32(np.concatenate([mu_p, mu_p * 0 + ls_p], -1))
    pq = _f32(np.concatenate([mu_q, mu_q * 0 + ls_q], -1))
    x = _f32(RNG.normal(size=(B, d)))
    mu_p, ls_p, mu_q, ls_q = (v.astype(np.float64) for v in (pp[:, :d], pp[:, d:], pq[:, :d], pq[:, d:]))
    sp, sq = np.exp(ls_p), np.exp(ls_q)

    nlp = 0.5 * (((x - mu_p) / sp) ** 2).sum(-1) + 0.5 * np.log(2 * np.pi) * d + ls_p.sum(-1)
    ent = (ls_p + 0.5 * np.log(2 * np.pi * np.e)).sum(-1)
    kl = (ls_q - ls_p + (sp**2 + (mu_p - mu_q) ** 2) / (2 * sq**2) - 0.5).sum(-1)

    _close(dist.neglogp(pp, x), nlp)
    _close(dist.entropy(pp), ent)
    _close(dist.kl(pp, pq), kl)
    _close(dist.kl(pp, pp), np.zeros(B))
    _close(dist.mode(pp), mu_p)
    _close(dist.neglogp_numpy(pp, x), nlp)


def test_categorical_closed_forms():
    dist = make_distribution(S.Discrete(5))
    assert (dist.param_size, dist.head_size, dist.uses_log_std) == (5, 5, False)
    assert dist.action_shape == () and dist.action_dtype == np.int64
    lp, lq = _f32(RNG.normal(size=(B, 5)) * 2), _f32(RNG.normal(size=(B, 5)) * 2)
    a = RNG.integers(0, 5, size=B)
    nlp, ent, kl = _cat_ref(lp, lq, a)
    _close(dist.neglogp(lp, a), nlp)
    _close(dist.entropy(lp), ent)
    _close(dist.kl(lp, lq), kl)
    _close(dist.kl(lp, lp), np.zeros(B))
    np.testing.assert_array_equal(dist.mode(lp), lp.argmax(-1))


def test_multidiscrete_uneven_is_sum_of_categoricals():
    nvec = [3, 5, 2]
    dist = make_distribution(S.MultiDiscrete(nvec))
    assert dist.param_size == dist.head_size == 10 and dist.action_shape == (3,)
    lp, lq = _f32(RNG.normal(size=(B, 10))), _f32(RNG.normal(size=(B, 10)))
    a = np.stack([RNG.integers(0, n, size=B) for n in nvec], -1)
    cuts = np.cumsum(nvec)[:-1]
    refs = [
        _cat_ref(p, q, a[:, i])
        for i, (p, q) in enumerate(zip(np.split(lp, cuts, -1), np.split(lq, cuts, -1)))
    ]
    nlp, ent, kl = (sum(r[k] for r in refs) for k in range(3))
    _close(dist.neglogp(lp, a), nlp)
    _close(dist.entropy(lp), ent)
    _close(dist.kl(lp, lq), kl)
    _close(dist.kl(lp, lp), np.zeros(B))
    mode = np.stack([p.argmax(-1) for p in np.split(lp, cuts, -1)], -1)
    np.testing.assert_array_equal(dist.mode(lp), mode)


def test_bernoulli_closed_forms():
    n = 4
    dist = make_distribution(S.MultiBinary(n))
    assert dist.param_size == dist.head_size == n and dist.action_shape == (n,)
    lp, lq = _f32(RNG.normal(size=(B, n)) * 2), _f32(RNG.normal(size=(B, n)) * 2)
    x = RNG.integers(0, 2, size=(B, n))
    p, q = 1 / (1 + np.exp(-lp.astype(np.float64))), 1 / (1 + np.exp(-lq.astype(np.float64)))
    nlp = -(x * np.log(p) + (1 - x) * np.log(1 - p)).sum(-1)
    ent = -(p * np.log(p) + (1 - p) * np.log(1 - p)).sum(-1)
    kl = (p * np.log(p / q) + (1 - p) * np.log((1 - p) / (1 - q))).sum(-1)
    _close(dist.neglogp(lp, x), nlp)
    _close(dist.neglogp(lp, x.astype(np.float32)), nlp)  # float 0/1 accepted
    _close(dist.entropy(lp), ent)
    _close(dist.kl(lp, lq), kl)
    _close(dist.kl(lp, lp), np.zeros(B))
    np.testing.assert_array_equal(dist.mode(lp), (lp > 0).astype(np.int64))


# --- gradients / tf.function ---------------------------------------------------


SPACES = [
    S.Box(-1.0, 1.0, (2,), np.float32),
    S.Discrete(4),
    S.MultiDiscrete([3, 5, 2]),
    S.MultiBinary(3),
]


@pytest.mark.parametrize("space", SPACES, ids=lambda s: type(s).__name__)
def test_differentiable_inside_tf_function(space):
    dist = make_distribution(space)
    params = tf.Variable(RNG.normal(size=(B, dist.param_size)).astype(np.float32))
    other = tf.constant(RNG.normal(size=(B, dist.param_size)).astype(np.float32))

    @tf.function
    def step(seed):
        with tf.GradientTape() as tape:
            a = dist.sample(params, seed)
            loss = tf.reduce_mean(
                dist.neglogp(params, tf.stop_gradient(a)) - dist.entropy(params) + dist.kl(params, other)
            )
        return a, loss, tape.gradient(loss, params)

    a, loss, grad = step(tf.constant([3, 4], tf.int64))
    assert a.shape == (B, *dist.action_shape)
    assert a.dtype.as_numpy_dtype == dist.action_dtype
    assert loss.dtype == tf.float32 and np.isfinite(loss.numpy())
    assert grad is not None and np.all(np.isfinite(grad.numpy()))


# --- sampling ------------------------------------------------------------------


@pytest.mark.parametrize("space", SPACES, ids=lambda s: type(s).__name__)
def test_stateless_sample_is_reproducible(space):
    dist = make_distribution(space)
    params = RNG.normal(size=(64, dist.param_size)).astype(np.float32)
    s1 = dist.sample(params, tf.constant([7, 11], tf.int32))
    s2 = dist.sample(params, tf.constant([7, 11], tf.int32))
    s3 = dist.sample(params, tf.constant([7, 12], tf.int32))
    np.testing.assert_array_equal(s1, s2)
    assert not np.array_equal(s1, s3)


def test_gaussian_sample_statistics():
    dist = make_distribution(S.Box(-1.0, 1.0, (2,), np.float32))
    n = 20000
    mu, logstd = np.array([0.5, -2.0]), np.array([-1.0, 0.7])
    params = np.tile(np.concatenate([mu, logstd]), (n, 1)).astype(np.float32)
    for x in (dist.sample(params, tf.constant([1, 2])).numpy(),
              dist.sample_numpy(params, np.random.default_rng(0))[0]):
        assert np.all(np.abs(x.mean(0) - mu) < 4 * np.exp(logstd) / np.sqrt(n))
        np.testing.assert_allclose(x.std(0), np.exp(logstd), rtol=0.03)


def _chi2(counts: np.ndarray, probs: np.ndarray) -> float:
    expected = probs * counts.sum()
    return float(((counts - expected) ** 2 / expected).sum())


def test_categorical_sample_frequencies():
    dist = make_distribution(S.Discrete(4))
    n = 20000
    logits = np.array([1.0, 0.0, -1.0, 0.5])
    probs = np.exp(_log_softmax(logits))
    params = np.tile(logits, (n, 1)).astype(np.float32)
    # chi-square with 3 dof: P(chi2 > 20) ~ 2e-4
    for a in (dist.sample(params, tf.constant([5, 6])).numpy(),
              dist.sample_numpy(params, np.random.default_rng(0))[0]):
        assert _chi2(np.bincount(a, minlength=4), probs) < 20.0


# --- NumPy twins agree with TF ---------------------------------------------------


@pytest.mark.parametrize("space", SPACES, ids=lambda s: type(s).__name__)
def test_numpy_twins_match_tf(space):
    dist = make_distribution(space)
    params = (RNG.normal(size=(32, dist.param_size)) * 1.5).astype(np.float32)
    rng = np.random.default_rng(42)

    a, nlp = dist.sample_numpy(params, rng)
    assert a.shape == (32, *dist.action_shape) and a.dtype == dist.action_dtype
    assert nlp.shape == (32,) and nlp.dtype == np.float32
    _close(nlp, dist.neglogp(params, a).numpy())
    _close(dist.neglogp_numpy(params, a), dist.neglogp(params, a).numpy())

    m, m_nlp = dist.mode_numpy(params)
    np.testing.assert_allclose(m, dist.mode(params).numpy(), rtol=1e-6)
    _close(m_nlp, dist.neglogp(params, m).numpy())

    # same Generator seed -> same actions
    np.testing.assert_array_equal(a, dist.sample_numpy(params, np.random.default_rng(42))[0])


# --- unsupported spaces ------------------------------------------------------------


@pytest.mark.parametrize(
    "space",
    [
        S.Box(-1.0, 1.0, (2, 3), np.float32),
        S.MultiBinary([2, 2]),
        S.MultiDiscrete([[2, 3], [4, 5]]),
        S.Discrete(3, start=1),
        S.Dict({"a": S.Discrete(2)}),
        S.Tuple([S.Discrete(2), S.Discrete(3)]),
        S.Text(5),
    ],
    ids=lambda s: type(s).__name__,
)
def test_unsupported_spaces_raise_config_error(space):
    with pytest.raises(ConfigError) as exc:
        make_distribution(space)
    msg = str(exc.value)
    assert "\n" not in msg
    assert msg.startswith("unsupported action space")
    assert "supported: Discrete, Box (1-d), MultiDiscrete, MultiBinary (1-d)" in msg
