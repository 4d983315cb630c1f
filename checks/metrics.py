"""Paper checks of the metric definitions (Eqs. 6-8, 10-11; Appendix C; TPAUC / LLPAUC).

Each check compares ``theory.metrics`` with an oracle written here in plain numpy (no
scikit-learn: it is a test-only dependency): brute-force (positive, negative) pair counting,
the exact area under the empirical ROC polyline, McClish's formula, and, for Top-K metrics
with ties, the exact average over every ordering consistent with the scores.
Random rankings come from ``np.random.default_rng(seed)``; integer scores give many ties.
"""
from __future__ import annotations

import numpy as np

from theory import metrics as M

from . import check
from . import mutants as X
from . import oracles as O
from .compare import Tally

# Every value compared here lies in [0, 1] and is a sum of at most a few hundred float64
# terms on both sides, so rounding stays below ~1e-14; 1e-12 leaves a margin of 100 while any
# real error (a miscounted pair is >= 1/(n_pos n_neg) >= 1/(80*80)) is far above it.
_TOL = 1e-12
_M = "theory.metrics."


# Independent oracles (plain numpy, in checks.oracles)
# --------------------------------------------------------------------------------------
_pairs, _roc, _clipped_area = O.pairs, O.roc, O.clipped_area
_orderings, _topk_plain = O.orderings, O.topk_plain


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


def _batches(rng, full, lists, lists_full):
    """(n_items, tied, y, s) for every size of :func:`_sizes`, untied then tied: ``lists``
    rankings each (``lists_full`` with ``full``), drawn in the loop order (the checks draw more
    from ``rng`` between batches)."""
    for n_items in _sizes(full):
        for tied in (False, True):
            yield (n_items, tied, *_batch(rng, lists_full if full else lists, n_items, tied))


def _report(tally, n, what="rankings"):
    gap = tally.gap
    return f"{gap.text()} over {n:,} {what}", gap.ok


# --------------------------------------------------------------------------------------
# Checks
# --------------------------------------------------------------------------------------
@check("M1", "Eq. 6", "AUC equals the Mann-Whitney pair count (tied pairs count 1/2)",
       oracle="brute-force (positive, negative) pair count (checks.oracles.pairs)",
       verifies=(_M + "auc",),
       mutants=[(_M + "auc", "nan", X.nan()), (_M + "auc", "nan-row", X.nan_row()),
                (_M + "auc", "reversed scores", X.with_argument("y_score", np.negative))])
def auc_is_mann_whitney(seed: int, full: bool):
    rng = np.random.default_rng(seed)
    tally, n = Tally(), 0
    for n_items, tied, y, s in _batches(rng, full, 60, 200):
        tally.compare(M.auc(y, s), O.mann_whitney_auc(y, s), atol=_TOL,
                      where=f"n_items={n_items} tied={tied} row")
        n += y.shape[0]
    return _report(tally, n)


@check("M2", "Eq. 8", "raw OPAUC(beta), n_neg*beta an integer, equals the pair count over "
       "the top n_neg*beta negatives / (n_pos n_neg)",
       oracle="brute-force pair count over the top n_neg*beta negatives",
       verifies=(_M + "opauc_curve",),
       mutants=[(_M + "opauc_curve", "nan", X.nan()),
                (_M + "opauc_curve", "nan-row", X.nan_row()),
                (_M + "opauc_curve", "beta x 0.999",
                 X.with_argument("betas", lambda b: np.asarray(b, float) * 0.999))])
def opauc_is_top_pair_count(seed: int, full: bool):
    # With ties, only cuts that do not split a tied (positive, negative) group: there the
    # ROC-area reading (a diagonal segment) and the half-count of Eq. 8 differ (M3 covers it).
    rng = np.random.default_rng(seed)
    tally, n = Tally(), 0
    for n_items in _sizes(full):
        for tied in (False, True):
            n_pos = int(rng.integers(1, n_items))            # same n_neg in every row
            labels = np.arange(n_items) < n_pos
            y = np.array([rng.permutation(labels) for _ in range(40 if full else 12)])
            s = rng.integers(0, 5, y.shape).astype(float) if tied else rng.normal(size=y.shape)
            n_neg = n_items - n_pos
            m = np.arange(1, n_neg + 1)
            curve = M.opauc_curve(y, s, m / n_neg)
            want = np.full(curve.shape, np.nan)
            keep = np.zeros(curve.shape, bool)
            for r in range(y.shape[0]):
                pos, neg = s[r][y[r]], np.sort(s[r][~y[r]])[::-1]
                for c, mm in enumerate(m):
                    v = neg[mm - 1]
                    if mm < n_neg and neg[mm] == v and np.any(pos == v):
                        continue
                    want[r, c], keep[r, c] = _pairs(pos, neg[:mm]) / (n_pos * n_neg), True
            # Only the kept cuts are compared, but a NaN anywhere in the curve is a failure.
            tally.compare(np.where(keep, curve, np.where(np.isfinite(curve), 0.0, np.nan)),
                          np.where(keep, want, 0.0), atol=_TOL,
                          where=f"n_items={n_items} tied={tied} (row, cut)")
            n += int(keep.sum())
    return _report(tally, n, "cuts")


@check("M3", "Eqs. 7-8", "raw OPAUC(beta) for any beta (fractional n_neg*beta, ties) equals "
       "the exact area under the empirical ROC polyline over FPR in [0, beta]",
       oracle="exact trapezoid integral of the empirical ROC polyline (checks.oracles)",
       verifies=(_M + "opauc_curve",),
       mutants=[(_M + "opauc_curve", "nan", X.nan()),
                (_M + "opauc_curve", "nan-row", X.nan_row()),
                (_M + "opauc_curve", "normalize none<->beta",
                 X.with_argument("normalize", X.swap("none", "beta")))])
def opauc_is_roc_area(seed: int, full: bool):
    rng = np.random.default_rng(seed)
    betas = np.array([0.01, 0.1, 0.25, 1 / 3, 0.5, 0.77, 1.0])
    tally, n = Tally(), 0
    for n_items, tied, y, s in _batches(rng, full, 10, 30):
        got = M.opauc_curve(y, s, betas)
        want = np.array([[_clipped_area(*_roc(y[r], s[r]), b) for b in betas]
                         for r in range(y.shape[0])])
        tally.compare(got, want, atol=_TOL, where=f"n_items={n_items} tied={tied} (row, beta)")
        n += y.shape[0]
    return _report(tally, n)


@check("M4", "Eqs. 10-11", "McClish-normalised OPAUC = 1/2 (1 + (A - beta^2/2) / (beta - "
       "beta^2/2)) of the exact ROC area A (scikit-learn's max_fpr value); 'beta' = A / beta",
       oracle="McClish's formula applied to the exact ROC-polyline area",
       verifies=(_M + "opauc_curve",),
       mutants=[(_M + "opauc_curve", "nan-row", X.nan_row()),
                (_M + "opauc_curve", "normalize mcclish<->beta",
                 X.with_argument("normalize", X.swap("mcclish", "beta")))])
def mcclish_normalisation(seed: int, full: bool):
    rng = np.random.default_rng(seed)
    betas = np.array([0.05, 0.2, 0.3, 0.5, 0.9, 1.0])
    tally, n = Tally(), 0
    for n_items in _sizes(full):
        y, s = _batch(rng, 30 if full else 10, n_items, tied=True)
        area = np.array([[_clipped_area(*_roc(y[r], s[r]), b) for b in betas]
                         for r in range(y.shape[0])])
        # The McClish values are up to 1/(beta - beta^2/2) <= 1/0.049 times the area's
        # rounding: still far below _TOL.
        tally.compare(M.opauc_curve(y, s, betas, normalize="mcclish"),
                      0.5 * (1 + (area - betas ** 2 / 2) / (betas - betas ** 2 / 2)), atol=_TOL,
                      where=f"mcclish n_items={n_items} (row, beta)")
        tally.compare(M.opauc_curve(y, s, betas, normalize="beta"), area / betas, atol=_TOL,
                      where=f"beta n_items={n_items} (row, beta)")
        n += y.shape[0]
    return _report(tally, n)


@check("M5", "Eqs. 6-8", "OPAUC(1) = the Mann-Whitney AUC; raw OPAUC non-decreasing in beta "
       "within [0, beta]; perfect ranking gives beta, reversed ranking 0",
       oracle="pair count for OPAUC(1); the analytic values beta and 0 for perfect / reversed "
       "rankings; the monotonicity and range are inequalities (they cannot see a wrong value "
       "that stays monotone and in range)",
       verifies=(_M + "opauc_curve",),
       mutants=[(_M + "opauc_curve", "nan", X.nan()),
                (_M + "opauc_curve", "nan-row", X.nan_row()),
                (_M + "opauc_curve", "beta x 0.999",
                 X.with_argument("betas", lambda b: np.asarray(b, float) * 0.999))])
def opauc_properties(seed: int, full: bool):
    rng = np.random.default_rng(seed)
    betas = np.sort(np.r_[rng.uniform(0.001, 1.0, 30), 1.0])
    tally, n = Tally(), 0
    for n_items, tied, y, s in _batches(rng, full, 40, 100):
        curve = M.opauc_curve(y, s, betas)
        where = f"n_items={n_items} tied={tied}"
        tally.compare(curve[:, -1], O.mann_whitney_auc(y, s), atol=_TOL,
                      where=f"OPAUC(1) vs pair count {where} row")
        tally.within(np.diff(curve, axis=1), low=0.0, atol=_TOL,
                     where=f"monotone {where} (row, beta)")
        tally.within(curve, 0.0, betas, atol=_TOL, where=f"range {where} (row, beta)")
        perfect = np.where(y, 1.0 + rng.integers(0, 3, y.shape), -rng.integers(0, 3, y.shape))
        tally.compare(M.opauc_curve(y, perfect, betas), np.broadcast_to(betas, curve.shape),
                      atol=_TOL, where=f"perfect {where} (row, beta)")
        tally.compare(M.opauc_curve(y, -perfect, betas), 0.0, atol=_TOL,
                      where=f"reversed {where} (row, beta)")
        n += y.shape[0]
    gap = tally.gap
    return (f"{gap.text('max deviation')} over {n:,} rankings x {betas.size} betas",
            gap.ok)


_TOPK = ("precision_at_k", "recall_at_k", "ndcg_at_k", "hit_rate_at_k")


@check("M6", "Appendix C", "Precision, Recall (both denominators), NDCG and hit rate @K with ties "
       "equal the exact mean over all tie-breaking orders; untied, the plain argsort values",
       oracle="enumeration of every tie-breaking order (n_items <= 7); untied, argsort and "
       "the textbook formulas (checks.oracles.topk_plain)",
       verifies=tuple(_M + f for f in _TOPK),
       mutants=[*[(_M + f, "nan", X.nan()) for f in _TOPK],
                *[(_M + f, "nan-row", X.nan_row()) for f in _TOPK],
                (_M + "ndcg_at_k", "k+1", X.with_argument("k", X.plus(1))),
                (_M + "precision_at_k", "k+1", X.with_argument("k", X.plus(1))),
                (_M + "recall_at_k", "denominators swapped",
                 X.with_argument("denominator", X.swap("positives", "min_k_positives")))])
def topk_tie_expectation(seed: int, full: bool):
    rng = np.random.default_rng(seed)
    tally, n = Tally(), 0
    for n_items in range(2, 8):                              # tied, n_items <= 7: enumerate
        y, s = _batch(rng, 20 if full else 8, n_items, tied=True)
        orders = [_orderings(row) for row in s]
        for k in range(1, n_items + 2):
            want = np.stack([_topk_plain(y[r][orders[r]], k, int(y[r].sum())).mean(axis=1)
                             for r in range(y.shape[0])], axis=1)
            tally.compare(_module_topk(y, s, k), want, atol=_TOL,
                          where=f"tied n_items={n_items} k={k} (metric, row)")
        n += y.shape[0]
    for n_items in (2, 9, 50, 99):                           # untied: plain argsort
        y, s = _batch(rng, 20 if full else 8, n_items, tied=False)
        ranked = np.take_along_axis(y, np.argsort(-s, axis=1), axis=1)
        for k in sorted({1, 5, 20, n_items, n_items + 3}):
            want = np.stack([_topk_plain(ranked[r:r + 1], k, int(y[r].sum()))[:, 0]
                             for r in range(y.shape[0])], axis=1)
            tally.compare(_module_topk(y, s, k), want, atol=_TOL,
                          where=f"untied n_items={n_items} k={k} (metric, row)")
        n += y.shape[0]
    return _report(tally, n)


@check("M7", "Sec. 7 (TPAUC, LLPAUC)", "TPAUC, LLPAUC and OPAUC each equal the exact clipped ROC "
       "integral (TPR >= alpha, resp. TPR <= alpha, FPR <= beta), so LLPAUC + TPAUC = OPAUC "
       "to the same tolerance",
       oracle="exact trapezoid integral of the clipped empirical ROC polyline, each side "
       "computed on its own",
       verifies=(_M + "tpauc", _M + "llpauc", _M + "opauc"),
       mutants=[*[(_M + f, kind, fac) for f in ("tpauc", "llpauc", "opauc")
                  for kind, fac in (("nan", X.nan()), ("nan-row", X.nan_row()))],
                (_M + "tpauc", "alpha -> 1 - alpha",
                 X.with_argument("alpha", lambda a: 1.0 - a))])
def two_way_and_lower_left(seed: int, full: bool):
    rng = np.random.default_rng(seed)
    tally, n = Tally(), 0
    for n_items, tied, y, s in _batches(rng, full, 4, 10):
        rocs = [_roc(y[r], s[r]) for r in range(y.shape[0])]
        for alpha, beta in ((0.3, 0.4), (0.5, 1.0), (0.9, 0.15), (float(rng.uniform()),
                                                                  float(rng.uniform(0.01, 1)))):
            where = f"n_items={n_items} tied={tied} alpha={alpha:.3g} beta={beta:.3g} row"
            tally.compare(M.tpauc(y, s, alpha, beta),
                          [_clipped_area(f, t, beta, lo=alpha) for f, t in rocs], atol=_TOL,
                          where="TPAUC " + where)
            tally.compare(M.llpauc(y, s, alpha, beta),
                          [_clipped_area(f, t, beta, hi=alpha) for f, t in rocs], atol=_TOL,
                          where="LLPAUC " + where)
            tally.compare(M.opauc(y, s, beta), [_clipped_area(f, t, beta) for f, t in rocs],
                          atol=_TOL, where="OPAUC " + where)
            n += y.shape[0]
    return _report(tally, n, "(ranking, alpha, beta)")
