import marimo

__generated_with = "0.25.2"
app = marimo.App(width="medium", app_title="1. Ranking metrics on one ranking")

with app.setup:
    import _lesson as L  # display helpers beside the lesson (marimo puts its folder on sys.path)
    import marimo as mo
    import numpy as np

    from figures.data import equal_auc_pair
    from theory.estimators import opauc_rank_weights
    from theory.metrics import (
        auc,
        ndcg_at_k,
        opauc,
        precision_at_k,
        recall_at_k,
        roc_points,
    )

    L.one_numba_thread()


@app.cell(hide_code=True)
def _():
    mo.md(r"""
    # 1. Ranking metrics on one ranking

    A recommender shows a user a **ranking**: positives (items the user likes, **+**) and
    negatives (**−**), best first. **AUC** asks how often a positive is above a negative,
    over *all* negatives; **OPAUC(β)** (the paper's Eqs. 7-8) only looks at the top β
    fraction of negatives, the hard ones near the top. Move **β** and **K** and watch AUC stay
    put while OPAUC and the Top-K metrics move; then load the two rankings of the paper's
    Fig. 3, which have the same AUC but different OPAUC.
    """)
    return


@app.cell
def _():
    _pair = equal_auc_pair(n_pos=6, n_neg=20, beta=0.2, seed=0)
    fig3_pair = {name: part["labels"].iloc[0] for name, part in _pair.groupby("ranking")}
    presets = {
        "Fig. 3, ranking A (same AUC, higher OPAUC)": fig3_pair["A"],
        "Fig. 3, ranking B (same AUC, lower OPAUC)": fig3_pair["B"],
        "a good ranking": "++-+-+--+---+--------",
        "a random-looking ranking": "-+--+---+-+----+--+--",
        "a bad ranking": "--------+---+--+-+-++",
    }
    preset = mo.ui.dropdown(options=list(presets), value=next(iter(presets)),
                            label="preset ranking")
    return fig3_pair, preset, presets


@app.cell
def _(preset, presets):
    ranking_box = mo.ui.text(value=presets[preset.value], full_width=True,
                             label="ranking, best first (`+` positive, `-` negative)")
    shuffle_box = mo.ui.number(start=0, stop=9999, step=1, value=0,
                               label="shuffle with seed (0: as typed)")
    beta_slider = mo.ui.slider(0.01, 1.0, step=0.01, value=0.2, show_value=True,
                               label="β (largest false positive rate)", full_width=True)
    k_slider = mo.ui.slider(1, 30, step=1, value=5, show_value=True, label="K",
                            full_width=True)
    mo.vstack([preset, ranking_box, shuffle_box, beta_slider, k_slider])
    return beta_slider, k_slider, ranking_box, shuffle_box


@app.cell
def _(beta_slider, k_slider, ranking_box, shuffle_box):
    # The control values in plain variables (the tests set these four directly).
    ranking_text = ranking_box.value
    shuffle_seed = shuffle_box.value
    beta = beta_slider.value
    k = k_slider.value
    return beta, k, ranking_text, shuffle_seed


@app.cell
def _(ranking_text, shuffle_seed):
    labels, ranking_problem = L.parse_ranking(ranking_text, shuffle_seed)
    mo.stop(ranking_problem is not None, L.problem(ranking_problem))
    scores = -np.arange(labels.size, dtype=float)  # best first: position 1 scores highest
    return labels, scores


@app.cell
def _(beta, labels, scores):
    # Every number below comes from theory.metrics; this cell only collects them.
    with mo.status.spinner(title=L.COMPILING):
        numbers = {
            "auc": auc(labels, scores),
            "opauc_raw": opauc(labels, scores, beta, normalize="none"),
            "opauc_beta": opauc(labels, scores, beta, normalize="beta"),
            "opauc_mcclish": opauc(labels, scores, beta, normalize="mcclish"),
        }
    return (numbers,)


@app.cell
def _(k, labels, scores):
    if k > labels.size:
        topk_numbers = None
        topk_problem = (f"K = {k} is larger than the ranking ({labels.size} items): pick "
                        f"K <= {labels.size} for Precision, Recall and NDCG@K.")
    else:
        topk_problem = None
        topk_numbers = {
            "precision": precision_at_k(labels, scores, k),
            "recall": recall_at_k(labels, scores, k),
            "ndcg": ndcg_at_k(labels, scores, k),
        }
    return topk_numbers, topk_problem


@app.cell
def _(beta, k, labels, numbers, topk_numbers, topk_problem):
    _n_pos = int(labels.sum())
    _n_neg = labels.size - _n_pos
    # Which negatives OPAUC(beta) counts: the top n_neg * beta (fractional weight on the next).
    _weights = opauc_rank_weights(_n_neg, beta) * (_n_neg * beta)
    _hard = np.zeros(labels.size)
    _hard[~labels] = _weights
    _fig, (_ax_strip, _ax_roc) = L.figure(9.5, 3.4, ncols=2, width_ratios=[2.1, 1])
    L.draw_strip(_ax_strip, labels, k=k if k <= labels.size else None, hard=_hard,
                 title=f"{_n_pos} positives, {_n_neg} negatives; orange frames: the top "
                       f"β·N− = {_n_neg * beta:.2g} negatives that OPAUC(β) looks at")
    _fpr, _tpr = roc_points(labels, -np.arange(labels.size, dtype=float))
    _ax_roc.plot(_fpr, _tpr, color=L.POS_COLOR, lw=2)
    _x, _y = L.roc_up_to(_fpr, _tpr, beta)
    _ax_roc.fill_between(_x, _y, color=L.HARD_COLOR, alpha=0.35,
                         label=f"OPAUC({beta:.2f}) = {L.fmt(numbers['opauc_raw'])}")
    _ax_roc.fill_between(_fpr, _tpr, color=L.POS_COLOR, alpha=0.08,
                         label=f"AUC = {L.fmt(numbers['auc'])}")
    _ax_roc.axvline(beta, color=L.HARD_COLOR, lw=1, ls="--")
    _ax_roc.plot([0, 1], [0, 1], color="0.7", lw=0.8, ls=":")
    _ax_roc.set(xlim=(0, 1), ylim=(0, 1.02), xlabel="false positive rate",
                ylabel="true positive rate", title="ROC curve")
    _ax_roc.legend(loc="lower right", fontsize=8)

    _rows = [
        ("AUC", L.fmt(numbers["auc"]), "share of (+, −) pairs in the right order (Eq. 6)"),
        (f"OPAUC({beta:.2f}), raw", L.fmt(numbers["opauc_raw"]),
         "shaded area, in [0, β] (Eq. 8)"),
        (f"OPAUC({beta:.2f}) / β", L.fmt(numbers["opauc_beta"]), "the same, in [0, 1]"),
        (f"OPAUC({beta:.2f}), McClish", L.fmt(numbers["opauc_mcclish"]),
         "Eqs. 10-11: 1/2 at chance, 1 at best (scikit-learn's `max_fpr`)"),
    ]
    if topk_numbers is not None:
        _rows += [
            (f"Precision@{k}", L.fmt(topk_numbers["precision"]), "positives in the top K / K"),
            (f"Recall@{k}", L.fmt(topk_numbers["recall"]),
             "positives in the top K / all positives"),
            (f"NDCG@{k}", L.fmt(topk_numbers["ndcg"]),
             "positions discounted by 1/log2(p + 1), over the ideal"),
        ]
    L.figure_with_table(_fig, _rows, below=[L.problem(topk_problem) if topk_problem else mo.md("")])
    return


@app.cell(hide_code=True)
def _():
    mo.md(r"""
    ## Same AUC, different OPAUC (the paper's Fig. 3)

    Both rankings below put positives above negatives equally often (same AUC), but ranking A
    keeps its positives ahead of the *hard* negatives at the top. OPAUC at a small β sees the
    difference; AUC cannot. Move β above: the gap shrinks as β grows and vanishes at β = 1.
    """)
    return


@app.cell
def _(beta, fig3_pair):
    fig3_numbers = {}
    for _name, _text in fig3_pair.items():
        _labels = np.array([c == "+" for c in _text])
        _scores = -np.arange(_labels.size, dtype=float)
        fig3_numbers[_name] = {"auc": auc(_labels, _scores),
                               "opauc_raw": opauc(_labels, _scores, beta)}
    _fig, _axes = L.mosaic([["A", "roc"], ["B", "roc"]], 9.5, 3.4, width_ratios=[2.1, 1])
    for (_name, _text), _color in zip(fig3_pair.items(), (L.POS_COLOR, L.HARD_COLOR)):
        _labels = np.array([c == "+" for c in _text])
        L.draw_strip(_axes[_name], _labels,
                     title=f"ranking {_name}: AUC {L.fmt(fig3_numbers[_name]['auc'])}, "
                           f"OPAUC({beta:.2f}) {L.fmt(fig3_numbers[_name]['opauc_raw'])}")
        _fpr, _tpr = roc_points(_labels, -np.arange(_labels.size, dtype=float))
        _axes["roc"].plot(_fpr, _tpr, color=_color, lw=2, label=f"ranking {_name}")
    _axes["roc"].axvline(beta, color="0.3", lw=1, ls="--")
    _axes["roc"].axvspan(0, beta, color="0.85", alpha=0.5, lw=0)
    _axes["roc"].set(xlim=(0, 1), ylim=(0, 1.02), xlabel="false positive rate",
                 ylabel="true positive rate", title="two ROC curves")
    _axes["roc"].legend(loc="lower right", fontsize=8)
    _rows = [(f"ranking {_name}", L.fmt(_v["auc"]), L.fmt(_v["opauc_raw"]))
             for _name, _v in fig3_numbers.items()]
    L.figure_with_table(_fig, _rows, header=("", "AUC", f"OPAUC({beta:.2f}), raw"))
    return (fig3_numbers,)


if __name__ == "__main__":
    app.run()
