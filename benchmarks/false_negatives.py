"""False negatives: what drawing a user's held-out positives as negatives costs DNS.

On a dense data set a hard sampler's "hardest negatives" are, once the model is decent, largely
the user's held-out (test) positives: on MovieLens-1M a user has on average 132 training and 33
test items among 3,706, and the test items are what a good model ranks highest.  DNS(M, N)
trains on the top M of N negatives drawn uniformly, the top M/N of the negatives, so it pushes
exactly those items down.

This script trains the same MF run twice, from the same seed, and evaluates it every
``--eval-every`` epochs: once as every other run does (pools drawn from the items outside the
user's training set) and once with the user's test items excluded from the pools as well
(``training.trainer.Trainer(exclude=test)``, an oracle no real recommender has).  The pairs,
the model, the optimiser and the evaluation are the same; only the pools' exclusions differ
(so the pools' random streams differ too, from the first epoch).  If the plain run's metrics
fall while the oracle run's rise, the fall is caused by the held-out positives drawn as
negatives.

Each finished run appends one row per evaluation to ``--results`` (default
``results/false_negatives_<dataset>.csv``; a run already there is skipped), which the README's
``false-negatives-<dataset>`` block quotes.  Not a speed benchmark: the times are not recorded.

Usage::

    python benchmarks/false_negatives.py --dataset ml-1m --ms 5 20 --epochs 25 --eval-every 5
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pandas as pd

from figures.tables import DATASETS
from theory.validation import check_int
from training import sampling as S
from training.datasets import DatasetError, load_dataset
from training.results import RESULTS_DIR, append_rows, git_revision
from training.trainer import train_model

POOL = 200
#: How the pools' exclusions are written in the results.
EXCLUDED = {False: "train", True: "train + test"}
KEY = ("dataset", "sampler_label", "excluded", "weight_decay", "seed", "epoch")
METRICS = ("recall@20", "ndcg@20", "recall@50", "ndcg@50")


def run(dataset: str, split, m: int, oracle: bool, *, epochs: int, eval_every: int,
        weight_decay: float, seed: int, threads: int | None) -> list[dict]:
    """The evaluation rows of one run on ``split`` (every ``eval_every`` epochs and the last)."""
    sampler = S.dns(m, POOL)
    result = train_model(split.train, split.test, sampler, epochs=epochs,
                         eval_every=eval_every, weight_decay=weight_decay, seed=seed,
                         threads=threads, exclude=split.test if oracle else None)
    revision = git_revision()
    return [{"dataset": dataset, "sampler_label": sampler.label(),
             "excluded": EXCLUDED[oracle], "weight_decay": weight_decay, "seed": seed,
             "epoch": h["epoch"], **{k: h[k] for k in METRICS}, "git_revision": revision}
            for h in result.history if "recall@20" in h]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", choices=DATASETS, default="ml-1m")
    parser.add_argument("--ms", type=int, nargs="+", default=[5, 20], metavar="M",
                        help=f"DNS(M, {POOL}) runs (default 5 20)")
    parser.add_argument("--epochs", type=int, default=25)
    parser.add_argument("--eval-every", type=int, default=5)
    parser.add_argument("--weight-decay", type=float, default=0.001)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--results", type=Path, default=None)
    args = parser.parse_args(argv)
    try:
        for m in args.ms:
            check_int(m, "--ms", low=1, high=POOL)
        check_int(args.epochs, "--epochs", low=1)
        check_int(args.eval_every, "--eval-every", low=1)
    except ValueError as exc:
        parser.error(str(exc))
    results = args.results or RESULTS_DIR / f"false_negatives_{args.dataset}.csv"
    done = pd.read_csv(results) if results.exists() else pd.DataFrame(columns=list(KEY))
    split = None
    for m in args.ms:
        for oracle in (False, True):
            label = f"DNS({m},{POOL}), pools exclude {EXCLUDED[oracle]}"
            # A run is done when its last evaluation (its KEY at epoch = --epochs) is there.
            last = dict(zip(KEY, (args.dataset, S.dns(m, POOL).label(), EXCLUDED[oracle],
                                  args.weight_decay, args.seed, args.epochs)))
            if (done[list(KEY)] == pd.Series(last)).all(axis=1).any():
                print(f"{label}: already in {results}")
                continue
            if split is None:
                try:
                    split = load_dataset(args.dataset, seed=args.seed)
                except DatasetError as exc:
                    print(f"error: {exc}", file=sys.stderr)
                    return 2
            rows = run(args.dataset, split, m, oracle, epochs=args.epochs,
                       eval_every=args.eval_every, weight_decay=args.weight_decay,
                       seed=args.seed, threads=args.threads)
            append_rows(results, rows, KEY)
            print(f"{label}: " + ", ".join(f"epoch {r['epoch']} Recall@20 {r['recall@20']:.4f}"
                                           for r in rows), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
