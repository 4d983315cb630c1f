"""Numerical proof of Theorem 3 (theory/bounds.py): OPAUC bounds Recall@K and Precision@K.

The raw OPAUC is computed by brute-force pair counting over explicit rankings (a Python loop
over pairs here; the vectorized count of checks.oracles, shared with the paper checks and
tested against the loop), and every ranking of small settings is enumerated
(checks.oracles.all_rankings).
"""
from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from checks import oracles as O
from theory import bounds as B

SMALL = [(4, 5, 2), (5, 6, 3), (6, 7, 3), (5, 8, 4), (7, 7, 2),
         # Outside the paper's N+ > K, N- > K: the proof needs only N- >= K.
         (2, 5, 3), (3, 3, 3), (1, 4, 2)]


def opauc_count(labels, k):
    """Brute force: pairs (positive, top-k negative) with the positive ranked above."""
    labels = list(labels)
    negatives = [pos for pos, lab in enumerate(labels) if not lab][:k]
    positives = [pos for pos, lab in enumerate(labels) if lab]
    return sum(1 for p in positives for q in negatives if p < q)


@pytest.mark.parametrize("n_pos,n_neg,k", SMALL)
def test_theorem3_every_ranking_satisfies_the_bounds(n_pos, n_neg, k):
    hits_by_count: dict[int, set[int]] = {}
    for labels in O.all_rankings(n_pos, n_neg):
        c = opauc_count(labels, k)
        hits = int(labels[:k].sum())
        a = c / (n_pos * n_neg)
        hits_by_count.setdefault(c, set()).add(hits)
        b = B.topk_bounds(a, n_pos, n_neg, k)
        assert b.recall_low <= hits / n_pos <= b.recall_high
        assert b.precision_low <= hits / k <= b.precision_high
        t = B.topk_bounds(a, n_pos, n_neg, k, tight=True)
        assert b.recall_low <= t.recall_low <= hits / n_pos <= t.recall_high <= b.recall_high
    # The integer-sharpened bounds are exactly the achievable range: for every OPAUC value,
    # the hits seen over all rankings form the interval [low, high] of hit_bounds(tight=True).
    for c, seen in hits_by_count.items():
        low, high = B.hit_bounds(c / (n_pos * n_neg), n_pos, n_neg, k, tight=True)
        assert seen == set(range(int(low), int(high) + 1))


@pytest.mark.parametrize("n_pos,n_neg,k", SMALL)
def test_theorem3_bounds_attained_by_extremal_rankings(n_pos, n_neg, k):
    counts_by_hits: dict[int, list[int]] = {}
    for labels in O.all_rankings(n_pos, n_neg):
        counts_by_hits.setdefault(int(labels[:k].sum()), []).append(opauc_count(labels, k))
    for i in range(min(k, n_pos) + 1):
        ext = B.extremal_rankings(n_pos, n_neg, k, i)
        for labels in (ext.max_labels, ext.min_labels):
            assert labels.dtype == bool and labels.sum() == n_pos and labels.size == n_pos + n_neg
            assert labels[:k].sum() == i
        assert opauc_count(ext.max_labels, k) == ext.max_count
        assert opauc_count(ext.min_labels, k) == ext.min_count
        # They are the extremes over all rankings with i hits (when i hits is possible).
        if i in counts_by_hits:
            assert ext.max_count == max(counts_by_hits[i])
            assert ext.min_count == min(counts_by_hits[i])
        assert B.opauc_count_range(n_pos, n_neg, k, i) == (ext.min_count, ext.max_count)
        # Eq. 19's lower bound is attained at the max arrangement, the upper at the min.
        at_max = B.topk_bounds(ext.max_count / (n_pos * n_neg), n_pos, n_neg, k)
        at_min = B.topk_bounds(ext.min_count / (n_pos * n_neg), n_pos, n_neg, k)
        assert at_max.recall_low == i / n_pos and at_max.precision_low == i / k
        assert at_min.recall_high == i / n_pos and at_min.precision_high == i / k


def test_fast_count_matches_brute_force():
    rng = np.random.default_rng(0)
    for _ in range(50):
        labels = rng.permutation(np.r_[np.ones(9, bool), np.zeros(12, bool)])
        assert O.opauc_count(labels, 5) == opauc_count(labels, 5)


def test_all_rankings_enumerates_each_ranking_once():
    # The enumeration behind the exhaustive tests: C(N, N+) distinct labelings, N+ positives each.
    for n_pos, n_neg in [(1, 4), (3, 4), (5, 2)]:
        seen = [labels.tobytes() for labels in O.all_rankings(n_pos, n_neg)]
        assert len(seen) == len(set(seen)) == math.comb(n_pos + n_neg, n_pos)
        assert all(labels.sum() == n_pos for labels in O.all_rankings(n_pos, n_neg))


@pytest.mark.parametrize("k", [5, 20, 50])
def test_theorem3_random_large_rankings(k):
    n_pos, n_neg = 200, 800
    rng = np.random.default_rng(k)
    base = np.r_[np.ones(n_pos, bool), np.zeros(n_neg, bool)]
    rankings = [rng.permutation(base) for _ in range(200)]
    # Rankings near the extremes, where the bounds are active: perturb extremal rankings.
    for i in rng.integers(0, k + 1, size=100):
        ext = B.extremal_rankings(n_pos, n_neg, k, int(i))
        for labels in (ext.max_labels.copy(), ext.min_labels.copy()):
            for _ in range(rng.integers(0, 4)):
                a, b = rng.integers(0, n_pos + n_neg, size=2)
                labels[[a, b]] = labels[[b, a]]
            rankings.append(labels)
    counts = np.array([O.opauc_count(lab, k) for lab in rankings])
    hits = np.array([lab[:k].sum() for lab in rankings])
    # Floating raw OPAUC, as a metric would return it (a sum of 1/(n_pos n_neg) terms).
    raw = counts / n_pos / n_neg
    b = B.topk_bounds(raw, n_pos, n_neg, k)
    assert np.all(b.recall_low <= hits / n_pos) and np.all(hits / n_pos <= b.recall_high)
    assert np.all(b.precision_low <= hits / k) and np.all(hits / k <= b.precision_high)
    t = B.topk_bounds(raw, n_pos, n_neg, k, tight=True)
    assert np.all(t.recall_low <= hits / n_pos) and np.all(hits / n_pos <= t.recall_high)
    # Vectorized equals elementwise.
    for idx in range(0, len(raw), 37):
        assert B.topk_bounds(raw[idx], n_pos, n_neg, k) == tuple(x[idx] for x in b)


def test_floating_error_in_the_count_is_rounded():
    n_pos, n_neg, k = 200, 800, 50
    for i in (0, 1, 7, 50):
        lo, hi = B.opauc_count_range(n_pos, n_neg, k, i)
        for c in (lo, hi):
            exact = B.topk_bounds(c / (n_pos * n_neg), n_pos, n_neg, k)
            for eps in (-3e-16, 3e-16, -1e-12, 1e-12):
                a = c / (n_pos * n_neg) * (1 + eps)
                assert B.topk_bounds(a, n_pos, n_neg, k) == exact
    # A count that should be 0 but came out as a tiny positive or negative number.
    for a in (1e-20, -1e-20):
        assert B.topk_bounds(a, n_pos, n_neg, k) == B.topk_bounds(0.0, n_pos, n_neg, k)
    # At a perfect square, a count 1e-13 too large must not push ceil(sqrt) up by one.
    a = (7 * 7) / (n_pos * n_neg) * (1 + 1e-13)
    assert B.topk_bounds(a, n_pos, n_neg, k).recall_high == 7 / n_pos
    # A genuinely non-integer count (ties counted 1/2) uses the real formulas.
    low, high = B.hit_bounds(49.5 / (n_pos * n_neg), n_pos, n_neg, k)
    assert high == 8 and low == np.floor((250 - np.sqrt(250**2 - 4 * 49.5)) / 2)


@settings(max_examples=200, deadline=None, database=None, derandomize=True)
@given(n_pos=st.integers(1, 400), extra=st.integers(0, 400), k=st.integers(1, 100),
       data=st.data())
def test_integer_path_matches_exact_formulas(n_pos, extra, k, data):
    """The exact-integer floors/ceilings agree with an independent integer search."""
    n_neg = k + extra
    c = data.draw(st.integers(0, n_pos * k))
    low, high = B.hit_bounds(c / (n_pos * n_neg), n_pos, n_neg, k)
    s = n_pos + k
    # ceil(sqrt(c)): smallest j with j*j >= c.
    j = 0
    while j * j < c:
        j += 1
    assert high == j
    # floor of the smaller root of j^2 - s j + c: largest j <= s/2 with j^2 - s j + c >= 0.
    f = 0
    while 2 * (f + 1) <= s and (f + 1) ** 2 - s * (f + 1) + c >= 0:
        f += 1
    assert low == f


def test_bad_input():
    cases = [
        (lambda: B.topk_bounds(-0.01, 5, 6, 3), "opauc_raw"),
        (lambda: B.topk_bounds(0.6, 5, 6, 3), "opauc_raw"),  # > k / n_neg = 0.5
        (lambda: B.topk_bounds(np.nan, 5, 6, 3), "opauc_raw"),
        (lambda: B.topk_bounds(0.1, 0, 6, 3), "n_pos"),
        (lambda: B.topk_bounds(0.1, 5, 2, 3), "n_neg"),
        (lambda: B.topk_bounds(0.1, 5, 6, 0), "k"),
        (lambda: B.topk_bounds(0.1, 5, 6, 2.5), "k"),
        (lambda: B.extremal_rankings(5, 6, 3, 4), "hits"),
        (lambda: B.extremal_rankings(2, 6, 3, 3), "hits"),
        (lambda: B.opauc_count_range(5, 6, 3, -1), "hits"),
    ]
    for call, name in cases:
        with pytest.raises(ValueError, match=rf"\b{name}\b"):
            call()


def test_uniform_auc_recall_correlation_rejects_bad_settings():
    from theory.bounds import uniform_auc_recall_correlation

    assert uniform_auc_recall_correlation(1, 1, 2) == 0.0  # K = N: Recall is always 1
    for args, name in (((0, 5, 1), "n_pos"), ((5, 0, 1), "n_neg"), ((2, 3, 6), "k"),
                       ((2, 3, 0), "k")):
        with pytest.raises(ValueError, match=name):
            uniform_auc_recall_correlation(*args)
