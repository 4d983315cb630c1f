"""The paper's estimators: BPR, OPAUC surrogate, CVaR and KL-DRO duals, DNS and Softmax-v.

Sections 1-3 of the paper (see ../shared/PAPER.md) as pure functions, one context at a time.

Conventions
-----------
* Scores: higher = better.  A negative's *rank* r = 1 is the highest-scored negative.
* Pair loss ``L(c, i, j) = l(r_ci - r_cj)`` with the logistic loss ``l(t) = log(1 + e^-t)``
  (:func:`bpr_loss`).  ``l`` is strictly decreasing, so the hardest negatives (highest scores)
  have the largest losses, and sorting negatives by score or by loss selects the same multiset
  of loss values (ties in score give equal losses, so ties never change a result).
* Reduction over positives: every context-level objective (:func:`opauc_surrogate`,
  :func:`dns_objective`, :func:`dns_mn_objective`, :func:`score_softmax_objective`) returns the
  **mean over the positives** of the per-positive objective, as the paper's Eq. 9 is written
  ("per context, mean over positives").  The paper's BPR objective (Eq. 1) *sums* over the
  positives; ``reduction="sum"`` gives that (n_pos times the mean).  Theorem 1's equality holds
  exactly for either choice as long as both sides use the same one.
* Fractional levels: for a loss vector of length n and level beta, the "top beta fraction"
  holds ``k = n * beta`` items.  When ``k`` is not an integer, the ``floor(k)`` largest losses get
  weight ``1 / k`` each and the next one gets ``(k - floor(k)) / k`` (:func:`opauc_rank_weights`):
  the exact area under the empirical ROC step curve, and exactly the CVaR of the uniform
  distribution.  ``n * beta`` within ``1e-9`` (relative) of an integer is rounded to it, so that
  ``0.3 * 10`` counts as 3.
* Randomness: none.  Every function here is deterministic; the Monte Carlo checks live in the
  tests and in ``simulations/``.

Numba kernels (for the trainer and simulators, callable inside ``@njit`` code):
:func:`bpr_loss_scalar`, :func:`bpr_loss_grad_scalar`, :func:`softmax_weights_row`.  They are
compiled lazily on first call (``cache=True``); nothing is compiled at import.  (A private
kernel computes the DNS(M, N) law without replacement.)

References
----------
Shi, Chen, Feng, Zhang, Wu, Gao, He. "On the Theories Behind Hard Negative Sampling for
Recommendation", WWW 2023 (arXiv 2302.03472); equation numbers refer to it.
Zhu, Li, Wang, Wu, Yang. "When AUC meets DRO: Optimizing Partial AUC for Deep Learning with
Non-Convex Convergence Guarantee", ICML 2022 (Lemma 1: CVaR and KL duals).
Rockafellar and Uryasev. "Optimization of conditional value-at-risk", J. Risk 2(3), 2000.
"""
from __future__ import annotations

import math
from functools import partial

import numpy as np
from numba import njit
from numpy.typing import ArrayLike
from scipy import optimize, special, stats

from theory.validation import (
    INTEGER_RTOL,
    check_array,
    check_bool,
    check_choice,
    check_fraction,
    check_int,
    check_real,
)

__all__ = [
    "bpr_loss",
    "bpr_loss_grad",
    "bpr_loss_grad_scalar",
    "bpr_loss_scalar",
    "check_dns_pool",
    "cvar",
    "dns_mn_beta_mixture",
    "dns_mn_objective",
    "dns_mn_quantile_cdf",
    "dns_mn_quantile_density",
    "dns_mn_rank_probabilities",
    "dns_objective",
    "kl_dro",
    "kl_dro_dual",
    "opauc_rank_weights",
    "opauc_surrogate",
    "pair_losses",
    "score_softmax_objective",
    "score_softmax_probabilities",
    "softmax_v_objective",
    "softmax_v_tau",
    "softmax_weights",
    "softmax_weights_row",
]

REDUCTIONS = ("mean", "sum")


# --------------------------------------------------------------------------------------
# Numba kernels (lazy; never called at import)
# --------------------------------------------------------------------------------------
@njit(cache=True, fastmath=False)  # exact, whatever the caller's flags
def bpr_loss_scalar(x: float) -> float:
    """Logistic (BPR) loss ``l(x) = log(1 + exp(-x))`` of one float, overflow-free.

    ``x >= 0``: ``log1p(exp(-x))``; ``x < 0``: ``-x + log1p(exp(x))``.  Accurate to a few ulp
    over the whole real line (``l(x) ~ exp(-x)`` for large x, ``~ -x`` for very negative x).
    Numba kernel; :func:`bpr_loss` is the vectorized NumPy version (Eq. 1's ``l``).

    Examples
    --------
    >>> round(bpr_loss_scalar(0.0), 6)  # log 2
    0.693147
    >>> bpr_loss_scalar(-800.0)  # ~ -x, no overflow
    800.0
    """
    if x >= 0.0:
        return math.log1p(math.exp(-x))
    return -x + math.log1p(math.exp(x))


@njit(cache=True, fastmath=False)  # exact, whatever the caller's flags
def bpr_loss_grad_scalar(x: float) -> float:
    """Derivative ``l'(x) = -1 / (1 + exp(x)) = -sigmoid(-x)`` of :func:`bpr_loss_scalar`.

    Overflow-free; in (-1, 0).  Numba kernel; :func:`bpr_loss_grad` is the NumPy version.

    Examples
    --------
    >>> bpr_loss_grad_scalar(0.0)
    -0.5
    >>> round(bpr_loss_grad_scalar(2.0), 6) == round(bpr_loss_grad(2.0), 6)
    True
    """
    if x >= 0.0:
        e = math.exp(-x)
        return -e / (1.0 + e)
    return -1.0 / (1.0 + math.exp(x))


@njit(cache=True, fastmath=False)  # exact, whatever the caller's flags
def softmax_weights_row(values: np.ndarray, tau: float, out: np.ndarray) -> None:
    """Write ``softmax(values / tau)`` into ``out`` (max-subtracted, overflow-free).

    ``out[j] = exp((values[j] - max) / tau) / sum_k exp((values[k] - max) / tau)``.
    ``tau <= 0`` is the limit tau -> 0+: uniform weights on the maximal values.  With
    ``values`` = pair losses this is the Softmax-v weighting (Eq. 23); with ``values`` =
    negative scores it is the score-softmax distribution (Eq. 3).  Numba kernel; the NumPy
    version is :func:`softmax_weights`.

    Examples
    --------
    >>> out = np.empty(3)
    >>> softmax_weights_row(np.array([0.0, np.log(3.0), 0.0]), 1.0, out)
    >>> np.round(out, 6)  # exp(v) / sum exp(v): 1 : 3 : 1
    array([0.2, 0.6, 0.2])
    >>> softmax_weights_row(np.array([2.0, 2.0, 1.0]), 0.0, out)
    >>> out  # tau = 0: uniform on the maximal values
    array([0.5, 0.5, 0. ])
    """
    n = values.shape[0]
    mx = -np.inf
    for j in range(n):
        if values[j] > mx:
            mx = values[j]
    if tau <= 0.0:
        count = 0
        for j in range(n):
            if values[j] == mx:
                count += 1
        for j in range(n):
            out[j] = 1.0 / count if values[j] == mx else 0.0
        return
    total = 0.0
    for j in range(n):
        e = math.exp((values[j] - mx) / tau)
        out[j] = e
        total += e
    for j in range(n):
        out[j] /= total


@njit(cache=True, fastmath=False)  # exact, whatever the caller's flags
def _dns_mn_without_replacement_kernel(n_neg, m, n, out):
    """Rank law of DNS(M, N) with a pool drawn without replacement (see the public function).

    ``out[r-1] = n / (n_neg m) * P(H_{r-1} <= m - 1)``, ``H_R ~ Hypergeometric(n_neg - 1, R,
    n - 1)``, the number of better negatives among the other n - 1 pool members.  The low
    probabilities ``P(H_R = j)``, j < m, follow the exact convex recurrence (moving one
    negative from "worse" to "better")
    ``P_{R+1}(j) = P_R(j) (1 - (n'-j)/(N'-R)) + P_R(j-1) (n'-j+1)/(N'-R)``, started at
    ``P_0 = (1, 0, ...)``: positive terms only, O(n_neg m), no cancellation.
    """
    big = n_neg - 1
    small = n - 1
    prob = np.zeros(m)
    prob[0] = 1.0
    scale = n / (n_neg * m)
    for rr in range(n_neg):
        total = 0.0
        for j in range(m):
            total += prob[j]
        out[rr] = scale * total
        if rr < big:
            denom = big - rr
            for j in range(m - 1, -1, -1):
                stay = prob[j] * max(0.0, 1.0 - (small - j) / denom)
                move = prob[j - 1] * (small - j + 1) / denom if j >= 1 else 0.0
                prob[j] = stay + move


# --------------------------------------------------------------------------------------
# Validation helpers
# --------------------------------------------------------------------------------------
def _finite_array(x, name, *, batched=False):
    """A finite, non-empty float64 array: 1-D, or (``batched``) with at least one axis, the
    last one holding the vector (theory.validation.check_array with the caller's own ndim)."""
    ndim = max(np.ndim(x), 1) if batched else 1
    return check_array(x, name, ndim=ndim)


def _check_rho(rho, *, allow_inf=False):
    """A KL radius in (0, inf), or (0, inf] with ``allow_inf``."""
    return check_real(rho, "rho", low=0.0, include_low=False, allow_inf=allow_inf)


def _first_bad(arr, name, ok, check):
    """Vectorized element check: raise ``check``'s ValueError (theory.validation) for the
    first element of ``arr`` where the mask ``ok`` (the same rule, vectorized) is False."""
    if not np.all(ok):
        check(arr[~ok].flat[0].item(), name)
    return arr


def _check_nonnegative(values, name, *, allow_inf):
    """A numeric array (any shape, possibly empty) of reals >= 0 (NaN refused; inf only with
    ``allow_inf``), with theory.validation.check_real's message."""
    # check_array returns at least 1-D (np.ascontiguousarray): restore a scalar's shape.
    arr = check_array(values, name, ndim=np.ndim(values), finite=False,
                      non_empty=False).reshape(np.shape(values))
    ok = (arr >= 0.0) & (np.isfinite(arr) | allow_inf)  # NaN compares False
    return _first_bad(arr, name, ok, partial(check_real, low=0.0, allow_inf=allow_inf))


def _reduce(per_positive, reduction):
    return float(per_positive.mean() if reduction == "mean" else per_positive.sum())


def _level_count(n, beta):
    """k = n * beta, rounded to the nearest integer when within 1e-9 (relative)."""
    k = n * beta
    kr = round(k)
    if abs(k - kr) <= INTEGER_RTOL * max(1.0, k) and kr >= 1:
        return float(kr)
    return k


def _finish(x):
    x = np.asarray(x)
    return float(x) if x.ndim == 0 else x


# --------------------------------------------------------------------------------------
# Losses
# --------------------------------------------------------------------------------------
def bpr_loss(x: ArrayLike) -> float | np.ndarray:
    """Logistic (BPR) pair loss ``l(x) = log(1 + exp(-x))``, elementwise and overflow-free.

    Parameters
    ----------
    x : array_like of float
        Score differences ``r_ci - r_cj`` (positive minus negative).

    Returns
    -------
    float or ndarray
        ``l(x)`` in (0, inf); ``l(x) ~ exp(-x)`` for x -> inf and ``~ -x`` for x -> -inf, both
        without overflow or loss of relative accuracy (computed as ``logaddexp(0, -x)``).

    Notes
    -----
    The loss ``l`` of the paper's Section 1 and Eq. 1.  Strictly decreasing and convex.
    The numba kernel :func:`bpr_loss_scalar` computes the same function.

    References
    ----------
    Rendle et al., "BPR: Bayesian Personalized Ranking from Implicit Feedback", UAI 2009.

    Examples
    --------
    >>> np.round(bpr_loss([0.0, 2.0, -2.0]), 6)  # log 2, log(1 + e^-2), 2 + log(1 + e^-2)
    array([0.693147, 0.126928, 2.126928])
    >>> bpr_loss(-800.0)  # ~ -x for very negative x, without overflow
    800.0
    """
    return _finish(np.logaddexp(0.0, -np.asarray(x, dtype=float)))


def bpr_loss_grad(x: ArrayLike) -> float | np.ndarray:
    """Derivative of :func:`bpr_loss`: ``l'(x) = -1 / (1 + exp(x))``, elementwise, in (-1, 0).

    Computed as ``-expit(-x)`` (no overflow).  Same function as the numba kernel
    :func:`bpr_loss_grad_scalar`.

    Examples
    --------
    >>> x, h = 0.7, 1e-6
    >>> round(bpr_loss_grad(x), 6)
    -0.331812
    >>> round((bpr_loss(x + h) - bpr_loss(x - h)) / (2 * h), 6)  # central difference
    -0.331812
    """
    return _finish(-special.expit(-np.asarray(x, dtype=float)))


def pair_losses(pos_scores: ArrayLike, neg_scores: ArrayLike) -> np.ndarray:
    """Matrix of pair losses ``L[i, j] = l(pos_scores[i] - neg_scores[j])`` (Section 1).

    Parameters
    ----------
    pos_scores, neg_scores : array_like, 1-D, finite, non-empty
        Scores of the positives and of the negatives of one context.

    Returns
    -------
    ndarray, shape (n_pos, n_neg)

    Examples
    --------
    >>> L = pair_losses([1.0, 2.0], [0.0, 3.0])
    >>> np.round(L, 6)  # L[i, j] = l(pos_i - neg_j)
    array([[0.313262, 2.126928],
           [0.126928, 1.313262]])
    >>> round(float(L[1, 0]), 6) == round(bpr_loss(2.0 - 0.0), 6)
    True
    """
    pos = _finite_array(pos_scores, "pos_scores")
    neg = _finite_array(neg_scores, "neg_scores")
    return np.logaddexp(0.0, -(pos[:, None] - neg[None, :]))


def softmax_weights(values: ArrayLike, tau: ArrayLike) -> np.ndarray:
    """Softmax weights ``w_j = exp(v_j / tau) / sum_k exp(v_k / tau)`` along the last axis.

    Parameters
    ----------
    values : array_like, shape (..., n), finite
    tau : float or array_like broadcastable to ``values.shape[:-1]``, each in [0, inf]
        Temperature.  ``tau = 0`` is the limit tau -> 0+ (uniform on the maximal values);
        ``tau = inf`` gives uniform weights.

    Returns
    -------
    ndarray, shape (..., n); each row is non-negative and sums to 1.

    Notes
    -----
    Max-subtracted, so any finite values work (losses in the hundreds, tau = 1e-3).  The
    Softmax-v weights of Eq. 23 (``values`` = losses) and the score-softmax distribution of
    Eq. 3 (``values`` = negative scores).  Row by row the same as the numba kernel
    :func:`softmax_weights_row`.

    Examples
    --------
    >>> np.round(softmax_weights([0.0, np.log(3.0)], 1.0), 6)
    array([0.25, 0.75])
    >>> np.round(softmax_weights([[2.0, 2.0, 1.0], [5.0, 0.0, 1.0]], [0.0, np.inf]), 6)  # per-row tau: 0, inf
    array([[0.5     , 0.5     , 0.      ],
           [0.333333, 0.333333, 0.333333]])
    """
    x = _finite_array(values, "values", batched=True)
    t = _check_nonnegative(tau, "tau", allow_inf=True)
    try:
        t = np.broadcast_to(t, x.shape[:-1])[..., None]
    except ValueError as exc:
        raise ValueError(
            f"tau must be a scalar or broadcast to values.shape[:-1] = {x.shape[:-1]}") from exc
    mx = x.max(axis=-1, keepdims=True)
    hard = t == 0.0
    with np.errstate(divide="ignore", invalid="ignore"):
        z = np.where(hard, np.where(x == mx, 0.0, -np.inf), (x - mx) / np.where(hard, 1.0, t))
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


# --------------------------------------------------------------------------------------
# OPAUC surrogate, DNS, CVaR (Lemma 1, Theorem 1)
# --------------------------------------------------------------------------------------
def opauc_rank_weights(n_neg: int, beta: float) -> np.ndarray:
    """Weights of the OPAUC(beta) surrogate over negative ranks (Eq. 8-9), best rank first.

    Parameters
    ----------
    n_neg : int >= 1
        Number of negatives.
    beta : float in (0, 1]
        OPAUC level (maximal false positive rate).

    Returns
    -------
    ndarray, shape (n_neg,)
        With ``k = n_neg * beta`` (rounded when within 1e-9 of an integer): ``1 / k`` on ranks
        ``1 .. floor(k)``, ``(k - floor(k)) / k`` on rank ``floor(k) + 1``, 0 elsewhere.  Sums to
        1; this is also the maximizing Q of the CVaR-DRO problem (Lemma 1), ``dQ/dP0 <= 1/beta``.

    Notes
    -----
    Fractional ``k``: the exact area under the empirical ROC step curve over FPR in [0, beta]
    gives the next negative the fractional weight, consistent with :func:`cvar`.

    Examples
    --------
    >>> np.round(opauc_rank_weights(10, 0.3), 6)  # k = 3: 1/3 on the 3 hardest negatives
    array([0.333333, 0.333333, 0.333333, 0.      , 0.      , 0.      ,
           0.      , 0.      , 0.      , 0.      ])
    >>> np.round(opauc_rank_weights(4, 0.375), 6)  # k = 1.5: 1/1.5 on rank 1, 0.5/1.5 on rank 2
    array([0.666667, 0.333333, 0.      , 0.      ])
    """
    n_neg = check_int(n_neg, "n_neg", low=1, integral_floats=True)
    beta = check_fraction(beta, "beta")
    k = _level_count(n_neg, beta)
    w = np.zeros(n_neg)
    full = math.floor(k)
    w[:full] = 1.0 / k
    if full < n_neg:
        w[full] = (k - full) / k
    return w


def opauc_surrogate(pos_scores: ArrayLike, neg_scores: ArrayLike, beta: float, *,
                    reduction: str = "mean") -> float:
    """OPAUC(beta) surrogate of one context (Eq. 9).

    ``(1/n_pos) sum_i (1/(n_neg beta)) sum_{j in top n_neg*beta negatives} l(r_ci - r_cj)``.

    Parameters
    ----------
    pos_scores, neg_scores : array_like, 1-D, finite, non-empty
        Scores of the context's positives and negatives (higher = better).
    beta : float in (0, 1]
        Level; ``beta = 1`` is the full AUC surrogate (plain BPR with uniform negatives).
    reduction : {"mean", "sum"}
        Mean over positives (default, Eq. 9) or sum (the scale of Eq. 1).

    Returns
    -------
    float
        In (0, inf).

    Notes
    -----
    Implemented in the primal form: negatives sorted by score (descending) and weighted by
    :func:`opauc_rank_weights` (fractional ``n_neg * beta``: the next negative gets the
    fractional weight).  Lemma 1: per positive this equals ``cvar(losses, beta)[0]``;
    Theorem 1: for ``beta = m / n_neg`` it equals ``dns_objective(..., m)``.

    Examples
    --------
    >>> pos, neg = [1.0, 2.0], [0.0, 0.5, -1.0, 3.0]
    >>> round(opauc_surrogate(pos, neg, 0.5), 6)  # beta = 1/2: the 2 top-scored negatives, 3.0 and 0.5
    1.02892
    >>> round(float(np.mean([bpr_loss(p - np.array([3.0, 0.5])).mean() for p in pos])), 6)
    1.02892
    """
    pos = _finite_array(pos_scores, "pos_scores")
    neg = _finite_array(neg_scores, "neg_scores")
    check_choice(reduction, "reduction", REDUCTIONS)
    w = opauc_rank_weights(neg.size, beta)
    used = int(np.count_nonzero(w))
    top = -np.sort(-neg)[:used]
    per_positive = np.logaddexp(0.0, -(pos[:, None] - top[None, :])) @ w[:used]
    return _reduce(per_positive, reduction)


def dns_objective(pos_scores: ArrayLike, neg_scores: ArrayLike, m: int, *,
                  reduction: str = "mean") -> float:
    """BPR under DNS sampling over all negatives (Eq. 1 with the P_ns of Eq. 2), one context.

    ``(1/n_pos) sum_i (1/m) sum_{j in the m highest-scored negatives} l(r_ci - r_cj)``.

    Parameters
    ----------
    pos_scores, neg_scores : array_like, 1-D, finite, non-empty
    m : int in [1, n_neg]
        Number of hardest negatives that share the sampling mass (M of Eq. 2).  Floats within
        1e-9 of an integer are accepted (e.g. ``beta * n_neg``).
    reduction : {"mean", "sum"}
        Mean over positives (default) or sum (Eq. 1 as written).

    Returns
    -------
    float

    Notes
    -----
    Theorem 1 (Eq. 14): with ``m = n_neg * beta`` this equals :func:`opauc_surrogate` at
    ``beta`` (same reduction).  Ties in score at the m-th place do not matter (equal losses).
    Implemented by partial selection (``np.partition``), independently of the sorted/weighted
    path of :func:`opauc_surrogate`.

    Examples
    --------
    >>> pos, neg = [1.0, 2.0], [0.0, 0.5, -1.0, 3.0]
    >>> round(dns_objective(pos, neg, 2), 6)  # the 2 hardest negatives share the mass
    1.02892
    >>> round(opauc_surrogate(pos, neg, 2 / 4), 6)  # Theorem 1: OPAUC(beta = M / n_neg)
    1.02892
    """
    pos = _finite_array(pos_scores, "pos_scores")
    neg = _finite_array(neg_scores, "neg_scores")
    m = check_int(m, "m", low=1, high=neg.size, high_name="n_neg", integral_floats=True)
    check_choice(reduction, "reduction", REDUCTIONS)
    top = np.partition(neg, neg.size - m)[neg.size - m:]
    per_positive = np.logaddexp(0.0, -(pos[:, None] - top[None, :])).mean(axis=1)
    return _reduce(per_positive, reduction)


def cvar(losses: ArrayLike, beta: float) -> tuple[float | np.ndarray, float | np.ndarray]:
    """Conditional value at risk of a finite loss vector via its dual (Eqs. 15-16), exactly.

    ``CVaR_beta(L) = min_eta { eta + (1/beta) E_P0[(L - eta)_+] }``, P0 uniform over the n
    losses.

    Parameters
    ----------
    losses : array_like, shape (..., n), finite
        Loss vector(s); the CVaR is taken along the last axis.
    beta : float in (0, 1]
        Level: the top ``beta`` fraction of the losses is averaged.

    Returns
    -------
    value : float or ndarray of shape (...)
        The minimum of the dual; equals the mean of the top ``k = n beta`` losses with the
        fractional weight ``(k - floor k) / k`` on the next one (Lemma 1, Eq. 9).
    eta : float or ndarray of shape (...)
        A minimizing eta (Eq. 16): the beta *upper quantile* ``eta = L_(ceil(n beta))``, the
        ``ceil(n beta)``-th largest loss, i.e. the smallest loss of the top-beta set.
        It is the unique minimizer when ``n beta`` is not an integer; when ``n beta = k`` is an
        integer, every eta in ``[L_(k+1), L_(k)]`` is optimal and the upper end ``L_(k)`` is
        returned (``eta = sup{t : P0(L >= t) >= beta}``).

    Notes
    -----
    The dual objective ``D(eta) = eta + sum_j (L_j - eta)_+ / (n beta)`` is convex and piecewise
    linear with slope ``1 - #{L > eta} / (n beta)``; it changes sign at ``L_(ceil(n beta))``.
    The value returned is ``D(eta)`` evaluated at that eta (exact up to rounding).
    ``n beta`` within 1e-9 (relative) of an integer is rounded to it.

    References
    ----------
    Rockafellar and Uryasev (2000); Zhu et al. (ICML 2022), Lemma 1; paper Eqs. 13-16.

    Examples
    --------
    >>> losses = [5.0, 1.0, 3.0, 4.0, 2.0]
    >>> cvar(losses, 0.4)  # the mean of the top 40% {5, 4}; eta = the 2nd largest loss
    (4.5, 4.0)
    >>> value, eta = cvar(losses, 0.3)  # k = 1.5: (5 + 0.5 * 4) / 1.5
    >>> round(value, 6), eta
    (4.666667, 4.0)
    """
    L = _finite_array(losses, "losses", batched=True)
    beta = check_fraction(beta, "beta")
    n = L.shape[-1]
    k = _level_count(n, beta)
    j = math.ceil(k)  # rank (1-based, descending) of the upper quantile
    desc = -np.sort(-L, axis=-1)
    eta = desc[..., j - 1]
    value = eta + np.maximum(L - eta[..., None], 0.0).sum(axis=-1) / k
    return _finish(value), _finish(eta)


# --------------------------------------------------------------------------------------
# KL-DRO and Softmax-v (Theorem 2)
# --------------------------------------------------------------------------------------
def _one_plus_x_log1p_minus_x(e):
    """``(1 + e) log1p(e) - e >= 0`` for e > -1, accurate also for tiny |e| (series)."""
    with np.errstate(invalid="ignore", divide="ignore"):
        direct = (1.0 + e) * np.log1p(e) - e
    # Series sum_{k=2}^{15} (-1)^k e^k / (k (k-1)) by Horner; for |e| < 0.05 the truncation
    # error is below 1e-18 relative to the leading term e^2 / 2.
    series = np.zeros_like(e)
    for k in range(15, 1, -1):
        series = series * e + (-1.0) ** k / (k * (k - 1))
    series = series * e * e
    return np.where(np.abs(e) < 0.05, series, direct)


def _kl_state(z, t):
    """For centered losses z (mean 0) and inverse temperature t > 0.

    Returns (kl, lme, logw): KL(w_t || uniform), log mean exp(t z), log weights.
    """
    n = z.size
    a = t * z
    span = a.max() - a.min()
    if span <= 1.0:
        # Small t: with e = n w - 1 (small), KL = mean((1 + e) log1p(e) - e), a sum of
        # non-negative terms computed by a series: no cancellation, accurate for tiny rho.
        lme = math.log1p(np.mean(np.expm1(a)))
        e = np.expm1(a - lme)
        kl = float(np.mean(_one_plus_x_log1p_minus_x(e)))
        logw = np.log1p(e) - math.log(n)
    else:
        lse = special.logsumexp(a)
        lme = lse - math.log(n)
        logw = a - lse
        kl = float(np.dot(np.exp(logw), logw) + math.log(n))
    return max(kl, 0.0), float(lme), logw


def kl_dro_dual(losses: ArrayLike, rho: float, lam: ArrayLike) -> float | np.ndarray:
    """Dual objective of the KL-constrained DRO problem (Eq. 21) at temperature ``lam``.

    ``D(lam) = lam * log E_P0[exp(L / lam)] + lam * rho``, P0 uniform over the n losses.

    Parameters
    ----------
    losses : array_like, 1-D, finite
    rho : float > 0
        KL radius.
    lam : float or array_like, each >= 0
        ``lam = 0`` is the limit lam -> 0+, ``max(L)``.

    Returns
    -------
    float or ndarray
        ``D(lam)``, computed without overflow (log-sum-exp around max(L)).  By weak duality
        every ``D(lam)`` is >= the KL-DRO value; the minimum over lam equals it.

    Examples
    --------
    >>> L = np.array([0.0, 1.0, 2.0, 3.0])
    >>> round(kl_dro_dual(L, 0.1, 1.0), 6)
    2.153895
    >>> bool(kl_dro_dual(L, 0.1, 1.0) >= kl_dro(L, 0.1)[0])  # weak duality
    True
    >>> kl_dro_dual(L, 0.1, 0.0)  # lam -> 0: max(L)
    3.0
    """
    L = _finite_array(losses, "losses")
    rho = _check_rho(rho)
    lam_arr = _check_nonnegative(lam, "lam", allow_inf=False)
    Lmax = L.max()
    zmax = L - Lmax
    log_n = math.log(L.size)
    out = np.empty(lam_arr.shape)
    for idx, value in np.ndenumerate(lam_arr):
        if value == 0.0:
            out[idx] = Lmax
        else:
            out[idx] = Lmax + value * (special.logsumexp(zmax / value) - log_n + rho)
    return _finish(out)


def kl_dro(losses: ArrayLike, rho: float) -> tuple[float, float, np.ndarray]:
    """KL-constrained worst-case expected loss (Eqs. 13, 21-23), solved exactly.

    ``V(rho) = max { E_Q[L] : Q << P0, KL(Q || P0) <= rho }``, P0 uniform over the n losses,
    ``= min_{lam >= 0} lam log E_P0[exp(L / lam)] + lam rho`` (Eq. 21).

    Parameters
    ----------
    losses : array_like, 1-D, finite, non-empty
        Losses of one (context, positive) over its negatives (or over a pool).
    rho : float in (0, inf]
        KL radius; the paper pairs it with the CVaR level ``beta = exp(-rho)``.

    Returns
    -------
    value : float
        ``V(rho)``: the dual objective at the optimal lam, which equals the softmax-weighted
        loss ``E_P0[e^{L/lam} L] / E_P0[e^{L/lam}]`` (Eq. 23).
    lam : float
        The optimal temperature (the fixed point of Eq. 22); 0 in the degenerate case.
    weights : ndarray, shape (n,)
        The worst-case Q: ``softmax(L / lam)``; ``KL(weights || uniform) = rho``.

    Notes
    -----
    Solved in the inverse temperature ``t = 1/lam``: the stationarity condition of Eq. 21
    (Eq. 22, ``lam (log E e^{L/lam} + rho) = E_w[L]``) is equivalent to
    ``KL(softmax(t L) || uniform) = rho``, and ``t -> KL`` increases from 0 (t = 0) to
    ``log(n / n_max)`` (t -> inf), with derivative ``t Var_w(L)``, where ``n_max`` is the number
    of losses equal to the maximum.  The root is bracketed starting from the Eq. 25 guess
    ``t0 = sqrt(2 rho / Var L)`` and found by Brent's method to machine precision; every
    quantity is computed in units of the spread of L, centered (log-sum-exp for large t; for
    small t, ``e = n w - 1`` and a series for ``(1 + e) log1p(e) - e``), so losses in the
    hundreds (or 1e-200) and radii down to 1e-20 are solved to machine precision.  The
    returned weights are doubles: ``KL(weights || uniform)`` recomputed from them matches rho
    to about ``1e-16 / rho`` relative (1e-10 at rho = 1e-6).  Losses whose differences are
    subnormal (< 2.2e-308) are not supported (lam underflows).

    Degenerate case: if ``rho >= log(n / n_max)`` (in particular ``rho >= log(n)``, or all
    losses equal), the KL ball contains the uniform distribution on the maximal losses, so
    ``value = max(L)``, ``lam = 0`` and ``weights`` are uniform on the argmax set.

    References
    ----------
    Zhu et al. (ICML 2022), SOPA-s; Ben-Tal et al., "Robust solutions of optimization problems
    affected by uncertain probabilities", Management Science 59(2), 2013 (KL dual).

    Examples
    --------
    >>> L = np.array([0.0, 1.0, 2.0, 3.0])
    >>> value, lam, w = kl_dro(L, 0.1)
    >>> round(value, 6), round(lam, 6)
    (1.994274, 2.413506)
    >>> round(float(w @ L), 6)  # Eq. 23: the softmax(L / lam)-weighted loss
    1.994274
    >>> round(float(np.sum(w * np.log(w * L.size))), 6)  # KL(w || uniform) = rho
    0.1
    >>> kl_dro(L, 2.0)[:2]  # rho >= log(n): the maximum, lam = 0
    (3.0, 0.0)
    """
    L = _finite_array(losses, "losses")
    rho = _check_rho(rho, allow_inf=True)
    n = L.size
    Lmax = L.max()
    at_max = L == Lmax
    n_max = int(at_max.sum())
    if rho >= math.log(n / n_max):
        return float(Lmax), 0.0, at_max / n_max

    # Work in units of the spread (a power of two times the scale of L, so that tiny or huge
    # losses neither underflow nor overflow); t below is the inverse temperature in those units.
    scale = 2.0 ** math.frexp(float(np.max(np.abs(L))))[1]
    Ls = L / scale  # exact (power of two)
    mean_s = float(Ls.mean())
    spread_s = float(Ls.max() - Ls.min())  # > 0: not all losses are equal here
    z = (Ls - mean_s) / spread_s  # centered, range 1
    var = float(np.mean(z * z))  # >= 1 / (2 n^2) > 0

    def excess(t):
        return _kl_state(z, t)[0] - rho

    t0 = math.sqrt(2.0 * rho / var)  # Eq. 25 in these units
    lo, hi = t0, t0
    if excess(t0) < 0.0:
        hi = 2.0 * t0
        while excess(hi) < 0.0:
            if hi > 1e300:
                # KL(t) never reaches rho in floating point: rho is within rounding of
                # log(n / n_max), the degenerate case.
                return float(Lmax), 0.0, at_max / n_max
            lo, hi = hi, 2.0 * hi
    else:
        lo = 0.5 * t0
        while excess(lo) >= 0.0:  # terminates: KL(t) -> 0 as t -> 0
            hi, lo = lo, 0.5 * lo
    if excess(hi) == 0.0:
        t = hi
    else:
        t = optimize.brentq(excess, lo, hi, xtol=1e-300, rtol=4.0 * np.finfo(float).eps,
                            maxiter=500)
    _, lme, logw = _kl_state(z, t)
    lam_s = spread_s / t  # temperature in units of scale
    weights = np.exp(logw)
    weights /= weights.sum()
    lam = lam_s * scale
    value = scale * (mean_s + lam_s * (lme + rho))  # the dual objective of Eq. 21 at lam
    return float(value), float(lam), weights


def softmax_v_tau(losses: ArrayLike, rho: float, *, ddof: int = 0) -> float | np.ndarray:
    """Softmax-v temperature ``tau = sqrt(Var L / (2 rho))`` (Eq. 25; Eqs. 17-18).

    Parameters
    ----------
    losses : array_like, shape (..., n), finite
        Losses of one (context, positive) over its pool; the variance is along the last axis.
    rho : float > 0
        KL radius (larger = harder).
    ddof : {0, 1}
        0: population variance, as in Eq. 18 (default); 1: the unbiased variance used by the
        authors' code.

    Returns
    -------
    float or ndarray of shape (...)
        ``tau >= 0``; 0 when all losses are equal (then every softmax weighting is uniform).

    Notes
    -----
    Eq. 25 is the minimizer of the second-order expansion (in 1/lam) of the KL dual (Eq. 24):
    ``lam log E e^{L/lam} + lam rho ~ E L + Var L / (2 lam) + lam rho``.  It is an
    approximation of the exact optimal lam of :func:`kl_dro`:

    * as rho -> 0, ``lam_exact - tau -> kappa_3 / (3 Var L)`` (kappa_3 the third central
      moment; see ``theory.symbolic.theorem2_expansion``), so ``tau / lam_exact -> 1`` with
      relative error O(sqrt(rho));
    * measured on logistic losses ``l(s - r_j)`` of 200 standard-normal negative scores
      (positively skewed, skewness 0.5-5: most negatives easy, a few hard), ``tau < lam_exact``
      from rho -> 0 up to a crossover rho_c, with ``tau / lam_exact`` falling to 0.3-0.9 in
      between: at the same rho, Softmax-v weights the pool *harder* than the exact KL-DRO
      (it acts like the exact KL-DRO at a larger rho).  rho_c grows with the skewness (about
      1.7 at skewness 0.45, 5.0 at 1.4, none below ``log n - 1e-6`` at 5.2); beyond it, and
      always for ``rho >= log(n / n_max)`` where the exact lam is 0 (the max loss, DNS with
      M = 1) while tau stays positive, ``tau > lam_exact`` (softer).  For symmetric losses
      (Gaussian) ``tau > lam_exact`` for all but the smallest rho.

    Examples
    --------
    >>> L = np.array([1.0, 2.0, 3.0, 4.0])  # population variance 1.25
    >>> round(softmax_v_tau(L, 0.625), 6)  # sqrt(1.25 / (2 * 0.625))
    1.0
    >>> round(softmax_v_tau(L, 0.625, ddof=1), 6)  # the unbiased variance 5/3
    1.154701
    """
    L = _finite_array(losses, "losses", batched=True)
    rho = _check_rho(rho)
    ddof = check_choice(ddof, "ddof", (0, 1))
    check_int(L.shape[-1], f"the number of losses along the last axis (ddof = {ddof})",
              low=ddof + 1)
    return _finish(np.sqrt(np.var(L, axis=-1, ddof=ddof) / (2.0 * rho)))


def softmax_v_objective(losses: ArrayLike, rho: float, *, ddof: int = 0) -> float | np.ndarray:
    """Softmax-v objective of one (context, positive): Eq. 23 at the Eq. 25 temperature.

    ``sum_j softmax(L / tau)_j L_j`` with ``tau = softmax_v_tau(L, rho, ddof)``.

    Parameters
    ----------
    losses : array_like, shape (..., n), finite
        Pair losses over the negatives (or the pool of N negatives of Softmax-v(rho, N));
        one objective per row of the last axis.
    rho : float > 0
    ddof : {0, 1}
        Variance convention of :func:`softmax_v_tau`.

    Returns
    -------
    float or ndarray of shape (...)
        Between ``mean(L)`` and ``max(L)``.  The weights are constants (no gradient through
        them), as in the paper's Algorithm 2.  Compare with ``kl_dro(L, rho)[0]``, the exact
        value at the same rho.

    Examples
    --------
    >>> L = np.array([1.0, 2.0, 3.0, 4.0])
    >>> round(softmax_v_objective(L, 0.625), 6)  # tau = 1: softmax(L) @ L
    3.492653
    >>> round(float(np.exp(L) @ L / np.exp(L).sum()), 6)
    3.492653
    >>> round(kl_dro(L, 0.625)[0], 6)  # the exact KL-DRO value at the same rho
    3.654843
    """
    L = _finite_array(losses, "losses", batched=True)
    tau = softmax_v_tau(L, rho, ddof=ddof)
    w = softmax_weights(L, tau)
    return _finish((w * L).sum(axis=-1))


def score_softmax_probabilities(neg_scores: ArrayLike, tau: float) -> np.ndarray:
    """Score-softmax negative-sampling distribution (Eq. 3): ``P(j) ~ exp(r_cj / tau)``.

    Parameters
    ----------
    neg_scores : array_like, shape (..., n_neg), finite
    tau : float in [0, inf]
        Temperature; smaller = harder.  ``tau = 0`` is the limit (uniform on the top-scored
        negatives: DNS with M = 1 when the top score is unique); ``tau = inf`` is uniform (BPR).

    Returns
    -------
    ndarray, same shape; rows sum to 1.

    Examples
    --------
    >>> np.round(score_softmax_probabilities([0.0, np.log(3.0)], 1.0), 6)
    array([0.25, 0.75])
    >>> score_softmax_probabilities([1.0, 3.0, 2.0], 0.0)  # tau = 0: DNS with M = 1
    array([0., 1., 0.])
    """
    s = _finite_array(neg_scores, "neg_scores", batched=True)
    t = check_real(tau, "tau", low=0.0, allow_inf=True)
    return softmax_weights(s, t)


def score_softmax_objective(pos_scores: ArrayLike, neg_scores: ArrayLike, tau: float, *,
                            reduction: str = "mean") -> float:
    """BPR under score-softmax sampling (Eq. 1 with Eq. 3), one context.

    ``(1/n_pos) sum_i sum_j P(j) l(r_ci - r_cj)``, ``P = score_softmax_probabilities``.
    The sampling law does not depend on the positive.

    Examples
    --------
    >>> neg = np.array([0.0, np.log(3.0)])  # sampled with probabilities 1/4, 3/4
    >>> round(score_softmax_objective([1.0], neg, 1.0), 6)
    0.636067
    >>> round(float(0.25 * bpr_loss(1.0 - neg[0]) + 0.75 * bpr_loss(1.0 - neg[1])), 6)
    0.636067
    """
    pos = _finite_array(pos_scores, "pos_scores")
    neg = _finite_array(neg_scores, "neg_scores")
    p = score_softmax_probabilities(neg, tau)
    check_choice(reduction, "reduction", REDUCTIONS)
    per_positive = np.logaddexp(0.0, -(pos[:, None] - neg[None, :])) @ p
    return _reduce(per_positive, reduction)


# --------------------------------------------------------------------------------------
# DNS(M, N): exact sampling laws (order statistics)
# --------------------------------------------------------------------------------------
def check_dns_pool(m, n) -> tuple[int, int]:
    """DNS(M, N)'s pool, checked: n >= 1 draws, of which the top m, 1 <= m <= n, are used.

    The one check of (M, N) for theory/ (estimators and symbolic); integral floats are accepted.

    Examples
    --------
    >>> check_dns_pool(5, 200.0)
    (5, 200)
    >>> check_dns_pool(6, 5)
    Traceback (most recent call last):
    ...
    ValueError: m must be an integer in [1, the pool size n = 5]; got 6
    """
    n = check_int(n, "n", low=1, integral_floats=True)
    m = check_int(m, "m", low=1, high=n, high_name="the pool size n", integral_floats=True)
    return m, n


def _check_dns_mn(n_neg, m, n, replace):
    """DNS(M, N) over n_neg negatives: the pool rule, and n <= n_neg without replacement."""
    n_neg = check_int(n_neg, "n_neg", low=1, integral_floats=True)
    m, n = check_dns_pool(m, n)
    replace = check_bool(replace, "replace")
    if not replace:
        check_int(n, "n (the pool size, drawn without replacement)", high=n_neg,
                  high_name="n_neg")
    return n_neg, m, n, replace


def dns_mn_rank_probabilities(n_neg: int, m: int, n: int, *, replace: bool = True) -> np.ndarray:
    """Exact law of DNS(M, N) over negative ranks (Algorithm 1; Fig. 7 of the paper).

    A pool of ``n`` negatives is drawn uniformly (with or without replacement) from ``n_neg``
    negatives with distinct scores; the ``m`` highest-scored pool draws get weight ``1/m``
    each (with replacement, duplicates count as separate draws).  Returns the expected weight
    ``p_r`` on the negative of rank r (r = 1 the highest-scored), which is also the
    probability that the variant "pick one of the top m uniformly" samples rank r.

    Parameters
    ----------
    n_neg : int >= 1
        Number of negatives.
    m : int in [1, n]
        M of DNS(M, N).
    n : int >= 1
        Pool size N (``n <= n_neg`` when ``replace=False``).
    replace : bool
        Pool drawn with replacement (default; the authors' code) or without.

    Returns
    -------
    ndarray, shape (n_neg,)
        ``p_1 >= p_2 >= ... >= p_{n_neg} >= 0``, summing to 1.

    Notes
    -----
    Let ``X_(1) <= ... <= X_(n)`` be the pool's ranks sorted (order statistics).  The weight
    on ranks ``<= r`` is ``F(r) = (1/m) sum_{k=1}^m P(X_(k) <= r) = E[min(B_r, m)] / m`` with
    ``B_r`` the number of pool draws of rank ``<= r``: ``B_r ~ Binomial(n, r / n_neg)`` with
    replacement, ``Hypergeometric(n_neg, r, n)`` without.

    With replacement, ``p_r = F(r) - F(r - 1)``, computed from ``F`` or from
    ``1 - F = E[(m - B_r)_+] / m`` (sums of positive terms), whichever is below 1/2, so small
    tail probabilities keep their relative accuracy (about 1e-10 relative or better for
    n_neg ~ 1e5).  Without replacement, directly
    ``p_r = n / (n_neg m) * P(Hypergeometric(n_neg - 1, r - 1, n - 1) <= m - 1)`` (rank r is
    in the pool with probability n / n_neg, and then is among the top m iff fewer than m of
    the other n - 1 pool members are better), by an exact positive recurrence over r in a
    numba kernel.  Cost O(m n_neg) either way (well under a second for n_neg = 41k, m = 20,
    n = 200).

    ``p`` is non-increasing in r (``F`` is concave: ``p_r`` is ``n/(m n_neg)`` times a
    binomial / hypergeometric CDF at ``m - 1``), hence a DNS(M, N) objective is a mixture of
    OPAUC surrogates; see :func:`dns_mn_beta_mixture`.  Its mean rank is given in
    ``theory.symbolic.dns_mn_mean_quantile``.

    Examples
    --------
    >>> np.round(dns_mn_rank_probabilities(3, 1, 2), 6)  # min of 2 draws from 3: 5/9, 3/9, 1/9
    array([0.555556, 0.333333, 0.111111])
    >>> dns_mn_rank_probabilities(4, 2, 4, replace=False)  # the whole pool: the top 2 ranks
    array([0.5, 0.5, 0. , 0. ])
    """
    n_neg, m, n, replace = _check_dns_mn(n_neg, m, n, replace)
    if not replace:
        out = np.empty(n_neg)
        _dns_mn_without_replacement_kernel(n_neg, m, n, out)
        return out
    r = np.arange(n_neg + 1)
    k = np.arange(m)[:, None]
    dist = stats.binom(n, (r / n_neg)[None, :])
    F = dist.sf(k).sum(axis=0) / m  # E[min(B_r, m)] / m
    G = dist.cdf(k).sum(axis=0) / m  # E[(m - B_r)_+] / m = 1 - F
    p = np.where(G[:-1] < 0.5, G[:-1] - G[1:], F[1:] - F[:-1])
    return np.maximum(p, 0.0)


def dns_mn_beta_mixture(n_neg: int, m: int, n: int, *,
                        replace: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """DNS(M, N) as an exact mixture of OPAUC(beta) surrogates.

    Because the rank law ``p`` of :func:`dns_mn_rank_probabilities` is non-increasing,
    ``sum_r p_r L_(r) = sum_k c_k CVaR_{k/n_neg}(L)`` for every loss vector sorted descending,
    with ``c_k = k (p_k - p_{k+1}) >= 0`` (``p_{n_neg+1} = 0``) and ``sum_k c_k = 1`` (Abel
    summation).  So the expected DNS(M, N) objective is ``sum_k c_k * OPAUC-surrogate(k/n_neg)``:
    the precise meaning of "DNS(M, N) estimates OPAUC(beta ~ M/N)".

    Returns
    -------
    betas : ndarray, shape (n_neg,)
        ``k / n_neg`` for k = 1..n_neg.
    weights : ndarray, shape (n_neg,)
        ``c_k``; non-negative (up to rounding, clipped at 0) and summing to 1.

    Notes
    -----
    In the continuous limit (n_neg -> inf, with replacement) the mixing law of beta is
    ``Beta(M + 1, N - M)`` (for M < N), with mean ``(M + 1)/(N + 1)`` and mode
    ``M / (N - 1)``; see ``theory.symbolic.dns_mn_continuous_limit``.  For M = N every draw is
    used: a point mass at beta = 1 (plain BPR).

    Examples
    --------
    >>> betas, c = dns_mn_beta_mixture(3, 1, 2)  # law 5/9, 3/9, 1/9
    >>> np.round(betas, 6), np.round(c, 6)  # c_k = k (p_k - p_(k+1)): 2/9, 4/9, 3/9
    (array([0.333333, 0.666667, 1.      ]), array([0.222222, 0.444444, 0.333333]))
    >>> round(float(c.sum()), 6)
    1.0
    """
    p = dns_mn_rank_probabilities(n_neg, m, n, replace=replace)
    k = np.arange(1, p.size + 1)
    c = k * (p - np.append(p[1:], 0.0))
    return k / p.size, np.maximum(c, 0.0)


def dns_mn_objective(pos_scores: ArrayLike, neg_scores: ArrayLike, m: int, n: int, *,
                     replace: bool = True, reduction: str = "mean") -> float:
    """Expected BPR loss under DNS(M, N) for given scores, exactly (Algorithm 1).

    ``(1/n_pos) sum_i sum_r p_r l(r_ci - r_c(r))``, with ``r_c(r)`` the r-th highest negative
    score and ``p`` the rank law of :func:`dns_mn_rank_probabilities` (pool of ``n`` uniform
    draws over all negatives, the top ``m`` of the pool weighted ``1/m``).

    Parameters
    ----------
    pos_scores, neg_scores : array_like, 1-D, finite, non-empty
    m, n : int
        DNS(M, N) parameters, ``1 <= m <= n``.
    replace : bool
        Pool with replacement (default) or without (``n <= n_neg``).
    reduction : {"mean", "sum"}

    Returns
    -------
    float
        Compare with ``opauc_surrogate(pos, neg, m / n)`` to *measure* how well DNS(M, N)
        estimates OPAUC(M/N); exactly it equals a mixture over beta (:func:`dns_mn_beta_mixture`).
        Ties in negative scores do not matter (tied negatives have equal losses).

    Examples
    --------
    >>> pos, neg = [0.5], np.array([0.0, 1.0, 2.0])
    >>> round(dns_mn_objective(pos, neg, 1, 2), 6)
    1.322597
    >>> p = dns_mn_rank_probabilities(3, 1, 2)  # ranks: 2.0, 1.0, 0.0
    >>> round(float(p @ bpr_loss(0.5 - np.array([2.0, 1.0, 0.0]))), 6)
    1.322597
    """
    pos = _finite_array(pos_scores, "pos_scores")
    neg = _finite_array(neg_scores, "neg_scores")
    check_choice(reduction, "reduction", REDUCTIONS)
    p = dns_mn_rank_probabilities(neg.size, m, n, replace=replace)
    desc = -np.sort(-neg)
    per_positive = np.logaddexp(0.0, -(pos[:, None] - desc[None, :])) @ p
    return _reduce(per_positive, reduction)


def _check_quantile(q):
    """Score quantiles: a number or array (any shape), each in [0, 1]."""
    q_arr = check_array(q, "q", ndim=np.ndim(q), non_empty=False).reshape(np.shape(q))
    return _first_bad(q_arr, "q", (q_arr >= 0.0) & (q_arr <= 1.0),
                      partial(check_fraction, allow_zero=True))


def dns_mn_quantile_cdf(q: ArrayLike, m: int, n: int) -> float | np.ndarray:
    """Continuous-score limit of DNS(M, N): cumulative weight on the top ``q`` score quantile.

    ``F(q) = E[min(Binomial(n, q), m)] / m``: the expected share of the DNS(M, N) weight on
    negatives whose score is in the top fraction ``q`` (n_neg -> inf; the curve of Fig. 7
    against the score quantile).  ``dns_mn_rank_probabilities(n_neg, m, n).cumsum()[r-1]``
    equals ``F(r / n_neg)`` exactly (with replacement).

    Examples
    --------
    >>> dns_mn_quantile_cdf(0.5, 1, 2)  # P(min of 2 uniforms <= 1/2) = 3/4
    0.75
    >>> np.round(dns_mn_quantile_cdf([0.25, 0.5, 1.0], 1, 2), 6)
    array([0.4375, 0.75  , 1.    ])
    >>> np.round(np.cumsum(dns_mn_rank_probabilities(4, 1, 2))[[0, 1, 3]], 6)  # the discrete law at r / n_neg
    array([0.4375, 0.75  , 1.    ])
    """
    q_arr = _check_quantile(q)
    m, n = check_dns_pool(m, n)
    k = np.arange(m).reshape((m,) + (1,) * q_arr.ndim)
    return _finish(stats.binom.sf(k, n, q_arr[None]).sum(axis=0) / m)


def dns_mn_quantile_density(q: ArrayLike, m: int, n: int) -> float | np.ndarray:
    """Density of :func:`dns_mn_quantile_cdf`: ``f(q) = (n/m) P(Binomial(n - 1, q) <= m - 1)``.

    Equivalently ``(1/m) sum_{k=1}^m Beta(k, n - k + 1)`` pdf (the top m order statistics of n
    uniforms).  Non-increasing in q, ``f(0) = n / m``, mean ``(m + 1) / (2 (n + 1))``.

    Examples
    --------
    >>> dns_mn_quantile_density([0.0, 0.5, 1.0], 1, 2)  # 2 (1 - q): the min of 2 uniforms
    array([2., 1., 0.])
    >>> round(dns_mn_quantile_density(0.0, 3, 10), 6)  # f(0) = n / m
    3.333333
    """
    q_arr = _check_quantile(q)
    m, n = check_dns_pool(m, n)
    return _finish(n / m * stats.binom.cdf(m - 1, n - 1, q_arr))
