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

from figures import kl_tau, roc, sampling, theorem3
from figures.style import save
from simulations import figure_data


@dataclass(frozen=True)
class Figure:
    name: str
    caption: str
    make_data: Callable[..., pd.DataFrame]
    plot: Callable[[pd.DataFrame], object]
    data_kwargs: dict = field(default_factory=dict)
    seeded: bool = False


FIGURES = [
    Figure("fig2_roc_opauc", "Paper Fig. 2: AUC integrates the whole ROC curve, OPAUC(beta) only FPR <= beta.",
           figure_data.roc_example, roc.plot_roc_opauc, seeded=True),
    Figure("fig3_equal_auc", "Paper Fig. 3: two rankings with the same AUC and different OPAUC(0.2).",
           figure_data.equal_auc_pair, roc.plot_equal_auc, seeded=True),
    Figure("theorem3_envelope", "Theorem 3: Recall@K vs raw OPAUC(K/N-) over every ranking of a small case, with the bounds of Eqs. 19-20.",
           figure_data.theorem3_envelope, theorem3.plot_theorem3_envelope),
    Figure("theorem2_tau_vs_lambda", "Theorem 2: Eq. 25's tau over the exact KL-DRO lambda, against rho.",
           figure_data.tau_vs_lambda, kl_tau.plot_tau_vs_lambda, seeded=True),
    Figure("fig7_dns_sampling", "Paper Fig. 7: exact cumulative sampling law of DNS(M,N) over negatives sorted by score.",
           figure_data.dns_sampling_laws, sampling.plot_sampling_cdfs),
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
