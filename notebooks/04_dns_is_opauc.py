import marimo

__generated_with = "0.25.2"
app = marimo.App(width="medium", app_title="4. DNS is OPAUC")

with app.setup:
    import _lesson as L  # display helpers beside the lesson (marimo puts its folder on sys.path)
    import marimo as mo
    import numpy as np

    from theory.estimators import (
        cvar,
        dns_mn_objective,
        dns_mn_rank_probabilities,
        dns_objective,
        opauc_rank_weights,
        opauc_surrogate,
        pair_losses,
    )
    from training.sampling import dns, empirical_rank_distribution

    L.one_numba_thread()


@app.cell(hide_code=True)
def _():
    mo.md(r"""
    # 4. DNS is OPAUC (Lemma 1, Theorem 1, Fig. 7 left)

    One user, one positive item and N− negatives with fixed scores. **DNS** trains BPR on
    the **M highest-scored** negatives only. Theorem 1 says its loss *is* the OPAUC(β)
    surrogate at β = M / N−, the mean of the top β fraction of losses; Lemma 1 says that is
    also a CVaR, whose optimal threshold η is the β-quantile of the losses. Move M and watch
    the three numbers agree to the last digit. Below, the practical **DNS(M, N)** samples a
    pool of N negatives and keeps its top M: its sampling law (exact and simulated) is close
    to OPAUC at β ≈ M / N, but not equal.
    """)
    return


@app.cell
def _():
    n_neg_slider = mo.ui.slider(20, 500, step=10, value=100, show_value=True,
                                label="N− (negatives of the user)", full_width=True)
    pos_slider = mo.ui.slider(-2.0, 4.0, step=0.1, value=1.0, show_value=True,
                              label="score of the positive", full_width=True)
    seed_box = mo.ui.number(start=0, stop=9999, step=1, value=0,
                            label="seed of the negatives' scores (standard normal)")
    mo.vstack([n_neg_slider, pos_slider, seed_box])
    return n_neg_slider, pos_slider, seed_box


@app.cell
def _(n_neg_slider):
    m_slider = mo.ui.slider(1, n_neg_slider.value, step=1, value=min(5, n_neg_slider.value),
                            show_value=True, label="M (hardest negatives used)", full_width=True)
    pool_slider = mo.ui.slider(1, 200, step=1, value=50, show_value=True,
                               label="N (pool size of DNS(M, N))", full_width=True)
    mo.vstack([m_slider, pool_slider])
    return m_slider, pool_slider


@app.cell
def _(m_slider, n_neg_slider, pool_slider, pos_slider, seed_box):
    # The control values in plain variables (the tests set these directly).
    n_neg = n_neg_slider.value
    pos_score = pos_slider.value
    seed = seed_box.value
    m = m_slider.value
    pool = pool_slider.value
    return m, n_neg, pool, pos_score, seed


@app.cell
def _(m, n_neg, pos_score, seed):
    _problem = None
    if not (1 <= m <= n_neg):
        _problem = f"M = {m} must be between 1 and N− = {n_neg}."
    mo.stop(_problem is not None, L.problem(_problem))
    # The example user's negative scores: standard normal draws (data, not a metric).
    neg_scores = np.random.default_rng(seed).standard_normal(n_neg)
    beta = m / n_neg  # Theorem 1: DNS with M negatives is OPAUC at beta = M / N-
    losses = pair_losses([pos_score], neg_scores)[0]
    dns_loss = dns_objective([pos_score], neg_scores, m)
    surrogate = opauc_surrogate([pos_score], neg_scores, beta)
    cvar_value, eta = cvar(losses, beta)
    return beta, cvar_value, dns_loss, eta, losses, neg_scores, surrogate


@app.cell
def _(beta, cvar_value, dns_loss, eta, losses, m, n_neg, surrogate):
    _fig, _ax = L.figure(8.0, 3.9)
    _bins = np.linspace(losses.min(), losses.max(), 31)
    _ax.hist(losses[losses < eta], bins=_bins, color=L.NEG_COLOR, label="other negatives")
    _ax.hist(losses[losses >= eta], bins=_bins, color=L.HARD_COLOR,
             label=f"top β = {beta:.3g} of the losses (the M = {m} hardest negatives)")
    _ax.axvline(eta, color="k", lw=1.5, ls="--", label=f"η = β upper quantile = {eta:.3f} (Eq. 16)")
    _ax.axvline(dns_loss, color=L.POS_COLOR, lw=2.5, label=f"their mean = DNS loss = {dns_loss:.4f}")
    _ax.set(xlabel="pair loss l(r+ − r−) = log(1 + exp(−(r+ − r−)))", ylabel="negatives",
            title=f"losses of one positive against its {n_neg} negatives")
    _ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.22), ncol=2)
    _rows = [
        (f"DNS loss, M = {m} (Eqs. 1-2)", L.fmt(dns_loss, 10), "mean loss over the M hardest negatives"),
        (f"OPAUC surrogate, β = M/N− = {beta:.4g} (Eq. 9)", L.fmt(surrogate, 10), "Theorem 1: equal"),
        ("CVaR value min_η η + E(L − η)+ / β (Eq. 15)", L.fmt(cvar_value, 10), "Lemma 1: equal"),
        ("η, the β upper quantile of the losses (Eq. 16)", L.fmt(eta, 10), "smallest loss in the top β"),
        ("largest difference", f"{max(abs(dns_loss - surrogate), abs(dns_loss - cvar_value)):.1e}",
         "rounding only"),
    ]
    L.figure_with_table(_fig, _rows)
    return


@app.cell(hide_code=True)
def _():
    mo.md(r"""
    ## DNS(M, N): a pool of N, its top M

    In practice DNS draws a uniform pool of N negatives (with replacement) and weights its top
    M. The curve shows how much of the weight lands on the r highest-scored negatives: exact
    (order statistics) and simulated (the trainer's own sampler, 5,000 pools). OPAUC(β = M/N)
    would put it all, evenly, on the top β fraction: DNS(M, N) is a smoothed version of it.
    """)
    return


@app.cell
def _(m, n_neg, neg_scores, pool, pos_score):
    mo.stop(m > pool, L.problem(f"DNS(M, N) needs M <= N: M = {m}, N = {pool}. "
                                f"Raise N or lower M."))
    law_exact = dns_mn_rank_probabilities(n_neg, m, pool)
    with mo.status.spinner(title=L.COMPILING):
        law_sampled = empirical_rank_distribution(dns(m, pool), neg_scores, pos_score,
                                                  n_repeats=5_000, seed=0)
    law_opauc = opauc_rank_weights(n_neg, min(1.0, m / pool))
    dns_mn_loss = dns_mn_objective([pos_score], neg_scores, m, pool)
    surrogate_mn = opauc_surrogate([pos_score], neg_scores, min(1.0, m / pool))
    return dns_mn_loss, law_exact, law_opauc, law_sampled, surrogate_mn


@app.cell
def _(dns_mn_loss, law_exact, law_opauc, law_sampled, m, n_neg, pool, surrogate_mn):
    _ranks = np.arange(1, n_neg + 1)
    _fig, _ax = L.figure(8.0, 3.4)
    _ax.plot(_ranks, np.cumsum(law_opauc), color=L.NEG_COLOR, lw=2, ls="--",
             label=f"OPAUC(β = M/N = {m / pool:.3g}): uniform on the top β")
    _ax.plot(_ranks, np.cumsum(law_exact), color=L.POS_COLOR, lw=2.2, label=f"DNS({m}, {pool}), exact")
    _ax.plot(_ranks, np.cumsum(law_sampled), "o", color=L.HARD_COLOR, ms=3,
             label=f"DNS({m}, {pool}), sampled 5,000 times")
    _ax.set_xscale("log")
    _ax.set(xlabel="negatives sorted by score (rank 1 = hardest; log scale)",
            ylabel="cumulative weight", ylim=(0, 1.03), xlim=(0.9, n_neg * 1.1))
    _ax.legend(fontsize=8, loc="lower right")
    _ax.grid(alpha=0.3)
    _rows = [
        (f"DNS({m}, {pool}) loss (exact expectation)", L.fmt(dns_mn_loss), "pool of N, top M weighted 1/M"),
        (f"OPAUC surrogate at β = M/N = {m / pool:.3g}", L.fmt(surrogate_mn), "close, not equal"),
        ("largest gap exact vs sampled cumulative law",
         f"{np.abs(np.cumsum(law_exact) - np.cumsum(law_sampled)).max():.3f}", "Monte Carlo noise"),
    ]
    L.figure_with_table(_fig, _rows)
    return


if __name__ == "__main__":
    app.run()
