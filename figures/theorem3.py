"""Theorem 3: Recall@K against OPAUC(K/N-) over every ranking of a small case, with Eqs. 19-20."""
from __future__ import annotations

import pandas as pd
from matplotlib.figure import Figure

from figures.style import palette, subplots, themed


@themed
def plot_theorem3_envelope(data: pd.DataFrame) -> Figure:
    """Each attainable (OPAUC(K/N-), Recall@K) pair, sized by how many rankings reach it,
    between the step bounds of Eqs. 19-20 (a :func:`figures.data.theorem3_envelope` table)."""
    colors = palette(3)
    points = data[data["kind"] == "ranking"]
    bound = data[data["kind"] == "bound"].sort_values("opauc")
    n_pos, n_neg, k = (int(data[c].iloc[0]) for c in ("n_pos", "n_neg", "k"))
    fig, ax = subplots(figsize=(6.5, 5))
    sizes = 20 + 200 * points["count"] / points["count"].max()
    ax.scatter(points["opauc"], points["recall"], s=sizes, color=colors[0], alpha=0.7,
               label="rankings (size = how many)", zorder=3)
    ax.step(bound["opauc"], bound["recall_high"], where="post", color=colors[1], lw=2,
            label="upper bound (Eq. 19-20)")
    ax.step(bound["opauc"], bound["recall_low"], where="post", color=colors[2], lw=2,
            label="lower bound (Eq. 19-20)")
    ax.set(xlabel=f"raw OPAUC(K/N-) with K/N- = {k}/{n_neg}", ylabel=f"Recall@{k}",
           title=f"Theorem 3: every ranking of N+={n_pos}, N-={n_neg}")
    ax.legend(loc="upper left", fontsize=8)
    return fig
