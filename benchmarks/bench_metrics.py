"""Benchmark: batched OPAUC curve + Top-K metrics against numpy, scikit-learn and np.sort.

Workload (issue "Foundation"): 10,000 rankings x 1,000 items (100 positives each), OPAUC over
64 betas plus Precision, Recall and NDCG at K in {5, 10, 20, 50}.  Side by side in one run:

- hnslab: ``theory.metrics.ranking_metrics`` plus normalisation;
- numpy: a plain vectorised version (argsort along rows, cumsum, take);
- scikit-learn: a loop of ``roc_auc_score(max_fpr=beta)`` (timed on a subset of rankings and
  reported per ranking, since the full loop takes minutes);
- np.sort of the same score matrix (the floor: ranking needs a sort).

Times are medians over repeats, the methods taking turns within each round; the numba JIT
compile time is measured apart, in a fresh process with an empty cache.
Usage: ``python benchmarks/bench_metrics.py [--repeats 7]``.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from theory.metrics import discount_table, normalize_opauc, ranking_metrics

N_LISTS, N_ITEMS, N_POS = 10_000, 1_000, 100
BETAS = np.geomspace(1e-3, 1.0, 64)
KS = np.array([5, 10, 20, 50])


def make_data(seed=0):
    rng = np.random.default_rng(seed)
    scores = rng.random((N_LISTS, N_ITEMS))
    labels = np.zeros((N_LISTS, N_ITEMS), dtype=bool)
    pos = np.argsort(rng.random((N_LISTS, N_ITEMS)), axis=1)[:, :N_POS]
    np.put_along_axis(labels, pos, True, axis=1)
    return labels, scores


def run_hnslab(labels, scores):
    rm = ranking_metrics(labels, scores, betas=BETAS, ks=KS)
    pairs = (rm.n_pos * rm.n_neg)[:, None]
    opauc = normalize_opauc(rm.area[:, 0, :] / pairs, BETAS[None, :], "beta")
    precision = rm.hits / KS
    recall = rm.hits / rm.n_pos[:, None]
    ideal = discount_table(int(KS.max()))[np.minimum(rm.n_pos[:, None], KS)]
    ndcg = rm.dcg / ideal
    return opauc, precision, recall, ndcg


def run_numpy(labels, scores):
    """Plain vectorised numpy: untied scores, the same number of positives in every row."""
    n_rows, n_items = labels.shape
    order = np.argsort(-scores, axis=1)
    ranked = np.take_along_axis(labels, order, axis=1)
    n_pos = ranked.sum(axis=1)
    n_neg = n_items - n_pos
    hits_cum = np.cumsum(ranked, axis=1)
    # Positives ranked above each negative, in rank order (every row has n_neg negatives).
    above = hits_cum[~ranked].reshape(n_rows, -1).astype(np.float64)
    area_int = np.concatenate([np.zeros((n_rows, 1)), np.cumsum(above, axis=1)], axis=1)
    cut = BETAS[None, :] * n_neg[:, None]
    whole = np.floor(cut).astype(np.int64)
    frac = cut - whole
    nxt = np.take_along_axis(np.concatenate([above, above[:, -1:]], axis=1), whole, axis=1)
    area = np.take_along_axis(area_int, whole, axis=1) + frac * nxt
    opauc = area / (n_pos * n_neg)[:, None] / BETAS[None, :]
    hits = hits_cum[:, KS - 1].astype(np.float64)
    discounts = 1.0 / np.log2(np.arange(2, n_items + 2))
    dcg = np.cumsum(ranked * discounts, axis=1)[:, KS - 1]
    ideal = np.cumsum(discounts)[np.minimum(n_pos[:, None], KS) - 1]
    return opauc, hits / KS, hits / n_pos[:, None], dcg / ideal


def run_sklearn(labels, scores, n_rows):
    from sklearn.metrics import roc_auc_score

    out = np.empty((n_rows, BETAS.size))
    for r in range(n_rows):
        for b, beta in enumerate(BETAS):
            out[r, b] = roc_auc_score(labels[r], scores[r], max_fpr=beta)
    return out


def median_time(fn, repeats):
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def interleaved_times(fns, repeats):
    """Per-round times of each function, the functions taking turns within every round (in
    a rotating order), so that drifting load on a shared machine hits all of them alike.
    Returns an array (repeats, len(fns))."""
    times = np.empty((repeats, len(fns)))
    for r in range(repeats):
        for step in range(len(fns)):
            i = (r + step) % len(fns)
            start = time.perf_counter()
            fns[i]()
            times[r, i] = time.perf_counter() - start
    return times


def cold_compile_seconds():
    """First call in a fresh process with an empty numba cache, minus a warm call."""
    code = (
        "import time, numpy as np\n"
        "from theory.metrics import ranking_metrics\n"
        "y = np.zeros((4, 10), bool); y[:, :3] = True; s = np.random.default_rng(0).random((4, 10))\n"
        "t = time.perf_counter(); ranking_metrics(y, s, betas=[0.1, 1.0], ks=[5]); a = time.perf_counter() - t\n"
        "t = time.perf_counter(); ranking_metrics(y, s, betas=[0.1, 1.0], ks=[5]); b = time.perf_counter() - t\n"
        "print(a - b)\n"
    )
    with tempfile.TemporaryDirectory() as cache:
        env = dict(os.environ, NUMBA_CACHE_DIR=cache)
        out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                             cwd=Path(__file__).resolve().parents[1], check=True)
    return float(out.stdout.strip())


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--sklearn-rows", type=int, default=20)
    args = parser.parse_args()

    labels, scores = make_data()
    # Same answers before timing anything.
    ours, ref = run_hnslab(labels[:500], scores[:500]), run_numpy(labels[:500], scores[:500])
    for a, b in zip(ours, ref):
        assert np.allclose(a, b, atol=1e-12), "hnslab and numpy disagree"
    skl = run_sklearn(labels, scores, 3)
    mcclish = normalize_opauc(ours[0][:3] * BETAS, BETAS, "mcclish")
    assert np.allclose(skl, mcclish, atol=1e-12), "hnslab and scikit-learn disagree"

    compile_s = cold_compile_seconds()
    run_hnslab(labels, scores)  # warm: caches, allocator
    times = interleaved_times([lambda: run_hnslab(labels, scores), lambda: run_numpy(labels, scores),
                               lambda: np.sort(scores, axis=1)], args.repeats)
    t_ours, t_numpy, t_sort = np.median(times, axis=0)
    round_ratio = np.median(times[:, 1] / times[:, 0])
    t_skl_rows = median_time(lambda: run_sklearn(labels, scores, args.sklearn_rows), 3)
    t_skl = t_skl_rows / args.sklearn_rows * N_LISTS

    print(f"workload: {N_LISTS:,} rankings x {N_ITEMS:,} items ({N_POS} positives), "
          f"{BETAS.size} betas, K in {KS.tolist()}; medians of {args.repeats} repeats")
    print(f"numba cold compile (apart): {compile_s:.1f} s")
    print(f"{'method':<34}{'median s':>10}{'vs hnslab':>12}")
    rows = [("hnslab ranking_metrics", t_ours),
            ("numpy vectorised (argsort+cumsum)", t_numpy),
            (f"sklearn loop (x{N_LISTS // args.sklearn_rows} of {args.sklearn_rows} rows)", t_skl),
            ("np.sort of the score matrix", t_sort)]
    for name, t in rows:
        print(f"{name:<34}{t:>10.3f}{t / t_ours:>11.1f}x")
    print(f"hnslab / np.sort = {t_ours / t_sort:.2f} (goal <= 2); numpy / hnslab = {t_numpy / t_ours:.1f} "
          f"(goal >= 10); sklearn / hnslab = {t_skl / t_ours:,.0f} (goal >= 1000)")
    print(f"numpy / hnslab within each round: median {round_ratio:.1f}, range "
          f"{np.min(times[:, 1] / times[:, 0]):.1f}-{np.max(times[:, 1] / times[:, 0]):.1f}")


if __name__ == "__main__":
    main()
