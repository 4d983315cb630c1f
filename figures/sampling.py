"""Paper Fig. 7: cumulative sampling probability over negatives sorted by score."""
from __future__ import annotations

import matplotlib.pyplot as plt
import pandas as pd

from figures.style import apply_style, palette


def plot_sampling_cdfs(data: pd.DataFrame):
    """One curve per DNS(M,N) setting; harder samplers rise faster."""
    apply_style()
    settings = list(data.groupby(["m", "n"], sort=False))
    colors = palette(len(settings))
    fig, ax = plt.subplots(figsize=(6.5, 5))
    for color, ((m, n), part) in zip(colors, settings):
        ax.plot(part["quantile"], part["cdf"], color=color, lw=2, label=f"DNS(M={m}, N={n})")
    ax.set(xscale="log", xlabel="negative's score rank / n_neg (1 = hardest)",
           ylabel="cumulative sampling probability", ylim=(0, 1.02),
           title="Smaller M or larger N: harder negatives")
    ax.legend(loc="lower right", fontsize=8)
    return fig
