"""Command line of the trainer: ``python -m training`` (see :mod:`training.trainer`).

Prints the final Recall / NDCG at K (or, with ``--json``, one JSON object as the last line of
stdout: the metrics, n_train, n_test, seconds_per_epoch (training only), eval_seconds, the
configuration including ``model``).  ``--model`` chooses a model of the registry
:data:`training.models.MODELS`; ``--layers`` is an option of graph models only (MF rejects
it, so that ``--model mf --layers 2`` cannot silently train the same MF as ``--layers 3``).
"""
from __future__ import annotations

import argparse
import json
import math
import os
import sys
from pathlib import Path

import numpy as np

from training import models as M
from training import sampling as S
from training import trainer as T
from training.datasets import load_dataset

__all__ = ["main", "save_npz", "DEFAULT_LAYERS"]

#: Propagation layers of graph models when --layers is not given (LightGCN's L = 3).
DEFAULT_LAYERS = 3


def _parser():
    parser = argparse.ArgumentParser(
        prog="python -m training",
        description="Train a recommender (MF, ...) with BPR under a negative sampler and "
                    "evaluate by full ranking.")
    parser.add_argument("--data", required=True,
                        help="a data set by name (gowalla, yelp2018, ml-1m; see "
                             "training.datasets), a .mat file, a LightGCN train.txt (test.txt "
                             "beside it) or its folder, or 'planted'")
    parser.add_argument("--model", choices=tuple(M.MODELS), default="mf",
                        help="model (default mf)")
    parser.add_argument("--layers", type=int, default=None,
                        help=f"propagation layers of graph models (default {DEFAULT_LAYERS}; "
                             "not an option of mf)")
    parser.add_argument("--sampler", required=True, choices=("uniform", "dns", "softmax_v",
                                                             "score_softmax"))
    parser.add_argument("--m", type=int, default=None, help="M of DNS(M,N) (default 1)")
    parser.add_argument("--n", type=int, default=None,
                        help="pool size N (default 200; 1 for uniform)")
    parser.add_argument("--rho", type=float, default=1.0, help="rho of Softmax-v (default 1)")
    parser.add_argument("--tau", type=float, default=1.0, help="tau of score_softmax (default 1)")
    parser.add_argument("--variant", choices=S.VARIANTS, default="weighted",
                        help="DNS: weight all top M (default) or pick one of them")
    parser.add_argument("--reduction", choices=S.REDUCTIONS, default="mean",
                        help="DNS top-M weights 1/M (mean, the paper) or 1 (sum, the authors' code)")
    parser.add_argument("--ddof", type=int, choices=(0, 1), default=0,
                        help="Softmax-v variance: 0 population (Eq. 18), 1 unbiased (authors)")
    parser.add_argument("--pool", choices=S.POOLS, default="negatives",
                        help="pool over the user's negatives (default) or all items (authors)")
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--dim", type=int, default=32)
    parser.add_argument("--batch-size", type=int, default=4096)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--weight-decay", type=float, default=0.01)
    parser.add_argument("--weight-decay-mode", choices=T.WEIGHT_DECAY_MODES, default="adam",
                        help="adam: Adam's weight decay on all parameters (default, the "
                             "authors' code); batch: L2 on the batch's parameter rows (MF: "
                             "factors; LightGCN: ego embeddings, as LightGCN's code)")
    parser.add_argument("--no-lr-decay", action="store_true",
                        help="constant lr (default: x0.95 every 5 epochs, the authors' code)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--ks", type=int, nargs="+", default=[5, 20, 50])
    parser.add_argument("--betas", type=float, nargs="*", default=[])
    parser.add_argument("--eval-every", type=int, default=0)
    parser.add_argument("--threads", type=int, default=None, help="numba threads (default all)")
    parser.add_argument("--planted-users", type=int, default=2000)
    parser.add_argument("--planted-items", type=int, default=1000)
    parser.add_argument("--no-progress", action="store_true")
    parser.add_argument("--save", default=None,
                        help="write the model's arrays (MF: the factors) to this .npz file")
    parser.add_argument("--json", action="store_true",
                        help="print one JSON object as the last line of stdout")
    return parser


def _validate(parser, args):
    if args.model == "mf":
        if args.layers is not None:
            parser.error("argument --layers: MF has no propagation layers (use --model "
                         "lightgcn, or leave --layers out)")
    elif args.layers is None:
        args.layers = DEFAULT_LAYERS
    if args.layers is not None and args.layers < 0:
        parser.error(f"argument --layers: must be >= 0, got {args.layers}")
    if args.n is None:
        args.n = 1 if args.sampler == "uniform" else 200
    if args.m is None:
        args.m = 1
    if args.n < 1:
        parser.error(f"argument --n: must be >= 1, got {args.n}")
    if args.sampler == "dns" and not 1 <= args.m <= args.n:
        parser.error(f"argument --m: must be in [1, --n = {args.n}], got {args.m}")
    if not (args.rho > 0) or not math.isfinite(args.rho):
        parser.error(f"argument --rho: must be > 0, got {args.rho}")
    if not (args.tau > 0) or not math.isfinite(args.tau):
        parser.error(f"argument --tau: must be > 0, got {args.tau}")
    if args.sampler == "softmax_v" and args.n <= args.ddof:
        parser.error(f"argument --n: Softmax-v with --ddof {args.ddof} needs --n > {args.ddof}")
    for name in ("epochs", "eval_every"):
        if getattr(args, name) < 0:
            parser.error(f"argument --{name.replace('_', '-')}: must be >= 0")
    for name in ("dim", "batch_size", "planted_users", "planted_items"):
        if getattr(args, name) < 1:
            parser.error(f"argument --{name.replace('_', '-')}: must be >= 1")
    if not (args.lr > 0) or not math.isfinite(args.lr):
        parser.error(f"argument --lr: must be > 0, got {args.lr}")
    if not (args.weight_decay >= 0) or not math.isfinite(args.weight_decay):
        parser.error(f"argument --weight-decay: must be >= 0, got {args.weight_decay}")
    if args.seed < 0:
        parser.error(f"argument --seed: must be >= 0, got {args.seed}")
    if any(k < 1 for k in args.ks):
        parser.error("argument --ks: cut-offs must be >= 1")
    if any(not 0 < b <= 1 for b in args.betas):
        parser.error("argument --betas: levels must be in (0, 1]")
    if args.threads is not None and args.threads < 1:
        parser.error("argument --threads: must be >= 1")


def main(argv=None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    _validate(parser, args)
    try:
        train, test = load_dataset(args.data, args.seed, planted_users=args.planted_users,
                                   planted_items=args.planted_items)
    except (OSError, ValueError) as exc:
        parser.error(f"argument --data: cannot read {args.data!r}: {exc}")
    if args.threads is not None:
        import numba

        numba.set_num_threads(min(args.threads, numba.config.NUMBA_NUM_THREADS))
    sampler = S.Sampler(args.sampler, n=args.n, m=args.m if args.sampler == "dns" else 1,
                        rho=args.rho, tau=args.tau, pool=args.pool, reduction=args.reduction,
                        variant=args.variant, ddof=args.ddof)
    try:
        model_options = {} if args.layers is None else {"layers": args.layers}
        result = T.train_model(train, test, sampler, model=args.model, epochs=args.epochs,
                               ks=args.ks, betas=args.betas, eval_every=args.eval_every,
                               progress=not args.no_progress, dim=args.dim,
                               batch_size=args.batch_size, lr=args.lr,
                               weight_decay=args.weight_decay,
                               weight_decay_mode=args.weight_decay_mode,
                               lr_decay=not args.no_lr_decay, seed=args.seed, **model_options)
    except ValueError as exc:  # e.g. a user without negatives
        parser.error(str(exc))
    except FloatingPointError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    if args.save:
        save_npz(args.save, result.model.state_arrays())
    summary = result.summary()
    summary.update(data=str(args.data), seed=args.seed)
    if not args.json:
        for key in ("recall@5", "recall@20", "recall@50", "ndcg@5", "ndcg@20", "ndcg@50"):
            if key in summary:
                print(f"{key:>10}: {summary[key]:.4f}")
        print(f"seconds/epoch: {summary['seconds_per_epoch']:.3f}")
    else:
        print(json.dumps(summary, default=_json_default))
    return 0


def save_npz(path, arrays: dict) -> None:
    """Write ``arrays`` to the .npz file ``path`` (a temporary file renamed into place)."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "wb") as f:
            np.savez(f, **arrays)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def _json_default(x):
    if isinstance(x, (np.integer,)):
        return int(x)
    if isinstance(x, (np.floating,)):
        return float(x)
    raise TypeError(type(x).__name__)


if __name__ == "__main__":
    sys.exit(main())
