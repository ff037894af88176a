"""Shared test set-up: quiet TensorFlow, the repository root, a subprocess environment."""
from __future__ import annotations

import os
from pathlib import Path

# Must be set before TensorFlow is first imported anywhere in the session.
os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"

import pytest  # noqa: E402

REPO_ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def _quiet_tensorflow(monkeypatch):
    """Keep TF's C++ logging quiet for anything (including subprocesses) started by a test."""
    monkeypatch.setenv("TF_CPP_MIN_LOG_LEVEL", "3")


@pytest.fixture
def repo_root() -> Path:
    return REPO_ROOT


@pytest.fixture
def subprocess_env() -> dict[str, str]:
    """Environment for running the repo's scripts: quiet TF, repo importable, deterministic hashing."""
    env = dict(os.environ)
    env["TF_CPP_MIN_LOG_LEVEL"] = "3"
    env["PYTHONHASHSEED"] = "0"
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO_ROOT), env.get("PYTHONPATH", "")) if p)
    env.pop("PYTHONSTARTUP", None)
    return env
