"""Benchmark: DNS(M, N)'s top-M selection for large M, and what it costs a training epoch.

``training.sampling.top_m_indices`` picks the M best of a pool of N scores for every pair.
It kept an insertion buffer up to M = 24 and called ``np.argsort(-scores, kind="mergesort")``
above (a full sort and a new array for every pair); DNS(50, 200) trained 4.9x slower per
epoch than DNS(5, 200) on MovieLens-1M (13.2 against 2.7 s/epoch in results/ml-1m_mf.csv,
run at 9bbca7e).  The insertion buffer now serves every M up to
``training.sampling.INSERTION_MAX_M``, with the same output.  (A binary heap of the M best,
O(N log M), was tried first and measured 2-7x *slower* than the argsort at N = 200; the
insertion buffer at M = N = 200 measured 0.82-1.08x of the argsort, hence the limit 128.)

Two measurements, each a ratio of two sides run side by side, medians over rounds (the
order of the sides flips every round):

1. Selection alone, in this process: ``top_m_indices`` against the argsort it replaced
   (defined below as the baseline), on ``--pools`` pools of standard normal scores, N = 200
   with M in {5, 20, 25, 50, 100, 128, 200} and N = 1,000 with M in {100, 128, 400}; one
   thread (above ``INSERTION_MAX_M`` = 128 both sides run the argsort).
   Both are first checked for equal output; the first call (JIT compilation) is timed apart.
2. Epochs (with ``--baseline-src DIR``, a checkout of the revision before this change, e.g.
   ``git worktree add /tmp/before 9bbca7e``): one MF epoch of DNS(M, 200), M in
   {5, 20, 50, 100}, on MovieLens-1M (weight decay 0.001, dim 32, batch 4096, one thread),
   each side in its own process importing its own source tree.  Reported: seconds per epoch
   relative to the same side's DNS(5, 200) epoch, and baseline / current per M.

Usage::

    python benchmarks/bench_dns_selection.py [--pools 20000] [--rounds 5]
        [--baseline-src DIR] [--epoch-rounds 3] [--data ml-1m] [--json out.json]
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from numba import njit

from training import sampling as S

POOL = 200
SELECTION_CASES = ((200, 5), (200, 20), (200, 25), (200, 50), (200, 100), (200, 128),
                   (200, 200), (1000, 100), (1000, 128), (1000, 400))  # (N, M)
EPOCH_MS = (5, 20, 50, 100)


# cache=False: numba keys a cached function on its own file only, so a cached copy of these
# would keep timing the top_m_indices it inlined before that was edited.
@njit(cache=False)
def _argsort_top_m(scores, m, sel, vals):
    """The baseline: the stable argsort ``top_m_indices`` used for M > 24 before."""
    order = np.argsort(-scores, kind="mergesort")
    for t in range(min(m, scores.shape[0])):
        sel[t] = order[t]


@njit(cache=False)
def _select_all(pools, m, sel, vals, baseline):
    """Select the top m of every pool; returns a checksum so the work is not dropped."""
    check = 0
    for p in range(pools.shape[0]):
        if baseline:
            _argsort_top_m(pools[p], m, sel, vals)
        else:
            S.top_m_indices(pools[p], m, sel, vals)
        check += sel[0] + sel[m - 1]
    return check


def selection(n_pools: int, rounds: int) -> dict:
    """Time ``top_m_indices`` against the argsort baseline on each (N, M) of SELECTION_CASES."""
    rng = np.random.default_rng(0)
    sizes = sorted({n for n, _ in SELECTION_CASES})
    all_pools = {n: rng.normal(size=(n_pools, n)) for n in sizes}
    sel, vals = np.empty(max(all_pools), np.int64), np.empty(max(all_pools))
    out = {"us_per_pool": {}, "ratio_baseline_over_current": {}}
    start = time.perf_counter()  # one kernel holds both sides: compiled once, timed apart
    _select_all(all_pools[POOL][:1], 5, sel, vals, False)
    out["compile_seconds"] = time.perf_counter() - start
    _select_all(all_pools[POOL][:1], 5, sel, vals, True)  # the baseline's first call, apart
    for n, m in SELECTION_CASES:
        pools = all_pools[n]
        a, b = np.empty(n, np.int64), np.empty(n, np.int64)
        for p in range(50):  # equal output before timing
            S.top_m_indices(pools[p], m, a, vals)
            _argsort_top_m(pools[p], m, b, vals)
            if not np.array_equal(a[:m], b[:m]):
                raise AssertionError(f"top_m_indices differs from the baseline at {n=}, {m=}")
        times = {"current": [], "baseline": []}
        for r in range(rounds):
            sides = ("current", "baseline") if r % 2 == 0 else ("baseline", "current")
            for side in sides:
                start = time.perf_counter()
                _select_all(pools, m, sel, vals, side == "baseline")
                times[side].append(time.perf_counter() - start)
        key = f"N={n},M={m}"
        out["us_per_pool"][key] = {k: 1e6 * float(np.median(v)) / n_pools
                                   for k, v in times.items()}
        out["ratio_baseline_over_current"][key] = float(
            np.median(np.array(times["baseline"]) / np.array(times["current"])))
    return out


def epoch_worker(data: str) -> dict:
    """One MF epoch of DNS(M, 200) per M with the source tree on ``sys.path``."""
    from training import trainer as T
    from training.datasets import load_dataset

    train = load_dataset(data, 0).train
    seconds, compile_seconds = {}, {}
    for m in EPOCH_MS:
        trainer = T.Trainer(train, S.dns(m, POOL), dim=32, batch_size=4096, lr=1e-3,
                            weight_decay=1e-3, seed=0, threads=1)
        order, states, per = trainer.epoch_plan(0)
        start = time.perf_counter()  # the first batch compiles (or loads the cache)
        trainer.train_batch(trainer.pair_users[order[:4096]], trainer.pair_items[order[:4096]],
                            states[:per], 1e-3)
        compile_seconds[m] = time.perf_counter() - start
        seconds[m] = trainer.run_epoch()["seconds"]
    return {"seconds": seconds, "compile_seconds": compile_seconds}


def _run_epoch_side(src: Path, data: str) -> dict:
    """:func:`epoch_worker` in a new process importing the source tree ``src``."""
    env = dict(os.environ, PYTHONPATH=str(src), NUMBA_NUM_THREADS="1")
    cmd = [sys.executable, str(Path(__file__).resolve()), "--epoch-worker", "--data", data]
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=src)
    if done.returncode != 0:
        raise RuntimeError(f"epoch worker in {src} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def epochs(baseline_src: Path, data: str, rounds: int) -> dict:
    """DNS(M, 200) epochs of this tree and of ``baseline_src``, alternating, ``rounds`` each."""
    current_src = Path(__file__).resolve().parents[1]
    runs = {"current": [], "baseline": []}
    for r in range(rounds):
        sides = ("current", "baseline") if r % 2 == 0 else ("baseline", "current")
        for side in sides:
            runs[side].append(_run_epoch_side(current_src if side == "current" else baseline_src,
                                              data))
    out = {"seconds_per_epoch": {}, "relative_to_dns5": {}, "ratio_baseline_over_current": {}}
    for side, side_runs in runs.items():
        secs = {m: np.array([run["seconds"][str(m)] for run in side_runs]) for m in EPOCH_MS}
        out["seconds_per_epoch"][side] = {m: float(np.median(s)) for m, s in secs.items()}
        out["relative_to_dns5"][side] = {m: float(np.median(s / secs[5]))
                                         for m, s in secs.items()}
    for m in EPOCH_MS:
        ratio = [b["seconds"][str(m)] / c["seconds"][str(m)]
                 for b, c in zip(runs["baseline"], runs["current"])]
        out["ratio_baseline_over_current"][m] = float(np.median(ratio))
    out["compile_seconds"] = {side: side_runs[0]["compile_seconds"]
                              for side, side_runs in runs.items()}
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pools", type=int, default=20000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--baseline-src", type=Path, default=None,
                        help="checkout of the revision before this change (epochs are timed "
                             "only with it)")
    parser.add_argument("--epoch-rounds", type=int, default=3)
    parser.add_argument("--data", default="ml-1m")
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--epoch-worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.epoch_worker:
        print(json.dumps(epoch_worker(args.data)))
        return 0
    if args.baseline_src is not None:
        if not (args.baseline_src / "training").is_dir():
            parser.error(f"--baseline-src {args.baseline_src} is not an hnslab checkout")
        from training.datasets import DatasetError, resolve

        try:  # a path, so that the baseline's tree need not find the data folder itself
            data_path = str(resolve(args.data))
        except DatasetError as exc:
            parser.error(str(exc))
    import numba

    numba.set_num_threads(1)
    result = {"selection": selection(args.pools, args.rounds)}
    sel = result["selection"]
    print(f"selection, {args.pools} pools, one thread, medians of {args.rounds} rounds "
          f"(compile of both sides' kernel: {sel['compile_seconds']:.2f} s)")
    print("     N     M   current us/pool   argsort us/pool   argsort / current")
    for n, m in SELECTION_CASES:
        key = f"N={n},M={m}"
        t = sel["us_per_pool"][key]
        print(f"{n:6d}{m:6d}   {t['current']:15.2f}   {t['baseline']:15.2f}   "
              f"{sel['ratio_baseline_over_current'][key]:17.2f}")
    if args.baseline_src is not None:
        result["epochs"] = ep = epochs(args.baseline_src, data_path, args.epoch_rounds)
        print(f"\nMF epochs of DNS(M, {POOL}) on {args.data}, one thread, medians of "
              f"{args.epoch_rounds} rounds (first-batch compile/cache load apart)")
        print("  M   current s   baseline s   current / DNS(5)   baseline / DNS(5)   "
              "baseline / current")
        for m in EPOCH_MS:
            print(f"{m:4d}   {ep['seconds_per_epoch']['current'][m]:9.2f}   "
                  f"{ep['seconds_per_epoch']['baseline'][m]:10.2f}   "
                  f"{ep['relative_to_dns5']['current'][m]:16.2f}   "
                  f"{ep['relative_to_dns5']['baseline'][m]:17.2f}   "
                  f"{ep['ratio_baseline_over_current'][m]:18.2f}")
    if args.json is not None:
        from simulations.files import atomic_write_text

        atomic_write_text(args.json, json.dumps(result, indent=2, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
