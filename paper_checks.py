"""Re-derive every checkable claim of the paper and print a verdict table.

Usage::

    python paper_checks.py                 # every check at a reduced size
    python paper_checks.py --full          # the paper's sizes
    python paper_checks.py --only T1 F6a   # a subset, by id
    python paper_checks.py --list          # the ids and claims, without running them

Each row: id, paper reference, the claim, the independent reference it is compared with,
what was measured, the verdict.  The table, the
figures (OUT/figures, PNG and PDF, from data cached in OUT/data) and a manifest (seed, sizes,
package versions, git revision) are written to OUT/report.md and OUT/results.json.
Exit status 1 if any check fails, 2 on bad arguments.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from importlib import metadata
from pathlib import Path

from simulations.files import atomic_write_text

REPO = Path(__file__).resolve().parent
MANIFEST_NAME = "results.json"
PACKAGES = ("numpy", "scipy", "numba", "pandas", "sympy", "matplotlib", "seaborn")


def _git_revision() -> str:
    try:
        out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True,
                             text=True, timeout=5)
        dirty = subprocess.run(["git", "status", "--porcelain"], cwd=REPO, capture_output=True,
                               text=True, timeout=5)
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    if out.returncode != 0:
        return "unknown"
    return out.stdout.strip() + ("+dirty" if dirty.stdout.strip() else "")


def _versions() -> dict[str, str]:
    found = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            found[name] = "missing"
    return found


def _prepare_out(out: Path, force: bool) -> None:
    """Refuse an existing directory holding other files, unless it is an earlier run's or --force."""
    if out.exists() and not out.is_dir():
        raise SystemExit(f"error: --out {out} exists and is not a directory")
    if out.is_dir() and any(out.iterdir()) and not (out / MANIFEST_NAME).exists() and not force:
        raise SystemExit(f"error: --out {out} exists and holds other files; "
                         "choose another directory or pass --force")
    out.mkdir(parents=True, exist_ok=True)


def _table(results) -> list[str]:
    header = "| id | paper | claim | independent reference | measured | verdict |"
    lines = [header, "|---|---|---|---|---|---|"]
    for r in results:
        cells = (r.id, r.reference, r.claim, r.oracle, r.measured, r.verdict)
        # A "|" inside a cell (e.g. "max |diff|") would split it: escape it for markdown.
        lines.append("| " + " | ".join(str(c).replace("|", "\\|") for c in cells) + " |")
    return lines


def _print_table(results) -> None:
    widths = [max(len(r.id) for r in results), max(len(r.reference) for r in results)]
    for r in results:
        verdict = r.verdict
        print(f"{verdict:<5} {r.id:<{widths[0]}}  {r.reference:<{widths[1]}}  {r.claim}")
        print(f"{'':<5} {'':<{widths[0]}}  {'':<{widths[1]}}  -> {r.measured}  ({r.seconds:.1f} s)")


def _run_on_dask(selected, args):
    """Run the checks as cells of a sweep on a dask.distributed scheduler."""
    import shutil

    from checks import CheckResult, run_check_cell
    from simulations.sweep import run_sweep

    cache = args.out / ".dask-cells"
    shutil.rmtree(cache, ignore_errors=True)  # results must reflect this code, not a cache
    try:
        table = run_sweep(run_check_cell, [{"id": c.id, "seed": args.seed, "full": args.full}
                                           for c in selected],
                          cache_dir=cache, executor="dask", scheduler=args.scheduler)
    except ValueError as exc:
        raise SystemExit(f"error: --scheduler: {exc}") from None
    finally:
        shutil.rmtree(cache, ignore_errors=True)
    rows = {row.id: row for row in table.itertuples()}
    return [CheckResult(c.id, c.reference, c.claim, rows[c.id].measured,
                        None if rows[c.id].passed is None or rows[c.id].passed != rows[c.id].passed
                        else bool(rows[c.id].passed), float(rows[c.id].seconds), c.oracle)
            for c in selected]


def parse_args(argv: list[str] | None = None) -> tuple[argparse.Namespace, argparse.ArgumentParser]:
    """The command line, checked: (args, parser)."""
    from theory.validation import check_int

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--full", action="store_true", help="run at the paper's sizes (slow)")
    parser.add_argument("--only", nargs="+", metavar="ID", help="run only these check ids")
    parser.add_argument("--seed", type=int, default=0, help="seed of every random check (default 0)")
    parser.add_argument("--out", type=Path, default=REPO / "paper_checks_out",
                        help="directory for report.md and results.json (default ./paper_checks_out)")
    parser.add_argument("--force", action="store_true", help="write into an --out that holds other files")
    parser.add_argument("--list", action="store_true", help="list the checks and exit")
    parser.add_argument("--no-figures", action="store_true", help="skip drawing the figures")
    parser.add_argument("--scheduler", metavar="ADDRESS",
                        help="run the checks on a dask.distributed scheduler, e.g. tcp://127.0.0.1:8786")
    parser.add_argument("--data", type=Path, metavar="DIR",
                        help="folder holding gowalla.mat (default: $HNSLAB_DATA or ../shared/data)")
    args = parser.parse_args(argv)
    try:
        check_int(args.seed, "--seed", low=0)
    except ValueError as exc:
        parser.error(str(exc))
    if args.data is not None:
        if not args.data.is_dir():
            parser.error(f"--data {args.data} is not a folder")
        if not os.access(args.data, os.R_OK | os.X_OK):
            parser.error(f"--data {args.data} is not readable")
        # The checks find their data through training.datasets.data_folder(), the one lookup,
        # which reads $HNSLAB_DATA: --data is passed on through it.
        os.environ["HNSLAB_DATA"] = str(args.data.resolve())
    return args, parser


def _print_checks(registry) -> None:
    """--list: each check's id, paper reference, claim and independent reference."""
    for c in registry:
        print(f"{c.id:<8} {c.reference:<24} {c.claim}")
        print(f"{'':<8} {'':<24} reference: {c.oracle}")


def _select(registry, only, parser):
    """The checks named by --only (in that order), or every check; unknown ids are a CLI error."""
    if not only:
        return list(registry)
    known = {c.id: c for c in registry}
    unknown = [i for i in only if i not in known]
    if unknown:
        parser.error(f"--only: unknown check id(s) {', '.join(unknown)}; known: {', '.join(known)}")
    return [known[i] for i in only]


def _run_locally(selected, seed: int, full: bool):
    """Run the checks one after the other in this process (a progress bar on a terminal)."""
    from tqdm import tqdm

    from checks import CheckResult, run_check

    results = []
    for c in tqdm(selected, desc="checks", unit="check", file=sys.stderr,
                  disable=not sys.stderr.isatty()):
        start = time.perf_counter()
        measured, passed = run_check(c, seed, full)  # a crash is a FAIL
        results.append(CheckResult(c.id, c.reference, c.claim, measured, passed,
                                   time.perf_counter() - start, c.oracle))
    return results


def _summary(results) -> tuple[str, int]:
    """The one-line count of passed, failed and skipped checks, and the number failed."""
    n_failed = sum(r.passed is False for r in results)
    n_skipped = sum(r.passed is None for r in results)
    summary = f"{len(results) - n_failed - n_skipped} passed, {n_failed} failed" + (
        f", {n_skipped} skipped" if n_skipped else "")
    return summary, n_failed


def _draw_figures(out: Path, seed: int):
    """Every figure of the catalog into out/figures, from data cached in out/data."""
    from figures.catalog import draw_all
    from figures.style import use_agg_backend

    use_agg_backend()  # files only; unless the user chose a backend
    print("drawing figures ...", file=sys.stderr)
    return draw_all(out / "data", out / "figures", seed=seed)


def _manifest(args, results, figures) -> dict:
    """results.json: the run's configuration, versions, every check's record and the figures."""
    return {
        "seed": args.seed,
        "size": "full" if args.full else "reduced",
        "only": args.only,
        "git_revision": _git_revision(),
        "versions": _versions(),
        "checks": [r.__dict__ for r in results],
        "figures": {f.name: [str(p.relative_to(args.out)) for p in paths] for f, paths in figures},
    }


def _report(args, manifest: dict, results, summary: str, figures) -> str:
    """report.md: the header line, the verdict table, the summary and the figures."""
    report = ["# hnslab paper checks", "",
              f"seed {args.seed}, {'full' if args.full else 'reduced'} size, "
              f"git {manifest['git_revision']}, "
              + ", ".join(f"{k} {v}" for k, v in manifest["versions"].items()), "",
              *_table(results), "",
              summary, ""]
    if figures:
        report += ["## Figures", ""]
        for figure, paths in figures:
            png = next(p for p in paths if p.suffix == ".png")
            report += [f"### {figure.name}", "", figure.caption, "",
                       f"![{figure.name}]({png.relative_to(args.out).as_posix()})", ""]
    return "\n".join(report)


def main(argv: list[str] | None = None) -> int:
    args, parser = parse_args(argv)
    from checks import all_checks

    registry = all_checks()
    if args.list:
        _print_checks(registry)
        return 0
    selected = _select(registry, args.only, parser)
    _prepare_out(args.out, args.force)
    if args.scheduler:
        results = _run_on_dask(selected, args)
    else:
        results = _run_locally(selected, args.seed, args.full)
    _print_table(results)
    summary, n_failed = _summary(results)
    print(f"\n{summary}")
    figures = [] if args.no_figures else _draw_figures(args.out, args.seed)
    manifest = _manifest(args, results, figures)
    atomic_write_text(args.out / "report.md", _report(args, manifest, results, summary, figures))
    atomic_write_text(args.out / MANIFEST_NAME, json.dumps(manifest, indent=2))
    print(f"report: {args.out / 'report.md'}")
    return 1 if n_failed else 0


if __name__ == "__main__":
    sys.exit(main())
