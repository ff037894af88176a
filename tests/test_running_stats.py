"""RunningMeanStd against hand formulas (spec §5.4): prior merge, serialisation, MPI pooling."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from tfppo.util.errors import ConfigError
from tfppo.util.running_stats import RunningMeanStd

PRIOR_COUNT = 1e-4
REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def expected_with_prior(data: np.ndarray, prior_count: float = PRIOR_COUNT):
    """Hand formula: pool the prior pseudo-group (mean 0, var 1, count c) with the data.

    With n rows of mean m and ddof-0 variance v, and N = n + c:
        mean = n * m / N
        var  = (c * 1 + n * v + m**2 * c * n / N) / N
    """
    n = data.shape[0]
    m = np.mean(data, axis=0)
    v = np.var(data, axis=0)
    total = n + prior_count
    mean = n * m / total
    var = (prior_count * 1.0 + n * v + m**2 * prior_count * n / total) / total
    return mean, var, total


def test_initial_state_is_the_vecnormalize_prior():
    rms = RunningMeanStd(shape=(2,))
    np.testing.assert_array_equal(rms.mean, [0.0, 0.0])
    np.testing.assert_array_equal(rms.var, [1.0, 1.0])
    assert rms.count == pytest.approx(1e-4)
    assert rms.mean.dtype == np.float64


def test_chunked_updates_equal_concatenation_with_prior():
    rng = np.random.default_rng(0)
    chunks = [rng.normal(3.0, 2.0, size=(n, 3)) for n in (1, 7, 20, 4)]
    rms = RunningMeanStd(shape=(3,))
    for chunk in chunks:
        rms.update(chunk)
    mean, var, count = expected_with_prior(np.concatenate(chunks))
    np.testing.assert_allclose(rms.mean, mean, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(rms.var, var, rtol=1e-10)
    assert rms.count == pytest.approx(count, rel=1e-12)


def test_scalar_shape_small_numbers_by_hand():
    # data [1, 3]: mean 2, var 1, n 2; N = 2.0001
    rms = RunningMeanStd()
    rms.update(np.array([1.0, 3.0]))
    total = 2.0001
    assert float(rms.mean) == pytest.approx(4.0 / total, rel=1e-12)
    assert float(rms.var) == pytest.approx((1e-4 + 2.0 + 4.0 * 1e-4 * 2 / total) / total, rel=1e-12)
    assert rms.count == pytest.approx(total)


def test_update_from_moments_matches_update():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(10, 2))
    a, b = RunningMeanStd(shape=(2,)), RunningMeanStd(shape=(2,))
    a.update(x)
    b.update_from_moments(x.mean(axis=0), x.var(axis=0), 10)
    np.testing.assert_allclose(a.mean, b.mean)
    np.testing.assert_allclose(a.var, b.var)
    assert a.count == b.count


def test_one_row_at_a_time_is_bit_identical_to_numpys_moments():
    """The one-env fast path (every step under VecNormalize with one env) must not move a single bit."""
    rng = np.random.default_rng(2)
    for shape in ((), (11,), (2, 3)):
        fast, general = RunningMeanStd(shape=shape), RunningMeanStd(shape=shape)
        for _ in range(200):
            row = rng.normal(5.0, 3.0, size=(1, *shape))
            fast.update(row)
            general.update_from_moments(row.mean(axis=0), row.var(axis=0), 1)
        np.testing.assert_array_equal(fast.mean, general.mean)
        np.testing.assert_array_equal(fast.var, general.var)
        assert fast.count == general.count


def test_empty_batch_is_a_no_op():
    rms = RunningMeanStd(shape=(2,))
    rms.update(np.zeros((0, 2)))
    assert rms.count == pytest.approx(1e-4)
    np.testing.assert_array_equal(rms.var, [1.0, 1.0])


def test_update_rejects_wrong_batch_shape():
    rms = RunningMeanStd(shape=(3,))
    with pytest.raises(ValueError):
        rms.update(np.zeros((4, 2)))


def test_state_round_trip_through_json():
    rng = np.random.default_rng(2)
    rms = RunningMeanStd(shape=(2, 2))
    rms.update(rng.normal(size=(5, 2, 2)))
    state = json.loads(json.dumps(rms.state_dict()))
    other = RunningMeanStd(shape=(2, 2))
    other.load_state_dict(state)
    np.testing.assert_array_equal(other.mean, rms.mean)
    np.testing.assert_array_equal(other.var, rms.var)
    assert other.count == rms.count
    # continuing both gives identical statistics
    more = rng.normal(size=(3, 2, 2))
    rms.update(more)
    other.update(more)
    np.testing.assert_array_equal(other.mean, rms.mean)
    np.testing.assert_array_equal(other.var, rms.var)


def test_scalar_state_round_trip():
    rms = RunningMeanStd()
    rms.update(np.array([0.5, 1.5, 4.0]))
    other = RunningMeanStd()
    other.load_state_dict(json.loads(json.dumps(rms.state_dict())))
    assert float(other.mean) == float(rms.mean)
    assert float(other.var) == float(rms.var)


def test_shape_mismatch_is_config_error():
    state = RunningMeanStd(shape=(3,)).state_dict()
    with pytest.raises(ConfigError) as info:
        RunningMeanStd(shape=(4,)).load_state_dict(state)
    assert "\n" not in str(info.value)
    assert "(3,)" in str(info.value) and "(4,)" in str(info.value)


def test_missing_key_is_config_error():
    state = RunningMeanStd(shape=(3,)).state_dict()
    del state["var"]
    with pytest.raises(ConfigError, match="var"):
        RunningMeanStd(shape=(3,)).load_state_dict(state)


def test_update_mpi_without_comm_equals_update():
    rng = np.random.default_rng(3)
    chunks = [rng.normal(size=(n, 4)) for n in (3, 9)]
    a, b = RunningMeanStd(shape=(4,)), RunningMeanStd(shape=(4,))
    for chunk in chunks:
        a.update(chunk)
        b.update_mpi(chunk, None)
    np.testing.assert_array_equal(a.mean, b.mean)
    np.testing.assert_array_equal(a.var, b.var)
    assert a.count == b.count


_MPI_SCRIPT = textwrap.dedent(
    """
    import json
    import numpy as np
    from mpi4py import MPI
    from tfppo.util.running_stats import RunningMeanStd

    comm = MPI.COMM_WORLD
    rank = comm.Get_rank()
    rms = RunningMeanStd(shape=(3,))
    for step, rows in enumerate(((4, 6), (2, 5))):  # ranks hold different amounts of data
        x = np.random.default_rng(100 * step + rank).normal(rank + 1.0, 2.0, size=(rows[rank], 3))
        rms.update_mpi(x, comm)
    states = comm.gather({"rank": rank, **rms.state_dict()}, root=0)
    if rank == 0:  # one writer: concurrent prints from two ranks can interleave
        print(json.dumps(states), flush=True)
    """
)


@pytest.mark.mpi
def test_update_mpi_pools_two_ranks(tmp_path):
    mpirun = shutil.which("mpirun", path=os.path.dirname(sys.executable))
    if mpirun is None:
        pytest.skip("mpirun not found next to the Python interpreter")
    script = tmp_path / "pool.py"
    script.write_text(_MPI_SCRIPT)
    env = dict(os.environ, PYTHONPATH=REPO_ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    proc = subprocess.run(
        [mpirun, "-n", "2", sys.executable, str(script)],
        capture_output=True, text=True, timeout=60, env=env, cwd=REPO_ROOT,
    )
    assert proc.returncode == 0, proc.stderr
    lines = [line for line in proc.stdout.splitlines() if line.startswith("[")]
    assert len(lines) == 1, proc.stdout
    results = json.loads(lines[0])
    assert sorted(r["rank"] for r in results) == [0, 1]

    # the same data, generated here and concatenated in any order
    data = []
    for step, rows in enumerate(((4, 6), (2, 5))):
        for rank in (0, 1):
            rng = np.random.default_rng(100 * step + rank)
            data.append(rng.normal(rank + 1.0, 2.0, size=(rows[rank], 3)))
    mean, var, count = expected_with_prior(np.concatenate(data))
    for result in results:
        np.testing.assert_allclose(result["mean"], mean, rtol=1e-10)
        np.testing.assert_allclose(result["var"], var, rtol=1e-10)
        assert result["count"] == pytest.approx(count, rel=1e-12)
