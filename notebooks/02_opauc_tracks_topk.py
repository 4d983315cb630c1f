import marimo

__generated_with = "0.25.2"
app = marimo.App(width="medium", app_title="2. OPAUC tracks Top-K")

with app.setup:
    import _lesson as L  # display helpers beside the lesson (marimo puts its folder on sys.path)
    import marimo as mo

    from simulations.correlation import peak_betas, topk_correlations
    from simulations.rankings import get_model
    from theory.bounds import uniform_auc_recall_correlation


@app.cell(hide_code=True)
def _():
    mo.md(r"""
    # 2. OPAUC tracks Top-K (the paper's Fig. 6)

    Draw many random rankings of N+ positives and N− negatives. For each, compute Recall@K,
    NDCG@K and OPAUC(β) for a grid of β; then ask, across the rankings, how strongly each
    Top-K metric **correlates** with OPAUC(β). The class will see the correlation peak (above
    0.8 for uniform rankings) at a β close to **K / N−**, while AUC (β = 1, the right end)
    correlates far less: the hard negatives at the top decide Top-K metrics.
    """)
    return


@app.cell
def _():
    n_pos_slider = mo.ui.slider(10, 400, step=10, value=200, show_value=True, label="N+ (positives)",
                                debounce=True, full_width=True)
    n_neg_slider = mo.ui.slider(100, 1600, step=50, value=800, show_value=True,
                                label="N− (negatives)", debounce=True, full_width=True)
    k_slider = mo.ui.slider(1, 100, step=1, value=20, show_value=True, label="K", debounce=True,
                            full_width=True)
    rankings_dropdown = mo.ui.dropdown({"2,000": 2_000, "20,000": 20_000, "100,000 (paper)": 100_000},
                                       value="20,000", label="number of rankings")
    model_dropdown = mo.ui.dropdown(
        {"uniformly random rankings (paper)": "uniform",
         "binormal scores: positives N(μ, 1), negatives N(0, 1)": "binormal",
         "heavy tails: Student-t, 3 degrees of freedom": "student_t",
         "10% hard negatives scored like positives": "mixture"},
        value="uniformly random rankings (paper)", label="score model")
    mu_slider = mo.ui.slider(0.0, 3.0, step=0.25, value=1.0, show_value=True,
                             label="separation μ (score models only)", debounce=True,
                             full_width=True)
    mo.vstack([mo.hstack([n_pos_slider, n_neg_slider]), mo.hstack([k_slider, mu_slider]),
               mo.hstack([rankings_dropdown, model_dropdown], justify="start")])
    return (k_slider, model_dropdown, mu_slider, n_neg_slider, n_pos_slider,
            rankings_dropdown)


@app.cell
def _(k_slider, model_dropdown, mu_slider, n_neg_slider, n_pos_slider, rankings_dropdown):
    # The control values in plain variables (the tests set these directly).
    n_pos = n_pos_slider.value
    n_neg = n_neg_slider.value
    k = k_slider.value
    n_rankings = rankings_dropdown.value
    model_name = model_dropdown.value
    mu = mu_slider.value
    return k, model_name, mu, n_neg, n_pos, n_rankings


@app.cell
def _(k, model_name, mu, n_neg, n_pos, n_rankings):
    _problem = None
    if k > n_pos + n_neg:
        _problem = f"K = {k} is larger than the ranking (N+ + N− = {n_pos + n_neg} items)."
    elif k > n_neg:
        _problem = f"K = {k} is larger than N− = {n_neg}: K / N− would exceed 1."
    mo.stop(_problem is not None, L.problem(_problem))
    # The score models get the separation mu for every ranking (mu_low = mu_high).
    model = "uniform" if model_name == "uniform" else get_model(model_name, mu_low=mu, mu_high=mu)
    with mo.status.spinner(title=L.COMPILING):
        table = topk_correlations(n_pos, n_neg, n_rankings, ks=[k], metrics=("recall", "ndcg"),
                                  model=model, seed=0)
        peaks = peak_betas(table)
    # Exact correlation of Recall@K with AUC over uniformly random rankings (check F6b's
    # reference): sqrt(3K(N-K)/(N^2-1)), N = N+ + N-.
    exact_auc_r = (uniform_auc_recall_correlation(n_pos, n_neg, k) if model_name == "uniform"
                   else None)
    return exact_auc_r, model, peaks, table


@app.cell
def _(exact_auc_r, k, n_neg, peaks, table):
    _fig, _ax = L.figure(8.0, 3.8)
    _colors = {"recall": L.POS_COLOR, "ndcg": L.HARD_COLOR}
    for _metric, _part in table.groupby("metric", sort=False):
        _peak = peaks[peaks["metric"] == _metric].iloc[0]
        _ax.plot(_part["beta"], _part["r"], color=_colors[_metric], lw=2,
                 label=f"{'Recall' if _metric == 'recall' else 'NDCG'}@{k}: peak r = "
                       f"{_peak['peak_r']:.2f} at β = {_peak['peak_beta']:.3g}")
        _ax.plot(_peak["peak_beta"], _peak["peak_r"], "o", color=_colors[_metric], ms=8)
    _ax.axvline(k / n_neg, color=L.ACCENT, lw=1.5, ls="--", label=f"K / N− = {k / n_neg:.3g}")
    if exact_auc_r is not None:
        _ax.plot(1.0, exact_auc_r, "x", color="k", ms=9, mew=2,
                 label=f"exact Recall–AUC r = {exact_auc_r:.3f}")
    _ax.set_xscale("log")
    _ax.set(xlabel="β (log scale; β = 1 is AUC)", ylabel="Pearson r across rankings",
            ylim=(min(0.0, float(table["r"].min()) - 0.05), 1.02),
            title="correlation of Top-K metrics with OPAUC(β)")
    _ax.legend(loc="lower left", fontsize=8)
    _ax.grid(alpha=0.3)

    _rows = []
    for _, _p in peaks.iterrows():
        _name = "Recall" if _p["metric"] == "recall" else "NDCG"
        _rows.append((f"{_name}@{k}", f"{_p['peak_beta']:.4g}", f"{_p['peak_beta'] / (k / n_neg):.2f}",
                      L.fmt(_p["peak_r"], 3), L.fmt(_p["r_auc"], 3)))
    _note = ""
    if exact_auc_r is not None:
        _note = (f"Exact correlation of Recall@{k} with AUC for uniformly random rankings: "
                 f"**{L.fmt(exact_auc_r, 3)}** (simulated: "
                 f"{L.fmt(peaks.loc[peaks['metric'] == 'recall', 'r_auc'].iloc[0], 3)}).")
    L.figure_with_table(_fig, _rows, header=("metric", "peak β", "peak β / (K/N−)", "peak r",
                                             "r with AUC"), below=[mo.md(_note)])
    return


@app.cell(hide_code=True)
def _():
    mo.md(r"""
    **Things to try.** Make K smaller: the peak moves left with K / N−. Switch to a score
    model and raise μ: with better-separated scores the peak moves left of K / N− and drops
    (README, "Beyond the paper"). With 2,000 rankings the curves get noisy: the correlation
    is itself an estimate.
    """)
    return


if __name__ == "__main__":
    app.run()
