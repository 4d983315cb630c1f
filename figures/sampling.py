"""Paper Fig. 7: cumulative sampling probability over negatives sorted by score."""
from __future__ import annotations

import pandas as pd
from matplotlib.figure import Figure

from figures.style import palette, subplots, themed


@themed
def plot_sampling_laws(data: pd.DataFrame) -> Figure:
    """Left: DNS(M,N), exact law (lines) and the sampler's Monte Carlo law (dots);
    right: Softmax-v(rho, N), Monte Carlo.  Harder samplers rise faster."""
    fig, axes = subplots(1, 2, figsize=(12, 5), sharey=True)
    for ax, family in zip(axes, ("DNS", "Softmax-v")):
        part = data[data["family"] == family]
        labels = list(dict.fromkeys(part["label"]))
        for color, label in zip(palette(len(labels)), labels):
            curve = part[part["label"] == label]
            exact = curve[curve["source"] == "exact"]
            sampled = curve[curve["source"] == "sampled"]
            if len(exact):
                ax.plot(exact["quantile"], exact["cdf"], color=color, lw=2, label=label)
                thin = sampled.iloc[:: max(1, len(sampled) // 25)]
                ax.plot(thin["quantile"], thin["cdf"], "o", color=color, ms=4)
            else:
                ax.plot(sampled["quantile"], sampled["cdf"], color=color, lw=2, label=label)
        ax.set(xscale="log", xlabel="negative's score rank / n_neg (1 = hardest)", ylim=(0, 1.02))
        ax.legend(loc="lower right", fontsize=8)
    axes[0].set(ylabel="cumulative sampling probability",
                title="DNS: smaller M or larger N is harder\n(lines exact, dots sampled)")
    axes[1].set(title="Softmax-v: larger ρ is harder\n(sampled)")
    return fig
