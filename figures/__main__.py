"""``python -m figures``: redraw every figure from cached data (computing what is missing).

The paper's figures go to ``paper_checks_out/figures`` (PNG + PDF); with ``--readme`` the
README's figures (``fig6_uniform.png``, ``score_models.png``) go to ``docs/``.
"""
import argparse
import sys
from pathlib import Path

from figures.catalog import FIGURES, README_FIGURES, draw_all
from figures.style import use_agg_backend

DOCS = Path(__file__).resolve().parents[1] / "docs"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m figures", description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path("paper_checks_out") / "data",
                        help="folder of cached figure data (CSV); default paper_checks_out/data")
    parser.add_argument("--out", type=Path, default=None,
                        help="folder for the figure files; default paper_checks_out/figures "
                             "(with --readme: the repository's docs/)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the figure data (default 0)")
    parser.add_argument("--only", nargs="+", metavar="NAME", help="draw only these figures")
    parser.add_argument("--readme", action="store_true",
                        help="draw the README's figures (fig6_uniform, score_models) instead")
    parser.add_argument("--quick", action="store_true",
                        help="small sizes for the README's figures (a smoke run)")
    args = parser.parse_args(argv)
    if args.seed < 0:
        parser.error(f"--seed must be >= 0; got {args.seed}")
    args.figures = README_FIGURES if args.readme else FIGURES
    names = [f.name for f in args.figures]
    if args.only and (unknown := [n for n in args.only if n not in names]):
        parser.error(f"--only: unknown figure(s) {', '.join(unknown)}; known: {', '.join(names)}")
    if args.out is None:
        args.out = DOCS if args.readme else Path("paper_checks_out") / "figures"
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    use_agg_backend()
    for figure, paths in draw_all(args.data, args.out, args.seed, args.only,
                                  figures=args.figures, quick=args.quick):
        print(f"{figure.name}: {', '.join(str(p) for p in paths)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
