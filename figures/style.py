"""Shared look of every figure: seaborn's colorblind palette, slide-readable fonts, atomic saves."""
from __future__ import annotations

import os
import tempfile
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # figures are files; no display needed
import matplotlib.pyplot as plt  # noqa: E402
import seaborn as sns  # noqa: E402

FORMATS = ("png", "pdf")


def apply_style() -> None:
    """Colorblind-safe palette and fonts large enough for a slide."""
    sns.set_theme(context="talk", style="whitegrid", palette="colorblind", font_scale=0.8)


def palette(n: int):
    return sns.color_palette("colorblind", n)


def save(fig, out_dir: str | os.PathLike, name: str) -> list[Path]:
    """Write ``name.png`` and ``name.pdf`` into out_dir, each through a temporary file."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for fmt in FORMATS:
        target = out / f"{name}.{fmt}"
        fd, tmp = tempfile.mkstemp(dir=out, prefix=f".{name}.", suffix=f".{fmt}")
        os.close(fd)
        try:
            fig.savefig(tmp, format=fmt, dpi=150, bbox_inches="tight")
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        paths.append(target)
    plt.close(fig)
    return paths
