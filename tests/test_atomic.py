"""tfppo.util.atomic: a write replaces the whole file or leaves the old one, and leaves no temp file behind."""
from __future__ import annotations

import json
import os
import stat

import pytest

from tfppo.util.atomic import replacing, write_json, write_text


def test_write_replaces_the_file_and_leaves_nothing_else(tmp_path):
    target = tmp_path / "REPORT.md"
    write_text(target, "old")
    write_text(target, "new")
    assert target.read_text() == "new"
    assert [p.name for p in tmp_path.iterdir()] == ["REPORT.md"]
    write_json(tmp_path / "s.json", {"b": 1, "a": float("nan")})
    assert json.loads((tmp_path / "s.json").read_text().replace("NaN", "null")) == {"a": None, "b": 1}


def test_a_failed_write_keeps_the_old_file(tmp_path):
    target = tmp_path / "summary.json"
    write_text(target, "complete")
    with pytest.raises(RuntimeError):
        with replacing(target) as tmp:
            tmp.write_text("half of the new cont")
            raise RuntimeError("disk full")
    assert target.read_text() == "complete"
    assert [p.name for p in tmp_path.iterdir()] == ["summary.json"]


def test_the_temp_name_keeps_the_suffix_so_matplotlib_picks_the_format(tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig = plt.figure()
    for suffix in (".svg", ".png"):
        with replacing(tmp_path / f"fig{suffix}") as tmp:
            assert tmp.suffix == suffix and tmp.name.startswith(".")
            fig.savefig(tmp)
    plt.close(fig)
    assert (tmp_path / "fig.svg").read_bytes().lstrip().startswith(b"<?xml")
    assert (tmp_path / "fig.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_a_new_file_gets_the_usual_permissions_not_a_private_temp_files(tmp_path):
    write_text(tmp_path / "runs.csv", "a\n")
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE((tmp_path / "runs.csv").stat().st_mode) == 0o666 & ~umask
