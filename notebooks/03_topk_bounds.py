import marimo

__generated_with = "0.25.2"
app = marimo.App(width="medium", app_title="3. Top-K bounds from OPAUC")

with app.setup:
    import _lesson as L  # display helpers beside the lesson (marimo puts its folder on sys.path)
    import marimo as mo
    import numpy as np

    from figures.data import theorem3_envelope
    from theory.bounds import extremal_rankings, topk_bounds

    L.one_numba_thread()


@app.cell(hide_code=True)
def _():
    mo.md(r"""
    # 3. Top-K bounds from OPAUC (Theorem 3)

    Take a tiny case, N+ positives and N− negatives, and enumerate **every** ranking. Each dot
    below is a pair (OPAUC(β = K/N−), Recall@K) that some rankings reach; the two step curves
    are the paper's bounds (Eqs. 19-20). Every dot lies between them: knowing OPAUC at
    β = K/N− pins Recall@K (and Precision@K) into a narrow range. Pick an OPAUC value and read
    the range off.
    """)
    return


@app.cell
def _():
    n_pos_slider = mo.ui.slider(1, 8, step=1, value=6, show_value=True, label="N+ (positives)")
    n_neg_slider = mo.ui.slider(1, 10, step=1, value=8, show_value=True, label="N− (negatives)")
    k_slider = mo.ui.slider(1, 10, step=1, value=3, show_value=True, label="K")
    mo.hstack([n_pos_slider, n_neg_slider, k_slider], justify="start")
    return k_slider, n_neg_slider, n_pos_slider


@app.cell
def _(k_slider, n_neg_slider, n_pos_slider):
    # The control values in plain variables (the tests set these directly).
    n_pos = n_pos_slider.value
    n_neg = n_neg_slider.value
    k = k_slider.value
    return k, n_neg, n_pos


@app.cell
def _(k, n_neg, n_pos):
    mo.stop(k > n_neg, L.problem(
        f"K = {k} is larger than N− = {n_neg}: Theorem 3 needs β = K / N− <= 1. "
        f"Lower K or raise N−."))
    with mo.status.spinner(title=L.COMPILING):
        envelope = theorem3_envelope(n_pos, n_neg, k)  # every ranking, enumerated
    points = envelope[envelope["kind"] == "ranking"]
    count_slider = mo.ui.slider(0, n_pos * k, step=1, value=(n_pos * k) // 2, full_width=True,
                                show_value=True,
                                label=f"pick OPAUC(K/N−) = count / (N+ · N−), count from 0 to "
                                      f"N+ · K = {n_pos * k}")
    count_slider
    return count_slider, envelope, points


@app.cell
def _(count_slider):
    count = count_slider.value  # the picked OPAUC as a pair count (the tests set it)
    return (count,)


@app.cell
def _(count, k, n_neg, n_pos, points):
    picked = count / (n_pos * n_neg)  # raw OPAUC (Eq. 8) of `count` correctly ordered pairs
    bounds = topk_bounds(picked, n_pos, n_neg, k)
    tight = topk_bounds(picked, n_pos, n_neg, k, tight=True)
    _here = points[np.isclose(points["opauc"], picked, atol=1e-12)]
    reached = (float(_here["recall"].min()), float(_here["recall"].max())) if len(_here) else None
    return bounds, picked, reached, tight


@app.cell
def _(bounds, envelope, k, n_neg, n_pos, picked, points, reached, tight):
    _curve = envelope[envelope["kind"] == "bound"]
    _fig, _ax = L.figure(7.5, 4.2)
    _ax.scatter(points["opauc"], points["recall"], s=12 + 40 * np.sqrt(points["count"] / points["count"].max()),
                color=L.POS_COLOR, alpha=0.6, label="rankings (size: how many)")
    _ax.step(_curve["opauc"], _curve["recall_high"], where="post", color=L.ACCENT, lw=1.8,
             label="upper bound (Eq. 19)")
    _ax.step(_curve["opauc"], _curve["recall_low"], where="post", color=L.HARD_COLOR, lw=1.8,
             label="lower bound (Eq. 19)")
    _ax.axvline(picked, color="0.3", ls="--", lw=1)
    _ax.vlines(picked, bounds.recall_low, bounds.recall_high, color="k", lw=5, alpha=0.35,
               label="range read off")
    _ax.set(xlabel=f"raw OPAUC(β = K/N− = {k}/{n_neg})", ylabel=f"Recall@{k}",
            title=f"all rankings of {n_pos} positives and {n_neg} negatives")
    _ax.legend(loc="upper left", fontsize=8)
    _ax.grid(alpha=0.3)
    _rows = [
        ("picked OPAUC (raw)", L.fmt(picked),
         f"{round(picked * n_pos * n_neg)} of {n_pos * n_neg} pairs, β = {k / n_neg:.3g}"),
        ("Recall@K bounds (Eq. 19)", f"[{L.fmt(bounds.recall_low)}, {L.fmt(bounds.recall_high)}]",
         "as printed in the paper"),
        ("Precision@K bounds (Eq. 20)",
         f"[{L.fmt(bounds.precision_low)}, {L.fmt(bounds.precision_high)}]", "the same with 1/K"),
        ("sharp Recall@K range", f"[{L.fmt(tight.recall_low)}, {L.fmt(tight.recall_high)}]",
         "integer-sharpened (`tight=True`)"),
        ("reached by enumerated rankings",
         f"[{L.fmt(reached[0])}, {L.fmt(reached[1])}]" if reached else "no ranking has this OPAUC",
         "min and max Recall@K among the dots above"),
    ]
    L.figure_with_table(_fig, _rows)
    return


@app.cell(hide_code=True)
def _():
    mo.md(r"""
    ## The rankings at the ends of the range

    The proof of Theorem 3 builds, for i hits in the top K, the ranking with the largest OPAUC
    (i positives, then the K − i negatives, then the other positives) and the one with the
    smallest (the K − i negatives first, then the i positives).
    """)
    return


@app.cell
def _(k, n_neg, n_pos):
    mo.stop(k > n_neg)  # the message is shown above
    hits_slider = mo.ui.slider(0, min(k, n_pos), step=1, value=min(k, n_pos) // 2,
                               show_value=True, label="hits i in the top K")
    hits_slider
    return (hits_slider,)


@app.cell
def _(hits_slider, k, n_neg, n_pos):
    mo.stop(k > n_neg)
    _ext = extremal_rankings(n_pos, n_neg, k, hits_slider.value)
    _fig, _axes = L.figure(8.0, 2.4, nrows=2)
    L.draw_strip(_axes[0], _ext.max_labels, k=k,
                 title=f"largest OPAUC with {hits_slider.value} hits: "
                       f"{_ext.max_count} ordered pairs, OPAUC {L.fmt(_ext.max_count / (n_pos * n_neg))}")
    L.draw_strip(_axes[1], _ext.min_labels, k=k,
                 title=f"smallest: {_ext.min_count} pairs, "
                       f"OPAUC {L.fmt(_ext.min_count / (n_pos * n_neg))}")
    L.show(_fig)
    return


if __name__ == "__main__":
    app.run()
