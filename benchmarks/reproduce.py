"""Reproduce the paper's real-data studies: Table 2 (MF), Table 3 (LightGCN), Guideline 2.

One runner for every data set and model: ``--dataset {gowalla,yelp2018,ml-1m}`` (by name,
:func:`training.datasets.load_dataset`; ``--data`` overrides the path), ``--model
{mf,lightgcn}``, ``--seeds``, ``--weight-decays``, ``--epochs`` and a grid, either a named
``--preset`` or the points of ``--only``:

``table2``   BPR, DNS(M, 200) for M in {1, 2, 3, 4, 5, 10, 20}, Softmax-v(rho, 200) for rho in
             {0.01, 0.1, 1, 10, 100} (the paper's grid; default for MF).
``yelp``     BPR, M in {1, 3, 5, 10}, rho in {0.1, 1, 10} (issue 14's Yelp2018 grid).
``table3``   BPR, DNS(M, 200) and Softmax-v(rho, 200) at the M and rho best for MF on the same
             data set (highest mean Recall@50 over seeds in ``results/<dataset>_mf.csv`` at the
             same epochs, over every weight decay), or ``--best-m`` / ``--best-rho``
             (default for LightGCN).

The paper's settings: dim 32, batch 4096, Adam lr 1e-3 (x0.95 every 5 epochs, the authors'
code), Adam's weight decay on all parameters, 200 epochs, N = 200; LightGCN with
``--layers`` (3) layers.  Seed s draws the split (Gowalla's per-user 80/20; the LightGCN-format
files have a fixed split), the initialisation, the pair orders and the pools.

Resumable: the runs are the cells of one serial sweep (:func:`simulations.sweep.run_sweep`)
whose store is the results CSV (:class:`Study`): each finished run appends one row to
``results/<dataset>_<model>.csv`` (:mod:`training.results`, atomic; ``--results`` overrides)
and a rerun skips the runs already there (run key: data set, model, sampler, weight decay,
seed, epochs).  Runs go one configuration at a time (seed-major, then the grid's order, then
weight decay).  The run in progress writes a checkpoint every ``--checkpoint-every`` (5)
epochs into ``--checkpoints`` (default: ``.checkpoints/`` beside the results CSV; deleted once
the run's row is saved), and a rerun continues it from there with the same bits
(:func:`training.trainer.train_model`'s ``checkpoint``), so a stopped process (Ctrl-C, a
killed session) loses at most the epochs since the last checkpoint.

Report: the grid, Table 2 / Table 3 next to the paper (Gowalla; Yelp2018 and MovieLens-1M are
stand-ins, not the paper's data sets) and the Guideline 2 picks per weight decay with the
seed-noise verdict, as the README shows them (:mod:`figures.tables`); ``--figure`` draws Figs.
8-11 of the data set from the results (means over seeds).

Usage::

    python benchmarks/reproduce.py --weight-decays 0.001                    # Gowalla MF grid
    python benchmarks/reproduce.py --only BPR DNS:5 Softmax-v:1 --seeds 0 1 2 --weight-decays 0.001
    python benchmarks/reproduce.py --dataset yelp2018 --preset yelp --weight-decays 0.001
    python benchmarks/reproduce.py --dataset ml-1m --seeds 0 1 2 --epochs 100
    python benchmarks/reproduce.py --model lightgcn --weight-decays 0.001    # Table 3 (Gowalla)
    python benchmarks/reproduce.py --quick                                   # CI: 1 epoch, 4 runs
    python benchmarks/reproduce.py --report-only --figure docs/fig8_gowalla.png
"""
from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from pathlib import Path

import numpy as np

from figures import tables
from simulations.sweep import run_sweep
from theory.validation import check_int, check_real
from training import sampling as S
from training import trainer as T
from training.datasets import DatasetError, load_dataset
from training.results import (
    METRIC_COLUMNS,
    RESULTS_DIR,
    RUN_KEY,
    append_result,
    has_run,
    read_results,
    result_row,
)

DATASETS = tables.DATASETS
MODELS = tables.MODELS
M_GRID = (1, 2, 3, 4, 5, 10, 20)
RHO_GRID = (0.01, 0.1, 1.0, 10.0, 100.0)
POOL = 200
KS = tables.KS
FAMILY = tables.FAMILY  # sampler kind -> family

# Run order of the paper's grid: the configurations Table 2 needs most (and the best ones of a
# 50-epoch pilot on Gowalla: M = 10, rho = 1) first, so that a run cut short still fills it.
FULL_ORDER = (("BPR", None), ("DNS", 1), ("DNS", 10), ("Softmax-v", 1.0), ("DNS", 5),
              ("DNS", 20), ("DNS", 2), ("DNS", 3), ("DNS", 4), ("Softmax-v", 10.0),
              ("Softmax-v", 0.1), ("Softmax-v", 100.0), ("Softmax-v", 0.01))
assert sorted(p for f, p in FULL_ORDER if f == "DNS") == sorted(M_GRID)
assert sorted(p for f, p in FULL_ORDER if f == "Softmax-v") == sorted(RHO_GRID)
PRESETS = {
    "table2": FULL_ORDER,
    "yelp": (("BPR", None), ("DNS", 1), ("DNS", 5), ("Softmax-v", 1.0), ("DNS", 3), ("DNS", 10),
             ("Softmax-v", 10.0), ("Softmax-v", 0.1)),
    "table3": None,  # BPR and the best M and rho of MF: see table3_points
}
QUICK = (("BPR", None), ("DNS", 1), ("DNS", 5), ("Softmax-v", 1.0))


def point_key(family, param) -> str:
    return family if param is None else f"{family}:{param:g}"


def parse_point(text: str):
    """``BPR``, ``DNS:M`` (integer 1 <= M <= N) or ``Softmax-v:RHO`` (RHO > 0) -> (family, param)."""
    family, colon, value = text.partition(":")
    try:
        if family == "BPR" and not colon:
            return ("BPR", None)
        if family == "DNS" and colon and value.isdigit():
            return ("DNS", check_int(int(value), "M", low=1, high=POOL))
        if family == "Softmax-v" and colon:
            return ("Softmax-v", check_real(float(value), "RHO", low=0.0, include_low=False))
    except ValueError:  # not a number, or out of range: the message below says what is allowed
        pass
    raise argparse.ArgumentTypeError(
        f"{text!r} is not a grid point; allowed: BPR, DNS:M (integer 1 <= M <= {POOL}), "
        "Softmax-v:RHO (RHO > 0)")


def sampler_of(family, param) -> S.Sampler:
    if family == "BPR":
        return S.uniform(1)
    if family == "DNS":
        return S.dns(int(param), POOL)
    return S.softmax_v(float(param), POOL)


def best_mf_points(path: Path, dataset: str, epochs: int):
    """((M, rho), description): the DNS M and the Softmax-v rho with the highest mean Recall@50
    over seeds among the MF runs of ``dataset`` at ``epochs`` in ``path`` (any weight decay;
    None where a family has no run)."""
    frame = read_results(path)
    frame = frame[(frame["dataset"] == dataset) & (frame["model"] == "mf")
                  & (frame["epochs"] == epochs)]
    picks, notes = [], []
    for kind, param in (("dns", "m"), ("softmax_v", "rho")):
        rows = frame[frame["sampler"] == kind]
        if rows.empty:
            picks.append(None)
            continue
        means = rows.groupby(["sampler_label", param, "weight_decay"], as_index=False)[
            "recall@50"].mean()
        best = means.loc[means["recall@50"].idxmax()]
        picks.append(int(best[param]) if param == "m" else float(best[param]))
        notes.append(f"{best['sampler_label']} (weight decay {best['weight_decay']:g}, "
                     f"Recall@50 {best['recall@50']:.4f})")
    return tuple(picks), ", ".join(notes)


def grid_points(args):
    """(family, param) pairs to run, in run order."""
    if args.only:
        return list(dict.fromkeys(args.only))
    if args.quick:
        return list(QUICK)
    if args.preset != "table3":
        return list(PRESETS[args.preset])
    m, rho = args.best_m, args.best_rho
    if m is None or rho is None:
        mf_path = args.results.parent / f"{args.dataset}_mf.csv"
        (best_m, best_rho), note = best_mf_points(mf_path, args.dataset, args.epochs)
        m = best_m if m is None else m
        rho = best_rho if rho is None else rho
        if m is None or rho is None:
            raise SystemExit(f"error: argument --preset table3: no MF DNS and Softmax-v runs of "
                             f"{args.dataset} at {args.epochs} epochs in {mf_path}; pass "
                             "--best-m and --best-rho")
        print(f"best for MF in {mf_path.name}: {note}", flush=True)
    return [("BPR", None), ("DNS", m), ("Softmax-v", rho)]


def run_key(args, sampler, wd, seed) -> dict:
    return dict(dataset=args.dataset, model=args.model, sampler_label=sampler.label(),
                weight_decay=wd, seed=seed, epochs=args.epochs)


class Study:
    """One invocation as a sweep (:func:`simulations.sweep.run_sweep`): a cell is one run
    (``seed``, grid point, ``weight_decay``), :meth:`train` the cell function, and the study
    itself the sweep's store (:class:`simulations.sweep.SweepStore`) on the results CSV: a cell
    is done when its run key is there (:func:`training.results.has_run`), and each finished run
    appends its row (:func:`training.results.append_result`) before the next one starts."""

    def __init__(self, args, configs: list[dict]):
        self.args, self.configs = args, configs
        self.splits = {}  # seed -> (train, test), loaded on the first run that needs it

    def _sampler(self, config):
        return sampler_of(config["family"], config["param"])

    def _key(self, config) -> dict:
        return run_key(self.args, self._sampler(config), config["weight_decay"], config["seed"])

    def _head(self, config) -> str:
        return (f"[{self.configs.index(config) + 1}/{len(self.configs)}] "
                f"{self._sampler(config).label()} wd={config['weight_decay']:g} "
                f"seed={config['seed']}")

    def load(self, cell) -> list[dict] | None:
        key = self._key(cell.config)
        if not has_run(self.args.results, **key):
            return None
        print(f"{self._head(cell.config)}: done, skipped", flush=True)
        frame = read_results(self.args.results)
        same = np.logical_and.reduce([frame[c] == key[c] for c in RUN_KEY])
        return frame[same].to_dict("records")

    def save(self, cell, rows: list[dict]) -> None:
        for row in rows:
            append_result(self.args.results, row)
            print(f"    recall@50 {row['recall@50']:.4f} ndcg@50 {row['ndcg@50']:.4f} "
                  f"({row['seconds_per_epoch']:.1f} s/epoch)", flush=True)
        self.checkpoint(cell.config).unlink(missing_ok=True)  # the row is kept: not needed

    def checkpoint(self, config) -> Path:
        """The checkpoint file of a run: one per run key, in ``--checkpoints``."""
        key = self._key(config)
        name = "_".join(str(key[c]) for c in ("dataset", "model", "sampler_label"))
        name += f"_wd{key['weight_decay']:g}_seed{key['seed']}_{key['epochs']}epochs.npz"
        return self.args.checkpoints / name.replace(",", "-").replace("(", "").replace(")", "")

    def train(self, config: dict, cell_seed: int) -> dict:
        """Train one run and return its results row; raises KeyboardInterrupt if stopped.

        The run's seed is ``config["seed"]`` (it draws the split, the initialisation, the
        pair orders and the pools, as the paper's protocol and the committed rows have it);
        the sweep's ``cell_seed`` is not used."""
        args, seed, wd = self.args, config["seed"], config["weight_decay"]
        if seed not in self.splits:  # the split depends on the seed (per-user splits)
            self.splits[seed] = load_dataset(args.data or args.dataset, seed)
            train, test = self.splits[seed]
            print(f"{args.dataset} (seed {seed}): {train.shape[0]} users x {train.shape[1]} "
                  f"items, {train.nnz} train / {test.nnz} test interactions", flush=True)
        train, test = self.splits[seed]
        checkpoint = self.checkpoint(config)
        resume = f", resuming from {checkpoint}" if checkpoint.exists() else ""
        print(f"{self._head(config)}, {args.model}, {args.epochs} epochs{resume} ...",
              flush=True)
        checkpoint.parent.mkdir(parents=True, exist_ok=True)
        options = {"layers": args.layers} if args.model == "lightgcn" else {}
        result = T.train_model(train, test, self._sampler(config), model=args.model,
                               epochs=args.epochs, ks=KS, eval_every=args.eval_every,
                               progress=not args.no_progress, dim=32, batch_size=4096, lr=1e-3,
                               weight_decay=wd, weight_decay_mode="adam", lr_decay=True,
                               seed=seed, threads=args.threads, checkpoint=checkpoint,
                               checkpoint_every=args.checkpoint_every, **options)
        if result.interrupted:  # Ctrl-C: the sweep stops here, this run is not saved
            raise KeyboardInterrupt
        summary = {**result.summary(), "seed": seed}
        if args.eval_every:
            self._save_curve(summary, result.history)
        return result_row(summary, dataset=args.dataset, model=args.model)

    def _save_curve(self, summary: dict, history: list[dict]) -> None:
        """One row per evaluated epoch E in ``args.curves``: the model after E epochs of this run
        (``epochs`` = E; the learning-rate schedule and the random streams depend on the epoch,
        not on the run's length, so it is the model an E-epoch run trains).  A rerun of an
        interrupted run recomputes the same rows and skips those already there."""
        args = self.args
        for upto, record in enumerate(history, start=1):
            if not all(c in record for c in METRIC_COLUMNS):
                continue
            seconds = [h["seconds"] for h in history[:upto]]
            row = result_row({**summary, **{c: record[c] for c in METRIC_COLUMNS},
                              "epochs": record["epoch"],
                              "seconds_per_epoch": float(np.mean(seconds)),
                              "eval_seconds": record.get("eval_seconds",
                                                         summary["eval_seconds"])},
                             dataset=args.dataset, model=args.model)
            if not has_run(args.curves, **row):
                append_result(args.curves, row)


def run_grid(args, points) -> bool:
    """Train every (seed, point, weight decay) not yet in the results, in that order (one
    serial sweep); False if interrupted (the run in progress is lost, the others are saved)."""
    configs = [{"seed": seed, "family": family, "param": param, "weight_decay": wd}
               for seed in args.seeds for family, param in points for wd in args.weight_decays]
    study = Study(args, configs)
    try:
        run_sweep(study.train, configs, store=study)
    except KeyboardInterrupt:
        print("interrupted: this run is not saved; rerun to resume", flush=True)
        return False
    return True


def import_json_runs(folder: Path, results: Path, revision: str, dataset: str = "gowalla",
                     model: str = "mf") -> int:
    """Append the per-configuration JSON files of earlier versions of this script (one file per
    run, in ``folder``) to ``results``, recording ``revision`` (the code that produced them)."""
    import datetime as dt

    added = 0
    for path in sorted(folder.glob("*.json")):
        payload = json.loads(path.read_text())
        finished = dt.datetime.fromtimestamp(path.stat().st_mtime, dt.UTC)
        row = result_row(payload, dataset=dataset, model=model, revision=revision,
                         finished=finished)
        if not has_run(results, **row):
            append_result(results, row)
            added += 1
    return added


def report(frame, dataset: str, model: str) -> None:
    """The README's tables of ``dataset`` and ``model`` from the results ``frame``."""
    name = tables.DATASET_NAMES[dataset]
    print(f"\n{name}, {model}: every configuration that ran (Recall@50 / NDCG@50)")
    print(tables.grid(frame, dataset, model))
    which = "Table 2" if model == "mf" else "Table 3"
    against = ("next to the paper" if (dataset, model) in tables.PAPER
               else "(a stand-in, not the paper's data set: no paper numbers)")
    print(f"\n{which} ({name}, {model}, K = 50) {against}")
    print(tables.table2(frame, dataset, model))
    if model == "mf":
        print(f"\nGuideline 2 on real data ({name}): best M (DNS, N = {POOL}) and best rho "
              "(Softmax-v) per K at each weight decay, with the seed-noise verdict")
        print(tables.guideline2(frame, dataset, model))


def figure_weight_decay(rows):
    """The weight decay with the most DNS and Softmax-v grid points (ties: the smallest)."""
    counts = Counter(r["weight_decay"] for r in rows if r["family"] in ("DNS", "Softmax-v"))
    return min(counts, key=lambda wd: (-counts[wd], wd)) if counts else None


def hardness_frame(rows, weight_decay):
    """The results at one weight decay as training.hardness.hardness_sweep rows (grids M
    and rho, held-out), each configuration's metrics averaged over its seeds: one weight
    decay, so that hardness alone varies along each grid."""
    import pandas as pd

    records = []
    for r in rows:
        if r["family"] not in ("DNS", "Softmax-v") or r["weight_decay"] != weight_decay:
            continue
        grid, value = ("M", r["m"]) if r["family"] == "DNS" else ("rho", r["rho"])
        for k in KS:
            records.append({"grid": grid, "value": float(value), "sampler": r["sampler_label"],
                            "split": "held-out", "k": k, "recall": r[f"recall@{k}"],
                            "ndcg": r[f"ndcg@{k}"], "seed": r["seed"]})
    frame = pd.DataFrame.from_records(records)
    if frame.empty:
        return frame
    keys = ["grid", "value", "sampler", "split", "k"]
    return frame.groupby(keys, as_index=False).agg(recall=("recall", "mean"),
                                                   ndcg=("ndcg", "mean"), seeds=("seed", "nunique"))


def draw_figure(rows, dataset: str, model: str, path: Path) -> None:
    """Figs. 8-11 of one data set: Recall@K relative to its best over M and over rho."""
    from figures.hardness import plot_hardness_vs_k
    from figures.style import save

    weight_decay = figure_weight_decay(rows)
    if weight_decay is None:
        print("no DNS or Softmax-v results yet: no figure")
        return
    frame = hardness_frame(rows, weight_decay)
    epochs = sorted({r["epochs"] for r in rows})
    seeds = int(frame["seeds"].max())
    stand_in = " (a stand-in, not the paper's data set)" if dataset in tables.STAND_INS else ""
    fig = plot_hardness_vs_k(frame, titles={"M": f"DNS(M, N={POOL}): harder = smaller M",
                                            "rho": f"Softmax-v(ρ, N={POOL}): harder = larger ρ"},
                             suptitle=f"{tables.DATASET_NAMES[dataset]}{stand_in}, {model}, "
                                      f"{'/'.join(map(str, epochs))} epochs, weight decay "
                                      f"{weight_decay:g}, mean of up to {seeds} seed(s):\n"
                                      "best hardness vs K (test split; stars = best per K)")
    for written in save(fig, path.parent, path.stem):
        print(f"figure: {written}")


def main(argv=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", choices=DATASETS, default="gowalla",
                        help="data set by name (results key and training.datasets name)")
    parser.add_argument("--data", default=None,
                        help="where to read the data set from instead of its name (a path)")
    parser.add_argument("--model", choices=MODELS, default="mf")
    parser.add_argument("--layers", type=int, default=3, help="LightGCN layers (default 3)")
    parser.add_argument("--results", type=Path, default=None,
                        help="results CSV (default: results/<dataset>_<model>.csv)")
    parser.add_argument("--preset", choices=tuple(PRESETS), default=None,
                        help="grid: table2 (default for mf), yelp, table3 (default for lightgcn)")
    parser.add_argument("--only", type=parse_point, nargs="+", default=None, metavar="POINT",
                        help="run only these points: BPR, DNS:M, Softmax-v:RHO")
    parser.add_argument("--best-m", type=int, default=None,
                        help="table3: the DNS M (default: the best for MF in the results)")
    parser.add_argument("--best-rho", type=float, default=None,
                        help="table3: the Softmax-v rho (default: the best for MF)")
    parser.add_argument("--epochs", type=int, default=200)
    parser.add_argument("--weight-decays", type=float, nargs="+", default=[0.01])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--eval-every", type=int, default=0,
                        help="also evaluate every this many epochs: learning curves, one row "
                             "per evaluation in --curves")
    parser.add_argument("--curves", type=Path, default=None,
                        help="learning-curve CSV (default: results/<dataset>_<model>_curves.csv)")
    parser.add_argument("--checkpoints", type=Path, default=None, metavar="FOLDER",
                        help="checkpoints of the run in progress (default: .checkpoints/ "
                             "beside the results CSV)")
    parser.add_argument("--checkpoint-every", type=int, default=5, metavar="EPOCHS",
                        help="epochs between checkpoints (default 5)")
    parser.add_argument("--quick", action="store_true",
                        help="CI: 1 epoch (unless --epochs), BPR, DNS M in {1, 5}, rho = 1")
    parser.add_argument("--report-only", action="store_true")
    parser.add_argument("--figure", type=Path, default=None,
                        help="also draw best hardness vs K (Figs. 8-11) to this path (.png and .pdf)")
    parser.add_argument("--no-progress", action="store_true")
    parser.add_argument("--import-json", type=Path, default=None, metavar="FOLDER",
                        help="append the JSON files of an earlier version of this script")
    parser.add_argument("--revision", default=None,
                        help="with --import-json: the git revision that produced them")
    args = parser.parse_args(argv)
    if args.results is None:
        args.results = RESULTS_DIR / f"{args.dataset}_{args.model}.csv"
    if args.curves is None:
        args.curves = RESULTS_DIR / f"{args.dataset}_{args.model}_curves.csv"
    if args.checkpoints is None:
        args.checkpoints = args.results.parent / ".checkpoints"
    if args.import_json is not None:
        if not args.revision:
            parser.error("argument --import-json: needs --revision (the code that ran them)")
        added = import_json_runs(args.import_json, args.results, args.revision, args.dataset,
                                 args.model)
        print(f"{added} runs appended to {args.results}")
        return 0
    if args.preset is None:
        args.preset = "table2" if args.model == "mf" else "table3"
    if args.quick and "--epochs" not in argv:
        args.epochs = 1
    try:  # argparse has the types; the ranges are theory.validation's, named by option
        check_int(args.epochs, "--epochs", low=1)
        check_int(args.layers, "--layers", low=0)
        check_int(args.eval_every, "--eval-every", low=0)
        check_int(args.checkpoint_every, "--checkpoint-every", low=1)
        for wd in args.weight_decays:
            check_real(wd, "--weight-decays", low=0.0)
        for seed in args.seeds:
            check_int(seed, "--seeds", low=0)
        if args.best_m is not None:
            check_int(args.best_m, "--best-m", low=1, high=POOL)
        if args.best_rho is not None:
            check_real(args.best_rho, "--best-rho", low=0.0, include_low=False)
    except ValueError as exc:
        parser.error(f"argument {exc}")
    args.seeds = list(dict.fromkeys(args.seeds))
    if not args.report_only:
        points = grid_points(args)
        print(f"{args.dataset}, {args.model}: {len(points)} grid point(s) x "
              f"{len(args.weight_decays)} weight decay(s) x {len(args.seeds)} seed(s), "
              f"{args.epochs} epochs; results in {args.results}", flush=True)
        try:
            if not run_grid(args, points):
                return 130
        except DatasetError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
    frame = read_results(args.results)
    report(frame, args.dataset, args.model)
    if args.figure is not None:
        runs = tables.select_runs(frame, args.dataset, args.model)
        runs = runs[runs["epochs"] == args.epochs]  # one training length per figure
        draw_figure(runs.to_dict("records"), args.dataset, args.model, args.figure)
    return 0


if __name__ == "__main__":
    sys.exit(main())
