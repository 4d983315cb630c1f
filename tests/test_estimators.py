"""Numerical proofs of Lemma 1, Theorems 1-2 and the DNS(M, N) law (theory/estimators.py).

Every expected value is computed independently of theory/estimators.py: brute-force top-m
means, the CVaR and KL duals evaluated directly, the DNS(M, N) order-statistics law and its
Monte Carlo sampler (checks.oracles, shared with the paper checks), scipy's linear program for
the CVaR-DRO primal, scipy's scalar minimizer for the KL dual, mpmath for the loss, and the
exhaustive enumeration of every pool for the DNS(M, N) law (theory.symbolic, exact rationals;
its own tests compare it with the closed form).
"""
from __future__ import annotations

import math

import mpmath
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from scipy import integrate, optimize, special, stats

from checks import oracles as O
from theory import estimators as E
from theory.symbolic import dns_mn_law_enumerated

SETTINGS = settings(max_examples=60, deadline=None, database=None, derandomize=True,
                    suppress_health_check=[HealthCheck.too_slow])

# Scores with frequent exact ties (the sampled values) as well as generic floats.
score = st.one_of(st.floats(-8, 8, allow_nan=False, allow_infinity=False),
                  st.sampled_from([-1.0, 0.0, 0.5, 2.0]))


def scores(min_size=1, max_size=25):
    return hnp.arrays(np.float64, st.integers(min_size, max_size), elements=score)


loss_value = st.one_of(st.floats(0, 300, allow_nan=False, allow_subnormal=False),
                      st.sampled_from([0.0, 1.0, 5.0]))


def losses_strategy(min_size=1, max_size=40):
    return hnp.arrays(np.float64, st.integers(min_size, max_size), elements=loss_value)


# --------------------------------------------------------------------------------------
# Loss functions and numba kernels against references
# --------------------------------------------------------------------------------------
GRID = np.array([-800.0, -700.0, -50.0, -3.0, -1e-10, 0.0, 1e-12, 0.3, 3.0, 36.0, 50.0,
                 700.0, 745.0, 800.0])


def _mp_loss(x):
    mpmath.mp.dps = 50
    return float(mpmath.log1p(mpmath.exp(-mpmath.mpf(x))))


def _mp_grad(x):
    mpmath.mp.dps = 50
    return float(-1 / (1 + mpmath.exp(mpmath.mpf(x))))


def test_bpr_loss_against_mpmath_and_kernel():
    ref = np.array([_mp_loss(x) for x in GRID])
    got = E.bpr_loss(GRID)
    kern = np.array([E.bpr_loss_scalar(x) for x in GRID])
    # A few ulp: both use log1p/exp of an argument <= 0 (no cancellation, no overflow).
    np.testing.assert_allclose(got, ref, rtol=4e-15, atol=0)
    np.testing.assert_allclose(kern, ref, rtol=4e-15, atol=0)
    assert isinstance(E.bpr_loss(1.0), float)


def test_bpr_loss_grad_against_mpmath_and_kernel():
    ref = np.array([_mp_grad(x) for x in GRID])
    # atol: at x = 745 the exact value -exp(-745) is the smallest subnormal (no relative accuracy).
    np.testing.assert_allclose(E.bpr_loss_grad(GRID), ref, rtol=4e-15, atol=1e-300)
    np.testing.assert_allclose([E.bpr_loss_grad_scalar(x) for x in GRID], ref, rtol=4e-15,
                               atol=1e-300)
    # And it is the derivative: central differences at moderate x (error ~ h^2 ~ 1e-10).
    x = np.linspace(-5, 5, 11)
    h = 1e-5
    fd = (E.bpr_loss(x + h) - E.bpr_loss(x - h)) / (2 * h)
    np.testing.assert_allclose(E.bpr_loss_grad(x), fd, rtol=1e-8, atol=1e-12)


def _softmax_reference(values, tau):
    """Plain numpy: exp(v/tau - max(v/tau)) / sum; tau = 0 -> uniform on the argmax set."""
    values = np.asarray(values, dtype=float)
    if tau == 0:
        hit = values == values.max()
        return hit / hit.sum()
    z = values / tau
    e = np.exp(z - z.max())
    return e / e.sum()


@pytest.mark.parametrize("tau", [0.0, 1e-3, 0.7, 3.0, 1e6])
def test_softmax_weights_row_kernel_against_numpy(tau):
    rng = np.random.default_rng(7)
    for values in (rng.normal(size=17), 500 + 300 * rng.random(40), np.array([2.0, 2.0, 1.0])):
        out = np.empty_like(values)
        E.softmax_weights_row(values, tau, out)
        ref = _softmax_reference(values, tau)
        np.testing.assert_allclose(out, ref, rtol=1e-12, atol=1e-300)
        np.testing.assert_allclose(E.softmax_weights(values, tau), ref, rtol=1e-12, atol=1e-300)
        if tau > 0:
            np.testing.assert_allclose(out, special.softmax(values / tau), rtol=1e-12, atol=1e-300)


def test_softmax_weights_batched_per_row_tau():
    rng = np.random.default_rng(8)
    x = rng.normal(size=(4, 9)) * 50
    tau = np.array([0.0, 0.1, 2.0, np.inf])
    w = E.softmax_weights(x, tau)
    for row, t in enumerate(tau):
        expected = np.full(9, 1 / 9) if np.isinf(t) else _softmax_reference(x[row], t)
        np.testing.assert_allclose(w[row], expected, rtol=1e-12)
    with pytest.raises(ValueError, match="tau"):
        E.softmax_weights(x, -1.0)
    with pytest.raises(ValueError, match="values"):
        E.softmax_weights([1.0, np.nan], 1.0)


# --------------------------------------------------------------------------------------
# Lemma 1 and Theorem 1
# --------------------------------------------------------------------------------------
def _cvar_by_area(losses, beta):
    """CVaR as (1/beta) * integral over u in [0, beta] of the upper quantile function.

    The sorted-descending loss L_(r) occupies u in [(r-1)/n, r/n]; integrate piecewise.
    """
    desc = np.sort(np.asarray(losses, float))[::-1]
    n = desc.size
    lo = np.arange(n) / n
    hi = np.arange(1, n + 1) / n
    overlap = np.clip(np.minimum(hi, beta) - lo, 0, None)
    return float(overlap @ desc / beta)


@SETTINGS
@given(pos=scores(1, 6), neg=scores(1, 25), data=st.data())
def test_theorem1_dns_equals_opauc_surrogate_equals_cvar(pos, neg, data):
    n_neg = neg.size
    m = data.draw(st.integers(1, n_neg))
    beta = m / n_neg
    dns = E.dns_objective(pos, neg, m)
    surrogate = E.opauc_surrogate(pos, neg, beta)
    cv = np.mean(E.cvar(E.pair_losses(pos, neg), beta)[0])
    brute = O.dns_brute(pos, neg, m)
    # Different summation orders only: agreement to a few ulp; 1e-10 relative required.
    for value in (surrogate, cv, brute):
        assert dns == pytest.approx(value, rel=1e-10)
    # The "sum" reduction (Eq. 1 as written) is n_pos times the mean, on both sides.
    assert E.dns_objective(pos, neg, m, reduction="sum") == pytest.approx(
        E.opauc_surrogate(pos, neg, beta, reduction="sum"), rel=1e-10)
    assert E.dns_objective(pos, neg, m, reduction="sum") == pytest.approx(pos.size * dns, rel=1e-12)
    # Theorem 1 with M = beta * n_neg computed in floating point (e.g. 0.3 * 10).
    assert E.dns_objective(pos, neg, beta * n_neg) == pytest.approx(dns, rel=1e-14)


@SETTINGS
@given(losses=losses_strategy(1, 30), beta=st.floats(1e-3, 1.0))
def test_lemma1_cvar_dual_fractional_beta(losses, beta):
    value, eta = E.cvar(losses, beta)
    n = losses.size
    desc = np.sort(losses)[::-1]
    k = n * beta
    # Eq. 16: eta is the beta upper quantile, the ceil(n beta)-th largest loss.
    j = round(k) if abs(k - round(k)) <= 1e-9 * max(1, k) else math.ceil(k)
    assert eta == desc[j - 1]
    # Exact value: the area form of CVaR (independent formula).
    area = _cvar_by_area(losses, beta)
    assert value == pytest.approx(area, rel=1e-10, abs=1e-12)

    # The dual objective (Eq. 15), brute force: its minimum over eta is at a data point.
    def dual(t):
        return O.cvar_dual(losses, beta, t)

    brute_min = min(dual(t) for t in losses)
    assert value == pytest.approx(brute_min, rel=1e-10, abs=1e-12)
    assert dual(eta) == pytest.approx(value, rel=1e-10, abs=1e-12)
    grid = np.linspace(losses.min() - 1, losses.max() + 1, 101)
    assert all(dual(t) >= value - 1e-9 * max(1.0, abs(value)) for t in grid)


@pytest.mark.parametrize("n,beta", [(7, 0.3), (10, 0.35), (12, 1.0), (5, 0.2), (9, 1 / 9)])
def test_lemma1_cvar_equals_dro_primal_linear_program(n, beta):
    """Lemma 1: max E_Q[L] over dQ/dP0 <= 1/beta equals the CVaR dual (scipy linprog)."""
    rng = np.random.default_rng(n)
    losses = rng.gamma(2.0, size=n)
    res = optimize.linprog(-losses, A_eq=np.ones((1, n)), b_eq=[1.0],
                           bounds=[(0, 1 / (n * beta))] * n, method="highs")
    assert res.status == 0
    value, _ = E.cvar(losses, beta)
    # HiGHS solves to ~1e-9 primal/dual feasibility.
    assert value == pytest.approx(-res.fun, rel=1e-8)
    # The primal optimum is the OPAUC rank weighting (integer case) / fractional weighting.
    w = E.opauc_rank_weights(n, beta)
    order = np.argsort(-losses)
    assert w @ losses[order] == pytest.approx(value, rel=1e-12)


def test_cvar_integer_level_eta_interval_and_batch():
    losses = np.array([5.0, 1.0, 3.0, 4.0, 2.0])
    value, eta = E.cvar(losses, 0.4)  # k = 2: top two are 5, 4
    assert value == pytest.approx(4.5) and eta == 4.0
    # Every eta in [L_(3), L_(2)] = [3, 4] is optimal when n beta is an integer.
    for t in (3.0, 3.5, 4.0):
        assert O.cvar_dual(losses, 0.4, t) == pytest.approx(4.5)
    batch = np.stack([losses, losses[::-1] * 2, np.zeros(5)])
    values, etas = E.cvar(batch, 0.3)
    for row in range(3):
        v, e = E.cvar(batch[row], 0.3)
        assert values[row] == v and etas[row] == e
    assert E.cvar(losses, 1.0)[0] == pytest.approx(losses.mean())
    assert E.cvar(losses, 1e-6)[0] == 5.0


def test_opauc_surrogate_fractional_weights_match_area():
    rng = np.random.default_rng(3)
    pos, neg = rng.normal(size=4), rng.normal(size=13)
    for beta in (0.05, 0.1, 0.37, 0.5, 0.99, 1.0):
        expected = np.mean([_cvar_by_area(E.bpr_loss(p - neg), beta) for p in pos])
        assert E.opauc_surrogate(pos, neg, beta) == pytest.approx(expected, rel=1e-12)
    w = E.opauc_rank_weights(10, 0.35)
    np.testing.assert_allclose(w, [1 / 3.5] * 3 + [0.5 / 3.5] + [0] * 6)
    np.testing.assert_allclose(E.opauc_rank_weights(10, 0.3), [1 / 3] * 3 + [0] * 7)


# --------------------------------------------------------------------------------------
# Theorem 2: KL-DRO
# --------------------------------------------------------------------------------------
@SETTINGS
@given(losses=losses_strategy(1, 40), rho=st.floats(1e-4, 8.0))
def test_theorem2_kl_dro_certificate(losses, rho):
    value, lam, w = E.kl_dro(losses, rho)
    n = losses.size
    n_max = int(np.sum(losses == losses.max()))
    assert w.sum() == pytest.approx(1.0, abs=1e-12) and np.all(w >= 0)
    scale = max(1.0, float(np.abs(losses).max()))
    if rho >= math.log(n / n_max):
        # The KL ball holds the uniform law on the argmax set: the value is the max loss.
        assert lam == 0.0 and value == losses.max()
        assert O.kl_to_uniform(w) <= rho + 1e-12
        return
    assert lam > 0
    ew = float(w @ losses)
    dual = O.kl_dual(losses, rho, lam)
    # Eq. 22 (stationarity): lam (log E exp(L/lam) + rho) = E_w[L].
    assert dual == pytest.approx(ew, rel=1e-8, abs=1e-8 * scale)
    # Primal feasibility, tight: KL(w || uniform) = rho.
    assert O.kl_to_uniform(w) == pytest.approx(rho, rel=1e-8)
    # Eq. 23: the value is the softmax-weighted loss at temperature lam.
    np.testing.assert_allclose(w, special.softmax(losses / lam), rtol=1e-9, atol=1e-300)
    assert value == pytest.approx(ew, rel=1e-8, abs=1e-8 * scale)
    # A feasible primal point whose objective equals a dual objective certifies optimality;
    # check also against an independent 1-D minimization of the dual over log(lam).
    res = optimize.minimize_scalar(lambda s: O.kl_dual(losses, rho, math.exp(s)),
                                   bounds=(math.log(lam) - 8, math.log(lam) + 8),
                                   method="bounded", options={"xatol": 1e-10})
    assert value <= res.fun + 1e-9 * scale
    assert value >= res.fun - 1e-6 * scale


@SETTINGS
@given(losses=losses_strategy(1, 40), rho=st.floats(1e-3, 6.0))
def test_theorem2_kl_value_at_least_cvar_value(losses, rho):
    """The CVaR ball (dQ/dP0 <= e^rho) lies in the KL ball of radius rho."""
    kl_value = E.kl_dro(losses, rho)[0]
    cvar_value = E.cvar(losses, math.exp(-rho))[0]
    scale = max(1.0, float(np.abs(losses).max()))
    assert kl_value >= cvar_value - 1e-10 * scale
    assert kl_value <= losses.max() + 1e-10 * scale


def test_theorem2_degenerate_radius_and_ties():
    losses = np.array([1.0, 3.0, 3.0, 2.0, 0.5, 3.0])  # n = 6, n_max = 3
    threshold = math.log(6 / 3)
    for rho in (threshold, threshold + 1e-12, math.log(6), 50.0, math.inf):
        value, lam, w = E.kl_dro(losses, rho)
        assert value == 3.0 and lam == 0.0
        np.testing.assert_allclose(w, (losses == 3.0) / 3)
    # Just inside the threshold: a positive temperature, the value tends to the maximum.
    value, lam, w = E.kl_dro(losses, threshold - 1e-6)
    assert 0 < lam < 0.2 and 3.0 - 1e-4 < value < 3.0
    assert O.kl_to_uniform(w) == pytest.approx(threshold - 1e-6, rel=1e-8)
    # All losses equal: any rho is degenerate.
    assert E.kl_dro(np.full(5, 7.0), 1e-3) == (7.0, 0.0, pytest.approx(np.full(5, 0.2)))


def test_theorem2_losses_in_the_hundreds():
    rng = np.random.default_rng(11)
    losses = 400 + 300 * rng.random(300)
    for rho in (1e-8, 1e-3, 0.5, 3.0, math.log(300) - 1e-4):
        value, lam, w = E.kl_dro(losses, rho)
        assert np.isfinite(value) and np.all(np.isfinite(w)) and lam > 0
        assert O.kl_to_uniform(w) == pytest.approx(rho, rel=1e-7)
        assert O.kl_dual(losses, rho, lam) == pytest.approx(w @ losses, rel=1e-12)
        assert E.kl_dro_dual(losses, rho, lam) == pytest.approx(value, rel=1e-12)


def test_theorem2_weak_duality_of_kl_dro_dual():
    rng = np.random.default_rng(12)
    losses = rng.gamma(1.5, size=50)
    rho = 0.7
    value = E.kl_dro(losses, rho)[0]
    lams = np.geomspace(1e-3, 1e3, 61)
    duals = E.kl_dro_dual(losses, rho, lams)
    assert np.all(duals >= value - 1e-12)
    np.testing.assert_allclose(duals, [O.kl_dual(losses, rho, x) for x in lams], rtol=1e-12)
    assert E.kl_dro_dual(losses, rho, 0.0) == losses.max()


def _logistic_losses(seed, n=200, shift=0.5):
    """Pair losses of one positive (score shift) against n standard-normal negatives."""
    rng = np.random.default_rng(seed)
    return E.bpr_loss(shift - rng.normal(size=n))


def test_theorem2_eq25_limit_small_rho():
    """tau of Eq. 25 -> the exact lam as rho -> 0, with lam - tau -> kappa3 / (3 Var)."""
    losses = _logistic_losses(21)
    z = losses - losses.mean()
    var, k3 = np.mean(z**2), np.mean(z**3)
    predicted = k3 / (3 * var)  # the second-order term of the reverted series
    errors = []
    for rho in (1e-4, 1e-6, 1e-8):
        lam = E.kl_dro(losses, rho)[1]
        tau = E.softmax_v_tau(losses, rho)
        assert abs(tau / lam - 1) < 20 * math.sqrt(rho)  # relative error O(sqrt(rho))
        errors.append(abs((lam - tau) - predicted))
    # The remaining error is O(sqrt(rho)): it shrinks ~10x per 100x in rho.
    assert errors[1] < errors[0] / 5 and errors[2] < errors[1] / 5
    assert errors[2] < 1e-3 * abs(predicted)


def test_theorem2_eq25_error_direction_documented():
    """The measured direction of Eq. 25's error (softmax_v_tau docstring), as a regression.

    Positively skewed logistic losses: tau < lam (Softmax-v harder) at moderate rho; at
    rho >= log n the exact lam is 0 < tau.  Symmetric losses (kappa3 = 0): tau > lam.
    """
    for seed in (1, 2, 3):
        losses = _logistic_losses(seed)
        assert stats.skew(losses) > 0.3
        for rho in (0.01, 0.1, 1.0):
            assert E.softmax_v_tau(losses, rho) < E.kl_dro(losses, rho)[1]
        assert E.kl_dro(losses, math.log(losses.size))[1] == 0 < E.softmax_v_tau(losses, 5.3)
    half = np.random.default_rng(4).normal(size=100)
    symmetric = 10 + np.concatenate([half, -half])
    for rho in (0.1, 1.0, 3.0):
        assert E.softmax_v_tau(symmetric, rho) > E.kl_dro(symmetric, rho)[1]


def test_softmax_v_objective_and_tau_conventions():
    rng = np.random.default_rng(5)
    losses = rng.gamma(2.0, size=(3, 20))
    for ddof in (0, 1):
        tau = E.softmax_v_tau(losses, 0.5, ddof=ddof)
        np.testing.assert_allclose(tau, np.sqrt(losses.var(axis=1, ddof=ddof) / 1.0))
        obj = E.softmax_v_objective(losses, 0.5, ddof=ddof)
        for row in range(3):
            w = special.softmax(losses[row] / tau[row])
            assert obj[row] == pytest.approx(w @ losses[row], rel=1e-12)
            assert losses[row].mean() <= obj[row] <= losses[row].max()
    assert E.softmax_v_objective(np.full(4, 2.5), 1.0) == 2.5  # tau = 0: uniform


def test_score_softmax_distribution_eq3():
    rng = np.random.default_rng(6)
    pos, neg = rng.normal(size=3), rng.normal(size=11)
    for tau in (0.05, 1.0, 10.0):
        p = E.score_softmax_probabilities(neg, tau)
        np.testing.assert_allclose(p, special.softmax(neg / tau), rtol=1e-12)
        expected = np.mean([p @ E.bpr_loss(x - neg) for x in pos])
        assert E.score_softmax_objective(pos, neg, tau) == pytest.approx(expected, rel=1e-12)
    # tau -> 0: DNS with M = 1; tau = inf: uniform (plain BPR = OPAUC(1) surrogate).
    assert E.score_softmax_objective(pos, neg, 0.0) == pytest.approx(E.dns_objective(pos, neg, 1))
    assert E.score_softmax_objective(pos, neg, np.inf) == pytest.approx(
        E.opauc_surrogate(pos, neg, 1.0), rel=1e-12)


# --------------------------------------------------------------------------------------
# DNS(M, N) rank law
# --------------------------------------------------------------------------------------
ENUM_CASES = [(6, 1, 3), (6, 2, 4), (5, 3, 3), (7, 2, 5), (4, 4, 4), (1, 1, 2), (3, 1, 1)]


@pytest.mark.parametrize("n_neg,m,n,replace",
                         [(*case, True) for case in ENUM_CASES]
                         + [(*case, False) for case in ENUM_CASES if case[2] <= case[0]])
def test_dns_mn_law_against_enumeration(n_neg, m, n, replace):
    p = E.dns_mn_rank_probabilities(n_neg, m, n, replace=replace)
    # Every equally likely pool enumerated, in exact rationals (rounded once to float64).
    law = [float(x) for x in dns_mn_law_enumerated(n_neg, m, n, replace)]
    np.testing.assert_allclose(p, law, rtol=1e-12, atol=1e-15)


def test_dns_mn_law_against_scipy_distributions():
    """Moderate sizes: the order-statistic formulas with scipy's binom / hypergeom CDFs
    (checks.oracles.dns_mn_law): F(r) = E[min(B_r, m)] / m, p_r = F(r) - F(r-1), B_r
    Binomial(n, r/n_neg) with replacement, Hypergeometric(n_neg, r, n) without."""
    n_neg, m, n = 300, 4, 25
    np.testing.assert_allclose(E.dns_mn_rank_probabilities(n_neg, m, n),
                               O.dns_mn_law(n_neg, m, n, replace=True), rtol=1e-9, atol=1e-15)
    np.testing.assert_allclose(E.dns_mn_rank_probabilities(n_neg, m, n, replace=False),
                               O.dns_mn_law(n_neg, m, n, replace=False), rtol=1e-9, atol=1e-15)


def test_dns_mn_law_special_cases():
    n_neg = 40
    r = np.arange(1, n_neg + 1)
    for n in (1, 5, 30):
        # M = 1 with replacement: P(min = r) = ((N-r+1)/N)^n - ((N-r)/N)^n.
        expected = ((n_neg - r + 1) / n_neg) ** n - ((n_neg - r) / n_neg) ** n
        np.testing.assert_allclose(E.dns_mn_rank_probabilities(n_neg, 1, n), expected,
                                   rtol=1e-10, atol=1e-300)
        # M = N: every pool draw is used, the law is uniform (plain BPR).
        np.testing.assert_allclose(E.dns_mn_rank_probabilities(n_neg, n, n), 1 / n_neg, rtol=1e-12)
        np.testing.assert_allclose(E.dns_mn_rank_probabilities(n_neg, n, n, replace=False),
                                   1 / n_neg, rtol=1e-12)
    # Full pool without replacement: the top m ranks exactly (DNS over all negatives).
    np.testing.assert_allclose(E.dns_mn_rank_probabilities(10, 3, 10, replace=False),
                               [1 / 3] * 3 + [0] * 7, atol=1e-15)


@pytest.mark.parametrize("replace", [True, False])
def test_dns_mn_law_properties_and_mean_rank(replace):
    for n_neg, m, n in [(50, 3, 10), (200, 5, 50), (1000, 1, 20), (37, 7, 9)]:
        p = E.dns_mn_rank_probabilities(n_neg, m, n, replace=replace)
        r = np.arange(1, n_neg + 1)
        assert p.sum() == pytest.approx(1.0, abs=1e-12)
        assert np.all(np.diff(p) <= 1e-15)  # non-increasing: harder negatives weigh more
        target = (m + 1) / (2 * (n + 1))
        if replace:  # rank = ceil(n_neg U): target <= E[r]/n_neg < target + 1/n_neg
            assert target - 1e-12 <= p @ r / n_neg < target + 1 / n_neg
        else:  # exact: E[r] = (m+1)(n_neg+1) / (2(n+1))
            assert p @ r == pytest.approx(target * (n_neg + 1), rel=1e-12)


@pytest.mark.parametrize("replace", [True, False])
def test_dns_mn_law_monte_carlo_chi_square(replace):
    # 300k draws over 30 ranks: expected counts >= 5 in every (merged) bin; a systematic error
    # of 0.5% on a rank of mass 1/30 shifts its count by ~3 standard errors.  The negative
    # control shows the test is sharp: the other pool mode's law (|p - q| up to ~0.01) is
    # rejected with an overwhelming statistic.  Fixed seed: the outcome is deterministic.
    n_neg, m, n, draws = 30, 3, 10, 300_000
    rng = np.random.default_rng(2023 + replace)
    # Algorithm 1's pool, then one of its top m picked uniformly: multinomial rank counts.
    sample = O.dns_mn_sample(n_neg, m, n, replace, draws, rng)
    counts = np.bincount(sample, minlength=n_neg).astype(float)
    p = E.dns_mn_rank_probabilities(n_neg, m, n, replace=replace)
    assert O.chi_square_pvalue(counts, p) > 1e-3
    other = E.dns_mn_rank_probabilities(n_neg, m, n, replace=not replace)
    assert O.chi_square_pvalue(counts, other) < 1e-12
    shifted = E.dns_mn_rank_probabilities(n_neg, m + 1, n, replace=replace)
    assert O.chi_square_pvalue(counts, shifted) < 1e-12
    # Kolmogorov-Smirnov distance of the empirical CDF: below 1.63 / sqrt(draws) (99%).
    ks = np.max(np.abs(np.cumsum(counts) / draws - np.cumsum(p)))
    assert ks < 1.63 / math.sqrt(draws)


def test_dns_mn_objective_exact_vs_monte_carlo_and_mixture():
    rng = np.random.default_rng(31)
    pos, neg = rng.normal(0.5, 1, size=4), rng.normal(size=60)
    m, n = 3, 20
    for replace in (True, False):
        exact = E.dns_mn_objective(pos, neg, m, n, replace=replace)
        # Monte Carlo of Algorithm 1: 40k pools per positive, the mean over the top m.
        draws = 40_000
        desc = np.sort(neg)[::-1]
        estimates = []
        for p_score in pos:
            ranks = O.dns_mn_pools(neg.size, n, replace, draws, rng)
            estimates.append(E.bpr_loss(p_score - desc[ranks[:, :m]]).mean(axis=1))
        est = np.mean(estimates, axis=0)
        se = est.std() / math.sqrt(draws)
        assert abs(est.mean() - exact) < 5 * se  # 5 standard errors
        # Exact mixture identity: DNS(M,N) = sum_k c_k OPAUC-surrogate(k / n_neg).
        betas, c = E.dns_mn_beta_mixture(neg.size, m, n, replace=replace)
        assert np.all(c >= 0) and c.sum() == pytest.approx(1.0, abs=1e-12)
        mixture = sum(ck * E.opauc_surrogate(pos, neg, b) for b, ck in zip(betas, c) if ck > 0)
        assert mixture == pytest.approx(exact, rel=1e-10)


def test_dns_mn_beta_mixture_continuous_limit_is_beta_distribution():
    n_neg, m, n = 4000, 3, 20
    betas, c = E.dns_mn_beta_mixture(n_neg, m, n)
    pdf = stats.beta(m + 1, n - m).pdf(betas)
    # c_k = k (p_k - p_{k+1}) ~ pdf(k/n_neg) / n_neg, error O(1/n_neg) relative.
    np.testing.assert_allclose(c * n_neg, pdf, atol=5e-3 * pdf.max())
    assert c @ betas == pytest.approx((m + 1) / (n + 1), abs=2 / n_neg)


def test_dns_mn_quantile_cdf_and_density():
    m, n = 4, 15
    q = np.linspace(0, 1, 21)
    cdf = E.dns_mn_quantile_cdf(q, m, n)
    for x, value in zip(q, cdf):
        area = integrate.quad(lambda u: E.dns_mn_quantile_density(u, m, n), 0, x)[0]
        assert value == pytest.approx(area, abs=1e-10)
    mean = integrate.quad(lambda u: u * E.dns_mn_quantile_density(u, m, n), 0, 1)[0]
    assert mean == pytest.approx((m + 1) / (2 * (n + 1)), abs=1e-12)
    # The discrete law with replacement is exactly the CDF at r / n_neg.
    n_neg = 64
    np.testing.assert_allclose(np.cumsum(E.dns_mn_rank_probabilities(n_neg, m, n)),
                               E.dns_mn_quantile_cdf(np.arange(1, n_neg + 1) / n_neg, m, n),
                               rtol=1e-12, atol=1e-15)
    # The density is the average of the Beta(k, n-k+1) densities, k = 1..m.
    u = np.linspace(0.01, 0.99, 9)
    avg = np.mean([stats.beta(k, n - k + 1).pdf(u) for k in range(1, m + 1)], axis=0)
    np.testing.assert_allclose(E.dns_mn_quantile_density(u, m, n), avg, rtol=1e-12)


# --------------------------------------------------------------------------------------
# Bad input
# --------------------------------------------------------------------------------------
def test_bad_input_raises_value_error_naming_the_argument():
    ok = np.array([1.0, 2.0, 3.0])
    cases = [
        (lambda: E.cvar([1.0, np.nan], 0.5), "losses"),
        (lambda: E.kl_dro([1.0, np.nan], 0.5), "losses"),
        (lambda: E.kl_dro([], 0.5), "losses"),
        (lambda: E.kl_dro(ok, 0.0), "rho"),
        (lambda: E.kl_dro(ok, -1.0), "rho"),
        (lambda: E.kl_dro(ok, np.nan), "rho"),
        (lambda: E.softmax_v_tau(ok, 0.0), "rho"),
        (lambda: E.softmax_v_tau(ok, 1.0, ddof=2), "ddof"),
        (lambda: E.kl_dro_dual(ok, 1.0, -1.0), "lam"),
        (lambda: E.cvar(ok, 0.0), "beta"),
        (lambda: E.cvar(ok, 1.5), "beta"),
        (lambda: E.cvar(ok, np.nan), "beta"),
        (lambda: E.opauc_surrogate(ok, ok, 0.0), "beta"),
        (lambda: E.opauc_surrogate([], ok, 0.5), "pos_scores"),
        (lambda: E.opauc_surrogate(ok, [np.inf], 0.5), "neg_scores"),
        (lambda: E.opauc_surrogate(ok, ok, 0.5, reduction="max"), "reduction"),
        (lambda: E.dns_objective(ok, ok, 4), "m"),
        (lambda: E.dns_objective(ok, ok, 0), "m"),
        (lambda: E.dns_objective(ok, ok, 1.5), "m"),
        (lambda: E.dns_mn_rank_probabilities(10, 3, 2), "m"),
        (lambda: E.dns_mn_rank_probabilities(10, 0, 2), "m"),
        (lambda: E.dns_mn_rank_probabilities(10, 1, 0), "n"),
        (lambda: E.dns_mn_rank_probabilities(0, 1, 1), "n_neg"),
        (lambda: E.dns_mn_rank_probabilities(5, 1, 6, replace=False), "n"),
        (lambda: E.dns_mn_objective(ok, ok, 2, 1), "m"),
        (lambda: E.dns_mn_quantile_cdf(1.5, 1, 2), "q"),
        (lambda: E.score_softmax_probabilities(ok, -1.0), "tau"),
        (lambda: E.opauc_rank_weights(0, 0.5), "n_neg"),
    ]
    for call, name in cases:
        with pytest.raises(ValueError, match=rf"\b{name}\b"):
            call()
