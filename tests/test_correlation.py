"""Tests of simulations.correlation: values, correlations, reproducibility, paper claims.

Oracles, all independent of the module under test:

* per-ranking values: ``theory.metrics`` public functions on explicit label / score arrays
  rebuilt from ``uniform_positions`` / ``draw_scores`` (the same draws);
* correlations: ``np.corrcoef``, ``scipy.stats.spearmanr`` and ``scipy.stats.kendalltau`` on
  the stored per-ranking values, and explicit resamples for the bootstrap weights;
* moments of uniformly random rankings, derived here: E[AUC] = 1/2 and the Mann-Whitney
  variance (N + 1) / (12 N+ N-); hits@K hypergeometric; E[OPAUC(m / N-)] / beta =
  (m + 1) / (2 (N- + 1)) (the u-th negative has u N+ / (N- + 1) positives above it on
  average); E[NDCG@K] = (N+ / N) D(K) / D(min(N+, K));
* an exact population correlation: for uniform rankings the indicators Z_p (rank p holds a
  positive) have exchangeable covariances, so any two linear statistics a.Z and b.Z
  correlate as the centred vectors a and b; AUC is linear in Z, as are hits@K and DCG@K,
  so corr(AUC, Recall@K) = sqrt(3 K (N - K) / (N^2 - 1)) exactly.

Statistical tolerances are 5 standard errors (SE of a Pearson r: (1 - rho^2) / sqrt(n);
of a mean: sd / sqrt(n); of a sample variance of a near-normal statistic: var sqrt(2 / n)),
with fixed seeds.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import scipy.stats

from simulations import correlation as C
from simulations.rankings import Binormal, Uniform, draw_scores, uniform_positions
from simulations.rng import CHUNK_SIZE
from theory import metrics as M
from theory.bounds import uniform_auc_recall_correlation

REPO_ROOT = Path(__file__).resolve().parents[1]
N_POS, N_NEG = 200, 800
KS = [5, 10, 20, 50]


def labels_from_positions(pos, n_items):
    y = np.zeros((pos.shape[0], n_items), dtype=bool)
    np.put_along_axis(y, pos, True, axis=1)
    return y, np.broadcast_to(-np.arange(n_items, dtype=float), y.shape).copy()


# ======================================================================================
# Per-ranking values against theory.metrics' public functions
# ======================================================================================
BETAS = np.array([0.004, 0.0143, 0.1, 0.37, 1.0])  # fractional and integer n_neg * beta
KS_SMALL = [1, 5, 17, 60]
ALL_METRICS = ("precision", "recall", "ndcg", "hit_rate", "mrr", "map")


def check_values(sample, y, s, alphas):
    for b, beta in enumerate(BETAS):
        np.testing.assert_allclose(sample.partial["opauc"][:, b],
                                   M.opauc(y, s, beta, normalize="beta"), rtol=0, atol=1e-12)
        for a, alpha in enumerate(alphas):
            np.testing.assert_allclose(sample.partial["llpauc"][:, a, b],
                                       M.llpauc(y, s, alpha, beta) / (alpha * beta), atol=1e-12)
            np.testing.assert_allclose(sample.partial["tpauc"][:, a, b],
                                       M.tpauc(y, s, alpha, beta) / ((1 - alpha) * beta), atol=1e-12)
    for metric, fn in (("precision", M.precision_at_k), ("recall", M.recall_at_k),
                       ("ndcg", M.ndcg_at_k), ("hit_rate", M.hit_rate_at_k),
                       ("mrr", M.mrr_at_k), ("map", M.map_at_k)):
        for j, k in enumerate(KS_SMALL):
            np.testing.assert_allclose(sample.topk[metric][:, j], fn(y, s, k), rtol=0, atol=1e-12)


@pytest.mark.parametrize("n_pos, n_neg", [(30, 70), (70, 30), (1, 99)])
def test_uniform_values_match_theory_metrics(n_pos, n_neg):
    n = 1100  # two chunks
    sample = C.ranking_sample(n_pos, n_neg, n, KS_SMALL, BETAS, metrics=ALL_METRICS, seed=5,
                              partial=("opauc", "llpauc", "tpauc"), alphas=(0.2, 0.7))
    y, s = labels_from_positions(uniform_positions(n_pos, n_neg, n, seed=5), n_pos + n_neg)
    check_values(sample, y, s, (0.2, 0.7))


def test_score_model_values_match_theory_metrics():
    n_pos, n_neg, n = 25, 75, 1100
    model = Binormal(0.0, 2.0)
    sample = C.ranking_sample(n_pos, n_neg, n, KS_SMALL, BETAS, model=model, metrics=ALL_METRICS,
                              seed=6, partial=("opauc", "llpauc", "tpauc"), alphas=(0.3,))
    pos, neg = draw_scores(model, n_pos, n_neg, n, seed=6)
    y = np.zeros((n, n_pos + n_neg), dtype=bool)
    y[:, :n_pos] = True
    check_values(sample, y, np.concatenate([pos, neg], axis=1), (0.3,))


def test_tied_scores_use_the_expected_tie_convention():
    class Coarse:  # a user-defined model: integer scores, many ties
        name = "coarse"

        def draw(self, rng, n_rankings, n_pos, n_neg):
            return (rng.integers(0, 4, (n_rankings, n_pos)).astype(float),
                    rng.integers(0, 3, (n_rankings, n_neg)).astype(float))

    sample = C.ranking_sample(6, 9, 50, [1, 5, 15], [0.1, 0.5, 1.0], model=Coarse(), seed=1)
    pos, neg = draw_scores(Coarse(), 6, 9, 50, seed=1)
    y = np.zeros((50, 15), dtype=bool)
    y[:, :6] = True
    s = np.concatenate([pos, neg], axis=1)
    np.testing.assert_allclose(sample.partial["opauc"][:, 2], M.auc(y, s), atol=1e-12)
    np.testing.assert_allclose(sample.topk["ndcg"][:, 1], M.ndcg_at_k(y, s, 5), atol=1e-12)
    sample = C.ranking_sample(6, 9, 50, [1, 5, 15], [0.1, 0.5, 1.0], model=Coarse(), seed=1,
                              metrics=("mrr", "map"))
    for j, k in enumerate([1, 5, 15]):
        np.testing.assert_allclose(sample.topk["mrr"][:, j], M.mrr_at_k(y, s, k), atol=1e-12)
        np.testing.assert_allclose(sample.topk["map"][:, j], M.map_at_k(y, s, k), atol=1e-12)


# ======================================================================================
# Correlations against numpy / scipy on the stored values
# ======================================================================================
def stacked(sample, metrics):
    x = sample.partial["opauc"].T
    y = np.concatenate([sample.topk[m] for m in metrics], axis=1).T
    return x, y


def table_matrix(table, n_x):
    """r as (n_x betas, n_y metric-k) in the table's order (metric, k, beta)."""
    return table["r"].to_numpy().reshape(-1, n_x).T


@pytest.mark.parametrize("method", ["pearson", "spearman", "kendall"])
def test_correlations_match_numpy_scipy(method):
    n, betas, ks = 2500 if method != "kendall" else 700, np.array([0.01, 0.05, 0.3, 1.0]), [5, 40]
    metrics = ("precision", "recall", "ndcg")
    table = C.topk_correlations(N_POS, N_NEG, n, ks, betas, metrics=metrics, method=method, seed=3)
    assert list(table.columns) == ["metric", "k", "beta", "r"]
    assert len(table) == len(metrics) * len(ks) * len(betas)
    x, y = stacked(C.ranking_sample(N_POS, N_NEG, n, ks, betas, metrics=metrics, seed=3), metrics)
    if method == "pearson":
        ref = np.corrcoef(x, y)[: len(betas), len(betas):]
    elif method == "spearman":
        ref = scipy.stats.spearmanr(x.T, y.T).statistic[: len(betas), len(betas):]
    else:
        ref = np.array([[scipy.stats.kendalltau(a, b).statistic for b in y] for a in x])
    np.testing.assert_allclose(table_matrix(table, len(betas)), ref, rtol=0, atol=1e-10)
    # Recall and Precision differ by a constant factor (N+ fixed): identical correlations.
    prec = table[table.metric == "precision"]["r"].to_numpy()
    rec = table[table.metric == "recall"]["r"].to_numpy()
    np.testing.assert_allclose(prec, rec, rtol=0, atol=1e-12)


def test_score_model_pearson_streams_like_corrcoef():
    model = Binormal(0.5, 1.5)
    betas = np.array([0.002, 0.03, 1.0])
    table = C.topk_correlations(50, 150, 2300, [3, 30], betas, model=model, seed=2)
    x, y = stacked(C.ranking_sample(50, 150, 2300, [3, 30], betas, model=model, seed=2),
                   ("precision", "recall", "ndcg"))
    np.testing.assert_allclose(table_matrix(table, 3), np.corrcoef(x, y)[:3, 3:], atol=1e-10)


def test_waves_and_chunk_merging_do_not_change_the_numbers(monkeypatch):
    args = (20, 60, 5 * CHUNK_SIZE + 17, [3, 9], [0.05, 1.0])
    ref = C.topk_correlations(*args, seed=4)
    monkeypatch.setattr(C, "WAVE_CHUNKS", 2)
    assert ref.equals(C.topk_correlations(*args, seed=4))


def test_constant_columns_give_nan_not_errors():
    # TPAUC above TPR 0.9 within FPR <= 1/400 is 0 in every ranking.
    with np.errstate(all="raise"):
        table = C.topk_correlations(50, 400, 200, [5], [1 / 400, 1.0], partial="tpauc", alphas=0.9)
    assert set(table.columns) == {"partial", "alpha", "metric", "k", "beta", "r"}
    assert table.loc[table.beta < 0.01, "r"].isna().all()
    assert table.loc[table.beta == 1.0, "r"].notna().all()


def test_partial_families_table_layout():
    table = C.topk_correlations(40, 60, 500, [5, 10], [0.1, 1.0], metrics=("ndcg",),
                                partial=("opauc", "llpauc", "tpauc"), alphas=(0.25, 0.5))
    assert len(table) == (1 + 2 + 2) * 2 * 2
    assert table.loc[table.partial == "opauc", "alpha"].isna().all()
    assert sorted(table.loc[table.partial == "llpauc", "alpha"].unique()) == [0.25, 0.5]
    assert table["partial"].tolist()[0] == "opauc"


# ======================================================================================
# Moments of the uniform model and an exact population correlation
# ======================================================================================
@lru_cache(maxsize=1)
def moment_sample():
    m = np.array([1, 5, 40, 800])
    return C.ranking_sample(N_POS, N_NEG, 20_000, KS, m / N_NEG, seed=11), m


def test_uniform_moments():
    sample, m = moment_sample()
    n = 20_000
    opauc = sample.partial["opauc"]
    auc = opauc[:, -1]
    assert abs(auc.mean() - 0.5) < 5 * auc.std() / np.sqrt(n)
    var = (N_POS + N_NEG + 1) / (12 * N_POS * N_NEG)
    assert abs(auc.var(ddof=1) / var - 1) < 5 * np.sqrt(2 / n)
    expected = (m + 1) / (2 * (N_NEG + 1))
    assert np.all(np.abs(opauc.mean(axis=0) - expected) < 5 * opauc.std(axis=0) / np.sqrt(n))
    N = N_POS + N_NEG
    ks = np.array(KS)
    recall = sample.topk["recall"]
    assert np.all(np.abs(recall.mean(axis=0) - ks / N) < 5 * recall.std(axis=0) / np.sqrt(n))
    hits = sample.topk["precision"] * ks
    hyper_var = ks * (N_POS / N) * (N_NEG / N) * (N - ks) / (N - 1)
    assert np.all(np.abs(hits.var(axis=0, ddof=1) / hyper_var - 1) < 5 * np.sqrt(2 / n) * 1.5)
    disc = M.discount_table(max(KS))
    ndcg_mean = (N_POS / N) * disc[ks] / disc[np.minimum(N_POS, ks)]
    ndcg = sample.topk["ndcg"]
    assert np.all(np.abs(ndcg.mean(axis=0) - ndcg_mean) < 5 * ndcg.std(axis=0) / np.sqrt(n))


def population_corr(a, b):
    a = a - a.mean()
    b = b - b.mean()
    return float(a @ b / np.sqrt((a @ a) * (b @ b)))


def test_exact_correlation_with_auc():
    sample, _ = moment_sample()
    n, N = 20_000, N_POS + N_NEG
    auc = sample.partial["opauc"][:, -1]
    rank = np.arange(1, N + 1)
    for j, k in enumerate(KS):
        rho = np.sqrt(3 * k * (N - k) / (N**2 - 1))
        assert np.isclose(rho, population_corr((rank <= k).astype(float), -rank))
        assert np.isclose(uniform_auc_recall_correlation(N_POS, N_NEG, k), rho, rtol=1e-14)
        r = np.corrcoef(auc, sample.topk["recall"][:, j])[0, 1]
        assert abs(r - rho) < 5 * (1 - rho**2) / np.sqrt(n)
        rho_ndcg = population_corr(np.where(rank <= k, 1 / np.log2(rank + 1), 0.0), -rank)
        r = np.corrcoef(auc, sample.topk["ndcg"][:, j])[0, 1]
        assert abs(r - rho_ndcg) < 5 * (1 - rho_ndcg**2) / np.sqrt(n)


# ======================================================================================
# The paper's Fig. 6 claims at a reduced size (20,000 rankings; SE of r about 0.005)
# ======================================================================================
@lru_cache(maxsize=1)
def fig6_peaks():
    table = C.topk_correlations(N_POS, N_NEG, 20_000, KS, C.default_betas(N_NEG, 41), seed=0)
    return table, C.peak_betas(table)


def test_fig6_peak_above_08_near_k_over_nneg():
    _, peaks = fig6_peaks()
    assert len(peaks) == 12
    assert (peaks["peak_r"] > 0.8).all()
    # "near K / N-": within a factor 1.5 (the grid steps by a factor 1.18).
    assert peaks["ratio"].between(1 / 1.5, 1.5).all(), peaks


def test_fig6_auc_correlation_below_04_for_recall_precision():
    _, peaks = fig6_peaks()
    sel = peaks[peaks.metric.isin(["recall", "precision"])]
    assert (sel["r_auc"] < 0.4).all()
    assert (peaks["r_auc"] < peaks["peak_r"] - 0.5).all()


def test_fig6_peak_beta_grows_with_k():
    _, peaks = fig6_peaks()
    for _, part in peaks.groupby("metric"):
        assert np.all(np.diff(part.sort_values("k")["peak_beta"].to_numpy()) > 0)


def test_fig6_ndcg_falls_more_slowly_left_of_peak():
    _, peaks = fig6_peaks()
    ndcg = peaks[peaks.metric == "ndcg"].set_index("k")["left_drop"]
    recall = peaks[peaks.metric == "recall"].set_index("k")["left_drop"]
    assert (ndcg < recall - 0.05).all()


def test_uniform_scores_agree_with_position_kernel():
    """Uniform.draw (i.i.d. U(0,1) scores, the score path) vs the position kernel:
    same law, different code paths; r within 5 SE (difference of two independent r)."""
    class IidScores:
        name = "iid"

        def draw(self, rng, n_rankings, n_pos, n_neg):
            return Uniform().draw(rng, n_rankings, n_pos, n_neg)

    betas = [0.00625, 0.05, 1.0]
    n = 8000
    a = C.topk_correlations(N_POS, N_NEG, n, [5, 50], betas, seed=1)
    b = C.topk_correlations(N_POS, N_NEG, n, [5, 50], betas, model=IidScores(), seed=2)
    se = (1 - a["r"] ** 2) * np.sqrt(2 / n)
    assert (np.abs(a["r"] - b["r"]) < 5 * se).all()


# ======================================================================================
# Bootstrap
# ======================================================================================
def test_weighted_statistics_equal_explicit_resamples():
    rng = np.random.default_rng(0)
    x = np.round(rng.random((3, 300)), 1)  # ties
    y = np.round(rng.random((2, 300)) + x[:2], 1)
    idx = rng.integers(0, 300, 300)
    w = np.bincount(idx, minlength=300).astype(float)
    np.testing.assert_allclose(C._weighted_corr(x, y, w), np.corrcoef(x[:, idx], y[:, idx])[:3, 3:],
                               atol=1e-12)
    ranks = C._average_ranks(C._dense_ids(x), w)
    np.testing.assert_allclose(ranks[:, idx], scipy.stats.rankdata(x[:, idx], axis=1), atol=1e-12)
    sp = C._rank_corr("spearman", C._dense_ids(x), C._dense_ids(y), w)
    ref = scipy.stats.spearmanr(x[:, idx].T, y[:, idx].T).statistic[:3, 3:]
    np.testing.assert_allclose(sp, ref, atol=1e-12)


@pytest.mark.parametrize("method", ["pearson", "spearman", "kendall"])
def test_bootstrap_intervals(method):
    n = 2000 if method != "kendall" else 300
    boot = 200 if method != "kendall" else 20
    kw = dict(metrics=("recall",), method=method, seed=5, bootstrap=boot)
    table = C.topk_correlations(N_POS, N_NEG, n, [20], [0.025, 1.0], **kw)
    assert {"ci_low", "ci_high"} <= set(table.columns)
    assert ((table.ci_low <= table.r) & (table.r <= table.ci_high)).all()
    assert table.equals(C.topk_correlations(N_POS, N_NEG, n, [20], [0.025, 1.0], **kw))
    if method == "pearson":  # width ~ 2 * 1.96 * (1 - r^2) / sqrt(n) (normal theory)
        width = (table.ci_high - table.ci_low) / (2 * 1.96 * (1 - table.r**2) / np.sqrt(n))
        assert width.between(0.7, 1.4).all(), width


# ======================================================================================
# Reproducibility across thread counts, seeds
# ======================================================================================
SCRIPT = """
import json
from simulations.correlation import topk_correlations
from simulations.rankings import Binormal
out = {}
out["uniform"] = topk_correlations(100, 300, 3000, [5, 20], [0.01, 0.1, 1.0], seed=7)["r"].tolist()
out["binormal"] = topk_correlations(50, 100, 2100, [5], [0.05, 1.0], model=Binormal(0.0, 2.0),
                                    seed=7)["r"].tolist()
out["spearman"] = topk_correlations(50, 100, 1500, [5], [0.05, 1.0], method="spearman",
                                    seed=7)["r"].tolist()
print(json.dumps({k: [float(v).hex() for v in vals] for k, vals in out.items()}))
"""


def run_with_threads(threads):
    env = dict(os.environ, NUMBA_NUM_THREADS=str(threads))
    env["PYTHONPATH"] = os.pathsep.join([str(REPO_ROOT), env.get("PYTHONPATH", "")])
    out = subprocess.run([sys.executable, "-c", SCRIPT], env=env, capture_output=True, text=True,
                         cwd=REPO_ROOT, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_identical_tables_with_one_and_two_threads():
    one, two = run_with_threads(1), run_with_threads(2)
    assert one == two
    here = C.topk_correlations(100, 300, 3000, [5, 20], [0.01, 0.1, 1.0], seed=7)["r"]
    assert [float(v).hex() for v in here] == one["uniform"]


def test_seed_types_in_study():
    args = (20, 60, 1500, [5], [0.1, 1.0])
    a = C.topk_correlations(*args, seed=3)
    assert a.equals(C.topk_correlations(*args, seed=np.random.SeedSequence(3)))
    assert not a.equals(C.topk_correlations(*args, seed=4))
    g = np.random.default_rng(1)
    b1, b2 = C.topk_correlations(*args, seed=g), C.topk_correlations(*args, seed=g)
    assert not b1.equals(b2)
    assert b1.equals(C.topk_correlations(*args, seed=np.random.default_rng(1)))


# ======================================================================================
# Bad input
# ======================================================================================
GOOD = dict(n_pos=5, n_neg=10, n_rankings=10, ks=[3], betas=[0.5])


@pytest.mark.parametrize("change, name", [
    (dict(n_pos=0), "n_pos"), (dict(n_neg=0), "n_neg"), (dict(n_pos=1.5), "n_pos"),
    (dict(ks=[16]), "ks"), (dict(ks=[0]), "ks"), (dict(ks=[2.5]), "ks"), (dict(ks=[]), "ks"),
    (dict(betas=[0.0]), "betas"), (dict(betas=[1.01]), "betas"), (dict(betas=[-0.2, 0.5]), "betas"),
    (dict(betas=[np.nan]), "betas"), (dict(n_rankings=2), "n_rankings"),
    (dict(model="gauss"), "model"), (dict(model=3), "model"), (dict(method="tau"), "method"),
    (dict(metrics=("mrrr",)), "metrics"), (dict(metrics=()), "metrics"), (dict(partial="twoway"), "partial"),
    (dict(partial="llpauc", alphas=1.0), "alphas"), (dict(bootstrap=0), "bootstrap"),
    (dict(bootstrap=10, ci=1.5), "ci"), (dict(seed=-3), "seed"),
])
def test_bad_input_names_the_argument(change, name):
    with pytest.raises(ValueError, match=name):
        C.topk_correlations(**{**GOOD, **change})


def test_peak_betas_rejects_other_tables():
    with pytest.raises(ValueError, match="table"):
        C.peak_betas(pd.DataFrame({"x": [1]}))
    with pytest.raises(ValueError, match="left_factor"):
        C.peak_betas(fig6_peaks()[0], left_factor=0.5)


# ======================================================================================
# Score-model sweep and its figure (smoke)
# ======================================================================================
def test_separation_sweep_cells_are_plain_studies():
    sweep = C.separation_sweep([0.0, 1.5], models=("binormal", "mixture"), spread=0.5, n_pos=30,
                               n_neg=90, n_rankings=600, ks=(3,), betas=[0.02, 0.2, 1.0], seed=4)
    assert len(sweep) == 2 * 2 * 2  # models x mus x metrics (recall, ndcg)
    cell = C.topk_correlations(30, 90, 600, [3], [0.02, 0.2, 1.0], model=Binormal(0.75, 2.25),
                               metrics=("recall", "ndcg"), seed=4)
    got = sweep[(sweep.model == "binormal") & (sweep.mu == 1.5)].reset_index(drop=True)
    expected = C.peak_betas(cell)
    np.testing.assert_allclose(got["peak_r"], expected["peak_r"], rtol=0, atol=0)
    with pytest.raises(ValueError, match="mu_low"):
        C.separation_sweep([1.0], models=("uniform",))
    with pytest.raises(ValueError, match="spread"):
        C.separation_sweep([1.0], spread=2.0)


def test_figures_draw_from_tables():
    import matplotlib.pyplot as plt

    from figures.correlation import plot_peak_beta_vs_k, plot_score_model_peaks, plot_topk_correlation

    table, peaks = fig6_peaks()
    for fig in (plot_topk_correlation(table), plot_peak_beta_vs_k(table),
                plot_score_model_peaks(peaks.assign(model="binormal", mu=0.0, spread=0.0),
                                       n_neg=N_NEG)):
        assert fig.axes
        plt.close(fig)
