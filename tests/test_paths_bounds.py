"""Issue 11, item 4: Theorem 3's bounds (theory.bounds) for rankings with tied scores.

Tied scores give non-integer OPAUC counts: the ROC is diagonal across a tie group of
positives and negatives (pairs count 1/2, a cut inside a group integrates the diagonal),
and Top-K hits are expected values under uniformly random tie-breaking (theory.metrics'
conventions).  Every tied ranking of small settings is enumerated here as a sequence of
tie groups (p_g positives, q_g negatives), its count C = N+ N- OPAUC(k / N-) and expected
hits h computed in exact rational arithmetic by formulas written in this file, and the
bounds of ``topk_bounds(..., tight=True)`` are checked to contain every attained Recall@K
and Precision@K.  The oracle is checked against theory.metrics on explicit score vectors.
"""
from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import pytest

from theory import bounds as B
from theory import metrics as M

# (N+, N-, K); the last two are outside the paper's N+ > K, N- > K (N- >= K suffices).
SETTINGS = [(3, 4, 2), (4, 5, 2), (3, 5, 3), (4, 4, 3), (2, 4, 2), (2, 1, 1)]


def tied_rankings(n_pos, n_neg):
    """Every ranking with ties: ordered sequences of non-empty tie groups (p, q)."""
    if n_pos == 0 and n_neg == 0:
        yield ()
        return
    for p in range(n_pos + 1):
        for q in range(n_neg + 1):
            if p + q:
                for rest in tied_rankings(n_pos - p, n_neg - q):
                    yield ((p, q),) + rest


def count_and_hits(groups, k):
    """Exact (C, h): C = area under the count ROC (negatives u, positives T(u)) over
    u in [0, k], diagonal within a tie group; h = expected positives among the first k
    positions when ties are broken uniformly at random (a group cut after t of its n
    positions contributes t p / n)."""
    above_pos = above_neg = start = 0
    C, h = Fraction(0), Fraction(0)
    for p, q in groups:
        if q and above_neg < k:
            d = min(above_neg + q, k) - above_neg  # the group's negatives within the cut
            C += above_pos * d + Fraction(p * d * d, 2 * q)
        n = p + q
        if start + n <= k:
            h += p
        elif start < k:
            h += Fraction((k - start) * p, n)
        above_pos, above_neg, start = above_pos + p, above_neg + q, start + n
    return C, h


def _scores(groups):
    labels, scores = [], []
    for level, (p, q) in enumerate(groups):
        labels += [True] * p + [False] * q
        scores += [-float(level)] * (p + q)
    return np.array(labels), np.array(scores)


def test_oracle_agrees_with_theory_metrics():
    """The tie conventions above are theory.metrics': raw OPAUC (Eq. 8 with the diagonal)
    and Recall@K / Precision@K under random tie-breaking, on every 3rd ranking of (3, 4)."""
    for n_pos, n_neg, k in [(3, 4, 2), (2, 4, 3)]:
        for groups in list(tied_rankings(n_pos, n_neg))[::3]:
            C, h = count_and_hits(groups, k)
            y, s = _scores(groups)
            assert M.opauc(y, s, k / n_neg) * n_pos * n_neg == pytest.approx(float(C), abs=1e-12)
            assert M.recall_at_k(y, s, k) * n_pos == pytest.approx(float(h), abs=1e-12)
            assert M.precision_at_k(y, s, k) * k == pytest.approx(float(h), abs=1e-12)


@pytest.mark.parametrize("n_pos,n_neg,k", SETTINGS)
def test_tight_bounds_contain_every_tied_ranking(n_pos, n_neg, k):
    by_count: dict[Fraction, list[Fraction]] = {}
    for groups in tied_rankings(n_pos, n_neg):
        C, h = count_and_hits(groups, k)
        by_count.setdefault(C, []).append(h)
    fractional = [c for c in by_count if c.denominator != 1]
    assert fractional  # the path under test is reached (2 to 43 values per setting)
    S = n_pos + k
    counts = list(by_count)
    as_array = B.topk_bounds(np.array([float(c) / (n_pos * n_neg) for c in counts]), n_pos,
                             n_neg, k, tight=True)
    for j, (C, hits) in enumerate(by_count.items()):
        a = float(C) / (n_pos * n_neg)
        tight = B.topk_bounds(a, n_pos, n_neg, k, tight=True)
        assert [f[j] for f in as_array] == list(tight)  # array path = scalar path
        printed = B.topk_bounds(a, n_pos, n_neg, k)
        assert all(np.isfinite(tight)) and all(np.isfinite(printed))
        # Eqs. 19-20 as printed hold for every tied ranking (1e-12: float rounding of C).
        for h in hits:
            assert printed.recall_low - 1e-12 <= h / n_pos <= printed.recall_high + 1e-12
            assert printed.precision_low - 1e-12 <= h / k <= printed.precision_high + 1e-12
        if C.denominator == 1:
            continue  # integer counts: the tie-free contract (tests/test_bounds.py)
        # Non-integer count: the achievable range [min h, max h] lies inside the tight
        # bounds, which lie inside the printed ones and are the real roots of
        # h^2 - S h + C = 0 and sqrt(C) (capped at min(K, N+)), computed here.
        lo, hi = min(hits), max(hits)
        x = (S - math.sqrt(S * S - 4 * float(C))) / 2
        y = min(math.sqrt(float(C)), k, n_pos)
        assert tight.recall_low * n_pos == pytest.approx(x, abs=1e-12)
        assert tight.recall_high * n_pos == pytest.approx(y, abs=1e-12)
        assert tight.precision_low * k == pytest.approx(x, abs=1e-12)
        assert tight.precision_high * k == pytest.approx(y, abs=1e-12)
        assert tight.recall_low <= lo / n_pos + 1e-12 and hi / n_pos <= tight.recall_high + 1e-12
        assert printed.recall_low <= tight.recall_low <= tight.recall_high <= printed.recall_high

