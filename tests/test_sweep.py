"""Sweeps: cache keys, atomic cells, resume after a kill, corrupt files, local vs dask."""
import json
import os
import signal
import subprocess
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from simulations.sweep import cell_key, cell_seed, expand_grid, run_sweep

sys.path.insert(0, str(Path(__file__).parent))
import sweep_cells

GRID = {"mu": [0.0, 1.0, 2.5], "sigma": [1.0, 3.0]}


def test_expand_grid_product_and_list():
    configs = expand_grid(GRID)
    assert len(configs) == 6 and configs[0] == {"mu": 0.0, "sigma": 1.0}
    assert expand_grid([{"a": 1}, {"a": 2}]) == [{"a": 1}, {"a": 2}]
    with pytest.raises(ValueError, match="grid"):
        expand_grid({"mu": []})
    with pytest.raises(ValueError, match="grid"):
        expand_grid([])


def test_cell_seed_depends_on_config_and_seed_only():
    a = cell_seed({"mu": 1.0, "sigma": 2.0}, 0)
    assert a == cell_seed({"sigma": 2.0, "mu": 1.0}, 0)  # key order irrelevant
    assert a == cell_seed({"mu": np.float64(1.0), "sigma": 2.0}, 0)  # numpy scalars canonical
    assert a != cell_seed({"mu": 1.0, "sigma": 2.0}, 1)
    assert a != cell_seed({"mu": 1.5, "sigma": 2.0}, 0)
    assert cell_key(sweep_cells.noisy_mean, {"mu": 1}, 0) != cell_key(sweep_cells.two_rows, {"mu": 1}, 0)


def test_results_match_direct_calls_and_cache_is_reused(tmp_path):
    table = run_sweep(sweep_cells.noisy_mean, GRID, seed=3, cache_dir=tmp_path)
    assert list(table.columns) == ["mu", "sigma", "seed", "mean", "sd"]
    for row in table.itertuples():
        direct = sweep_cells.noisy_mean({"mu": row.mu, "sigma": row.sigma}, row.seed)
        assert direct == {"mean": row.mean, "sd": row.sd}
    # Sample means are near mu: 1000 draws, SE = sigma / 31.6 <= 0.095; 5 SE = 0.48.
    assert np.all(np.abs(table["mean"] - table["mu"]) < 5 * table["sigma"] / np.sqrt(1000))
    files = sorted(tmp_path.glob("*.json"))
    assert len(files) == 6
    stamps = [f.stat().st_mtime_ns for f in files]
    again = run_sweep(sweep_cells.noisy_mean, GRID, seed=3, cache_dir=tmp_path)
    pd.testing.assert_frame_equal(table, again)
    assert [f.stat().st_mtime_ns for f in files] == stamps  # nothing recomputed


def test_list_of_rows_results(tmp_path):
    table = run_sweep(sweep_cells.two_rows, {"x": [10, 20]}, cache_dir=tmp_path)
    assert list(table["part"]) == ["a", "b", "a", "b"]
    assert np.all((table["value"] >= table["x"]) & (table["value"] < table["x"] + 1))


def test_corrupt_and_foreign_cells_are_reported_and_recomputed(tmp_path):
    clean = run_sweep(sweep_cells.noisy_mean, GRID, cache_dir=tmp_path / "clean")
    cache = tmp_path / "cache"
    run_sweep(sweep_cells.noisy_mean, GRID, cache_dir=cache)
    files = sorted(cache.glob("*.json"))
    files[0].write_text('{"format": "hnslab-sweep-cell/1", "key": "tru')  # truncated JSON
    payload = json.loads(files[1].read_text())
    payload["key"] = "someone-else"
    files[1].write_text(json.dumps(payload))  # a foreign cell under this name
    with pytest.warns(RuntimeWarning, match="corrupt or belongs to another cell") as record:
        table = run_sweep(sweep_cells.noisy_mean, GRID, cache_dir=cache)
    assert len(record) == 2
    pd.testing.assert_frame_equal(table, clean)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        run_sweep(sweep_cells.noisy_mean, GRID, cache_dir=cache)  # repaired: no warning


def test_killed_sweep_resumes_to_the_same_table(tmp_path):
    reference = run_sweep(sweep_cells.noisy_mean, GRID, seed=7, cache_dir=tmp_path / "ref")
    cache = tmp_path / "killed"
    code = (f"import sys; sys.path.insert(0, {str(Path(__file__).parent)!r})\n"
            "import sweep_cells\nfrom simulations.sweep import run_sweep\n"
            f"run_sweep(sweep_cells.slow_mean, {GRID!r}, seed=7, cache_dir={str(cache)!r})\n")
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[1]))
    proc = subprocess.Popen([sys.executable, "-c", code], env=env)
    deadline = time.monotonic() + 60
    while len(list(cache.glob("*.json"))) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    done = list(cache.glob("*.json"))
    assert 2 <= len(done) < 6, "the kill should land midway"
    for f in done:  # every finished cell is complete JSON
        json.loads(f.read_text())
    # slow_mean and noisy_mean differ only in speed, but cells are keyed by function name:
    resumed = run_sweep(sweep_cells.slow_mean, GRID, seed=7, cache_dir=cache)
    pd.testing.assert_frame_equal(resumed, reference)
    assert len(list(cache.glob("*.json"))) == 6
    assert not list(cache.glob(".*.tmp")), "no temporary file left behind"


class DictStore:
    """A SweepStore in memory: what run_sweep loads and saves, recorded."""

    def __init__(self, done=None):
        self.cells, self.saved = dict(done or {}), []

    def load(self, cell):
        return self.cells.get(cell.key)

    def save(self, cell, rows):
        self.cells[cell.key] = rows
        self.saved.append(cell.config)


def test_a_store_replaces_the_cache_folder(tmp_path):
    """store= gets every finished cell (serial: in grid order) and decides what is done: a
    cell it holds is not run and its rows are used as given."""
    reference = run_sweep(sweep_cells.noisy_mean, GRID, seed=3, cache_dir=tmp_path)
    store = DictStore()
    pd.testing.assert_frame_equal(run_sweep(sweep_cells.noisy_mean, GRID, seed=3, store=store),
                                  reference)
    assert store.saved == expand_grid(GRID)
    first = cell_key(sweep_cells.noisy_mean, expand_grid(GRID)[0], 3)
    store = DictStore({first: [{"mean": -1.0, "sd": 0.0}]})
    table = run_sweep(sweep_cells.noisy_mean, GRID, seed=3, store=store)
    assert table.loc[0, "mean"] == -1.0 and store.saved == expand_grid(GRID)[1:]
    pd.testing.assert_frame_equal(table.iloc[1:], reference.iloc[1:])
    for both_or_neither in ({"cache_dir": tmp_path, "store": store}, {}):
        with pytest.raises(ValueError, match="cache_dir, store"):
            run_sweep(sweep_cells.noisy_mean, GRID, **both_or_neither)


def test_process_pool_matches_serial(tmp_path):
    serial = run_sweep(sweep_cells.noisy_mean, GRID, cache_dir=tmp_path / "a", n_workers=1)
    pooled = run_sweep(sweep_cells.noisy_mean, GRID, cache_dir=tmp_path / "b", n_workers=2)
    pd.testing.assert_frame_equal(serial, pooled)


def test_dask_matches_local(tmp_path):
    distributed = pytest.importorskip("distributed")
    local = run_sweep(sweep_cells.noisy_mean, GRID, cache_dir=tmp_path / "local")
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  host="127.0.0.1", dashboard_address=None) as cluster:
        remote = run_sweep(sweep_cells.noisy_mean, GRID, cache_dir=tmp_path / "dask",
                           executor="dask", scheduler=cluster.scheduler_address)
    pd.testing.assert_frame_equal(local, remote)


def test_unreachable_scheduler_fails_fast(tmp_path):
    pytest.importorskip("distributed")
    start = time.monotonic()
    with pytest.raises(ValueError, match="scheduler"):
        run_sweep(sweep_cells.noisy_mean, GRID, cache_dir=tmp_path, executor="dask",
                  scheduler="tcp://127.0.0.1:9", connect_timeout=3)
    assert time.monotonic() - start < 10


@pytest.mark.parametrize("kwargs, match", [
    ({"seed": -1}, "seed"), ({"seed": 1.5}, "seed"), ({"executor": "mpi"}, "executor"),
    ({"executor": "dask"}, "scheduler"), ({"n_workers": 0}, "n_workers"),
])
def test_bad_arguments(tmp_path, kwargs, match):
    with pytest.raises(ValueError, match=match):
        run_sweep(sweep_cells.noisy_mean, GRID, cache_dir=tmp_path, **kwargs)


def test_non_json_config_rejected(tmp_path):
    with pytest.raises(ValueError, match="JSON-like"):
        run_sweep(sweep_cells.noisy_mean, {"mu": [object()], "sigma": [1.0]}, cache_dir=tmp_path)
