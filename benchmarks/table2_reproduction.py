"""Reproduce the Gowalla rows of the paper's Table 2 (MF, K = 50) and Guideline 2 on real data.

Runs MF-BPR on Gowalla (split_per_user(seed), 80/20) with the paper's settings: dim 32,
batch 4096, Adam lr 1e-3 (x0.95 every 5 epochs, the authors' code), 200 epochs, pool N = 200,
M in {1, 2, 3, 4, 5, 10, 20}, rho in {0.01, 0.1, 1, 10, 100}, plus BPR (uniform, one
negative).  Weight decay: Adam's weight_decay on all parameters (the authors' code); the
paper tuned it in {0.1, 0.01, 0.001, 0.0001} (``--weight-decays``; default 0.01 only).

Resumable: each finished configuration appends one row to the results CSV ``--results``
(default ``results/gowalla_mf.csv``, committed; :mod:`training.results`, written atomically); a
rerun skips the configurations already there, so a long run can be stopped (Ctrl-C stops after
the current batch; the interrupted configuration is not saved) and restarted.  ``--epochs``
shortens every run (the row records the epochs).

Report: Recall@50 / NDCG@50 of BPR, DNS(M=1), the best DNS(M, N) and the best Softmax-v next
to the paper's numbers, and the best M and rho at K = 5, 20, 50 (Guideline 2: the smaller K,
the harder the best sampler).

Usage::

    python benchmarks/table2_reproduction.py                      # the full grid (hours)
    python benchmarks/table2_reproduction.py --epochs 20          # shortened
    python benchmarks/table2_reproduction.py --quick              # CI: 1 epoch, 4 configurations
    python benchmarks/table2_reproduction.py --only DNS:5 --weight-decays 0.001   # one grid point
    python benchmarks/table2_reproduction.py --report-only        # table from the results folder
    python benchmarks/table2_reproduction.py --report-only --figure fig.png   # + Figs. 8-11 on Gowalla

The README's tables are generated from the results files by ``python -m figures.tables``.
"""
from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from training import sampling as S  # noqa: E402
from training import trainer as T  # noqa: E402
from training.results import RESULTS_DIR, append_result, has_run, read_results, result_row  # noqa: E402
from training.datasets import DatasetError, load_dataset  # noqa: E402

PAPER = {  # Table 2, Gowalla, MF: (Recall@50, NDCG@50)
    "BPR": (0.2048, 0.1216),
    "DNS (M=1)": (0.1839, 0.1412),
    "DNS(M,N)": (0.2989, 0.1811),
    "Softmax-v(rho,N)": (0.2993, 0.1837),
}
M_GRID = (1, 2, 3, 4, 5, 10, 20)
RHO_GRID = (0.01, 0.1, 1.0, 10.0, 100.0)
POOL = 200
KS = (5, 20, 50)


FAMILY = {"uniform": "BPR", "dns": "DNS", "softmax_v": "Softmax-v"}  # sampler kind -> family

# Run order of the full grid: the configurations Table 2 needs most (and the best ones of a
# 50-epoch pilot: M = 10, rho = 1) first, so that a run cut short still fills the table.
FULL_ORDER = (("BPR", None), ("DNS", 1), ("DNS", 10), ("Softmax-v", 1.0), ("DNS", 5),
              ("DNS", 20), ("DNS", 2), ("DNS", 3), ("DNS", 4), ("Softmax-v", 10.0),
              ("Softmax-v", 0.1), ("Softmax-v", 100.0), ("Softmax-v", 0.01))
assert sorted(p for f, p in FULL_ORDER if f == "DNS") == sorted(M_GRID)
assert sorted(p for f, p in FULL_ORDER if f == "Softmax-v") == sorted(RHO_GRID)


def grid_key(family, param):
    return family if param is None else f"{family}:{param:g}"


def parse_only(text: str):
    """``BPR``, ``DNS:M`` or ``Softmax-v:RHO`` -> a (family, param) pair of the full grid."""
    grid = {grid_key(family, param): (family, param) for family, param in FULL_ORDER}
    family, colon, param = text.partition(":")
    try:
        key = grid_key(family, float(param) if colon else None)
    except ValueError:
        key = None
    if key not in grid:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a point of the grid; allowed: {', '.join(grid)}")
    return grid[key]


def configurations(quick: bool, only=None):
    """(family, sampler) pairs of the grid, in run order (restricted to ``only`` if given)."""
    order = (("BPR", None), ("DNS", 1), ("DNS", 5), ("Softmax-v", 1.0)) if quick else FULL_ORDER
    if only:
        order = [pair for pair in FULL_ORDER if pair in set(only)]
    for family, param in order:
        if family == "BPR":
            yield family, S.uniform(1)
        elif family == "DNS":
            yield family, S.dns(param, POOL)
        else:
            yield family, S.softmax_v(param, POOL)


def run_grid(args, train, test):
    todo = [(family, sampler, wd) for family, sampler in configurations(args.quick, args.only)
            for wd in args.weight_decays]
    for k, (family, sampler, wd) in enumerate(todo, 1):
        key = dict(dataset="gowalla", model="mf", sampler_label=sampler.label(), weight_decay=wd,
                   seed=args.seed, epochs=args.epochs)
        if has_run(args.results, **key):
            print(f"[{k}/{len(todo)}] {sampler.label()} wd={wd:g}: done, skipped", flush=True)
            continue
        print(f"[{k}/{len(todo)}] {sampler.label()} wd={wd:g}, {args.epochs} epochs ...",
              flush=True)
        result = T.train_model(train, test, sampler, epochs=args.epochs, ks=KS,
                            eval_every=args.eval_every, progress=not args.no_progress,
                            dim=32, batch_size=4096, lr=1e-3, weight_decay=wd,
                            weight_decay_mode="adam", lr_decay=True, seed=args.seed,
                            threads=args.threads)
        if result.interrupted:
            print("interrupted: this configuration is not saved; rerun to resume", flush=True)
            return False
        row = result_row({**result.summary(), "seed": args.seed}, dataset="gowalla", model="mf")
        append_result(args.results, row)
        print(f"    recall@50 {row['recall@50']:.4f} ndcg@50 {row['ndcg@50']:.4f} "
              f"({row['seconds_per_epoch']:.1f} s/epoch)", flush=True)
    return True


def load_results(path: Path, epochs: int, seed: int):
    """The Gowalla MF rows of ``path`` with ``epochs`` and ``seed``, as dicts with a family."""
    frame = read_results(path)
    frame = frame[(frame["dataset"] == "gowalla") & (frame["model"] == "mf")
                  & (frame["epochs"] == epochs) & (frame["seed"] == seed)]
    return [{**row, "family": FAMILY[row["sampler"]]} for row in frame.to_dict("records")]


def import_json_runs(folder: Path, results: Path, revision: str) -> int:
    """Append the per-configuration JSON files of earlier versions of this script (one file per
    run, in ``folder``) to ``results``, recording ``revision`` (the code that produced them)."""
    import datetime as dt

    added = 0
    for path in sorted(folder.glob("*.json")):
        payload = json.loads(path.read_text())
        finished = dt.datetime.fromtimestamp(path.stat().st_mtime, dt.timezone.utc)
        row = result_row(payload, dataset="gowalla", model="mf", revision=revision,
                         finished=finished)
        if not has_run(results, **row):
            append_result(results, row)
            added += 1
    return added


def report(rows, epochs):
    if not rows:
        print("no results yet")
        return
    print(f"\nGowalla, MF, {epochs} epochs (paper: 200), Recall / NDCG at K = 5, 20, 50")
    print(f"{'configuration':<28} " + " ".join(f"{'R@' + str(k):>7}" for k in KS) + " "
          + " ".join(f"{'N@' + str(k):>7}" for k in KS) + f" {'s/epoch':>8}")
    for r in sorted(rows, key=lambda r: (r["family"], r["m"], r["rho"], r["weight_decay"])):
        name = f"{r['sampler_label']} wd={r['weight_decay']:g}"
        print(f"{name:<28} " + " ".join(f"{r[f'recall@{k}']:7.4f}" for k in KS) + " "
              + " ".join(f"{r[f'ndcg@{k}']:7.4f}" for k in KS) + f" {r['seconds_per_epoch']:8.2f}")

    def best(family, key, where=lambda r: True):
        cands = [r for r in rows if r["family"] == family and where(r)]
        return max(cands, key=lambda r: r[key]) if cands else None

    table = {
        "BPR": best("BPR", "recall@50"),
        "DNS (M=1)": best("DNS", "recall@50", lambda r: r["m"] == 1),
        "DNS(M,N)": best("DNS", "recall@50"),
        "Softmax-v(rho,N)": best("Softmax-v", "recall@50"),
    }
    print(f"\nTable 2 (Gowalla, MF, K = 50): ours ({epochs} epochs) vs the paper (200 epochs)")
    print(f"{'method':<18} {'Recall@50':>10} {'paper':>7} {'NDCG@50':>9} {'paper':>7}  chosen")
    for name, r in table.items():
        if r is None:
            continue
        pr, pn = PAPER[name]
        print(f"{name:<18} {r['recall@50']:10.4f} {pr:7.4f} {r['ndcg@50']:9.4f} {pn:7.4f}  "
              f"{r['sampler_label']} wd={r['weight_decay']:g}")
    # Guideline 2 compares hardness at one weight decay: a grid point run at an extra weight
    # decay would otherwise win every K by its tuning alone.
    print("\nGuideline 2 on real data: best M (DNS, N = 200) and best rho (Softmax-v) per K,"
          " at each weight decay")
    for wd in sorted({r["weight_decay"] for r in rows}):
        def at_wd(r, wd=wd):
            return r["weight_decay"] == wd

        for metric in ("recall", "ndcg"):
            for family, param in (("DNS", "m"), ("Softmax-v", "rho")):
                n_points = sum(r["family"] == family and at_wd(r) for r in rows)
                if n_points == 0:
                    continue
                picks = [f"{best(family, f'{metric}@{k}', at_wd)[param]:g}" for k in KS]
                print(f"  wd={wd:<7g} {metric:<6} {family:<9} {param:<3} at K = 5, 20, 50: "
                      f"{', '.join(picks)}  ({n_points} grid points)")


def figure_weight_decay(rows):
    """The weight decay with the most DNS and Softmax-v grid points (ties: the smallest)."""
    counts = Counter(r["weight_decay"] for r in rows if r["family"] in ("DNS", "Softmax-v"))
    return min(counts, key=lambda wd: (-counts[wd], wd)) if counts else None


def hardness_frame(rows, weight_decay):
    """The results at one weight decay as training.hardness.hardness_sweep rows (grids M
    and rho, held-out): one weight decay, so that hardness alone varies along each grid."""
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
    return pd.DataFrame.from_records(records)


def draw_figure(rows, epochs, path: Path):
    """Figs. 8-11 on Gowalla: Recall@K relative to its best over M and over rho."""
    from figures.hardness import plot_hardness_vs_k
    from figures.style import save

    weight_decay = figure_weight_decay(rows)
    if weight_decay is None:
        print("no DNS or Softmax-v results yet: no figure")
        return
    frame = hardness_frame(rows, weight_decay)
    fig = plot_hardness_vs_k(frame, titles={"M": f"DNS(M, N={POOL}): harder = smaller M",
                                            "rho": f"Softmax-v(ρ, N={POOL}): harder = larger ρ"},
                             suptitle=f"Gowalla, MF, {epochs} epochs, weight decay "
                                      f"{weight_decay:g}: best hardness vs K\n"
                                      "(test split; stars = best per K)")
    for written in save(fig, path.parent, path.stem):
        print(f"figure: {written}")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="gowalla",
                        help="Gowalla by name (training.datasets: $HNSLAB_DATA, ../shared/data, "
                             "the cache, else a verified download) or a path to gowalla.mat")
    parser.add_argument("--results", type=Path, default=RESULTS_DIR / "gowalla_mf.csv",
                        help="results CSV (default: the committed results/gowalla_mf.csv)")
    parser.add_argument("--epochs", type=int, default=200)
    parser.add_argument("--weight-decays", type=float, nargs="+", default=[0.01])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--eval-every", type=int, default=0,
                        help="also evaluate every this many epochs (learning curves)")
    parser.add_argument("--quick", action="store_true",
                        help="CI: 1 epoch (unless --epochs), M in {1, 5}, rho = 1, BPR")
    parser.add_argument("--only", type=parse_only, nargs="+", default=None,
                        metavar="CONFIG",
                        help="run only these grid points: BPR, DNS:M, Softmax-v:RHO")
    parser.add_argument("--report-only", action="store_true")
    parser.add_argument("--figure", type=Path, default=None,
                        help="also draw best hardness vs K (Figs. 8-11) to this path (.png and .pdf)")
    parser.add_argument("--no-progress", action="store_true")
    parser.add_argument("--import-json", type=Path, default=None, metavar="FOLDER",
                        help="append the JSON files of an earlier version of this script")
    parser.add_argument("--revision", default=None,
                        help="with --import-json: the git revision that produced them")
    args = parser.parse_args(argv)
    if args.import_json is not None:
        if not args.revision:
            parser.error("argument --import-json: needs --revision (the code that ran them)")
        added = import_json_runs(args.import_json, args.results, args.revision)
        print(f"{added} runs appended to {args.results}")
        return 0
    if args.quick and "--epochs" not in (argv if argv is not None else sys.argv[1:]):
        args.epochs = 1
    if args.epochs < 1:
        parser.error("argument --epochs: must be >= 1")
    if any(w < 0 for w in args.weight_decays):
        parser.error("argument --weight-decays: must be >= 0")
    if not args.report_only:
        try:
            train, test = load_dataset(args.data, args.seed)
        except DatasetError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
        print(f"Gowalla: {train.shape[0]} users x {train.shape[1]} items, {train.nnz} train / "
              f"{test.nnz} test interactions; results in {args.results}", flush=True)
        if not run_grid(args, train, test):
            return 130
    rows = load_results(args.results, args.epochs, args.seed)
    report(rows, args.epochs)
    if args.figure is not None:
        draw_figure(rows, args.epochs, args.figure)
    return 0


if __name__ == "__main__":
    sys.exit(main())
