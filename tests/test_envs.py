"""Env plumbing against hand-computed expectations (spec §2.3-2.4, §5.4)."""

from __future__ import annotations

import json
import math
import sys
import types

import gymnasium
import numpy as np
import pytest
from gymnasium import spaces

from tfppo.envs.episodes import EpisodeTracker
from tfppo.envs.normalize import VecNormalize
from tfppo.envs.spaces import check_spaces, clip_actions
from tfppo.envs.factory import make_vec_env, resolve_env, seed_vec_env
from tfppo.util.errors import ConfigError


# ------------------------------------------------------------------ custom env fixture
class _TinyEnv(gymnasium.Env):
    """Counts to ``horizon``; reward = step index. Spaces configurable to test checks."""

    def __init__(self, horizon: int = 3, action_space: spaces.Space | None = None):
        self.horizon = horizon
        self.observation_space = spaces.Box(-np.inf, np.inf, shape=(1,), dtype=np.float32)
        self.action_space = action_space if action_space is not None else spaces.Discrete(2)
        self.t = 0

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.t = 0
        return np.array([0.0], dtype=np.float32), {}

    def step(self, action):
        self.t += 1
        obs = np.array([float(self.t)], dtype=np.float32)
        return obs, float(self.t), self.t >= self.horizon, False, {}


class _NotAnEnv:
    pass


def _make_tiny(horizon: int = 3) -> gymnasium.Env:
    return _TinyEnv(horizon)


def _make_nothing():
    return None


@pytest.fixture()
def custom_module():
    """Expose the test envs as ``tfppo_test_custom_envs:Class`` without a helper file."""
    mod = types.ModuleType("tfppo_test_custom_envs")
    mod.TinyEnv = _TinyEnv
    mod.NotAnEnv = _NotAnEnv
    mod.make_tiny = _make_tiny
    mod.make_nothing = _make_nothing
    sys.modules[mod.__name__] = mod
    yield mod.__name__
    del sys.modules[mod.__name__]


# -------------------------------------------------------------------------- resolve_env
def test_unknown_env_is_one_line_config_error_naming_the_id():
    with pytest.raises(ConfigError) as info:
        resolve_env("Foo-v0")
    msg = str(info.value)
    assert "'Foo-v0'" in msg and "\n" not in msg
    assert "CartPole-v1" in msg and "module:Class" in msg


def test_unknown_env_suggests_close_matches():
    with pytest.raises(ConfigError, match="did you mean.*LunarLander-v3"):
        resolve_env("LunarLander-v2")


def test_registered_ids_resolve_without_creating_envs():
    for env_id in ("CartPole-v1", "Pendulum-v1", "LunarLander-v3"):
        factory = resolve_env(env_id)
        assert factory.registered and factory.env_id == env_id


def test_missing_optional_dependency_names_the_pip_extra():
    try:
        import mujoco  # noqa: F401
    except ImportError:
        pass
    else:
        pytest.skip("mujoco is installed")
    with pytest.raises(ConfigError, match=r"tfppo\[mujoco\]") as info:
        resolve_env("HalfCheetah-v5")
    assert "\n" not in str(info.value)


def test_module_class_env_from_gymnasium():
    factory = resolve_env("gymnasium.envs.classic_control.cartpole:CartPoleEnv")
    env = factory()
    obs, _ = env.reset(seed=0)
    assert obs.shape == (4,)
    env.close()


def test_module_class_custom_env(custom_module):
    factory = resolve_env(f"{custom_module}:TinyEnv")
    env = factory(horizon=2)
    assert isinstance(env, _TinyEnv) and env.horizon == 2


def test_module_function_env_is_called_with_the_kwargs_and_checked(custom_module):
    venv = make_vec_env(f"{custom_module}:make_tiny", 2, env_kwargs={"horizon": 4})
    try:
        assert [env.horizon for env in venv.envs] == [4, 4]
    finally:
        venv.close()
    with pytest.raises(ConfigError, match=r"make_nothing returned NoneType \(None\), not a gymnasium.Env"):
        make_vec_env(f"{custom_module}:make_nothing", 1)


def test_make_vec_env_calls_a_callable_once_per_env():
    made = []

    def factory():
        made.append(1)
        return gymnasium.make("CartPole-v1")

    venv = make_vec_env(factory, 3)
    try:
        assert len(made) == 3 and len({id(env) for env in venv.envs}) == 3
    finally:
        venv.close()


@pytest.mark.parametrize(
    "suffix, pattern",
    [(":Missing", "no attribute 'Missing'"), (":NotAnEnv", "not a gymnasium.Env subclass")],
)
def test_bad_module_class_is_config_error(custom_module, suffix, pattern):
    with pytest.raises(ConfigError, match=pattern):
        resolve_env(custom_module + suffix)


def test_unimportable_module_is_config_error():
    with pytest.raises(ConfigError, match="cannot import module 'no_such_pkg_xyz'"):
        resolve_env("no_such_pkg_xyz:Env")


# ------------------------------------------------------------------------- check_spaces
BOX4 = spaces.Box(-1.0, 1.0, shape=(4,), dtype=np.float32)


@pytest.mark.parametrize(
    "obs_space, act_space",
    [
        (BOX4, spaces.Discrete(3)),
        (spaces.Box(0, 255, shape=(84, 84, 4), dtype=np.uint8), spaces.Discrete(6)),
        (spaces.Discrete(16), spaces.Discrete(4)),
        (BOX4, spaces.Box(-2.0, 2.0, shape=(2,), dtype=np.float32)),
        (BOX4, spaces.MultiDiscrete([3, 2])),
        (BOX4, spaces.MultiBinary(5)),
    ],
)
def test_supported_spaces_pass(obs_space, act_space):
    check_spaces(obs_space, act_space)


@pytest.mark.parametrize(
    "obs_space, act_space, pattern",
    [
        (spaces.Dict({"a": BOX4}), spaces.Discrete(2), "observation space Dict"),
        (spaces.Tuple((BOX4, BOX4)), spaces.Discrete(2), "observation space Tuple"),
        (BOX4, spaces.Box(-1.0, 1.0, shape=(2, 2)), "action space Box"),
        (BOX4, spaces.MultiDiscrete([[2, 2], [2, 2]]), "action space MultiDiscrete"),
        (BOX4, spaces.MultiBinary([2, 3]), "action space MultiBinary"),
        (BOX4, spaces.Tuple((spaces.Discrete(2),)), "action space Tuple"),
        (BOX4, spaces.Discrete(3, start=1), "start"),
    ],
)
def test_unsupported_spaces_are_config_errors(obs_space, act_space, pattern):
    with pytest.raises(ConfigError, match=pattern) as info:
        check_spaces(obs_space, act_space)
    assert "\n" not in str(info.value)


def test_unsupported_action_error_lists_allowed_spaces():
    with pytest.raises(ConfigError, match="allowed: Discrete, Box with 1-d shape, MultiDiscrete"):
        check_spaces(BOX4, spaces.Box(-1.0, 1.0, shape=(2, 2)))


# ------------------------------------------------------------------------- make_vec_env
def test_make_vec_env_same_step_autoreset():
    venv = make_vec_env("CartPole-v1", 2)
    try:
        assert venv.metadata["autoreset_mode"] == gymnasium.vector.AutoresetMode.SAME_STEP
        obs = seed_vec_env(venv, [0, 1])
        assert obs.shape == (2, 4)
        actions = np.ones(2, dtype=np.int64)  # always push right: the pole falls in < 100 steps
        for _ in range(200):
            obs, _, term, trunc, info = venv.step(actions)
            if term[0] or trunc[0]:
                break
        else:
            pytest.fail("CartPole never terminated under a constant action")
        assert info["_final_obs"][0]
        final = info["final_obs"][0]
        # terminal obs: cart out of bounds (|x| > 2.4) or pole past 12 degrees (0.2095 rad)
        assert abs(final[0]) > 2.4 or abs(final[2]) > 0.2095
        # returned obs is already the next episode's first obs: reset draws U(-0.05, 0.05)
        assert np.all(np.abs(obs[0]) <= 0.05)
    finally:
        venv.close()


def test_make_vec_env_seeding_is_reproducible():
    firsts = []
    for _ in range(2):
        venv = make_vec_env("CartPole-v1", 2)
        firsts.append(seed_vec_env(venv, [3, 4]))
        venv.close()
    np.testing.assert_array_equal(firsts[0], firsts[1])
    assert not np.array_equal(firsts[0][0], firsts[0][1])


def test_make_vec_env_async():
    venv = make_vec_env("CartPole-v1", 2, vectorization="async")
    try:
        obs = seed_vec_env(venv, [0, 1])
        assert obs.shape == (2, 4)
        obs, *_ = venv.step(np.zeros(2, dtype=np.int64))
        assert obs.shape == (2, 4)
    finally:
        venv.close()


def test_make_vec_env_custom_env_kwargs_and_wrappers(custom_module):
    seen = []

    def tag(env):
        seen.append(type(env).__name__)
        return env

    venv = make_vec_env(f"{custom_module}:TinyEnv", 2, env_kwargs={"horizon": 2}, wrappers=[tag])
    try:
        assert seen == ["_TinyEnv", "_TinyEnv"]
        seed_vec_env(venv, [0, 1])
        venv.step(np.zeros(2, dtype=np.int64))
        obs, rew, term, _, info = venv.step(np.zeros(2, dtype=np.int64))
        np.testing.assert_array_equal(term, [True, True])
        np.testing.assert_array_equal(rew, [2.0, 2.0])
        np.testing.assert_array_equal(obs[:, 0], [0.0, 0.0])  # already reset
        assert [float(o[0]) for o in info["final_obs"]] == [2.0, 2.0]
    finally:
        venv.close()


def test_make_vec_env_rejects_bad_vectorization_and_num_envs():
    with pytest.raises(ConfigError, match="allowed: sync, async"):
        make_vec_env("CartPole-v1", 2, vectorization="subproc")
    with pytest.raises(ConfigError, match="num_envs"):
        make_vec_env("CartPole-v1", 0)


def test_make_vec_env_checks_spaces(custom_module):
    bad = spaces.Box(-1.0, 1.0, shape=(2, 2))
    with pytest.raises(ConfigError, match="unsupported action space"):
        make_vec_env(f"{custom_module}:TinyEnv", 1, env_kwargs={"action_space": bad})


# ------------------------------------------------------------------------- clip_actions
def test_clip_actions_box_nan_and_out_of_range():
    space = spaces.Box(np.array([-1.0, 0.0], np.float32), np.array([1.0, 2.0], np.float32), dtype=np.float32)
    actions = np.array([[np.nan, 5.0], [-3.0, -0.5], [0.25, np.inf]])
    out = clip_actions(actions, space)
    # nan -> 0 (inside [-1, 1]); 5 -> 2; -3 -> -1; -0.5 -> 0; 0.25 stays; inf -> huge -> 2
    np.testing.assert_array_equal(out, [[0.0, 2.0], [-1.0, 0.0], [0.25, 2.0]])
    assert out.dtype == np.float32
    assert np.isnan(actions[0, 0])  # the caller's (stored) action is untouched


def test_clip_actions_other_spaces_unchanged():
    a = np.array([0, 5, 7])
    assert clip_actions(a, spaces.Discrete(3)) is a


# ----------------------------------------------------------------------- EpisodeTracker
def test_episode_tracker_hand_sequence():
    tracker = EpisodeTracker(num_envs=2)
    steps = [
        ([1.0, 2.0], [False, False], []),
        ([1.0, 3.0], [True, False], [(2.0, 2)]),
        ([5.0, 1.0], [False, True], [(6.0, 3)]),
        ([0.5, 1.0], [True, True], [(5.5, 2), (1.0, 1)]),
    ]
    for rewards, dones, expected in steps:
        assert tracker.step(np.array(rewards), np.array(dones)) == expected
    assert list(tracker.returns) == [2.0, 6.0, 5.5, 1.0]
    assert list(tracker.lengths) == [2, 3, 2, 1]
    assert tracker.episodes == 4
    assert tracker.mean_return() == pytest.approx(14.5 / 4)
    assert tracker.mean_length() == pytest.approx(2.0)


def test_episode_tracker_window_extend_and_empty():
    tracker = EpisodeTracker(num_envs=1, window=2)
    assert math.isnan(tracker.mean_return()) and math.isnan(tracker.mean_length())
    tracker.extend([(1.0, 10), (2.0, 20), (3.0, 30)])
    assert list(tracker.returns) == [2.0, 3.0]
    assert tracker.episodes == 3
    assert tracker.mean_length() == pytest.approx(25.0)


def test_episode_tracker_state_round_trip():
    tracker = EpisodeTracker(num_envs=2, window=3)
    tracker.step(np.array([1.0, 2.0]), np.array([True, True]))
    tracker.step(np.array([4.0, 0.0]), np.array([False, False]))  # in progress: not saved
    other = EpisodeTracker(num_envs=2, window=3)
    other.load_state_dict(json.loads(json.dumps(tracker.state_dict())))
    assert list(other.returns) == [1.0, 2.0] and other.episodes == 2
    assert other.step(np.array([1.0, 1.0]), np.array([True, False])) == [(1.0, 1)]


# ------------------------------------------------------------------------- VecNormalize
def test_vecnormalize_reward_two_steps_by_hand():
    vn = VecNormalize((1,), 2, norm_obs=False, gamma=0.9)
    # step 1: ret = [1, 2]; batch mean 1.5, var 0.25, n 2 merged with prior (0, 1, 1e-4):
    #   N = 2.0001, var = (1e-4 + 0.5 + 1.5**2 * 1e-4 * 2 / N) / N = 0.25014998687593737
    out1 = vn.normalize_reward(np.array([1.0, 2.0]), np.array([False, True]))
    assert float(vn.ret_rms.var) == pytest.approx(0.25014998687593737, rel=1e-12)
    np.testing.assert_allclose(out1, [1.9994002823500832, 3.9988005647001663], rtol=1e-12)
    np.testing.assert_array_equal(vn.ret, [1.0, 0.0])  # env 1 done -> its return restarts
    # step 2: ret = [0.9 * 1 + 3, 0.9 * 0 - 1] = [3.9, -1]; pooled data {1, 2, 3.9, -1}:
    #   mean 1.475, var 3.126875, N = 4.0001
    #   var = (1e-4 + 4 * 3.126875 + 1.475**2 * 1e-4 * 4 / N) / N = 3.1268762173598352
    out2 = vn.normalize_reward(np.array([3.0, -1.0]), np.array([True, False]))
    assert float(vn.ret_rms.var) == pytest.approx(3.1268762173598352, rel=1e-12)
    np.testing.assert_allclose(out2, [1.6965470539893828, -0.5655156846631276], rtol=1e-12)
    np.testing.assert_array_equal(vn.ret, [0.0, -1.0])


def test_vecnormalize_obs_by_hand_and_float32():
    vn = VecNormalize((2,), 2, norm_reward=False, epsilon=0.0)
    obs = np.array([[1.0, 10.0], [3.0, 10.0]])
    out = vn.normalize_obs(obs)
    # stats updated first: col 0 -> mean 4/2.0001, var (1e-4 + 2 + 4*1e-4*2/2.0001)/2.0001
    n = 2.0001
    mean0 = 4.0 / n
    var0 = (1e-4 + 2.0 + 4.0 * 1e-4 * 2 / n) / n
    assert out.dtype == np.float32
    np.testing.assert_allclose(out[:, 0], (np.array([1.0, 3.0]) - mean0) / np.sqrt(var0), rtol=1e-6)
    # col 1: constant 10 -> batch var 0, so only the prior spreads it:
    #   mean 20/n, var (1e-4 + 10**2 * 1e-4 * 2 / n) / n
    mean1 = 20.0 / n
    var1 = (1e-4 + 100.0 * 1e-4 * 2 / n) / n
    np.testing.assert_allclose(out[:, 1], (10.0 - mean1) / np.sqrt(var1), rtol=1e-5)


def test_vecnormalize_disabled_passes_through():
    vn = VecNormalize((2,), 2, norm_obs=False, norm_reward=False)
    obs = np.array([[100, -5], [1, 2]], dtype=np.int64)
    out = vn.normalize_obs(obs)
    assert out.dtype == np.float32
    np.testing.assert_array_equal(out, obs)
    np.testing.assert_array_equal(vn.normalize_reward(np.array([50.0, -7.0]), np.array([0, 0])), [50.0, -7.0])
    assert vn.obs_rms.count == pytest.approx(1e-4)


def test_vecnormalize_clips_at_ten():
    vn = VecNormalize((3,), 2)
    vn.training = False  # prior stats: mean 0, var 1
    out = vn.normalize_obs(np.array([[100.0, -100.0, 3.0], [0.0, 9.0, -11.0]]))
    np.testing.assert_allclose(out, [[10.0, -10.0, 3.0], [0.0, 9.0, -10.0]], rtol=1e-6)
    rew = vn.normalize_reward(np.array([50.0, -50.0]), np.array([False, False]))
    np.testing.assert_allclose(rew, [10.0, -10.0])


def test_vecnormalize_training_false_freezes_statistics():
    vn = VecNormalize((2,), 2)
    vn.normalize_obs(np.array([[1.0, 2.0], [3.0, 4.0]]))
    vn.normalize_reward(np.array([1.0, 2.0]), np.array([False, False]))
    before = json.dumps(vn.state_dict())
    vn.training = False
    vn.normalize_obs(np.array([[7.0, 8.0], [9.0, 10.0]]))
    vn.normalize_reward(np.array([5.0, 6.0]), np.array([True, False]))
    vn.reset(np.zeros((2, 2)))
    assert json.dumps(vn.state_dict()) == before


def test_vecnormalize_update_false_does_not_count():
    vn = VecNormalize((2,), 2)
    vn.normalize_obs(np.ones((2, 2)), update=False)
    assert vn.obs_rms.count == pytest.approx(1e-4)


def test_vecnormalize_reset_follows_sb():
    vn = VecNormalize((1,), 2)
    vn.normalize_reward(np.array([1.0, 2.0]), np.array([False, False]))
    assert vn.ret_rms.count == pytest.approx(2.0001)
    out = vn.reset(np.array([[2.0], [4.0]]))
    np.testing.assert_array_equal(vn.ret, [0.0, 0.0])
    assert vn.obs_rms.count == pytest.approx(1e-4)  # SB: reset obs not counted
    assert vn.ret_rms.count == pytest.approx(4.0001)  # SB: _update_reward(zeros)
    np.testing.assert_allclose(out, [[2.0], [4.0]], rtol=1e-6)  # prior mean 0 / var 1


def test_vecnormalize_reset_follows_baselines():
    vn = VecNormalize((1,), 2, reset_mode="baselines")
    vn.normalize_reward(np.array([1.0, 2.0]), np.array([False, False]))
    out = vn.reset(np.array([[2.0], [4.0]]))
    np.testing.assert_array_equal(vn.ret, [0.0, 0.0])
    assert vn.ret_rms.count == pytest.approx(2.0001)  # [B]: returns statistics untouched by reset
    assert vn.obs_rms.count == pytest.approx(2.0001)  # [B] _obfilt: reset obs counted
    # obs_rms after [2, 4] merged into the prior (count 1e-4, mean 0, var 1): mean 3·2/2.0001, var ≈ 1
    mean = 6.0 / 2.0001
    var = (1e-4 + 2.0 + 9.0 * 1e-4 * 2 / 2.0001) / 2.0001
    np.testing.assert_allclose(out, (np.array([[2.0], [4.0]]) - mean) / np.sqrt(var + 1e-8), rtol=1e-5)


@pytest.mark.parametrize("mode,expected", [
    # [B]: ret_rms starts at the prior (count 1e-4, var 1); hand-computed in the issue: 79.3 clips to 10
    ("baselines", [10.0, 2.0363, 1.7849, -0.3512]),
    # [SB]: the reset folds one zero return into ret_rms first (count 1.0001, mean 0, var 1e-4/1.0001)
    ("sb", [1.9999, 0.8495, 1.4273, -0.2671]),
])
def test_vecnormalize_first_rewards_after_reset(mode, expected):
    vn = VecNormalize((1,), 1, norm_obs=False, gamma=0.99, reset_mode=mode)
    vn.reset(np.zeros((1, 1)))
    out = [float(vn.normalize_reward(np.array([r]), np.array([False]))[0]) for r in (1.3, 0.7, 2.1, -0.4)]
    np.testing.assert_allclose(out, expected, atol=5e-5)


def test_vecnormalize_rejects_an_unknown_reset_mode():
    with pytest.raises(ConfigError, match="reset_mode 'gym' is invalid; allowed: baselines, sb"):
        VecNormalize((1,), 1, reset_mode="gym")


def test_vecnormalize_state_round_trip_identical_outputs():
    rng = np.random.default_rng(0)
    vn = VecNormalize((3,), 4, clip_obs=5.0, gamma=0.95)
    for _ in range(5):
        vn.normalize_obs(rng.normal(2.0, 3.0, size=(4, 3)))
        vn.normalize_reward(rng.normal(size=4), rng.random(4) < 0.3)
    clone = VecNormalize((3,), 4)
    clone.load_state_dict(json.loads(json.dumps(vn.state_dict())))
    assert clone.clip_obs == 5.0 and clone.gamma == 0.95
    vn.training = clone.training = False
    obs = rng.normal(size=(4, 3)) * 10
    np.testing.assert_array_equal(vn.normalize_obs(obs), clone.normalize_obs(obs))
    r, d = np.array([0.5, -2.0, 3.0, 0.0]), np.zeros(4, dtype=bool)
    np.testing.assert_array_equal(vn.normalize_reward(r, d), clone.normalize_reward(r, d))


def test_vecnormalize_load_shape_mismatch():
    state = VecNormalize((3,), 2).state_dict()
    with pytest.raises(ConfigError, match="shape"):
        VecNormalize((4,), 2).load_state_dict(state)


def test_cartpole_no_velocity_is_cartpole_with_x_and_theta_only():
    """The POMDP of issue 27 (tfppo.envs.pomdp), reachable by its bare id: on the same seed and actions it shows
    CartPole-v1's cart position and pole angle (indices 0 and 2 of [x, ẋ, θ, θ̇]) and nothing else, with the
    same rewards, terminations and 500-step time limit."""
    assert resolve_env("CartPoleNoVelocity-v1").registered
    hidden, full = gymnasium.make("CartPoleNoVelocity-v1"), gymnasium.make("CartPole-v1")
    assert hidden.observation_space.shape == (2,)
    limits, layer = [], hidden
    while hasattr(layer, "env"):
        limits += [layer._max_episode_steps] if isinstance(layer, gymnasium.wrappers.TimeLimit) else []
        layer = layer.env
    assert limits == [500]
    h_obs, _ = hidden.reset(seed=3)
    f_obs, _ = full.reset(seed=3)
    for action in [0, 1] * 300:
        np.testing.assert_array_equal(h_obs, f_obs[[0, 2]])
        h_obs, h_rew, h_term, h_trunc, _ = hidden.step(action)
        f_obs, f_rew, f_term, f_trunc, _ = full.step(action)
        assert (h_rew, h_term, h_trunc) == (f_rew, f_term, f_trunc)
        if f_term or f_trunc:
            break
    assert f_term or f_trunc, "alternating actions end a CartPole episode well inside 600 steps"
