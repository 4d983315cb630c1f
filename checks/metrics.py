"""Paper checks of the metric definitions (Eqs. 6-8, 10-11; Appendix C; TPAUC / LLPAUC).

Each check compares ``theory.metrics`` with an oracle written here in plain numpy (no
scikit-learn: it is a test-only dependency): brute-force (positive, negative) pair counting,
the exact area under the empirical ROC polyline, McClish's formula, and, for Top-K metrics
with ties, the exact average over every ordering consistent with the scores.
Random rankings come from ``np.random.default_rng(seed)``; integer scores give many ties.
"""
from __future__ import annotations

import itertools

import numpy as np

from theory import metrics as M

from . import check

_TOL = 1e-12


# --------------------------------------------------------------------------------------
# Independent oracles (plain numpy)
# --------------------------------------------------------------------------------------
def _pairs(pos, neg):
    """#{pos > neg} + 1/2 #{pos == neg} over all (positive, negative) pairs."""
    d = np.subtract.outer(pos, neg)
    return float((d > 0).sum() + 0.5 * (d == 0).sum())


def _roc(y, s):
    """Empirical ROC vertices (fpr, tpr), one per distinct score, from (0, 0)."""
    order = np.argsort(-s, kind="stable")
    ss, yy = s[order], y[order]
    last = np.r_[ss[1:] != ss[:-1], True]          # last item of each group of equal scores
    tp = np.r_[0, np.cumsum(yy)[last]]
    fp = np.r_[0, np.cumsum(~yy)[last]]
    return fp / fp[-1], tp / tp[-1]


def _clipped_area(fpr, tpr, beta, lo=0.0, hi=1.0):
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


def _orderings(s):
    """Every ordering of the items consistent with descending scores (ties permuted)."""
    order = np.argsort(-s, kind="stable")
    groups = np.split(order, np.flatnonzero(np.diff(s[order]) != 0) + 1)
    return np.array([np.concatenate(c) for c in
                     itertools.product(*(list(itertools.permutations(g)) for g in groups))])


def _topk_plain(labels, k, n_pos):
    """Untied Top-K values of each row of labels (given in rank order)."""
    top = labels[:, :k].astype(float)
    hits = top.sum(axis=1)
    dcg = (top / np.log2(np.arange(2, top.shape[1] + 2))).sum(axis=1)
    ideal = (1.0 / np.log2(np.arange(2, min(n_pos, k) + 2))).sum()
    return np.stack([hits / k, hits / n_pos, hits / min(n_pos, k), dcg / ideal,
                     (hits > 0).astype(float)])


def _module_topk(y, s, k):
    return np.array([M.precision_at_k(y, s, k), M.recall_at_k(y, s, k),
                     M.recall_at_k(y, s, k, denominator="min_k_positives"),
                     M.ndcg_at_k(y, s, k), M.hit_rate_at_k(y, s, k)])


def _batch(rng, n_lists, n_items, tied):
    """Rankings with at least one positive and one negative each."""
    y = rng.random((n_lists, n_items)) < rng.uniform(0.2, 0.8, (n_lists, 1))
    y[:, 0], y[:, 1] = True, False
    y = rng.permuted(y, axis=1)
    s = (rng.integers(0, 5, y.shape).astype(float) if tied else rng.normal(size=y.shape))
    return y, s


def _sizes(full):
    return (2, 3, 7, 16, 33, 80) if full else (2, 3, 7, 16, 33)


def _report(diff, n, what="rankings"):
    return f"max |diff| {diff:.1e} over {n:,} {what}", bool(diff <= _TOL)


# --------------------------------------------------------------------------------------
# Checks
# --------------------------------------------------------------------------------------
@check("M1", "Eq. 6", "AUC equals the Mann-Whitney pair count (tied pairs count 1/2)")
def auc_is_mann_whitney(seed: int, full: bool):
    rng = np.random.default_rng(seed)
    diff, n = 0.0, 0
    for n_items in _sizes(full):
        for tied in (False, True):
            y, s = _batch(rng, 200 if full else 60, n_items, tied)
            got = M.auc(y, s)
            want = np.array([_pairs(s[r][y[r]], s[r][~y[r]]) / (y[r].sum() * (~y[r]).sum())
                             for r in range(y.shape[0])])
            diff, n = max(diff, float(np.abs(got - want).max())), n + y.shape[0]
    return _report(diff, n)


@check("M2", "Eq. 8", "raw OPAUC(beta), n_neg*beta an integer, equals the pair count over "
       "the top n_neg*beta negatives / (n_pos n_neg)")
def opauc_is_top_pair_count(seed: int, full: bool):
    # With ties, only cuts that do not split a tied (positive, negative) group: there the
    # ROC-area reading (a diagonal segment) and the half-count of Eq. 8 differ (M3 covers it).
    rng = np.random.default_rng(seed)
    diff, n = 0.0, 0
    for n_items in _sizes(full):
        for tied in (False, True):
            n_pos = int(rng.integers(1, n_items))            # same n_neg in every row
            labels = np.arange(n_items) < n_pos
            y = np.array([rng.permutation(labels) for _ in range(40 if full else 12)])
            s = rng.integers(0, 5, y.shape).astype(float) if tied else rng.normal(size=y.shape)
            n_neg = n_items - n_pos
            m = np.arange(1, n_neg + 1)
            curve = M.opauc_curve(y, s, m / n_neg)
            for r in range(y.shape[0]):
                pos, neg = s[r][y[r]], np.sort(s[r][~y[r]])[::-1]
                for mm, got in zip(m, curve[r]):
                    v = neg[mm - 1]
                    if mm < n_neg and neg[mm] == v and np.any(pos == v):
                        continue
                    want = _pairs(pos, neg[:mm]) / (n_pos * n_neg)
                    diff, n = max(diff, abs(got - want)), n + 1
    return _report(diff, n, "cuts")


@check("M3", "Eqs. 7-8", "raw OPAUC(beta) for any beta (fractional n_neg*beta, ties) equals "
       "the exact area under the empirical ROC polyline over FPR in [0, beta]")
def opauc_is_roc_area(seed: int, full: bool):
    rng = np.random.default_rng(seed)
    betas = np.array([0.01, 0.1, 0.25, 1 / 3, 0.5, 0.77, 1.0])
    diff, n = 0.0, 0
    for n_items in _sizes(full):
        for tied in (False, True):
            y, s = _batch(rng, 30 if full else 10, n_items, tied)
            got = M.opauc_curve(y, s, betas)
            for r in range(y.shape[0]):
                fpr, tpr = _roc(y[r], s[r])
                want = np.array([_clipped_area(fpr, tpr, b) for b in betas])
                diff, n = max(diff, float(np.abs(got[r] - want).max())), n + 1
    return _report(diff, n)


@check("M4", "Eqs. 10-11", "McClish-normalised OPAUC = 1/2 (1 + (A - beta^2/2) / (beta - "
       "beta^2/2)) of the exact ROC area A (scikit-learn's max_fpr value); 'beta' = A / beta")
def mcclish_normalisation(seed: int, full: bool):
    rng = np.random.default_rng(seed)
    betas = np.array([0.05, 0.2, 0.3, 0.5, 0.9, 1.0])
    diff, n = 0.0, 0
    for n_items in _sizes(full):
        y, s = _batch(rng, 30 if full else 10, n_items, tied=True)
        mc = M.opauc_curve(y, s, betas, normalize="mcclish")
        nb = M.opauc_curve(y, s, betas, normalize="beta")
        for r in range(y.shape[0]):
            fpr, tpr = _roc(y[r], s[r])
            area = np.array([_clipped_area(fpr, tpr, b) for b in betas])
            want = 0.5 * (1 + (area - betas ** 2 / 2) / (betas - betas ** 2 / 2))
            diff = max(diff, float(np.abs(mc[r] - want).max()),
                       float(np.abs(nb[r] - area / betas).max()))
            n += 1
    return _report(diff, n)


@check("M5", "Eqs. 6-8", "OPAUC(1) = AUC; raw OPAUC non-decreasing in beta within [0, beta]; "
       "perfect ranking gives beta, reversed ranking 0")
def opauc_properties(seed: int, full: bool):
    rng = np.random.default_rng(seed)
    betas = np.sort(np.r_[rng.uniform(0.001, 1.0, 30), 1.0])
    worst, n = 0.0, 0
    for n_items in _sizes(full):
        for tied in (False, True):
            y, s = _batch(rng, 100 if full else 40, n_items, tied)
            curve = M.opauc_curve(y, s, betas)
            worst = max(worst, float(np.abs(curve[:, -1] - M.auc(y, s)).max()),
                        float(np.maximum(-np.diff(curve, axis=1), 0).max()),
                        float(np.maximum(curve - betas, 0).max()), float(np.maximum(-curve, 0).max()))
            perfect = np.where(y, 1.0 + rng.integers(0, 3, y.shape), -rng.integers(0, 3, y.shape))
            worst = max(worst, float(np.abs(M.opauc_curve(y, perfect, betas) - betas).max()),
                        float(np.abs(M.opauc_curve(y, -perfect, betas)).max()))
            n += y.shape[0]
    return f"max violation {worst:.1e} over {n:,} rankings x {betas.size} betas", bool(worst <= _TOL)


@check("M6", "Appendix C", "Precision, Recall (both denominators), NDCG and hit rate @K with ties "
       "equal the exact mean over all tie-breaking orders; untied, the plain argsort values")
def topk_tie_expectation(seed: int, full: bool):
    rng = np.random.default_rng(seed)
    diff, n = 0.0, 0
    for n_items in range(2, 8):                              # tied, n_items <= 7: enumerate
        y, s = _batch(rng, 20 if full else 8, n_items, tied=True)
        orders = [_orderings(row) for row in s]
        for k in range(1, n_items + 2):
            got = _module_topk(y, s, k)
            for r in range(y.shape[0]):
                want = _topk_plain(y[r][orders[r]], k, int(y[r].sum())).mean(axis=1)
                diff = max(diff, float(np.abs(got[:, r] - want).max()))
        n += y.shape[0]
    for n_items in (2, 9, 50, 99):                           # untied: plain argsort
        y, s = _batch(rng, 20 if full else 8, n_items, tied=False)
        ranked = np.take_along_axis(y, np.argsort(-s, axis=1), axis=1)
        for k in sorted({1, 5, 20, n_items, n_items + 3}):
            got = _module_topk(y, s, k)
            for r in range(y.shape[0]):
                want = _topk_plain(ranked[r:r + 1], k, int(y[r].sum()))[:, 0]
                diff = max(diff, float(np.abs(got[:, r] - want).max()))
        n += y.shape[0]
    return _report(diff, n)


@check("M7", "Sec. 7 (TPAUC, LLPAUC)", "TPAUC and LLPAUC equal the exact clipped ROC integrals "
       "(TPR >= alpha, resp. TPR <= alpha, FPR <= beta) and LLPAUC + TPAUC = OPAUC")
def two_way_and_lower_left(seed: int, full: bool):
    rng = np.random.default_rng(seed)
    diff, n = 0.0, 0
    for n_items in _sizes(full):
        for tied in (False, True):
            y, s = _batch(rng, 10 if full else 4, n_items, tied)
            for alpha, beta in ((0.3, 0.4), (0.5, 1.0), (0.9, 0.15), (float(rng.uniform()),
                                                                      float(rng.uniform(0.01, 1)))):
                tp = M.tpauc(y, s, alpha, beta)
                ll = M.llpauc(y, s, alpha, beta)
                op = M.opauc(y, s, beta)
                for r in range(y.shape[0]):
                    fpr, tpr = _roc(y[r], s[r])
                    diff = max(diff, abs(tp[r] - _clipped_area(fpr, tpr, beta, lo=alpha)),
                               abs(ll[r] - _clipped_area(fpr, tpr, beta, hi=alpha)),
                               abs(tp[r] + ll[r] - op[r]))
                n += y.shape[0]
    return _report(diff, n, "(ranking, alpha, beta)")
