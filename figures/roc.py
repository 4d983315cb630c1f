"""Paper Figs. 2 and 3: AUC versus OPAUC(beta) on the ROC curve."""
from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from figures.style import palette, subplots, themed


def _clip_curve(fpr, tpr, beta):
    """The ROC polyline restricted to FPR <= beta (the OPAUC region's upper edge)."""
    cut = np.searchsorted(fpr, beta, side="right")
    return np.append(fpr[:cut], beta), np.append(tpr[:cut], np.interp(beta, fpr, tpr))


@themed
def plot_roc_opauc(data: pd.DataFrame, beta: float = 0.2) -> Figure:
    """Fig. 2: one ROC curve; the AUC region and the OPAUC(beta) region shaded."""
    colors = palette(3)
    fpr, tpr = data["fpr"].to_numpy(), data["tpr"].to_numpy()
    fig, ax = subplots(figsize=(6, 5.5))
    ax.fill_between(fpr, tpr, color=colors[0], alpha=0.18, step=None,
                    label=f"AUC = {data['auc'].iloc[0]:.3f}")
    xs, ys = _clip_curve(fpr, tpr, beta)
    area = np.trapezoid(ys, xs)
    ax.fill_between(xs, ys, color=colors[1], alpha=0.55, label=f"OPAUC({beta:g}) = {area:.3f} (raw)")
    ax.plot(fpr, tpr, color="black", lw=2)
    ax.axvline(beta, color=colors[1], ls="--", lw=1.5)
    ax.plot([0, 1], [0, 1], color="grey", lw=1, ls=":")
    ax.set(xlabel="FPR", ylabel="TPR", xlim=(0, 1), ylim=(0, 1.01),
           title="AUC integrates the whole ROC;\nOPAUC(β) only FPR ≤ β")
    ax.legend(loc="lower right")
    return fig


@themed
def plot_equal_auc(data: pd.DataFrame) -> Figure:
    """Fig. 3: two rankings with equal AUC but different OPAUC(beta)."""
    colors = palette(2)
    beta = float(data["beta"].iloc[0])
    fig, ax = subplots(figsize=(6, 5.5))
    for color, (name, part) in zip(colors, data.groupby("ranking", sort=True)):
        fpr, tpr = part["fpr"].to_numpy(), part["tpr"].to_numpy()
        xs, ys = _clip_curve(fpr, tpr, beta)
        ax.fill_between(xs, ys, color=color, alpha=0.3)
        ax.plot(fpr, tpr, color=color, lw=2.2,
                label=f"{name}: {part['labels'].iloc[0][:14]}…  AUC {part['auc'].iloc[0]:.3f}, "
                      f"OPAUC {part['opauc'].iloc[0]:.3f}")
    ax.axvline(beta, color="grey", ls="--", lw=1.2)
    ax.set(xlabel="FPR", ylabel="TPR", xlim=(0, 1), ylim=(0, 1.01),
           title=f"Same AUC, different OPAUC({beta:g})")
    ax.legend(loc="lower right", fontsize=8)
    return fig
