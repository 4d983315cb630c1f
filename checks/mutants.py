"""Deliberately wrong versions of public functions, and the patching that puts them in place.

A mutant factory takes the right function and returns a wrong one with the same signature.
The checks declare which mutants must make them FAIL (``check(..., mutants=...)``);
``tests/test_mutations.py`` patches each one in with :func:`bindings` and asserts the verdict.

The patch must reach every call site: code may have bound the function by name
(``from theory.metrics import auc``), so :func:`bindings` lists the defining module's attribute
and every attribute of an already imported module of this project bound to the same object.
Only public Python functions are mutated, never numba kernels (a jitted caller would not see
the patch).  This module registers no check.
"""
from __future__ import annotations

import functools
import importlib
import inspect
import sys
from contextlib import contextmanager

import numpy as np
import pandas as pd

#: Top-level packages whose modules may hold a by-name binding of a mutated function.
PACKAGES = ("theory", "simulations", "training", "checks", "figures")


# --------------------------------------------------------------------------------------
# Patching
# --------------------------------------------------------------------------------------
def resolve(target: str):
    """(module, attribute name, object) of a dotted ``module.function`` name."""
    module_name, attr = target.rsplit(".", 1)
    module = importlib.import_module(module_name)
    return module, attr, getattr(module, attr)


def bindings(target: str) -> list[tuple[object, str]]:
    """Every (module, attribute) holding the object named by ``target``: its defining module
    first, then every imported module of :data:`PACKAGES` that bound the same object."""
    module, attr, original = resolve(target)
    found = [(module, attr)]
    for name, mod in list(sys.modules.items()):
        if mod is None or mod is module or name.split(".")[0] not in PACKAGES:
            continue
        for key, value in list(vars(mod).items()):
            if value is original:
                found.append((mod, key))
    return found


def clear_caches() -> None:
    """Empty the ``functools`` caches of the checks (F6's study, the Gowalla split), so a
    check run under a mutant recomputes instead of reusing an unmutated result."""
    for name, mod in list(sys.modules.items()):
        if mod is None or not name.startswith("checks"):
            continue
        for value in list(vars(mod).values()):
            if callable(getattr(value, "cache_clear", None)) and hasattr(value, "__wrapped__"):
                value.cache_clear()


@contextmanager
def patched(mutant):
    """Context manager: ``mutant`` (a :class:`checks.Mutant`) in place at every binding."""
    places = bindings(mutant.target)
    original = getattr(*places[0])
    wrong = mutant.factory(original)
    clear_caches()
    try:
        for mod, key in places:
            setattr(mod, key, wrong)
        yield wrong
    finally:
        for mod, key in places:
            setattr(mod, key, original)
        clear_caches()


# --------------------------------------------------------------------------------------
# Generic output mutants
# --------------------------------------------------------------------------------------
def map_output(transform, field=None):
    """A factory applying ``transform`` to the output, or to element ``field`` of a tuple /
    named tuple output."""

    def factory(right):
        @functools.wraps(right)
        def wrong(*args, **kwargs):
            out = right(*args, **kwargs)
            if field is None:
                return transform(out)
            parts = list(out)
            parts[field] = transform(parts[field])
            return type(out)(*parts) if hasattr(out, "_fields") else type(out)(parts)

        return wrong

    return factory


def _all_nan(x):
    if isinstance(x, tuple):  # every field of a named tuple
        parts = [_all_nan(p) for p in x]
        return type(x)(*parts) if hasattr(x, "_fields") else type(x)(parts)
    if isinstance(x, pd.DataFrame):
        x = x.copy()
        for c in x.columns:
            if pd.api.types.is_float_dtype(x[c]):
                x[c] = np.nan
        return x
    a = np.asarray(x, dtype=float)
    return np.full_like(a, np.nan) if a.ndim else float("nan")


def _one_nan(x):
    """NaN in one row (the middle one) of a batch output; a scalar is left unchanged, so a
    check must call the function on a batch to catch this mutant."""
    if isinstance(x, tuple):
        parts = [_one_nan(p) for p in x]
        return type(x)(*parts) if hasattr(x, "_fields") else type(x)(parts)
    a = np.asarray(x)
    if a.ndim == 0 or not np.issubdtype(a.dtype, np.floating):
        return x
    a = a.copy()
    a[a.shape[0] // 2] = np.nan
    return a


def nan(field=None):
    """Every output value NaN (or only element ``field`` of a tuple output)."""
    return map_output(_all_nan, field)


def nan_row(field=None):
    """NaN in the middle row of a batch output (or of element ``field`` of a tuple output)."""
    return map_output(_one_nan, field)


def scale(factor, field=None):
    """Output (or its element ``field``) multiplied by ``factor``."""
    return map_output(lambda x: x * factor if not isinstance(x, tuple)
                       else type(x)(*[p * factor for p in x]), field)


def nan_column(column):
    """NaN in the middle row of a DataFrame output's ``column``."""

    def transform(frame):
        frame = frame.copy()
        frame.loc[frame.index[len(frame) // 2], column] = np.nan
        return frame

    return map_output(transform)


def negate_column(column):
    """A DataFrame output's ``column`` negated (e.g. a correlation of the wrong sign)."""

    def transform(frame):
        frame = frame.copy()
        frame[column] = -frame[column]
        return frame

    return map_output(transform)


def relabel(column, mapping):
    """A DataFrame output's ``column`` relabelled by ``mapping`` (a swapped convention)."""

    def transform(frame):
        frame = frame.copy()
        frame[column] = frame[column].map(lambda v: mapping.get(v, v))
        return frame

    return map_output(transform)


def swap_fields(a, b):
    """Fields ``a`` and ``b`` of a named tuple output exchanged."""

    def transform(out):
        d = out._asdict()
        d[a], d[b] = d[b], d[a]
        return type(out)(**d)

    return map_output(transform)


# --------------------------------------------------------------------------------------
# Generic argument mutants
# --------------------------------------------------------------------------------------
def with_argument(name, change):
    """Call the right function with argument ``name`` replaced by ``change(value)`` (an
    off-by-one in k, a swapped option, ...).  The argument may be passed by position or
    keyword; a defaulted argument is changed from its default."""

    def factory(right):
        signature = inspect.signature(right)

        @functools.wraps(right)
        def wrong(*args, **kwargs):
            bound = signature.bind(*args, **kwargs)
            bound.apply_defaults()
            bound.arguments[name] = change(bound.arguments[name])
            return right(*bound.args, **bound.kwargs)

        return wrong

    return factory


def plus(delta):
    return lambda value: value + delta


def swap(a, b):
    """An option value ``a`` read as ``b`` and ``b`` as ``a``."""
    return lambda value: b if value == a else (a if value == b else value)


# --------------------------------------------------------------------------------------
# Mutants of particular estimators
# --------------------------------------------------------------------------------------
def uniform_law():
    """dns_mn_rank_probabilities replaced by the uniform law over the negatives."""

    def factory(right):
        @functools.wraps(right)
        def wrong(n_neg, m, n, *, replace=True):
            right(n_neg, m, n, replace=replace)  # same argument validation
            return np.full(int(n_neg), 1.0 / int(n_neg))

        return wrong

    return factory


def max_loss():
    """kl_dro returning the maximum loss as its value (the rho >= log n answer at every rho)."""

    def factory(right):
        @functools.wraps(right)
        def wrong(losses, rho):
            _, lam, weights = right(losses, rho)
            return float(np.max(losses)), lam, weights

        return wrong

    return factory
