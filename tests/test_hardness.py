"""Hardness sweeps on planted data (paper Figs. 8-11, Guideline 2) and the Fig. 7 sampling laws."""
import numpy as np
import pandas as pd
import pytest

from checks.training import guideline2_verdict
from figures import data as figure_data
from theory.estimators import dns_mn_rank_probabilities
from training import hardness as H


def _brute_recall_ndcg(scores, target, k):
    """Recall@k (hits / number of targets) and NDCG@k of one user, by sorting (no ties)."""
    top = np.argsort(-scores, kind="stable")[:k]
    hits = np.isin(top, target)
    dcg = np.sum(hits / np.log2(np.arange(2, k + 2)))
    idcg = np.sum(1 / np.log2(np.arange(2, min(k, target.size) + 2)))
    return hits.sum() / target.size, dcg / idcg


def test_sweep_rows_match_a_brute_force_evaluation_of_the_same_models():
    small = dict(n_users=80, n_items=60)
    sweep = H.hardness_sweep(3, grids=("M",), ks=(5, 20), **small)
    assert len(sweep) == 5 * 2 * 2  # values x splits x ks
    train, test = H.planted_split(3, **small)
    models = H.train_grid(train, test, H.GRIDS["M"], seed=3)  # same seed: same models
    for value in (1, 25):
        model = models[value]
        scores = model.user_factors.astype(float) @ model.item_factors.astype(float).T
        for k in (5, 20):
            for split, target_matrix, masked in (("train", train, None), ("held-out", test, train)):
                rec, ndcg = [], []
                for u in range(scores.shape[0]):
                    target = target_matrix[u].indices
                    if target.size == 0:
                        continue
                    s = scores[u].copy()
                    if masked is not None:
                        s[masked[u].indices] = -np.inf
                    r, n = _brute_recall_ndcg(s, target, k)
                    rec.append(r)
                    ndcg.append(n)
                row = sweep[(sweep.value == value) & (sweep.k == k) & (sweep.split == split)]
                assert row["recall"].item() == pytest.approx(np.mean(rec), abs=1e-12)
                assert row["ndcg"].item() == pytest.approx(np.mean(ndcg), abs=1e-12)


def test_best_per_k_is_the_argmax_of_each_group():
    rng = np.random.default_rng(0)
    rows = [{"grid": g, "value": v, "split": s, "k": k, "recall": rng.random(), "ndcg": rng.random()}
            for g in ("M", "rho") for v in (1.0, 2.0, 3.0) for s in ("train", "held-out")
            for k in (5, 50)]
    sweep = pd.DataFrame(rows)
    for metric in ("recall", "ndcg"):
        table = H.best_per_k(sweep, metric, "held-out")
        for row in table.itertuples():
            group = [r for r in rows if r["grid"] == row.grid and r["k"] == row.k
                     and r["split"] == "held-out"]
            assert row.best == max(group, key=lambda r: r[metric])["value"]


def test_bad_arguments_are_value_errors():
    with pytest.raises(ValueError, match="grids must be among"):
        H.hardness_sweep(0, grids=("M", "tau"))
    sweep = pd.DataFrame({"grid": ["M"], "value": [1.0], "split": ["train"], "k": [5],
                          "recall": [0.1], "ndcg": [0.1]})
    with pytest.raises(ValueError, match="metric must be"):
        H.best_per_k(sweep, "precision")
    with pytest.raises(ValueError, match="split 'held-out' has no rows"):
        H.best_per_k(sweep, "recall", "held-out")


def test_hardness_index_and_guideline2_verdict():
    assert [H.hardness_index("M", m) for m in (25, 10, 5, 2, 1)] == [0, 1, 2, 3, 4]
    assert [H.hardness_index("rho", r) for r in (0.01, 0.1, 1.0, 10.0, 100.0)] == [0, 1, 2, 3, 4]
    assert guideline2_verdict({"M": [1, 5, 25], "N": [200, 50, 20], "rho": [10, 1, 0.1]})
    assert not guideline2_verdict({"M": [5, 5, 5]})          # a tie is not the trend
    assert not guideline2_verdict({"N": [20, 50, 200]})      # reversed


def test_guideline2_in_sample_for_pool_size_and_rho():
    """In-sample Recall@K (training interactions) on planted data, seed 0: the best N grows
    and the best rho grows as K shrinks (K = 5 vs 50).  Measured with seeds 0-3: best N at
    K = 5/20/50 was 200/50/20 and best rho 1/0.01/0.01 in all four.  (The M grid is
    test_trainer's check 5.)  Training is deterministic for a seed, so this is exact."""
    sweep = H.hardness_sweep(0, grids=("N", "rho"), ks=(5, 50))
    table = H.best_per_k(sweep, "recall", "train")
    best = {g: list(table[table.grid == g].sort_values("k")["best"]) for g in ("N", "rho")}
    assert guideline2_verdict(best), best


def test_sampling_laws_dns_sampled_matches_exact_and_softmax_orders_by_rho():
    """The DNS rows: the sampler's cumulative law is within 5 binomial standard errors of the
    exact law at every rank (20,000 repeats, so 5 SE < 0.018); the Softmax-v rows are
    distributions whose top-1% mass grows with rho."""
    reps = 20_000
    data = figure_data.sampling_laws(n_neg=300, dns_settings=((1, 20), (4, 40)),
                                     rhos=(0.01, 1.0, 100.0), n=50, n_repeats=reps, seed=4)
    for (m, n) in ((1, 20), (4, 40)):
        part = data[data.label == f"DNS(M={m}, N={n})"]
        exact = part[part.source == "exact"]["cdf"].to_numpy()
        sampled = part[part.source == "sampled"]["cdf"].to_numpy()
        np.testing.assert_allclose(exact, np.cumsum(dns_mn_rank_probabilities(300, m, n)))
        # Each repeat credits a share in [0, 1] of its pool's weight to the top r ranks, so
        # the variance of the mean is at most F (1 - F) / reps (binomial bound).
        f = np.clip(exact, 0.0, 1.0)
        se = np.sqrt(f * (1 - f) / reps)
        assert np.all(np.abs(sampled - exact) <= 5 * se + 1e-9)
    top = []
    for rho in (0.01, 1.0, 100.0):
        part = data[data.label == f"Softmax-v(ρ={rho:g}, N=50)"]
        assert part["probability"].sum() == pytest.approx(1.0, abs=1e-9)
        top.append(part["cdf"].to_numpy()[2])  # mass on the top 1% (3 of 300)
    assert top[0] < top[1] < top[2], top
    # Chance level: a uniform pool with uniform weights puts 1% of the mass on the top 1%.
    assert top[0] == pytest.approx(0.01, abs=0.01)


def test_sampling_laws_are_reproducible_for_a_seed():
    a = figure_data.sampling_laws(n_neg=100, dns_settings=((2, 10),), rhos=(1.0,), n=10,
                                  n_repeats=2000, seed=7)
    b = figure_data.sampling_laws(n_neg=100, dns_settings=((2, 10),), rhos=(1.0,), n=10,
                                  n_repeats=2000, seed=7)
    pd.testing.assert_frame_equal(a, b)
