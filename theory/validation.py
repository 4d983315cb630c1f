"""Argument checks shared by every module of the package (one validation path).

In the spirit of scikit-learn's ``check_scalar``: each function takes the value and the
argument's name, returns the value converted to a plain Python or numpy type, and raises
:class:`ValueError` naming the argument and what is allowed.  Booleans and strings are never
accepted as numbers (``True`` is not the integer 1 here).

Grids (betas, cut-offs K, ...) are checked element by element; sorting and de-duplication are
explicit options, because some callers need the caller's order (results are returned in it) and
others need a sorted set.

Seeds are normalised by :func:`simulations.rng.as_seed_sequence` (the one seeding scheme); this
module holds the checks of plain values only, so that theory/ stays free of randomness.
"""
from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import numpy as np

__all__ = [
    "INTEGER_RTOL",
    "as_list",
    "check_array",
    "check_betas",
    "check_bool",
    "check_choice",
    "check_fraction",
    "check_grid",
    "check_int",
    "check_ks",
    "check_real",
    "is_real",
]

#: Relative tolerance within which a float counts as an integer where integral floats are
#: allowed (``n * beta`` computed in floating point, for example).
INTEGER_RTOL = 1e-9


def is_real(value: Any) -> bool:
    """True for Python and numpy integers and floats, False for bools and everything else.

    Examples
    --------
    >>> is_real(0.5), is_real(np.int64(3)), is_real(True), is_real("1")
    (True, True, False, False)
    """
    return (isinstance(value, (int, float, np.integer, np.floating))
            and not isinstance(value, (bool, np.bool_)))


def _interval(low, high, include_low: bool, include_high: bool) -> str:
    left = "-inf" if low is None else low
    right = "inf" if high is None else high
    return (f"{'[' if include_low and low is not None else '('}{left}, "
            f"{right}{']' if include_high and high is not None else ')'}")


def check_int(value: Any, name: str, *, low: int | None = None, high: int | None = None,
              high_name: str | None = None, integral_floats: bool = False) -> int:
    """An integer in ``[low, high]`` (either bound optional), returned as ``int``.

    Parameters
    ----------
    value : object
        The argument.  Python and numpy integers are accepted; floats only with
        ``integral_floats`` and only when within :data:`INTEGER_RTOL` of an integer (they are
        rounded).  Bools, strings and other types are refused.
    name : str
        The argument's name, for the error message.
    low, high : int, optional
        Inclusive bounds.
    high_name : str, optional
        What ``high`` is, for the message (``"n_neg"`` gives "must be <= n_neg = 7").
    integral_floats : bool, default False
        Accept floats that are integers up to rounding.

    Returns
    -------
    int

    Raises
    ------
    ValueError
        If ``value`` is not an integer or lies outside the bounds.

    Examples
    --------
    >>> check_int(5, "k", low=1)
    5
    >>> check_int(3.0000000001, "m", low=1, integral_floats=True)
    3
    >>> check_int(0, "k", low=1)
    Traceback (most recent call last):
    ...
    ValueError: k must be an integer >= 1; got 0
    """
    if integral_floats and is_real(value):
        f = float(value)
        if math.isfinite(f) and abs(f - round(f)) <= INTEGER_RTOL * max(1.0, abs(f)):
            value = round(f)
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        raise ValueError(f"{name} must be an integer{_bounds_text(low, high, high_name)}; "
                         f"got {value!r}")
    value = int(value)
    if (low is not None and value < low) or (high is not None and value > high):
        raise ValueError(f"{name} must be an integer{_bounds_text(low, high, high_name)}; "
                         f"got {value}")
    return value


def _bounds_text(low, high, high_name) -> str:
    upper = f"{high_name} = {high}" if high_name else f"{high}"
    if low is not None and high is not None:
        return f" in [{low}, {upper}]"
    if low is not None:
        return f" >= {low}"
    if high is not None:
        return f" <= {upper}"
    return ""


def check_real(value: Any, name: str, *, low: float | None = None, high: float | None = None,
               include_low: bool = True, include_high: bool = True,
               allow_inf: bool = False) -> float:
    """A real number in an interval, returned as ``float``.

    Parameters
    ----------
    value : object
        Python or numpy integer or float (bools and strings refused).  NaN is always refused;
        infinities only with ``allow_inf`` (and only where the interval reaches them).
    name : str
        The argument's name, for the error message.
    low, high : float, optional
        Bounds; ``None`` is unbounded.
    include_low, include_high : bool, default True
        Whether the bounds belong to the interval.
    allow_inf : bool, default False

    Returns
    -------
    float

    Examples
    --------
    >>> check_real(0.25, "beta", low=0.0, high=1.0, include_low=False)
    0.25
    >>> check_real(0.0, "beta", low=0.0, high=1.0, include_low=False)
    Traceback (most recent call last):
    ...
    ValueError: beta must be a number in (0.0, 1.0]; got 0.0
    """
    interval = _interval(low, high, include_low, include_high)
    if not is_real(value):
        raise ValueError(f"{name} must be a number in {interval}; got {value!r}")
    value = float(value)
    ok = not math.isnan(value) and (allow_inf or math.isfinite(value))
    if ok and low is not None:
        ok = value >= low if include_low else value > low
    if ok and high is not None:
        ok = value <= high if include_high else value < high
    if not ok:
        raise ValueError(f"{name} must be a number in {interval}; got {value!r}")
    return value


def check_fraction(value: Any, name: str, *, allow_zero: bool = False) -> float:
    """A real number in (0, 1] (or [0, 1] with ``allow_zero``): a beta, an alpha, a share.

    Examples
    --------
    >>> check_fraction(1, "beta")
    1.0
    >>> check_fraction(0.0, "alpha", allow_zero=True)
    0.0
    """
    return check_real(value, name, low=0.0, high=1.0, include_low=allow_zero)


def check_bool(value: Any, name: str) -> bool:
    """True or False (Python or numpy bool); 1, 0 and other values are refused.

    Examples
    --------
    >>> check_bool(np.bool_(True), "replace")
    True
    >>> check_bool(1, "replace")
    Traceback (most recent call last):
    ...
    ValueError: replace must be True or False; got 1
    """
    if not isinstance(value, (bool, np.bool_)):
        raise ValueError(f"{name} must be True or False; got {value!r}")
    return bool(value)


def check_choice(value: Any, name: str, allowed: Iterable) -> Any:
    """``value`` if it is one of ``allowed``, else ValueError listing them.

    Examples
    --------
    >>> check_choice("beta", "normalize", ("none", "beta", "mcclish"))
    'beta'
    >>> check_choice("BETA", "normalize", ("none", "beta", "mcclish"))
    Traceback (most recent call last):
    ...
    ValueError: normalize must be one of ('none', 'beta', 'mcclish'); got 'BETA'
    """
    allowed = tuple(allowed)
    try:
        # True == 1 in Python: a bool passes only where a bool is allowed.
        ok = value in allowed and (not isinstance(value, (bool, np.bool_))
                                   or any(isinstance(a, bool) for a in allowed))
    except (TypeError, ValueError):  # arrays and other values without a plain ==
        ok = False
    if not ok:
        raise ValueError(f"{name} must be one of {allowed}; got {value!r}")
    return value


def as_list(values: Any) -> list:
    """The elements of a scalar, sequence or array, without numpy's type coercion.

    Examples
    --------
    >>> as_list(5), as_list((1, 2)), as_list(np.array([[0.1], [0.2]]))
    ([5], [1, 2], [0.1, 0.2])
    """
    if isinstance(values, np.ndarray):
        return [v.item() if isinstance(v, np.generic) else v for v in values.reshape(-1)]
    if isinstance(values, (list, tuple, range)):
        return list(values)
    return [values]


def check_grid(values: Any, name: str, check: Callable[[Any, str], Any], *, dtype=np.float64,
               sort: bool = False, unique: bool = False, min_size: int = 1) -> np.ndarray:
    """A 1-D array of grid values, each checked by ``check(value, name)``.

    Parameters
    ----------
    values : scalar, sequence or array
    name : str
        The argument's name, for the error messages.
    check : callable
        Element check, for example ``functools.partial(check_int, low=1)``.
    dtype : numpy dtype
    sort : bool, default False
        Return the values in increasing order (else the caller's order).
    unique : bool, default False
        Refuse repeated values (a grid whose results are keyed by value needs this).
    min_size : int, default 1
        Fewest values allowed (0 allows an empty grid).

    Examples
    --------
    >>> check_grid([0.5, 0.1], "betas", check_fraction, sort=True)
    array([0.1, 0.5])
    >>> check_grid([5, 5], "ks", lambda v, n: check_int(v, n, low=1), dtype=np.int64, unique=True)
    Traceback (most recent call last):
    ...
    ValueError: ks must not repeat a value; got [5, 5]
    """
    items = as_list(values)
    if len(items) < min_size:
        raise ValueError(f"{name} must hold at least {min_size} value(s); got {values!r}")
    out = np.asarray([check(v, name) for v in items], dtype=dtype)
    if unique and np.unique(out).size != out.size:
        raise ValueError(f"{name} must not repeat a value; got {items}")
    return np.sort(out, kind="stable") if sort else out


def check_betas(betas: Any, name: str = "betas", *, sort: bool = False, unique: bool = False,
                min_size: int = 1) -> np.ndarray:
    """A float64 grid of FPR limits beta, each in (0, 1].

    Examples
    --------
    >>> check_betas([1.0, 0.1])
    array([1. , 0.1])
    """
    return check_grid(betas, name, check_fraction, sort=sort, unique=unique, min_size=min_size)


def check_ks(ks: Any, name: str = "ks", *, high: int | None = None, high_name: str | None = None,
             sort: bool = False, unique: bool = False, min_size: int = 0) -> np.ndarray:
    """An int64 grid of cut-offs K, each an integer >= 1 (and <= ``high`` if given).

    Examples
    --------
    >>> check_ks((20, 5), sort=True)
    array([ 5, 20])
    """
    def element(value, element_name):
        return check_int(value, element_name, low=1, high=high, high_name=high_name)
    return check_grid(ks, name, element, dtype=np.int64, sort=sort, unique=unique,
                      min_size=min_size)


def check_array(values: Any, name: str, *, ndim: int | Sequence[int] = 1,
                dtype=np.float64, finite: bool = True, non_empty: bool = True) -> np.ndarray:
    """A numeric array of the given dimension(s), converted to ``dtype`` (C-contiguous).

    Examples
    --------
    >>> check_array([1, 2], "scores")
    array([1., 2.])
    >>> check_array([1.0, float("nan")], "scores")
    Traceback (most recent call last):
    ...
    ValueError: scores must be finite (no NaN or inf)
    """
    raw = np.asarray(values)
    if raw.dtype == np.bool_ or not (np.issubdtype(raw.dtype, np.number)):
        raise ValueError(f"{name} must be numeric; got dtype {raw.dtype}")
    dims = (ndim,) if isinstance(ndim, int) else tuple(ndim)
    if raw.ndim not in dims:
        raise ValueError(f"{name} must be a {' or '.join(f'{d}-D' for d in dims)} array; "
                         f"got shape {raw.shape}")
    if non_empty and (raw.size == 0 or (raw.ndim >= 1 and raw.shape[-1] == 0)):
        raise ValueError(f"{name} must be non-empty; got shape {raw.shape}")
    out = np.ascontiguousarray(raw, dtype=dtype)
    if finite and not np.all(np.isfinite(out)):
        raise ValueError(f"{name} must be finite (no NaN or inf)")
    return out
