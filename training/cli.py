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
import sys
from functools import partial

import numpy as np

from simulations.files import save_npz
from theory.validation import check_betas, check_int, check_ks, check_real
from training import models as M
from training import sampling as S
from training import trainer as T
from training.datasets import load_dataset

__all__ = ["DEFAULT_LAYERS", "main"]

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
    parser.add_argument("--sampler", required=True, choices=tuple(S.SAMPLERS))
    default_n = ", ".join(f"{s.default_n} for {s.name}" for s in S.SAMPLERS.values())
    parser.add_argument("--n", type=int, default=None, help=f"pool size N (default {default_n})")
    # One option per parameter of the registered samplers; None = not given (its default).
    for param in _sampler_params().values():
        parser.add_argument(f"--{param.name}", type=type(param.default), default=None,
                            choices=param.choices, help=param.help)
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
    parser.add_argument("--checkpoint", default=None, metavar="PATH",
                        help="continue from this .npz checkpoint if it exists (same settings "
                             "and seed) and write it every --checkpoint-every epochs")
    parser.add_argument("--checkpoint-every", type=int, default=5, metavar="EPOCHS",
                        help="epochs between checkpoints (default 5)")
    parser.add_argument("--json", action="store_true",
                        help="print one JSON object as the last line of stdout")
    return parser


def _sampler_params() -> dict:
    """Every parameter of the registered samplers, by name (first registration wins; a shared
    name has one default, see ``training.sampling.register_sampler``)."""
    params = {}
    for spec in S.SAMPLERS.values():
        for param in spec.params:
            params.setdefault(param.name, param)
    return params


def _sampler(parser, args) -> S.Sampler:
    """The sampler of ``--sampler`` with its own options; parser.error naming the option for
    a bad value or for an option of another sampler."""
    spec = S.SAMPLERS[args.sampler]
    own = {p.name for p in spec.params}
    n = spec.default_n if args.n is None else args.n
    try:
        S.Sampler(args.sampler, n)
    except ValueError as exc:
        parser.error(f"argument --n: {exc}")
    params = {}
    for name in _sampler_params():
        value = getattr(args, name)
        if value is None:
            continue
        if name not in own:
            takes = ", ".join(f"--{p}" for p in ("n", "pool", *own))
            parser.error(f"argument --{name}: not an option of --sampler {args.sampler} "
                         f"(it takes {takes})")
        params[name] = value
        try:
            S.Sampler(args.sampler, n, **params)
        except ValueError as exc:
            parser.error(f"argument --{name}: {exc}")
    return S.Sampler(args.sampler, n, pool=args.pool, **params)


def _validate(parser, args):
    if args.model == "mf":
        if args.layers is not None:
            parser.error("argument --layers: MF has no propagation layers (use --model "
                         "lightgcn, or leave --layers out)")
    elif args.layers is None:
        args.layers = DEFAULT_LAYERS
    checks = {"layers": partial(check_int, low=0), "epochs": partial(check_int, low=0),
              "eval_every": partial(check_int, low=0), "dim": partial(check_int, low=1),
              "batch_size": partial(check_int, low=1), "planted_users": partial(check_int, low=1),
              "planted_items": partial(check_int, low=1), "threads": partial(check_int, low=1),
              "seed": partial(check_int, low=0), "checkpoint_every": partial(check_int, low=1),
              "lr": partial(check_real, low=0.0, include_low=False),
              "weight_decay": partial(check_real, low=0.0),
              "ks": partial(check_ks, min_size=1), "betas": partial(check_betas, min_size=0)}
    for name, check in checks.items():
        option = name.replace("_", "-")
        if getattr(args, name) is not None:
            try:
                check(getattr(args, name), option)
            except ValueError as exc:
                parser.error(f"argument --{option}: {exc}")


def main(argv: list[str] | None = None) -> int:
    """Run ``python -m training`` with ``argv`` (default: the command line); returns the exit
    status (0, or 1 when training diverged; bad arguments exit 2 through argparse).

    Examples
    --------
    >>> main(["--data", "planted", "--planted-users", "40", "--planted-items", "30",
    ...       "--sampler", "dns", "--m", "2", "--n", "8", "--epochs", "1", "--dim", "4",
    ...       "--batch-size", "64", "--no-progress", "--ks", "5"])  # doctest: +ELLIPSIS
      recall@5: ...
        ndcg@5: ...
    seconds/epoch: ...
    0
    """
    parser = _parser()
    args = parser.parse_args(argv)
    _validate(parser, args)
    sampler = _sampler(parser, args)
    try:
        train, test = load_dataset(args.data, args.seed, planted_users=args.planted_users,
                                   planted_items=args.planted_items)
    except (OSError, ValueError) as exc:
        parser.error(f"argument --data: cannot read {args.data!r}: {exc}")
    if args.threads is not None:
        import numba

        numba.set_num_threads(min(args.threads, numba.config.NUMBA_NUM_THREADS))
    try:
        model_options = {} if args.layers is None else {"layers": args.layers}
        result = T.train_model(train, test, sampler, model=args.model, epochs=args.epochs,
                               ks=args.ks, betas=args.betas, eval_every=args.eval_every,
                               progress=not args.no_progress, dim=args.dim,
                               batch_size=args.batch_size, lr=args.lr,
                               weight_decay=args.weight_decay,
                               weight_decay_mode=args.weight_decay_mode,
                               lr_decay=not args.no_lr_decay, seed=args.seed,
                               checkpoint=args.checkpoint,
                               checkpoint_every=args.checkpoint_every, **model_options)
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


def _json_default(x):
    if isinstance(x, (np.integer,)):
        return int(x)
    if isinstance(x, (np.floating,)):
        return float(x)
    raise TypeError(type(x).__name__)


if __name__ == "__main__":
    sys.exit(main())
