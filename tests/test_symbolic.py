"""The sympy derivations (theory/symbolic.py) agree with the numeric functions at random points."""
from __future__ import annotations

import math

import numpy as np
import pytest
import sympy as sp
from scipy import special

from checks import oracles as O
from theory import bounds as B
from theory import estimators as E
from theory import symbolic as S


@pytest.fixture(scope="module")
def t3():
    return S.theorem3_derivation()


@pytest.fixture(scope="module")
def t2():
    return S.theorem2_expansion()


# --------------------------------------------------------------------------------------
# Theorem 3
# --------------------------------------------------------------------------------------
def test_theorem3_counts_from_arrangements(t3):
    assert sp.expand(t3.max_count - ((t3.n_pos + t3.k) * t3.hits - t3.hits**2)) == 0
    assert sp.expand(t3.min_count - t3.hits**2) == 0
    rng = np.random.default_rng(0)
    for _ in range(30):
        k = int(rng.integers(1, 8))
        n_pos, n_neg = int(rng.integers(1, 12)), k + int(rng.integers(0, 8))
        i = int(rng.integers(0, min(k, n_pos) + 1))
        point = {t3.n_pos: n_pos, t3.n_neg: n_neg, t3.k: k, t3.hits: i}
        ext = B.extremal_rankings(n_pos, n_neg, k, i)
        assert int(t3.max_count.subs(point)) == ext.max_count
        assert int(t3.min_count.subs(point)) == ext.min_count
        # The block description is the numeric ranking (expand the blocks to labels).
        for blocks, labels in ((t3.max_blocks, ext.max_labels), (t3.min_blocks, ext.min_labels)):
            expanded = []
            for kind, size in blocks:
                expanded += [kind == "pos"] * int(sp.sympify(size).subs(point))
            assert expanded == labels.tolist()


def test_theorem3_solved_bounds_match_numeric(t3):
    rng = np.random.default_rng(1)
    for _ in range(60):
        k = int(rng.integers(1, 30))
        n_pos, n_neg = int(rng.integers(1, 80)), k + int(rng.integers(0, 80))
        count = int(rng.integers(0, n_pos * k + 1))
        a = sp.Rational(count, n_pos * n_neg)
        point = {t3.n_pos: n_pos, t3.n_neg: n_neg, t3.k: k, t3.opauc: a}
        numeric = B.topk_bounds(count / (n_pos * n_neg), n_pos, n_neg, k)
        symbolic = [t3.recall_low, t3.recall_high, t3.precision_low, t3.precision_high]
        for expr, value in zip(symbolic, numeric):
            exact = expr.xreplace(point)  # an exact Rational: floor/ceiling of algebraic numbers
            assert exact.is_Rational and exact == sp.Rational(value).limit_denominator(10**6)
        # The real roots: C_max(hits_low) = C and C_min(hits_high) = C.
        for root, c_expr in ((t3.hits_low, t3.max_count), (t3.hits_high, t3.min_count)):
            x = root.subs(point)
            assert abs(float(c_expr.subs({**point, t3.hits: x})) - count) < 1e-9 * max(1, count)


# --------------------------------------------------------------------------------------
# Theorem 2
# --------------------------------------------------------------------------------------
def test_theorem2_series_match_numeric(t2):
    losses = E.bpr_loss(0.3 - np.random.default_rng(2).normal(size=60))
    mu, var, k3, k4 = O.sample_cumulants(losses)
    subs = {t2.mean: mu, t2.var: var, t2.kappa3: k3, t2.kappa4: k4}
    cgf = sp.lambdify(t2.t, t2.cgf_series.subs(subs))
    kl = sp.lambdify(t2.t, t2.kl_series.subs(subs))
    errors_cgf, errors_kl = [], []
    for t in (0.2, 0.1, 0.05):
        exact_cgf = special.logsumexp(t * losses) - math.log(losses.size)
        w = special.softmax(t * losses)
        exact_kl = float(np.sum(w * np.log(w * losses.size)))
        errors_cgf.append(abs(cgf(t) - exact_cgf))
        errors_kl.append(abs(kl(t) - exact_kl))
    # Truncated at t^4: the error is O(t^5); halving t divides it by ~32 (> 16 allowed).
    for errors in (errors_cgf, errors_kl):
        assert errors[1] < errors[0] / 16 and errors[2] < errors[1] / 16
    # Eq. 24 is the series of the dual at second order; Eq. 25 its minimizer = softmax_v_tau.
    lam = t2.lam
    expected = (t2.mean + t2.var / (2 * lam) + lam * t2.rho
                + t2.kappa3 / (6 * lam**2) + t2.kappa4 / (24 * lam**3))
    assert sp.simplify(t2.dual_series - expected) == 0
    for rho in (0.01, 0.5, 2.0):
        tau = float(t2.lam_approx.subs({t2.var: var, t2.rho: rho}))
        assert tau == pytest.approx(E.softmax_v_tau(losses, rho), rel=1e-14)
        assert float(t2.value_approx.subs({**subs, t2.rho: rho})) == pytest.approx(
            mu + math.sqrt(2 * rho * var), rel=1e-14)


def test_theorem2_reverted_series_match_exact_solution(t2):
    losses = E.bpr_loss(0.3 - np.random.default_rng(3).normal(size=60))
    mu, var, k3, k4 = O.sample_cumulants(losses)
    subs = {t2.mean: mu, t2.var: var, t2.kappa3: k3, t2.kappa4: k4}
    assert sp.simplify(t2.lam_correction - t2.kappa3 / (3 * t2.var)) == 0
    value_err, t_err = [], []
    for rho in (1e-3, 1e-4, 1e-5):
        value, lam, _ = E.kl_dro(losses, rho)
        t_err.append(abs(float(t2.t_series.subs({**subs, t2.rho: rho})) - 1 / lam) * lam)
        value_err.append(abs(float(t2.value_series.subs({**subs, t2.rho: rho})) - value))
        lam_pred = float(t2.lam_series.subs({**subs, t2.rho: rho}))
        assert abs(lam - lam_pred) < 50 * math.sqrt(rho)  # next term O(sqrt rho)
    # t_series is exact to O(rho^2): relative error O(rho^(3/2)), ~31.6x per decade;
    # value_series to O(rho^(3/2)): ~31.6x per decade.  Allow 15x.
    for errors in (t_err, value_err):
        assert errors[1] < errors[0] / 15 and errors[2] < errors[1] / 15


# --------------------------------------------------------------------------------------
# Lemma 1 / Theorem 1: CVaR dual
# --------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def cv5():
    return S.cvar_dual_derivation(5)


def test_cvar_pieces_and_minimizer_intervals(cv5):
    n = cv5.n
    assert all(cv5.pieces_verified)
    for j in range(n + 1):
        assert sp.simplify(cv5.slopes[j] - (1 - sp.Rational(j, n) / cv5.beta)) == 0
    for j in range(1, n + 1):
        assert cv5.minimizer_intervals[j - 1] == sp.Interval.Lopen(sp.Rational(j - 1, n),
                                                                   sp.Rational(j, n))


def test_cvar_symbolic_values_match_numeric(cv5):
    rng = np.random.default_rng(4)
    n = cv5.n
    for _ in range(40):
        losses = np.sort(rng.gamma(2.0, size=n))[::-1]
        beta = float(rng.uniform(0.01, 1.0))
        j = math.ceil(n * beta)
        point = dict(zip(cv5.losses, losses.tolist()))
        point[cv5.beta] = beta
        value, eta = E.cvar(rng.permutation(losses), beta)
        assert eta == losses[j - 1]
        assert float(cv5.values[j - 1].subs(point)) == pytest.approx(value, rel=1e-12)
        # The dual itself (with its Max terms) at eta equals the value.
        assert float(cv5.dual.subs({**point, cv5.eta: eta})) == pytest.approx(value, rel=1e-12)
    # At beta = j / n the minimum is the top-j mean = the DNS objective with M = j.
    pos, neg = np.array([0.4]), rng.normal(size=n)
    desc_losses = np.sort(E.bpr_loss(0.4 - neg))[::-1]
    point = dict(zip(cv5.losses, desc_losses.tolist()))
    for j in range(1, n + 1):
        point[cv5.beta] = sp.Rational(j, n)
        assert float(cv5.values[j - 1].subs(point)) == pytest.approx(
            E.dns_objective(pos, neg, j), rel=1e-12)
        assert float(cv5.top_means[j - 1].subs(point)) == pytest.approx(
            E.dns_objective(pos, neg, j), rel=1e-12)


# --------------------------------------------------------------------------------------
# DNS(M, N)
# --------------------------------------------------------------------------------------
CASES = [(5, 2, 3), (6, 1, 4), (4, 3, 3), (7, 2, 2), (5, 5, 5)]


@pytest.mark.parametrize("n_neg,m,n,replace",
                         [(*case, True) for case in CASES]
                         + [(*case, False) for case in CASES if case[2] <= case[0]])
def test_dns_law_enumerated_closed_form_and_numeric(n_neg, m, n, replace):
    law = S.dns_mn_law_enumerated(n_neg, m, n, replace)
    assert sum(law) == 1
    closed = S.dns_mn_law_closed_form(m, n, replace)
    for r in range(1, n_neg + 1):
        assert sp.simplify(closed.pmf.subs({closed.r: r, closed.n_neg: n_neg})) == law[r - 1]
    numeric = E.dns_mn_rank_probabilities(n_neg, m, n, replace=replace)
    np.testing.assert_allclose(numeric, [float(p) for p in law], rtol=1e-12, atol=1e-15)
    # The mean-rank statements of dns_mn_mean_quantile, exactly (rational arithmetic).
    mq = S.dns_mn_mean_quantile()
    mean_rank = sum(r * p for r, p in enumerate(law, start=1))
    target = mq.mean_quantile.subs({mq.m: m, mq.n: n})
    if replace:
        assert target <= mean_rank / n_neg < target + sp.Rational(1, n_neg)
    else:
        assert mean_rank == mq.mean_rank_without_replacement.subs({mq.m: m, mq.n: n,
                                                                  mq.n_neg: n_neg})


@pytest.mark.parametrize("m,n", [(1, 1), (1, 4), (2, 5), (3, 7), (4, 4)])
def test_dns_continuous_limit(m, n):
    lim = S.dns_mn_continuous_limit(m, n)
    mq = S.dns_mn_mean_quantile()
    assert lim.total == 1
    assert lim.mean == mq.mean_quantile.subs({mq.m: m, mq.n: n}) == sp.Rational(m + 1, 2 * (n + 1))
    assert sp.expand(lim.density - lim.binomial_form) == 0
    if m < n:
        assert sp.simplify(lim.beta_mixture_density - lim.beta_pdf) == 0
        b = sp.Symbol("beta", positive=True)
        assert sp.integrate(lim.beta_pdf, (b, 0, 1)) == 1
        assert sp.integrate(b * lim.beta_pdf, (b, 0, 1)) == mq.beta_mixture_mean.subs(
            {mq.m: m, mq.n: n})
    for u in np.linspace(0, 1, 7):
        assert float(lim.density.subs(lim.u, u)) == pytest.approx(
            E.dns_mn_quantile_density(u, m, n), rel=1e-12, abs=1e-14)
        assert float(lim.cdf.subs(lim.u, u)) == pytest.approx(
            E.dns_mn_quantile_cdf(u, m, n), rel=1e-12, abs=1e-14)


def test_dns_mean_quantile_general():
    mq = S.dns_mn_mean_quantile()
    assert sp.simplify(mq.order_statistic_mean - mq.k / (mq.n + 1)) == 0
    assert sp.simplify(mq.mean_quantile - (mq.m + 1) / (2 * (mq.n + 1))) == 0
    # The order-statistic mean, by integration, at a few concrete (k, n).
    u = sp.Symbol("u", positive=True)
    for k, n in [(1, 1), (1, 5), (3, 5), (4, 9)]:
        pdf = sp.factorial(n) / (sp.factorial(k - 1) * sp.factorial(n - k)) * u ** (k - 1) * (
            1 - u) ** (n - k)
        assert sp.integrate(u * pdf, (u, 0, 1)) == mq.order_statistic_mean.subs({mq.k: k, mq.n: n})
