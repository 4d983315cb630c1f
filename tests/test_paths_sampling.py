"""Issue 11, item 4: the without-replacement pool draw of training.sampling with tied scores.

``empirical_rank_distribution(..., replace=False)`` draws N distinct negatives (Floyd's
algorithm, then a uniform shuffle) and credits the sampler's weights to the ranks of the
chosen negatives (rank ties broken by position in ``neg_scores``, stably).  With tied
scores, *which* tied negative DNS keeps depends on the pool order (ties at the M-th place
go to the earlier pool draw), so the order of the draw matters, not only the set.

Exact laws are enumerated here: every ordered pool of N distinct negatives is equally
likely, and each sampler's rule is applied literally to each pool.  Monte Carlo from the
sampler (fixed seeds and sample sizes below) is compared with them by a chi-square test
where each repeat picks one rank (multinomial), and by per-rank z-scores with the exact
per-repeat variance otherwise.
"""
from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import scipy.stats

from theory import estimators as E
from training import sampling as S

# 12 negatives in 5 tie groups, tied negatives not adjacent in the array: score levels.
LEVELS = np.array([1, 3, 3, 0, 3, 1, 2, 2, 0, 1, 3, -1], dtype=float)
N_POOL = 5
REPEATS = 60_000


def _ranks(scores):
    """0-based rank of each negative: decreasing score, ties by array position."""
    order = np.argsort(-scores, kind="stable")
    ranks = np.empty(scores.size, np.int64)
    ranks[order] = np.arange(scores.size)
    return ranks


def _ordered_pools(n_neg, n):
    return np.array(list(itertools.permutations(range(n_neg), n)), dtype=np.int64)


def exact_dns_law(scores, m, n):
    """Expected weight per rank of DNS(M, N) (weights 1/M), pool without replacement,
    every ordered pool equally likely; the top M of a pool by score, equal scores to the
    earlier pool position."""
    pools = _ordered_pools(scores.size, n)
    pos = np.broadcast_to(np.arange(n), pools.shape)
    # lexsort: last key primary -> by -score, then by pool position
    order = np.lexsort((pos, -scores[pools]), axis=1)
    top = np.take_along_axis(pools, order[:, :m], axis=1)
    law = np.bincount(_ranks(scores)[top].ravel(), minlength=scores.size)
    return law / (len(pools) * m)


def exact_softmax_moments(scores, n, weights_of):
    """Mean and variance (over pools) of the weight credited to each rank, for a sampler
    whose weights depend only on the pool's scores and treat tied draws alike."""
    ranks = _ranks(scores)
    subsets = np.array(list(itertools.combinations(range(scores.size), n)), dtype=np.int64)
    per_pool = np.zeros((len(subsets), scores.size))
    for row, pool in zip(per_pool, subsets):  # the order of a pool does not matter here
        row[ranks[pool]] = weights_of(scores[pool])
    return per_pool.mean(axis=0), per_pool.var(axis=0)


def _softmax(v):
    e = np.exp(v - v.max())
    return e / e.sum()


def test_exact_dns_law_with_ties_is_the_group_average_of_the_untied_law():
    """Cross-check of the enumeration: with the pool order uniformly random, tied negatives
    are exchangeable, so each gets the mean over its tie group of theory's untied law."""
    for m in (1, 2, 4):
        law = exact_dns_law(LEVELS, m, N_POOL)
        untied = E.dns_mn_rank_probabilities(LEVELS.size, m, N_POOL, replace=False)
        sorted_levels = np.sort(LEVELS)[::-1]
        want = np.array([untied[sorted_levels == v].mean() for v in sorted_levels])
        np.testing.assert_allclose(law, want, rtol=1e-12, atol=1e-15)
        assert law.sum() == pytest.approx(1.0)
        assert not np.allclose(law, untied)  # ties change the law: the path is reached


@pytest.mark.parametrize("m,variant,seed", [(1, "weighted", 11), (2, "pick_one", 12),
                                            (4, "pick_one", 13)])
def test_dns_without_replacement_tied_rank_law_chi_square(m, variant, seed):
    """One rank per repeat (M = 1, or the pick-one variant, whose law is the same as the
    weighted one): counts are multinomial(REPEATS, exact law).  Ranks the law cannot reach
    (fewer than M better negatives outside a pool of 5 of 12) must get nothing; on the
    others (every expected count >= 150) the chi-square test must not reject at p = 1e-4."""
    exact = exact_dns_law(LEVELS, m, N_POOL)
    emp = S.empirical_rank_distribution(S.dns(m, N_POOL, variant=variant), LEVELS,
                                        n_repeats=REPEATS, seed=seed, replace=False)
    counts = emp * REPEATS
    assert np.all(np.isfinite(counts))
    np.testing.assert_allclose(counts, np.round(counts), atol=1e-6)  # one rank per repeat
    reach = exact > 0
    assert np.all(counts[~reach] == 0)
    assert (exact[reach] * REPEATS).min() >= 150 and reach.sum() >= 6
    assert scipy.stats.chisquare(np.round(counts[reach]), exact[reach] * REPEATS).pvalue > 1e-4


def test_dns_weighted_without_replacement_tied_rank_law():
    """DNS(3, 5) weighted: each repeat puts 1/3 on three distinct ranks, so the weight on
    rank r is (1/3) x Bernoulli(3 p_r): SE = sqrt(3 p_r (1 - 3 p_r) / REPEATS) / 3.  Every
    rank within 4.5 SE (12 ranks: a false alarm below 1e-4 with the normal tail)."""
    m = 3
    exact = exact_dns_law(LEVELS, m, N_POOL)
    emp = S.empirical_rank_distribution(S.dns(m, N_POOL), LEVELS, n_repeats=REPEATS, seed=14,
                                        replace=False)
    reach = exact > 0
    assert np.all(emp[~reach] == 0)  # ranks below the top 3 of every pool
    se = np.sqrt(m * exact * (1 - m * exact) / REPEATS) / m
    assert np.all(np.isfinite(emp))
    z = (emp[reach] - exact[reach]) / se[reach]
    assert np.abs(z).max() < 4.5, z


@pytest.mark.parametrize("sampler,pos_score,seed", [
    (S.score_softmax(0.5, N_POOL), 0.0, 15),
    (S.softmax_v(1.0, N_POOL), 1.5, 16),
], ids=["score_softmax", "softmax_v"])
def test_softmax_samplers_without_replacement_tied_rank_law(sampler, pos_score, seed):
    """Mean weight per rank over REPEATS pools vs the exact mean over all pools; SE from
    the exact per-pool variance; every rank within 4.5 SE."""
    if sampler.kind == "score_softmax":
        def weights_of(s):
            return _softmax(s / sampler.tau)
    else:
        def weights_of(s):
            losses = np.logaddexp(0.0, -(pos_score - s))
            tau = math.sqrt(losses.var() / (2 * sampler.rho))  # Eq. 18: population variance
            return _softmax(losses / tau)
    mean, var = exact_softmax_moments(LEVELS, N_POOL, weights_of)
    emp = S.empirical_rank_distribution(sampler, LEVELS, pos_score, n_repeats=REPEATS, seed=seed,
                                        replace=False)
    assert np.all(np.isfinite(emp))
    z = (emp - mean) / np.sqrt(var / REPEATS)
    assert np.abs(z).max() < 4.5, z
