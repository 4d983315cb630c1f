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
from simulations.correlation import default_betas, peak_betas, ranking_sample, topk_correlations
from theory.metrics import discount_table

N_POS, N_NEG = 200, 800
KS = (5, 10, 20, 50)
NEAR = 1.5  # "near K / N-": peak beta within a factor 1.5 of K / N- (grid step: factor 1.18)
LEFT_FACTOR = 4.0


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
       "OPAUC(beta) at their peak, and the peak beta is near K/N- (within a factor 1.5)")
def peak_high_near_k_over_nneg(seed: int, full: bool):
    _, peaks = _study(seed, full)
    ok = bool((peaks.peak_r > 0.8).all() and peaks.ratio.between(1 / NEAR, NEAR).all())
    return (f"peak r min {peaks.peak_r.min():.3f}; peak beta / (K/N-) in "
            f"[{peaks.ratio.min():.2f}, {peaks.ratio.max():.2f}]; {_fmt(peaks, 'peak_r')}"), ok


@check("F6b", "Sec. 5, Fig. 6",
       "The correlation of Recall@K and Precision@K with AUC (beta = 1) stays below 0.4 "
       "for K in {5,10,20,50}")
def auc_correlation_low(seed: int, full: bool):
    _, peaks = _study(seed, full)
    sel = peaks[peaks.metric.isin(["recall", "precision"])]
    exact = {k: np.sqrt(3 * k * (N_POS + N_NEG - k) / ((N_POS + N_NEG) ** 2 - 1)) for k in KS}
    rec = sel[sel.metric == "recall"]
    exact_text = ", ".join(f"{k}: {v:.3f}" for k, v in exact.items())
    ok = bool((sel.r_auc < 0.4).all())
    return (f"r with AUC max {sel.r_auc.max():.3f}; Recall: {_fmt(rec, 'r_auc')} "
            f"(exact sqrt(3K(N-K)/(N^2-1)): {exact_text})"), ok


@check("F6c", "Sec. 5, Fig. 6",
       "The peak beta grows with K (strictly, K = 5 < 10 < 20 < 50) for every metric")
def peak_grows_with_k(seed: int, full: bool):
    _, peaks = _study(seed, full)
    parts, ok = [], True
    for metric, part in peaks.groupby("metric", sort=False):
        b = part.sort_values("k").peak_beta.to_numpy()
        ok &= bool(np.all(np.diff(b) > 0))
        parts.append(f"{metric}: " + " < ".join(f"{v:.4f}" for v in b))
    return "; ".join(parts), ok


@check("F6d", "Sec. 5, Fig. 6",
       "Left of the peak, NDCG's correlation falls more slowly than Recall's and Precision's: "
       "for every K, r(peak) - r(peak beta / 4) is smaller for NDCG by more than 0.05")
def ndcg_falls_slowly(seed: int, full: bool):
    _, peaks = _study(seed, full)
    drop = peaks.set_index(["metric", "k"]).left_drop
    ok = all(drop["ndcg", k] < min(drop["recall", k], drop["precision", k]) - 0.05 for k in KS)
    text = ", ".join(f"K={k}: {drop['ndcg', k]:.3f} / {drop['recall', k]:.3f}" for k in KS)
    return f"r(peak) - r(peak/4), NDCG / Recall: {text}", ok


@check("F6e", "Sec. 5 (uniform model)",
       "Uniform rankings reproduce known moments within 5 SE: E[AUC] = 1/2, Var[AUC] = "
       "(N+ + N- + 1)/(12 N+ N-), E[Recall@K] = K/(N+ + N-), E[NDCG@K] = (N+/N) D(K)/D(min(N+,K))")
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
    return (f"E[AUC] = {auc.mean():.5f}, Var[AUC] = {auc.var(ddof=1):.3e} (exact {var:.3e}); "
            f"largest deviation {max(z):.2f} SE over {len(z)} moments"), bool(max(z) < 5)
