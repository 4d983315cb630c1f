"""training.sampling: sampler weights vs numpy references, pools, and the Fig. 7 laws.

Statistical tests use fixed seeds; tolerances are stated where they are used (in standard
errors, SE).  A correct implementation passes them with probability > 1 - 1e-4 each.
"""
from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
from scipy import stats

from theory import estimators as E
from training import sampling as S


# --------------------------------------------------------------------------------------
# Numpy references
# --------------------------------------------------------------------------------------
def ref_weights(sampler, pos_score, scores):
    """Plain numpy weights of one pool (DNS ties: the earlier pool position wins)."""
    scores = np.asarray(scores, float)
    n = scores.size
    losses = E.bpr_loss(pos_score - scores)
    if sampler.kind == "uniform":
        w = np.full(n, 1.0 / n)
    elif sampler.kind == "dns":
        w = np.zeros(n)
        top = np.argsort(-scores, kind="stable")[: sampler.m]
        w[top] = 1.0 if sampler.reduction == "sum" else 1.0 / sampler.m
    elif sampler.kind == "softmax_v":
        w = E.softmax_weights(losses, E.softmax_v_tau(losses, sampler.rho, ddof=sampler.ddof))
    else:
        w = E.score_softmax_probabilities(scores, sampler.tau)
    return w, float(w @ losses)


SAMPLERS = [S.uniform(1), S.uniform(7), S.dns(1, 30), S.dns(4, 30), S.dns(30, 30),
            S.dns(27, 40), S.dns(3, 30, reduction="sum"), S.softmax_v(0.01, 30),
            S.softmax_v(2.0, 30), S.softmax_v(1.0, 30, ddof=1), S.score_softmax(0.3, 30)]


@pytest.mark.parametrize("sampler", SAMPLERS, ids=lambda s: s.label() + s.reduction + str(s.ddof))
def test_pool_weights_match_numpy_reference(sampler):
    rng = np.random.default_rng(0)
    for trial in range(5):
        n = sampler.n
        scores = rng.normal(size=n)
        if trial % 2:
            scores = np.round(scores, 0)  # many exact ties
        pos = float(rng.normal())
        w, loss = S.pool_weights(sampler, pos, scores)
        w_ref, loss_ref = ref_weights(sampler, pos, scores)
        np.testing.assert_allclose(w, w_ref, rtol=1e-12, atol=1e-15)
        assert loss == pytest.approx(loss_ref, rel=1e-12)


def test_loss_and_derivative_from_one_exp_are_bit_identical_to_theory_kernels():
    """bpr_loss_and_grad shares one exp between l(x) and l'(x): it must give exactly the
    values of theory's two scalar kernels (the trainer's results depend on it bit for bit),
    over both branches, tiny and huge |x|, and the switch at 0."""
    rng = np.random.default_rng(9)
    xs = np.concatenate([rng.normal(scale=3.0, size=2000), rng.normal(scale=1e-8, size=200),
                         [0.0, -0.0, 1e-300, -1e-300, 30.0, -30.0, 700.0, -700.0, 1e5, -1e5]])
    both = np.array([S.bpr_loss_and_grad(x) for x in xs])
    assert np.array_equal(both[:, 0], [E.bpr_loss_scalar(x) for x in xs])
    assert np.array_equal(both[:, 1], [E.bpr_loss_grad_scalar(x) for x in xs])
    # and against the numpy formulas: l(x) = log(1 + e^-x), l'(x) = -1 / (1 + e^x), to a few
    # ulp in the range where the naive formulas are accurate
    mid = np.abs(xs) < 20
    np.testing.assert_allclose(both[mid, 0], np.log1p(np.exp(-xs[mid])), rtol=1e-14)
    np.testing.assert_allclose(both[mid, 1], -1.0 / (1.0 + np.exp(xs[mid])), rtol=1e-14)


def test_loss_of_each_sampler_is_theory_objective():
    rng = np.random.default_rng(1)
    scores, pos = rng.normal(size=50), 0.3
    losses = E.bpr_loss(pos - scores)
    # DNS over the whole pool = theory's DNS objective = OPAUC surrogate at m / n (Thm 1)
    assert S.pool_weights(S.dns(5, 50), pos, scores)[1] == pytest.approx(
        E.dns_objective([pos], scores, 5), rel=1e-13)
    assert S.pool_weights(S.dns(5, 50), pos, scores)[1] == pytest.approx(
        E.opauc_surrogate([pos], scores, 0.1), rel=1e-13)
    assert S.pool_weights(S.softmax_v(0.7, 50), pos, scores)[1] == pytest.approx(
        E.softmax_v_objective(losses, 0.7), rel=1e-13)
    assert S.pool_weights(S.score_softmax(0.5, 50), pos, scores)[1] == pytest.approx(
        E.score_softmax_objective([pos], scores, 0.5), rel=1e-13)
    assert S.pool_weights(S.uniform(50), pos, scores)[1] == pytest.approx(losses.mean(), rel=1e-13)


def test_softmax_v_constant_losses_give_uniform_weights():
    w, loss = S.pool_weights(S.softmax_v(1.0, 10), 0.0, np.full(10, 0.25))
    np.testing.assert_allclose(w, 0.1)
    assert loss == pytest.approx(float(E.bpr_loss(-0.25)))


def test_pick_one_picks_each_of_the_top_m_uniformly():
    scores = np.arange(20.0)[::-1].copy()  # rank r at position r - 1
    sampler = S.dns(4, 20, variant="pick_one")
    counts = np.zeros(20)
    for seed in range(2000):
        w, loss = S.pool_weights(sampler, 0.0, scores, seed=seed)
        assert np.count_nonzero(w) == 1 and w.sum() == 1.0
        k = int(np.flatnonzero(w)[0])
        assert loss == pytest.approx(float(E.bpr_loss(-scores[k])))
        counts[k] += 1
    assert counts[4:].sum() == 0
    # chi-square goodness of fit to uniform on the top 4 (p-value threshold 1e-4)
    assert stats.chisquare(counts[:4]).pvalue > 1e-4
    # "sum" reduction: the single pick carries weight M (same expectation as weighting all M)
    w, _ = S.pool_weights(S.dns(4, 20, variant="pick_one", reduction="sum"), 0.0, scores)
    assert w.sum() == 4.0


@pytest.mark.parametrize("m", [1, 3, 24, 25, 60, S.INSERTION_MAX_M, S.INSERTION_MAX_M + 1, 299,
                               300, 400])
@pytest.mark.parametrize("distinct", [False, True])
def test_top_m_indices_is_a_stable_partial_selection(m, distinct):
    # both branches (insertion buffer up to INSERTION_MAX_M, argsort above), m >= n, with and
    # without ties; the oracle is numpy's stable sort
    rng = np.random.default_rng(m)
    for _ in range(20):
        scores = rng.normal(size=300) if distinct else rng.integers(0, 15, 300).astype(float)
        sel = np.full(300, -1, np.int64)
        S.top_m_indices(scores, m, sel, np.empty(300))
        np.testing.assert_array_equal(sel[:m], np.argsort(-scores, kind="stable")[:m])


@pytest.mark.parametrize("kwargs", [dict(kind="dns", m=5, n=4), dict(kind="dns", m=0, n=4),
                                    dict(kind="dns", m=1.5, n=4), dict(kind="uniform", n=0),
                                    dict(kind="softmax_v", rho=0.0, n=5),
                                    dict(kind="softmax_v", rho=-1, n=5),
                                    dict(kind="softmax_v", rho=float("inf"), n=5),
                                    dict(kind="softmax_v", rho=1, n=1, ddof=1),
                                    dict(kind="score_softmax", tau=0, n=5),
                                    dict(kind="bogus"), dict(kind="dns", pool="items"),
                                    dict(kind="dns", reduction="max"),
                                    dict(kind="dns", variant="random"),
                                    dict(kind="uniform", ddof=2)])
def test_invalid_samplers_raise(kwargs):
    with pytest.raises(ValueError):
        S.Sampler(**kwargs)


def test_invalid_pool_inputs_raise():
    with pytest.raises(ValueError):
        S.pool_weights(S.dns(5, 10), 0.0, np.zeros(3))  # m > pool size
    with pytest.raises(ValueError):
        S.pool_weights(S.uniform(), 0.0, [np.nan])
    with pytest.raises(ValueError):
        S.empirical_rank_distribution(S.dns(2, 10), np.zeros(5), replace=False)
    with pytest.raises(ValueError):
        S.empirical_rank_distribution(S.dns(2, 10), [], n_repeats=10)
    with pytest.raises(ValueError):
        S.pool_weights("dns", 0.0, np.zeros(3))


# --------------------------------------------------------------------------------------
# Pools
# --------------------------------------------------------------------------------------
def test_draw_pools_excludes_positives_and_is_uniform_over_negatives():
    rng = np.random.default_rng(2)
    n_users, n_items = 5, 40
    dense = rng.random((n_users, n_items)) < 0.3
    dense[4] = False
    dense[4, :39] = True  # one negative left: every draw must be item 39
    rows, cols = np.nonzero(dense)
    # an explicitly stored zero (user 4, item 39) is not a positive
    train = sp.csr_matrix((np.r_[np.ones(rows.size), 0.0], (np.r_[rows, 4], np.r_[cols, 39])),
                          shape=dense.shape)
    assert train.nnz == dense.sum() + 1
    users = np.repeat(np.arange(n_users), 400)
    pools = S.draw_pools(users, S.uniform(25), train, seed=3)
    assert pools.shape == (users.size, 25)
    assert not dense[users[:, None], pools].any()
    assert np.all(pools[users == 4] == 39)
    for u in range(4):
        negatives = np.flatnonzero(~dense[u])
        counts = np.bincount(pools[users == u].ravel(), minlength=n_items)[negatives]
        assert stats.chisquare(counts).pvalue > 1e-4  # uniform over the negatives
    # pool="all" keeps positives: their share is close to the positive fraction
    pools_all = S.draw_pools(users[:1600], S.uniform(25, pool="all"), train, seed=3)
    share = dense[users[:1600, None], pools_all].mean()
    expected = dense[users[:1600]].mean()
    assert abs(share - expected) < 5 * np.sqrt(expected * (1 - expected) / pools_all.size)


def test_draw_pools_is_seeded():
    train = sp.csr_matrix(np.eye(6, 30, dtype=bool))
    users = np.arange(6).repeat(50)
    a = S.draw_pools(users, S.dns(2, 9), train, seed=11)
    np.testing.assert_array_equal(a, S.draw_pools(users, S.dns(2, 9), train, seed=11))
    assert not np.array_equal(a, S.draw_pools(users, S.dns(2, 9), train, seed=12))
    with pytest.raises(ValueError):
        S.draw_pools([0], S.uniform(3), sp.csr_matrix(np.ones((1, 4), bool)))  # no negative
    with pytest.raises(ValueError):
        S.draw_pools([7], S.uniform(3), train)


# --------------------------------------------------------------------------------------
# Fig. 7: sampling laws over ranks
# --------------------------------------------------------------------------------------
@pytest.mark.parametrize("m,n,replace", [(1, 10, True), (5, 50, True), (3, 20, False),
                                         (20, 20, True)])
def test_dns_empirical_law_matches_exact_law(m, n, replace):
    n_neg, reps = 120, 40_000
    scores = np.random.default_rng(0).normal(size=n_neg)
    exact = E.dns_mn_rank_probabilities(n_neg, m, n, replace=replace)
    # pick-one: each repeat samples exactly one rank, a multinomial draw from the exact law
    emp = S.empirical_rank_distribution(S.dns(m, n, variant="pick_one"), scores,
                                        n_repeats=reps, seed=1, replace=replace)
    counts = np.round(emp * reps).astype(int)
    keep = exact * reps >= 5  # chi-square validity; pool the tail
    observed = np.r_[counts[keep], counts[~keep].sum()]
    expected = np.r_[exact[keep], exact[~keep].sum()] * reps
    if expected[-1] == 0:
        assert observed[-1] == 0
        observed, expected = observed[:-1], expected[:-1]
    assert stats.chisquare(observed, expected).pvalue > 1e-4
    # weighted: cumulative mass within 4.5 SE at every rank where the normal approximation
    # holds (>= 10 expected repeats on each side); SE <= sqrt(F(1 - F) / reps) because the
    # per-repeat cumulative weight lies in [0, 1].
    emp = S.empirical_rank_distribution(S.dns(m, n), scores, n_repeats=reps, seed=2,
                                        replace=replace)
    F, F_hat = np.cumsum(exact), np.cumsum(emp)
    ok = np.minimum(F, 1 - F) * reps >= 10
    se = np.sqrt(np.clip(F * (1 - F), 0, None) / reps)
    assert ok.sum() >= 5 or m == n
    assert np.all(np.abs(F_hat - F)[ok] <= 4.5 * se[ok])
    assert emp.sum() == pytest.approx(1.0)


def _top_mass(sampler, scores, q=0.1, pos_score=1.0):
    law = S.empirical_rank_distribution(sampler, scores, pos_score, n_repeats=20_000, seed=4)
    return law[: int(q * scores.size)].sum()


def test_fig7_hardness_orderings():
    scores = np.random.default_rng(5).normal(size=400)
    # smaller M = harder (at fixed N); larger N = harder (at fixed M); larger rho = harder;
    # smaller tau = harder: more mass on the top 10% of ranks.  The margins asked (0.04)
    # are > 10 SE (SE < 0.004 with 20,000 repeats).
    dns_m = [_top_mass(S.dns(m, 50), scores) for m in (25, 5, 1)]
    dns_n = [_top_mass(S.dns(4, n), scores, q=0.05) for n in (10, 40, 160)]
    sv = [_top_mass(S.softmax_v(r, 50), scores) for r in (0.01, 1.0, 3.0)]
    ss = [_top_mass(S.score_softmax(t, 50), scores) for t in (2.0, 0.5, 0.1)]
    for curve in (dns_m, dns_n, sv, ss):  # each listed from the softest to the hardest
        assert curve[0] + 0.04 < curve[1] < curve[2] - 0.04, curve
    uniform = _top_mass(S.uniform(50), scores)
    assert abs(uniform - 0.1) < 0.01


def test_empirical_law_is_seeded_and_thread_independent_by_construction():
    scores = np.random.default_rng(6).normal(size=50)
    a = S.empirical_rank_distribution(S.softmax_v(1.0, 20), scores, 0.5, n_repeats=3000, seed=9)
    b = S.empirical_rank_distribution(S.softmax_v(1.0, 20), scores, 0.5, n_repeats=3000, seed=9)
    np.testing.assert_array_equal(a, b)
    assert a.sum() == pytest.approx(1.0)
