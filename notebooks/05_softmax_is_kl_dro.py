import marimo

__generated_with = "0.25.2"
app = marimo.App(width="medium", app_title="5. Softmax sampling is KL-DRO")

with app.setup:
    import math

    import _lesson as L  # display helpers beside the lesson (marimo puts its folder on sys.path)
    import marimo as mo
    import numpy as np

    from theory.estimators import (
        cvar,
        kl_dro,
        opauc_rank_weights,
        pair_losses,
        softmax_v_objective,
        softmax_v_tau,
        softmax_weights,
    )

    #: The rho slider's stops: log-spaced, as in the paper's grid {0.01, 0.1, 1, 10, 100}.
    RHO_STEPS = [0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 3.0, 5.0, 10.0]

    L.one_numba_thread()


@app.cell(hide_code=True)
def _():
    mo.md(r"""
    # 5. Softmax sampling is KL-DRO (Theorem 2, Fig. 7 right)

    Take the losses of one positive against a pool of N negatives. Instead of keeping the top
    β of them (DNS, lesson 4), **softmax sampling** weights every negative by
    exp(loss / τ): hard negatives get more weight, smoothly. Theorem 2: the worst-case mean
    loss over all distributions within KL distance **ρ** of uniform (KL-DRO) is exactly such a
    softmax, at a temperature λ found by a one-dimensional solve; **Softmax-v** uses the
    closed-form approximation τ = sqrt(Var L / (2ρ)) (Eq. 25). Move ρ: the value climbs from
    the mean loss (ρ → 0) to the maximum (ρ ≥ log N), staying above the CVaR at β = exp(−ρ).
    """)
    return


@app.cell
def _():
    rho_slider = mo.ui.slider(steps=RHO_STEPS, value=1.0, show_value=True,
                              label="ρ (KL radius; larger = harder)", full_width=True)
    n_slider = mo.ui.slider(10, 500, step=10, value=200, show_value=True,
                            label="N (pool size)", full_width=True)
    pos_slider = mo.ui.slider(-2.0, 4.0, step=0.1, value=1.0, show_value=True,
                              label="score of the positive", full_width=True)
    seed_box = mo.ui.number(start=0, stop=9999, step=1, value=0,
                            label="seed of the pool's scores (standard normal)")
    mo.vstack([rho_slider, n_slider, pos_slider, seed_box])
    return n_slider, pos_slider, rho_slider, seed_box


@app.cell
def _(n_slider, pos_slider, rho_slider, seed_box):
    # The control values in plain variables (the tests set these directly).
    rho = rho_slider.value
    n = n_slider.value
    pos_score = pos_slider.value
    seed = seed_box.value
    return n, pos_score, rho, seed


@app.cell
def _(n, pos_score, rho, seed):
    mo.stop(n < 2, L.problem(f"The pool needs at least 2 negatives (N = {n})."))
    # The pool's negative scores: standard normal draws (data, not a metric).
    neg_scores = np.random.default_rng(seed).standard_normal(n)
    losses = pair_losses([pos_score], neg_scores)[0]
    kl_value, lam, kl_weights = kl_dro(losses, rho)
    tau = softmax_v_tau(losses, rho)
    softmax_v_value = softmax_v_objective(losses, rho)
    softmax_v_w = softmax_weights(losses, tau)
    cvar_beta = math.exp(-rho)  # Lemma 1 / Theorem 2: the same rho, beta = e^-rho
    cvar_value, _eta = cvar(losses, cvar_beta)
    cvar_w = opauc_rank_weights(n, cvar_beta)  # by rank, hardest first
    return (cvar_beta, cvar_value, cvar_w, kl_value, kl_weights, lam, losses,
            softmax_v_value, softmax_v_w, tau)


@app.cell
def _(cvar_beta, cvar_value, cvar_w, kl_value, kl_weights, lam, losses, n, rho,
      softmax_v_value, softmax_v_w, tau):
    _order = np.argsort(-losses, kind="stable")  # hardest negative first
    _ranks = np.arange(1, n + 1)
    _fig, (_ax, _line) = L.figure(9.0, 4.6, nrows=2, height_ratios=[3, 1.1])
    _ax.plot(_ranks, kl_weights[_order], color=L.POS_COLOR, lw=2.2,
             label=f"KL-DRO weights, exact λ = {lam:.4g}")
    _ax.plot(_ranks, softmax_v_w[_order], color=L.HARD_COLOR, lw=2, ls="--",
             label=f"Softmax-v weights, τ = {tau:.4g} (Eq. 25)")
    _ax.step(_ranks, cvar_w, where="mid", color=L.NEG_COLOR, lw=1.5,
             label=f"CVaR / OPAUC weights, β = exp(−ρ) = {cvar_beta:.3g}")
    _ax.axhline(1 / n, color="k", lw=0.8, ls=":", label="uniform 1/N (plain BPR)")
    _ax.set_xscale("log")
    _ax.set(xlabel="negatives of the pool sorted by loss (1 = hardest; log scale)",
            ylabel="weight", title=f"how ρ = {rho:g} spreads the weight over the pool")
    _ax.legend(fontsize=8, loc="upper right")
    _ax.grid(alpha=0.3)
    _marks = [("mean", losses.mean(), "k"), ("CVaR", cvar_value, L.NEG_COLOR),
              ("KL-DRO", kl_value, L.POS_COLOR), ("Softmax-v", softmax_v_value, L.HARD_COLOR),
              ("max", losses.max(), "k")]
    _line.axhline(0, color="0.6", lw=1)
    for _i, (_name, _value, _color) in enumerate(_marks):
        _line.plot(_value, 0, "o", color=_color, ms=9)
        _line.annotate(_name, (_value, 0), textcoords="offset points", ha="center",
                       xytext=(0, 9 if _i % 2 == 0 else -16), fontsize=8, color=_color)
    _line.set_yticks([])
    _line.set_ylim(-1, 1)
    _line.set_xlabel("loss value")
    for _side in ("top", "right", "left"):
        _line.spines[_side].set_visible(False)
    _rows = [
        ("mean loss (ρ → 0, plain BPR)", L.fmt(losses.mean()), ""),
        (f"CVaR at β = exp(−ρ) = {cvar_beta:.3g} (Lemma 1)", L.fmt(cvar_value),
         "the KL ball contains the CVaR ball: below KL-DRO"),
        (f"KL-DRO value at ρ = {rho:g} (Eqs. 21-23)", L.fmt(kl_value),
         "softmax-weighted loss at the exact λ"),
        (f"Softmax-v value at ρ = {rho:g} (Eq. 25's τ)", L.fmt(softmax_v_value),
         "the same weighting at τ instead of λ"),
        ("max loss (ρ ≥ log N, DNS with M = 1)", L.fmt(losses.max()),
         f"log N = {math.log(n):.3f}"),
        ("exact λ / Softmax-v τ", f"{lam:.4g} / {tau:.4g}",
         "τ → λ as ρ → 0 (Eq. 24 expansion)"),
    ]
    L.figure_with_table(_fig, _rows)
    return


if __name__ == "__main__":
    app.run()
