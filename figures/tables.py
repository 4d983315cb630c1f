"""The README's result tables, generated from the committed results files (``results/*.csv``).

Each table is a block of README.md between ``<!-- results:NAME -->`` and
``<!-- /results:NAME -->``; ``python -m figures.tables`` regenerates every block from the
results files (atomically), ``python -m figures.tables --check`` exits 1 if any block differs
from what the results give.  No number in these blocks is typed by hand.

Tables (``<dataset>`` is one of :data:`DATASETS`; ``results/<dataset>_<model>.csv``)
--------------------------------------------------------------------------------
``table2-<dataset>``
    Table 2 (MF, K = 50): BPR, DNS(M = 1), the best DNS(M, 200) and the best
    Softmax-v(rho, 200) at each weight decay that ran, next to the paper's numbers (Gowalla;
    Yelp2018 and MovieLens-1M are stand-ins, not the paper's data sets: no paper column).
    "Best" is the highest mean Recall@50 over the grid at that weight decay; with several
    seeds a cell is the mean +- standard deviation (ddof = 1) over seeds of that configuration.
``table3-gowalla``
    Table 3 on Gowalla (LightGCN, K = 50): BPR, the best DNS(M, 200) and the best
    Softmax-v(rho, 200) per weight decay, next to the paper's numbers.
``grid-<dataset>-<model>``
    Recall@50 / NDCG@50 of every configuration that ran, per weight decay (``grid-gowalla``:
    the README's earlier name of ``grid-gowalla-mf``).
``guideline2-<dataset>``
    MF: the best M and rho at K = 5, 20, 50 (Recall and NDCG; means over seeds) per weight
    decay with at least two grid points of a family, and the seed-noise verdict of
    :func:`guideline2`.

A block of a data set without runs is one "no runs yet" line.
"""
from __future__ import annotations

import argparse
import functools
import math
import os
import re
import sys
from pathlib import Path

import pandas as pd

from simulations.files import atomic_write_text
from training.results import METRIC_COLUMNS, RESULTS_DIR, read_results

README = Path(__file__).resolve().parents[1] / "README.md"
#: How the tables write a metric's name.
METRIC_NAMES = {"recall": "Recall", "ndcg": "NDCG"}


def _metric_label(column: str) -> str:
    """``recall@20`` -> ``Recall@20``."""
    name, at, k = column.partition("@")
    return METRIC_NAMES[name] + at + k

# Table 2 of the paper, Gowalla, MF: (Recall@50, NDCG@50).
PAPER_GOWALLA_MF = {"BPR": (0.2048, 0.1216), "DNS (M=1)": (0.1839, 0.1412),
                    "DNS(M,N)": (0.2989, 0.1811), "Softmax-v(rho,N)": (0.2993, 0.1837)}
# Table 3 of the paper, Gowalla, LightGCN: (Recall@50, NDCG@50).
PAPER_GOWALLA_LIGHTGCN = {"BPR": (0.2470, 0.1469), "DNS(M,N)": (0.3176, 0.1954),
                          "Softmax-v(rho,N)": (0.3209, 0.1991)}
PAPER = {("gowalla", "mf"): PAPER_GOWALLA_MF, ("gowalla", "lightgcn"): PAPER_GOWALLA_LIGHTGCN}
FAMILY = {"uniform": "BPR", "dns": "DNS", "softmax_v": "Softmax-v"}
KS = (5, 20, 50)
DATASETS = ("gowalla", "yelp2018", "ml-1m")
MODELS = ("mf", "lightgcn")
DATASET_NAMES = {"gowalla": "Gowalla", "yelp2018": "Yelp2018", "ml-1m": "MovieLens-1M"}
# Data sets that stand in for the paper's (every block showing their numbers says so).
STAND_INS = {"yelp2018": "Yelp2018 is a stand-in, not the paper's data set (the paper's Yelp "
                         "file is not available); the paper has no numbers for it",
             "ml-1m": "MovieLens-1M is a stand-in, not the paper's data set (the paper's "
                      "third data set is Amazon-books); the paper has no numbers for it"}
# Methods of the paper's tables: Table 2 (MF) and Table 3 (LightGCN, no DNS(M=1) row).
METHODS = {"mf": ("BPR", "DNS (M=1)", "DNS(M,N)", "Softmax-v(rho,N)"),
           "lightgcn": ("BPR", "DNS(M,N)", "Softmax-v(rho,N)")}


def select_runs(frame: pd.DataFrame, dataset: str, model: str = "mf") -> pd.DataFrame:
    """The rows of ``dataset`` and ``model``, with a ``family`` column (BPR, DNS, Softmax-v)."""
    frame = frame[(frame["dataset"] == dataset) & (frame["model"] == model)].copy()
    frame["family"] = frame["sampler"].map(FAMILY)
    return frame


def _no_runs(dataset: str, model: str) -> str:
    note = "; a stand-in, not the paper's data set" if dataset in STAND_INS else ""
    name = {"mf": "MF", "lightgcn": "LightGCN"}.get(model, model)
    return f"_No runs yet ({DATASET_NAMES.get(dataset, dataset)}, {name}{note})._"


def _with_label(dataset: str, body: str) -> str:
    """Prefix the stand-in label to a block of a stand-in data set."""
    return f"_{STAND_INS[dataset]}._\n\n{body}" if dataset in STAND_INS else body


def _cell(values: pd.Series) -> str:
    if len(values) == 1:
        return f"{values.iloc[0]:.4f}"
    return f"{values.mean():.4f} ± {values.std(ddof=1):.4f} (n={len(values)})"


def _configurations(runs: pd.DataFrame) -> pd.DataFrame:
    """Mean over seeds of each (sampler_label, weight_decay, epochs) configuration."""
    metrics = [f"{m}@{k}" for m in ("recall", "ndcg") for k in KS]
    keys = ["family", "sampler_label", "m", "rho", "weight_decay", "epochs"]
    return runs.groupby(keys, as_index=False)[metrics].mean()


def table2(frame: pd.DataFrame, dataset: str = "gowalla", model: str = "mf") -> str:
    """Markdown of the paper's Table 2 (MF) or Table 3 (LightGCN) rows per weight decay (see
    the module docstring); paper columns where the paper has numbers for ``(dataset, model)``."""
    runs = select_runs(frame, dataset, model)
    if runs.empty:
        return _no_runs(dataset, model)
    paper = PAPER.get((dataset, model))
    configs = _configurations(runs)
    if paper:
        lines = ["| weight decay | epochs | method | configuration | Recall@50 | paper | NDCG@50 | paper |",
                 "|---|---|---|---|---|---|---|---|"]
    else:
        lines = ["| weight decay | epochs | method | configuration | Recall@50 | NDCG@50 |",
                 "|---|---|---|---|---|---|"]
    for (wd, epochs), group in configs.groupby(["weight_decay", "epochs"]):
        picks = {"BPR": group[group["family"] == "BPR"],
                 "DNS (M=1)": group[(group["family"] == "DNS") & (group["m"] == 1)],
                 "DNS(M,N)": group[group["family"] == "DNS"],
                 "Softmax-v(rho,N)": group[group["family"] == "Softmax-v"]}
        for method in METHODS[model]:
            candidates = picks[method]
            if candidates.empty:
                continue
            best = candidates.loc[candidates["recall@50"].idxmax()]
            seeds = runs[(runs["sampler_label"] == best["sampler_label"])
                         & (runs["weight_decay"] == wd) & (runs["epochs"] == epochs)]
            if paper:
                paper_r, paper_n = paper[method]
                lines.append(f"| {wd:g} | {epochs} | {method} | {best['sampler_label']} | "
                             f"{_cell(seeds['recall@50'])} | {paper_r:.4f} | "
                             f"{_cell(seeds['ndcg@50'])} | {paper_n:.4f} |")
            else:
                lines.append(f"| {wd:g} | {epochs} | {method} | {best['sampler_label']} | "
                             f"{_cell(seeds['recall@50'])} | {_cell(seeds['ndcg@50'])} |")
    return _with_label(dataset, "\n".join(lines))


def grid(frame: pd.DataFrame, dataset: str = "gowalla", model: str = "mf") -> str:
    """Markdown of Recall@50 / NDCG@50 for every configuration, per weight decay."""
    runs = select_runs(frame, dataset, model)
    if runs.empty:
        return _no_runs(dataset, model)
    lines = ["| weight decay | epochs | configuration | seeds | Recall@50 | NDCG@50 | s/epoch | revision |",
             "|---|---|---|---|---|---|---|---|"]
    order = runs.assign(order=runs["family"].map({"BPR": 0, "DNS": 1, "Softmax-v": 2}))
    for (wd, epochs, _, _, _, label), group in order.groupby(
            ["weight_decay", "epochs", "order", "m", "rho", "sampler_label"]):
        lines.append(f"| {wd:g} | {epochs} | {label} | {len(group)} | {_cell(group['recall@50'])} | "
                     f"{_cell(group['ndcg@50'])} | {group['seconds_per_epoch'].median():.2f} | "
                     f"{', '.join(sorted(set(group['git_revision'])))} |")
    return _with_label(dataset, "\n".join(lines))


# Harder along each grid: smaller M (DNS), larger rho (Softmax-v).
_HARDNESS = {"DNS": ("m", -1.0), "Softmax-v": ("rho", 1.0)}


def _seed_verdict(runs: pd.DataFrame, points: pd.DataFrame, family: str, metric: str) -> tuple:
    """(seeds, harder-at-5 cell, noise cell) of one family's grid at one weight decay.

    ``points`` are the grid's configurations (means over seeds); ``runs`` their rows.  The
    complete seeds are those that ran every grid point.  Per complete seed, the best
    hardness at K = 5 and at K = 50 (by ``metric``): in how many seeds is the K = 5 pick at
    least as hard as the K = 50 pick.  Then the picks of the means, p5 and p50: choosing p5
    over p50 gains ``metric@5(p5) - metric@5(p50)`` at K = 5 and choosing p50 gains
    ``metric@50(p50) - metric@50(p5)`` at K = 50 (means over seeds, both >= 0); each gain
    is compared with the seed-to-seed standard deviation (ddof = 1, pooled over p5 and p50:
    the root mean of their two variances) of that metric.  "beyond seed noise" when both
    gains exceed their standard deviation, else "within seed noise".

    With fewer than two complete seeds, the seed-to-seed standard deviation of each metric is
    estimated from the configurations of ``runs`` (any family) that ran with several seeds:
    the root mean of their variances (ddof = 1); the gains are those of the means over each
    configuration's seeds.  With no such configuration: "no seed spread (one seed)".
    """
    param, sign = _HARDNESS[family]
    labels = set(points["sampler_label"])
    grid_runs = runs[runs["sampler_label"].isin(labels)]
    per_seed = grid_runs.groupby("seed")["sampler_label"].nunique()
    seeds = sorted(per_seed[per_seed == len(labels)].index)
    p5 = points.loc[points[f"{metric}@5"].idxmax()]
    p50 = points.loc[points[f"{metric}@50"].idxmax()]
    if len(seeds) < 2:
        harder = "yes" if sign * p5[param] >= sign * p50[param] else "no"
        return len(seeds), f"{harder} (one seed)", _spread_verdict(runs, p5, p50, metric)
    count = 0
    for seed in seeds:
        one = grid_runs[grid_runs["seed"] == seed]
        h5 = one.loc[one[f"{metric}@5"].idxmax(), param]
        h50 = one.loc[one[f"{metric}@50"].idxmax(), param]
        count += bool(sign * h5 >= sign * h50)
    harder = f"{count} of {len(seeds)} seeds"
    if p5["sampler_label"] == p50["sampler_label"]:
        return len(seeds), harder, "same pick at K = 5 and 50"
    complete = grid_runs[grid_runs["seed"].isin(seeds)]
    gains = []
    for k in (5, 50):
        col = f"{metric}@{k}"
        a = complete.loc[complete["sampler_label"] == p5["sampler_label"], col]
        b = complete.loc[complete["sampler_label"] == p50["sampler_label"], col]
        gain = (a.mean() - b.mean()) if k == 5 else (b.mean() - a.mean())
        gains.append((k, gain, math.sqrt((a.var(ddof=1) + b.var(ddof=1)) / 2.0)))
    return len(seeds), harder, _gains_against_noise(gains)


def _gains_against_noise(gains) -> str:
    """``K=5: +gain (sd s); K=50: ...: beyond|within seed noise`` from (k, gain, sd) triples:
    "beyond" when every gain exceeds its standard deviation."""
    parts = "; ".join(f"K={k}: +{gain:.4f} (sd {sd:.4f})" for k, gain, sd in gains)
    beyond = all(gain > sd for _, gain, sd in gains)
    return f"{parts}: {'beyond' if beyond else 'within'} seed noise"


def _spread_verdict(runs: pd.DataFrame, p5: pd.Series, p50: pd.Series, metric: str) -> str:
    """The noise cell of a grid with one complete seed (see :func:`_seed_verdict`): the gains
    of the picks (means over seeds) against the seed spread of the configurations in ``runs``
    that ran with several seeds."""
    counts = runs.groupby("sampler_label")["seed"].nunique()
    several = counts[counts >= 2]
    if several.empty:
        return "no seed spread (one seed)"
    if p5["sampler_label"] == p50["sampler_label"]:
        return "same pick at K = 5 and 50"
    spread = runs[runs["sampler_label"].isin(several.index)]
    gains = []
    for k in (5, 50):
        col = f"{metric}@{k}"
        gain = p5[col] - p50[col] if k == 5 else p50[col] - p5[col]
        gains.append((k, gain, math.sqrt(spread.groupby("sampler_label")[col].var(ddof=1).mean())))
    configurations = "1 configuration" if len(several) == 1 else f"{len(several)} configurations"
    seeds = "/".join(map(str, sorted(set(several))))
    return f"{_gains_against_noise(gains)} (sd from {configurations} with {seeds} seeds)"


def guideline2(frame: pd.DataFrame, dataset: str = "gowalla", model: str = "mf") -> str:
    """Markdown of the best M and rho at K = 5, 20, 50 (means over seeds), per weight decay,
    with the seed-noise verdict of :func:`_seed_verdict` (Guideline 2: the smaller K, the
    harder the best sampler, i.e. smaller M and larger rho)."""
    runs = select_runs(frame, dataset, model)
    if runs.empty:
        return _no_runs(dataset, model)
    configs = _configurations(runs)
    lines = [("| weight decay | epochs | family | metric | best at K = 5 | K = 20 | K = 50 "
              "| grid points | seeds | K = 5 pick at least as hard as K = 50 "
              "| K = 5 pick vs K = 50 pick (gain, seed sd) |"),
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for (wd, epochs), group in configs.groupby(["weight_decay", "epochs"]):
        at = runs[(runs["weight_decay"] == wd) & (runs["epochs"] == epochs)]
        for family, (param, _) in _HARDNESS.items():
            points = group[group["family"] == family]
            if len(points) < 2:
                continue
            for metric in ("recall", "ndcg"):
                picks = [f"{points.loc[points[f'{metric}@{k}'].idxmax(), param]:g}" for k in KS]
                n_seeds, harder, noise = _seed_verdict(at, points, family, metric)
                lines.append(f"| {wd:g} | {epochs} | {family} | {METRIC_NAMES[metric]} | "
                             f"{param.upper() if param == 'm' else 'ρ'} = {picks[0]} | "
                             f"{picks[1]} | {picks[2]} | {len(points)} | {n_seeds} | {harder} | "
                             f"{noise} |")
    if len(lines) == 2:
        return _with_label(dataset, "_No weight decay has two grid points of a family yet._")
    return _with_label(dataset, "\n".join(lines))


# name -> (results file, renderer)
TABLES = {}
for _dataset in DATASETS:
    TABLES[f"table2-{_dataset}"] = (f"{_dataset}_mf.csv",
                                    functools.partial(table2, dataset=_dataset, model="mf"))
    TABLES[f"guideline2-{_dataset}"] = (f"{_dataset}_mf.csv",
                                        functools.partial(guideline2, dataset=_dataset, model="mf"))
    for _model in MODELS:
        TABLES[f"grid-{_dataset}-{_model}"] = (
            f"{_dataset}_{_model}.csv", functools.partial(grid, dataset=_dataset, model=_model))
TABLES["table3-gowalla"] = ("gowalla_lightgcn.csv",
                            functools.partial(table2, dataset="gowalla", model="lightgcn"))
#: The convergence rule (:func:`converged_epochs`): relative shortfall from a curve's best value.
CONVERGENCE_TOLERANCE = 0.01
CONVERGENCE_METRICS = ("recall@20", "ndcg@20")


def converged_epochs(curves: pd.DataFrame, tolerance: float = CONVERGENCE_TOLERANCE,
                     metrics=CONVERGENCE_METRICS) -> tuple[pd.DataFrame, int | None]:
    """Epochs to convergence of learning curves (``reproduce.py --eval-every``'s rows).

    Per curve (configuration, weight decay, seed): the epoch by which every metric in
    ``metrics`` has reached ``(1 - tolerance)`` times that curve's best value (for each metric
    the first evaluation that does; the latest of these), and the epoch of the best Recall@20.
    The chosen training length is the largest such epoch over the curves (the slowest
    configuration decides), or None without curves.
    """
    keys = ["sampler_label", "weight_decay", "seed"]
    rows = []
    for key, curve in curves.groupby(keys, sort=False):
        curve = curve.sort_values("epochs")
        first = [curve.loc[curve[m] >= (1.0 - tolerance) * curve[m].max(), "epochs"].iloc[0]
                 for m in metrics]  # never empty: the best evaluation qualifies
        rows.append({**dict(zip(keys, key)), "evaluated up to": int(curve["epochs"].max()),
                     "converged at": int(max(first)),
                     "best recall@20 at": int(curve.loc[curve["recall@20"].idxmax(), "epochs"])})
    table = pd.DataFrame(rows)
    return table, (int(table["converged at"].max()) if rows else None)


def convergence(frame: pd.DataFrame, dataset: str, model: str = "mf", *,
                choose_length: bool = True) -> str:
    """Markdown: each learning curve's epochs to convergence (:func:`converged_epochs`) and,
    with ``choose_length``, the training length it chooses (for a data set whose length is
    not the paper's 200 epochs)."""
    runs = select_runs(frame, dataset, model)
    if runs.empty:
        return _no_runs(dataset, model)
    table, chosen = converged_epochs(runs)
    within = " and ".join(_metric_label(m) for m in CONVERGENCE_METRICS)
    lines = [f"| configuration | weight decay | seed | evaluated up to | {within} within "
             f"{CONVERGENCE_TOLERANCE:.0%} of their best by epoch | best Recall@20 at epoch |",
             "|---|---|---|---|---|---|"]
    for r in table.to_dict("records"):
        lines.append(f"| {r['sampler_label']} | {r['weight_decay']:g} | {r['seed']} | "
                     f"{r['evaluated up to']} | {r['converged at']} | "
                     f"{r['best recall@20 at']} |")
    if choose_length:
        lines.append("")
        lines.append(f"Chosen training length: **{chosen} epochs** (the slowest curve's epoch of "
                     f"convergence).")
    return _with_label(dataset, "\n".join(lines))


for _dataset in ("ml-1m",):
    TABLES[f"convergence-{_dataset}"] = (
        f"{_dataset}_mf_curves.csv", functools.partial(convergence, dataset=_dataset))
# Gowalla trains for the paper's 200 epochs: its curves are a reading, not a choice of length.
TABLES["convergence-gowalla-lightgcn"] = (
    "gowalla_lightgcn_curves.csv",
    functools.partial(convergence, dataset="gowalla", model="lightgcn", choose_length=False))
# The authors' code on their split, as reported in issue 14 (Recall@50, NDCG@50 or None).
AUTHORS_EARLY = {("DNS(5,200)", 10): (0.1946, 0.1181), ("Uniform(1)", 6): (0.0949, None),
                 ("Softmax-v(1,200)", 4): (0.0918, None)}


def early_learning(frame: pd.DataFrame) -> str:
    """Markdown of benchmarks/early_learning.py's records: hnslab and the PyTorch re-statement of
    the authors' step, per sampler, split and epoch (mean ± sd over seeds), next to the
    authors' reported numbers."""
    if frame.empty:
        return "_No runs yet._"
    lines = ["| sampler | split | trainer | epoch | seeds | Recall@50 | NDCG@50 | authors' code |",
             "|---|---|---|---|---|---|---|---|"]
    for (label, split, side, epoch), group in frame.groupby(
            ["sampler_label", "split", "side", "epoch"], sort=True):
        ref = AUTHORS_EARLY.get((label, int(epoch)))
        ref_text = ("—" if ref is None or split != "authors" else
                    f"{ref[0]:.4f}" + (f" / {ref[1]:.4f}" if ref[1] is not None else ""))
        name = {"hnslab": "hnslab", "torch": "PyTorch (authors' step)"}[side]
        lines.append(f"| {label} | {split} | {name} | {epoch} | "
                     f"{', '.join(map(str, sorted(group['seed'])))} | {_cell(group['recall@50'])} | "
                     f"{_cell(group['ndcg@50'])} | {ref_text} |")
    return "\n".join(lines)


def rounding_check(frame: pd.DataFrame) -> str:
    """Markdown: one 200-epoch run trained twice with the same seed, before and after a change
    that moves its arithmetic by rounding only (``variant``, ``git_revision``), and the
    differences of every metric."""
    if frame.empty:
        return "_No runs yet._"
    metrics = list(METRIC_COLUMNS)
    head = [_metric_label(m) for m in metrics]
    lines = ["| run | revision | " + " | ".join(head) + " |",
             "|---|---|" + "---|" * len(metrics)]
    for r in frame.to_dict("records"):
        lines.append(f"| {r['sampler_label']}, {r['variant']} | {r['git_revision']} | "
                     + " | ".join(f"{r[m]:.4f}" for m in metrics) + " |")
    if len(frame) == 2:
        diff = frame[metrics].iloc[1] - frame[metrics].iloc[0]
        lines.append("| difference (second - first) | | "
                     + " | ".join(f"{d:+.4f}" for d in diff) + " |")
    return "\n".join(lines)


def false_negatives(frame: pd.DataFrame) -> str:
    """Markdown of benchmarks/false_negatives.py's records: per DNS configuration, weight decay,
    seed and evaluated epoch, Recall@20 and NDCG@20 with the pools drawn outside the user's
    training items ("train", as every run) and outside the training and test items ("train +
    test", the oracle), and the oracle's gain."""
    if frame.empty:
        return "_No runs yet._"
    lines = ["| configuration | weight decay | seed | epoch | Recall@20, pools exclude train "
             "| train + test | gain | NDCG@20, pools exclude train | train + test | gain |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    keys = ["sampler_label", "weight_decay", "seed", "epoch"]
    sides = frame.pivot_table(index=keys, columns="excluded", values=["recall@20", "ndcg@20"])
    order = frame[keys].drop_duplicates().to_records(index=False)
    for label, wd, seed, epoch in order:
        row = sides.loc[(label, wd, seed, epoch)]
        cells = []
        for metric in ("recall@20", "ndcg@20"):
            plain, oracle = row[(metric, "train")], row[(metric, "train + test")]
            cells += [f"{plain:.4f}", f"{oracle:.4f}", f"{oracle - plain:+.4f}"]
        lines.append(f"| {label} | {wd:g} | {seed} | {epoch} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


#: Tables read from their own CSV layout (not training.results'): name -> (file, renderer).
RAW_TABLES = {"early-learning-gowalla": ("early_learning_gowalla.csv", early_learning),
              "rounding-check-gowalla": ("rounding_check_gowalla.csv", rounding_check),
              "false-negatives-ml-1m": ("false_negatives_ml-1m.csv", false_negatives)}

_BLOCK = re.compile(r"(<!-- results:(?P<name>[\w-]+) -->\n)(?P<body>.*?)(\n<!-- /results:(?P=name) -->)",
                    re.S)


def render(name: str, results_dir: str | os.PathLike = RESULTS_DIR) -> str:
    """The Markdown of table ``name`` from the results files in ``results_dir``."""
    if name in RAW_TABLES:
        filename, renderer = RAW_TABLES[name]
        path = Path(results_dir) / filename
        return renderer(pd.read_csv(path) if path.exists() else pd.DataFrame())
    if name not in TABLES:
        raise ValueError(f"name: unknown table {name!r}; known: "
                         f"{', '.join([*TABLES, *RAW_TABLES])}")
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
        atomic_write_text(readme, new)
    return changed


def main(argv: list[str] | None = None) -> int:
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
