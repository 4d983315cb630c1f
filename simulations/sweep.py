"""Grids of runs with an on-disk cache: resumable, atomic, local processes or dask.distributed.

A sweep evaluates ``function(config, seed) -> dict`` (or a list of dicts, one per result row)
on every cell of a grid of configurations.  Each cell is cached in ``cache_dir`` as one JSON
file named by a hash of its full configuration, the function's name and the sweep seed:

- writes are atomic (temporary file, then rename), so a killed run leaves no corrupt cell;
- a rerun computes only the missing cells (``resume=True``, the default);
- a file that is unreadable, or written for another configuration or function, is reported
  (a warning) and recomputed.

Each cell gets its own integer seed derived from the sweep seed and the cell's configuration
through numpy's SeedSequence, so a cell's result does not depend on which cells ran before
it, on the executor, or on the number of workers: local processes and dask.distributed give
identical tables.

Where finished cells live is a store (:class:`SweepStore`: ``load`` and ``save``); the JSON
folder above (:class:`JsonCellCache`) is the default, and a study that records its runs
elsewhere (``benchmarks/reproduce.py`` appends one row per run to a results CSV) passes its
own.  How cells run is an executor (this process, a process pool, dask); skipping, saving and
progress are one runner shared by all three.
"""
from __future__ import annotations

import contextlib
import hashlib
import itertools
import json
import os
import warnings
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path
from typing import Any, NamedTuple, Protocol

import numpy as np
import pandas as pd

from simulations.files import atomic_write_text
from theory.validation import check_choice, check_int

__all__ = [
    "CACHE_FORMAT",
    "Cell",
    "JsonCellCache",
    "SweepStore",
    "cell_key",
    "cell_seed",
    "expand_grid",
    "run_sweep",
]

CACHE_FORMAT = "hnslab-sweep-cell/1"


def expand_grid(grid: Mapping[str, Iterable] | Iterable[Mapping[str, Any]]) -> list[dict]:
    """A list of configurations: the Cartesian product of a dict of lists, or a list of dicts.

    Examples
    --------
    >>> expand_grid({"m": [1, 5], "n": 200})
    [{'m': 1, 'n': 200}, {'m': 5, 'n': 200}]
    """
    if isinstance(grid, Mapping):
        names = list(grid)
        values = []
        for name in names:
            options = grid[name]
            options = list(options) if isinstance(options, (list, tuple, np.ndarray, range)) else [options]
            if not options:
                raise ValueError(f"grid[{name!r}] is empty; give at least one value")
            values.append(options)
        return [dict(zip(names, combo)) for combo in itertools.product(*values)]
    configs = [dict(c) for c in grid]
    if not configs:
        raise ValueError("grid is empty; give a dict of value lists or a non-empty list of dicts")
    return configs


def _canonical(value):
    """JSON-ready form of a configuration value (numpy scalars -> Python)."""
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, (list, tuple, np.ndarray)):
        return [_canonical(v) for v in value]
    if isinstance(value, Mapping):
        return {str(k): _canonical(v) for k, v in value.items()}
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    raise ValueError(f"configuration values must be JSON-like (numbers, strings, lists); got {type(value).__name__}")


def _function_name(function: Callable) -> str:
    return f"{function.__module__}:{function.__qualname__}"


def cell_key(function: Callable, config: Mapping, seed: int) -> str:
    """Hash naming a cell: the function, the canonical configuration and the sweep seed."""
    text = json.dumps({"function": _function_name(function), "config": _canonical(dict(config)),
                       "seed": int(seed)}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:24]


def cell_seed(config: Mapping, seed: int) -> int:
    """The cell's own seed: SeedSequence(seed) with a spawn key taken from the configuration.

    The same configuration and sweep seed give the same cell seed on any machine and in any
    executor (the key is a hash of the configuration's canonical JSON).

    Examples
    --------
    >>> cell_seed({"m": 1}, 0) == cell_seed({"m": 1}, 0) != cell_seed({"m": 5}, 0)
    True
    """
    digest = hashlib.sha256(json.dumps(_canonical(dict(config)), sort_keys=True).encode()).digest()
    spawn_key = tuple(int.from_bytes(digest[i:i + 4], "little") for i in range(0, 16, 4))
    state = np.random.SeedSequence(int(seed), spawn_key=spawn_key).generate_state(2, np.uint32)
    return int(state[0]) << 31 | int(state[1]) >> 1


class Cell(NamedTuple):
    """One cell of a sweep, as the executors and the stores see it."""

    key: str  #: :func:`cell_key` of the function, the configuration and the sweep seed
    config: dict  #: the configuration (one grid point)
    seed: int  #: the cell's own seed, :func:`cell_seed`


class SweepStore(Protocol):
    """Where a sweep's finished cells live: the runner's resume and its write, in one object.

    :func:`run_sweep` asks ``load(cell)`` for every cell before running anything (``None``:
    run it; a list of rows: done, skip it) and calls ``save(cell, rows)`` in the calling process
    as each cell finishes, so a store never sees concurrent writes.  The default is
    :class:`JsonCellCache`; ``benchmarks/reproduce.py`` appends to a results CSV instead.
    """

    def load(self, cell: Cell) -> list[dict] | None: ...

    def save(self, cell: Cell, rows: list[dict]) -> None: ...


class JsonCellCache:
    """The default :class:`SweepStore`: one JSON file per cell, ``<folder>/<cell key>.json``.

    A file that is unreadable, or written for another cell or function, is reported (a
    RuntimeWarning) and the cell recomputed.  Writes go through
    :func:`simulations.files.atomic_write_text`, so a killed run leaves no corrupt cell.
    """

    def __init__(self, folder: str | os.PathLike, function_name: str, sweep_seed: int):
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.function_name = function_name
        self.sweep_seed = int(sweep_seed)

    def load(self, cell: Cell) -> list[dict] | None:
        path = self.folder / f"{cell.key}.json"
        if not path.exists():
            return None
        try:
            payload = json.loads(path.read_text(encoding="utf-8"))
            ok = (isinstance(payload, dict) and payload.get("format") == CACHE_FORMAT
                  and payload.get("key") == cell.key and payload.get("function") == self.function_name
                  and isinstance(payload.get("rows"), list))
        except (OSError, ValueError, UnicodeDecodeError):
            ok = False
        if not ok:
            warnings.warn(f"sweep cache file {path} is corrupt or belongs to another cell; "
                          "recomputing it", RuntimeWarning, stacklevel=4)
            return None
        return payload["rows"]

    def save(self, cell: Cell, rows: list[dict]) -> None:
        atomic_write_text(self.folder / f"{cell.key}.json", json.dumps({
            "format": CACHE_FORMAT, "key": cell.key, "function": self.function_name,
            "config": _canonical(cell.config), "sweep_seed": self.sweep_seed,
            "cell_seed": cell.seed, "rows": rows}))


def _as_rows(result) -> list[dict]:
    if isinstance(result, pd.DataFrame):
        return [_canonical(r) for r in result.to_dict(orient="records")]
    if isinstance(result, Mapping):
        return [_canonical(dict(result))]
    if isinstance(result, list) and all(isinstance(r, Mapping) for r in result):
        return [_canonical(dict(r)) for r in result]
    raise ValueError("a sweep function must return a dict, a list of dicts or a DataFrame; "
                     f"got {type(result).__name__}")


def _run_cell(function: Callable, config: dict, seed: int) -> list[dict]:
    return _as_rows(function(dict(config), seed))


# Executors: ``execute(function, todo)`` runs the (index, Cell) pairs of ``todo`` and yields
# (index, rows) as each finishes, in any order.  They only compute: skipping, saving and
# progress are the runner's (:func:`_run_cells`).
Executor = Callable[[Callable, list[tuple[int, Cell]]], Iterator[tuple[int, list[dict]]]]


def _serial(function: Callable, todo: list[tuple[int, Cell]]) -> Iterator[tuple[int, list[dict]]]:
    for i, cell in todo:
        yield i, _run_cell(function, cell.config, cell.seed)


def _process_pool(n_workers: int | None) -> Executor:
    def execute(function, todo):
        if len(todo) <= 1:  # not worth starting processes
            yield from _serial(function, todo)
            return
        with ProcessPoolExecutor(max_workers=n_workers) as pool:
            futures = {pool.submit(_run_cell, function, c.config, c.seed): i for i, c in todo}
            for future in as_completed(futures):
                yield futures[future], future.result()
    return execute


def _dask(scheduler: str, timeout: float) -> Executor:
    def execute(function, todo):
        client = _dask_client(scheduler, timeout)
        try:
            from distributed import as_completed as dask_completed
            futures = {client.submit(_run_cell, function, c.config, c.seed, pure=False): i
                       for i, c in todo}
            for future in dask_completed(futures):
                yield futures[future], future.result()
        finally:
            client.close()
    return execute


def _dask_client(scheduler: str, timeout: float):
    try:
        from distributed import Client
    except ImportError as exc:
        raise ValueError("scheduler: dask.distributed is not installed; "
                         "pip install 'hnslab[dask]' (or dask[distributed])") from exc
    try:
        return Client(scheduler, timeout=timeout)
    except (OSError, TimeoutError) as exc:
        raise ValueError(f"scheduler: cannot reach the dask scheduler at {scheduler!r} "
                         f"within {timeout:g} s ({type(exc).__name__}: {exc})") from exc


def _run_cells(function: Callable, cells: list[Cell], store: SweepStore, execute: Executor, *,
               resume: bool, progress: bool) -> dict[int, list[dict]]:
    """The job common to every executor: skip the cells ``store`` holds (``resume``), run the
    others with ``execute``, save each in ``store`` as it finishes, show progress."""
    rows: dict[int, list[dict]] = {}
    for i, cell in enumerate(cells):
        cached = store.load(cell) if resume else None
        if cached is not None:
            rows[i] = cached
    todo = [(i, cell) for i, cell in enumerate(cells) if i not in rows]
    bar = None
    if progress and todo:
        from tqdm import tqdm
        bar = tqdm(total=len(todo), desc="sweep cells", unit="cell")
    try:
        # closing(): an error while saving stops the executor (pool, client) at once.
        with contextlib.closing(execute(function, todo)) as finished:
            for i, result_rows in finished:
                store.save(cells[i], result_rows)
                rows[i] = result_rows
                if bar:
                    bar.update()
    finally:
        if bar:
            bar.close()
    return rows


def run_sweep(function: Callable[[dict, int], Any], grid, *, seed: int = 0,
              cache_dir: str | os.PathLike | None = None, store: SweepStore | None = None,
              resume: bool = True, executor: str = "local", n_workers: int | None = 1,
              scheduler: str | None = None, connect_timeout: float = 10.0,
              progress: bool = False) -> pd.DataFrame:
    """Evaluate ``function(config, cell_seed)`` on every cell of ``grid``, with a disk cache.

    Parameters
    ----------
    function : a module-level callable (so that worker processes can import it) returning a
        dict, a list of dicts or a DataFrame of JSON-like values.
    grid : dict of value lists (Cartesian product) or list of configuration dicts.
    seed : int >= 0, the sweep seed; each cell's seed is ``cell_seed(config, seed)``.
    cache_dir : folder of the cell files (created if needed): the store is
        ``JsonCellCache(cache_dir, ...)``.
    store : instead of ``cache_dir``, any :class:`SweepStore` (``load`` / ``save``); give
        exactly one of the two.
    resume : reuse finished cells (default); False recomputes and saves every cell again.
    executor : "local" (this process for n_workers=1, else a process pool) or "dask".
    n_workers : local processes; None = os.cpu_count().
    scheduler : address of a dask.distributed scheduler (executor="dask"), e.g.
        "tcp://127.0.0.1:8786"; an unreachable one raises ValueError within
        ``connect_timeout`` seconds.

    Returns
    -------
    DataFrame
        One row per result row, in grid order: the configuration's columns, ``seed`` (the
        cell's seed), then the function's columns.

    Examples
    --------
    >>> import tempfile
    >>> def square(config, seed):
    ...     return {"y": config["x"] ** 2}
    >>> folder = tempfile.mkdtemp()
    >>> run_sweep(square, {"x": [1, 2, 3]}, cache_dir=folder)[["x", "y"]].values.tolist()
    [[1, 1], [2, 4], [3, 9]]
    >>> len(run_sweep(square, {"x": [1, 2, 3, 4]}, cache_dir=folder))  # computes only x = 4
    4
    """
    if not callable(function):
        raise ValueError("function must be callable")
    seed = check_int(seed, "seed", low=0)
    check_choice(executor, "executor", ("local", "dask"))
    if executor == "dask" and not scheduler:
        raise ValueError("scheduler: executor='dask' needs a scheduler address")
    if n_workers is not None:
        n_workers = check_int(n_workers, "n_workers", low=1)
    if (cache_dir is None) == (store is None):
        raise ValueError("cache_dir, store: give exactly one (a folder for JSON cells, or a "
                         "store with load and save)")
    configs = expand_grid(grid)
    if store is None:
        store = JsonCellCache(cache_dir, _function_name(function), seed)
    cells = [Cell(cell_key(function, c, seed), c, cell_seed(c, seed)) for c in configs]
    if executor == "dask":
        execute = _dask(scheduler, connect_timeout)
    else:
        execute = _serial if n_workers == 1 else _process_pool(n_workers)
    rows = _run_cells(function, cells, store, execute, resume=resume, progress=progress)
    return pd.DataFrame.from_records([{**_canonical(cell.config), "seed": cell.seed, **row}
                                      for i, cell in enumerate(cells) for row in rows[i]])

