"""Theorem 2, Eq. 25: the Softmax-v temperature tau against the exact KL-DRO lambda."""
from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from figures.style import palette, subplots, themed


@themed
def plot_tau_vs_lambda(data: pd.DataFrame) -> Figure:
    """Eq. 25's tau over the exact KL-DRO lambda against rho, one line per context and
    their median (a :func:`figures.data.tau_vs_lambda` table)."""
    colors = palette(2)
    fig, ax = subplots(figsize=(6.5, 5))
    finite = data[np.isfinite(data["ratio"])]
    for _, part in finite.groupby("context"):
        ax.plot(part["rho"], part["ratio"], color=colors[0], alpha=0.25, lw=1)
    median = finite.groupby("rho")["ratio"].median()
    ax.plot(median.index, median.values, color=colors[1], lw=2.5, label="median over contexts")
    ax.axhline(1.0, color="black", lw=1, ls="--")
    ax.set(xscale="log", yscale="log", xlabel="ρ (KL radius)", ylabel="τ (Eq. 25) / exact λ (log)",
           title="Eq. 25 is exact only as ρ → 0")
    ax.legend(loc="best")
    return fig
