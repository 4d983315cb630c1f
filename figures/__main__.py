"""``python -m figures``: redraw every figure from cached data (computing what is missing)."""
import argparse
import sys
from pathlib import Path

from figures.catalog import FIGURES, draw_all


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m figures", description=__doc__)
    parser.add_argument("--data", type=Path, default=Path("paper_checks_out") / "data",
                        help="folder of cached figure data (CSV); default paper_checks_out/data")
    parser.add_argument("--out", type=Path, default=Path("paper_checks_out") / "figures",
                        help="folder for the PNG and PDF files; default paper_checks_out/figures")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--only", nargs="+", metavar="NAME", help="draw only these figures")
    args = parser.parse_args(argv)
    names = [f.name for f in FIGURES]
    if args.only and (unknown := [n for n in args.only if n not in names]):
        parser.error(f"--only: unknown figure(s) {', '.join(unknown)}; known: {', '.join(names)}")
    for figure, paths in draw_all(args.data, args.out, args.seed, args.only):
        print(f"{figure.name}: {', '.join(str(p) for p in paths)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
