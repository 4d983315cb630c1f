"""Benchmark: per-chunk xoshiro256++ states, the package's seeding scheme, three ways.

Chunk ``i`` of branch ``b`` is seeded by the SeedSequence child at spawn key
``root.spawn_key + b + (0, i)`` (:mod:`simulations.rng`).  For 64 chunks (one training batch)
and 1024 chunks, side by side in one process:

- numpy per chunk (the baseline): one ``SeedSequence`` per chunk, ``generate_state(4, uint64)``;
- vectorised: :func:`simulations.rng.chunk_states` (numpy's hashing in one numba kernel, the
  shared part mixed once), bit-identical to the baseline (checked before timing);
- cut stream (the old training scheme, other numbers): one child's
  ``generate_state(4 * n, uint64)`` cut into 4-word states.

Times are medians over repeats of the per-call time of an inner loop, the methods taking turns
within each round.  The numba compile (empty cache) and the cache load (warm cache) of the
first call are measured apart, in fresh processes.  The machine may be busy (the load average
is printed): compare the ratios, which are measured side by side.

Usage: ``python benchmarks/bench_seeding.py [--repeats 9]``.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time

import numpy as np

from simulations.rng import branch_seed_sequence, chunk_states

ROOT = np.random.SeedSequence(2024)  # training passes its root SeedSequence
BRANCH = (1, 3)  # e.g. (pools branch, epoch)


def numpy_per_chunk(n):
    key = tuple(ROOT.spawn_key) + BRANCH + (0,)
    out = np.empty((n, 4), np.uint64)
    for i in range(n):
        out[i] = np.random.SeedSequence(ROOT.entropy, spawn_key=key + (i,),
                                        pool_size=ROOT.pool_size).generate_state(4, np.uint64)
    return out


def vectorised(n):
    return chunk_states(ROOT, n, branch=BRANCH)


def vectorised_int_seed(n):
    return chunk_states(2024, n, branch=BRANCH)


def cut_stream(n):
    ss = branch_seed_sequence(ROOT, *BRANCH)
    return ss.generate_state(4 * n, np.uint64).reshape(n, 4)


METHODS = {"numpy per chunk": numpy_per_chunk, "vectorised (SeedSequence root)": vectorised,
           "vectorised (int seed)": vectorised_int_seed, "cut stream (old training)": cut_stream}


def per_call_seconds(fn, n, budget=0.02):
    """Median-ready sample: the mean time of a loop of calls lasting about ``budget`` seconds."""
    start = time.perf_counter()
    fn(n)
    once = max(time.perf_counter() - start, 1e-7)
    number = max(1, int(budget / once))
    start = time.perf_counter()
    for _ in range(number):
        fn(n)
    return (time.perf_counter() - start) / number


def first_call_seconds(cache_dir):
    """First chunk_states call in a fresh process minus a second call, with ``cache_dir``."""
    code = ("import time, numpy as np\n"
            "from simulations.rng import chunk_states\n"
            "t = time.perf_counter(); chunk_states(1, 64); a = time.perf_counter() - t\n"
            "t = time.perf_counter(); chunk_states(1, 64); b = time.perf_counter() - t\n"
            "print(a - b)\n")
    env = dict(os.environ, NUMBA_CACHE_DIR=cache_dir)
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                         check=True)
    return float(out.stdout.strip())


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=9)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as cache:
        cold = first_call_seconds(cache)  # compiles and writes the cache
        warm = first_call_seconds(cache)  # loads it
    print(f"load average (1, 5, 15 min): {os.getloadavg()}; {os.cpu_count()} cores")
    print(f"numba first call, apart: compile {cold:.2f} s (empty cache), cache load {warm * 1e3:.0f} ms")

    for n in (64, 1024):
        ref = numpy_per_chunk(n)
        for name in ("vectorised (SeedSequence root)", "vectorised (int seed)"):
            root = ROOT if "root" in name else np.random.SeedSequence(2024)
            expected = ref if root is ROOT else np.array(
                [np.random.SeedSequence(2024, spawn_key=(*BRANCH, 0, i)).generate_state(4, np.uint64)
                 for i in range(n)])
            assert np.array_equal(METHODS[name](n), expected), name  # bit-identical before timing
        times = np.empty((args.repeats, len(METHODS)))
        for r in range(args.repeats):
            for j, fn in enumerate(METHODS.values()):
                times[r, j] = per_call_seconds(fn, n)
        med = np.median(times, axis=0)
        base = med[0]
        print(f"\n{n} chunks: median per call over {args.repeats} repeats")
        print(f"  {'method':34s} {'time':>10s} {'per chunk':>10s} {'speed-up vs numpy':>18s}")
        for name, t in zip(METHODS, med):
            print(f"  {name:34s} {t * 1e6:8.1f} us {t / n * 1e9:7.0f} ns {base / t:17.1f}x")


if __name__ == "__main__":
    main()
