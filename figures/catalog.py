"""Every figure: the simulation function that makes its data, and the plot that draws it.

``draw_all`` computes each figure's data once (cached as CSV in ``data_dir``; a later call
only redraws) and writes PNG + PDF files into ``out_dir``.  ``python -m figures`` runs it.
"""
from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import pandas as pd

from figures import correlation, hardness, kl_tau, roc, sampling, theorem3
from figures.style import save
from figures import data as figure_data


@dataclass(frozen=True)
class Figure:
    name: str
    caption: str
    make_data: Callable[..., pd.DataFrame]
    plot: Callable[[pd.DataFrame], object]
    data_kwargs: dict = field(default_factory=dict)
    seeded: bool = False


def _with_attrs(frame: pd.DataFrame) -> pd.DataFrame:
    """Restore the configuration attrs (lost in CSV) from the constant columns."""
    frame = frame.copy()
    for name in ("n_pos", "n_neg", "n_rankings"):
        if name in frame:
            frame.attrs[name] = int(frame[name].iloc[0])
    frame.attrs.setdefault("model", "Uniform")
    return frame


def _plot_fig6(frame):
    return correlation.plot_topk_correlation(_with_attrs(frame))


def _plot_score_models(frame):
    return correlation.plot_score_model_peaks(frame, n_neg=int(frame["n_neg"].iloc[0]))


FIGURES = [
    Figure("fig2_roc_opauc", "Paper Fig. 2: AUC integrates the whole ROC curve, OPAUC(beta) only FPR <= beta.",
           figure_data.roc_example, roc.plot_roc_opauc, seeded=True),
    Figure("fig3_equal_auc", "Paper Fig. 3: two rankings with the same AUC and different OPAUC(0.2).",
           figure_data.equal_auc_pair, roc.plot_equal_auc, seeded=True),
    Figure("theorem3_envelope", "Theorem 3: Recall@K vs raw OPAUC(K/N-) over every ranking of a small case, with the bounds of Eqs. 19-20.",
           figure_data.theorem3_envelope, theorem3.plot_theorem3_envelope),
    Figure("theorem2_tau_vs_lambda", "Theorem 2: Eq. 25's tau over the exact KL-DRO lambda, against rho.",
           figure_data.tau_vs_lambda, kl_tau.plot_tau_vs_lambda, seeded=True),
    Figure("fig6_topk_correlation", "Paper Fig. 6: Pearson r of Precision/Recall/NDCG@K with OPAUC(beta) over uniformly random rankings (N+ = 200, N- = 800), peaks marked; right: peak beta vs K.",
           figure_data.fig6_correlations, _plot_fig6, seeded=True),
    Figure("score_models", "Beyond the paper: peak beta and peak r of Recall@K vs the separation mu of binormal, Student-t and mixture score models.",
           figure_data.score_model_peaks, _plot_score_models, seeded=True),
    Figure("fig7_sampling", "Paper Fig. 7: cumulative sampling probability of DNS(M,N) (exact law and the sampler) and Softmax-v(rho,N) (the sampler) over negatives sorted by score (1,000 standard normal scores).",
           figure_data.sampling_laws, sampling.plot_sampling_laws, seeded=True),
    Figure("fig8_hardness_vs_k", "Paper Figs. 8-11 on planted data: Recall@K relative to its best over the M, N and rho grids, for K = 5, 20, 50; top row on the training interactions (where the guideline holds), bottom row held-out (where it does not).",
           figure_data.hardness_vs_k, hardness.plot_hardness_vs_k, seeded=True),
]


def _write_csv(frame: pd.DataFrame, path: Path) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        frame.to_csv(tmp, index=False)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def figure_data_frame(figure: Figure, data_dir: str | os.PathLike, seed: int = 0) -> pd.DataFrame:
    """The figure's data from ``data_dir`` if cached for this seed, else computed and cached."""
    data_dir = Path(data_dir)
    data_dir.mkdir(parents=True, exist_ok=True)
    path = data_dir / (f"{figure.name}_seed{seed}.csv" if figure.seeded else f"{figure.name}.csv")
    if path.exists():
        return pd.read_csv(path)
    kwargs = dict(figure.data_kwargs, **({"seed": seed} if figure.seeded else {}))
    frame = figure.make_data(**kwargs)
    _write_csv(frame, path)
    return frame


def draw_all(data_dir, out_dir, seed: int = 0, only=None) -> list[tuple[Figure, list[Path]]]:
    """Draw every figure (or those named in ``only``); returns (figure, written paths) pairs."""
    drawn = []
    for figure in FIGURES:
        if only and figure.name not in only:
            continue
        frame = figure_data_frame(figure, data_dir, seed)
        drawn.append((figure, save(figure.plot(frame), out_dir, figure.name)))
    return drawn
