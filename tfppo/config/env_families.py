"""Which env family an id belongs to, from the id alone: Atari (ALE) and MinAtar.

Both the env lookup (`tfppo.envs.families`: which package registers the id, which wrappers the env
gets) and the tuned defaults (`tfppo.config.zoo`) ask this before any env package is imported, so the
answer comes from the id's spelling, not from gymnasium's registry.
"""
from __future__ import annotations

ATARI = "atari"
MINATAR = "minatar"


def env_family(env_id: str) -> str | None:
    """``"atari"`` for ``ALE/<Game>-v5`` and Baselines' ``<Game>NoFrameskip-v4``, ``"minatar"`` for
    ``MinAtar/<Game>-v0/v1``, None for every other id."""
    if env_id.startswith("ALE/") or env_id.endswith("NoFrameskip-v4"):
        return ATARI
    if env_id.startswith("MinAtar/"):
        return MINATAR
    return None
