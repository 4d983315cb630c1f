"""Committed result tables: one CSV per study under ``results/``, one row per finished run.

Every number the README quotes about trained models comes from these files (the README's
tables are generated from them by ``python -m figures.tables``, and a test checks that they
agree).  A long study appends one row per finished configuration, so an interrupted study
loses at most the run in progress and resumes by skipping the configurations already present
(:func:`has_run`).

Columns (:data:`RESULT_COLUMNS`): the configuration (data set, model, sampler and its
parameters, weight decay, seed, epochs), the held-out metrics of the final evaluation, the
training time per epoch (evaluation excluded) and the evaluation time, the git revision of the
code that produced the row, and when it finished (UTC).
"""
from __future__ import annotations

import datetime as _dt
import math
import os
import subprocess
from pathlib import Path

import pandas as pd

from simulations.files import atomic_write_text, folder_lock

__all__ = [
    "METRIC_COLUMNS",
    "REPOSITORY_ROOT",
    "RESULTS_DIR",
    "RESULT_COLUMNS",
    "RUN_KEY",
    "append_result",
    "append_rows",
    "git_revision",
    "has_run",
    "read_results",
    "result_row",
]

REPOSITORY_ROOT = Path(__file__).resolve().parents[1]
RESULTS_DIR = REPOSITORY_ROOT / "results"

METRIC_COLUMNS = ("recall@5", "recall@20", "recall@50", "ndcg@5", "ndcg@20", "ndcg@50")
RESULT_COLUMNS = ("dataset", "model", "sampler", "sampler_label", "m", "n", "rho", "ddof",
                  "pool", "weight_decay", "seed", "epochs", "dim", "batch_size", "lr",
                  *METRIC_COLUMNS, "seconds_per_epoch", "eval_seconds", "git_revision",
                  "finished_utc")
# A run is identified by these columns: a second row with the same key is refused.
RUN_KEY = ("dataset", "model", "sampler_label", "weight_decay", "seed", "epochs")


def git_revision(root: str | os.PathLike = REPOSITORY_ROOT) -> str:
    """Short git revision of ``root``, with ``+dirty`` when tracked files differ from it.

    ``"unknown"`` outside a git checkout (e.g. an installed copy).
    """
    def git(*args):
        return subprocess.run(["git", "-C", os.fspath(root), *args], capture_output=True,
                              text=True, timeout=30, check=True).stdout.strip()

    try:
        revision = git("rev-parse", "--short=10", "HEAD")
        dirty = git("status", "--porcelain", "--untracked-files=no")
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return revision + ("+dirty" if dirty else "")


def result_row(summary: dict, *, dataset: str, model: str = "mf", revision: str | None = None,
               finished: _dt.datetime | None = None) -> dict:
    """One results row from a trainer summary (``TrainResult.summary()`` plus ``seed``).

    Raises ValueError if a column is missing from ``summary`` or a metric is not finite (a
    row that cannot be trusted is never written).
    """
    row = {"dataset": dataset, "model": model,
           "git_revision": git_revision() if revision is None else revision,
           "finished_utc": (finished or _dt.datetime.now(_dt.UTC))
           .strftime("%Y-%m-%dT%H:%M:%SZ")}
    missing = [c for c in RESULT_COLUMNS if c not in row and c not in summary]
    if missing:
        raise ValueError(f"summary: missing {', '.join(missing)}")
    for column in RESULT_COLUMNS:
        if column not in row:
            row[column] = summary[column]
    bad = [c for c in METRIC_COLUMNS if not math.isfinite(float(row[c]))]
    if bad:
        raise ValueError(f"summary: non-finite {', '.join(bad)}")
    return row


def read_results(path: str | os.PathLike) -> pd.DataFrame:
    """The rows of a results CSV (an empty frame with :data:`RESULT_COLUMNS` if absent)."""
    path = Path(path)
    if not path.exists():
        return pd.DataFrame(columns=list(RESULT_COLUMNS))
    frame = pd.read_csv(path)
    missing = [c for c in RESULT_COLUMNS if c not in frame.columns]
    if missing:
        raise ValueError(f"{path}: not a results file (missing columns {', '.join(missing)})")
    return frame


def _key(row) -> tuple:
    return tuple(float(row[c]) if c in ("weight_decay",) else str(row[c]) if c in
                 ("dataset", "model", "sampler_label") else int(row[c]) for c in RUN_KEY)


def has_run(path: str | os.PathLike, **key) -> bool:
    """True if ``path`` already holds the run identified by ``key`` (the :data:`RUN_KEY` columns)."""
    missing = [c for c in RUN_KEY if c not in key]
    if missing:
        raise ValueError(f"key: missing {', '.join(missing)}")
    wanted = _key(key)
    return any(_key(row) == wanted for row in read_results(path).to_dict("records"))


def append_result(path: str | os.PathLike, row: dict) -> None:
    """Append one row to the results CSV ``path``, atomically (temporary file + rename) and
    under :func:`simulations.files.folder_lock`, so that processes appending to the same file
    at the same time keep every row.

    Raises ValueError if the run (:data:`RUN_KEY`) is already there or a column is missing.
    """
    path = Path(path)
    missing = [c for c in RESULT_COLUMNS if c not in row]
    if missing:
        raise ValueError(f"row: missing {', '.join(missing)}")
    with folder_lock(path):
        frame = read_results(path)
        if any(_key(r) == _key(row) for r in frame.to_dict("records")):
            raise ValueError(f"{path}: the run {dict(zip(RUN_KEY, _key(row)))} is already "
                             "recorded")
        new = pd.DataFrame([{c: row[c] for c in RESULT_COLUMNS}])
        frame = new if frame.empty else pd.concat([frame[list(RESULT_COLUMNS)], new],
                                                  ignore_index=True)
        atomic_write_text(path, frame.to_csv(index=False, float_format="%.10g"))




def append_rows(path: str | os.PathLike, rows: list[dict], key) -> int:
    """Append ``rows`` (dicts with the same columns) to the CSV ``path`` of a study whose
    columns are its own (not :data:`RESULT_COLUMNS`), atomically and under
    :func:`simulations.files.folder_lock`; a row whose ``key`` columns match a row already
    there is not added again.  Returns the number of rows added."""
    path = Path(path)
    new = pd.DataFrame(rows)
    with folder_lock(path):
        old = pd.read_csv(path) if path.exists() else new.iloc[:0]
        merged = pd.concat([old, new], ignore_index=True).drop_duplicates(list(key), keep="first")
        atomic_write_text(path, merged.to_csv(index=False, float_format="%.10g"))
    return len(merged) - len(old)
