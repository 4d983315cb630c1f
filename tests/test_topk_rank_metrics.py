"""MRR@K and MAP@K (theory.metrics.mrr_at_k, map_at_k, topk_rank_row) against brute force.

Oracles written here (not in checks/oracles.py):

* ``_ranx_rr`` / ``_ranx_ap``: the per-ranking formulas of ranx's ``reciprocal_rank`` and
  ``average_precision`` (AP divides by the number of relevant items) on one ordered list;
* ``_tie_orders``: every order of a ranking that breaks its ties (the product of the
  permutations of each tie group), so the expected value over uniformly random
  tie-breaking is the plain average over these orders, computed in exact fractions;
* scikit-learn's ``average_precision_score`` (an oracle for AP@K when K >= n_items and no
  score is tied: its step-wise AP is then ranx's AP at full depth).

Every oracle test is also run on deliberately wrong kernels (rank off by one, the wrong AP
denominator, tie groups treated as independent, NaN output) and must fail on each.
"""
from __future__ import annotations

import dataclasses
import inspect
import itertools
import math
import textwrap
from fractions import Fraction

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.metrics import average_precision_score

from simulations import correlation as C
from simulations.rankings import uniform_positions
from theory import metrics as M
from training.evaluation import evaluate_full_ranking


# ======================================================================================
# Oracles
# ======================================================================================
def _ranx_rr(rel, k):
    """ranx ``_reciprocal_rank``: 1 / (i + 1) for the first relevant i < k, else 0."""
    for i in range(min(k, len(rel))):
        if rel[i]:
            return Fraction(1, i + 1)
    return Fraction(0)


def _ranx_ap(rel, k):
    """ranx ``_average_precision``: sum of precision@(r + 1) over relevant r < k, divided by
    the number of relevant items (all of them, not only those in the top k)."""
    n_rel = sum(rel)
    total = Fraction(0)
    for r in range(min(k, len(rel))):
        if rel[r]:
            total += Fraction(sum(rel[: r + 1]), r + 1)
    return total / n_rel


def _tie_orders(y, s):
    """Every label sequence of the ranking (highest score first) under some tie-break."""
    groups = [[bool(y[j]) for j in np.flatnonzero(s == v)] for v in np.unique(s)[::-1]]
    for choice in itertools.product(*[set(itertools.permutations(g)) for g in groups]):
        yield [label for group in choice for label in group]


def _expected(y, s, k, formula):
    orders = list(_tie_orders(y, s))
    return sum(formula(o, k) for o in orders) / len(orders)


def _small_tied_rankings(seed, n_cases=120):
    """Rankings of 1-7 items with integer scores in {0, 1, 2} (many ties), >= 1 positive."""
    rng = np.random.default_rng(seed)
    for _ in range(n_cases):
        n = int(rng.integers(1, 8))
        y = rng.random(n) < rng.uniform(0.2, 0.8)
        y[rng.integers(n)] = True
        s = rng.integers(0, 3, n).astype(float)
        yield y, s


# ======================================================================================
# Kernel under test, and mutants of it
# ======================================================================================
def _kernel_from_source(old=None, new=None):
    """topk_rank_row's Python source, optionally with one edit, as a plain Python function."""
    src = textwrap.dedent(inspect.getsource(M.topk_rank_row.py_func))
    src = src[src.index("def "):]  # drop the @njit decorator
    if old is not None:
        assert src.count(old) >= 1, old
        src = src.replace(old, new)
    namespace = dict(vars(M))
    exec(compile(src, "<topk_rank_row>", "exec"), namespace)
    return namespace["topk_rank_row"]


MUTANTS = {
    "rank off by one (RR)": ("rr += none * (p / (size - t + 1)) / i",
                             "rr += none * (p / (size - t + 1)) / (i + 1)"),
    "rank off by one (AP)": ("(t - 1) * others) / i", "(t - 1) * others) / (i + 1)"),
    "ties independent": ("others = (p - 1) / (size - 1) if size > 1 else 0.0", "others = frac"),
    "first positive ignores ties": ("rr += none * (p / (size - t + 1)) / i",
                                    "rr += (1.0 if t == 1 else 0.0) / i"),
    "NaN output": ("ap_out[c] = ap", "ap_out[c] = np.nan"),
}


def _blocks(y, s):
    """Blocks of one ranking via the package's own block builder (tested elsewhere)."""
    n_pos = int(y.sum())
    pos_sorted = np.full(n_pos + M.SENTINELS, np.inf)
    pos_sorted[:n_pos] = np.sort(s[y])
    bp, bn = np.empty(y.size, np.int64), np.empty(y.size, np.int64)
    nb, _ = M.blocks_from_row(s, y.astype(np.int8), pos_sorted, n_pos,
                              np.empty(2 * n_pos + 2, np.int64), np.empty(2 * n_pos + 2, np.int64),
                              bp, bn)
    return bp, bn, nb


def _kernel_matches_enumeration(kernel, seed):
    """True iff ``kernel`` gives RR and AP sums equal to the tie-order average (1e-12: the
    kernel sums a few dozen floats, each exact to 1 ulp)."""
    for y, s in _small_tied_rankings(seed):
        n = y.size
        ks = np.arange(1, n + 3, dtype=np.int64)  # every cut, and two beyond the ranking
        bp, bn, nb = _blocks(y, s)
        rr, ap = np.zeros(ks.size), np.zeros(ks.size)
        kernel(bp, bn, nb, ks, rr, ap)
        n_pos = int(y.sum())
        for c, k in enumerate(ks):
            want_rr = float(_expected(y, s, int(k), _ranx_rr))
            want_ap = float(_expected(y, s, int(k), _ranx_ap)) * n_pos
            if not (abs(rr[c] - want_rr) <= 1e-12 and abs(ap[c] - want_ap) <= 1e-12):
                return False
    return True


@pytest.mark.parametrize("seed", [0, 1])
def test_kernel_equals_average_over_all_tie_orders(seed):
    assert _kernel_matches_enumeration(M.topk_rank_row, seed)
    assert _kernel_matches_enumeration(M.topk_rank_row.py_func, seed)
    assert _kernel_matches_enumeration(_kernel_from_source(), seed)  # the mutants' base


@pytest.mark.parametrize("name", sorted(MUTANTS))
def test_enumeration_oracle_catches_mutants(name):
    mutant = _kernel_from_source(*MUTANTS[name])
    assert not _kernel_matches_enumeration(mutant, 0), f"mutant {name!r} survived"


# ======================================================================================
# Public functions
# ======================================================================================
def test_public_functions_equal_tie_order_average():
    for y, s in _small_tied_rankings(2, 40):
        for k in (1, 2, 3, 9):
            assert M.mrr_at_k(y, s, k) == pytest.approx(float(_expected(y, s, k, _ranx_rr)),
                                                        abs=1e-12)
            assert M.map_at_k(y, s, k) == pytest.approx(float(_expected(y, s, k, _ranx_ap)),
                                                        abs=1e-12)


def _plain(y, s, k):
    """No ties: sort by score and apply the formulas directly (floats)."""
    rel = list(y[np.argsort(-s, kind="stable")])
    return float(_ranx_rr(rel, k)), float(_ranx_ap(rel, k))


def test_untied_rankings_match_plain_python():
    rng = np.random.default_rng(3)
    for _ in range(30):
        n = int(rng.integers(2, 60))
        y = rng.random(n) < rng.uniform(0.05, 0.5)
        y[0] = True
        s = rng.permutation(n).astype(float)  # distinct scores
        for k in (1, 2, 5, n, n + 7):
            rr, ap = _plain(y, s, k)
            assert M.mrr_at_k(y, s, k) == pytest.approx(rr, abs=1e-12)
            assert M.map_at_k(y, s, k) == pytest.approx(ap, abs=1e-12)


def test_map_at_full_depth_equals_sklearn_average_precision():
    rng = np.random.default_rng(4)
    for _ in range(40):
        n = int(rng.integers(2, 200))
        y = rng.random(n) < rng.uniform(0.05, 0.6)
        y[rng.integers(n)] = True
        s = rng.normal(size=n)  # continuous: no ties (sklearn's AP is an oracle only then)
        assert np.unique(s).size == n
        # 1e-12: both sum n_pos precisions in a different order
        for k in (n, n + 3):
            assert M.map_at_k(y, s, k) == pytest.approx(average_precision_score(y, s), abs=1e-12)


def test_batch_rows_equal_single_rankings_and_undefined_rows():
    rng = np.random.default_rng(5)
    Y = rng.random((30, 12)) < 0.3
    S = rng.integers(0, 4, (30, 12)).astype(float)
    Y[0] = False
    for fn in (M.mrr_at_k, M.map_at_k):
        batch = fn(Y, S, 4, on_undefined="nan")
        assert np.isnan(batch[0]) and not np.isnan(batch[1:]).any()
        np.testing.assert_array_equal(batch[1:], [fn(Y[i], S[i], 4) for i in range(1, 30)])
        with pytest.raises(ValueError, match=r"\(row\) 0 has no positive"):
            fn(Y, S, 4)
        with pytest.raises(ValueError, match="on_undefined"):
            fn(Y[1], S[1], 4, on_undefined="zero")
        for bad_k in (0, 2.0, True, "3"):
            with pytest.raises(ValueError, match=r"\bk\b"):
                fn(Y[1], S[1], bad_k)
        assert isinstance(fn(Y[1], S[1], 4), float)


def test_map_denominator_is_the_table_and_a_wrong_one_is_caught(monkeypatch):
    # AP@1 of [pos, pos, neg]: ranx divides by n_pos = 2 -> 1/2; min(k, n_pos) would give 1.
    y, s = np.array([True, True, False]), np.array([3.0, 2.0, 1.0])
    assert M.map_at_k(y, s, 1) == 0.5 == float(_ranx_ap([True, True, False], 1))
    wrong = dataclasses.replace(M.TOPK_METRICS["map"], normalization="min_k_positives")
    monkeypatch.setitem(M.TOPK_METRICS, "map", wrong)
    assert M.map_at_k(y, s, 1) == 1.0  # the seam: the table alone decides the denominator
    assert M.map_at_k(y, s, 1) != float(_ranx_ap([True, True, False], 1))


def test_rank_quantities_only_when_asked():
    rm = M.ranking_metrics([True, False], [0.2, 0.1], ks=[1])
    assert rm.rr is None and rm.ap_sum is None
    rm = M.ranking_metrics([[True, False], [False, True]], [[0.2, 0.1], [0.2, 0.1]], ks=[2, 1],
                           rank_quantities=True)
    np.testing.assert_array_equal(rm.rr, [[1.0, 1.0], [0.5, 0.0]])  # ks in the caller's order
    np.testing.assert_array_equal(rm.ap_sum, [[1.0, 1.0], [0.5, 0.0]])


def test_table_is_the_one_source():
    assert C.METRICS == tuple(M.TOPK_METRICS)
    for metric in M.TOPK_METRICS.values():
        assert metric.source in M.TOPK_SOURCES
        assert metric.normalization in M.TOPK_NORMALIZATIONS
        assert getattr(M, f"{metric.name}_at_k", None) is not None or metric.name == "hit_rate"


# ======================================================================================
# The correlation study and the evaluation read the same table
# ======================================================================================
def test_uniform_study_fast_path_values():
    # partial="opauc" only: the untied fast path, which builds blocks only for MRR / MAP.
    n_pos, n_neg, n, ks = 7, 30, 1100, [1, 3, 10, 37]
    sample = C.ranking_sample(n_pos, n_neg, n, ks, [0.1, 1.0], metrics=("mrr", "map", "recall"),
                              seed=9)
    positions = uniform_positions(n_pos, n_neg, n, seed=9)
    y = np.zeros((n, n_pos + n_neg), bool)
    np.put_along_axis(y, positions, True, axis=1)
    s = -np.arange(n_pos + n_neg, dtype=float) * np.ones((n, 1))  # rank 0 scores highest
    for j, k in enumerate(ks):
        np.testing.assert_allclose(sample.topk["mrr"][:, j], M.mrr_at_k(y, s, k), atol=1e-12)
        np.testing.assert_allclose(sample.topk["map"][:, j], M.map_at_k(y, s, k), atol=1e-12)


def test_topk_correlations_accepts_new_metrics():
    table = C.topk_correlations(10, 40, 600, [5, 20], [0.1, 1.0], metrics=("mrr", "map", "recall"),
                                seed=2)
    assert list(dict.fromkeys(table.metric)) == ["mrr", "map", "recall"]
    assert table.r.between(-1, 1).all()


@pytest.mark.parametrize("n_items, ks", [(90, (1, 5, 20, 200)), (1400, (1, 5, 20))])
def test_evaluation_mrr_map_match_theory_metrics(n_items, ks):
    # 90 items: the whole-row path; 1,400 items: the top-r selection path (ks * 64 <= n).
    rng = np.random.default_rng(n_items)
    n_users = 30
    U = rng.integers(-2, 3, size=(n_users, 3)).astype(np.float32)  # integer factors: ties
    V = rng.integers(-2, 3, size=(n_items, 3)).astype(np.float32)
    R = rng.random((n_users, n_items))
    train, test = sp.csr_matrix(R < 0.1), sp.csr_matrix((R >= 0.1) & (R < 0.1 + 5 / n_items))
    ev = evaluate_full_ranking(U, V, train, test, ks=ks, users_per_block=8)
    scores = U.astype(np.float64) @ V.astype(np.float64).T
    tr, te = train.toarray(), test.toarray()
    for row, u in enumerate(ev.users):
        keep = ~tr[u]
        for j, k in enumerate(ks):
            # 1e-12: the same kernel on the same blocks, up to the top-r path's block cut
            assert ev.mrr[row, j] == pytest.approx(M.mrr_at_k(te[u][keep], scores[u][keep], k),
                                                   abs=1e-12)
            assert ev.map[row, j] == pytest.approx(M.map_at_k(te[u][keep], scores[u][keep], k),
                                                   abs=1e-12)
    means = ev.mean()
    assert set(means) >= {f"{m}@{k}" for m in ("recall", "ndcg", "mrr", "map") for k in ks}
    only = evaluate_full_ranking(U, V, train, test, ks=ks, metrics=("recall", "ndcg"))
    assert list(only.topk) == ["recall", "ndcg"]
    np.testing.assert_array_equal(only.recall, ev.recall)
    with pytest.raises(AttributeError):
        only.mrr  # noqa: B018 (not computed)
    with pytest.raises(ValueError, match="metrics"):
        evaluate_full_ranking(U, V, train, test, ks=ks, metrics=("auc",))
    assert math.isfinite(means["map@5"])
