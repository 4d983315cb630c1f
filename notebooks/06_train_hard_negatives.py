import marimo

__generated_with = "0.25.2"
app = marimo.App(width="medium", app_title="6. Train with hard negatives")

with app.setup:
    import time

    import _lesson as L  # display helpers beside the lesson (marimo puts its folder on sys.path)
    import marimo as mo
    import numpy as np

    from training import sampling as S
    from training.hardness import TRAIN_OPTIONS, planted_split
    from training.trainer import train_model

    #: Planted data small enough to train live (600 users x 400 items, 80/20 split per user).
    DATA_SEED = 0


@app.cell(hide_code=True)
def _():
    mo.md(r"""
    # 6. Train with hard negatives (Guideline 2)

    A matrix-factorisation recommender learns from (user, liked item) pairs, each contrasted
    with sampled **negatives**. Here it trains live on planted data (600 users, 400 items, a
    known low-rank taste model) with two samplers side by side: plain **uniform** sampling
    (BPR), **DNS(M, N)** (the top M of a pool of N: harder with smaller M or larger N) or
    **Softmax-v(ρ, N)** (harder with larger ρ). The curves are Recall@K and NDCG@K on the
    held-out 20% of each user's items after every epoch. Press **Train**; a run takes a few
    seconds.
    """)
    return


@app.cell
def _():
    # The one place where this lesson calls the trainer (update here if the trainer moves).
    train, test = planted_split(DATA_SEED)
    train_options = {key: value for key, value in TRAIN_OPTIONS.items() if key != "epochs"}

    def train_one(sampler, epochs, ks, seed=0):
        """Train MF-BPR with ``sampler`` on the planted split, evaluating after every epoch."""
        return train_model(train, test, sampler, epochs=epochs, ks=ks, eval_every=1, seed=seed,
                        handle_sigint=False, **train_options)

    return test, train, train_one, train_options


@app.cell
def _():
    def sampler_controls(kind, m, n, rho):
        return mo.ui.dictionary({
            "kind": mo.ui.dropdown({"uniform (BPR)": "uniform", "DNS(M, N)": "dns",
                                    "Softmax-v(ρ, N)": "softmax_v"},
                                   value={"uniform": "uniform (BPR)", "dns": "DNS(M, N)",
                                          "softmax_v": "Softmax-v(ρ, N)"}[kind], label="sampler"),
            "m": mo.ui.slider(1, 50, step=1, value=m, show_value=True, label="M (DNS)"),
            "n": mo.ui.slider(5, 200, step=5, value=n, show_value=True, label="N (pool)"),
            "rho": mo.ui.slider(steps=[0.01, 0.1, 0.3, 1.0, 3.0, 10.0, 100.0], value=rho,
                                show_value=True, label="ρ (Softmax-v)"),
        })

    controls_a = sampler_controls("uniform", 5, 50, 1.0)
    controls_b = sampler_controls("dns", 5, 50, 1.0)
    epochs_slider = mo.ui.slider(5, 60, step=5, value=30, show_value=True, label="epochs")
    k_dropdown = mo.ui.dropdown({"5": 5, "10": 10, "20": 20, "50": 50}, value="20", label="K")
    train_button = mo.ui.run_button(label="Train both")
    mo.vstack([
        mo.hstack([mo.vstack([mo.md("**sampler A**"), controls_a.vstack()]),
                   mo.vstack([mo.md("**sampler B**"), controls_b.vstack()])], widths="equal"),
        mo.hstack([epochs_slider, k_dropdown, train_button], justify="start"),
    ])
    return controls_a, controls_b, epochs_slider, k_dropdown, train_button


@app.cell
def _(controls_a, controls_b, epochs_slider, k_dropdown):
    # The control values in plain variables (the tests set these directly).
    spec_a = controls_a.value
    spec_b = controls_b.value
    epochs = epochs_slider.value
    k = k_dropdown.value
    return epochs, k, spec_a, spec_b


@app.cell
def _(train_button):
    run_request = train_button.value  # True for one run after a click (the tests set it)
    return (run_request,)


@app.cell
def _(spec_a, spec_b):
    def make_sampler(spec):
        if spec["kind"] == "dns":
            if spec["m"] > spec["n"]:
                return None, f"DNS(M, N) needs M <= N; got M = {spec['m']}, N = {spec['n']}."
            return S.dns(spec["m"], spec["n"]), None
        if spec["kind"] == "softmax_v":
            return S.softmax_v(spec["rho"], spec["n"]), None
        return S.uniform(1), None

    sampler_a, _problem_a = make_sampler(spec_a)
    sampler_b, _problem_b = make_sampler(spec_b)
    _problems = [f"Sampler {name}: {p}" for name, p in (("A", _problem_a), ("B", _problem_b)) if p]
    mo.stop(bool(_problems), L.problem("  \n".join(_problems)))
    mo.md(f"Ready: **A = {sampler_a.label()}** (β ≈ {sampler_a.beta:.3g}) against "
          f"**B = {sampler_b.label()}** (β ≈ {sampler_b.beta:.3g}).")
    return sampler_a, sampler_b


@app.cell
def _(epochs, k, run_request, sampler_a, sampler_b, train_one):
    mo.stop(not run_request, mo.md("Press **Train both** to train the two models."))
    results = {}
    with mo.status.progress_bar(total=2, title="Training", subtitle=L.COMPILING,
                                remove_on_exit=True) as _bar:
        for _name, _sampler in (("A", sampler_a), ("B", sampler_b)):
            _bar.update(increment=0, subtitle=f"sampler {_name}: {_sampler.label()}, {epochs} epochs"
                                              f" (the very first run also compiles the trainer)")
            _start = time.perf_counter()
            results[_name] = (_sampler, train_one(_sampler, epochs, (k,)),
                              time.perf_counter() - _start)
            _bar.update(increment=1)
    return (results,)


@app.cell
def _(k, results):
    _fig, _axes = L.figure(9.5, 3.4, ncols=2)
    _colors = {"A": L.POS_COLOR, "B": L.HARD_COLOR}
    curves = {}
    for _name, (_sampler, _result, _seconds) in results.items():
        _epochs = [h["epoch"] for h in _result.history]
        curves[_name] = {metric: np.array([h[f"{metric}@{k}"] for h in _result.history])
                         for metric in ("recall", "ndcg")}
        for _ax, _metric in zip(_axes, ("recall", "ndcg")):
            _ax.plot(_epochs, curves[_name][_metric], color=_colors[_name], lw=2,
                     label=f"{_name}: {_sampler.label()}")
    for _ax, _title in zip(_axes, (f"Recall@{k}", f"NDCG@{k}")):
        _ax.set(xlabel="epoch", ylabel=_title, title=f"held-out {_title}")
        _ax.grid(alpha=0.3)
        _ax.legend(fontsize=8, loc="lower right")
    _rows = [(f"{_name}: {_s.label()}", L.fmt(_r.metrics[f"recall@{k}"]),
              L.fmt(_r.metrics[f"ndcg@{k}"]), f"{_secs:.1f} s")
             for _name, (_s, _r, _secs) in results.items()]
    L.figure_with_table(_fig, _rows, header=("sampler", f"Recall@{k}", f"NDCG@{k}",
                                             "training + evaluation time"))
    return (curves,)


@app.cell(hide_code=True)
def _():
    mo.md(r"""
    **Things to try.** Compare uniform with DNS(5, 50): hard negatives learn faster and end
    higher. Make DNS harder (M = 1) or softer (M = 25); try Softmax-v with ρ = 0.01 and
    ρ = 10. Guideline 2 says the smaller K, the harder the sampler should be: compare two
    hardness levels at K = 5 and at K = 50. (On these planted data the guideline shows on the
    training interactions more clearly than on the held-out split; see the README.)
    """)
    return


if __name__ == "__main__":
    app.run()
