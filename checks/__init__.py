"""Registry of the paper's checkable claims, run by ``paper_checks.py``.

Each check is a function ``fn(seed: int, full: bool) -> (measured: str, passed: bool | None)``
registered with :func:`check` under an id, the paper reference, the claim in words, the
independent reference it compares with (``oracle``), the public functions it verifies and at
least one wrong version ("mutant") of them that must make it FAIL (``tests/test_mutations.py``
patches each in and checks; ``checks.mutants`` holds the generic mutant factories).
``passed=None`` means the check could not run here (e.g. its data set is absent): it is
reported as SKIP with the reason in ``measured``, never as a pass.
Modules ``checks/<topic>.py`` register their checks on import; ``all_checks()`` imports
them all and returns the registry in a stable order.
"""
from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable
from dataclasses import dataclass

CheckFunction = Callable[[int, bool], tuple[str, bool]]


@dataclass(frozen=True)
class Mutant:
    """A deliberately wrong version of a public function: ``factory(right) -> wrong``.

    ``target`` is the dotted name of the function on its defining module, e.g.
    ``"theory.metrics.auc"``; ``name`` says what is wrong (e.g. ``"nan"``, ``"k+1"``).
    """
    target: str
    name: str
    factory: Callable

    @property
    def label(self) -> str:
        return f"{self.target}:{self.name}"


@dataclass(frozen=True)
class Check:
    id: str
    reference: str
    claim: str
    function: CheckFunction
    oracle: str = ""
    verifies: tuple[str, ...] = ()
    mutants: tuple[Mutant, ...] = ()


@dataclass(frozen=True)
class CheckResult:
    id: str
    reference: str
    claim: str
    measured: str
    passed: bool | None  # None: skipped (the reason is in measured)
    seconds: float
    oracle: str = ""  # the independent reference the check compares with

    @property
    def verdict(self) -> str:
        return "SKIP" if self.passed is None else ("PASS" if self.passed else "FAIL")


_REGISTRY: dict[str, Check] = {}


def data_dir():
    """Where the reproduction data live: :func:`training.datasets.data_folder`."""
    from training.datasets import data_folder  # late: importing checks must not load training

    return data_folder()


def check(id: str, reference: str, claim: str, *, oracle: str = "", verifies=(),
          mutants=()) -> Callable[[CheckFunction], CheckFunction]:
    """Register ``fn(seed, full) -> (measured, passed)`` as the check ``id``.

    ``oracle`` names the independent reference the check compares with (shown in
    report.md); ``verifies`` the dotted names of the public functions it verifies;
    ``mutants`` a sequence of :class:`Mutant` (or ``(target, name, factory)`` triples), each
    of which must make the check FAIL.
    """
    mutants = tuple(m if isinstance(m, Mutant) else Mutant(*m) for m in mutants)
    unknown = [m.target for m in mutants if m.target not in verifies]
    if unknown:
        raise ValueError(f"check {id!r}: mutant target(s) {unknown} not in verifies={verifies}")

    def register(fn: CheckFunction) -> CheckFunction:
        if id in _REGISTRY and _REGISTRY[id].function is not fn:
            raise ValueError(f"check id {id!r} is registered twice")
        _REGISTRY[id] = Check(id, reference, claim, fn, oracle, tuple(verifies), mutants)
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


def run_check(check_: Check, seed: int, full: bool) -> tuple[str, bool | None]:
    """Run one check: (measured, passed); a crashing check is a failed check."""
    try:
        measured, passed = check_.function(int(seed), bool(full))
    except Exception as exc:  # reported in the table as a FAIL, never a pass
        return f"error: {type(exc).__name__}: {exc}", False
    return str(measured), None if passed is None else bool(passed)


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
    measured, passed = run_check(check_, config["seed"], config["full"])
    return {"measured": str(measured), "passed": None if passed is None else bool(passed),
            "seconds": time.perf_counter() - start}
