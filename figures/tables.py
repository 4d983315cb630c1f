"""The README's result tables, generated from the committed results files (``results/*.csv``).

Each table is a block of README.md between ``<!-- results:NAME -->`` and
``<!-- /results:NAME -->``; ``python -m figures.tables`` regenerates every block from the
results files (atomically), ``python -m figures.tables --check`` exits 1 if any block differs
from what the results give.  No number in these blocks is typed by hand.

Tables
------
``table2-gowalla``
    Table 2 on Gowalla (MF, K = 50): BPR, DNS(M = 1), the best DNS(M, 200) and the best
    Softmax-v(rho, 200) at each weight decay that ran, next to the paper's numbers.  "Best" is
    the highest Recall@50 over the grid at that weight decay; with several seeds a cell is the
    mean +- standard deviation (ddof = 1) over seeds of that configuration.
``grid-gowalla``
    Recall@50 / NDCG@50 of every grid point (M and rho), per weight decay.
``guideline2-gowalla``
    The best M and rho at K = 5, 20, 50 (Recall and NDCG) per weight decay with at least two
    grid points of a family.
"""
from __future__ import annotations

import argparse
import os
import re
import sys
import tempfile
from pathlib import Path

import pandas as pd

from training.results import RESULTS_DIR, read_results

README = Path(__file__).resolve().parents[1] / "README.md"

# Table 2 of the paper, Gowalla, MF: (Recall@50, NDCG@50).
PAPER_GOWALLA_MF = {"BPR": (0.2048, 0.1216), "DNS (M=1)": (0.1839, 0.1412),
                    "DNS(M,N)": (0.2989, 0.1811), "Softmax-v(rho,N)": (0.2993, 0.1837)}
FAMILY = {"uniform": "BPR", "dns": "DNS", "softmax_v": "Softmax-v"}
KS = (5, 20, 50)


def _runs(frame: pd.DataFrame, dataset: str, model: str = "mf") -> pd.DataFrame:
    frame = frame[(frame["dataset"] == dataset) & (frame["model"] == model)].copy()
    frame["family"] = frame["sampler"].map(FAMILY)
    return frame


def _cell(values: pd.Series) -> str:
    if len(values) == 1:
        return f"{values.iloc[0]:.4f}"
    return f"{values.mean():.4f} ± {values.std(ddof=1):.4f} (n={len(values)})"


def _configurations(runs: pd.DataFrame) -> pd.DataFrame:
    """Mean over seeds of each (sampler_label, weight_decay, epochs) configuration."""
    metrics = [f"{m}@{k}" for m in ("recall", "ndcg") for k in KS]
    keys = ["family", "sampler_label", "m", "rho", "weight_decay", "epochs"]
    return runs.groupby(keys, as_index=False)[metrics].mean()


def table2(frame: pd.DataFrame, dataset: str = "gowalla") -> str:
    """Markdown of Table 2's four rows per weight decay (see the module docstring)."""
    runs = _runs(frame, dataset)
    if runs.empty:
        return "_No runs recorded yet._"
    configs = _configurations(runs)
    lines = ["| weight decay | epochs | method | configuration | Recall@50 | paper | NDCG@50 | paper |",
             "|---|---|---|---|---|---|---|---|"]
    for (wd, epochs), group in configs.groupby(["weight_decay", "epochs"]):
        picks = {"BPR": group[group["family"] == "BPR"],
                 "DNS (M=1)": group[(group["family"] == "DNS") & (group["m"] == 1)],
                 "DNS(M,N)": group[group["family"] == "DNS"],
                 "Softmax-v(rho,N)": group[group["family"] == "Softmax-v"]}
        for method, candidates in picks.items():
            if candidates.empty:
                continue
            best = candidates.loc[candidates["recall@50"].idxmax()]
            seeds = runs[(runs["sampler_label"] == best["sampler_label"])
                         & (runs["weight_decay"] == wd) & (runs["epochs"] == epochs)]
            paper_r, paper_n = PAPER_GOWALLA_MF[method]
            lines.append(f"| {wd:g} | {epochs} | {method} | {best['sampler_label']} | "
                         f"{_cell(seeds['recall@50'])} | {paper_r:.4f} | "
                         f"{_cell(seeds['ndcg@50'])} | {paper_n:.4f} |")
    return "\n".join(lines)


def grid(frame: pd.DataFrame, dataset: str = "gowalla") -> str:
    """Markdown of Recall@50 / NDCG@50 for every configuration, per weight decay."""
    runs = _runs(frame, dataset)
    if runs.empty:
        return "_No runs recorded yet._"
    lines = ["| weight decay | epochs | configuration | seeds | Recall@50 | NDCG@50 | s/epoch | revision |",
             "|---|---|---|---|---|---|---|---|"]
    order = runs.assign(order=runs["family"].map({"BPR": 0, "DNS": 1, "Softmax-v": 2}))
    for (wd, epochs, _, _, _, label), group in order.groupby(
            ["weight_decay", "epochs", "order", "m", "rho", "sampler_label"]):
        lines.append(f"| {wd:g} | {epochs} | {label} | {len(group)} | {_cell(group['recall@50'])} | "
                     f"{_cell(group['ndcg@50'])} | {group['seconds_per_epoch'].median():.2f} | "
                     f"{', '.join(sorted(set(group['git_revision'])))} |")
    return "\n".join(lines)


def guideline2(frame: pd.DataFrame, dataset: str = "gowalla") -> str:
    """Markdown of the best M and rho at K = 5, 20, 50 (means over seeds), per weight decay."""
    runs = _runs(frame, dataset)
    configs = _configurations(runs)
    lines = ["| weight decay | epochs | family | metric | best at K = 5 | K = 20 | K = 50 | grid points |",
             "|---|---|---|---|---|---|---|---|"]
    for (wd, epochs), group in configs.groupby(["weight_decay", "epochs"]):
        for family, param in (("DNS", "m"), ("Softmax-v", "rho")):
            points = group[group["family"] == family]
            if len(points) < 2:
                continue
            for metric in ("recall", "ndcg"):
                picks = [f"{points.loc[points[f'{metric}@{k}'].idxmax(), param]:g}" for k in KS]
                lines.append(f"| {wd:g} | {epochs} | {family} | {metric.capitalize()} | "
                             f"{param.upper() if param == 'm' else 'ρ'} = {picks[0]} | "
                             f"{picks[1]} | {picks[2]} | {len(points)} |")
    if len(lines) == 2:
        return "_No weight decay has two grid points of a family yet._"
    return "\n".join(lines)


# name -> (results file, renderer)
TABLES = {
    "table2-gowalla": ("gowalla_mf.csv", table2),
    "grid-gowalla": ("gowalla_mf.csv", grid),
    "guideline2-gowalla": ("gowalla_mf.csv", guideline2),
}
_BLOCK = re.compile(r"(<!-- results:(?P<name>[\w-]+) -->\n)(?P<body>.*?)(\n<!-- /results:(?P=name) -->)",
                    re.S)


def render(name: str, results_dir: str | os.PathLike = RESULTS_DIR) -> str:
    """The Markdown of table ``name`` from the results files in ``results_dir``."""
    if name not in TABLES:
        raise ValueError(f"name: unknown table {name!r}; known: {', '.join(TABLES)}")
    filename, renderer = TABLES[name]
    return renderer(read_results(Path(results_dir) / filename))


def update_readme(readme: str | os.PathLike = README,
                  results_dir: str | os.PathLike = RESULTS_DIR, *, check: bool = False) -> list[str]:
    """Regenerate every results block of ``readme``; returns the names of blocks that changed.

    With ``check=True`` nothing is written.  Raises ValueError for a block of an unknown table.
    """
    text = Path(readme).read_text(encoding="utf-8")
    changed = []

    def replace(match):
        body = render(match["name"], results_dir)
        if body != match["body"]:
            changed.append(match["name"])
        return match.group(1) + body + match.group(4)

    new = _BLOCK.sub(replace, text)
    if changed and not check:
        fd, tmp = tempfile.mkstemp(dir=Path(readme).parent, prefix=".README.", suffix=".tmp")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                handle.write(new)
            os.replace(tmp, readme)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
    return changed


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m figures.tables",
                                     description="Regenerate README.md's result tables from results/.")
    parser.add_argument("--check", action="store_true",
                        help="only report blocks that differ (exit 1 if any)")
    parser.add_argument("--readme", type=Path, default=README)
    parser.add_argument("--results", type=Path, default=RESULTS_DIR)
    args = parser.parse_args(argv)
    changed = update_readme(args.readme, args.results, check=args.check)
    verb = "differ" if args.check else "updated"
    print(f"{len(changed)} block(s) {verb}: {', '.join(changed) or '-'}")
    return 1 if (args.check and changed) else 0


if __name__ == "__main__":
    sys.exit(main())
