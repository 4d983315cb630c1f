"""The one way the checks compare what they measured with what they expect.

:func:`compare` (two-sided: measured close to expected) and :func:`within` (one-sided or
interval: measured inside [low, high]) both return a :class:`Gap`: the worst deviation, where
it occurred, and whether every value met its tolerance.  A NaN or an infinity anywhere, in
either argument, is a failure whose ``at`` names the first place it occurred -- unlike
Python's ``max(worst, new)``, which silently drops a NaN, and ``np.abs(a - b).max()`` over a
batch, whose NaN a later ``<=`` then reads as "not greater".  Gaps of several comparisons are
merged with :func:`worst` (or :class:`Tally`), so no check accumulates errors by hand.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True)
class Gap:
    """Result of one or more comparisons.

    worst : the largest deviation found (|measured - expected| for :func:`compare`, the
        distance outside [low, high] for :func:`within`); inf when a value is not finite.
    excess : worst ratio deviation / tolerance (<= 1 everywhere means passed); inf for a
        non-finite value or a nonzero deviation under a zero tolerance.
    at : where the worst (or first non-finite) value is: the ``where`` label and the index.
    count : number of values compared.
    """

    worst: float = 0.0
    excess: float = 0.0
    at: str = ""
    count: int = 0
    nonfinite: bool = False

    @property
    def ok(self) -> bool:
        return self.count > 0 and not self.nonfinite and self.excess <= 1.0

    def __bool__(self) -> bool:  # so that ``passed = gap`` reads naturally
        return self.ok

    def text(self, what: str = "max |diff|", fmt: str = ".1e") -> str:
        if self.nonfinite:
            return f"non-finite value at {self.at}"
        if self.count == 0:
            return "nothing compared"
        return f"{what} {self.worst:{fmt}}" + (f" at {self.at}" if not self.ok else "")

    def __str__(self) -> str:
        return self.text()


def _index(flat_index: int, shape) -> str:
    if len(shape) <= 1:
        return f"[{flat_index}]" if shape else ""
    return str(tuple(int(i) for i in np.unravel_index(flat_index, shape)))


def _label(where, idx: str) -> str:
    return f"{where}{idx}" if where else (idx or "scalar")


def _finite_or_gap(arrays, shape, where, count) -> Gap | None:
    bad = np.zeros(shape, bool)
    for a in arrays:
        bad |= ~np.isfinite(a)
    if bad.any():
        first = int(np.flatnonzero(bad.ravel())[0])
        return Gap(np.inf, np.inf, _label(where, _index(first, shape)), count, True)
    return None


def _as_float(x) -> np.ndarray:
    # Named tuples and lists of numbers compare element-wise; bools as 0/1.
    return np.asarray(x, dtype=float)


def compare(measured, expected, *, atol: float = 0.0, rtol: float = 0.0, where="") -> Gap:
    """Compare ``measured`` with ``expected`` element-wise (broadcast).

    Passes where ``|measured - expected| <= atol + rtol * |expected|`` for every element and
    both are finite.  With ``atol = rtol = 0`` it demands exact equality.  The caller states
    the tolerance and justifies it in a comment.
    """
    m, e = np.broadcast_arrays(_as_float(measured), _as_float(expected))
    count = int(m.size)
    bad = _finite_or_gap((m, e), m.shape, where, count)
    if bad is not None:
        return bad
    if count == 0:
        return Gap(count=0)
    diff = np.abs(m - e)
    tol = atol + rtol * np.abs(e)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(tol > 0, diff / np.where(tol > 0, tol, 1.0), np.where(diff > 0, np.inf, 0.0))
    i = int(np.argmax(ratio))
    return Gap(float(diff.ravel()[i]), float(ratio.ravel()[i]), _label(where, _index(i, m.shape)),
               count)


def within(measured, low=-np.inf, high=np.inf, *, atol: float = 0.0, where="") -> Gap:
    """Check ``low - atol <= measured <= high + atol`` element-wise; ``worst`` is the largest
    distance outside [low, high] (0 when every value is inside).  Non-finite measured values,
    or non-finite bounds other than the default open ends, are failures."""
    m = _as_float(measured)
    lo, hi = _as_float(low), _as_float(high)
    m, lo, hi = np.broadcast_arrays(m, lo, hi)
    count = int(m.size)
    bad = np.zeros(m.shape, bool) | ~np.isfinite(m) | np.isnan(lo) | np.isnan(hi) | (lo == np.inf) \
        | (hi == -np.inf)
    if bad.any():
        first = int(np.flatnonzero(bad.ravel())[0])
        return Gap(np.inf, np.inf, _label(where, _index(first, m.shape)), count, True)
    if count == 0:
        return Gap(count=0)
    with np.errstate(invalid="ignore"):
        out = np.maximum(np.maximum(lo - m, m - hi), 0.0)
    out = np.nan_to_num(out, nan=0.0, posinf=0.0)  # an open end (inf bound) is never exceeded
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = out / atol if atol > 0 else np.where(out > 0, np.inf, 0.0)
    i = int(np.argmax(ratio))
    return Gap(float(out.ravel()[i]), float(ratio.ravel()[i]), _label(where, _index(i, m.shape)),
               count)


def worst(gaps) -> Gap:
    """Merge gaps: the first non-finite one if any, else the one with the largest excess
    (ties: the largest deviation); counts add up."""
    gaps = list(gaps)
    total = sum(g.count for g in gaps)
    if not gaps:
        return Gap()
    nonfinite = [g for g in gaps if g.nonfinite]
    if nonfinite:
        g = nonfinite[0]
    else:
        g = max(gaps, key=lambda x: (x.excess, x.worst))
    return Gap(g.worst, g.excess, g.at, total, g.nonfinite)


#: Set by the mutation suite (tests/test_mutations.py): a :class:`Tally` raises
#: :class:`FailFast` at its first failed comparison instead of finishing the check, which
#: paper_checks would report as FAIL all the same.  Off for the verdict table, which shows
#: the worst gap over the whole check.
FAIL_FAST = False


class FailFast(AssertionError):
    """A comparison failed while :data:`FAIL_FAST` is set."""


@dataclass
class Tally:
    """Collects gaps over a loop: ``t.compare(...)`` / ``t.within(...)``, then ``t.gap``."""

    gaps: list = field(default_factory=list)

    def compare(self, measured, expected, **kwargs) -> Gap:
        return self.add(compare(measured, expected, **kwargs))

    def within(self, measured, low=-np.inf, high=np.inf, **kwargs) -> Gap:
        return self.add(within(measured, low, high, **kwargs))

    def add(self, gap: Gap) -> Gap:
        self.gaps.append(gap)
        if FAIL_FAST and not gap.ok:
            raise FailFast(gap.text())
        return gap

    @property
    def gap(self) -> Gap:
        return worst(self.gaps)

    @property
    def ok(self) -> bool:
        return self.gap.ok
