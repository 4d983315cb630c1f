"""Paper Figs. 8-11: the best sampler hardness against K (Guideline 2), from training."""
from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from figures.style import palette, subplots, themed

_TITLES = {"M": "DNS(M, N=50): harder = smaller M", "N": "DNS(M=5, N): harder = larger N",
           "rho": "Softmax-v(ρ, N=50): harder = larger ρ"}
_AXES = {"M": "M (top M of the pool)", "N": "N (pool size)", "rho": "ρ (KL radius)"}


@themed
def plot_hardness_vs_k(data: pd.DataFrame, metric: str = "recall",
                       titles: dict[str, str] | None = None,
                       suptitle: str | None = None) -> Figure:
    """Rows: in-sample (training interactions) and held-out; columns: the M, N and rho
    grids.  Each line is one K: the metric relative to its best over the grid, the best
    value starred.  ``data`` has the columns of
    :func:`training.hardness.hardness_sweep` (any subset of grids and splits);
    ``titles`` maps a grid to its panel title."""
    titles = dict(_TITLES, **(titles or {}))
    grids = [g for g in ("M", "N", "rho") if g in set(data["grid"])]
    splits = [s for s in ("train", "held-out") if s in set(data["split"])]
    ks = sorted(set(data["k"]))
    colors = palette(len(ks))
    fig, axes = subplots(len(splits), len(grids), figsize=(5 * len(grids), 4.2 * len(splits)),
                         squeeze=False, sharey="row")
    for r, split in enumerate(splits):
        for c, grid in enumerate(grids):
            ax = axes[r, c]
            part = data[(data["grid"] == grid) & (data["split"] == split)]
            for n, (color, k) in enumerate(zip(colors, ks)):
                line = part[part["k"] == k].sort_values("value")
                rel = line[metric].to_numpy() / line[metric].max()
                ax.plot(line["value"], rel, "-o", color=color, ms=5, label=f"K = {k}")
                best = int(np.argmax(rel))
                # Shrinking stars, so that the bests of several K at one value stay visible.
                ax.plot(line["value"].iloc[best], 1.0, "*", color=color, ms=24 - 6 * n,
                        mec="black", zorder=3 + n)
            ax.set(xscale="log", title=titles.get(grid, grid) if r == 0 else None,
                   xlabel=_AXES.get(grid, grid) if r == len(splits) - 1 else None)
            values = sorted(set(part["value"]))  # ticks at the grid's values, not 10^k
            ax.set_xticks(values, [f"{v:g}" for v in values])
            ax.minorticks_off()
            if c == 0:
                where = "training interactions" if split == "train" else "held-out split"
                ax.set_ylabel(f"{metric.capitalize()}@K / best\n({where})")
    axes[0, 0].legend(loc="best", fontsize=8)  # least overlap with the curves
    if suptitle is None:
        seed = int(data["seed"].iloc[0]) if "seed" in data else 0
        suptitle = f"Best hardness vs K on planted data (seed {seed}; stars = best per K)"
    fig.suptitle(suptitle, y=1.0)
    fig.tight_layout()
    return fig
