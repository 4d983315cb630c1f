"""Oracle and property tests of theory.metrics.

Every expected value below is computed in this file, independently of the module:

* brute-force (positive, negative) pair counting (AUC, Eq. 6; raw OPAUC for integer
  n_neg * beta, Eq. 8; the "fractional weight of the next negative" for untied rankings);
* the empirical ROC curve of scikit-learn's ``roc_curve(drop_intermediate=False)``,
  integrated exactly segment by segment (fractional n_neg * beta, ties as diagonal segments,
  TPAUC / LLPAUC clipping), and a dense midpoint grid whose error bound is derived below;
* scikit-learn's ``roc_auc_score`` (plain and ``max_fpr`` = McClish) and ``ndcg_score``;
* for Top-K metrics under ties, the exact expectation over *every* ordering of the items that
  is consistent with descending scores (all permutations inside each tie group), n_items <= 7;
  for untied rankings, a plain argsort implementation;
* for the numba row kernels, plain numpy references (np.unique grouping, cumulative sums,
  math.comb hypergeometric probabilities).
"""
from __future__ import annotations

import itertools
import math
import subprocess
import sys
from pathlib import Path

import numba
import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from sklearn.metrics import ndcg_score, roc_auc_score, roc_curve

from checks import oracles
from theory import metrics as M

REPO_ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True, scope="module")
def _one_numba_thread():
    """Run this module's many tiny calls on one numba thread.

    Every public call launches parallel kernels; on 2 busy cores a 2-thread launch for a
    one-row input costs ~1-10 ms instead of ~0.1 ms, which would dominate the run time.
    Results must not depend on the thread count (DESIGN: fixed chunks); the tests
    test_results_independent_of_thread_count / test_auc_large_batch_threaded_paths use
    every thread.
    """
    before = numba.get_num_threads()
    numba.set_num_threads(1)
    yield
    numba.set_num_threads(before)


class all_threads:
    """Context manager: use every numba thread inside (restores the previous count)."""

    def __enter__(self):
        self.before = numba.get_num_threads()
        numba.set_num_threads(numba.config.NUMBA_NUM_THREADS)

    def __exit__(self, *exc):
        numba.set_num_threads(self.before)
HYP = settings(max_examples=150, deadline=None, database=None,
               suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])


# ======================================================================================
# Independent oracles
# ======================================================================================
def pair_count(pos, neg):
    """#{(i, j): pos_i > neg_j} + 1/2 #{pos_i = neg_j}."""
    with np.errstate(over="ignore"):     # +-1e308 scores: inf differences keep their sign
        d = np.subtract.outer(np.asarray(pos, float), np.asarray(neg, float))
    return float((d > 0).sum() + 0.5 * (d == 0).sum())


def brute_auc(y, s):
    pos, neg = s[y], s[~y]
    return pair_count(pos, neg) / (pos.size * neg.size)


def brute_opauc_integer(y, s, m):
    """Eq. 8: pairs with the top m negatives only, divided by n_pos * n_neg."""
    pos, neg = s[y], s[~y]
    top = np.sort(neg)[::-1][:m]
    return pair_count(pos, top) / (pos.size * neg.size)


def cut_inside_mixed_tie(y, s, m):
    """True when the m-th / (m+1)-th highest negatives tie with each other and a positive.

    Only then does "the top m negatives" cut a diagonal ROC segment, where the ROC area and
    the half-counted pairs of Eq. 8 differ (see test_integer_cut_inside_tie_group...)."""
    neg = np.sort(s[~y])[::-1]
    if m >= neg.size:
        return False
    v = neg[m - 1]
    return bool(neg[m] == v and np.any(s[y] == v))


def sk_roc(y, s):
    fpr, tpr, _ = roc_curve(y.astype(int), s, drop_intermediate=False)
    return fpr, tpr


# Exact integral over x in [0, beta] of clip(ROC(x), lo, hi) - lo (lo=0, hi=1: OPAUC;
# lo=alpha: TPAUC; hi=alpha: LLPAUC): the shared brute-force reference of checks/ and tests/.
clipped_roc_area = oracles.clipped_area


def grid_roc_area(fpr, tpr, beta, lo=0.0, hi=1.0, cells=200_000):
    """Midpoint rule on a uniform grid of [0, beta] for clip(ROC(x), lo, hi) - lo.

    Error bound: the integrand is piecewise linear in x, with values in [0, 1]; the midpoint
    rule is exact on a cell where it is linear, and off by at most h = beta / cells on a
    cell holding a breakpoint.  Breakpoints are ROC vertices (<= n_items + 1) and crossings
    of lo / hi (<= 2 per segment), so |error| <= 3 (n_items + 1) h (see grid_tolerance).
    np.interp on the non-decreasing fpr picks, at any x strictly between vertices, the one
    segment that spans x.
    """
    h = beta / cells
    x = (np.arange(cells) + 0.5) * h
    yv = np.interp(x, fpr, tpr)
    return float((np.clip(yv, lo, hi) - lo).sum() * h)


def grid_tolerance(n_items, beta, cells=200_000):
    return 3 * (n_items + 1) * beta / cells + 1e-12


def mcclish(raw, beta):
    """McClish (1989) standardisation, written from the formula in PAPER.md (Eqs. 10-11)."""
    lo, hi = beta * beta / 2.0, beta
    return 0.5 * (1.0 + (raw - lo) / (hi - lo))


def consistent_orderings(s):
    """All orderings of the item indices that are consistent with descending scores."""
    order = np.argsort(-s, kind="stable")
    vals = s[order]
    groups, start = [], 0
    for i in range(1, s.size + 1):
        if i == s.size or vals[i] != vals[start]:
            groups.append(order[start:i])
            start = i
    perms = [list(itertools.permutations(g)) for g in groups]
    return np.array([np.concatenate(c) for c in itertools.product(*perms)])


def plain_topk(labels_in_order, k, n_pos):
    """Untied Top-K metrics of label rows given in rank order (one row per ordering)."""
    L = np.atleast_2d(labels_in_order).astype(float)
    top = L[:, :k]
    hits = top.sum(axis=1)
    dcg = (top / np.log2(np.arange(2, top.shape[1] + 2))).sum(axis=1)
    ideal = (1.0 / np.log2(np.arange(2, min(n_pos, k) + 2))).sum() if n_pos else np.nan
    with np.errstate(divide="ignore", invalid="ignore"):
        return dict(precision=hits / k,
                    recall=hits / n_pos if n_pos else np.full_like(hits, np.nan),
                    recall_min=hits / min(n_pos, k) if n_pos else np.full_like(hits, np.nan),
                    ndcg=dcg / ideal,
                    hit=(hits > 0).astype(float))


def expected_topk(y, s, k, orders=None):
    """Exact expectation over uniformly random tie-breaking, by enumerating orderings."""
    orders = consistent_orderings(s) if orders is None else orders
    vals = plain_topk(y[orders], k, int(y.sum()))
    return {key: float(v.mean()) for key, v in vals.items()}


def module_topk(y, s, k):
    out = dict(precision=M.precision_at_k(y, s, k),
               recall_min=None, recall=None, ndcg=None,
               hit=M.hit_rate_at_k(y, s, k))
    if y.any():
        out["recall"] = M.recall_at_k(y, s, k)
        out["recall_min"] = M.recall_at_k(y, s, k, denominator="min_k_positives")
        out["ndcg"] = M.ndcg_at_k(y, s, k)
    return out


def random_ranking(rng, n, tied, both=True):
    y = rng.random(n) < rng.uniform(0.2, 0.8)
    if both:
        if not y.any():
            y[rng.integers(n)] = True
        if y.all():
            y[rng.integers(n)] = False
    s = rng.integers(0, rng.integers(2, 6), n).astype(float) if tied else rng.normal(size=n)
    return y, s


# ======================================================================================
# Hypothesis strategies
# ======================================================================================
@st.composite
def rankings(draw, min_items=2, max_items=12, both=True, kind=None):
    n = draw(st.integers(min_items, max_items))
    y = np.array(draw(st.lists(st.booleans(), min_size=n, max_size=n)), dtype=bool)
    if both and (y.all() or not y.any()):
        y[draw(st.integers(0, n - 1))] = not y[0]
    kind = kind or draw(st.sampled_from(["int", "float"]))
    if kind == "int":  # few distinct values: many ties
        s = draw(st.lists(st.integers(-4, 4), min_size=n, max_size=n))
    else:
        s = draw(st.lists(st.floats(-100, 100, allow_nan=False), min_size=n, max_size=n))
    return y, np.array(s, dtype=float)


@st.composite
def batches(draw, max_lists=5, max_items=10):
    n_lists = draw(st.integers(1, max_lists))
    n = draw(st.integers(2, max_items))
    rows = [draw(rankings(min_items=n, max_items=n)) for _ in range(n_lists)]
    return np.array([r[0] for r in rows]), np.array([r[1] for r in rows])


# beta >= 1e-9: subnormal betas lose all relative precision in raw / beta (not a metric issue).
betas_st = st.one_of(st.floats(1e-9, 1.0),
                     st.sampled_from([1.0, 0.5, 0.25, 0.1, 1 / 3, 0.7]))
alphas_st = st.one_of(st.floats(0.0, 1.0), st.sampled_from([0.0, 1.0, 0.5, 0.3]))


@st.composite
def separated(draw, perfect=True, max_items=12):
    """Rankings with every positive above (perfect) or below (reversed) every negative.

    Ties inside one label are allowed (scores drawn from a small range)."""
    n_pos = draw(st.integers(1, max_items - 1))
    n_neg = draw(st.integers(1, max_items - n_pos))
    high = draw(st.lists(st.integers(5, 8), min_size=n_pos if perfect else n_neg,
                         max_size=n_pos if perfect else n_neg))
    low = draw(st.lists(st.integers(0, 3), min_size=n_neg if perfect else n_pos,
                        max_size=n_neg if perfect else n_pos))
    y = np.array([True] * n_pos + [False] * n_neg)
    s = np.array((high + low) if perfect else (low + high), dtype=float)
    perm = np.array(draw(st.permutations(range(y.size))))
    return y[perm], s[perm]


# ======================================================================================
# AUC and OPAUC oracles
# ======================================================================================
@pytest.mark.parametrize("tied", [False, True])
def test_auc_equals_pair_count_and_sklearn(tied):
    rng = np.random.default_rng(11 + tied)
    for n in (2, 3, 7, 31, 64):
        Y, S = zip(*(random_ranking(rng, n, tied) for _ in range(40)))
        Y, S = np.array(Y), np.array(S)
        batch = M.auc(Y, S)
        assert isinstance(batch, np.ndarray) and batch.shape == (40,)
        for y, s, got in zip(Y, S, batch):
            assert got == pytest.approx(brute_auc(y, s), abs=1e-12)
            assert got == pytest.approx(roc_auc_score(y, s), abs=1e-12)
        single = M.auc(Y[0], S[0])
        assert isinstance(single, float) and single == pytest.approx(batch[0], abs=1e-15)


def test_auc_hand_example():
    # pairs: 3 beats all three negatives (3); the positive 2 ties one negative (1/2) and
    # beats two (2): (3 + 2.5) / 6.
    y = np.array([1, 0, 1, 0, 0], bool)
    s = np.array([3.0, 2.0, 2.0, 1.0, 0.0])
    assert M.auc(y, s) == pytest.approx(5.5 / 6, abs=1e-15)


def test_auc_large_batch_threaded_paths():
    # >= 256 rows takes the two-thread sort path and spans many 64-row chunks.
    rng = np.random.default_rng(5)
    Y = rng.random((301, 23)) < 0.4
    Y[:, 0], Y[:, 1] = True, False
    S = rng.integers(0, 6, Y.shape).astype(float)
    with all_threads():
        got = M.auc(Y, S)
    want = np.array([brute_auc(y, s) for y, s in zip(Y, S)])
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-12)


def test_results_independent_of_thread_count():
    rng = np.random.default_rng(6)
    Y = rng.random((700, 40)) < 0.3
    Y[:, 0], Y[:, 1] = True, False
    S = np.round(rng.normal(size=Y.shape), 1)

    def everything():
        rm = M.ranking_metrics(Y, S, betas=[0.05, 0.5, 1.0], ks=[1, 5, 50], levels=(0.0, 0.3))
        return np.concatenate([rm.area.ravel(), rm.hits.ravel(), rm.dcg.ravel(),
                               rm.hit_prob.ravel()])

    one = everything()
    with all_threads():
        many = everything()
    np.testing.assert_array_equal(one, many)


@pytest.mark.parametrize("tied", [False, True])
def test_opauc_integer_cut_equals_eq8_pair_count(tied):
    rng = np.random.default_rng(21 + tied)
    compared = 0
    for n in (2, 5, 9, 17, 40):
        for _ in range(30):
            y, s = random_ranking(rng, n, tied)
            n_neg = int((~y).sum())
            ms = np.arange(1, n_neg + 1)
            curve = M.opauc_curve(y, s, ms / n_neg)
            for m, got in zip(ms, curve):
                assert 0.0 <= got <= m / n_neg + 1e-12
                if not cut_inside_mixed_tie(y, s, m):
                    assert got == pytest.approx(brute_opauc_integer(y, s, m), abs=1e-12)
                    compared += 1
                assert M.opauc(y, s, m / n_neg) == pytest.approx(got, abs=1e-15)
    assert compared > 300


def test_opauc_fractional_cut_untied_gives_next_negative_fractional_weight():
    # Untied: OPAUC(beta) = [pairs with the top floor(b) negatives + frac(b) * positives
    # above the next negative] / (n_pos n_neg), b = n_neg * beta.
    rng = np.random.default_rng(3)
    for _ in range(200):
        n = int(rng.integers(2, 30))
        y, s = random_ranking(rng, n, tied=False)
        pos, neg = s[y], np.sort(s[~y])[::-1]
        beta = float(rng.uniform(0.01, 1.0))
        b = neg.size * beta
        m = int(np.floor(b))
        count = pair_count(pos, neg[:m])
        if m < neg.size:
            count += (b - m) * np.count_nonzero(pos > neg[m])
        want = count / (pos.size * neg.size)
        assert M.opauc(y, s, beta) == pytest.approx(want, abs=1e-12)


@pytest.mark.parametrize("tied", [False, True])
def test_opauc_fractional_equals_exact_roc_area_and_sklearn_mcclish(tied):
    rng = np.random.default_rng(31 + tied)
    betas = np.array([0.013, 0.1, 0.25, 1 / 3, 0.37, 0.5, 0.77, 0.999, 1.0])
    for n in (2, 3, 8, 13, 50):
        Y, S = zip(*(random_ranking(rng, n, tied) for _ in range(25)))
        Y, S = np.array(Y), np.array(S)
        raw = M.opauc_curve(Y, S, betas)
        norm_beta = M.opauc_curve(Y, S, betas, normalize="beta")
        mc = M.opauc_curve(Y, S, betas, normalize="mcclish")
        assert raw.shape == (25, betas.size)
        for r, (y, s) in enumerate(zip(Y, S)):
            fpr, tpr = sk_roc(y, s)
            for b, beta in enumerate(betas):
                area = clipped_roc_area(fpr, tpr, beta)
                assert raw[r, b] == pytest.approx(area, abs=1e-12)
                assert norm_beta[r, b] == pytest.approx(area / beta, abs=1e-12)
                assert mc[r, b] == pytest.approx(roc_auc_score(y, s, max_fpr=beta), abs=1e-12)
                assert mc[r, b] == pytest.approx(mcclish(area, beta), abs=1e-12)


def test_opauc_dense_grid_oracle():
    rng = np.random.default_rng(8)
    for _ in range(40):
        n = int(rng.integers(2, 25))
        y, s = random_ranking(rng, n, tied=bool(rng.integers(2)))
        fpr, tpr = sk_roc(y, s)
        beta = float(rng.uniform(0.05, 1.0))
        assert M.opauc(y, s, beta) == pytest.approx(
            grid_roc_area(fpr, tpr, beta), abs=grid_tolerance(n, beta))


def test_integer_cut_inside_tie_group_uses_roc_diagonal_not_half_pairs():
    """Documents the convention where a tied (positive, negative) group straddles the cut.

    y = [+, -, -], all scores tied, beta = 1/2 (n_neg * beta = 1, an integer).  The ROC is
    the diagonal from (0, 0) to (1, 1): area over [0, 1/2] = 1/8 (scikit-learn's max_fpr
    convention, which the module follows).  Counting the tied pair of Eq. 8 as 1/2 would give
    (1/2) / 2 = 1/4, and the expectation over random tie-breaking 1/6: three different
    readings; the module is exact for the ROC-area one (DESIGN: "area of the empirical ROC").
    """
    y = np.array([True, False, False])
    s = np.zeros(3)
    assert cut_inside_mixed_tie(y, s, 1)
    fpr, tpr = sk_roc(y, s)
    assert M.opauc(y, s, 0.5) == pytest.approx(clipped_roc_area(fpr, tpr, 0.5), abs=1e-15)
    assert M.opauc(y, s, 0.5) == pytest.approx(1 / 8, abs=1e-15)
    assert M.opauc(y, s, 0.5, normalize="mcclish") == pytest.approx(
        roc_auc_score(y, s, max_fpr=0.5), abs=1e-15)
    assert brute_opauc_integer(y, s, 1) == pytest.approx(1 / 4)


# ======================================================================================
# TPAUC / LLPAUC oracles
# ======================================================================================
@pytest.mark.parametrize("tied", [False, True])
def test_tpauc_llpauc_exact_segment_integration(tied):
    rng = np.random.default_rng(41 + tied)
    for _ in range(150):
        n = int(rng.integers(2, 30))
        y, s = random_ranking(rng, n, tied)
        fpr, tpr = sk_roc(y, s)
        alpha = float(rng.choice([0.0, 1.0, rng.uniform(), rng.uniform(), 1 / 3]))
        beta = float(rng.choice([1.0, rng.uniform(0.01, 1), rng.uniform(0.01, 1), 0.5]))
        tp = M.tpauc(y, s, alpha, beta)
        assert tp == pytest.approx(clipped_roc_area(fpr, tpr, beta, lo=alpha), abs=1e-12)
        if alpha > 0:
            ll = M.llpauc(y, s, alpha, beta)
            assert ll == pytest.approx(clipped_roc_area(fpr, tpr, beta, hi=alpha), abs=1e-12)


def test_tpauc_llpauc_dense_grid_oracle():
    rng = np.random.default_rng(43)
    Y, S = zip(*(random_ranking(rng, 15, tied=i % 2 == 0) for i in range(30)))
    Y, S = np.array(Y), np.array(S)
    for alpha, beta in [(0.3, 0.4), (0.5, 1.0), (0.9, 0.15), (0.05, 0.63)]:
        tp = M.tpauc(Y, S, alpha, beta)
        ll = M.llpauc(Y, S, alpha, beta)
        for r, (y, s) in enumerate(zip(Y, S)):
            fpr, tpr = sk_roc(y, s)
            tol = grid_tolerance(15, beta)
            assert tp[r] == pytest.approx(grid_roc_area(fpr, tpr, beta, lo=alpha), abs=tol)
            assert ll[r] == pytest.approx(grid_roc_area(fpr, tpr, beta, hi=alpha), abs=tol)


# ======================================================================================
# Top-K oracles
# ======================================================================================
def test_topk_ties_equal_expectation_over_all_consistent_orderings():
    rng = np.random.default_rng(51)
    tied_cases = 0
    for _ in range(150):
        n = int(rng.integers(1, 8))
        y, s = random_ranking(rng, n, tied=True, both=False)
        tied_cases += np.unique(s).size < n
        orders = consistent_orderings(s)
        assert len(orders) == np.prod([math.factorial(c) for c in np.unique(s, return_counts=True)[1]])
        for k in range(1, n + 3):
            want = expected_topk(y, s, k, orders)
            got = module_topk(y, s, k)
            for key, value in got.items():
                if value is None:
                    continue
                assert value == pytest.approx(want[key], abs=1e-12), (key, y, s, k)
    assert tied_cases > 100


def test_topk_untied_equal_plain_argsort():
    rng = np.random.default_rng(52)
    for _ in range(60):
        n = int(rng.integers(2, 60))
        y, s = random_ranking(rng, n, tied=False)
        order = np.argsort(-s)
        for k in sorted({1, 2, 5, n // 2 + 1, n, n + 4}):
            want = plain_topk(y[order], k, int(y.sum()))
            got = module_topk(y, s, k)
            for key, value in got.items():
                assert value == pytest.approx(float(want[key][0]), abs=1e-12), (key, k)


def test_ndcg_equals_sklearn_ndcg_score_with_ties():
    rng = np.random.default_rng(53)
    for tied in (True, False):
        for n in (2, 3, 6, 11, 30):
            Y, S = zip(*(random_ranking(rng, n, tied) for _ in range(12)))
            Y, S = np.array(Y), np.array(S)
            for k in sorted({1, 2, 3, n, n + 2}):
                got = M.ndcg_at_k(Y, S, k)
                for r in range(Y.shape[0]):
                    want = ndcg_score(Y[r:r + 1].astype(float), S[r:r + 1], k=k)
                    assert got[r] == pytest.approx(want, abs=1e-12), (k, Y[r], S[r])


def test_k_beyond_ranking_takes_whole_ranking_and_precision_divides_by_k():
    y = np.array([False, True, True, False, True])
    s = np.array([5.0, 4.0, 3.0, 2.0, 1.0])
    n_pos, n = 3, 5
    dcg = 1 / np.log2(3) + 1 / np.log2(4) + 1 / np.log2(6)      # positives at 2, 3, 5
    ideal = 1 + 1 / np.log2(3) + 1 / np.log2(4)
    for k in (n, n + 1, 12):
        assert M.precision_at_k(y, s, k) == pytest.approx(n_pos / k)
        assert M.recall_at_k(y, s, k) == pytest.approx(1.0)
        assert M.recall_at_k(y, s, k, denominator="min_k_positives") == pytest.approx(1.0)
        assert M.ndcg_at_k(y, s, k) == pytest.approx(dcg / ideal)
        assert M.hit_rate_at_k(y, s, k) == 1.0
    none = np.zeros(5, bool)
    assert M.precision_at_k(none, s, 9) == 0.0 and M.hit_rate_at_k(none, s, 9) == 0.0


# ======================================================================================
# Properties (hypothesis)
# ======================================================================================
@HYP
@given(rankings())
def test_prop_opauc_one_is_auc_and_label_symmetries(data):
    y, s = data
    a = M.auc(y, s)
    assert M.opauc(y, s, 1.0) == pytest.approx(a, abs=1e-12)
    assert M.opauc(y, s, 1.0, normalize="mcclish") == pytest.approx(a, abs=1e-12)
    assert M.opauc(y, s, 1.0, normalize="beta") == pytest.approx(a, abs=1e-12)
    assert a == pytest.approx(brute_auc(y, s), abs=1e-12)
    assert M.auc(~y, s) == pytest.approx(1 - a, abs=1e-12)      # swap the labels
    assert M.auc(y, -s) == pytest.approx(1 - a, abs=1e-12)      # reverse the scores


@HYP
@given(rankings(), st.lists(betas_st, min_size=1, max_size=8))
def test_prop_opauc_monotone_bounded_and_curve_matches_opauc(data, betas):
    y, s = data
    curve = M.opauc_curve(y, s, betas)                           # any order, duplicates ok
    assert curve.shape == (len(betas),)
    for beta, value in zip(betas, curve):
        assert M.opauc(y, s, beta) == pytest.approx(value, abs=1e-15)
        assert -1e-15 <= value <= beta + 1e-12
    order = np.argsort(betas)
    assert np.all(np.diff(curve[order]) >= -1e-12)
    for norm in ("beta", "mcclish"):
        c = M.opauc_curve(y, s, betas, normalize=norm)
        for beta, value, raw in zip(betas, c, curve):
            assert M.opauc(y, s, beta, normalize=norm) == pytest.approx(value, abs=1e-12)
            want = raw / beta if norm == "beta" else mcclish(raw, beta)
            assert value == pytest.approx(want, rel=1e-9, abs=1e-9)


def _strictly_same_order(s, t):
    return np.array_equal(np.sign(np.subtract.outer(s, s)), np.sign(np.subtract.outer(t, t)))


TRANSFORMS = {
    "exp": lambda s: np.exp(s / 25.0),
    "affine": lambda s: 3.0 * s - 7.0,
    "cube": lambda s: s ** 3,
    "arctan": np.arctan,
}


def _all_metrics(y, s):
    out = [M.precision_at_k(y, s, k) for k in (1, 2, 5)]
    out += [M.hit_rate_at_k(y, s, k) for k in (1, 3)]
    if y.any():
        out += [M.recall_at_k(y, s, k) for k in (1, 4)] + [M.ndcg_at_k(y, s, k) for k in (1, 3, 20)]
    if y.any() and not y.all():
        out += [M.auc(y, s)] + list(M.opauc_curve(y, s, [0.1, 0.3, 0.5, 1.0]))
        out += [M.tpauc(y, s, 0.4, 0.6), M.llpauc(y, s, 0.4, 0.6)]
    return np.array(out)


@HYP
@given(rankings(both=False), st.sampled_from(sorted(TRANSFORMS)))
def test_prop_invariant_under_strictly_increasing_transform(data, name):
    y, s = data
    t = TRANSFORMS[name](s)
    # A transform can merge distinct floats (rounding) into a tie: only the rank order and
    # the tie pattern matter, so require that they are preserved exactly.
    assume(np.isfinite(t).all() and _strictly_same_order(s, t))
    np.testing.assert_allclose(_all_metrics(y, t), _all_metrics(y, s), rtol=0, atol=1e-12)


@HYP
@given(rankings(), alphas_st, betas_st)
def test_prop_tpauc_llpauc_decompose_opauc(data, alpha, beta):
    y, s = data
    op = M.opauc(y, s, beta)
    tp = M.tpauc(y, s, alpha, beta)
    assert -1e-15 <= tp <= beta * (1 - alpha) + 1e-12
    assert M.tpauc(y, s, 0.0, beta) == pytest.approx(op, abs=1e-12)
    assert M.llpauc(y, s, 1.0, beta) == pytest.approx(op, abs=1e-12)
    if alpha > 0:
        ll = M.llpauc(y, s, alpha, beta)
        assert -1e-15 <= ll <= alpha * beta + 1e-12
        assert ll + tp == pytest.approx(op, abs=1e-12)


@HYP
@given(batches(), st.lists(betas_st, min_size=1, max_size=3), st.integers(1, 12),
       alphas_st.filter(lambda a: a > 0))
def test_prop_batch_equals_row_by_row(data, betas, k, alpha):
    Y, S = data
    beta = betas[0]
    batch = {
        "auc": M.auc(Y, S), "opauc": M.opauc(Y, S, beta),
        "mcclish": M.opauc(Y, S, beta, normalize="mcclish"),
        "curve": M.opauc_curve(Y, S, betas), "tpauc": M.tpauc(Y, S, alpha, beta),
        "llpauc": M.llpauc(Y, S, alpha, beta), "precision": M.precision_at_k(Y, S, k),
        "recall": M.recall_at_k(Y, S, k), "ndcg": M.ndcg_at_k(Y, S, k),
        "hit": M.hit_rate_at_k(Y, S, k),
        "recall_min": M.recall_at_k(Y, S, k, denominator="min_k_positives"),
    }
    for r, (y, s) in enumerate(zip(Y, S)):
        row = {
            "auc": M.auc(y, s), "opauc": M.opauc(y, s, beta),
            "mcclish": M.opauc(y, s, beta, normalize="mcclish"),
            "curve": M.opauc_curve(y, s, betas), "tpauc": M.tpauc(y, s, alpha, beta),
            "llpauc": M.llpauc(y, s, alpha, beta), "precision": M.precision_at_k(y, s, k),
            "recall": M.recall_at_k(y, s, k), "ndcg": M.ndcg_at_k(y, s, k),
            "hit": M.hit_rate_at_k(y, s, k),
            "recall_min": M.recall_at_k(y, s, k, denominator="min_k_positives"),
        }
        for key, value in row.items():
            if key != "curve":
                assert isinstance(value, float), key
            np.testing.assert_allclose(batch[key][r], value, rtol=0, atol=1e-12, err_msg=key)


@HYP
@given(separated(perfect=True), betas_st, alphas_st.filter(lambda a: a > 0), st.integers(1, 15))
def test_prop_perfect_ranking(data, beta, alpha, k):
    y, s = data
    n_pos = int(y.sum())
    assert M.auc(y, s) == pytest.approx(1.0, abs=1e-12)
    assert M.opauc(y, s, beta) == pytest.approx(beta, rel=1e-12, abs=1e-15)
    assert M.opauc(y, s, beta, normalize="beta") == pytest.approx(1.0, abs=1e-12)
    assert M.opauc(y, s, beta, normalize="mcclish") == pytest.approx(1.0, abs=1e-9)
    # absolute rounding ~ eps * beta (level alpha * n_pos is rounded): abs 1e-13
    assert M.tpauc(y, s, alpha, beta) == pytest.approx(beta * (1 - alpha), rel=1e-9, abs=1e-13)
    assert M.llpauc(y, s, alpha, beta) == pytest.approx(alpha * beta, rel=1e-9, abs=1e-13)
    assert M.precision_at_k(y, s, k) == pytest.approx(min(n_pos, k) / k, abs=1e-12)
    assert M.recall_at_k(y, s, k) == pytest.approx(min(n_pos, k) / n_pos, abs=1e-12)
    assert M.recall_at_k(y, s, k, denominator="min_k_positives") == pytest.approx(1.0, abs=1e-12)
    assert M.ndcg_at_k(y, s, k) == pytest.approx(1.0, abs=1e-12)
    assert M.hit_rate_at_k(y, s, k) == 1.0


@HYP
@given(separated(perfect=False), betas_st, alphas_st.filter(lambda a: a > 0), st.integers(1, 15))
def test_prop_reversed_ranking(data, beta, alpha, k):
    # Every negative first: the ROC runs along TPR = 0 up to FPR = 1, then jumps to 1, so
    # every area over FPR in [0, beta] is 0 (beta <= 1); the top k holds max(0, k' - n_neg)
    # positives, k' = min(k, n), at positions n_neg + 1 .. k'.
    y, s = data
    n_pos, n = int(y.sum()), y.size
    n_neg = n - n_pos
    assert M.auc(y, s) == pytest.approx(0.0, abs=1e-12)
    assert M.opauc(y, s, beta) == pytest.approx(0.0, abs=1e-12)
    assert M.opauc(y, s, beta, normalize="mcclish") == pytest.approx(mcclish(0.0, beta), abs=1e-9)
    assert M.tpauc(y, s, alpha, beta) == pytest.approx(0.0, abs=1e-12)
    assert M.llpauc(y, s, alpha, beta) == pytest.approx(0.0, abs=1e-12)
    kk = min(k, n)
    hits = max(0, kk - n_neg)
    dcg = sum(1 / np.log2(p + 1) for p in range(n_neg + 1, kk + 1))
    ideal = sum(1 / np.log2(p + 1) for p in range(1, min(n_pos, k) + 1))
    assert M.precision_at_k(y, s, k) == pytest.approx(hits / k, abs=1e-12)
    assert M.recall_at_k(y, s, k) == pytest.approx(hits / n_pos, abs=1e-12)
    assert M.recall_at_k(y, s, k, denominator="min_k_positives") == pytest.approx(
        hits / min(n_pos, k), abs=1e-12)
    assert M.ndcg_at_k(y, s, k) == pytest.approx(dcg / ideal, abs=1e-12)
    assert M.hit_rate_at_k(y, s, k) == (1.0 if k > n_neg else 0.0)


@HYP
@given(st.floats(0.0, 1.0), betas_st, st.sampled_from(M.OPAUC_NORMALIZATIONS))
def test_prop_normalize_and_raw_opauc_invert(fraction, beta, norm):
    raw = fraction * beta
    value = M.normalize_opauc(raw, beta, norm)
    want = {"none": raw, "beta": raw / beta, "mcclish": mcclish(raw, beta)}[norm]
    assert value == pytest.approx(want, rel=1e-12, abs=1e-12)
    assert M.raw_opauc(value, beta, norm) == pytest.approx(raw, rel=1e-9, abs=1e-12)
    assert M.normalize_opauc(raw, 1.0, "mcclish") == pytest.approx(raw, abs=1e-12)


def test_normalize_opauc_arrays_broadcast():
    raw = np.array([[0.0, 0.05], [0.1, 0.2]])
    beta = np.array([0.2, 0.5])
    got = M.normalize_opauc(raw, beta[None, :], "mcclish")
    np.testing.assert_allclose(got, mcclish(raw, beta[None, :]), rtol=1e-14)
    np.testing.assert_allclose(M.raw_opauc(got, beta[None, :], "mcclish"), raw, atol=1e-15)
    assert isinstance(M.normalize_opauc(0.1, 0.5, "beta"), float)


@HYP
@given(batches(), st.lists(betas_st, min_size=1, max_size=4),
       st.lists(st.integers(1, 14), min_size=1, max_size=4), alphas_st)
def test_prop_ranking_metrics_consistent_with_public_functions(data, betas, ks, alpha):
    Y, S = data
    rm = M.ranking_metrics(Y, S, betas=betas, ks=ks, levels=(0.0, alpha))
    n_lists = Y.shape[0]
    np.testing.assert_array_equal(rm.n_pos, Y.sum(axis=1))
    np.testing.assert_array_equal(rm.n_neg, (~Y).sum(axis=1))
    np.testing.assert_array_equal(rm.betas, betas)
    np.testing.assert_array_equal(rm.ks, ks)
    assert rm.area.shape == (n_lists, 2, len(betas))
    assert rm.hits.shape == rm.dcg.shape == rm.hit_prob.shape == (n_lists, len(ks))
    pairs = (rm.n_pos * rm.n_neg)[:, None]
    np.testing.assert_allclose(rm.area[:, 0, :] / pairs, M.opauc_curve(Y, S, betas), atol=1e-12)
    for b, beta in enumerate(betas):
        np.testing.assert_allclose(rm.area[:, 1, b] / pairs[:, 0], M.tpauc(Y, S, alpha, beta),
                                   atol=1e-12)
    for c, k in enumerate(ks):
        np.testing.assert_allclose(rm.hits[:, c] / k, M.precision_at_k(Y, S, k), atol=1e-12)
        np.testing.assert_allclose(rm.hits[:, c] / rm.n_pos, M.recall_at_k(Y, S, k), atol=1e-12)
        ideal = np.array([sum(1 / np.log2(p + 1) for p in range(1, min(npos, k) + 1))
                          for npos in rm.n_pos])
        np.testing.assert_allclose(rm.dcg[:, c] / ideal, M.ndcg_at_k(Y, S, k), atol=1e-12)
        np.testing.assert_allclose(rm.hit_prob[:, c], M.hit_rate_at_k(Y, S, k), atol=1e-12)


def test_labels_as_bool_int_float_agree():
    rng = np.random.default_rng(9)
    Y, S = zip(*(random_ranking(rng, 9, tied=True) for _ in range(6)))
    Y, S = np.array(Y), np.array(S)
    for labels in (Y.astype(int), Y.astype(float), Y.astype(np.uint8), Y.tolist()):
        np.testing.assert_array_equal(M.auc(labels, S), M.auc(Y, S))
        np.testing.assert_array_equal(M.ndcg_at_k(labels, S, 3), M.ndcg_at_k(Y, S, 3))
    np.testing.assert_array_equal(M.auc(Y, S.astype(int)), M.auc(Y, S))


# ======================================================================================
# Undefined rows
# ======================================================================================
def _undefined_batch():
    Y = np.array([[1, 0, 1, 0, 0],
                  [0, 0, 0, 0, 0],     # no positive
                  [1, 1, 1, 1, 1],     # no negative
                  [0, 1, 0, 0, 1]], dtype=bool)
    S = np.array([[3.0, 2, 2, 1, 0], [1, 2, 3, 4, 5], [5, 1, 1, 0, 2], [0, 0, 1, 2, 2]])
    return Y, S


PAIRWISE = {
    "auc": lambda y, s, **kw: M.auc(y, s, **kw),
    "opauc": lambda y, s, **kw: M.opauc(y, s, 0.4, **kw),
    "opauc_mcclish": lambda y, s, **kw: M.opauc(y, s, 0.4, normalize="mcclish", **kw),
    "opauc_curve": lambda y, s, **kw: M.opauc_curve(y, s, [0.3, 1.0], **kw),
    "tpauc": lambda y, s, **kw: M.tpauc(y, s, 0.2, 0.6, **kw),
    "llpauc": lambda y, s, **kw: M.llpauc(y, s, 0.2, 0.6, **kw),
}
NEED_POS = {
    "recall": lambda y, s, **kw: M.recall_at_k(y, s, 2, **kw),
    "recall_min": lambda y, s, **kw: M.recall_at_k(y, s, 2, denominator="min_k_positives", **kw),
    "ndcg": lambda y, s, **kw: M.ndcg_at_k(y, s, 2, **kw),
}


@pytest.mark.parametrize("name", sorted(PAIRWISE))
def test_pairwise_undefined_rows(name):
    fn = PAIRWISE[name]
    Y, S = _undefined_batch()
    with pytest.raises(ValueError, match=r"\(row\) 1 has no positive"):
        fn(Y, S)
    with pytest.raises(ValueError, match=r"\(row\) 2 has no negative"):
        fn(Y[[0, 3, 2]], S[[0, 3, 2]])                 # the third row lacks negatives
    with pytest.raises(ValueError, match=r"\(row\) 0 has no negative"):
        fn(Y[2], S[2])                                 # one 1-D ranking
    with pytest.raises(ValueError, match=r"on_undefined"):
        fn(Y[[0, 3]], S[[0, 3]], on_undefined="zero")
    got = np.asarray(fn(Y, S, on_undefined="nan"))
    want = np.asarray(fn(Y[[0, 3]], S[[0, 3]]))
    assert np.isnan(got[[1, 2]]).all()
    np.testing.assert_allclose(got[[0, 3]], want, rtol=0, atol=1e-15)
    assert not np.isnan(want).any()
    assert math.isnan(np.asarray(fn(Y[1], S[1], on_undefined="nan")).flat[0])


@pytest.mark.parametrize("name", sorted(NEED_POS))
def test_topk_undefined_without_positives(name):
    fn = NEED_POS[name]
    Y, S = _undefined_batch()
    with pytest.raises(ValueError, match=r"\(row\) 1 has no positive"):
        fn(Y, S)
    with pytest.raises(ValueError, match=r"on_undefined"):
        fn(Y[[0, 3]], S[[0, 3]], on_undefined="zero")
    got = fn(Y, S, on_undefined="nan")
    assert np.isnan(got[1]) and not np.isnan(got[[0, 2, 3]]).any()
    np.testing.assert_allclose(got[[0, 2, 3]], fn(Y[[0, 2, 3]], S[[0, 2, 3]]), atol=1e-15)
    for r in (0, 2, 3):   # a row without negatives is fine for Top-K metrics
        want = expected_topk(Y[r], S[r], 2)[name]
        assert got[r] == pytest.approx(want, abs=1e-12)
    assert math.isnan(fn(Y[1], S[1], on_undefined="nan"))


def test_precision_and_hit_rate_defined_without_positives():
    Y, S = _undefined_batch()
    for k in (1, 2, 7):
        p = M.precision_at_k(Y, S, k)
        h = M.hit_rate_at_k(Y, S, k)
        assert p[1] == 0.0 and h[1] == 0.0
        for r in (0, 2, 3):
            want = expected_topk(Y[r], S[r], k)
            assert p[r] == pytest.approx(want["precision"], abs=1e-12)
            assert h[r] == pytest.approx(want["hit"], abs=1e-12)


# ======================================================================================
# Invalid arguments
# ======================================================================================
Y0 = np.array([True, False, True, False])
S0 = np.array([0.3, 0.1, 0.2, 0.4])

ALL_FUNCS = {
    "auc": lambda y, s: M.auc(y, s),
    "opauc": lambda y, s: M.opauc(y, s, 0.5),
    "opauc_curve": lambda y, s: M.opauc_curve(y, s, [0.5]),
    "tpauc": lambda y, s: M.tpauc(y, s, 0.5, 0.5),
    "llpauc": lambda y, s: M.llpauc(y, s, 0.5, 0.5),
    "precision": lambda y, s: M.precision_at_k(y, s, 2),
    "recall": lambda y, s: M.recall_at_k(y, s, 2),
    "ndcg": lambda y, s: M.ndcg_at_k(y, s, 2),
    "hit": lambda y, s: M.hit_rate_at_k(y, s, 2),
    "ranking_metrics": lambda y, s: M.ranking_metrics(y, s, betas=[0.5], ks=[2]),
}

BAD_RANKINGS = [
    ("nan score", Y0, np.array([0.3, np.nan, 0.2, 0.4]), "y_score"),
    ("inf score", Y0, np.array([0.3, np.inf, 0.2, 0.4]), "y_score"),
    ("-inf score", Y0, np.array([0.3, 0.1, -np.inf, 0.4]), "y_score"),
    ("text score", Y0, np.array(["a", "b", "c", "d"]), "y_score"),
    ("label 2", np.array([1, 0, 2, 0]), S0, "y_true"),
    ("label -1", np.array([1, 0, -1, 0]), S0, "y_true"),
    ("label 0.5", np.array([1.0, 0.0, 0.5, 0.0]), S0, "y_true"),
    ("label nan", np.array([1.0, 0.0, np.nan, 0.0]), S0, "y_true"),
    ("label text", np.array(["1", "0", "1", "0"]), S0, "y_true"),
    ("shape", Y0, S0[:3], "same shape"),
    ("shape 2d vs 1d", Y0[None, :], S0, "same shape"),
    ("ndim 0", np.array(True), np.array(0.5), "y_true"),
    ("ndim 3", Y0.reshape(1, 2, 2), S0.reshape(1, 2, 2), "y_true"),
    ("empty 1-D", np.zeros(0, bool), np.zeros(0), "y_true"),
    ("empty rows", np.zeros((3, 0), bool), np.zeros((3, 0)), "y_true"),
]


@pytest.mark.parametrize("func", sorted(ALL_FUNCS))
@pytest.mark.parametrize("case", BAD_RANKINGS, ids=[c[0] for c in BAD_RANKINGS])
def test_invalid_rankings_raise_naming_argument(func, case):
    _, y, s, pattern = case
    with pytest.raises(ValueError, match=pattern):
        ALL_FUNCS[func](y, s)


@pytest.mark.parametrize("func", ["auc", "precision", "opauc_curve"])
def test_zero_rankings_batch(func):
    # A batch of no rankings, shape (0, n_items): an empty result (one value per row), or a
    # ValueError that names y_true -- not numpy's "zero-size array to reduction" error.
    y, s = np.zeros((0, 4), bool), np.zeros((0, 4))
    try:
        out = ALL_FUNCS[func](y, s)
    except ValueError as err:
        assert "y_true" in str(err), str(err)
    else:
        assert np.shape(out)[0] == 0


BAD_FRACTIONS = [0.0, -0.1, 1.0000001, 1.5, np.nan, np.inf, None, "half"]


@pytest.mark.parametrize("beta", BAD_FRACTIONS)
def test_invalid_beta_raises(beta):
    for call in (lambda: M.opauc(Y0, S0, beta), lambda: M.tpauc(Y0, S0, 0.5, beta),
                 lambda: M.llpauc(Y0, S0, 0.5, beta)):
        with pytest.raises(ValueError, match=r"\bbeta\b"):
            call()
    if beta != "half":
        with pytest.raises(ValueError, match="betas"):
            M.opauc_curve(Y0, S0, [0.5, beta])
        with pytest.raises(ValueError, match="betas"):
            M.ranking_metrics(Y0, S0, betas=[beta])


@pytest.mark.parametrize("alpha", [-0.1, 1.0000001, 2.0, np.nan, None, "x"])
def test_invalid_alpha_raises(alpha):
    with pytest.raises(ValueError, match="alpha"):
        M.tpauc(Y0, S0, alpha, 0.5)
    with pytest.raises(ValueError, match="alpha"):
        M.llpauc(Y0, S0, alpha, 0.5)


def test_alpha_zero_allowed_for_tpauc_only():
    assert M.tpauc(Y0, S0, 0.0, 0.5) == pytest.approx(M.opauc(Y0, S0, 0.5), abs=1e-15)
    with pytest.raises(ValueError, match="alpha"):
        M.llpauc(Y0, S0, 0.0, 0.5)
    with pytest.raises(ValueError, match="alpha"):
        M.ranking_metrics(Y0, S0, betas=[0.5], levels=[1.5])


@pytest.mark.parametrize("k", [0, -1, 5.0, 2.5, True, False, "3", None, np.float64(2.0)])
def test_invalid_k_raises(k):
    for fn in (M.precision_at_k, M.recall_at_k, M.ndcg_at_k, M.hit_rate_at_k):
        with pytest.raises(ValueError, match=r"\bk\b"):
            fn(Y0, S0, k)
    with pytest.raises(ValueError, match=r"\bks\b"):
        M.ranking_metrics(Y0, S0, ks=[k])


def test_numpy_integer_k_accepted():
    assert M.precision_at_k(Y0, S0, np.int64(2)) == M.precision_at_k(Y0, S0, 2)


def test_unknown_choices_raise_naming_argument():
    with pytest.raises(ValueError, match="normalize"):
        M.opauc(Y0, S0, 0.5, normalize="max")
    with pytest.raises(ValueError, match="normalize"):
        M.opauc_curve(Y0, S0, [0.5], normalize="McClish")
    with pytest.raises(ValueError, match="normalize"):
        M.normalize_opauc(0.1, 0.5, "sklearn")
    with pytest.raises(ValueError, match="normalize"):
        M.raw_opauc(0.6, 0.5, None)
    with pytest.raises(ValueError, match="denominator"):
        M.recall_at_k(Y0, S0, 2, denominator="k")
    for fn in list(PAIRWISE.values()) + list(NEED_POS.values()):
        with pytest.raises(ValueError, match="on_undefined"):
            fn(Y0, S0, on_undefined="ignore")


def test_opauc_curve_empty_betas_raises():
    with pytest.raises(ValueError, match="betas"):
        M.opauc_curve(Y0, S0, [])


# ======================================================================================
# Numba row kernels against plain numpy references
# ======================================================================================
def ref_blocks(pos, neg):
    """Blocks from np.unique grouping of the merged scores, highest first; consecutive
    single-label groups merged into one run."""
    blocks = []
    for v in np.unique(np.concatenate([pos, neg]))[::-1]:
        p, q = int(np.sum(pos == v)), int(np.sum(neg == v))
        kind = "T" if p and q else ("P" if p else "N")
        if blocks and kind != "T" and blocks[-1][2] == kind:
            blocks[-1][0] += p
            blocks[-1][1] += q
        else:
            blocks.append([p, q, kind])
    return [(p, q) for p, q, _ in blocks]


def block_arrays(blocks, size=None):
    size = max(size or 0, len(blocks), 1)
    bp = np.zeros(size, np.int64)
    bn = np.zeros(size, np.int64)
    for b, (p, q) in enumerate(blocks):
        bp[b], bn[b] = p, q
    return bp, bn, len(blocks)


def _random_row(rng, ignored=False):
    """One row of scores and int8 labels (1 / 0, and -1 = ignored item when asked)."""
    n = int(rng.integers(1, 25))
    labels = rng.choice(np.array([1, 0, -1] if ignored else [1, 0], np.int8), n)
    kind = rng.integers(3)
    if kind == 0:
        scores = rng.integers(0, 4, n).astype(float)            # heavy ties
    elif kind == 1:
        scores = rng.normal(size=n)                             # untied
    else:
        scores = np.round(rng.normal(size=n) * 1e3, -2) * rng.choice([1e-6, 1.0, 1e6])
    return np.ascontiguousarray(scores), np.ascontiguousarray(labels)


def kernel_blocks_from_row(scores, labels, grid_len, rng):
    pos = np.sort(scores[labels == 1])
    n_pos, n = pos.size, scores.size
    # documented contract: the positives ascending, then M.SENTINELS entries +inf
    pos_sorted = np.concatenate([pos, np.full(M.SENTINELS + int(rng.integers(0, 3)), np.inf)])
    grid = np.full(max(grid_len, 2), -7, np.int64)               # scratch: garbage on entry
    counts = np.full(2 * n_pos + 2 + int(rng.integers(0, 3)), -7, np.int64)
    bp = np.full(n, -1, np.int64)
    bn = np.full(n, -1, np.int64)
    nb, n_neg = M.blocks_from_row(scores, labels, pos_sorted, n_pos, grid, counts, bp, bn)
    return list(zip(bp[:nb].tolist(), bn[:nb].tolist())), int(n_neg)


def test_blocks_from_row_matches_unique_grouping():
    rng = np.random.default_rng(61)
    for trial in range(400):
        scores, labels = _random_row(rng, ignored=trial % 3 == 0)
        n_pos = int((labels == 1).sum())
        want = ref_blocks(scores[labels == 1], scores[labels == 0])
        for grid_len in {2, 3, 2 * n_pos + 1, 2 * n_pos + 2, 64}:   # 1 cell .. many cells
            got, n_neg = kernel_blocks_from_row(scores, labels, grid_len, rng)
            assert got == want, (scores, labels, grid_len)
            assert n_neg == int((labels == 0).sum())


def test_blocks_from_row_accepts_bool_labels():
    rng = np.random.default_rng(60)
    for _ in range(50):
        scores, labels = _random_row(rng)
        got_int, _ = kernel_blocks_from_row(scores, labels, 2 * int(labels.sum()) + 2, rng)
        got_bool, _ = kernel_blocks_from_row(scores, labels.astype(bool), 2 * int(labels.sum()) + 2, rng)
        assert got_bool == got_int == ref_blocks(scores[labels == 1], scores[labels == 0])


def test_blocks_from_row_crowded_and_sparse_cells():
    # Many tied / clustered positives (the search path) and spread-out ones (the
    # branch-free path), with negatives tied to positives, above and below them all.
    rng = np.random.default_rng(59)
    for _ in range(100):
        n_pos = int(rng.integers(1, 40))
        centre = rng.choice([0.0, 1e-3, 5.0])
        pos = np.where(rng.random(n_pos) < 0.5, centre, rng.normal(size=n_pos))
        neg = np.concatenate([rng.choice(pos, int(rng.integers(0, 5))), rng.normal(size=8) * 3])
        scores = np.ascontiguousarray(np.concatenate([pos, neg]))
        labels = np.r_[np.ones(n_pos, np.int8), np.zeros(neg.size, np.int8)]
        perm = rng.permutation(scores.size)
        scores, labels = np.ascontiguousarray(scores[perm]), np.ascontiguousarray(labels[perm])
        for grid_len in (2, 2 * n_pos + 2):
            got, n_neg = kernel_blocks_from_row(scores, labels, grid_len, rng)
            assert got == ref_blocks(pos, neg) and n_neg == neg.size


def test_blocks_from_positions_matches_label_sequence():
    rng = np.random.default_rng(58)
    for _ in range(200):
        n = int(rng.integers(1, 30))
        n_pos = int(rng.integers(0, n + 1))
        positions = np.sort(rng.choice(n, n_pos, replace=False)).astype(np.int64)
        labels = np.zeros(n, bool)
        labels[positions] = True
        scores = -np.arange(n, dtype=float)              # rank r has the r-th highest score
        bp = np.full(n, -1, np.int64)
        bn = np.full(n, -1, np.int64)
        padded = np.concatenate([positions, rng.integers(0, n, 3)])   # only n_pos entries read
        nb = M.blocks_from_positions(padded, n_pos, n, bp, bn)
        got = list(zip(bp[:nb].tolist(), bn[:nb].tolist()))
        assert got == ref_blocks(scores[labels], scores[~labels])


def _random_blocks(rng):
    scores, labels = _random_row(rng)
    pos, neg = scores[labels == 1], scores[labels == 0]
    return pos.size, neg.size, ref_blocks(pos, neg)


def _roc_from_blocks(blocks, n_pos, n_neg):
    cum = np.cumsum([(0, 0)] + [(q, p) for p, q in blocks], axis=0)
    return cum[:, 0] / n_neg, cum[:, 1] / n_pos


def test_area_curve_row_matches_exact_roc_integral():
    rng = np.random.default_rng(62)
    for _ in range(400):
        n_pos, n_neg, blocks = _random_blocks(rng)
        if n_neg == 0:
            continue
        bp, bn, nb = block_arrays(blocks)
        betas = np.sort(np.concatenate([rng.uniform(0.001, 1, 4), [1.0, 0.5, 0.5],
                                        rng.integers(1, n_neg + 1, 2) / n_neg]))
        alpha = float(rng.choice([0.0, rng.uniform(), 0.5, 1.0]))
        out = np.full(betas.size, np.nan)
        M.area_curve_row(bp, bn, nb, n_neg, betas, alpha * n_pos, out)
        if n_pos == 0:
            np.testing.assert_array_equal(out, 0.0)
            continue
        fpr, tpr = _roc_from_blocks(blocks, n_pos, n_neg)
        want = [clipped_roc_area(fpr, tpr, b, lo=alpha) * n_pos * n_neg for b in betas]
        np.testing.assert_allclose(out, want, rtol=1e-12, atol=1e-10)


def test_discount_table_matches_cumsum():
    for m in (0, 1, 2, 7, 100):
        table = M.discount_table(m)
        want = np.concatenate([[0.0], np.cumsum(1.0 / np.log2(np.arange(1, m + 1) + 1.0))])
        assert table.shape == (m + 1,)
        np.testing.assert_allclose(table, want, rtol=1e-14, atol=0)


def ref_topk(blocks, ks):
    """Per-position positive probability p / (p + q) inside each block; hypergeometric
    P(no positive among the first t of a block) = C(q, t) / C(p + q, t)."""
    prob = np.concatenate([np.full(p + q, p / (p + q)) for p, q in blocks])
    disc = 1.0 / np.log2(np.arange(prob.size) + 2.0)
    hits, dcg, hit = [], [], []
    for k in ks:
        kk = min(k, prob.size)
        hits.append(prob[:kk].sum())
        dcg.append((prob[:kk] * disc[:kk]).sum())
        none, start = 1.0, 0
        for p, q in blocks:
            if start >= kk:
                break
            t = min(p + q, kk - start)
            none *= math.comb(q, t) / math.comb(p + q, t)
            start += p + q
        hit.append(1.0 - none)
    return np.array(hits), np.array(dcg), np.array(hit)


def test_topk_row_matches_numpy_reference():
    rng = np.random.default_rng(63)
    for trial in range(400):
        n_pos, n_neg, blocks = _random_blocks(rng)
        n = n_pos + n_neg
        bp, bn, nb = block_arrays(blocks)
        ks = np.sort(rng.integers(1, n + 4, int(rng.integers(1, 5)))).astype(np.int64)
        # the documented minimum table, discount_table(min(max(ks), n_items)); ks beyond n
        # count the whole ranking.  Every 4th case also runs py_func (bounds-checked).
        discounts = M.discount_table(int(min(ks[-1], n)))
        want = ref_topk(blocks, ks)
        for kernel in (M.topk_row, M.topk_row.py_func) if trial % 4 == 0 else (M.topk_row,):
            outs = [np.full(ks.size, np.nan) for _ in range(3)]
            kernel(bp, bn, nb, ks, discounts, *outs)
            for got, exp in zip(outs, want):
                np.testing.assert_allclose(got, exp, rtol=1e-12, atol=1e-12)


def test_topk_row_reads_only_documented_discounts():
    # Two negatives, then three positives; k = 1; discounts = discount_table(1) as the
    # docstring allows.  py_func runs the same code with bounds-checked numpy indexing: a
    # kernel that reads discounts past the table (an out-of-bounds read once seen to
    # segfault precision_at_k on a 1e6-item ranking with k = 1) raises IndexError here.
    bp = np.array([0, 3], np.int64)
    bn = np.array([2, 0], np.int64)
    ks = np.array([1], np.int64)
    outs = [np.full(1, np.nan) for _ in range(3)]
    M.topk_row.py_func(bp, bn, 2, ks, M.discount_table(1), *outs)
    np.testing.assert_allclose([o[0] for o in outs], [0.0, 0.0, 0.0])


def _run_isolated(code):
    """Run code in a fresh interpreter (a crash there must not kill the test session)."""
    return subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True,
                          text=True, timeout=300)


EXTREME_CASES = [([1, 1, 0], [0.0, 5e-324, 1.0]),            # positives spread by a subnormal
                 ([1, 1, 1, 0], [0.0, 1e-308, 2e-308, -1.0]),  # n_cells / spread overflows
                 ([1, 0], [1e308, -1e308]),                    # score differences overflow
                 ([1, 1, 0, 0], [-1.7e308, 1.7e308, 1.0, -1.0]),
                 ([0, 1, 1, 0], [-5e-324, 0.0, 5e-324, 5e-324])]


@pytest.mark.parametrize("y, s", EXTREME_CASES)
def test_extreme_finite_scores(y, s):
    """Finite but extreme scores once gave a NaN grid cell (0 * inf, inf * 0) and int(NaN)
    indexed far outside the grid (segfault); run isolated so a crash fails one test only."""
    want = brute_auc(np.array(y, bool), np.array(s))
    proc = _run_isolated(f"from theory import metrics as M; print(M.auc({y!r}, {s!r}))")
    assert proc.returncode == 0, f"interpreter died with return code {proc.returncode}"
    assert float(proc.stdout.split()[-1]) == pytest.approx(want, abs=1e-12)


def test_extreme_finite_scores_sweep():
    """Random rankings whose scores mix subnormals, zeros, +-1e308 and ordinary values:
    AUC and Top-K against brute force, in a fresh interpreter (see above)."""
    code = """
import numpy as np
from theory import metrics as M
rng = np.random.default_rng(0)
pool = np.array([0.0, 5e-324, -5e-324, 1e-310, -1e-310, 2.3e-308, 1e-300, 1.0, -1.0,
                 1e308, -1e308, 1.7976931348623157e308, -1.7976931348623157e308, 3.5])
worst = 0.0
for n in (2, 3, 5, 9, 20):
    y = rng.random((200, n)) < 0.5
    y[:, 0], y[:, 1] = True, False
    s = rng.choice(pool, y.shape)
    s[::3] *= rng.choice([1.0, 1e-5], (len(s[::3]), n))     # more distinct tiny values
    got = M.auc(y, s)
    for r in range(y.shape[0]):
        p, q = s[r][y[r]], s[r][~y[r]]
        gt = np.greater.outer(p, q).sum() + 0.5 * np.equal.outer(p, q).sum()
        worst = max(worst, abs(got[r] - gt / (p.size * q.size)))
    hits = M.precision_at_k(y, s, 2) * 2
    for r in range(y.shape[0]):
        above = np.greater.outer(s[r], s[r]).sum(axis=0)      # items scored higher
        tied = np.equal.outer(s[r], s[r]).sum(axis=0)         # including the item itself
        # P(item in the top 2) under random tie-breaking, summed over positives
        prob = np.clip((2 - above) / tied, 0.0, 1.0)
        worst = max(worst, abs(hits[r] - prob[y[r]].sum()))
print(worst)
"""
    proc = _run_isolated(code)
    assert proc.returncode == 0, f"interpreter died ({proc.returncode}): {proc.stderr[-2000:]}"
    assert float(proc.stdout.split()[-1]) <= 1e-12


# ======================================================================================
# checks/metrics.py (the paper_checks rows)
# ======================================================================================
def test_metric_checks_pass_and_do_not_import_sklearn():
    code = ("import sys, time; import checks; import checks.metrics; "
            "assert 'sklearn' not in sys.modules, 'checks.metrics imports scikit-learn'; "
            "rows = [c for c in checks.all_checks() if c.id.startswith('M')]; "
            "assert len(rows) >= 5; from theory import metrics as M; "
            "M.auc([1, 0], [1.0, 0.0]); M.ndcg_at_k([1, 0], [1.0, 0.0], 1); "  # load numba cache
            "t = time.perf_counter(); "
            "res = [(c.id,) + tuple(c.function(s, False)) for c in rows for s in (0, 1)]; "
            "print(time.perf_counter() - t); print(res); "
            "assert all(r[2] is True for r in res), res")
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    seconds = float(proc.stdout.splitlines()[0])
    assert seconds < 60.0, f"M checks took {seconds:.1f} s for two seeds"   # ~2 s when idle


# ======================================================================================
# Batch kernels against plain numpy
# ======================================================================================
@pytest.mark.parametrize("n_rows", [3, 200])  # the serial path (<= 64 rows) and the parallel one
def test_scan_counts_positives_and_flags_non_finite_rows_like_numpy(n_rows):
    rng = np.random.default_rng(11)
    labels = rng.random((n_rows, 37)) < 0.3
    scores = rng.normal(size=(n_rows, 37))
    bad_rows = rng.choice(n_rows, size=max(1, n_rows // 10), replace=False)
    for r, value in zip(bad_rows, itertools.cycle([np.nan, np.inf, -np.inf])):
        scores[r, rng.integers(37)] = value
    n_pos = np.empty(n_rows, np.int64)
    bad = np.empty(n_rows, np.int64)
    if n_rows > 64:
        M._scan_kernel(labels.view(np.int8), scores, n_pos, bad)
    else:
        M._scan_rows(0, n_rows, labels.view(np.int8), scores, n_pos, bad)
    np.testing.assert_array_equal(n_pos, np.count_nonzero(labels, axis=1))
    np.testing.assert_array_equal(bad.astype(bool), ~np.isfinite(scores).all(axis=1))


@pytest.mark.parametrize("value", [np.nan, np.inf, -np.inf])
def test_first_non_finite_score_is_named_with_its_index(value):
    scores = np.zeros((100, 5))
    scores[70, 3] = value
    scores[80, 1] = np.nan
    with pytest.raises(ValueError, match=r"y_score must be finite .* at index \(70, 3\)"):
        M.auc(np.tile([1, 0, 1, 0, 0], (100, 1)), scores)
    with pytest.raises(ValueError, match=r"at index \(3,\)"):
        M.auc([1, 0, 1, 0, 0], scores[70])


def test_gather_positives_matches_boolean_indexing():
    rng = np.random.default_rng(12)
    labels = rng.random((150, 40)) < 0.25
    labels[0] = False          # a row without positives
    labels[1] = True           # a row of positives only
    scores = rng.normal(size=(150, 40))
    width = int(labels.sum(axis=1).max()) + M.SENTINELS
    out = np.full((150, width), -7.0)
    M._gather_positives(labels.view(np.int8), scores, out)
    for r in range(150):
        k = labels[r].sum()
        np.testing.assert_array_equal(out[r, :k], scores[r][labels[r]])
        assert np.all(out[r, k:] == np.inf)
