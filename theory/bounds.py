"""Theorem 3: OPAUC bounds Top-K metrics (Eqs. 19-20), with the extremal rankings of the proof.

Setting: one context with ``n_pos`` positives and ``n_neg`` negatives, a ranking without ties,
``beta = k / n_neg``, and the raw empirical OPAUC(beta) of Eq. 8,
``A = C / (n_pos n_neg)`` where ``C`` is the number of (positive, top-k negative) pairs in which
the positive is ranked above the negative ("top-k negatives" = the k highest-ranked negatives).

With ``i`` hits (positives) among the top k positions, ``i**2 <= C <= (n_pos + k) i - i**2``
(the two extremal rankings of :func:`extremal_rankings` attain the ends).  Solving for i gives
Eq. 19 (Recall@K = i / n_pos) and Eq. 20 (Precision@K = i / k)::

    floor((S - sqrt(S**2 - 4 C)) / 2) <= i <= ceil(sqrt(C)),   S = n_pos + k.

The paper states the theorem for n_pos > k and n_neg > k; the proof (and the enumeration tests)
only need n_pos >= 1 and n_neg >= k, which is what is accepted here.

References
----------
Shi et al., "On the Theories Behind Hard Negative Sampling for Recommendation", WWW 2023,
Theorem 3 (Eqs. 19-20) and its proof.
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np
from numpy.typing import ArrayLike

from theory.validation import check_array, check_int

__all__ = [
    "ExtremalRankings",
    "TopKBounds",
    "extremal_rankings",
    "hit_bounds",
    "opauc_count_range",
    "topk_bounds",
    "uniform_auc_recall_correlation",
]

_COUNT_RTOL = 1e-9


class TopKBounds(NamedTuple):
    """Bounds of Theorem 3 (floats for a scalar OPAUC, arrays for an array)."""

    recall_low: float | np.ndarray
    recall_high: float | np.ndarray
    precision_low: float | np.ndarray
    precision_high: float | np.ndarray


class ExtremalRankings(NamedTuple):
    """The two rankings of Theorem 3's proof for a given number of hits (labels, best first)."""

    max_labels: np.ndarray  # bool, True = positive, in rank order
    max_count: int  # its OPAUC count C = (n_pos + k) i - i**2
    min_labels: np.ndarray
    min_count: int  # i**2


def _integer(value, name, low, high=None, high_name=None):
    # Integral floats accepted (counts computed in floating point, e.g. beta * n_neg).
    return check_int(value, name, low=low, high=high, high_name=high_name, integral_floats=True)


def _check_setting(n_pos, n_neg, k):
    """The setting of Theorem 3: n_pos >= 1 and 1 <= k <= n_neg (beta = k / n_neg <= 1)."""
    n_pos = _integer(n_pos, "n_pos", 1)
    k = _integer(k, "k", 1)
    n_neg = _integer(n_neg, "n_neg (at least k, so that beta = k / n_neg <= 1)", k)
    return n_pos, n_neg, k


def _check_hits(hits, n_pos, k):
    """Hits among the top k: an integer in [0, min(k, n_pos)]."""
    return _integer(hits, "hits", 0, min(k, n_pos), "min(k, n_pos)")


def opauc_count_range(n_pos: int, n_neg: int, k: int, hits: int) -> tuple[int, int]:
    """Smallest and largest OPAUC count C over rankings with ``hits`` positives in the top k.

    Returns
    -------
    (min_count, max_count) : (int, int)
        ``(hits**2, (n_pos + k) hits - hits**2)``; divide by ``n_pos n_neg`` for the raw OPAUC
        of Eq. 8 at beta = k / n_neg.  Proof of Theorem 3.

    Examples
    --------
    >>> opauc_count_range(5, 6, 3, 2)  # (i**2, (N+ + K) i - i**2) with i = 2
    (4, 12)
    """
    n_pos, n_neg, k = _check_setting(n_pos, n_neg, k)
    i = _check_hits(hits, n_pos, k)
    return i * i, (n_pos + k) * i - i * i


def extremal_rankings(n_pos: int, n_neg: int, k: int, hits: int) -> ExtremalRankings:
    """The two extremal rankings of Theorem 3's proof, as boolean labels in rank order.

    Parameters
    ----------
    n_pos, n_neg, k : int
        ``n_pos >= 1``, ``n_neg >= k >= 1``.
    hits : int in [0, min(k, n_pos)]
        Number i of positives among the top k positions.

    Returns
    -------
    ExtremalRankings
        ``max_labels``: i positives, then k - i negatives, then the other n_pos - i positives,
        then the remaining negatives; OPAUC count ``(n_pos + k) i - i**2`` (largest possible).
        ``min_labels``: k - i negatives, then i positives, then the other i top-k negatives,
        then the remaining negatives, then the other positives; count ``i**2`` (smallest).
        Both have exactly i hits in the top k.

    Examples
    --------
    >>> ext = extremal_rankings(2, 3, 2, 1)  # N+ = 2, N- = 3, K = 2, one hit
    >>> ext.max_labels.astype(int), ext.max_count  # 1 = positive, in rank order
    (array([1, 0, 1, 0, 0]), 3)
    >>> ext.min_labels.astype(int), ext.min_count
    (array([0, 1, 0, 0, 1]), 1)
    """
    n_pos, n_neg, k = _check_setting(n_pos, n_neg, k)
    i = _check_hits(hits, n_pos, k)
    t, f = True, False
    max_labels = np.array([t] * i + [f] * (k - i) + [t] * (n_pos - i) + [f] * (n_neg - k + i))
    min_labels = np.array([f] * (k - i) + [t] * i + [f] * i + [f] * (n_neg - k) + [t] * (n_pos - i))
    lo, hi = opauc_count_range(n_pos, n_neg, k, i)
    return ExtremalRankings(max_labels.astype(bool), hi, min_labels.astype(bool), lo)


def _counts(opauc_raw, n_pos, n_neg, k):
    # check_array returns at least 1-D: restore a scalar's shape (a scalar gives floats).
    a = check_array(opauc_raw, "opauc_raw", ndim=np.ndim(opauc_raw),
                    non_empty=False).reshape(np.shape(opauc_raw))
    beta = k / n_neg
    count = a * (n_pos * n_neg)
    top = n_pos * k  # largest possible count
    tol = _COUNT_RTOL * np.maximum(1.0, np.abs(count))
    if np.any(count < -tol) or np.any(count > top + tol):
        raise ValueError(f"opauc_raw must be in [0, k / n_neg] = [0, {beta:g}] (the raw OPAUC "
                         f"of Eq. 8), got values in [{a.min():g}, {a.max():g}]")
    count = np.clip(count, 0.0, float(top))
    rounded = np.round(count)
    integral = np.abs(count - rounded) <= tol
    return count, rounded, integral


def _isqrt_floor(c):
    """floor(sqrt(c)) for an int64 array, exact."""
    s = np.floor(np.sqrt(c.astype(float))).astype(np.int64)
    for _ in range(2):
        s = np.where(s * s > c, s - 1, s)
        s = np.where((s + 1) * (s + 1) <= c, s + 1, s)
    return s


def _root_floor(c, S):
    """floor of the smaller root x of q(j) = j**2 - S j + c (0 <= x <= S/2), exact for ints.

    For integer j <= S/2, j <= x iff q(j) >= 0 (q decreases there).
    """
    x = (S - np.sqrt(np.maximum(S * S - 4.0 * c.astype(float), 0.0))) / 2.0
    j = np.floor(x).astype(np.int64)

    def q(v):
        return v * v - S * v + c

    for _ in range(2):
        j = np.where(q(j) < 0, j - 1, j)
        j = np.where((2 * (j + 1) <= S) & (q(j + 1) >= 0), j + 1, j)
    return j, q(j) == 0


def hit_bounds(opauc_raw: ArrayLike, n_pos: int, n_neg: int, k: int, *,
               tight: bool = False) -> tuple[float | np.ndarray, float | np.ndarray]:
    """Bounds on the number of hits in the top k implied by the raw OPAUC (Theorem 3).

    Parameters
    ----------
    opauc_raw : float or array_like
        Raw empirical OPAUC(beta = k / n_neg) of Eq. 8, in [0, k / n_neg].
    n_pos, n_neg, k : int
        ``n_pos >= 1``, ``n_neg >= k >= 1``.
    tight : bool
        False (default): the paper's bounds ``floor((S - sqrt(S^2 - 4C)) / 2)`` and
        ``ceil(sqrt(C))``.  True: the integer-sharpened bounds ``ceil(...)`` and
        ``min(floor(sqrt(C)), k, n_pos)``, i.e. exactly the set of i with
        ``i^2 <= C <= S i - i^2``; the enumeration tests show that every such i is attained.
        For a non-integer C (tied scores) no rounding: ``[x, min(sqrt(C), k, n_pos)]`` with
        x the smaller root of ``h^2 - S h + C``, valid for the expected hits h of every
        tied ranking (the ROC, diagonal across tie groups, meets the line u + T = k at
        T = h; T is non-decreasing and <= n_pos, so h^2 <= C <= S h - h^2).  The
        integer-sharpened bounds assume integer hits: a tied ranking whose C happens to be
        an integer may fall outside them (use ``tight=False`` for tied rankings).

    Returns
    -------
    (low, high) : floats or float arrays
        Integer-valued when ``C = opauc_raw * n_pos * n_neg`` is within 1e-9 (relative) of an
        integer (it is a count for a tie-free ranking; floating error is rounded away, and
        the square roots and floors are then done in exact integer arithmetic).  A non-integer
        C (tied scores counted 1/2) is used as a real number in the same formulas (without
        the rounding when ``tight``).

    Examples
    --------
    >>> hit_bounds(12 / 30, 5, 6, 3)  # C = 12: floor((8 - sqrt(64 - 48)) / 2), ceil(sqrt(12))
    (2.0, 4.0)
    >>> hit_bounds(12 / 30, 5, 6, 3, tight=True)  # i**2 <= 12 <= 8 i - i**2 for i = 2, 3
    (2.0, 3.0)
    """
    n_pos, n_neg, k = _check_setting(n_pos, n_neg, k)
    count, rounded, integral = _counts(opauc_raw, n_pos, n_neg, k)
    S = n_pos + k
    # Real-valued path (non-integer counts).
    disc = np.sqrt(np.maximum(S * S - 4.0 * count, 0.0))
    x = (S - disc) / 2.0
    y = np.sqrt(count)
    if tight:
        # A non-integer count comes from tied scores, whose hits (expected under random
        # tie-breaking) need not be integers: rounding x up or sqrt(C) down would exclude
        # attained values (even give low > high), so the roots themselves are the bounds.
        low = x
        high = np.minimum(y, min(k, n_pos))
    else:
        low = np.floor(x)
        high = np.ceil(y)
    # Exact integer path.
    c = rounded.astype(np.int64)
    sq = _isqrt_floor(c)
    rf, exact_root = _root_floor(c, S)
    if tight:
        low_i = np.where(exact_root, rf, rf + 1)
        high_i = np.minimum(sq, min(k, n_pos))
    else:
        low_i = rf
        high_i = np.where(sq * sq == c, sq, sq + 1)
    low = np.where(integral, low_i, low).astype(float)
    high = np.where(integral, high_i, high).astype(float)
    if low.ndim == 0:
        return float(low), float(high)
    return low, high


def topk_bounds(opauc_raw: ArrayLike, n_pos: int, n_neg: int, k: int, *,
                tight: bool = False) -> TopKBounds:
    """Recall@K and Precision@K bounds from the raw OPAUC (Theorem 3, Eqs. 19-20).

    ``floor((S - sqrt(S^2 - 4 N+ N- A)) / 2) / N+ <= Recall@K <= ceil(sqrt(N+ N- A)) / N+``
    with ``S = N+ + K`` and ``A`` the raw OPAUC(beta = K/N-); the same with ``1/K`` for
    Precision@K.

    Parameters
    ----------
    opauc_raw : float or array_like
        Raw empirical OPAUC (Eq. 8, range [0, k / n_neg], not divided by beta) at
        ``beta = k / n_neg``.
    n_pos : int >= 1
        Number of positives N+ (the paper assumes N+ > K; not needed).
    n_neg : int >= k
        Number of negatives N- (the paper assumes N- > K; N- >= K suffices).
    k : int >= 1
        Cut-off K.
    tight : bool
        False: Eqs. 19-20 as printed.  True: the integer-sharpened bounds (ceil of the lower
        root, floor of the square root, capped at min(K, N+)); see :func:`hit_bounds`.

    Returns
    -------
    TopKBounds
        ``(recall_low, recall_high, precision_low, precision_high)``; floats for a scalar
        ``opauc_raw``, arrays otherwise.  Valid for every tie-free ranking; attained by the
        extremal rankings of :func:`extremal_rankings`.

    Notes
    -----
    ``opauc_raw * n_pos * n_neg`` is a count; values within 1e-9 (relative) of an integer are
    rounded to it before the floors and ceilings, which are then exact.

    Examples
    --------
    >>> b = topk_bounds(12 / 30, 5, 6, 3)  # N+ = 5, N- = 6, K = 3, count C = 12
    >>> b.recall_low, b.recall_high  # 2 to 4 hits
    (0.4, 0.8)
    >>> round(b.precision_low, 6), round(b.precision_high, 6)
    (0.666667, 1.333333)
    >>> topk_bounds(12 / 30, 5, 6, 3, tight=True).precision_high  # at most 3 hits: Precision <= 1
    1.0
    """
    low, high = hit_bounds(opauc_raw, n_pos, n_neg, k, tight=tight)
    n_pos, k = int(n_pos), int(k)
    return TopKBounds(low / n_pos, high / n_pos, low / k, high / k)


def uniform_auc_recall_correlation(n_pos: int, n_neg: int, k: int) -> float:
    """Exact Pearson correlation of AUC and Recall@K over uniformly random rankings.

    For a ranking drawn uniformly at random from the arrangements of ``n_pos`` positives and
    ``n_neg`` negatives (N = N+ + N- items, no ties),

    .. math:: \\operatorname{corr}(\\mathrm{AUC}, \\mathrm{Recall@K}) = \\sqrt{\\frac{3K(N-K)}{N^2-1}},

    which does not depend on the split into N+ and N-.  Why: AUC is an affine function of
    the sum of the positives' ranks and Recall@K of the number of positives in the top K; by
    exchangeability both covariances reduce to those of one position's rank with the
    indicator that it lies in the top K, whose correlation is the value above.  This is the
    paper's Fig. 6 observation that AUC correlates weakly with Top-K metrics for small K
    (0.12 at K = 5, N = 1000); Precision@K has the same correlation (N+ fixed).

    Parameters
    ----------
    n_pos, n_neg : int >= 1
    k : int, 1 <= k <= n_pos + n_neg

    Returns
    -------
    float in [0, 1]

    Examples
    --------
    >>> round(uniform_auc_recall_correlation(200, 800, 5), 4)
    0.1222
    """
    n_pos = _integer(n_pos, "n_pos", 1)
    n_neg = _integer(n_neg, "n_neg", 1)
    n = n_pos + n_neg
    k = _integer(k, "k", 1, n, "n_pos + n_neg")
    return float(np.sqrt(3.0 * k * (n - k) / (n * n - 1.0)))
