"""Which `Semantics` switches can act on a run, given its spaces and config.

Some switches only exist for some runs: action clipping needs Box actions (row 18), Baselines'
``_matching_fc`` needs a latent as wide as the action parameters (spec §5.3), the VecNormalize reset
rule needs VecNormalize (spec §5.4), and PPO2 reads its timestep counter only through annealed
schedules (row 10). Two records that differ only in switches idle for a run make the same computation
bit for bit, so a comparison suite skips an ablation whose switch is idle on an env and says so,
instead of spending a run on repeating its base. NumPy + gymnasium only (no TF), so the runner can
decide before it starts anything.
"""
from __future__ import annotations

from gymnasium import spaces

from tfppo.config.hyperparameters import NetworkConfig, PPO1Config, PPO2Config
from tfppo.envs.spaces import image_trunk, is_image_space
from tfppo.config.semantics import Semantics

NATURE_CNN_LATENT = 512  # the Nature CNN's fc width (spec §5.3)
SMALL_CNN_LATENT = 128  # the MinAtar network's fc width (Young & Tian 2019)


def tower_output_size(observation_space: spaces.Space, network: NetworkConfig) -> int:
    """Width of the latent the policy and value heads read: the MLP's last hidden layer, or the CNN's fc."""
    if not is_image_space(observation_space):
        return network.hidden_sizes[-1]
    return NATURE_CNN_LATENT if image_trunk(observation_space) == "nature" else SMALL_CNN_LATENT


def idle_switches(semantics: Semantics, observation_space: spaces.Space, action_space: spaces.Space,
                  config: PPO1Config | PPO2Config) -> frozenset[str]:
    """The fields of ``semantics`` that no step of a run with this config reads."""
    idle = set()
    if not isinstance(action_space, spaces.Box):
        idle.add("clip_actions")  # row 18: only Box actions are clipped; others go to the env as sampled
    # spec §5.3: the head is dropped only when the latent already has the head's size; flatdim is that
    # size for all four action distributions (Box mean, Discrete/MultiDiscrete logits, MultiBinary logits)
    if tower_output_size(observation_space, config.network) != spaces.flatdim(action_space):
        idle.add("matching_fc")
    if getattr(config, "recurrent", False):
        # the recurrent policy (tfppo.core.recurrent) always shares its LSTM, always has both heads and is
        # always orthogonally initialised, as both originals' recurrent policies
        idle.update(("shared_towers", "matching_fc", "init"))
    if semantics.obs_norm != "env" and not semantics.reward_norm:
        idle.add("vecnorm_reset")  # spec §5.4: a rule of VecNormalize, absent here
    # row 10: PPO1's counter ends the run; PPO2 runs whole updates and reads it only as schedule progress
    if isinstance(config, PPO2Config) and not any(
            getattr(config, name) is not None and getattr(config, name).linear for name in config.SCHEDULE_FIELDS):
        idle.add("timestep_counting")
    return frozenset(idle)


def same_computation(a: Semantics, b: Semantics, observation_space: spaces.Space, action_space: spaces.Space,
                     config: PPO1Config | PPO2Config) -> bool:
    """True when ``a`` and ``b`` differ only in switches idle under both."""
    idle = idle_switches(a, observation_space, action_space, config) & \
        idle_switches(b, observation_space, action_space, config)
    return all(getattr(a, name) == getattr(b, name) for name in Semantics.field_names() if name not in idle)
