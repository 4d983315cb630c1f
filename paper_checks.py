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
import tempfile
import time
from importlib import metadata
from pathlib import Path

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


def _atomic_write(path: Path, text: str) -> None:
    """Write to a temporary file beside ``path``, then rename: never a half-written file."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


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


def parse_args(argv=None):
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
    if args.seed < 0:
        parser.error(f"--seed must be >= 0; got {args.seed}")
    if args.data is not None:
        if not args.data.is_dir():
            parser.error(f"--data {args.data} is not a folder")
        if not os.access(args.data, os.R_OK | os.X_OK):
            parser.error(f"--data {args.data} is not readable")
        os.environ["HNSLAB_DATA"] = str(args.data.resolve())
    return args, parser


def main(argv=None) -> int:
    args, parser = parse_args(argv)
    from checks import CheckResult, all_checks, run_check

    registry = all_checks()
    known = {c.id: c for c in registry}
    if args.list:
        for c in registry:
            print(f"{c.id:<8} {c.reference:<24} {c.claim}")
            print(f"{'':<8} {'':<24} reference: {c.oracle}")
        return 0
    if args.only:
        unknown = [i for i in args.only if i not in known]
        if unknown:
            parser.error(f"--only: unknown check id(s) {', '.join(unknown)}; known: {', '.join(known)}")
        selected = [known[i] for i in args.only]
    else:
        selected = registry
    _prepare_out(args.out, args.force)

    try:
        from tqdm import tqdm
    except ImportError:  # pragma: no cover - tqdm is a dependency
        tqdm = None
    results = []
    if args.scheduler:
        results = _run_on_dask(selected, args)
    iterator = tqdm(selected, desc="checks", unit="check", file=sys.stderr,
                    disable=not sys.stderr.isatty()) if tqdm else selected
    for c in (iterator if not args.scheduler else []):
        start = time.perf_counter()
        measured, passed = run_check(c, args.seed, args.full)  # a crash is a FAIL
        results.append(CheckResult(c.id, c.reference, c.claim, measured, passed,
                                   time.perf_counter() - start, c.oracle))

    _print_table(results)
    n_failed = sum(r.passed is False for r in results)
    n_skipped = sum(r.passed is None for r in results)
    summary = f"{len(results) - n_failed - n_skipped} passed, {n_failed} failed" + (
        f", {n_skipped} skipped" if n_skipped else "")
    print(f"\n{summary}")

    figures = []
    if not args.no_figures:
        from figures.catalog import draw_all

        print("drawing figures ...", file=sys.stderr)
        figures = draw_all(args.out / "data", args.out / "figures", seed=args.seed)

    manifest = {
        "seed": args.seed,
        "size": "full" if args.full else "reduced",
        "only": args.only,
        "git_revision": _git_revision(),
        "versions": _versions(),
        "checks": [r.__dict__ for r in results],
        "figures": {f.name: [str(p.relative_to(args.out)) for p in paths] for f, paths in figures},
    }
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
    _atomic_write(args.out / "report.md", "\n".join(report))
    _atomic_write(args.out / MANIFEST_NAME, json.dumps(manifest, indent=2))
    print(f"report: {args.out / 'report.md'}")
    return 1 if n_failed else 0


if __name__ == "__main__":
    sys.exit(main())
