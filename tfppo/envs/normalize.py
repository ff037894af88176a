"""VecNormalize: Baselines / Stable-Baselines observation and reward normalisation (spec §5.4)."""
from __future__ import annotations

from typing import Any

import numpy as np

from tfppo.util.errors import ConfigError
from tfppo.util.running_stats import RunningMeanStd

# ---------------------------------------------------------------------- VecNormalize
class VecNormalize:
    """Baselines/SB VecNormalize maths as a plain object the runner calls (spec §5.4).

    Not a gym wrapper, so its statistics live next to the model in checkpoints
    and PPO2's runner decides when to call it. Per vector step the runner calls,
    in SB ``VecNormalize.step_wait`` order::

        obs = vn.normalize_obs(obs)              # stats updated with the returned obs
        rew = vn.normalize_reward(rew, dones)    # discounted-return scaling, then ret[dones] = 0

    and ``vn.reset(obs)`` once after ``venv.reset``. Observation normalisation
    is ``clip((obs - mean) / sqrt(var + eps), ±clip_obs)``; reward
    normalisation divides by the std of the running *discounted return* (not of
    the reward) and clips to ``±clip_reward``. Rewards are never centred.
    """

    def __init__(
        self,
        obs_shape: tuple[int, ...],
        num_envs: int,
        *,
        norm_obs: bool = True,
        norm_reward: bool = True,
        clip_obs: float = 10.0,
        clip_reward: float = 10.0,
        gamma: float = 0.99,
        epsilon: float = 1e-8,
        reset_mode: str = "sb",
    ) -> None:
        if reset_mode not in ("baselines", "sb"):
            raise ConfigError(f"VecNormalize reset_mode {reset_mode!r} is invalid; allowed: baselines, sb")
        self.reset_mode = reset_mode
        self.obs_shape = tuple(int(d) for d in obs_shape)
        self.num_envs = int(num_envs)
        self.norm_obs = bool(norm_obs)
        self.norm_reward = bool(norm_reward)
        self.clip_obs = float(clip_obs)
        self.clip_reward = float(clip_reward)
        self.gamma = float(gamma)
        self.epsilon = float(epsilon)
        self.training: bool = True
        self.obs_rms = RunningMeanStd(shape=self.obs_shape)
        self.ret_rms = RunningMeanStd(shape=())
        self.ret = np.zeros(self.num_envs, dtype=np.float64)

    def normalize_obs(self, obs: np.ndarray, *, update: bool = True) -> np.ndarray:
        """Normalise a batch ``[num_envs, *obs_shape]``; float32 out.

        Statistics are updated first (when ``training`` and ``update``), as SB
        does in ``step_wait``. Pass ``update=False`` for observations that must
        not count twice, e.g. ``info["final_obs"]`` used for bootstrapping.
        """
        obs = np.asarray(obs)
        if not self.norm_obs:
            return obs.astype(np.float32)
        if self.training and update:
            self.obs_rms.update(obs)
        normed = (obs - self.obs_rms.mean) / np.sqrt(self.obs_rms.var + self.epsilon)
        return np.clip(normed, -self.clip_obs, self.clip_obs).astype(np.float32)

    def normalize_reward(self, rewards: np.ndarray, dones: np.ndarray) -> np.ndarray:
        """Scale rewards by the running std of the discounted return; reset ``ret`` on done.

        ``ret = ret * gamma + r``; when training ``ret_rms`` is updated with the
        ``num_envs`` current returns; out = ``clip(r / sqrt(ret_rms.var + eps),
        ±clip_reward)``; finally ``ret[dones] = 0`` (SB ``step_wait`` order).
        """
        rewards = np.asarray(rewards, dtype=np.float64).reshape(self.num_envs)
        dones = np.asarray(dones, dtype=bool).reshape(self.num_envs)
        if not self.norm_reward:
            self.ret[dones] = 0.0
            return rewards
        self.ret = self.ret * self.gamma + rewards
        if self.training:
            self.ret_rms.update(self.ret)
        scaled = np.clip(
            rewards / np.sqrt(self.ret_rms.var + self.epsilon), -self.clip_reward, self.clip_reward
        )
        self.ret[dones] = 0.0
        return scaled

    def reset(self, obs: np.ndarray) -> np.ndarray:
        """Handle a full ``venv.reset``: zero the returns, normalise the first obs (spec §5.4).

        ``reset_mode="baselines"``: the reset observations update ``obs_rms`` ([B] ``_obfilt``) and
        ``ret_rms`` is left alone. ``reset_mode="sb"``: the reset observations do not count, but when
        training with reward normalisation the zeroed returns are folded into ``ret_rms`` ([SB]
        ``reset`` calls ``_update_reward(zeros)``: ``num_envs`` zero returns, once per reset).
        """
        self.ret = np.zeros(self.num_envs, dtype=np.float64)
        if self.reset_mode == "baselines":
            return self.normalize_obs(obs, update=True)
        if self.training and self.norm_reward:
            self.ret_rms.update(self.ret)
        return self.normalize_obs(obs, update=False)

    def state_dict(self) -> dict[str, Any]:
        """JSON-serialisable statistics and settings (the live ``ret`` is not saved)."""
        return {
            "obs_shape": list(self.obs_shape),
            "norm_obs": self.norm_obs,
            "norm_reward": self.norm_reward,
            "clip_obs": self.clip_obs,
            "clip_reward": self.clip_reward,
            "gamma": self.gamma,
            "epsilon": self.epsilon,
            "obs_rms": self.obs_rms.state_dict(),
            "ret_rms": self.ret_rms.state_dict(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore from :meth:`state_dict`; an obs-shape mismatch is a ``ConfigError``.

        ``training`` is left as is: the caller decides whether loaded statistics
        keep adapting (resume) or stay frozen (evaluation).
        """
        required = ("norm_obs", "norm_reward", "clip_obs", "clip_reward", "gamma", "epsilon",
                    "obs_rms", "ret_rms")
        for key in required:
            if key not in state:
                raise ConfigError(
                    f"VecNormalize state is missing '{key}'; expected keys: {', '.join(required)}"
                )
        if "obs_shape" in state and tuple(state["obs_shape"]) != self.obs_shape:
            raise ConfigError(
                f"VecNormalize state is for observation shape {tuple(state['obs_shape'])} "
                f"but this environment has shape {self.obs_shape}"
            )
        self.obs_rms.load_state_dict(state["obs_rms"])
        self.ret_rms.load_state_dict(state["ret_rms"])
        self.norm_obs = bool(state["norm_obs"])
        self.norm_reward = bool(state["norm_reward"])
        self.clip_obs = float(state["clip_obs"])
        self.clip_reward = float(state["clip_reward"])
        self.gamma = float(state["gamma"])
        self.epsilon = float(state["epsilon"])
