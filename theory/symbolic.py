"""Sympy derivations behind the paper's results (Sections 2-3 of ../shared/PAPER.md).

Each function derives one result and returns the sympy expressions (as a NamedTuple) that the
tests compare with the numeric functions of :mod:`theory.estimators` and :mod:`theory.bounds`,
and that figures can print or plot.  Nothing is hard-coded that can be derived: counts come from
the arrangements, bounds from solving, expansions from series, laws from enumeration.

1. :func:`theorem3_derivation`: Theorem 3, the largest / smallest OPAUC count with i hits in
   the top K (from the two arrangements of the proof) and the bounds solved from them.
2. :func:`theorem2_expansion`: Theorem 2, the expansion of the KL dual in 1/lam (Eq. 24), its
   minimizer (Eq. 25), and the next-order correction that sets the sign of Eq. 25's error.
3. :func:`cvar_dual_derivation`: Lemma 1 / Theorem 1, the CVaR dual of a finite loss vector,
   piece by piece, showing that the minimizing eta is the beta upper quantile (Eq. 16).
4. :func:`dns_mn_law_enumerated`, :func:`dns_mn_law_closed_form`,
   :func:`dns_mn_continuous_limit`, :func:`dns_mn_mean_quantile`: the DNS(M, N) rank law.

Sympy is imported at module import (this module is only needed by tests, checks, figures).

References
----------
Shi et al., "On the Theories Behind Hard Negative Sampling for Recommendation", WWW 2023.
"""
from __future__ import annotations

import itertools
from collections.abc import Sequence
from fractions import Fraction
from typing import NamedTuple

import sympy as sp

from theory.estimators import check_dns_pool
from theory.validation import check_int

__all__ = [
    "CvarDerivation",
    "DnsContinuousLimit",
    "DnsLawClosedForm",
    "DnsMeanQuantile",
    "Theorem2Expansion",
    "Theorem3Derivation",
    "arrangement_count",
    "cvar_dual_derivation",
    "dns_mn_continuous_limit",
    "dns_mn_law_closed_form",
    "dns_mn_law_enumerated",
    "dns_mn_mean_quantile",
    "theorem2_expansion",
    "theorem3_derivation",
]


# --------------------------------------------------------------------------------------
# 1. Theorem 3
# --------------------------------------------------------------------------------------
def arrangement_count(blocks: Sequence[tuple[str, sp.Expr | int]]) -> sp.Expr:
    """OPAUC count of a ranking given as blocks, best first.

    Parameters
    ----------
    blocks : sequence of (kind, size)
        ``kind`` is "pos", "top" (negatives among the k highest-ranked negatives) or "rest"
        (other negatives); ``size`` a sympy expression or int.

    Returns
    -------
    sympy expression
        Number of (positive, top-k negative) pairs with the positive ranked above:
        ``sum over positive blocks of size * (top-k negatives in later blocks)``.

    Examples
    --------
    >>> i, k = sp.symbols('i k')
    >>> arrangement_count((('pos', i), ('top', k - i), ('pos', 2), ('top', i)))  # i (k - i + i) + 2 i
    i*k + 2*i
    >>> arrangement_count((('top', 1), ('pos', 2), ('top', 3), ('rest', 4)))  # 2 positives above 3
    6
    """
    total = sp.Integer(0)
    for idx, (kind, size) in enumerate(blocks):
        if kind == "pos":
            below = sum((s for kd, s in blocks[idx + 1:] if kd == "top"), sp.Integer(0))
            total += size * below
    return sp.expand(total)


class Theorem3Derivation(NamedTuple):
    n_pos: sp.Symbol  # N+
    n_neg: sp.Symbol  # N-
    k: sp.Symbol  # K
    hits: sp.Symbol  # i, positives in the top K
    opauc: sp.Symbol  # A, raw OPAUC(beta = K / N-) (Eq. 8)
    max_blocks: tuple  # the arrangement attaining the largest count
    min_blocks: tuple  # the arrangement attaining the smallest count
    max_count: sp.Expr  # (N+ + K) i - i^2
    min_count: sp.Expr  # i^2
    max_opauc: sp.Expr  # max_count / (N+ N-)
    min_opauc: sp.Expr  # min_count / (N+ N-)
    hits_low: sp.Expr  # real root: i >= (S - sqrt(S^2 - 4 N+ N- A)) / 2
    hits_high: sp.Expr  # real root: i <= sqrt(N+ N- A)
    recall_low: sp.Expr  # floor(hits_low) / N+   (Eq. 19)
    recall_high: sp.Expr  # ceiling(hits_high) / N+ (Eq. 19)
    precision_low: sp.Expr  # floor(hits_low) / K   (Eq. 20)
    precision_high: sp.Expr  # ceiling(hits_high) / K (Eq. 20)


def theorem3_derivation() -> Theorem3Derivation:
    """Theorem 3: extremal OPAUC counts with i hits, and the Top-K bounds solved from them.

    Arrangements (blocks, best first), for i positives in the top K positions:

    * largest count: i positives, K - i top negatives, the other N+ - i positives, the other i
      top-K negatives, the remaining N- - K negatives: ``C_max(i) = (N+ + K) i - i^2``;
    * smallest count: K - i top negatives, i positives, the other i top-K negatives, the
      remaining negatives, the other positives: ``C_min(i) = i^2``.

    Any ranking with i hits has ``C_min(i) <= C <= C_max(i)`` (hits beat at most K and at
    least the i top-K negatives outside the top K; non-hits beat at most those i).  Solving
    ``C_max(i) = N+ N- A`` (smaller root, since i <= K < (N+ + K) / 2) and
    ``C_min(i) = N+ N- A`` gives the real bounds on i; Eqs. 19-20 round them outwards.

    Returns
    -------
    Theorem3Derivation

    Examples
    --------
    >>> d = theorem3_derivation()
    >>> d.max_count, d.min_count
    (K*i + N_pos*i - i**2, i**2)
    >>> d.recall_high.subs({d.n_pos: 5, d.n_neg: 6, d.opauc: sp.Rational(12, 30)})  # ceil(sqrt(12)) / 5
    4/5
    """
    n_pos, n_neg, k = sp.symbols("N_pos N_neg K", positive=True, integer=True)
    i = sp.Symbol("i", nonnegative=True, integer=True)
    a = sp.Symbol("A", nonnegative=True)
    max_blocks = (("pos", i), ("top", k - i), ("pos", n_pos - i), ("top", i),
                  ("rest", n_neg - k))
    min_blocks = (("top", k - i), ("pos", i), ("top", i), ("rest", n_neg - k),
                  ("pos", n_pos - i))
    c_max = arrangement_count(max_blocks)
    c_min = arrangement_count(min_blocks)
    x = sp.Symbol("x", real=True)
    roots = sp.solve(sp.Eq(c_max.subs(i, x), n_pos * n_neg * a), x)
    # The smaller root (it vanishes at A = 0; the other is N+ + K): i <= K < (N+ + K) / 2.
    point = {n_pos: 5, n_neg: 7, k: 3, a: sp.Rational(1, 10)}
    if len(roots) != 2:  # pragma: no cover - would mean sympy changed its output form
        raise RuntimeError(f"unexpected roots {roots}")
    hits_low = min(roots, key=lambda r: float(r.subs(point)))
    hits_high = max(sp.solve(sp.Eq(c_min.subs(i, x), n_pos * n_neg * a), x),
                    key=lambda r: float(r.subs(point)))  # the non-negative root
    return Theorem3Derivation(
        n_pos, n_neg, k, i, a, max_blocks, min_blocks, c_max, c_min,
        c_max / (n_pos * n_neg), c_min / (n_pos * n_neg), hits_low, hits_high,
        sp.floor(hits_low) / n_pos, sp.ceiling(hits_high) / n_pos,
        sp.floor(hits_low) / k, sp.ceiling(hits_high) / k,
    )


# --------------------------------------------------------------------------------------
# 2. Theorem 2
# --------------------------------------------------------------------------------------
class Theorem2Expansion(NamedTuple):
    lam: sp.Symbol  # temperature lambda > 0
    rho: sp.Symbol  # KL radius
    t: sp.Symbol  # inverse temperature 1 / lambda
    mean: sp.Symbol  # E L
    var: sp.Symbol  # kappa_2 = Var L
    kappa3: sp.Symbol  # third central moment (= third cumulant)
    kappa4: sp.Symbol  # fourth cumulant
    cgf_series: sp.Expr  # log E exp(t L) to order t^4, in cumulants
    dual_series: sp.Expr  # lam log E exp(L/lam) + lam rho, to order lam^-3
    dual_second_order: sp.Expr  # Eq. 24: E L + Var L / (2 lam) + lam rho
    lam_approx: sp.Expr  # Eq. 25: sqrt(Var L / (2 rho))
    value_approx: sp.Expr  # Eq. 24 at Eq. 25: E L + sqrt(2 rho Var L)
    kl_series: sp.Expr  # KL(softmax(t L) || P0) to order t^4
    t_series: sp.Expr  # exact optimal t in powers of sqrt(rho), to order rho^(3/2)
    lam_series: sp.Expr  # exact optimal lam = 1/t, to order rho^0
    lam_correction: sp.Expr  # lim_{rho -> 0} (lam_exact - lam_approx) = kappa3 / (3 Var)
    value_series: sp.Expr  # exact KL-DRO value to order rho


def theorem2_expansion() -> Theorem2Expansion:
    """Theorem 2: expansion of the KL dual in 1/lam (Eq. 24), its minimizer (Eq. 25), and more.

    Derivation.  Write ``L = mu + Z`` with ``E Z = 0`` and central moments ``s2, s3, s4``.
    ``log E exp(t L) = mu t + log(1 + s2 t^2/2 + s3 t^3/6 + s4 t^4/24 + ...)`` expands to the
    cumulant series ``mu t + k2 t^2/2 + k3 t^3/6 + k4 t^4/24`` (``k2 = s2``, ``k3 = s3``,
    ``k4 = s4 - 3 s2^2``).  With ``t = 1/lam`` the dual of Eq. 21 becomes
    ``mu + k2/(2 lam) + k3/(6 lam^2) + ... + lam rho``; keeping the second order (Eq. 24) and
    setting the lam-derivative to zero gives ``lam = sqrt(k2 / (2 rho))`` (Eq. 25).

    The exact optimum solves ``KL(softmax(t L) || P0) = rho`` (Eq. 22), whose series is
    ``KL(t) = t K'(t) - K(t) = k2 t^2/2 + k3 t^3/3 + k4 t^4/8 + ...``; reverting it in
    ``s = sqrt(rho)`` gives ``t = sqrt(2 rho / k2) - 2 k3 rho / (3 k2^2) + O(rho^(3/2))`` and
    ``lam = sqrt(k2 / (2 rho)) + k3 / (3 k2) + O(sqrt(rho))``.  Hence Eq. 25 is exact to
    leading order as rho -> 0 (relative error O(sqrt rho)); its absolute error tends to
    ``k3 / (3 k2)``: Eq. 25 *underestimates* lam (a harder weighting than the exact KL-DRO) for
    positively skewed losses and overestimates it for negatively skewed ones.  The value is
    ``mu + sqrt(2 k2 rho) + k3 rho / (3 k2) + O(rho^(3/2))``.

    Returns
    -------
    Theorem2Expansion

    Examples
    --------
    >>> e = theorem2_expansion()
    >>> e.dual_second_order  # Eq. 24
    lambda*rho + mu + sigma2/(2*lambda)
    >>> e.lam_approx  # Eq. 25
    sqrt(2)*sqrt(sigma2)/(2*sqrt(rho))
    >>> e.lam_correction  # lam_exact - lam_approx as rho -> 0
    kappa3/(3*sigma2)
    """
    lam, rho, t = sp.symbols("lambda rho t", positive=True)
    mu = sp.Symbol("mu", real=True)
    k2 = sp.Symbol("sigma2", positive=True)
    k3 = sp.Symbol("kappa3", real=True)
    k4 = sp.Symbol("kappa4", real=True)
    s4 = sp.Symbol("s4", positive=True)  # fourth central moment
    mgf_centered = 1 + k2 * t**2 / 2 + k3 * t**3 / 6 + s4 * t**4 / 24
    cgf = sp.expand(mu * t + sp.series(sp.log(mgf_centered), t, 0, 5).removeO())
    cgf = sp.expand(cgf.subs(s4, k4 + 3 * k2**2))  # express in the 4th cumulant
    dual = sp.expand(lam * cgf.subs(t, 1 / lam) + lam * rho)
    dual_second = mu + (cgf.coeff(t, 2)) / lam + lam * rho  # Eq. 24
    crit = sp.solve(sp.Eq(sp.diff(dual_second, lam), 0), lam)
    lam_approx = [c for c in crit if c.is_positive is not False][0]
    value_approx = sp.simplify(dual_second.subs(lam, lam_approx))

    kl = sp.expand(t * sp.diff(cgf, t) - cgf)
    s = sp.Symbol("s", positive=True)  # s = sqrt(rho)
    a1, a2, a3 = sp.symbols("a1:4", real=True)
    ansatz = a1 * s + a2 * s**2 + a3 * s**3
    eq = sp.expand(sp.series(kl.subs(t, ansatz), s, 0, 5).removeO() - s**2)
    sol_a1 = [v for v in sp.solve(eq.coeff(s, 2), a1) if v.is_positive][0]
    sol_a2 = sp.solve(eq.coeff(s, 3).subs(a1, sol_a1), a2)[0]
    sol_a3 = sp.solve(eq.coeff(s, 4).subs({a1: sol_a1, a2: sol_a2}), a3)[0]
    t_series = (sol_a1 * s + sol_a2 * s**2 + sol_a3 * s**3).subs(s, sp.sqrt(rho))
    lam_s = sp.series(1 / (sol_a1 * s + sol_a2 * s**2 + sol_a3 * s**3), s, 0, 1).removeO()
    lam_series = sp.simplify(lam_s.subs(s, sp.sqrt(rho)))
    lam_correction = sp.simplify(sp.limit(lam_series - lam_approx, rho, 0))
    kprime = sp.diff(cgf, t)  # E_w[L] = K'(t): the value of Eq. 23 at temperature 1/t
    value_s = sp.series(kprime.subs(t, sol_a1 * s + sol_a2 * s**2 + sol_a3 * s**3), s, 0, 3)
    value_series = sp.expand(value_s.removeO().subs(s, sp.sqrt(rho)))
    return Theorem2Expansion(
        lam, rho, t, mu, k2, k3, k4, cgf, dual, dual_second, lam_approx, value_approx, kl,
        sp.expand(t_series), lam_series, lam_correction, value_series,
    )


# --------------------------------------------------------------------------------------
# 3. Lemma 1 / Theorem 1: the CVaR dual
# --------------------------------------------------------------------------------------
class CvarDerivation(NamedTuple):
    n: int
    losses: tuple  # l_1 >= l_2 >= ... >= l_n (symbols, descending)
    beta: sp.Symbol
    eta: sp.Symbol
    dual: sp.Expr  # eta + sum_r Max(l_r - eta, 0) / (n beta)   (Eq. 15)
    pieces: tuple  # pieces[j]: the dual where exactly j losses exceed eta (j = 0..n)
    pieces_verified: tuple  # pieces[j] == dual at an interior eta, derived by sympy (bools)
    slopes: tuple  # slopes[j] = d pieces[j] / d eta = 1 - j / (n beta)
    minimizer_intervals: tuple  # [j - 1]: the beta set where eta = l_j minimizes (Eq. 16)
    values: tuple  # [j - 1]: the minimum, dual at eta = l_j, for beta in that set
    top_means: tuple  # [j - 1]: the mean of the top j losses (value at beta = j / n)


def cvar_dual_derivation(n: int = 5) -> CvarDerivation:
    """Lemma 1 / Theorem 1: the CVaR dual of n sorted losses, minimized piece by piece.

    ``D(eta) = eta + (1 / (n beta)) sum_r (l_r - eta)_+`` (Eq. 15, P0 uniform).  On the piece
    where exactly j losses exceed eta (``l_{j+1} < eta < l_j``), sympy reduces the Max terms
    (with the order encoded by positive gaps) to ``eta + sum_{r <= j} (l_r - eta) / (n beta)``,
    of slope ``1 - j / (n beta)``.  The convex function D is minimized at ``eta = l_j`` exactly
    when the slope left of l_j is <= 0 and the slope right of it is > 0, i.e. for
    ``beta in ((j-1)/n, j/n]``: ``j = ceil(n beta)``, the beta upper quantile (Eq. 16).  The
    minimum is ``(sum_{r<j} l_r + (n beta - j + 1) l_j) / (n beta)``: the mean of the top
    ``n beta`` losses with a fractional weight on the next one, and at ``beta = j/n`` the mean
    of the top j losses (Eq. 9), which is the DNS objective with M = j (Theorem 1).

    Parameters
    ----------
    n : int >= 1
        Number of losses (kept small: the pieces are verified symbolically).

    Returns
    -------
    CvarDerivation

    Examples
    --------
    >>> d = cvar_dual_derivation(2)
    >>> d.minimizer_intervals  # eta = l_1 for beta <= 1/2, l_2 above
    (Interval.Lopen(0, 1/2), Interval.Lopen(1/2, 1))
    >>> d.values[0], d.top_means  # the minimum at beta <= 1/2; the top-j means
    (l1, (l1, l1/2 + l2/2))
    """
    n = check_int(n, "n", low=1)
    beta = sp.Symbol("beta", positive=True)
    eta = sp.Symbol("eta", real=True)
    ls = sp.symbols(f"l1:{n + 1}", real=True)
    dual = eta + sum(sp.Max(lr - eta, 0) for lr in ls) / (n * beta)
    pieces = tuple(eta + sum((ls[r] - eta for r in range(j)), sp.Integer(0)) / (n * beta)
                   for j in range(n + 1))
    # Verify each piece: losses as base + positive gaps, eta strictly inside the piece.
    base = sp.Symbol("b", real=True)
    gaps = sp.symbols(f"d1:{n}", positive=True)
    u = sp.Symbol("u", positive=True)
    ordered = {ls[r]: base + sum(gaps[r:], sp.Integer(0)) for r in range(n)}
    verified = []
    for j in range(n + 1):
        if j == 0:
            inner = ordered[ls[0]] + u
        elif j == n:
            inner = ordered[ls[n - 1]] - u
        else:  # l_{j+1} + theta d_j with theta = 1/(1+u) in (0, 1)
            inner = ordered[ls[j]] + gaps[j - 1] / (1 + u)
        diff = (dual - pieces[j]).subs(ordered).subs(eta, inner)
        verified.append(sp.simplify(diff) == 0)
    slopes = tuple(sp.simplify(sp.diff(p, eta)) for p in pieces)
    intervals = []
    values = []
    for j in range(1, n + 1):
        left = sp.solve_univariate_inequality(slopes[j] <= 0, beta, relational=False)
        right = sp.solve_univariate_inequality(slopes[j - 1] > 0, beta, relational=False)
        intervals.append(left.intersect(right).intersect(sp.Interval.Lopen(0, 1)))
        values.append(sp.simplify(pieces[j].subs(eta, ls[j - 1])))
    top_means = tuple(sum(ls[:j]) / j for j in range(1, n + 1))
    return CvarDerivation(n, tuple(ls), beta, eta, dual, pieces, tuple(verified), slopes,
                          tuple(intervals), tuple(values), top_means)


# --------------------------------------------------------------------------------------
# 4. DNS(M, N) rank law
# --------------------------------------------------------------------------------------
def dns_mn_law_enumerated(n_neg: int, m: int, n: int,
                          replace: bool = True) -> tuple[sp.Rational, ...]:
    """Exact rational DNS(M, N) rank law by enumerating every pool (small cases only).

    All ``n_neg**n`` ordered pools (with replacement) or all ``C(n_neg, n)`` subsets (without)
    are equally likely; in each, the m smallest ranks (duplicates counted) get 1/m.

    Returns
    -------
    tuple of sympy.Rational, length n_neg
        ``p_r`` for r = 1..n_neg (rank 1 = highest score); sums to 1 exactly.

    Examples
    --------
    >>> dns_mn_law_enumerated(3, 1, 2)  # the best of 2 draws among 3 ranks
    (5/9, 1/3, 1/9)
    >>> dns_mn_law_enumerated(3, 1, 2, replace=False)  # 3 pairs: rank 1 in 2, rank 2 in 1
    (2/3, 1/3, 0)
    """
    n_neg = check_int(n_neg, "n_neg", low=1)
    m, n = check_dns_pool(m, n)
    if not replace:
        check_int(n, "n (the pool size, drawn without replacement)", high=n_neg,
                  high_name="n_neg")
    weights = [Fraction(0)] * n_neg
    pools = (itertools.product(range(n_neg), repeat=n) if replace
             else itertools.combinations(range(n_neg), n))
    count = 0
    for pool in pools:
        count += 1
        for r in sorted(pool)[:m]:
            weights[r] += Fraction(1, m)
    return tuple(sp.Rational(w.numerator, w.denominator) / count for w in weights)


class DnsLawClosedForm(NamedTuple):
    r: sp.Symbol  # rank
    n_neg: sp.Symbol
    cdf: sp.Expr  # F(r) = E[min(B_r, m)] / m: weight on ranks <= r
    pmf: sp.Expr  # p_r = F(r) - F(r - 1)


def dns_mn_law_closed_form(m: int, n: int, replace: bool = True) -> DnsLawClosedForm:
    """Closed form of the DNS(M, N) rank law for concrete (m, n), symbolic rank and n_neg.

    ``F(r) = (1/m) sum_{k=1}^m P(X_(k) <= r) = (1/m) sum_{k=1}^m P(B_r >= k)`` where ``X_(k)``
    is the k-th smallest pool rank and ``B_r`` the number of pool draws of rank <= r:
    ``Binomial(n, r / n_neg)`` with replacement, ``Hypergeometric(n_neg, r, n)`` without.

    Examples
    --------
    >>> cf = dns_mn_law_closed_form(1, 2)
    >>> [cf.pmf.subs({cf.r: r, cf.n_neg: 3}) for r in (1, 2, 3)]  # = dns_mn_law_enumerated(3, 1, 2)
    [5/9, 1/3, 1/9]
    """
    m, n = check_dns_pool(m, n)
    r = sp.Symbol("r", integer=True, nonnegative=True)
    big_n = sp.Symbol("n_neg", integer=True, positive=True)
    if replace:
        def pmf_b(j, rr):
            q = rr / big_n
            return sp.binomial(n, j) * q**j * (1 - q) ** (n - j)
    else:
        def pmf_b(j, rr):
            return sp.binomial(rr, j) * sp.binomial(big_n - rr, n - j) / sp.binomial(big_n, n)

    def cdf_at(rr):
        return sum(pmf_b(j, rr) for kk in range(1, m + 1) for j in range(kk, n + 1)) / m

    cdf = cdf_at(r)
    return DnsLawClosedForm(r, big_n, cdf, cdf - cdf_at(r - 1))


class DnsContinuousLimit(NamedTuple):
    u: sp.Symbol  # upper score quantile of a negative (0 = hardest)
    density: sp.Expr  # f(u) = (1/m) sum_{k<=m} Beta(k, n-k+1) pdf
    cdf: sp.Expr  # F(u) = int_0^u f
    total: sp.Expr  # int_0^1 f = 1
    mean: sp.Expr  # int_0^1 u f = (m + 1) / (2 (n + 1))
    binomial_form: sp.Expr  # (n/m) P(Binomial(n - 1, u) <= m - 1), equal to density
    beta_mixture_density: sp.Expr  # -beta f'(beta): the mixing law of OPAUC levels
    beta_pdf: sp.Expr  # Beta(m + 1, n - m) pdf, equal to beta_mixture_density (m < n)


def dns_mn_continuous_limit(m: int, n: int) -> DnsContinuousLimit:
    """DNS(M, N) in the continuous-score limit, for concrete (m, n).

    Precisely: let negatives have i.i.d. continuous scores and let ``U`` be the upper quantile
    of a uniformly drawn negative (the fraction of negatives scored above it), so U is
    Uniform(0, 1) and a pool of N draws gives N i.i.d. uniforms.  DNS(M, N) puts 1/M on the
    M smallest, whose densities are Beta(k, N - k + 1), k = 1..M.  Their average is the
    sampling density ``f(u) = (N/M) P(Binomial(N - 1, u) <= M - 1)``, non-increasing, with
    total 1 and mean ``(M + 1) / (2 (N + 1))``.  It is the n_neg -> inf limit of
    ``n_neg * p_r`` at ``r ~ u n_neg`` (with replacement, exactly ``F(r / n_neg)`` in cumulative
    form).  Since f is non-increasing, ``f(u) = int_u^1 c(b) / b db`` with
    ``c(b) = -b f'(b) >= 0``: DNS(M, N) is the mixture over beta ~ c of the OPAUC(beta)
    surrogates (uniform weight on the top beta quantile), and c is the Beta(M + 1, N - M)
    density (for M < N); its mean is ``(M + 1) / (N + 1)``, its mode ``M / (N - 1)``.

    Examples
    --------
    >>> lim = dns_mn_continuous_limit(1, 2)
    >>> lim.density, lim.total, lim.mean  # the min of 2 uniforms: mean (M + 1) / (2 (N + 1))
    (2 - 2*u, 1, 1/3)
    >>> lim.beta_pdf  # Beta(2, 1): the mixing law of the OPAUC levels
    2*beta
    """
    m, n = check_dns_pool(m, n)
    u = sp.Symbol("u", positive=True)
    b = sp.Symbol("beta", positive=True)
    density = sum(sp.binomial(n, 1) * sp.binomial(n - 1, k - 1) * u ** (k - 1) * (1 - u) ** (n - k)
                  for k in range(1, m + 1)) / m
    v = sp.Symbol("v", positive=True)
    cdf = sp.expand(sp.integrate(density.subs(u, v), (v, 0, u)))
    total = sp.integrate(density, (u, 0, 1))
    mean = sp.integrate(u * density, (u, 0, 1))
    binomial_form = sp.Rational(n, m) * sum(sp.binomial(n - 1, j) * u**j * (1 - u) ** (n - 1 - j)
                                            for j in range(m))
    mix = sp.factor(-b * sp.diff(density.subs(u, b), b))
    if m < n:
        beta_pdf = b**m * (1 - b) ** (n - m - 1) / sp.beta(m + 1, n - m)
        beta_pdf = sp.factor(sp.gammasimp(beta_pdf))
    else:
        beta_pdf = sp.Integer(0)  # M = N: the mixture is a point mass at beta = 1
    return DnsContinuousLimit(u, sp.expand(density), cdf, total, mean, sp.expand(binomial_form),
                              mix, beta_pdf)


class DnsMeanQuantile(NamedTuple):
    m: sp.Symbol
    n: sp.Symbol
    k: sp.Symbol
    n_neg: sp.Symbol
    order_statistic_mean: sp.Expr  # E U_(k) = k / (n + 1)
    mean_quantile: sp.Expr  # (1/m) sum_{k<=m} E U_(k) = (m + 1) / (2 (n + 1))
    mean_rank_without_replacement: sp.Expr  # (m + 1)(n_neg + 1) / (2 (n + 1)), exact
    beta_mixture_mean: sp.Expr  # E beta for beta ~ Beta(m + 1, n - m): (m + 1)/(n + 1)


def dns_mn_mean_quantile() -> DnsMeanQuantile:
    """The mean score quantile of DNS(M, N): (M + 1) / (2 (N + 1)), stated precisely.

    Statement.  (a) Continuous scores (the limit n_neg -> inf): with U the upper quantile of a
    negative (fraction of negatives above it), the DNS(M, N)-weighted mean of U is
    ``(1/M) sum_{k=1}^M E U_(k) = (M + 1) / (2 (N + 1))``, from
    ``E U_(k) = B(k + 1, N - k + 1) / B(k, N - k + 1) = k / (N + 1)``.
    (b) Finite n_neg, pool without replacement: the rank law has mean
    ``E_p[r] = (M + 1)(n_neg + 1) / (2 (N + 1))`` exactly (``E X_(k) = k (n_neg + 1)/(N + 1)``
    for the k-th smallest of a random N-subset of {1..n_neg}).
    (c) Finite n_neg, pool with replacement: a uniform draw is ``r = ceil(n_neg U)``, so
    ``(M + 1)/(2 (N + 1)) <= E_p[r] / n_neg < (M + 1)/(2 (N + 1)) + 1 / n_neg``.
    (d) The level: DNS(M, N) is an exact mixture of OPAUC(beta) surrogates over
    ``beta ~ Beta(M + 1, N - M)`` in the limit (:func:`dns_mn_continuous_limit`), with
    ``E beta = (M + 1)/(N + 1)``; "beta ~ M / N" is its mode ``M/(N-1)`` to first order.

    (a) and (d) are derived here in general symbols; (b) and (c) are checked against the
    enumerated law (:func:`dns_mn_law_enumerated`) in the tests.

    Examples
    --------
    >>> mq = dns_mn_mean_quantile()
    >>> mq.mean_quantile
    (M + 1)/(2*(N + 1))
    >>> mq.mean_quantile.subs({mq.m: 1, mq.n: 2}), mq.beta_mixture_mean
    (1/3, (M + 1)/(N + 1))
    """
    m, n, k, big_n = sp.symbols("M N k n_neg", positive=True, integer=True)
    order_mean = sp.gammasimp(
        (sp.gamma(k + 1) * sp.gamma(n - k + 1) / sp.gamma(n + 2))
        / (sp.gamma(k) * sp.gamma(n - k + 1) / sp.gamma(n + 1)))
    mean_q = sp.factor(sp.summation(order_mean, (k, 1, m)) / m)
    mean_rank = sp.factor(sp.summation(k * (big_n + 1) / (n + 1), (k, 1, m)) / m)
    a_, b_ = m + 1, n - m
    beta_mean = sp.simplify(a_ / (a_ + b_))
    return DnsMeanQuantile(m, n, k, big_n, order_mean, mean_q, mean_rank, beta_mean)
