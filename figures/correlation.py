"""Figures of the correlation study (paper Fig. 6, and the score models beyond it).

Plotting functions take the DataFrames of :mod:`simulations.correlation` and return a
matplotlib Figure (seaborn colorblind palette, log-x beta axis, peaks marked), in whatever
style is in force (:func:`figures.style.theme` in the paper figures; matplotlib's defaults in
the README figures):

* :func:`plot_topk_correlation`: r(Top-K metric, OPAUC(beta)) against beta, one panel per
  metric, one line per K (paper Fig. 6), optionally with the peak-beta(K) panel;
* :func:`plot_peak_beta_vs_k`: the peak beta against K, with the line beta = K / N-;
* :func:`plot_score_model_peaks`: peak beta, peak r and r with AUC against the separation mu
  of score models (a :func:`simulations.correlation.separation_sweep` table).

They are drawn and saved by the figure catalog (:mod:`figures.catalog`): ``python -m figures``
(with ``--readme`` for the README's ``docs/fig6_uniform.png`` and ``docs/score_models.png``)
and ``paper_checks.py``.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from figures.style import subplots
from theory.validation import check_choice

__all__ = ["plot_peak_beta_vs_k", "plot_score_model_peaks", "plot_topk_correlation"]

_METRIC_LABEL = {"precision": "Precision@K", "recall": "Recall@K", "ndcg": "NDCG@K",
                 "hit_rate": "Hit rate@K"}


def _k_colors(ks):
    return dict(zip(sorted(ks), sns.color_palette("colorblind", len(ks))))


def _peaks(table):
    from simulations.correlation import peak_betas

    return peak_betas(table)


def plot_topk_correlation(table: pd.DataFrame, metrics: Sequence[str] | None = None,
                          peak_panel: bool = True, title: str | None = None) -> Figure:
    """Paper Fig. 6: correlation of each Top-K metric with OPAUC(beta), against beta.

    ``table``: a :func:`~simulations.correlation.topk_correlations` table (OPAUC family).
    One panel per metric, one line per K; a dot marks each curve's peak, a dotted vertical
    line K / N- (when ``table.attrs`` records n_neg), and beta = 1 is AUC.  With
    ``peak_panel`` a last panel draws peak beta against K.
    """
    if "partial" in table.columns:
        table = table[table["partial"] == "opauc"]
    metrics = list(dict.fromkeys(table["metric"])) if metrics is None else list(metrics)
    ks = sorted(table["k"].unique())
    colors = _k_colors(ks)
    n_neg = table.attrs.get("n_neg")
    peaks = _peaks(table)
    n_panels = len(metrics) + (1 if peak_panel else 0)
    fig, axes = subplots(1, n_panels, figsize=(3.4 * n_panels, 3.3), constrained_layout=True)
    axes = np.atleast_1d(axes)
    for ax, metric in zip(axes, metrics):
        for k in ks:
            part = table[(table.metric == metric) & (table.k == k)].sort_values("beta")
            ax.plot(part.beta, part.r, color=colors[k], lw=1.6, label=f"K={k}")
            if "ci_low" in part:
                ax.fill_between(part.beta, part.ci_low, part.ci_high, color=colors[k], alpha=0.2, lw=0)
            pk = peaks[(peaks.metric == metric) & (peaks.k == k)].iloc[0]
            ax.plot(pk.peak_beta, pk.peak_r, "o", color=colors[k], ms=5, mec="black", mew=0.6)
            if n_neg:
                ax.axvline(k / n_neg, color=colors[k], ls=":", lw=0.9)
        ax.set_xscale("log")
        ax.set_ylim(0, 1)
        ax.set_xlabel(r"$\beta$ (FPR limit; $\beta$ = 1 is AUC)")
        ax.set_title(f"{_METRIC_LABEL.get(metric, metric)} vs OPAUC($\\beta$)", fontsize=10)
        ax.grid(True, which="major", alpha=0.3)
    axes[0].set_ylabel("correlation r across rankings")
    axes[0].legend(fontsize=8, loc="lower right" if n_neg is None else "upper right", frameon=False)
    if peak_panel:
        _draw_peak_beta_vs_k(axes[-1], peaks, n_neg)
    attrs = table.attrs
    if title is None and attrs:
        title = (f"{attrs.get('method', 'pearson').capitalize()} r over {attrs.get('n_rankings', 0):,} "
                 f"{'uniformly random' if 'Uniform' in str(attrs.get('model')) else ''} rankings, "
                 f"N+ = {attrs.get('n_pos')}, N- = {attrs.get('n_neg')}; dot: peak, dotted: "
                 f"$\\beta$ = K/N-")
    if title:
        fig.suptitle(title, fontsize=10)
    return fig


def _draw_peak_beta_vs_k(ax: Axes, peaks: pd.DataFrame, n_neg: int | None) -> None:
    markers = dict(zip(["precision", "recall", "ndcg", "hit_rate"], ["s", "o", "^", "D"]))
    palette = dict(zip(["precision", "recall", "ndcg", "hit_rate"],
                       sns.color_palette("colorblind", 8)[4:8]))
    for metric, part in peaks.groupby("metric", sort=False):
        part = part.sort_values("k")
        label = _METRIC_LABEL.get(metric, metric)
        if metric == "precision" and "recall" in set(peaks.metric):
            label += " (= Recall: N+ fixed)"
        ax.plot(part.k, part.peak_beta, marker=markers.get(metric, "o"), ms=5, lw=1.2,
                color=palette.get(metric), label=label,
                alpha=0.9 if metric != "precision" else 0.6)
    if n_neg:
        k = np.array(sorted(peaks.k.unique()), dtype=float)
        ax.plot(k, k / n_neg, "k--", lw=1, label=r"$\beta$ = K/N-")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("K")
    ax.set_ylabel(r"peak $\beta$")
    ax.set_title(r"peak $\beta$ grows with K", fontsize=10)
    ax.legend(fontsize=8, frameon=False)
    ax.grid(True, which="major", alpha=0.3)


def plot_peak_beta_vs_k(peaks: pd.DataFrame, n_neg: int | None = None) -> Figure:
    """Peak beta against K per metric (log-log), with beta = K / N- dashed.

    ``peaks``: a :func:`~simulations.correlation.peak_betas` table, or a correlation table
    (its peaks are computed; n_neg then comes from its attrs).
    """
    if "peak_beta" not in peaks.columns:
        n_neg = n_neg or peaks.attrs.get("n_neg")
        peaks = _peaks(peaks)
    fig, ax = subplots(figsize=(4.2, 3.4), constrained_layout=True)
    _draw_peak_beta_vs_k(ax, peaks, n_neg)
    return fig


def plot_score_model_peaks(sweep: pd.DataFrame, metric: str = "recall", n_neg: int | None = None,
                           min_peak_r: float = 0.3) -> Figure:
    """Score models: peak beta, peak r and r with AUC against the separation mu.

    ``sweep``: a :func:`~simulations.correlation.separation_sweep` table.  One row of panels
    per (model, spread), one line per K; in the peak-beta panels the dotted lines are
    K / N- and the grey band is below the grid's smallest beta (1 / N- by default).  A peak
    beta whose peak r is below ``min_peak_r`` is not drawn: the Top-K metric is then nearly
    constant across rankings and its "best beta" is noise.
    """
    check_choice(metric, "metric", dict.fromkeys(sweep.metric))  # the metrics of the table
    data = sweep[sweep.metric == metric]
    rows = list(dict.fromkeys(zip(data.model, data.spread)))
    ks = sorted(data.k.unique())
    colors = _k_colors(ks)
    fig, axes = subplots(len(rows), 3, figsize=(10.5, 2.35 * len(rows) + 0.5), sharex=True,
                         constrained_layout=True, squeeze=False)
    names = {"binormal": "binormal N(mu,1) vs N(0,1)", "student_t": "Student-t (df 3), shift mu",
             "mixture": "binormal + 10% hard negatives ~ N(mu,1)"}
    for row, (model, spread) in zip(axes, rows):
        cell = data[(data.model == model) & (data.spread == spread)]
        for k in ks:
            part = cell[cell.k == k].sort_values("mu")
            peak_beta = part.peak_beta.where(part.peak_r >= min_peak_r)
            row[0].plot(part.mu, peak_beta, "-o", ms=3, color=colors[k], label=f"K={k}")
            row[1].plot(part.mu, part.peak_r, "-o", ms=3, color=colors[k])
            row[2].plot(part.mu, part.r_auc, "-o", ms=3, color=colors[k])
            if n_neg:
                row[0].axhline(k / n_neg, color=colors[k], ls=":", lw=0.9)
        if n_neg:
            row[0].axhspan(1e-9, 1.0 / n_neg, color="0.85", lw=0)
            row[0].set_ylim(0.5 / n_neg, 1.0)
        row[0].set_yscale("log")
        row[1].set_ylim(0, 1)
        row[2].set_ylim(0, 1)
        label = names.get(model, model)
        if spread > 0:
            label += f",\nmu per ranking ~ U[{1 - spread:g} mu, {1 + spread:g} mu]"
        row[0].set_ylabel(label, fontsize=8)
        for ax in row:
            ax.grid(True, alpha=0.3)
    axes[0, 0].set_title(r"peak $\beta$ (dotted: K/N-)", fontsize=10)
    axes[0, 1].set_title(r"peak r = max over $\beta$", fontsize=10)
    axes[0, 2].set_title(r"r with AUC ($\beta$ = 1)", fontsize=10)
    axes[0, 0].legend(fontsize=7, frameon=False, ncol=2)
    for ax in axes[-1]:
        ax.set_xlabel("separation mu")
    fig.suptitle(f"{_METRIC_LABEL.get(metric, metric)} vs OPAUC($\\beta$) under score models", fontsize=10)
    return fig
