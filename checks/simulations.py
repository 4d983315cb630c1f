"""Checks of the paper's simulation claims (section 5, Fig. 6), run by ``paper_checks.py``.

All F6 checks share one study per (seed, full), computed once (``functools.lru_cache``):
N+ = 200, N- = 800, uniformly random rankings, 41 log-spaced betas from 1/800 to 1 (AUC),
K in {5, 10, 20, 50}, Precision / Recall / NDCG, Pearson.  Default size 20,000 rankings
(SE of r about 0.005, well under a second after compilation); ``full=True`` uses the paper's
100,000.  The moment check draws its own sample (same seed).
"""
from __future__ import annotations

from functools import lru_cache

import numpy as np

from checks import check
from checks import mutants as X
from checks.compare import Tally, within
from simulations.correlation import (
    default_betas,
    peak_betas,
    ranking_sample,
    topk_correlations,
)
from theory.bounds import uniform_auc_recall_correlation
from theory.metrics import discount_table

N_POS, N_NEG = 200, 800
KS = (5, 10, 20, 50)
NEAR = 1.5  # "near K / N-": peak beta within a factor 1.5 of K / N- (grid step: factor 1.18)
LEFT_FACTOR = 4.0
_TC = "simulations.correlation.topk_correlations"
_RS = "simulations.correlation.ranking_sample"
_PB = "simulations.correlation.peak_betas"
_MC = ("the Monte Carlo study itself (simulations.correlation on uniformly random rankings); ")


def _scaled_r(factor):
    """Mutant: every correlation of a topk_correlations table multiplied by ``factor``."""

    def transform(frame):
        frame = frame.copy()
        frame["r"] = frame["r"] * factor
        return frame

    return X.map_output(transform)


def _sample_nan():
    """Mutant: every value of a ranking_sample NaN."""

    def transform(sample):
        for d in (sample.partial, sample.topk):
            for key in d:
                d[key] = np.full_like(d[key], np.nan)
        return sample

    return X.map_output(transform)


def _n_rankings(full: bool) -> int:
    return 100_000 if full else 20_000


@lru_cache(maxsize=4)
def _study(seed: int, full: bool):
    table = topk_correlations(N_POS, N_NEG, _n_rankings(full), KS, default_betas(N_NEG, 41),
                              seed=seed)
    return table, peak_betas(table, left_factor=LEFT_FACTOR)


def _fmt(peaks, column, digits=3):
    return ", ".join(f"{m[0].upper()}@{k}={v:.{digits}f}"
                     for m, k, v in zip(peaks.metric, peaks.k, peaks[column]))


@check("F6a", "Sec. 5, Fig. 6",
       "For every K in {5,10,20,50}, Recall@K, Precision@K and NDCG@K correlate above 0.8 with "
       "OPAUC(beta) at their peak, and the peak beta is near K/N- (within a factor 1.5); "
       "WEAK: thresholds on a simulated curve, it detects a wrong sign, NaN or a misplaced peak, "
       "not a small bias of r",
       oracle=_MC + "the paper's thresholds (r > 0.8, peak beta within 1.5 x K/N-)",
       verifies=(_TC, _PB),
       mutants=[(_TC, "r negated", X.negate_column("r")), (_TC, "nan-row", X.nan_column("r")),
                (_TC, "nan", X.nan())])
def peak_high_near_k_over_nneg(seed: int, full: bool):
    table, peaks = _study(seed, full)
    tally = Tally()
    tally.within(table.r, -1.0, 1.0, where="r of the study row")  # every r finite and valid
    tally.within(peaks.peak_r, low=0.8, where="peak r (metric, K) row")
    tally.within(peaks.ratio, 1 / NEAR, NEAR, where="peak beta / (K/N-) row")
    ok = tally.ok
    return (f"peak r min {peaks.peak_r.min():.3f}; peak beta / (K/N-) in "
            f"[{peaks.ratio.min():.2f}, {peaks.ratio.max():.2f}]; {_fmt(peaks, 'peak_r')}"), ok


@check("F6b", "Sec. 5, Fig. 6",
       "The correlation of Recall@K and Precision@K with AUC (beta = 1) stays below 0.4 "
       "for K in {5,10,20,50}, and equals the exact uniform-model value sqrt(3K(N-K)/(N^2-1)) "
       "within 4 standard errors",
       oracle="the closed form sqrt(3K(N-K)/(N^2-1)) of corr(Recall@K, AUC) under uniform "
       "rankings (N = N+ + N-)",
       verifies=(_TC,),
       mutants=[(_TC, "r x 0.9", _scaled_r(0.9)),
                (_TC, "nan", X.nan())])
def auc_correlation_low(seed: int, full: bool):
    _, peaks = _study(seed, full)
    sel = peaks[peaks.metric.isin(["recall", "precision"])]
    exact = np.array([uniform_auc_recall_correlation(N_POS, N_NEG, int(k)) for k in sel.k])
    # SE of a Pearson r from n rankings: (1 - r^2) / sqrt(n) (normal approximation, n >= 2e4).
    # Recall and Precision have identical r (N+ fixed), so 4 distinct comparisons: 4 SE
    # leaves a false-alarm rate of ~3e-4.
    se = (1 - exact ** 2) / np.sqrt(_n_rankings(full))
    tally = Tally()
    tally.within(sel.r_auc, high=0.4, where="r with AUC < 0.4 row")
    tally.compare(sel.r_auc, exact, atol=4 * se, where="r with AUC vs exact row")
    rec = sel.metric.to_numpy() == "recall"
    exact_text = ", ".join(f"{k}: {v:.3f}" for k, v in zip(sel.k[rec], exact[rec]))
    z = np.abs(sel.r_auc.to_numpy() - exact) / se
    return (f"r with AUC max {sel.r_auc.max():.3f}; Recall: {_fmt(sel[rec], 'r_auc')} "
            f"(exact sqrt(3K(N-K)/(N^2-1)): {exact_text}); max |r - exact| = {np.max(z):.1f} "
            f"SE"), tally.ok


@check("F6c", "Sec. 5, Fig. 6",
       "The peak beta grows with K (strictly, K = 5 < 10 < 20 < 50) for every metric; WEAK: an "
       "ordering, it detects swapped K labels or NaN, not a uniformly shifted peak (F6a)",
       oracle=_MC + "the ordering only",
       verifies=(_TC,),
       mutants=[(_TC, "K labels reversed", X.relabel("k", {5: 50, 10: 20, 20: 10, 50: 5})),
                (_TC, "nan", X.nan())])
def peak_grows_with_k(seed: int, full: bool):
    _, peaks = _study(seed, full)
    parts, tally = [], Tally()
    for metric, part in peaks.groupby("metric", sort=False):
        b = part.sort_values("k").peak_beta.to_numpy()
        # Strictly increasing: each step at least one grid step (factor 1.18 > 1.01).
        tally.within(b[1:] / b[:-1], low=1.01, where=f"{metric} peak-beta ratio K step")
        parts.append(f"{metric}: " + " < ".join(f"{v:.4f}" for v in b))
    return "; ".join(parts), tally.ok


@check("F6d", "Sec. 5, Fig. 6",
       "Left of the peak, NDCG's correlation falls more slowly than Recall's and Precision's: "
       "for every K, r(peak) - r(peak beta / 4) is smaller for NDCG by more than 0.05; WEAK: "
       "a comparison of two simulated curves, it detects swapped metrics or NaN, not a "
       "small error in either",
       oracle=_MC + "the comparison only",
       verifies=(_TC,),
       mutants=[(_TC, "ndcg<->recall labels", X.relabel("metric", {"ndcg": "recall",
                                                                   "recall": "ndcg"})),
                (_TC, "nan", X.nan())])
def ndcg_falls_slowly(seed: int, full: bool):
    _, peaks = _study(seed, full)
    drop = peaks.set_index(["metric", "k"]).left_drop
    tally = Tally()
    for k in KS:
        tally.within(np.minimum(drop["recall", k], drop["precision", k]) - drop["ndcg", k], low=0.05,
                     where=f"K={k} margin")
    ok = tally.ok
    text = ", ".join(f"K={k}: {drop['ndcg', k]:.3f} / {drop['recall', k]:.3f}" for k in KS)
    return f"r(peak) - r(peak/4), NDCG / Recall: {text}", ok


@check("F6e", "Sec. 5 (uniform model)",
       "Uniform rankings reproduce known moments within 5 SE: E[AUC] = 1/2, Var[AUC] = "
       "(N+ + N- + 1)/(12 N+ N-), E[Recall@K] = K/(N+ + N-), E[NDCG@K] = (N+/N) D(K)/D(min(N+,K))",
       oracle="the closed-form moments of uniformly random rankings (hypergeometric hits, "
       "Mann-Whitney variance)",
       verifies=(_RS,),
       mutants=[(_RS, "n_pos + 10", X.with_argument("n_pos", X.plus(10))),
                (_RS, "nan", _sample_nan())])
def uniform_moments(seed: int, full: bool):
    n = _n_rankings(full)
    sample = ranking_sample(N_POS, N_NEG, n, KS, [1.0], seed=seed)
    auc = sample.partial["opauc"][:, 0]
    N = N_POS + N_NEG
    ks = np.array(KS)
    var = (N + 1) / (12 * N_POS * N_NEG)
    z = [abs(auc.mean() - 0.5) / (auc.std() / np.sqrt(n)),
         abs(auc.var(ddof=1) / var - 1) / np.sqrt(2 / n)]
    recall = sample.topk["recall"]
    z += list(np.abs(recall.mean(0) - ks / N) / (recall.std(0) / np.sqrt(n)))
    disc = discount_table(int(ks.max()))
    ndcg = sample.topk["ndcg"]
    z += list(np.abs(ndcg.mean(0) - (N_POS / N) * disc[ks] / disc[np.minimum(N_POS, ks)])
              / (ndcg.std(0) / np.sqrt(n)))
    # 10 moments, each a mean of 20,000 rankings (normal to good accuracy): 5 SE.
    gap = within(z, high=5.0, where="moment")
    return (f"E[AUC] = {auc.mean():.5f}, Var[AUC] = {auc.var(ddof=1):.3e} (exact {var:.3e}); "
            f"largest deviation {np.max(z):.2f} SE over {len(z)} moments"), gap.ok
