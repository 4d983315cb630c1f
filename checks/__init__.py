"""Registry of the paper's checkable claims, run by ``paper_checks.py``.

Each check is a function ``fn(seed: int, full: bool) -> (measured: str, passed: bool | None)``
registered with :func:`check` under an id, the paper reference and the claim in words.
``passed=None`` means the check could not run here (e.g. its data set is absent): it is
reported as SKIP with the reason in ``measured``, never as a pass.
Modules ``checks/<topic>.py`` register their checks on import; ``all_checks()`` imports
them all and returns the registry in a stable order.
"""
from __future__ import annotations

import importlib
import pkgutil
from dataclasses import dataclass
from typing import Callable

CheckFunction = Callable[[int, bool], tuple[str, bool]]


@dataclass(frozen=True)
class Check:
    id: str
    reference: str
    claim: str
    function: CheckFunction


@dataclass(frozen=True)
class CheckResult:
    id: str
    reference: str
    claim: str
    measured: str
    passed: bool | None  # None: skipped (the reason is in measured)
    seconds: float

    @property
    def verdict(self) -> str:
        return "SKIP" if self.passed is None else ("PASS" if self.passed else "FAIL")


_REGISTRY: dict[str, Check] = {}


def data_dir():
    """Where the reproduction data live: $HNSLAB_DATA, else ../shared/data beside the repo."""
    import os
    from pathlib import Path

    return Path(os.environ.get("HNSLAB_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))


def check(id: str, reference: str, claim: str) -> Callable[[CheckFunction], CheckFunction]:
    """Register ``fn(seed, full) -> (measured, passed)`` as the check ``id``."""

    def register(fn: CheckFunction) -> CheckFunction:
        if id in _REGISTRY and _REGISTRY[id].function is not fn:
            raise ValueError(f"check id {id!r} is registered twice")
        _REGISTRY[id] = Check(id, reference, claim, fn)
        return fn

    return register


def all_checks() -> list[Check]:
    """Import every ``checks.<module>`` and return the registered checks, in id order."""
    for info in pkgutil.iter_modules(__path__):
        if not info.name.startswith("_"):
            importlib.import_module(f"{__name__}.{info.name}")
    return [_REGISTRY[key] for key in sorted(_REGISTRY, key=_natural_key)]


def _natural_key(check_id: str) -> tuple:
    # "M2" < "M10": compare the numeric parts as numbers.
    import re

    return tuple(int(part) if part.isdigit() else part for part in re.split(r"(\d+)", check_id))


def run_check_cell(config: dict, cell_seed: int) -> dict:
    """One check as a sweep cell (``simulations.sweep.run_sweep``): importable by workers.

    ``config`` holds ``id``, ``seed`` and ``full``; the check runs with the user's seed (the
    cell seed is not used), so a distributed run gives the same table as a local one.  A
    crashing check is a failed check, as in the local loop.
    """
    import time

    registry = {c.id: c for c in all_checks()}
    check_ = registry[config["id"]]
    start = time.perf_counter()
    try:
        measured, passed = check_.function(int(config["seed"]), bool(config["full"]))
    except Exception as exc:  # reported in the table, like the local loop does
        measured, passed = f"error: {type(exc).__name__}: {exc}", False
    return {"measured": str(measured), "passed": None if passed is None else bool(passed),
            "seconds": time.perf_counter() - start}
