"""Benchmark: full-ranking evaluation against its floor, the blocked float32 factor product.

Workload (issue 12, item 1): Gowalla, 29,858 users x 40,988 items, dim 32, the per-user
80/20 split of the paper (822,358 train / 205,106 test interactions), Recall / Precision /
NDCG at K in {5, 20, 50} (the trainer's default), and the same plus OPAUC at beta = 0.01.
When ../shared/data/gowalla.mat is absent, a synthetic data set of the same shape stands in
(Zipf-like item popularity, about as many interactions, the same split).

Measured side by side in one process, the methods taking turns in each round (the order
flips every round), medians over rounds:

- floor: ``np.matmul`` of the float32 factors in blocks of 1,024 users (the users with test
  items) into one reused buffer: the product every full-ranking evaluation must compute;
- hnslab: ``training.evaluation.evaluate_full_ranking`` (the same products, cut into tiles of
  64 users, each worker thread scoring a tile with one single-threaded BLAS call and
  scanning it while it is in cache);
- today: the implementation before issue 12 (tests/evaluation_reference.py), in the first
  ``--reference-rounds`` rounds only (it takes about 10x the floor).

For 1 and 2 threads (numba threads and OpenBLAS threads both set to the count), on factors
(a) drawn as the trainer initialises them (N(0, 0.1), float32) and (b) of a model trained
for ``--epochs`` epochs of DNS(5, 200) (``training.trainer.train_model``, which also reports
its ``seconds_per_epoch`` and ``eval_seconds``).  Before timing, every factor set is checked
for *equal* results (``np.array_equal``: the same floats, not a tolerance) between hnslab and
today's implementation, also on quantised factors (multiples of 1/16: exact float32 scores
with many ties), and between hnslab on 1 and 2 threads (every Top-K metric, MRR@K and MAP@K
included).  The numba JIT compile time is measured apart, in a fresh process with an empty
cache.  Peak memory: the process's peak RSS and tracemalloc's peak of one evaluation
(numpy allocations; numba's scratch, about 1.4 MB per thread, is not traced).

The machine is shared (2 cores, other jobs running): absolute times move by 2x between
runs; the ratios of methods timed in the same round are what to read.  The last lines are
the ratio evaluation / floor (median, min-max over rounds) for 1 and 2 threads.  (The
implementation between the two, one product per 1,024-user block scanned after it, measured
1.84x / 3.13x in results/benchmarks/bench_evaluation.txt.)

Usage::

    python benchmarks/bench_evaluation.py [--data PATH] [--rounds 5] [--epochs 1]
        [--reference-rounds 2] [--threads 1 2] [--no-compile] [--json out.json]
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

import numba
import numpy as np
import scipy.sparse as sp
from threadpoolctl import threadpool_limits

from simulations.files import atomic_write_text
from training.datasets import data_folder
from training.evaluation import evaluate_full_ranking
from training.loaders import load_mat
from training.split import split_per_user

ROOT = Path(__file__).resolve().parents[1]

KS = (5, 20, 50)
BETAS = (0.01,)
DIM = 32
BLOCK = 1024
SHAPE = (29_858, 40_988)


def default_data() -> Path:
    return data_folder() / "gowalla.mat"


def _load_test_module(name):
    """A baseline evaluation of the tests, loaded from its file: it is test code, not part of
    the installed package."""
    spec = importlib.util.spec_from_file_location(name, ROOT / "tests" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    # Registered under its name, as pytest imports it: numba's cache, shared with the tests,
    # rebuilds a kernel's environment by importing its module by name.
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


evaluate_full_ranking_reference = _load_test_module("evaluation_reference").evaluate_full_ranking_reference


def synthetic(seed=0):
    """Gowalla-shaped stand-in: 1,027,464 draws (Gowalla's interaction count), users with
    log-normal activity, items with Zipf-like popularity; duplicates merge."""
    rng = np.random.default_rng(seed)
    n_users, n_items = SHAPE
    activity = rng.lognormal(0.0, 1.0, n_users)
    counts = np.maximum(3, np.round(activity / activity.sum() * 1_027_464)).astype(np.int64)
    popularity = 1.0 / (np.arange(n_items) + 20.0) ** 0.8
    items = rng.choice(n_items, size=counts.sum(), p=popularity / popularity.sum())
    rows = np.repeat(np.arange(n_users), counts)
    return sp.csr_matrix((np.ones(rows.size, bool), (rows, rng.permutation(n_items)[items])),
                         shape=SHAPE)


def floor_product(U, V, users):
    """The floor: float32 products of 1,024-user blocks into one reused buffer."""
    items_t = np.ascontiguousarray(V.T)
    buffer = np.empty((min(BLOCK, users.size), V.shape[0]), np.float32)
    for start in range(0, users.size, BLOCK):
        block = users[start:start + BLOCK]
        np.matmul(U[block], items_t, out=buffer[: block.size])


ALL_METRICS = ("recall", "precision", "ndcg", "mrr", "map")


def same_results(a, b, names=("recall", "precision", "ndcg")):
    """Equal floats in every metric array (NaN == NaN: a user without negatives)."""
    return all(np.array_equal(getattr(a, f), getattr(b, f), equal_nan=True)
               for f in ("users", "ks", *names, "betas", "opauc"))


def check_equal(name, U, V, train, test, betas_list=((), (0.001, 0.01), (0.01, 0.5)),
                threads=(1, 2)):
    """hnslab == today's implementation, exactly, for each set of OPAUC levels (beta 0.5 sends
    most rows through the whole-row path, the others through the top-r selection), and every
    metric the same on each thread count (numba and BLAS)."""
    for betas in betas_list:
        ref = evaluate_full_ranking_reference(U, V, train, test, ks=(1, 5, 20, 50), betas=betas)
        first = None
        for n in threads:
            numba.set_num_threads(n)
            with threadpool_limits(limits=n, user_api="blas"):
                new = evaluate_full_ranking(U, V, train, test, ks=(1, 5, 20, 50), betas=betas,
                                            metrics=ALL_METRICS)
            if not same_results(new, ref):
                raise AssertionError(f"{name}, betas {betas}, {n} thread(s): hnslab differs from "
                                     "today's implementation")
            first = new if first is None else first
            if not same_results(new, first, ALL_METRICS):
                raise AssertionError(f"{name}, betas {betas}, {n} thread(s): hnslab differs from "
                                     f"hnslab on {threads[0]} thread(s)")
    print(f"  equal to today's implementation and across thread counts (np.array_equal, ks 1/5/20/50, "
          f"betas {', '.join(map(str, betas_list))}; hnslab on {'/'.join(map(str, threads))} "
          f"thread(s)): {name}", flush=True)


def quantised(U, V):
    """Multiples of 1/16 in [-1/2, 1/2]: products and sums of 32 of them are exact in float32,
    so scores tie exactly (a few hundred distinct values per row)."""
    return [np.clip(np.round(F * 16) / 16, -0.5, 0.5).astype(np.float32) for F in (U, V)]


def tie_fraction(U, V, users):
    """Mean over 64 users of 1 - distinct scores / items."""
    s = U[users[:64]] @ V.T
    return float(np.mean([1 - np.unique(r).size / r.size for r in s]))


def compile_seconds():
    """JIT compile of the evaluation kernels, in a fresh process with an empty numba cache."""
    code = ("import time, numpy as np, scipy.sparse as sp\n"
            "t = time.perf_counter()\n"
            "from training.evaluation import evaluate_full_ranking\n"
            "rng = np.random.default_rng(0)\n"
            "U = rng.normal(size=(50, 4)).astype(np.float32); V = rng.normal(size=(300, 4)).astype(np.float32)\n"
            "u = rng.random((50, 300)); tr = sp.csr_matrix(u < 0.1); te = sp.csr_matrix((u > 0.1) & (u < 0.15))\n"
            "evaluate_full_ranking(U, V, tr, te, ks=(5, 20, 50))\n"
            "evaluate_full_ranking(U, V, tr, te, ks=(5, 20, 50), betas=(0.01,))\n"
            "print(time.perf_counter() - t)\n")
    with tempfile.TemporaryDirectory() as cache:
        env = dict(os.environ, NUMBA_CACHE_DIR=cache)
        out = subprocess.run([sys.executable, "-c", code], env=env, cwd=ROOT,
                             capture_output=True, text=True, check=True)
    return float(out.stdout.strip().splitlines()[-1])


def trained_factors(train, test, epochs, seed=0):
    from training import sampling as S
    from training import trainer as T

    result = T.train_model(train, test, S.dns(5, 200), epochs=epochs, seed=seed,
                           weight_decay=0.001, handle_sigint=False)
    model = result.model
    U, V = model.embeddings() if hasattr(model, "embeddings") else (model.user_factors,
                                                                     model.item_factors)
    return (np.ascontiguousarray(U, np.float32), np.ascontiguousarray(V, np.float32),
            result.seconds_per_epoch, result.eval_seconds, result.metrics)


def svd_factors(train, dim=DIM, seed=0):
    """PureSVD: the rank-``dim`` truncated SVD of the training matrix, split as U sqrt(S),
    V sqrt(S) (float32).  A fitted model in seconds, with a trained model's score structure:
    the training items and the users' test items score high."""
    from scipy.sparse.linalg import svds

    v0 = np.random.default_rng(seed).random(min(train.shape))
    u, s, vt = svds(train.astype(np.float64), k=dim, v0=v0)
    root = np.sqrt(s)
    return (u * root).astype(np.float32), (vt.T * root).astype(np.float32)


def time_rounds(U, V, train, test, users, threads, rounds, reference_rounds):
    """Interleaved rounds; returns lists of seconds per method."""
    runs = {"floor": [], "hnslab": [], "hnslab_opauc": [], "today": []}
    numba.set_num_threads(threads)
    with threadpool_limits(limits=threads, user_api="blas"):
        evaluate_full_ranking(U, V, train, test, ks=KS)  # warm: page in, caches loaded
        for i in range(rounds):
            todo = [("floor", lambda: floor_product(U, V, users)),
                    ("hnslab", lambda: evaluate_full_ranking(U, V, train, test, ks=KS)),
                    ("hnslab_opauc", lambda: evaluate_full_ranking(U, V, train, test, ks=KS,
                                                                   betas=BETAS))]
            if i < reference_rounds:
                todo.append(("today", lambda: evaluate_full_ranking_reference(U, V, train, test,
                                                                              ks=KS)))
            if i % 2:
                todo.reverse()
            for name, run in todo:
                start = time.perf_counter()
                run()
                runs[name].append(time.perf_counter() - start)
    return runs


def summary(values):
    v = np.asarray(values)
    return f"{np.median(v):.2f} ({v.min():.2f}-{v.max():.2f}, n={v.size})"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=default_data())
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--reference-rounds", type=int, default=2)
    parser.add_argument("--epochs", type=int, default=1, help="DNS(5, 200) epochs for the "
                        "trained factors (0: skip them)")
    parser.add_argument("--factors", type=Path, help="a model saved by python -m training "
                        "--save (arrays user_factors, item_factors), timed as 'saved'")
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--no-compile", action="store_true", help="skip the cold JIT timing")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)

    out = {"load_average": os.getloadavg()}
    if args.data.exists():
        matrix = load_mat(args.data)
        out["data"] = str(args.data)
    else:
        matrix = synthetic()
        out["data"] = "synthetic (Gowalla-shaped)"
    split = split_per_user(matrix, 0.8, seed=0)
    train, test = split.train, split.test
    users = np.flatnonzero(np.diff(test.indptr) > 0)
    print(f"{out['data']}: {train.shape[0]} users x {train.shape[1]} items, {train.nnz} train / "
          f"{test.nnz} test, {users.size} users with test items; dim {DIM}; "
          f"load average {out['load_average'][0]:.1f} on {os.cpu_count()} cores", flush=True)

    rng = np.random.default_rng(0)
    factor_sets = {"random": ((rng.normal(size=(train.shape[0], DIM)) * 0.1).astype(np.float32),
                              (rng.normal(size=(train.shape[1], DIM)) * 0.1).astype(np.float32))}
    factor_sets["svd"] = svd_factors(train)
    if args.factors is not None:
        saved = np.load(args.factors)
        factor_sets["saved"] = (saved["user_factors"].astype(np.float32),
                                saved["item_factors"].astype(np.float32))
    if args.epochs > 0:
        try:
            U, V, spe, evs, metrics = trained_factors(train, test, args.epochs)
        except (ImportError, AttributeError, TypeError, ValueError) as exc:
            # the trainer's API is moving; the evaluation timing does not depend on it
            print(f"  trained factors skipped: {type(exc).__name__}: {exc}")
        else:
            factor_sets["trained"] = (U, V)
            out["trainer"] = {"epochs": args.epochs, "seconds_per_epoch": spe,
                              "eval_seconds": evs, "recall@20": metrics.get("recall@20")}
            print(f"  trainer, DNS(5, 200) x {args.epochs} epoch(s): seconds_per_epoch {spe:.2f} "
                  f"(training only), eval_seconds {evs:.2f}, recall@20 "
                  f"{metrics.get('recall@20', float('nan')):.4f}", flush=True)

    print("Correctness (before any timing):")
    for name, (U, V) in factor_sets.items():
        check_equal(name, U, V, train, test)
    Uq, Vq = quantised(*factor_sets["svd"])
    check_equal(f"quantised (1 - distinct/items = {tie_fraction(Uq, Vq, users):.3f})",
                Uq, Vq, train, test)
    check_equal("float64 factors", *(F.astype(np.float64) for F in factor_sets["random"]),
                train, test, betas_list=((0.01,),))

    # What float32 scores (today's ranking for float32 factors, kept) change against exact
    # float64 products of the same factors: informational.
    name = "svd"
    U, V = factor_sets[name]
    e32 = evaluate_full_ranking(U, V, train, test, ks=KS, betas=BETAS)
    e64 = evaluate_full_ranking(U.astype(np.float64), V.astype(np.float64), train, test, ks=KS,
                                betas=BETAS)
    moved = ~np.all([np.all((getattr(e32, f) == getattr(e64, f))
                            | (np.isnan(getattr(e32, f)) & np.isnan(getattr(e64, f))), axis=1)
                     for f in ("recall", "ndcg", "opauc")], axis=0)
    gap = np.abs(e32.recall[:, 1].mean() - e64.recall[:, 1].mean())
    out["float32_vs_float64"] = {"users_moved": int(moved.sum()), "recall@20_gap": float(gap)}
    print(f"float32 scores (kept) vs float64 scores, {name} factors: {moved.sum()} of "
          f"{moved.size} users have some metric changed; mean recall@20 moves by {gap:.1e}",
          flush=True)

    if not args.no_compile:
        out["compile_seconds"] = compile_seconds()
        print(f"JIT compile (fresh process, empty cache, incl. imports): "
              f"{out['compile_seconds']:.1f} s", flush=True)

    tracemalloc.start()
    U, V = factor_sets["random"]
    evaluate_full_ranking(U, V, train, test, ks=KS)
    out["tracemalloc_peak_mb"] = tracemalloc.get_traced_memory()[1] / 2 ** 20
    tracemalloc.stop()

    ratios = {}
    for name, (U, V) in factor_sets.items():
        for threads in args.threads:
            runs = time_rounds(U, V, train, test, users, threads, args.rounds,
                               args.reference_rounds)
            ratio = np.array(runs["hnslab"]) / np.array(runs["floor"])
            ratio_opauc = np.array(runs["hnslab_opauc"]) / np.array(runs["floor"])
            ratio_today = (np.array(runs["today"]) / np.array(runs["floor"][:len(runs["today"])])
                           if runs["today"] else np.array([np.nan]))
            ratios[(name, threads)] = ratio
            out[f"{name}_{threads}t"] = {k: v for k, v in runs.items()}
            print(f"{name} factors, {threads} thread(s), seconds: floor {summary(runs['floor'])}; "
                  f"hnslab {summary(runs['hnslab'])}; hnslab + OPAUC@0.01 "
                  f"{summary(runs['hnslab_opauc'])}; today "
                  f"{summary(runs['today'] or [np.nan])}")
            print(f"  ratios to the floor (same round): hnslab {summary(ratio)}; + OPAUC@0.01 "
                  f"{summary(ratio_opauc)}; today "
                  f"{summary(ratio_today)}; load average {os.getloadavg()[0]:.1f}", flush=True)
    out["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"Peak memory: process peak RSS {out['peak_rss_mb']:.0f} MB (data, factors, today's "
          f"implementation and the timings included); one evaluation's numpy allocations "
          f"(tracemalloc peak) {out['tracemalloc_peak_mb']:.0f} MB")
    if args.json:
        atomic_write_text(args.json, json.dumps(out, indent=1, default=float))
    headline = "svd"
    for threads in args.threads:
        print(f"evaluation / matmul floor, {threads} thread(s), {headline} factors: median "
              f"{np.median(ratios[(headline, threads)]):.2f} (min "
              f"{ratios[(headline, threads)].min():.2f}, max {ratios[(headline, threads)].max():.2f},"
              f" {ratios[(headline, threads)].size} rounds)")


if __name__ == "__main__":
    main()
