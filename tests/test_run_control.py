"""Periodic checkpoints in process: interrupted writes, pruning, newest-complete resolution."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import tfppo
from tfppo.training import checkpoint
from tfppo.training.run_control import checkpoint_name, prune

SMALL = dict(num_envs=1, n_steps=32, nminibatches=1, noptepochs=1, seed=0)


def _agent(**kw):
    return tfppo.PPO2("CartPole-v1", verbose=0, **{**SMALL, **kw})


def _fake_ckpt(run_dir: Path, steps: int) -> Path:
    path = run_dir / checkpoint_name(steps)
    path.mkdir(parents=True)
    (path / checkpoint.AGENT).write_text("{}")
    return path


def test_prune_keeps_the_newest_complete_and_ignores_temporaries(tmp_path):
    for steps in (100, 200, 300, 1000):
        _fake_ckpt(tmp_path, steps)
    (tmp_path / ".ckpt-000000002000.tmp-abc").mkdir()  # a write in progress (or killed mid-way)
    (tmp_path / "ckpt-000000003000").mkdir()  # no agent.json: not complete
    prune(tmp_path, 2)
    assert [p.name for p in checkpoint.periodic_dirs(tmp_path)] == [checkpoint_name(300), checkpoint_name(1000)]
    assert checkpoint.latest(tmp_path) == tmp_path / checkpoint_name(1000)  # numeric, not lexical, order


def test_periodic_checkpoints_every_save_freq_steps_keeping_the_last_two(tmp_path):
    agent = _agent()
    agent.learn(32 * 7, save_path=tmp_path, save_freq=64)
    agent.close()
    # boundaries at 64, 128, 192 steps and the final one at 224; the newest two remain
    assert [p.name for p in checkpoint.periodic_dirs(tmp_path)] == [checkpoint_name(192), checkpoint_name(224)]
    final = checkpoint.read_meta(tmp_path / checkpoint_name(224))
    assert final["run"]["complete"] is True and final["counters"]["n_updates"] == 7
    assert checkpoint.read_meta(tmp_path / checkpoint_name(192))["run"]["complete"] is False
    assert tfppo.load(tmp_path, verbose=0).num_timesteps == 224  # the run directory loads its newest


def test_a_write_interrupted_between_files_leaves_the_previous_checkpoint_loadable(tmp_path, monkeypatch):
    agent = _agent()
    agent.learn(64, save_path=tmp_path, save_freq=0)
    agent.close()
    good = checkpoint.latest(tmp_path)
    weights = [w.copy() for w in agent.model.get_weights()]

    def crash(*args, **kwargs):  # weights are written, then the "machine dies" before the optimizer file
        raise OSError("simulated crash between files")

    monkeypatch.setattr(checkpoint.np, "savez", crash)
    with pytest.raises(OSError, match="simulated crash"):
        agent.save(tmp_path / checkpoint_name(999))
    monkeypatch.undo()
    assert checkpoint.periodic_dirs(tmp_path) == [good]
    # a process killed mid-write leaves its temporary behind: still ignored
    partial = tmp_path / f".{checkpoint_name(999)}.tmp-killed"
    partial.mkdir()
    (partial / checkpoint.WEIGHTS).write_bytes(b"half a file")
    loaded = tfppo.load(tmp_path, verbose=0)
    for a, b in zip(loaded.model.get_weights(), weights):
        np.testing.assert_array_equal(a, b)


def test_resume_of_an_unfinished_checkpoint_keeps_its_budget(tmp_path):
    agent = _agent()
    agent.learn(32 * 6, save_path=tmp_path, save_freq=64, keep_checkpoints=10)
    agent.close()
    meta_path = tmp_path / checkpoint_name(128) / checkpoint.AGENT
    meta = json.loads(meta_path.read_text())
    counted = meta["run"].pop("counted")  # steps of the episodes completed so far (row 10's counter)
    assert 0 < counted <= 128
    assert meta["run"] == {"total_timesteps": 192, "updates_before": 0, "start_timesteps": 0, "rows": 4,
                           "complete": False}
    resumed = tfppo.load(tmp_path / checkpoint_name(128), verbose=0)
    resumed.learn(10_000)  # the interrupted run's own budget (192) wins: 2 more updates, not 10000 steps
    resumed.close()
    assert resumed.num_timesteps == 192 and resumed.n_updates == 6
