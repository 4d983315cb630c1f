"""The data behind the theory figures, as tidy DataFrames (figures/ only draws them).

Each function is deterministic given its arguments (random ones take ``seed``) and cheap
(well under a second, except :func:`hardness_vs_k`, which trains 15 small models in about
15 s), so ``python -m figures`` and ``paper_checks.py`` can compute them, cache them as CSV
and redraw without recomputing.
"""
from __future__ import annotations

import itertools
from collections.abc import Sequence

import numpy as np
import pandas as pd

from simulations.correlation import separation_sweep, topk_correlations
from theory.bounds import topk_bounds
from theory.estimators import dns_mn_rank_probabilities, kl_dro, pair_losses, softmax_v_tau
from theory.metrics import auc, opauc, recall_at_k, roc_points
from training import sampling as S
from training.hardness import hardness_sweep

__all__ = [
    "dns_sampling_laws",
    "equal_auc_pair",
    "fig6_correlations",
    "hardness_vs_k",
    "roc_example",
    "sampling_laws",
    "score_model_peaks",
    "tau_vs_lambda",
    "theorem3_envelope",
]


def roc_example(n_pos: int = 30, n_neg: int = 90, separation: float = 1.2,
                seed: int = 0) -> pd.DataFrame:
    """ROC vertices of one binormal ranking (paper Fig. 2): columns fpr, tpr, auc."""
    rng = np.random.default_rng(seed)
    scores = np.concatenate([rng.normal(separation, 1.0, n_pos), rng.normal(0.0, 1.0, n_neg)])
    labels = np.arange(n_pos + n_neg) < n_pos
    fpr, tpr = roc_points(labels, scores)
    return pd.DataFrame({"fpr": fpr, "tpr": tpr, "auc": auc(labels, scores)})


def equal_auc_pair(n_pos: int = 6, n_neg: int = 20, beta: float = 0.2, n_candidates: int = 4000,
                   seed: int = 0) -> pd.DataFrame:
    """Two rankings with the same AUC and the most different OPAUC(beta) (paper Fig. 3).

    Draws ``n_candidates`` random rankings, groups them by AUC, and keeps the pair within a
    group with the largest OPAUC gap.  Columns: ranking ("A" has the larger OPAUC), fpr,
    tpr, auc, opauc (raw), labels (the ranking as a string of + and -, best first).
    """
    rng = np.random.default_rng(seed)
    n = n_pos + n_neg
    labels = np.zeros((n_candidates, n), dtype=bool)
    for row in labels:
        row[rng.choice(n, n_pos, replace=False)] = True
    scores = np.broadcast_to(-np.arange(n, dtype=float), labels.shape)
    aucs = auc(labels, scores)
    partial = opauc(labels, scores, beta)
    best, pair = -1.0, None
    for value in np.unique(np.round(aucs, 12)):
        members = np.flatnonzero(np.isclose(aucs, value, atol=1e-12))
        if members.size < 2:
            continue
        hi, lo = members[np.argmax(partial[members])], members[np.argmin(partial[members])]
        if partial[hi] - partial[lo] > best:
            best, pair = partial[hi] - partial[lo], (hi, lo)
    frames = []
    for name, idx in zip("AB", pair):
        fpr, tpr = roc_points(labels[idx], scores[idx])
        frames.append(pd.DataFrame({"ranking": name, "fpr": fpr, "tpr": tpr, "auc": aucs[idx],
                                    "opauc": partial[idx], "beta": beta,
                                    "labels": "".join("+" if x else "-" for x in labels[idx])}))
    return pd.concat(frames, ignore_index=True)


def theorem3_envelope(n_pos: int = 6, n_neg: int = 8, k: int = 3) -> pd.DataFrame:
    """Every ranking of a small case: raw OPAUC(K/N-) against Recall@K, with Eqs. 19-20.

    Columns: kind ("ranking" rows: opauc, recall, count = number of rankings with that pair;
    "bound" rows: opauc on the grid of attainable counts, recall_low, recall_high).
    """
    n = n_pos + n_neg
    beta = k / n_neg
    scores = -np.arange(n, dtype=float)
    labels = np.zeros((0, n), dtype=bool)
    rows = []
    for positions in itertools.combinations(range(n), n_pos):
        row = np.zeros(n, dtype=bool)
        row[list(positions)] = True
        rows.append(row)
    labels = np.array(rows)
    score_matrix = np.broadcast_to(scores, labels.shape)
    points = pd.DataFrame({"opauc": opauc(labels, score_matrix, beta),
                           "recall": recall_at_k(labels, score_matrix, k)})
    points = points.round(12).value_counts().rename("count").reset_index()
    points["kind"] = "ranking"
    counts = np.arange(0, n_pos * k + 1)
    grid = counts / (n_pos * n_neg)
    bounds = topk_bounds(grid, n_pos, n_neg, k)
    curve = pd.DataFrame({"kind": "bound", "opauc": grid, "recall_low": bounds.recall_low,
                          "recall_high": bounds.recall_high})
    out = pd.concat([points, curve], ignore_index=True)
    out["n_pos"], out["n_neg"], out["k"] = n_pos, n_neg, k
    return out


def tau_vs_lambda(rhos: Sequence[float] | None = None, n_neg: int = 200, n_contexts: int = 20,
                  seed: int = 0) -> pd.DataFrame:
    """Eq. 25's tau against the exact KL-DRO lambda over rho (Theorem 2).

    Losses are BPR losses of one positive against Gaussian negative scores, one context per
    draw.  Columns: context, rho, lam (exact, from ``kl_dro``), tau (Eq. 25), ratio tau / lam.
    """
    rhos = np.geomspace(1e-3, 0.9 * np.log(n_neg), 40) if rhos is None else np.asarray(rhos, float)
    rng = np.random.default_rng(seed)
    records = []
    for context in range(n_contexts):
        losses = pair_losses(rng.normal(1.0, 1.0, 1), rng.normal(0.0, 1.0, n_neg))[0]
        for rho in rhos:
            lam = kl_dro(losses, float(rho))[1]
            tau = float(softmax_v_tau(losses, float(rho)))
            records.append({"context": context, "rho": float(rho), "lam": lam, "tau": tau,
                            "ratio": tau / lam if lam > 0 else np.inf})
    return pd.DataFrame.from_records(records)


def dns_sampling_laws(n_neg: int = 1000,
                      settings: Sequence[tuple[int, int]] = ((1, 10), (5, 10), (5, 50), (5, 200),
                                                            (20, 200)),
                      replace: bool = True) -> pd.DataFrame:
    """Exact cumulative sampling law of DNS(M,N) over negative ranks (paper Fig. 7).

    Columns: m, n, rank (1 = highest-scored), quantile = rank / n_neg, probability, cdf.
    """
    frames = []
    for m, n in settings:
        prob = dns_mn_rank_probabilities(n_neg, m, n, replace=replace)
        ranks = np.arange(1, n_neg + 1)
        frames.append(pd.DataFrame({"m": m, "n": n, "rank": ranks, "quantile": ranks / n_neg,
                                    "probability": prob, "cdf": np.cumsum(prob)}))
    return pd.concat(frames, ignore_index=True)


def sampling_laws(n_neg: int = 1000,
                  dns_settings: Sequence[tuple[int, int]] = ((1, 200), (5, 200), (20, 200), (5, 50)),
                  rhos: Sequence[float] = (0.01, 0.1, 1.0, 10.0, 100.0), n: int = 200,
                  pos_score: float = 1.0, n_repeats: int = 20_000, seed: int = 0) -> pd.DataFrame:
    """Paper Fig. 7: how much each sampler draws from each negative rank.

    DNS(M, N): the exact law (theory) and the sampler's Monte Carlo law
    (:func:`training.sampling.empirical_rank_distribution`) side by side.  Softmax-v(rho,
    N): Monte Carlo only (its law has no closed form).  The user's negatives have standard
    normal scores (drawn from ``seed``), the positive scores ``pos_score``.

    Columns: family ("DNS" or "Softmax-v"), label, source ("exact" or "sampled"), rank
    (1 = highest-scored), quantile = rank / n_neg, probability, cdf.
    """
    rng = np.random.default_rng(seed)
    scores = rng.standard_normal(n_neg)
    child = np.random.SeedSequence(rng.integers(2**63)).spawn(len(dns_settings) + len(rhos))
    ranks = np.arange(1, n_neg + 1)
    frames = []

    def add(family, label, source, prob):
        frames.append(pd.DataFrame({"family": family, "label": label, "source": source,
                                    "rank": ranks, "quantile": ranks / n_neg,
                                    "probability": prob, "cdf": np.cumsum(prob)}))

    exact = dns_sampling_laws(n_neg, dns_settings)
    for (m, pool), ss in zip(dns_settings, child):
        label = f"DNS(M={m}, N={pool})"
        add("DNS", label, "exact",
            exact[(exact["m"] == m) & (exact["n"] == pool)]["probability"].to_numpy())
        add("DNS", label, "sampled", S.empirical_rank_distribution(
            S.dns(m, pool), scores, pos_score, n_repeats=n_repeats, seed=ss))
    for rho, ss in zip(rhos, child[len(dns_settings):]):
        add("Softmax-v", f"Softmax-v(ρ={rho:g}, N={n})", "sampled", S.empirical_rank_distribution(
            S.softmax_v(rho, n), scores, pos_score, n_repeats=n_repeats, seed=ss))
    return pd.concat(frames, ignore_index=True)


def fig6_correlations(n_pos: int = 200, n_neg: int = 800, n_rankings: int = 20_000,
                      ks: Sequence[int] = (5, 10, 20, 50, 100), seed: int = 0) -> pd.DataFrame:
    """Paper Fig. 6: Pearson r of Top-K metrics with OPAUC(beta) over uniform rankings.

    The table of :func:`simulations.correlation.topk_correlations` with its configuration
    also as columns (n_pos, n_neg, n_rankings), so that it survives a CSV round trip.
    """
    table = topk_correlations(n_pos, n_neg, n_rankings, ks, seed=seed)
    return table.assign(n_pos=n_pos, n_neg=n_neg, n_rankings=n_rankings)


def score_model_peaks(mus: Sequence[float] = (0.0, 0.5, 1.0, 1.5, 2.0, 3.0),
                      n_rankings: int = 5_000, seed: int = 0, spread: float = 0.0) -> pd.DataFrame:
    """Beyond the paper: peak beta and peak r against the separation mu of score models.

    The :func:`simulations.correlation.separation_sweep` table of the binormal, Student-t and
    mixture models; with ``spread > 0`` followed by the binormal model with mu drawn per
    ranking from U[(1 - spread) mu, (1 + spread) mu] (the README figure's last row).
    """
    sweep = separation_sweep(mus, n_rankings=n_rankings, seed=seed)
    if spread:
        varied = separation_sweep(mus, models=("binormal",), spread=spread,
                                  n_rankings=n_rankings, seed=seed)
        sweep = pd.concat([sweep, varied], ignore_index=True)
    return sweep.assign(n_neg=800)


def hardness_vs_k(seed: int = 0, n_users: int = 600, n_items: int = 400) -> pd.DataFrame:
    """Paper Figs. 8-11 on planted data: Recall/NDCG at K = 5, 20, 50 of MF trained over
    grids of M, N (DNS) and rho (Softmax-v); :func:`training.hardness.hardness_sweep`."""
    return hardness_sweep(int(seed), ks=(5, 20, 50), n_users=n_users, n_items=n_items)
