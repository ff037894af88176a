"""Baselines' Atari pipeline on real ALE games: frames, fire reset, lives, clipping, raw game scores."""
from __future__ import annotations

import gymnasium
import numpy as np
import pytest

pytest.importorskip("ale_py")
pytest.importorskip("cv2")

from tfppo.envs import atari, families  # noqa: E402
from tfppo.envs.episodes import LIFE_LOST_KEY, EpisodeTracker  # noqa: E402
from tfppo.envs.factory import make_vec_env, probe_spaces, resolve_env  # noqa: E402
from tfppo.util.errors import ConfigError  # noqa: E402

BREAKOUT_LIVES = 5


class RawFrames(gymnasium.Wrapper):
    """Test probe under the whole pipeline: every emulator frame's raw reward, summed per game."""

    def __init__(self, env):
        super().__init__(env)
        self.game_score = 0.0
        self.finished_score: float | None = None  # the score of the last game, kept at the next reset

    def step(self, action):
        obs, reward, terminated, truncated, info = self.env.step(action)
        self.game_score += float(reward)
        return obs, reward, terminated, truncated, info

    def reset(self, **kwargs):
        self.finished_score, self.game_score = self.game_score, 0.0
        return self.env.reset(**kwargs)


def probed(game: str) -> tuple[gymnasium.Env, RawFrames]:
    families.register_family(f"ALE/{game}-v5")
    probe = RawFrames(gymnasium.make(f"ALE/{game}-v5", frameskip=1))
    return atari.wrap_atari(probe), probe


def test_observations_are_84x84_grey_stacked_on_the_last_axis():
    obs_space, act_space = probe_spaces("ALE/Breakout-v5")
    assert obs_space.shape == (84, 84, 4) and obs_space.dtype == np.uint8 and act_space == gymnasium.spaces.Discrete(4)
    env = resolve_env("ALE/Breakout-v5")()
    obs, _ = env.reset(seed=0)
    assert obs.shape == (84, 84, 4) and obs.dtype == np.uint8
    # PPO2's VecFrameStack: zeros before the first frame of an episode, the newest frame last
    assert not obs[..., :3].any() and obs[..., 3].any()
    previous = obs
    for _ in range(5):
        obs, *_ = env.step(0)
        np.testing.assert_array_equal(obs[..., :3], previous[..., 1:])
        previous = obs
    env.close()


def test_fire_reset_launches_the_ball():
    """With NOOPs only, Breakout loses a life only if the wrapper pressed FIRE at the reset."""
    env, _ = probed("Breakout")
    assert atari.has_fire(env) and not atari.has_fire(gymnasium.make("ALE/Freeway-v5"))
    env.reset(seed=1)
    lost = any(env.step(0)[4].get(LIFE_LOST_KEY) for _ in range(300))
    assert lost
    bare = gymnasium.make("ALE/Breakout-v5", frameskip=1)  # the same game without FireReset
    bare = atari.EpisodicLife(gymnasium.wrappers.AtariPreprocessing(bare, noop_max=30, frame_skip=4))
    bare.reset(seed=1)
    assert not any(bare.step(0)[4].get(LIFE_LOST_KEY) for _ in range(300))
    env.close()
    bare.close()


def test_a_lost_life_ends_the_episode_but_not_the_game():
    env, _ = probed("Breakout")
    env.reset(seed=2)
    lives = env.unwrapped.ale.lives()
    frame = None
    for _ in range(300):
        _, _, terminated, _, info = env.step(0)
        if terminated:
            frame = info["episode_frame_number"]
            break
    assert info.get(LIFE_LOST_KEY) and env.unwrapped.ale.lives() == lives - 1
    env.reset()  # unseeded, as the vector env's autoreset: the same game goes on
    assert env.unwrapped.ale.lives() == lives - 1 and env.unwrapped.ale.getEpisodeFrameNumber() > frame
    env.reset(seed=3)  # seeded: a new game
    assert env.unwrapped.ale.lives() == lives
    env.close()


def test_training_rewards_are_clipped_and_the_raw_score_is_kept():
    """Space Invaders' aliens are worth 5-30 points: the training reward is +1, the game score the points."""
    env, probe = probed("SpaceInvaders")
    env.reset(seed=0)
    rng = np.random.default_rng(0)
    rewards = []
    while probe.game_score == 0.0:
        before = probe.game_score
        _, reward, *_ = env.step(int(rng.integers(env.action_space.n)))
        rewards.append(reward)
    assert probe.game_score - before >= 5 and rewards[-1] == 1.0 and set(rewards) <= {0.0, 1.0}
    env.close()


def test_the_tracker_reports_whole_games_with_their_raw_score():
    """One vector env of Breakout to its game over: 5 training episodes (4 lost lives, then the game's
    end) are one reported episode whose return is the raw score of every frame and whose length counts
    the agent's steps plus the pipeline's reset steps (Baselines' Monitor counts both): FIRE and 2 after
    each of the 5 starts, a no-op after each of the 4 lost lives."""
    thunk = lambda: probed("Breakout")[0]
    venv = gymnasium.vector.SyncVectorEnv([thunk], autoreset_mode=gymnasium.vector.AutoresetMode.SAME_STEP)
    venv.reset(seed=6)  # a game that scores (5 points)
    probe = venv.envs[0]
    while not isinstance(probe, RawFrames):
        probe = probe.env
    tracker = EpisodeTracker(1)
    rng = np.random.default_rng(6)
    dones = steps = clipped = 0
    while tracker.episodes == 0:
        _, reward, terminated, truncated, infos = venv.step(rng.integers(4, size=1))
        steps += 1
        clipped += float(reward[0])
        assert reward[0] in (-1.0, 0.0, 1.0)
        dones += int(terminated[0] or truncated[0])
        tracker.step(reward, terminated | truncated, infos)
    assert dones == BREAKOUT_LIVES
    game_return, game_length = tracker.returns[0], tracker.lengths[0]
    assert game_length == steps + 2 * BREAKOUT_LIVES + (BREAKOUT_LIVES - 1)
    assert game_return == probe.finished_score and game_return >= clipped > 0
    venv.close()


def test_family_envs_are_built_through_the_factory_in_both_vectorizations():
    for vectorization in ("sync", "async"):
        venv = make_vec_env("ALE/Pong-v5", 2, vectorization=vectorization)
        obs, _ = venv.reset(seed=[0, 1])
        assert obs.shape == (2, 84, 84, 4)
        venv.close()


def test_a_missing_package_names_the_extra(monkeypatch):
    real = families.importlib.import_module

    def no_ale(name, *args):
        if name == "ale_py":
            raise ImportError("No module named 'ale_py'")
        return real(name, *args)

    monkeypatch.setattr(families.importlib, "import_module", no_ale)
    monkeypatch.setattr(families, "_registered", set())
    with pytest.raises(ConfigError, match=r"^env 'ALE/Breakout-v5' needs the atari extra .*pip install tfppo\[atari\]$"):
        resolve_env("ALE/Breakout-v5")


def test_atari_ids_default_to_baselines_atari_hyperparameters():
    from tfppo.cli import ppo1, ppo2

    config, _ = ppo2.build_config(ppo2.parse_args(["--env", "ALE/Pong-v5", "--n_steps", "64"]))
    # [B] ppo2 defaults.atari() with baselines.run's 8 envs; the explicit flag wins
    assert (config.num_envs, config.n_steps, config.nminibatches, config.noptepochs) == (8, 64, 4, 4)
    assert (str(config.learning_rate), str(config.cliprange), config.ent_coef) == ("lin_0.00025", "lin_0.1", 0.01)
    assert config.total_timesteps == 10_000_000
    config, _ = ppo1.build_config(ppo1.parse_args(["--env", "BreakoutNoFrameskip-v4", "--max_timesteps", "4096"]))
    # [B] ppo1/run_atari.py; the budget stays the CLI's
    assert (config.timesteps_per_actorbatch, config.optim_batchsize, config.optim_epochs) == (256, 64, 4)
    assert (config.optim_stepsize, config.clip_param, config.entcoeff) == (1e-3, 0.2, 0.01)
    assert (config.max_timesteps, config.schedule) == (4096, "linear")
    config, _ = ppo2.build_config(ppo2.parse_args(["--env", "ALE/Pong-v5", "--preset", "baselines-ppo2"]))
    assert config.n_steps == 2048  # an explicit preset means its own defaults, as for every env
