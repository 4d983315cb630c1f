"""pytest plugin: run chosen tests each with one mutant patched in (tests/test_mutations.py).

``HNSLAB_MUTANTS`` holds lines ``<test node id>=<dotted target>|<kind>`` (kind one of
:data:`KINDS`).  Around the call of each listed test the wrong function is patched in at every
binding: the defining module, the project's packages and the test modules (which bound it by
name at import); it is restored afterwards.  Load with ``python -m pytest -p mutation_plugin``
and ``tests`` on ``PYTHONPATH``.
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parent
KINDS = ("nan", "nan-row", "nan-value", "nan-row-value", "uniform-law")


def _factory(kind):
    from checks import mutants as X

    return {"nan": X.nan(), "nan-row": X.nan_row(), "nan-value": X.nan(field=0),
            "nan-row-value": X.nan_row(field=0), "uniform-law": X.uniform_law()}[kind]


def _plan():
    plan = {}
    for line in os.environ.get("HNSLAB_MUTANTS", "").splitlines():
        if line.strip():
            node, spec = line.rsplit("=", 1)
            plan[node.strip()] = spec.strip().split("|")
    return plan


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_call(item):
    spec = _plan().get(item.nodeid.split("[")[0])
    if spec is None:
        yield
        return
    from checks import mutants as X

    target, kind = spec
    original = X.resolve(target)[2]
    places = X.bindings(target)
    for mod in list(sys.modules.values()):
        path = getattr(mod, "__file__", None)
        if path and Path(path).resolve().parent == TESTS:
            places += [(mod, key) for key, value in list(vars(mod).items()) if value is original]
    wrong = _factory(kind)(original)
    try:
        for mod, key in places:
            setattr(mod, key, wrong)
        yield
    finally:
        for mod, key in places:
            setattr(mod, key, original)
