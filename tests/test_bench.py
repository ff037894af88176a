"""scripts/bench.py's arithmetic and its bad-input handling (never its timings: those are benchmarks)."""
from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("bench_script", ROOT / "scripts" / "bench.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["bench_script"] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    yield module
    sys.modules.pop("bench_script", None)


def test_paired_ratio_is_the_median_of_per_pair_ratios(bench):
    # pairs: 10/5 = 2, 4/1 = 4, 6/6 = 1 -> median 2; the ratio of the medians would be 6/5 = 1.2
    assert bench.paired_ratio([10.0, 4.0, 6.0], [5.0, 1.0, 6.0]) == 2.0
    assert bench.paired_ratio([3.0, 9.0], [1.0, 1.0]) == 6.0  # even count: mean of the middle two (3, 9)
    with pytest.raises(ValueError):
        bench.paired_ratio([1.0], [1.0, 2.0])
    with pytest.raises(ValueError):
        bench.paired_ratio([], [])


def test_speed_table_rows_and_ratio(bench):
    runs = lambda sps: [dict(steps_per_s=s, rollout_s=0.1, update_s=0.2, first_update_s=1.0 + (i == 0) * 3,
                             peak_rss_mb=300.0) for i, s in enumerate(sps)]
    rows = [bench.Row("cartpole-8x256", "ppo2", runs([600.0, 500.0, 900.0])),
            bench.Row("cartpole-8x256", "sb3", runs([100.0, 250.0, 100.0]))]
    lines = bench.speed_table(rows, have_sb3=True).splitlines()
    assert lines[0].startswith("| config | implementation | env-steps/s (median) | × SB3")
    assert len(lines) == 4
    cells = [c.strip() for c in lines[2].strip("|").split("|")]
    assert cells[:4] == ["cartpole-8x256", "tfppo PPO2", "600", "**6.0×**"]  # pairs 6, 2, 9 -> 6
    assert cells[6] == "4.00 / 1.00"  # the first run's first update (cold XLA cache), then the later runs' median
    assert [c.strip() for c in lines[3].strip("|").split("|")][3] == "—"
    # without SB3 there is no ratio column value
    alone = bench.speed_table(rows[:1], have_sb3=False).splitlines()[2]
    assert [c.strip() for c in alone.strip("|").split("|")][3] == "—"


@pytest.mark.parametrize("args, needle", [(["--configs", "nope"], "'nope'"), (["--repeats", "0"], "--repeats")])
def test_bad_flags_one_line_exit_2(args, needle):
    proc = subprocess.run([sys.executable, str(ROOT / "scripts" / "bench.py"), *args], capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1 and proc.stderr.startswith("bench.py: error:") and needle in proc.stderr
