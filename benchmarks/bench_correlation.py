"""Benchmark: the Fig. 6 correlation study against plain numpy, and against its own RNG.

Workload (issue "OPAUC tracks Top-K", full paper scale): 100,000 uniformly random rankings of
N+ = 200 positives among N- = 800 negatives, 41 log-spaced betas (1/800 .. 1), K in
{5, 10, 20, 50, 100}, Precision, Recall and NDCG, Pearson.  Side by side in one run
(interleaved repeats, medians):

- hnslab: ``simulations.correlation.topk_correlations`` (numba, fixed chunks, streamed);
- numpy: a plain vectorised version of the same study, in batches of 1,000 rankings (the
  fastest batch size here: 500-1,000 beat 5,000 by 25% through the cache):
  shuffle each row of a label matrix (``Generator.permuted``), cumsum, take, then
  ``np.corrcoef``;
- the random draws alone, with the same generator, chunks and threads as the study:
  (a) the bounded integers only (200 Lemire draws per ranking, two per 64-bit output),
  (b) the random rankings (Floyd's sampling and the sorted positions, :func:`draw_positions`).

Also: the numba compile time, apart (a fresh process with an empty cache), and the peak
memory (``ru_maxrss`` of a fresh process) at 1,000,000 rankings for Pearson (streamed) and
Spearman (values stored).  Before timing, the numpy version is checked to give the same
per-ranking values as hnslab on the same rankings.

Usage: ``python benchmarks/bench_correlation.py [--repeats 7] [--no-memory]``.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from numba import njit, prange

ROOT = Path(__file__).resolve().parents[1]

from simulations.correlation import default_betas, ranking_sample, topk_correlations  # noqa: E402
from simulations.rankings import draw_positions, uniform_positions  # noqa: E402
from simulations.rng import CHUNK_SIZE, chunk_states, n_chunks, random_bounded_pair  # noqa: E402

N_RANKINGS, N_POS, N_NEG = 100_000, 200, 800
BETAS = default_betas(N_NEG, 41)
KS = np.array([5, 10, 20, 50, 100])
METRICS = ("precision", "recall", "ndcg")


# --------------------------------------------------------------------------------------
# hnslab
# --------------------------------------------------------------------------------------
def run_hnslab(n_rankings=N_RANKINGS, seed=0):
    return topk_correlations(N_POS, N_NEG, n_rankings, KS, BETAS, metrics=METRICS, seed=seed)


# --------------------------------------------------------------------------------------
# Plain numpy version of the same study
# --------------------------------------------------------------------------------------
def numpy_values(labels):
    """OPAUC(beta) / beta and Precision, Recall, NDCG at KS from a ranked label matrix."""
    n_rows, n_items = labels.shape
    n_pos = N_POS
    n_neg = n_items - n_pos
    cum = np.cumsum(labels, axis=1)  # positives at or above each rank
    above = cum[~labels].reshape(n_rows, n_neg).astype(np.float64)  # positives above each negative
    area_int = np.zeros((n_rows, n_neg + 1))
    np.cumsum(above, axis=1, out=area_int[:, 1:])
    cut = BETAS * n_neg
    whole = np.floor(cut).astype(np.int64)
    frac = cut - whole
    nxt = np.concatenate([above, above[:, -1:]], axis=1)[:, whole]
    opauc = (area_int[:, whole] + frac * nxt) / (n_pos * n_neg * BETAS)
    hits = cum[:, KS - 1].astype(np.float64)
    discounts = 1.0 / np.log2(np.arange(2, KS.max() + 2))
    dcg = np.cumsum(labels[:, : KS.max()] * discounts, axis=1)[:, KS - 1]
    ideal = np.cumsum(discounts)[np.minimum(n_pos, KS) - 1]
    topk = np.concatenate([hits / KS, hits / n_pos, dcg / ideal], axis=1)
    return opauc, topk


def run_numpy(n_rankings=N_RANKINGS, seed=0, batch=1_000):
    rng = np.random.default_rng(seed)
    base = np.zeros((batch, N_POS + N_NEG), dtype=bool)
    base[:, :N_POS] = True
    xs, ys = [], []
    for start in range(0, n_rankings, batch):
        rows = min(batch, n_rankings - start)
        labels = rng.permuted(base[:rows], axis=1)
        x, y = numpy_values(labels)
        xs.append(x)
        ys.append(y)
    x = np.concatenate(xs)
    y = np.concatenate(ys)
    return np.corrcoef(x, y, rowvar=False)[: x.shape[1], x.shape[1]:]


# --------------------------------------------------------------------------------------
# The random draws alone (same generator, chunks and threads as the study)
# --------------------------------------------------------------------------------------
@njit(parallel=True)
def _draws_only(states, n_rows_last, n_pos, n_items):
    sums = np.zeros(states.shape[0], np.int64)
    for chunk in prange(states.shape[0]):
        state = states[chunk].copy()
        rows = n_rows_last if chunk == states.shape[0] - 1 else 1024
        s = 0
        for _ in range(rows):
            for j in range(n_items - n_pos, n_items - 1, 2):  # as draw_positions: pairs
                a, b = random_bounded_pair(state, j + 1, j + 2)
                s += a + b
        sums[chunk] = s
    return sums


@njit(parallel=True)
def _rankings_only(states, n_rows_last, n_pos, n_items):
    sums = np.zeros(states.shape[0], np.int64)
    for chunk in prange(states.shape[0]):
        state = states[chunk].copy()
        scratch = np.zeros(8 * ((n_items + 63) >> 6), np.uint64)
        positions = np.empty(n_pos, np.int64)
        rows = n_rows_last if chunk == states.shape[0] - 1 else 1024
        s = 0
        for _ in range(rows):
            draw_positions(state, n_pos, n_items, scratch, positions)
            s += positions[n_pos // 2]
        sums[chunk] = s
    return sums


def rng_runner(kernel, n_rankings=N_RANKINGS, seed=0):
    assert CHUNK_SIZE == 1024

    def run():
        n_ch = n_chunks(n_rankings)
        states = chunk_states(seed, n_ch)  # the study pays for its seeding too
        kernel(states, n_rankings - (n_ch - 1) * CHUNK_SIZE, N_POS, N_POS + N_NEG)

    return run


# --------------------------------------------------------------------------------------
# Measurements
# --------------------------------------------------------------------------------------
def check_same_values(n=300, seed=3):
    """numpy and hnslab agree on identical rankings (the draws of uniform_positions)."""
    pos = uniform_positions(N_POS, N_NEG, n, seed=seed)
    labels = np.zeros((n, N_POS + N_NEG), dtype=bool)
    np.put_along_axis(labels, pos, True, axis=1)
    x, y = numpy_values(labels)
    sample = ranking_sample(N_POS, N_NEG, n, KS, BETAS, metrics=METRICS, seed=seed)
    ours_y = np.concatenate([sample.topk[m] for m in METRICS], axis=1)
    assert np.allclose(x, sample.partial["opauc"], atol=1e-12), "OPAUC values disagree"
    assert np.allclose(y, ours_y, atol=1e-12), "Top-K values disagree"


def cold_compile_seconds():
    code = (
        "import time\n"
        "t = time.perf_counter()\n"
        "from simulations.correlation import topk_correlations\n"
        "imp = time.perf_counter() - t\n"
        "t = time.perf_counter(); topk_correlations(20, 80, 2000, [5, 10], [0.1, 1.0]); "
        "a = time.perf_counter() - t\n"
        "t = time.perf_counter(); topk_correlations(20, 80, 2000, [5, 10], [0.1, 1.0]); "
        "b = time.perf_counter() - t\n"
        "t = time.perf_counter(); topk_correlations(20, 80, 2000, [5, 10], [0.1, 1.0], "
        "model='binormal'); c = time.perf_counter() - t\n"
        "t = time.perf_counter(); topk_correlations(20, 80, 2000, [5, 10], [0.1, 1.0], "
        "model='binormal'); d = time.perf_counter() - t\n"
        "print(imp, a - b, c - d)\n"
    )
    with tempfile.TemporaryDirectory() as cache:
        env = dict(os.environ, NUMBA_CACHE_DIR=cache)
        out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                             cwd=ROOT, check=True)
    return [float(v) for v in out.stdout.split()]


def peak_memory_mb(n_rankings, method):
    """Peak resident memory (MB) of a fresh process: after imports, and after the study.

    Read from VmHWM in /proc/self/status (the high-water mark of this process image;
    ``ru_maxrss`` would carry over the parent's peak across fork + exec)."""
    code = (
        "import sys, json\n"
        "def hwm():\n"
        "    for line in open('/proc/self/status'):\n"
        "        if line.startswith('VmHWM:'):\n"
        "            return int(line.split()[1]) / 1024\n"
        "from simulations.correlation import topk_correlations, default_betas\n"
        "topk_correlations(200, 800, 2000, [5, 10, 20, 50, 100], default_betas(800, 41), "
        "method=sys.argv[1])\n"
        "base = hwm()\n"
        "topk_correlations(200, 800, int(sys.argv[2]), [5, 10, 20, 50, 100], "
        "default_betas(800, 41), method=sys.argv[1])\n"
        "print(json.dumps([base, hwm()]))\n"
    )
    out = subprocess.run([sys.executable, "-c", code, method, str(n_rankings)], capture_output=True,
                         text=True, cwd=ROOT, check=True)
    return json.loads(out.stdout)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--numpy-repeats", type=int, default=3)
    parser.add_argument("--no-memory", action="store_true")
    args = parser.parse_args()

    check_same_values()
    compile_import, compile_uniform, compile_scores = cold_compile_seconds()
    # Warm every kernel, then check that the two studies agree statistically.
    ours = run_hnslab(2_000)
    draws, rankings = rng_runner(_draws_only), rng_runner(_rankings_only)
    draws()
    rankings()
    ours = run_hnslab()
    ref = run_numpy(20_000, seed=1)
    ours_matrix = ours["r"].to_numpy().reshape(len(METRICS), len(KS), len(BETAS))
    ref_matrix = ref.T.reshape(len(METRICS), len(KS), len(BETAS))
    assert np.max(np.abs(ours_matrix - ref_matrix)) < 0.04, "studies disagree beyond noise"

    times = {"hnslab": [], "numpy": [], "draws": [], "rankings": []}
    cpu = {k: [] for k in times}
    for rep in range(args.repeats):
        for name, fn in (("hnslab", run_hnslab), ("draws", draws), ("rankings", rankings),
                         ("numpy", run_numpy)):
            if name == "numpy" and rep >= args.numpy_repeats:
                continue
            start, start_cpu = time.perf_counter(), time.process_time()
            fn()
            times[name].append(time.perf_counter() - start)
            cpu[name].append(time.process_time() - start_cpu)
    med = {k: float(np.median(v)) for k, v in times.items()}
    med_cpu = {k: float(np.median(v)) for k, v in cpu.items()}

    print(f"workload: {N_RANKINGS:,} uniform rankings, N+ = {N_POS}, N- = {N_NEG}, "
          f"{BETAS.size} betas, K in {KS.tolist()}, {len(METRICS)} metrics, Pearson")
    print(f"threads: {os.environ.get('NUMBA_NUM_THREADS', 'default')} (cpu_count {os.cpu_count()}); "
          f"load average {os.getloadavg()[0]:.2f}; medians of {args.repeats} repeats "
          f"({args.numpy_repeats} for numpy)")
    print(f"numba cold compile (fresh cache): uniform path {compile_uniform:.1f} s, "
          f"score path {compile_scores:.1f} s (import {compile_import:.1f} s)")
    print(f"{'':<44}{'wall s':>9}{'ratio':>8}{'CPU s':>9}{'ratio':>8}   (CPU: all threads)")
    for name, label in (("hnslab", "hnslab topk_correlations"),
                        ("numpy", "numpy (permuted + cumsum + take + corrcoef)"),
                        ("draws", "RNG: bounded draws only"),
                        ("rankings", "RNG: random rankings (Floyd + positions)")):
        print(f"{label:<44}{med[name]:>9.3f}{med[name] / med['hnslab']:>7.2f}x"
              f"{med_cpu[name]:>9.3f}{med_cpu[name] / med_cpu['hnslab']:>7.2f}x")
    print(f"numpy / hnslab = {med['numpy'] / med['hnslab']:.1f} (goal >= 20); hnslab = "
          f"{med['hnslab']:.3f} s (goal < 0.5); hnslab / draws = {med['hnslab'] / med['draws']:.1f}, "
          f"hnslab / random rankings = {med['hnslab'] / med['rankings']:.1f} (goal <= 3)")
    if not args.no_memory:
        for method in ("pearson", "spearman"):
            base, peak = peak_memory_mb(1_000_000, method)
            print(f"peak RSS at 1,000,000 rankings, {method}: {peak:.0f} MB "
                  f"(process after imports: {base:.0f} MB)")


if __name__ == "__main__":
    main()
