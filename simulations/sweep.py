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
"""
from __future__ import annotations

import hashlib
import itertools
import json
import os
import tempfile
import warnings
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping

import numpy as np
import pandas as pd

__all__ = ["expand_grid", "cell_key", "cell_seed", "run_sweep", "CACHE_FORMAT"]

CACHE_FORMAT = "hnslab-sweep-cell/1"


def expand_grid(grid: Mapping[str, Iterable] | Iterable[Mapping[str, Any]]) -> list[dict]:
    """A list of configurations: the Cartesian product of a dict of lists, or a list of dicts."""
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
    """The cell's own seed: SeedSequence(seed) with a spawn key taken from the configuration."""
    digest = hashlib.sha256(json.dumps(_canonical(dict(config)), sort_keys=True).encode()).digest()
    spawn_key = tuple(int.from_bytes(digest[i:i + 4], "little") for i in range(0, 16, 4))
    state = np.random.SeedSequence(int(seed), spawn_key=spawn_key).generate_state(2, np.uint32)
    return int(state[0]) << 31 | int(state[1]) >> 1


def _write_atomic(path: Path, payload: dict) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(payload, handle)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _read_cell(path: Path, key: str, function_name: str):
    """The cached rows, or None (missing); warns and returns None for a corrupt/foreign file."""
    if not path.exists():
        return None
    try:
        payload = json.loads(path.read_text(encoding="utf-8"))
        ok = (isinstance(payload, dict) and payload.get("format") == CACHE_FORMAT
              and payload.get("key") == key and payload.get("function") == function_name
              and isinstance(payload.get("rows"), list))
    except (OSError, ValueError, UnicodeDecodeError):
        ok = False
    if not ok:
        warnings.warn(f"sweep cache file {path} is corrupt or belongs to another cell; recomputing it",
                      RuntimeWarning, stacklevel=3)
        return None
    return payload["rows"]


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


def run_sweep(function: Callable[[dict, int], Any], grid, *, seed: int = 0,
              cache_dir: str | os.PathLike, resume: bool = True, executor: str = "local",
              n_workers: int | None = 1, scheduler: str | None = None,
              connect_timeout: float = 10.0, progress: bool = False) -> pd.DataFrame:
    """Evaluate ``function(config, cell_seed)`` on every cell of ``grid``, with a disk cache.

    Parameters
    ----------
    function : a module-level callable (so that worker processes can import it) returning a
        dict, a list of dicts or a DataFrame of JSON-like values.
    grid : dict of value lists (Cartesian product) or list of configuration dicts.
    seed : int >= 0, the sweep seed; each cell's seed is ``cell_seed(config, seed)``.
    cache_dir : folder of the cell files (created if needed).
    resume : reuse finished cells (default); False recomputes and overwrites every cell.
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
    """
    if not callable(function):
        raise ValueError("function must be callable")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be an integer >= 0; got {seed!r}")
    if executor not in ("local", "dask"):
        raise ValueError(f"executor must be 'local' or 'dask'; got {executor!r}")
    if executor == "dask" and not scheduler:
        raise ValueError("scheduler: executor='dask' needs a scheduler address")
    if n_workers is not None and (not isinstance(n_workers, int) or n_workers < 1):
        raise ValueError(f"n_workers must be an integer >= 1 or None; got {n_workers!r}")
    configs = expand_grid(grid)
    cache = Path(cache_dir)
    cache.mkdir(parents=True, exist_ok=True)
    name = _function_name(function)
    keys = [cell_key(function, c, seed) for c in configs]
    seeds = [cell_seed(c, seed) for c in configs]
    rows: dict[int, list[dict]] = {}
    for i, key in enumerate(keys):
        cached = _read_cell(cache / f"{key}.json", key, name) if resume else None
        if cached is not None:
            rows[i] = cached
    todo = [i for i in range(len(configs)) if i not in rows]

    def store(i: int, result_rows: list[dict]) -> None:
        _write_atomic(cache / f"{keys[i]}.json", {
            "format": CACHE_FORMAT, "key": keys[i], "function": name,
            "config": _canonical(configs[i]), "sweep_seed": int(seed), "cell_seed": seeds[i],
            "rows": result_rows})
        rows[i] = result_rows

    bar = None
    if progress and todo:
        from tqdm import tqdm
        bar = tqdm(total=len(todo), desc="sweep cells", unit="cell")
    try:
        if executor == "dask":
            client = _dask_client(scheduler, connect_timeout)
            try:
                from distributed import as_completed as dask_completed
                futures = {client.submit(_run_cell, function, configs[i], seeds[i], pure=False): i
                           for i in todo}
                for future in dask_completed(futures):
                    store(futures[future], future.result())
                    if bar:
                        bar.update()
            finally:
                client.close()
        elif n_workers == 1 or len(todo) <= 1:
            for i in todo:
                store(i, _run_cell(function, configs[i], seeds[i]))
                if bar:
                    bar.update()
        else:
            with ProcessPoolExecutor(max_workers=n_workers) as pool:
                futures = {pool.submit(_run_cell, function, configs[i], seeds[i]): i for i in todo}
                for future in as_completed(futures):
                    store(futures[future], future.result())
                    if bar:
                        bar.update()
    finally:
        if bar:
            bar.close()

    records = []
    for i, config in enumerate(configs):
        for row in rows[i]:
            records.append({**_canonical(config), "seed": seeds[i], **row})
    return pd.DataFrame.from_records(records)
