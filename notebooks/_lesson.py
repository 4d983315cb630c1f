"""Display glue shared by the classroom notebooks (no metric, estimator or simulation here).

Everything the lessons compute comes from hnslab (``theory``, ``simulations``, ``training``,
``figures.data``); this module only parses a typed ranking, formats numbers, draws the ranking
strip and turns problems into callouts, so that the six notebooks look alike.
"""
from __future__ import annotations

import base64
import io

import marimo as mo
import matplotlib.colors
import numpy as np
from matplotlib.collections import PatchCollection
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

#: Colours of positives and negatives (seaborn's colorblind palette: blue and grey).
POS_COLOR = "#0173b2"
NEG_COLOR = "#949494"
HARD_COLOR = "#d55e00"  # vermillion: the negatives that OPAUC(beta) / DNS look at
ACCENT = "#029e73"  # green: K cut-off, bounds

#: Said while numba compiles on a cold cache, so a first open does not look frozen.
COMPILING = ("Computing... the first run after installing compiles hnslab's numba kernels "
             "(up to a minute); later runs take a fraction of a second.")

DIGITS = 4


def one_numba_thread() -> None:
    """Run hnslab's numba kernels on one thread in this lesson.

    A lesson evaluates one small ranking at a time: the parallel kernels would wait for a
    second thread on every call (a time slice on a busy machine); one thread keeps a redraw
    short.  Called from the lessons' setup cell.
    """
    import numba

    numba.set_num_threads(1)


def fmt(value, digits: int = DIGITS) -> str:
    """The one number format of the lessons (the tests search the output for it)."""
    value = float(value)
    if not np.isfinite(value):
        return "n/a"
    return f"{value:.{digits}f}"


def parse_ranking(text, seed: int = 0):
    """A ranking typed as ``+`` (positive) and ``-`` (negative), best first.

    Spaces, commas and ``|`` are ignored; ``seed > 0`` shuffles the typed ranking with
    ``numpy.random.default_rng(seed)``.  Returns ``(labels, problem)``: a bool array and None,
    or None and a sentence saying what is wrong (for a callout, never a traceback).
    """
    if text is None:
        text = ""
    cleaned = "".join(ch for ch in str(text) if ch not in " ,|\t\n")
    cleaned = cleaned.replace("\u2212", "-").replace("\u2013", "-")  # typographic minus signs
    if not cleaned:
        return None, "The ranking is empty: type it as a string of `+` and `-`, best item first."
    bad = sorted({ch for ch in cleaned if ch not in "+-"})
    if bad:
        shown = ", ".join(f"`{ch}`" for ch in bad[:5])
        return None, (f"The ranking may only hold `+` (positive) and `-` (negative); "
                      f"found {shown}.")
    labels = np.array([ch == "+" for ch in cleaned], dtype=bool)
    if not labels.any():
        return None, ("The ranking has no positive (`+`): AUC, OPAUC and Recall are undefined "
                      "without one.")
    if labels.all():
        return None, ("The ranking has no negative (`-`): AUC and OPAUC compare positives with "
                      "negatives, so they need at least one.")
    try:
        seed = int(seed or 0)
    except (TypeError, ValueError):
        return None, f"The shuffle seed must be a whole number, got {seed!r}."
    if seed < 0:
        return None, f"The shuffle seed must be 0 (no shuffle) or positive, got {seed}."
    if seed > 0:
        labels = np.random.default_rng(seed).permutation(labels)
    return labels, None


def ranking_string(labels) -> str:
    return "".join("+" if x else "-" for x in np.asarray(labels, dtype=bool))


def problem(message: str, kind: str = "warn"):
    """A callout for bad input (the lessons never show a traceback for a control value).

    ``None`` (no problem) gives an empty output, so ``mo.stop(p is not None, problem(p))``
    can build its output eagerly.
    """
    if message is None:
        return mo.md("")
    return mo.callout(mo.md(message), kind=kind)


def table(rows, header=("quantity", "value", "meaning")) -> str:
    """A markdown table from rows of strings."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def figure_with_table(fig, rows, header=("quantity", "value", "meaning"), below=()):
    """A lesson's usual output: the figure (:func:`show`), the table of its numbers
    (:func:`table`), then the outputs in ``below``."""
    return mo.vstack([show(fig), mo.md(table(rows, header)), *below])


def figure(width: float = 6.0, height: float = 3.0, ncols: int = 1, nrows: int = 1, **kwargs):
    """A new figure with ``nrows`` x ``ncols`` axes (constrained layout).

    A plain matplotlib Figure, not a pyplot one: the lessons render it to an image themselves
    (:func:`show`), so no backend is chosen and nothing stays registered with pyplot.
    """
    fig = Figure(figsize=(width, height), layout="constrained")
    return fig, fig.subplots(nrows, ncols, **kwargs)


def mosaic(layout, width: float = 6.0, height: float = 3.0, **kwargs):
    """A new figure from ``Figure.subplot_mosaic(layout)`` (constrained layout): (fig, axes dict)."""
    fig = Figure(figsize=(width, height), layout="constrained")
    return fig, fig.subplot_mosaic(layout, **kwargs)


def show(fig):
    """Render a figure to an SVG image now (marimo keeps the image, not the figure).

    One draw, without marimo's ``bbox_inches="tight"`` second pass: the figures use constrained
    layout, so nothing is cut off, and a slider's redraw costs half as much.
    """
    buf = io.BytesIO()
    fig.savefig(buf, format="svg")
    data = base64.b64encode(buf.getvalue()).decode("ascii")
    return mo.Html(f'<img src="data:image/svg+xml;base64,{data}" style="max-width: 100%" '
                   f'alt="figure"/>')


def draw_strip(ax, labels, k=None, hard=None, title=None):
    """Draw a ranking as a row of squares, best first.

    ``k``: a line after the K-th item.  ``hard``: per-item weights in [0, 1] of the negatives
    that OPAUC(beta) counts (drawn as an orange frame whose opacity is the weight).
    Squares, signs and frames are one collection each (fast to redraw when a slider moves).
    """
    labels = np.asarray(labels, dtype=bool)
    n = labels.size
    x = np.arange(n)
    squares = [Rectangle((i + 0.06, 0.06), 0.88, 0.88) for i in x]
    ax.add_collection(PatchCollection(squares, facecolors=np.where(labels, POS_COLOR, NEG_COLOR),
                                      edgecolors="none"))
    # White signs: a plus for a positive, a bar for a negative (markers, not text objects).
    marker_size = min(9.0, 240.0 / max(n, 1))
    ax.plot(x[labels] + 0.5, np.full(labels.sum(), 0.5), "+", color="white", ms=marker_size,
            mew=2)
    ax.plot(x[~labels] + 0.5, np.full((~labels).sum(), 0.5), "_", color="white", ms=marker_size,
            mew=2)
    if hard is not None and np.any(np.asarray(hard) > 0):
        hard = np.asarray(hard, dtype=float)
        which = np.flatnonzero(hard > 0)
        edge = np.zeros((which.size, 4))
        edge[:] = matplotlib.colors.to_rgba(HARD_COLOR)
        edge[:, 3] = np.minimum(1.0, hard[which])
        frames = [Rectangle((i + 0.02, 0.02), 0.96, 0.96) for i in which]
        ax.add_collection(PatchCollection(frames, facecolors="none", edgecolors=edge,
                                          linewidths=2.5))
    if k is not None and 0 < k <= n:
        ax.axvline(k, color=ACCENT, lw=2.5)
        ax.text(k, 1.12, f"top {k}", color=ACCENT, ha="right", va="bottom", fontsize=9)
    ax.set_xlim(-0.1, n + 0.1)
    ax.set_ylim(0, 1.45)
    ax.set_xticks(x + 0.5, [str(i + 1) if (i == 0 or (i + 1) % 5 == 0) else "" for i in x],
                  fontsize=8)
    ax.set_yticks([])
    for side in ("top", "right", "left"):
        ax.spines[side].set_visible(False)
    if title:
        ax.set_title(title, fontsize=10, loc="left")


def roc_up_to(fpr, tpr, beta):
    """The ROC polyline (vertices from ``theory.metrics.roc_points``) cut at FPR = beta.

    For shading the OPAUC(beta) area: the vertices with FPR <= beta, then the point of the
    curve at beta (on the segment that crosses it; a tie group's segment is diagonal).
    """
    fpr = np.asarray(fpr, dtype=float)
    tpr = np.asarray(tpr, dtype=float)
    keep = fpr <= beta
    after = np.flatnonzero(fpr > beta)
    if after.size == 0:
        return fpr, tpr
    j = after[0]
    x0, x1, y0, y1 = fpr[j - 1], fpr[j], tpr[j - 1], tpr[j]
    y_beta = y0 + (y1 - y0) * (beta - x0) / (x1 - x0)
    return np.append(fpr[keep], beta), np.append(tpr[keep], y_beta)
