"""Shared look and saving of every figure, without touching the user's matplotlib state.

Importing this module (or any module of figures/) changes no global state: no backend is
chosen and no rcParams are set.  The house style (seaborn's colorblind palette, "whitegrid",
fonts large enough for a slide) is applied only inside :func:`theme`, a
:func:`matplotlib.rc_context` whose parameters come from seaborn's ``plotting_context`` and
``axes_style``; on leaving it matplotlib's rcParams are exactly as before.  Figures are built
as :class:`matplotlib.figure.Figure` objects (:func:`subplots`), not through pyplot, so drawing
one registers nothing with pyplot and does not make pyplot pick a backend.

Only the command-line entry points (``python -m figures``, ``paper_checks.py``) call
:func:`use_agg_backend`, which selects the non-interactive Agg backend when the user has
not chosen one.

Every file is written through :func:`simulations.files.atomic_path` (a temporary file, then a
rename).
"""
from __future__ import annotations

import contextlib
import functools
import io
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import matplotlib
import seaborn as sns
from cycler import cycler
from matplotlib.figure import Figure

from simulations.files import atomic_path

__all__ = ["FORMATS", "palette", "save", "save_palette_png", "subplots", "theme", "themed",
           "use_agg_backend"]

FORMATS = ("png", "pdf")


def theme_rc() -> dict[str, Any]:
    """The rcParams of the house style (what ``seaborn.set_theme(context="talk",
    style="whitegrid", palette="colorblind", font_scale=0.8)`` would set, except seaborn's
    remapping of the one-letter colour codes, which is not an rcParam)."""
    rc: dict[str, Any] = dict(sns.plotting_context("talk", font_scale=0.8))
    rc.update(sns.axes_style("whitegrid", rc={"font.family": "sans-serif"}))
    rc["axes.prop_cycle"] = cycler("color", sns.color_palette("colorblind"))
    return rc


@contextlib.contextmanager
def theme() -> Iterator[None]:
    """The house style for the figures drawn (and saved) inside the ``with`` block.

    Examples
    --------
    >>> import matplotlib
    >>> before = matplotlib.rcParams["font.size"]
    >>> with theme():
    ...     matplotlib.rcParams["axes.grid"]
    True
    >>> matplotlib.rcParams["font.size"] == before
    True
    """
    with matplotlib.rc_context(theme_rc()):
        yield


def themed(plot: Callable[..., Figure]) -> Callable[..., Figure]:
    """Decorator: run a plotting function inside :func:`theme`.

    The figure is drawn once (without rendering) before leaving the style, because matplotlib
    creates some artists (the ticks) only when a figure is first drawn, reading the rcParams
    of that moment: a figure saved or shown later outside the style keeps the house look.
    """
    @functools.wraps(plot)
    def draw(*args: Any, **kwargs: Any) -> Figure:
        with theme():
            fig = plot(*args, **kwargs)
            fig.draw_without_rendering()
        return fig

    return draw


def subplots(nrows: int = 1, ncols: int = 1, *, figsize: tuple[float, float] | None = None,
             constrained_layout: bool = False, **kwargs: Any) -> tuple[Figure, Any]:
    """Like :func:`matplotlib.pyplot.subplots`, but without pyplot: (figure, axes).

    The figure is not registered with pyplot (nothing to close, no backend chosen); it saves
    with ``savefig`` and shows in notebooks as usual.

    Examples
    --------
    >>> fig, axes = subplots(1, 2, figsize=(4, 2))
    >>> len(axes), fig.get_size_inches().tolist()
    (2, [4.0, 2.0])
    """
    fig = Figure(figsize=figsize, constrained_layout=constrained_layout)
    return fig, fig.subplots(nrows, ncols, **kwargs)


def palette(n: int) -> list[tuple[float, float, float]]:
    """The first ``n`` colours of seaborn's colorblind palette (RGB tuples)."""
    return sns.color_palette("colorblind", n)


def _close(fig: Figure) -> None:
    # A figure made through pyplot stays registered until closed; ours (subplots) are not.
    import matplotlib.pyplot as plt

    plt.close(fig)


def save(fig: Figure, out_dir: str | os.PathLike, name: str) -> list[Path]:
    """Write ``name.png`` and ``name.pdf`` into ``out_dir`` (150 dpi, tight bounding box),
    each through :func:`simulations.files.atomic_path`; returns the two paths."""
    out = Path(out_dir)
    paths = []
    for fmt in FORMATS:
        target = out / f"{name}.{fmt}"
        with atomic_path(target) as tmp:
            fig.savefig(tmp, format=fmt, dpi=150, bbox_inches="tight")
        paths.append(target)
    _close(fig)
    return paths


def save_palette_png(fig: Figure, path: str | os.PathLike, dpi: int = 100) -> Path:
    """Save ``fig`` as a PNG quantised to a 256-colour palette (small files for the README),
    through :func:`simulations.files.atomic_path`; returns the path."""
    from PIL import Image

    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi)
    buffer.seek(0)
    with Image.open(buffer) as image, atomic_path(path) as tmp:
        image.convert("RGB").quantize(colors=256, method=Image.Quantize.MEDIANCUT).save(
            tmp, format="PNG", optimize=True)
    _close(fig)
    return Path(path)


def use_agg_backend() -> None:
    """Select matplotlib's non-interactive Agg backend unless the user chose a backend
    (``MPLBACKEND``, a matplotlibrc ``backend`` line or an earlier ``matplotlib.use``).

    For the command-line entry points only (they write files and never show a window);
    library code must not call it.
    """
    if matplotlib.get_backend(auto_select=False) is None:
        matplotlib.use("Agg")
