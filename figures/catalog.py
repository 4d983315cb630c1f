"""Every figure: the simulation function that makes its data, and the plot that draws it.

The one figure pipeline: ``python -m figures`` and ``paper_checks.py`` draw every figure
through :func:`draw_all`, which computes each figure's data once (cached as CSV in
``data_dir``; a later call only redraws) and writes the files into ``out_dir``.

* :data:`FIGURES`: the paper's figures, in the house style (:func:`figures.style.theme`), as
  PNG + PDF (``paper_checks_out/figures``);
* :data:`README_FIGURES`: the README's Fig. 6 and score-model figures at the paper's sizes,
  in matplotlib's default style, as one 256-colour PNG each (``docs/``; ``python -m figures
  --readme``, ``--quick`` for small sizes).
"""
from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
from matplotlib.figure import Figure as MplFigure

from figures import correlation, hardness, kl_tau, roc, sampling, theorem3
from figures import data as figure_data
from figures.style import save, save_palette_png, theme
from simulations.files import atomic_path
from theory.validation import check_int

__all__ = ["FIGURES", "README_FIGURES", "Figure", "draw_all", "figure_data_frame"]


@dataclass(frozen=True)
class Figure:
    """One figure: its data function (with its arguments) and its plot function.

    ``quick_kwargs`` replace ``data_kwargs`` entries for a smoke run (``quick=True``);
    ``readme_dpi`` marks a README figure: drawn in matplotlib's default style and saved as one
    256-colour PNG at that dpi (:func:`figures.style.save_palette_png`) instead of the house
    style's PNG + PDF.
    """

    name: str
    caption: str
    make_data: Callable[..., pd.DataFrame]
    plot: Callable[[pd.DataFrame], MplFigure]
    data_kwargs: dict = field(default_factory=dict)
    seeded: bool = False
    quick_kwargs: dict = field(default_factory=dict)
    readme_dpi: int | None = None


def _with_attrs(frame: pd.DataFrame) -> pd.DataFrame:
    """Restore the configuration attrs (lost in CSV) from the constant columns."""
    frame = frame.copy()
    for name in ("n_pos", "n_neg", "n_rankings"):
        if name in frame:
            frame.attrs[name] = int(frame[name].iloc[0])
    frame.attrs.setdefault("model", "Uniform")
    return frame


def _plot_fig6(frame: pd.DataFrame) -> MplFigure:
    return correlation.plot_topk_correlation(_with_attrs(frame))


def _plot_score_models(frame: pd.DataFrame) -> MplFigure:
    return correlation.plot_score_model_peaks(frame, n_neg=int(frame["n_neg"].iloc[0]))


FIGURES = [
    Figure("fig2_roc_opauc",
           "Paper Fig. 2: AUC integrates the whole ROC curve, OPAUC(beta) only FPR <= beta.",
           figure_data.roc_example, roc.plot_roc_opauc, seeded=True),
    Figure("fig3_equal_auc",
           "Paper Fig. 3: two rankings with the same AUC and different OPAUC(0.2).",
           figure_data.equal_auc_pair, roc.plot_equal_auc, seeded=True),
    Figure("theorem3_envelope",
           "Theorem 3: Recall@K vs raw OPAUC(K/N-) over every ranking of a small case, "
           "with the bounds of Eqs. 19-20.",
           figure_data.theorem3_envelope, theorem3.plot_theorem3_envelope),
    Figure("theorem2_tau_vs_lambda",
           "Theorem 2: Eq. 25's tau over the exact KL-DRO lambda, against rho.",
           figure_data.tau_vs_lambda, kl_tau.plot_tau_vs_lambda, seeded=True),
    Figure("fig6_topk_correlation",
           "Paper Fig. 6: Pearson r of Precision/Recall/NDCG@K with OPAUC(beta) over uniformly "
           "random rankings (N+ = 200, N- = 800), peaks marked; right: peak beta vs K.",
           figure_data.fig6_correlations, _plot_fig6, seeded=True),
    Figure("score_models",
           "Beyond the paper: peak beta and peak r of Recall@K vs the separation mu of binormal, "
           "Student-t and mixture score models.",
           figure_data.score_model_peaks, _plot_score_models, seeded=True),
    Figure("fig7_sampling",
           "Paper Fig. 7: cumulative sampling probability of DNS(M,N) (exact law and the sampler) "
           "and Softmax-v(rho,N) (the sampler) over negatives sorted by score (1,000 standard "
           "normal scores).",
           figure_data.sampling_laws, sampling.plot_sampling_laws, seeded=True),
    Figure("fig8_hardness_vs_k",
           "Paper Figs. 8-11 on planted data: Recall@K relative to its best over the M, N and rho "
           "grids, for K = 5, 20, 50; top row on the training interactions (where the guideline "
           "holds), bottom row held-out (where it does not).",
           figure_data.hardness_vs_k, hardness.plot_hardness_vs_k, seeded=True),
]

# The README's figures at the paper's sizes (python -m figures --readme; --quick: small sizes).
README_FIGURES = [
    Figure("fig6_uniform",
           "README: paper Fig. 6 at the paper's scale (100,000 uniformly random rankings, "
           "N+ = 200, N- = 800).",
           figure_data.fig6_correlations, _plot_fig6, data_kwargs={"n_rankings": 100_000},
           seeded=True, quick_kwargs={"n_rankings": 5_000}, readme_dpi=100),
    Figure("score_models",
           "README: peak beta, peak r and r with AUC of Recall@K vs the separation mu of score "
           "models, and the binormal model with mu varying per ranking.",
           figure_data.score_model_peaks, _plot_score_models,
           data_kwargs={"mus": tuple(0.25 * i for i in range(13)), "n_rankings": 20_000,
                        "spread": 1.0},
           seeded=True, quick_kwargs={"mus": tuple(0.5 * i for i in range(7)), "n_rankings": 2_000},
           readme_dpi=90),
]


def figure_data_frame(figure: Figure, data_dir: str | os.PathLike, seed: int = 0, *,
                      quick: bool = False) -> pd.DataFrame:
    """The figure's data from ``data_dir`` if cached for this seed (and size), else computed and
    cached (written through :func:`simulations.files.atomic_path`)."""
    seed = check_int(seed, "seed", low=0)
    quick = quick and bool(figure.quick_kwargs)
    stem = figure.name + ("_quick" if quick else "") + (f"_seed{seed}" if figure.seeded else "")
    path = Path(data_dir) / f"{stem}.csv"
    if path.exists():
        return pd.read_csv(path)
    kwargs = dict(figure.data_kwargs, **(figure.quick_kwargs if quick else {}),
                  **({"seed": seed} if figure.seeded else {}))
    frame = figure.make_data(**kwargs)
    with atomic_path(path) as tmp:
        frame.to_csv(tmp, index=False)
    return frame


def draw(figure: Figure, frame: pd.DataFrame, out_dir: str | os.PathLike) -> list[Path]:
    """Draw one figure from its data and save it into ``out_dir``; returns the written paths.

    A paper figure is drawn and saved inside :func:`figures.style.theme` (and leaves
    matplotlib's rcParams as they were); a README figure in the style in force.
    """
    if figure.readme_dpi is not None:
        return [save_palette_png(figure.plot(frame), Path(out_dir) / f"{figure.name}.png",
                                 dpi=figure.readme_dpi)]
    with theme():
        return save(figure.plot(frame), out_dir, figure.name)


def draw_all(data_dir: str | os.PathLike, out_dir: str | os.PathLike, seed: int = 0,
             only: Iterable[str] | None = None, *, figures: Iterable[Figure] = FIGURES,
             quick: bool = False) -> list[tuple[Figure, list[Path]]]:
    """Draw every figure of ``figures`` (or those named in ``only``); returns (figure, written
    paths) pairs."""
    only = None if only is None else set(only)
    drawn = []
    for figure in figures:
        if only and figure.name not in only:
            continue
        frame = figure_data_frame(figure, data_dir, seed, quick=quick)
        drawn.append((figure, draw(figure, frame, out_dir)))
    return drawn
