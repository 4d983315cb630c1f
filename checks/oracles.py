"""Brute-force references shared by the checks and the tests, in plain numpy / scipy.

Nothing here calls ``theory``, ``simulations`` or ``training``: each function recomputes a
quantity from its definition in the paper, by the most direct route (pair counts, the ROC
polyline, sorting, enumeration, a scalar minimization), so a check comparing the package with
it compares two independent computations.  This module registers no check.
"""
from __future__ import annotations

import itertools
import math

import numpy as np
from scipy import optimize, special, stats


# --------------------------------------------------------------------------------------
# Metrics
# --------------------------------------------------------------------------------------
def pairs(pos, neg):
    """#{pos > neg} + 1/2 #{pos == neg} over all (positive, negative) pairs (Mann-Whitney)."""
    d = np.subtract.outer(np.asarray(pos, float), np.asarray(neg, float))
    return float((d > 0).sum() + 0.5 * (d == 0).sum())


def mann_whitney_auc(y, s):
    """AUC of each row of a batch by the pair count (paper Eq. 6)."""
    y, s = np.atleast_2d(y), np.atleast_2d(s)
    return np.array([pairs(s[r][y[r]], s[r][~y[r]]) / (y[r].sum() * (~y[r]).sum())
                     for r in range(y.shape[0])])


def roc(y, s):
    """Empirical ROC vertices (fpr, tpr), one per distinct score, from (0, 0)."""
    order = np.argsort(-s, kind="stable")
    ss, yy = s[order], y[order]
    last = np.r_[ss[1:] != ss[:-1], True]          # last item of each group of equal scores
    tp = np.r_[0, np.cumsum(yy)[last]]
    fp = np.r_[0, np.cumsum(~yy)[last]]
    return fp / fp[-1], tp / tp[-1]


def clipped_area(fpr, tpr, beta, lo=0.0, hi=1.0):
    """Exact integral over [0, beta] of clip(ROC, lo, hi) - lo (trapezoids on linear pieces)."""
    total = 0.0
    for x0, y0, x1, y1 in zip(fpr[:-1], tpr[:-1], fpr[1:], tpr[1:]):
        if x1 <= x0 or x0 >= beta:
            continue
        xe = min(x1, beta)
        ye = y0 + (y1 - y0) * (xe - x0) / (x1 - x0)
        xs = sorted([x0, xe] + [x0 + (c - y0) * (xe - x0) / (ye - y0)
                                for c in (lo, hi) if (y0 - c) * (ye - c) < 0])
        f = [min(max(y0 + (ye - y0) * (x - x0) / (xe - x0), lo), hi) - lo for x in xs]
        total += sum(0.5 * (b - a) * (fa + fb) for a, b, fa, fb in zip(xs, xs[1:], f, f[1:]))
    return total


def orderings(s):
    """Every ordering of the items consistent with descending scores (ties permuted)."""
    order = np.argsort(-s, kind="stable")
    groups = np.split(order, np.flatnonzero(np.diff(s[order]) != 0) + 1)
    return np.array([np.concatenate(c) for c in
                     itertools.product(*(list(itertools.permutations(g)) for g in groups))])


def all_rankings(n_pos, n_neg):
    """Every tie-free ranking of ``n_pos`` positives and ``n_neg`` negatives, as boolean labels
    in rank order (True = positive), one array per choice of the positives' positions."""
    for pos in itertools.combinations(range(n_pos + n_neg), n_pos):
        labels = np.zeros(n_pos + n_neg, dtype=bool)
        labels[list(pos)] = True
        yield labels


def opauc_count(labels, k):
    """OPAUC count C of a tie-free ranking (Theorem 3, Eq. 8 times N+ N-): the number of
    (positive, top-k negative) pairs with the positive ranked above; ``labels`` in rank order.
    Each positive beats the top-k negatives after it: k minus those before it."""
    neg = np.flatnonzero(~labels)[:k]
    pos = np.flatnonzero(labels)
    return int((k - np.searchsorted(neg, pos)).sum())


def topk_plain(labels, k, n_pos):
    """Untied (precision, recall, recall with min(k, n_pos), NDCG, hit) @k of each row of
    ``labels`` given in rank order."""
    top = labels[:, :k].astype(float)
    hits = top.sum(axis=1)
    dcg = (top / np.log2(np.arange(2, top.shape[1] + 2))).sum(axis=1)
    ideal = (1.0 / np.log2(np.arange(2, min(n_pos, k) + 2))).sum()
    return np.stack([hits / k, hits / n_pos, hits / min(n_pos, k), dcg / ideal,
                     (hits > 0).astype(float)])


# --------------------------------------------------------------------------------------
# Estimators
# --------------------------------------------------------------------------------------
def bpr(x):
    """log(1 + exp(-x)), by numpy's logaddexp."""
    return np.logaddexp(0.0, -np.asarray(x, float))


def dns_brute(pos, neg, m):
    """BPR under DNS over all negatives (Eqs. 1-2): for each positive, the mean BPR loss of
    the m highest-scored negatives; mean over positives."""
    top = np.sort(np.asarray(neg, float))[::-1][:m]
    return float(np.mean([bpr(p - top).mean() for p in np.asarray(pos, float)]))


def cvar_dual(losses, beta, eta):
    """The CVaR dual objective (Eq. 15) at ``eta``: ``eta + sum_j (L_j - eta)_+ / (n beta)``,
    P0 uniform over the n losses.  Its minimum over the losses (the kinks) is the CVaR."""
    losses = np.asarray(losses, float)
    return eta + np.maximum(losses - eta, 0).sum() / (losses.size * beta)


def kl_to_uniform(w):
    """KL(w || uniform) of a probability vector, ``sum_j w_j log(n w_j)`` (0 log 0 = 0)."""
    w = np.asarray(w, float)
    nz = w > 0
    return float(np.sum(w[nz] * np.log(w[nz] * w.size)))


def kl_dual(losses, rho, lam):
    """The KL-DRO dual objective (Eq. 21) at temperature ``lam > 0``:
    ``lam (log mean exp(L / lam) + rho)``, by scipy's logsumexp."""
    L = np.asarray(losses, float)
    return lam * (special.logsumexp(L / lam) - math.log(L.size) + rho)


def kl_dro_dual_value(losses, rho):
    """KL-DRO value from the dual (Eq. 21), ``min_{lam > 0} lam (log mean exp(L / lam) +
    rho)``, by scipy's bounded scalar minimization over log(lam) (the dual is convex in lam;
    the value's error is second order in the error of lam)."""
    L = np.asarray(losses, float)
    spread = max(float(L.max() - L.min()), 1e-300)

    def dual(log_lam):
        return kl_dual(L, rho, math.exp(log_lam) * spread)

    res = optimize.minimize_scalar(dual, bounds=(math.log(1e-8), math.log(1e8)), method="bounded",
                                   options={"xatol": 1e-12, "maxiter": 2000})
    # The infimum over lam -> 0 is max(L) (reached only for rho >= log n): keep the smaller.
    return float(min(res.fun, dual(math.log(1e-8)), L.max() if rho >= math.log(L.size) else np.inf))


# --------------------------------------------------------------------------------------
# DNS(M, N) sampling law
# --------------------------------------------------------------------------------------
def dns_mn_law(n_neg, m, n, replace=True):
    """Expected weight of DNS(M, N) on each negative rank (1 = highest score), from the
    order statistics of the pool: the j-th highest of the pool has rank <= r exactly when at
    least j pool draws fall in the top r, so P(rank <= r) is a binomial (with replacement)
    or hypergeometric (without) tail; the weight is the mean over j = 1..m of the rank laws."""
    r = np.arange(0, n_neg + 1)
    cdf = np.zeros(n_neg + 1)
    for j in range(1, m + 1):
        if replace:
            cdf += stats.binom.sf(j - 1, n, r / n_neg)
        else:
            cdf += stats.hypergeom.sf(j - 1, n_neg, r, n)
    return np.diff(cdf) / m


def dns_mn_pools(n_neg, n, replace, draws, rng):
    """``draws`` pools of Algorithm 1, each row the 0-based ranks of n uniform draws from
    n_neg negatives (with or without replacement), sorted (best rank first)."""
    if replace:
        pool = rng.integers(0, n_neg, size=(draws, n))
    else:
        pool = np.argsort(rng.random((draws, n_neg)), axis=1)[:, :n]
    pool.sort(axis=1)
    return pool


def dns_mn_sample(n_neg, m, n, replace, draws, rng):
    """Monte Carlo of the "pick one of the top m of the pool" sampler: ranks (0-based).

    Picking one of the top m uniformly makes each draw an exact sample of the DNS(M, N) rank
    law (the expected weights of the pool's top m), so counts are multinomial."""
    pool = dns_mn_pools(n_neg, n, replace, draws, rng)
    return pool[np.arange(draws), rng.integers(0, m, size=draws)]


def chi_square_pvalue(counts, probs, min_expected=5.0):
    """Pearson chi-square p-value of ``counts`` against the law ``probs``, adjacent bins
    merged (in order) until each expected count is >= ``min_expected``; a last bin below it
    joins the previous one."""
    expected = np.asarray(probs, float) * np.sum(counts)
    obs, exp = [], []
    o = e = 0.0
    for c, x in zip(counts, expected):
        o, e = o + c, e + x
        if e >= min_expected:
            obs.append(o)
            exp.append(e)
            o = e = 0.0
    obs[-1] += o
    exp[-1] += e
    return float(stats.chisquare(obs, exp).pvalue)


# --------------------------------------------------------------------------------------
# Moments
# --------------------------------------------------------------------------------------
def sample_cumulants(x):
    """(mean, k2, k3, k4) of the empirical law of ``x``: the central moments m2, m3 (= the
    cumulants k2, k3) and k4 = m4 - 3 m2^2 (population convention, no bias correction)."""
    x = np.asarray(x, float)
    z = x - x.mean()
    m2, m3, m4 = (np.mean(z**p) for p in (2, 3, 4))
    return x.mean(), m2, m3, m4 - 3 * m2**2
