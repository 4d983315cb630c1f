"""Monte Carlo study: how well OPAUC(beta) tracks Top-K metrics (paper section 5, Fig. 6).

For each of ``n_rankings`` random rankings of N+ positives and N- negatives, compute

* the partial AUCs over a beta grid: OPAUC(beta) normalised by beta (beta = 1 is AUC),
  optionally LLPAUC(alpha, beta) / (alpha beta) and TPAUC(alpha, beta) / ((1 - alpha) beta);
* Precision@K, Recall@K (denominator N+), NDCG@K (and optionally hit rate) at each K;

then correlate every partial-AUC column with every Top-K column across rankings: Pearson
(streamed), Spearman or Kendall tau-b, with percentile bootstrap intervals on request.

Every metric value comes from the row kernels of :mod:`theory.metrics` (one source of truth):
``blocks_from_positions`` (uniform model) or ``blocks_from_row`` (score models), then
``area_curve_row`` (one pass per TPR level, all betas at once) and ``topk_row``.

Streaming and reproducibility
-----------------------------
Rankings are cut into fixed chunks of :data:`simulations.rng.CHUNK_SIZE` (1024); chunk i
draws from its own child seed (:mod:`simulations.rng`).  Each chunk keeps its values in a
private scratch (1024 x columns float64), reduces them to a mean vector and centred
co-moment sums (two passes inside the chunk), and the chunks are merged in chunk order with
Chan, Golub & LeVeque's pairwise formulas.  Chunks are processed in waves of
:data:`WAVE_CHUNKS`, so memory is bounded whatever ``n_rankings`` for Pearson without a
bootstrap (a few MB); the numbers depend only on (seed, chunk), never on the thread count.

Rank correlations and the bootstrap need every ranking's values: they are stored as
float64, transposed (one contiguous row per column), i.e. ``8 * n_rankings * (n_partial_columns
+ n_topk_columns)`` bytes: 1,000,000 rankings x (41 betas + 15 Top-K columns) is 450 MB.
Spearman ranks the stored values in place; its bootstrap then keeps dense tie-group ids
(int32) and rebuilds float64 ranks for each resample (all Top-K columns, one partial-AUC
column at a time).  Measured peaks of the whole process at that size: 0.23 GB for Pearson
(streamed), 0.8 GB for Spearman, 0.9 GB for Spearman with a bootstrap.  float64 rather
than float32 because rank statistics only see order and ties, and float32 rounding
(relative 6e-8) could merge distinct OPAUC values (the AUC of N+ N- > 1.6e7 pairs has a
finer step than that), silently changing the ties.

Costs: Pearson is the fast path (``benchmarks/bench_correlation.py``).  Spearman costs one
sort per column.  Kendall calls ``scipy.stats.kendalltau`` (O(n log n), tau-b) once per
(partial column, Top-K column) pair, about 0.4 s per pair at 1,000,000 rankings; its
bootstrap repeats that for every replicate (use it at moderate sizes).
"""
from __future__ import annotations

import contextlib
import dataclasses
import functools
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numba
import numpy as np
import pandas as pd
import scipy.stats
from numba import njit, prange

from simulations.rankings import Uniform, check_draw, check_sizes, draw_positions, get_model
from simulations.rng import CHUNK_SIZE, as_seed_sequence, branch_seed_sequence, chunk_generators, chunk_states, n_chunks
from theory.metrics import (
    RANK_SOURCES,
    SENTINELS,
    TOPK_METRICS,
    TOPK_SOURCES,
    area_curve_row,
    blocks_from_positions,
    blocks_from_row,
    discount_table,
    topk_denominator,
    topk_rank_row,
    topk_row,
    untied_row,
)
from theory.validation import check_array, check_betas, check_choice, check_grid, check_int, check_ks, check_real

__all__ = [
    "METHODS",
    "METRICS",
    "PARTIALS",
    "WAVE_CHUNKS",
    "RankingSample",
    "default_betas",
    "peak_betas",
    "ranking_sample",
    "separation_sweep",
    "topk_correlations",
]

#: Top-K metrics of the study: every row of theory.metrics.TOPK_METRICS (the one table).
METRICS = tuple(TOPK_METRICS)
METHODS = ("pearson", "spearman", "kendall")
PARTIALS = ("opauc", "llpauc", "tpauc")

#: Chunks per wave (the unit of parallel work between two merges / progress updates).
WAVE_CHUNKS = 64

# Rows of a ranking's ``topk`` scratch, in the order of theory.metrics.TOPK_SOURCES:
# topk_row fills rows 0-2 (hits, DCG, P(hit)), topk_rank_row rows 3-4 (RR, AP sum).
_N_SOURCES = len(TOPK_SOURCES)


# ======================================================================================
# Numba kernels
# ======================================================================================
@njit(cache=True, nogil=True)
def _fill_values(area, topk, x_plus, x_minus, x_beta, x_scale, y_src, y_k, y_scale, x_out, y_out):
    """The requested x (partial AUC) and y (Top-K) values of one ranking from its raw areas."""
    for c in range(x_out.shape[0]):
        v = area[x_plus[c], x_beta[c]]
        if x_minus[c] >= 0:
            v -= area[x_minus[c], x_beta[c]]
        x_out[c] = v * x_scale[c]
    for c in range(y_out.shape[0]):
        y_out[c] = topk[y_src[c], y_k[c]] * y_scale[c]


@njit(cache=True, nogil=True)
def _row_values(block_pos, block_neg, nb, n_neg, betas, levels, ks, discounts, rank, area, topk,
                x_plus, x_minus, x_beta, x_scale, y_src, y_k, y_scale, x_out, y_out):
    """Every requested value of one ranking from its blocks (theory.metrics kernels);
    ``rank``: also the reciprocal rank and AP sum (topk_rank_row)."""
    for lv in range(levels.shape[0]):
        area_curve_row(block_pos, block_neg, nb, n_neg, betas, levels[lv], area[lv])
    # Only the blocks that cover the top max(ks) ranks matter to the Top-K quantities.
    k_max = ks[ks.shape[0] - 1]
    covered = 0
    nbk = 0
    while nbk < nb and covered < k_max:
        covered += block_pos[nbk] + block_neg[nbk]
        nbk += 1
    topk_row(block_pos, block_neg, nbk, ks, discounts, topk[0], topk[1], topk[2])
    if rank:
        topk_rank_row(block_pos, block_neg, nbk, ks, topk[3], topk[4])
    _fill_values(area, topk, x_plus, x_minus, x_beta, x_scale, y_src, y_k, y_scale, x_out, y_out)


@njit(cache=True, nogil=True)
def _chunk_moments(X, Y, mean_x, mean_y, m2x, m2y, cxy):
    """Means and centred sums of one chunk's values (two passes; rows = rankings)."""
    n, nx = X.shape
    ny = Y.shape[1]
    mean_x[:] = 0.0
    mean_y[:] = 0.0
    for r in range(n):
        for i in range(nx):
            mean_x[i] += X[r, i]
        for j in range(ny):
            mean_y[j] += Y[r, j]
    mean_x /= n
    mean_y /= n
    # Centred copies, then the co-moments as one matrix product (BLAS) per chunk.
    dx = X - mean_x
    dy = Y - mean_y
    m2x[:] = 0.0
    m2y[:] = 0.0
    for r in range(n):
        for i in range(nx):
            m2x[i] += dx[r, i] * dx[r, i]
        for j in range(ny):
            m2y[j] += dy[r, j] * dy[r, j]
    cxy[:, :] = np.dot(np.ascontiguousarray(dx.T), dy)


@njit(parallel=True, cache=True)
def _uniform_wave(states, bounds, n_pos, n_neg, betas, levels, ks, discounts, rank,
                  x_plus, x_minus, x_beta, x_scale, y_src, y_k, y_scale,
                  store, store_x, store_y, mean_x, mean_y, m2x, m2y, cxy):
    """Uniform rankings: draw positions, blocks, values and chunk moments, per chunk."""
    n_items = n_pos + n_neg
    nx = x_plus.shape[0]
    ny = y_src.shape[0]
    for chunk in prange(states.shape[0]):
        state = states[chunk].copy()
        scratch = np.zeros(8 * ((n_items + 63) >> 6), np.uint64)  # positions_scratch
        positions = np.empty(n_pos, np.int64)
        block_pos = np.empty(n_items + 1, np.int64)
        block_neg = np.empty(n_items + 1, np.int64)
        area = np.zeros((levels.shape[0], betas.shape[0]))
        topk = np.zeros((_N_SOURCES, ks.shape[0]))
        lo = bounds[chunk]
        hi = bounds[chunk + 1]
        X = np.empty((hi - lo, nx))
        Y = np.empty((hi - lo, ny))
        # OPAUC only (the paper's study): theory's untied fast path, no blocks needed.
        opauc_only = levels.shape[0] == 1 and levels[0] == 0.0
        for r in range(hi - lo):
            draw_positions(state, n_pos, n_items, scratch, positions)
            if opauc_only:
                untied_row(positions, n_pos, n_neg, betas, ks, discounts, area[0],
                           topk[0], topk[1])
                for c in range(ks.shape[0]):
                    topk[2, c] = 1.0 if topk[0, c] > 0.0 else 0.0
                if rank:
                    nb = blocks_from_positions(positions, n_pos, n_items, block_pos, block_neg)
                    topk_rank_row(block_pos, block_neg, nb, ks, topk[3], topk[4])
                _fill_values(area, topk, x_plus, x_minus, x_beta, x_scale, y_src, y_k, y_scale,
                             X[r], Y[r])
            else:
                nb = blocks_from_positions(positions, n_pos, n_items, block_pos, block_neg)
                _row_values(block_pos, block_neg, nb, n_neg, betas, levels, ks, discounts, rank,
                            area, topk, x_plus, x_minus, x_beta, x_scale, y_src, y_k, y_scale, X[r], Y[r])
        _chunk_moments(X, Y, mean_x[chunk], mean_y[chunk], m2x[chunk], m2y[chunk], cxy[chunk])
        if store:
            for r in range(hi - lo):
                for i in range(nx):
                    store_x[i, lo + r] = X[r, i]
                for j in range(ny):
                    store_y[j, lo + r] = Y[r, j]


@njit(cache=True, nogil=True)
def _score_chunk(scores, labels, pos_sorted, n_pos, betas, levels, ks, discounts, rank,
                 x_plus, x_minus, x_beta, x_scale, y_src, y_k, y_scale, X, Y,
                 mean_x, mean_y, m2x, m2y, cxy):
    """Score rankings of one chunk: blocks (negatives bucketed between sorted positives),
    values into X, Y, then the chunk moments.  Called from a thread pool (nogil)."""
    n_rows, n_items = scores.shape
    grid = np.empty(2 * n_pos + 2, np.int64)
    counts = np.empty(2 * n_pos + 2, np.int64)
    block_pos = np.empty(n_items + 1, np.int64)
    block_neg = np.empty(n_items + 1, np.int64)
    area = np.zeros((levels.shape[0], betas.shape[0]))
    topk = np.zeros((_N_SOURCES, ks.shape[0]))
    for r in range(n_rows):
        nb, n_neg = blocks_from_row(scores[r], labels, pos_sorted[r], n_pos, grid, counts,
                                    block_pos, block_neg)
        _row_values(block_pos, block_neg, nb, n_neg, betas, levels, ks, discounts, rank, area,
                    topk, x_plus, x_minus, x_beta, x_scale, y_src, y_k, y_scale, X[r], Y[r])
    _chunk_moments(X, Y, mean_x, mean_y, m2x, m2y, cxy)


@njit(cache=True)
def _merge_moments(total_n, mean_x, mean_y, m2x, m2y, cxy,
                   counts, c_mean_x, c_mean_y, c_m2x, c_m2y, c_cxy):
    """Merge chunk moments into the running totals, in chunk order (Chan et al. 1979)."""
    nx = mean_x.shape[0]
    ny = mean_y.shape[0]
    dx = np.empty(nx)
    dy = np.empty(ny)
    for c in range(counts.shape[0]):
        nb = counts[c]
        na = total_n
        n = na + nb
        f = na * nb / n
        for i in range(nx):
            dx[i] = c_mean_x[c, i] - mean_x[i]
            mean_x[i] += dx[i] * nb / n
            m2x[i] += c_m2x[c, i] + dx[i] * dx[i] * f
        for j in range(ny):
            dy[j] = c_mean_y[c, j] - mean_y[j]
            mean_y[j] += dy[j] * nb / n
            m2y[j] += c_m2y[c, j] + dy[j] * dy[j] * f
        for i in range(nx):
            for j in range(ny):
                cxy[i, j] += c_cxy[c, i, j] + dx[i] * dy[j] * f
        total_n = n
    return total_n


# ======================================================================================
# Study specification (validation and column layout)
# ======================================================================================
@dataclass
class _Spec:
    """A checked study configuration and its column layout.

    x columns (partial AUCs): value = (area[x_plus] - area[x_minus] if x_minus >= 0) at beta
    index x_beta, times x_scale; y columns (Top-K): topk[y_src, y_k] * y_scale, with the
    source and the scale read from theory.metrics.TOPK_METRICS.
    """

    n_pos: int
    n_neg: int
    betas: np.ndarray
    ks: np.ndarray
    metrics: tuple
    partial: tuple
    alphas: np.ndarray
    levels: np.ndarray = field(init=False)
    x_labels: list = field(init=False)
    y_labels: list = field(init=False)

    def __post_init__(self):
        self.levels = self._levels()
        self._x_columns()
        self.discounts = discount_table(int(self.ks[-1]))
        self._y_columns()

    @property
    def _zero_level(self):
        """Index of TPR level 0 (OPAUC's area) in ``levels``, or -1 when not computed."""
        return 0 if ("opauc" in self.partial or "llpauc" in self.partial) else -1

    def _levels(self):
        """TPR levels in positive counts: 0 (OPAUC, LLPAUC), then alpha * n_pos per alpha."""
        values = [0.0] if self._zero_level == 0 else []
        if any(p in ("llpauc", "tpauc") for p in self.partial):
            values.extend(float(a) * self.n_pos for a in self.alphas)
        return np.asarray(values, dtype=np.float64)

    def _x_column(self, family, a_index, alpha, beta):
        """(plus, minus, scale) of one partial-AUC column; scale = 1 / (largest possible
        area), in pair counts."""
        pairs = float(self.n_pos) * self.n_neg
        zero = self._zero_level
        if family == "opauc":
            return zero, -1, 1.0 / (pairs * beta)
        if family == "tpauc":
            return zero + 1 + a_index, -1, 1.0 / (pairs * beta * (1.0 - alpha))
        # llpauc = OPAUC area - TPAUC area at the same alpha
        return zero, zero + 1 + a_index, 1.0 / (pairs * beta * alpha)

    def _x_columns(self):
        columns, labels = [], []
        for family in self.partial:
            alphas = [np.nan] if family == "opauc" else list(self.alphas)
            for a_index, alpha in enumerate(alphas):
                for b_index, beta in enumerate(self.betas):
                    plus, minus, scale = self._x_column(family, a_index, alpha, beta)
                    columns.append((plus, minus, b_index, scale))
                    labels.append((family, alpha, float(beta)))
        plus, minus, beta_index, scale = zip(*columns)
        self.x_plus = np.asarray(plus, np.int64)
        self.x_minus = np.asarray(minus, np.int64)
        self.x_beta = np.asarray(beta_index, np.int64)
        self.x_scale = np.asarray(scale, np.float64)
        self.x_labels = labels

    def _y_columns(self):
        """One column per (metric, k): its source row and 1 / its denominator (the table's)."""
        y_src, y_k, y_scale, labels = [], [], [], []
        for name in self.metrics:
            metric = TOPK_METRICS[name]
            for k_index, k in enumerate(self.ks):
                denominator = topk_denominator(metric.normalization, int(k), self.n_pos,
                                               self.discounts)
                y_src.append(TOPK_SOURCES.index(metric.source))
                y_k.append(k_index)
                y_scale.append(1.0 / denominator)
                labels.append((name, int(k)))
        self.y_src = np.asarray(y_src, np.int64)
        self.y_k = np.asarray(y_k, np.int64)
        self.y_scale = np.asarray(y_scale, np.float64)
        self.y_labels = labels
        self.rank = any(TOPK_METRICS[m].source in RANK_SOURCES for m in self.metrics)

    @property
    def nx(self):
        return len(self.x_labels)

    @property
    def ny(self):
        return len(self.y_labels)

    def kernel_args(self):
        return (self.betas, self.levels, self.ks, self.discounts, self.rank, self.x_plus,
                self.x_minus, self.x_beta, self.x_scale, self.y_src, self.y_k, self.y_scale)


def default_betas(n_neg: int, n: int = 41) -> np.ndarray:
    """``n`` log-spaced betas from 1 / n_neg (one negative) to 1 (AUC), inclusive.

    Examples
    --------
    >>> default_betas(100, 3)
    array([0.01, 0.1 , 1.  ])
    """
    n_neg = check_int(n_neg, "n_neg", low=1, integral_floats=True)
    if n_neg == 1:
        return np.ones(1)
    return np.geomspace(1.0 / n_neg, 1.0, check_int(n, "n", low=1, integral_floats=True))


def _names(values, name, allowed):
    """The names among ``allowed`` (a string or a sequence), duplicates dropped, order kept."""
    checked = check_grid(values, name, functools.partial(check_choice, allowed=allowed),
                         dtype=object)
    return tuple(dict.fromkeys(checked.tolist()))


def _make_spec(n_pos, n_neg, n_rankings, ks, betas, metrics, partial_families, alphas,
               min_rankings):
    """Check the study's arguments (theory.validation) and lay out its columns."""
    n_pos, n_neg, n_rankings = check_sizes(n_pos, n_neg, n_rankings, min_rankings)
    # Grids: sorted, duplicates dropped (np.unique), as documented in topk_correlations.
    betas = default_betas(n_neg) if betas is None else np.unique(check_betas(betas))
    ks = np.unique(check_ks(ks, high=n_pos + n_neg, high_name="n_pos + n_neg", min_size=1))
    alpha_check = functools.partial(check_real, low=0.0, high=1.0, include_low=False,
                                    include_high=False)
    alphas = np.unique(check_grid(alphas, "alphas", alpha_check))
    spec = _Spec(n_pos, n_neg, betas, ks, _names(metrics, "metrics", METRICS),
                 _names(partial_families, "partial", PARTIALS), alphas)
    return spec, n_rankings


# ======================================================================================
# The simulation driver
# ======================================================================================
@dataclass
class _Moments:
    n: int
    mean_x: np.ndarray
    mean_y: np.ndarray
    m2x: np.ndarray
    m2y: np.ndarray
    cxy: np.ndarray

    @classmethod
    def zeros(cls, count, nx, ny, n=0):
        """All-zero moments: one set (count None) or one per chunk of a wave."""
        lead = () if count is None else (count,)
        return cls(n, np.zeros(lead + (nx,)), np.zeros(lead + (ny,)), np.zeros(lead + (nx,)),
                   np.zeros(lead + (ny,)), np.zeros(lead + (nx, ny)))

    def merge(self, rows, chunks):
        """Merge a wave's chunk moments (``chunks``, rows per chunk ``rows``), in chunk order."""
        self.n = _merge_moments(self.n, self.mean_x, self.mean_y, self.m2x, self.m2y, self.cxy,
                                rows, chunks.mean_x, chunks.mean_y, chunks.m2x, chunks.m2y,
                                chunks.cxy)

    def pearson(self):
        with np.errstate(divide="ignore", invalid="ignore"):
            r = self.cxy / np.sqrt(np.outer(self.m2x, self.m2y))
        return np.clip(r, -1.0, 1.0)


def _score_task(model, gen, rows, spec):
    """Draw one chunk of a score model; return its scores and sorted positives (+ sentinels)."""
    pos, neg = check_draw(model, *model.draw(gen, rows, spec.n_pos, spec.n_neg), rows,
                          spec.n_pos, spec.n_neg)
    scores = np.concatenate([pos, neg], axis=1)
    pos_sorted = np.empty((rows, spec.n_pos + SENTINELS))
    pos_sorted[:, : spec.n_pos] = np.sort(pos, axis=1)
    pos_sorted[:, spec.n_pos:] = np.inf
    return scores, pos_sorted


@dataclass
class _Store:
    """Every ranking's values, (nx, n) and (ny, n), for rank correlations and the bootstrap;
    empty (0, 0) arrays when not stored."""

    on: bool
    x: np.ndarray
    y: np.ndarray

    @classmethod
    def new(cls, on, spec, n_rankings):
        return cls(on, np.empty((spec.nx, n_rankings) if on else (0, 0)),
                   np.empty((spec.ny, n_rankings) if on else (0, 0)))


def _uniform_wave_runner(spec, root, store):
    """Run one wave of uniform rankings (one parallel numba call)."""
    def run(first, bounds, chunks):
        states = chunk_states(root, bounds.size - 1, first)
        _uniform_wave(states, bounds, spec.n_pos, spec.n_neg, *spec.kernel_args(), store.on,
                      store.x, store.y, chunks.mean_x, chunks.mean_y, chunks.m2x, chunks.m2y,
                      chunks.cxy)
    return run


def _score_wave_runner(spec, model, root, store, pool):
    """Run one wave of a score model: one chunk per thread-pool task (draw, then numba)."""
    labels = np.zeros(spec.n_pos + spec.n_neg, np.int8)
    labels[: spec.n_pos] = 1

    def run(first, bounds, chunks):
        gens = chunk_generators(root, bounds.size - 1, first)

        def chunk(c):
            rows = int(bounds[c + 1] - bounds[c])
            scores, pos_sorted = _score_task(model, gens[c], rows, spec)
            X = np.empty((rows, spec.nx))
            Y = np.empty((rows, spec.ny))
            _score_chunk(scores, labels, pos_sorted, spec.n_pos, *spec.kernel_args(), X, Y,
                         chunks.mean_x[c], chunks.mean_y[c], chunks.m2x[c], chunks.m2y[c],
                         chunks.cxy[c])
            if store.on:
                store.x[:, bounds[c]: bounds[c + 1]] = X.T
                store.y[:, bounds[c]: bounds[c + 1]] = Y.T

        list(pool.map(chunk, range(bounds.size - 1)))
    return run


@contextlib.contextmanager
def _progress_bar(progress, total):
    """A tqdm bar over the rankings, or None."""
    if not progress:
        yield None
        return
    from tqdm.auto import tqdm

    bar = tqdm(total=total, unit="rankings", desc="topk_correlations")
    try:
        yield bar
    finally:
        bar.close()


def _simulate(spec, n_rankings, model, seed, store, progress):
    """Run the chunks in waves; return the merged moments and (if store) the values (nx, n),
    (ny, n)."""
    root = as_seed_sequence(seed)
    total = _Moments.zeros(None, spec.nx, spec.ny)
    stored = _Store.new(store, spec, n_rankings)
    n_ch = n_chunks(n_rankings)
    with contextlib.ExitStack() as stack:
        bar = stack.enter_context(_progress_bar(progress, n_rankings))
        if isinstance(model, Uniform):
            run_wave = _uniform_wave_runner(spec, root, stored)
        else:
            pool = stack.enter_context(
                ThreadPoolExecutor(max_workers=max(1, numba.get_num_threads())))
            run_wave = _score_wave_runner(spec, model, root, stored, pool)
        for first in range(0, n_ch, WAVE_CHUNKS):
            count = min(WAVE_CHUNKS, n_ch - first)
            bounds = np.minimum(np.arange(first, first + count + 1, dtype=np.int64) * CHUNK_SIZE,
                                n_rankings)
            chunks = _Moments.zeros(count, spec.nx, spec.ny)
            run_wave(first, bounds, chunks)
            total.merge(np.diff(bounds), chunks)
            if bar is not None:
                bar.update(int(bounds[-1] - bounds[0]))
    return total, (stored.x if store else None), (stored.y if store else None)


# ======================================================================================
# Correlations from stored values
# ======================================================================================
_BLOCK = 1 << 16


def _weighted_corr(X, Y, w=None):
    """Pearson between every row of X and every row of Y, observation weights w (counts)."""
    n = X.shape[1]
    w = np.ones(n) if w is None else np.asarray(w, dtype=np.float64)
    total = w.sum()
    mx = X @ w / total
    my = Y @ w / total
    sxy = np.zeros((X.shape[0], Y.shape[0]))
    sxx = np.zeros(X.shape[0])
    syy = np.zeros(Y.shape[0])
    for s in range(0, n, _BLOCK):
        e = min(n, s + _BLOCK)
        xc = X[:, s:e] - mx[:, None]
        yc = Y[:, s:e] - my[:, None]
        wy = yc * w[s:e]
        sxy += xc @ wy.T
        sxx += (xc * xc) @ w[s:e]
        syy += (yc * wy).sum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.clip(sxy / np.sqrt(np.outer(sxx, syy)), -1.0, 1.0)


def _rank_in_place(values):
    """Replace each row of ``values`` by its average ranks (1-based; ties get the mean rank)."""
    for c in range(values.shape[0]):
        values[c] = scipy.stats.rankdata(values[c])


def _dense_ids(values):
    """Tie-group id of each value, 0 = smallest (int32), column by column, in place of floats."""
    out = np.empty(values.shape, np.int32)
    for c in range(values.shape[0]):
        out[c] = np.unique(values[c], return_inverse=True)[1]
    return out


def _average_ranks(ids, w=None):
    """Average (mid) ranks, 1-based, of each observation when observation i appears w_i times."""
    out = np.empty(ids.shape)
    for c in range(ids.shape[0]):
        group = np.bincount(ids[c], weights=w)
        before = np.cumsum(group) - group
        out[c] = (before + (group + 1.0) / 2.0)[ids[c]]
    return out


def _spearman_weighted(ids_x, ids_y, w=None):
    """Spearman of every (x row, y row) pair from tie-group ids, observation weights w.

    The y ranks are built once; the x ranks one row at a time (memory: the ids plus the y
    ranks plus a few rows)."""
    n = ids_x.shape[1]
    w = np.ones(n) if w is None else np.asarray(w, dtype=np.float64)
    total = w.sum()
    ry = _average_ranks(ids_y, w)
    ry -= (ry @ w / total)[:, None]
    syy = np.array([(row * row) @ w for row in ry])
    r = np.empty((ids_x.shape[0], ids_y.shape[0]))
    for i in range(ids_x.shape[0]):
        rx = _average_ranks(ids_x[i: i + 1], w)[0]
        rx -= rx @ w / total
        wx = rx * w
        with np.errstate(divide="ignore", invalid="ignore"):
            r[i] = (ry @ wx) / np.sqrt((rx @ wx) * syy)
    return np.clip(r, -1.0, 1.0)


def _rank_corr(method, X, Y, w=None, idx=None):
    """Spearman (X, Y = tie-group ids) or Kendall tau-b (X, Y = values) of every pair."""
    if method == "spearman":
        return _spearman_weighted(X, Y, w)
    r = np.empty((X.shape[0], Y.shape[0]))
    for i in range(X.shape[0]):
        x = X[i] if idx is None else X[i][idx]
        for j in range(Y.shape[0]):
            y = Y[j] if idx is None else Y[j][idx]
            r[i, j] = scipy.stats.kendalltau(x, y).statistic
    return r


def _bootstrap(method, X, Y, n_boot, ci, root, progress):
    """Percentile intervals from ``n_boot`` resamples of the rankings (with replacement).

    Pearson and Spearman use the multiplicity counts of the resample as weights (exactly the
    statistic of the resample, without materialising it); Kendall resamples explicitly.
    """
    rng = np.random.Generator(np.random.PCG64(branch_seed_sequence(root, 1)))
    n = X.shape[1]
    reps = np.empty((n_boot, X.shape[0], Y.shape[0]))
    iterator = range(n_boot)
    if progress:
        from tqdm.auto import tqdm

        iterator = tqdm(iterator, desc="bootstrap")
    for b in iterator:
        idx = rng.integers(0, n, n)
        if method == "kendall":
            reps[b] = _rank_corr(method, X, Y, idx=idx)
        else:
            w = np.bincount(idx, minlength=n).astype(np.float64)
            reps[b] = (_weighted_corr(X, Y, w) if method == "pearson"
                       else _rank_corr(method, X, Y, w))
    tail = (1.0 - ci) / 2.0
    with np.errstate(invalid="ignore"):
        return np.nanquantile(reps, tail, axis=0), np.nanquantile(reps, 1.0 - tail, axis=0)


# ======================================================================================
# Public API
# ======================================================================================
def topk_correlations(n_pos: int, n_neg: int, n_rankings: int, ks: Sequence[int],
                      betas: Sequence[float] | None = None, model: object = "uniform",
                      metrics: str | Sequence[str] = ("precision", "recall", "ndcg"),
                      method: str = "pearson", seed: object = 0, *,
                      partial: str | Sequence[str] = "opauc",
                      alphas: float | Sequence[float] = (0.5,), bootstrap: int | None = None,
                      ci: float = 0.95, progress: bool = False) -> pd.DataFrame:
    """Correlation across random rankings between partial AUCs and Top-K metrics (Fig. 6).

    Parameters
    ----------
    n_pos, n_neg : int >= 1
        Positives and negatives per ranking (paper: 200 and 800).
    n_rankings : int >= 3
        Number of random rankings (paper: 100,000).
    ks : sequence of int in [1, n_pos + n_neg]
        Cut-offs (sorted, duplicates dropped).
    betas : sequence of float in (0, 1], optional
        FPR limits (sorted, duplicates dropped); beta = 1 is AUC.  Default
        :func:`default_betas` (41 log-spaced values from 1 / n_neg to 1).
    model : str or model object
        "uniform" (uniformly random rankings, the paper's setting), a registered score model
        ("binormal", "student_t", "mixture", with default parameters) or a model instance
        (e.g. ``Binormal(1.0, 1.0)``); see :mod:`simulations.rankings`.
    metrics : str or sequence of {"precision", "recall", "ndcg", "hit_rate", "mrr", "map"}
        Names of :data:`theory.metrics.TOPK_METRICS` (Recall divides by N+, MAP@K by N+ as
        in ranx; MRR@K is the reciprocal rank of the first positive, 0 beyond K).
    method : {"pearson", "spearman", "kendall"}
        Pearson is streamed; Spearman (average ranks) and Kendall (tau-b) store the values.
    seed : int, SeedSequence or Generator
        Same seed, same table, whatever the thread count (see :mod:`simulations.rng`).
    partial : str or sequence of {"opauc", "llpauc", "tpauc"}
        Partial-AUC families.  OPAUC(beta) is divided by beta; LLPAUC(alpha, beta) (TPR <=
        alpha) by alpha * beta; TPAUC(alpha, beta) (TPR >= alpha) by (1 - alpha) * beta: each
        by its largest possible value, so all lie in [0, 1] (a positive scale: correlations
        are those of the raw areas).
    alphas : float or sequence of float in (0, 1)
        TPR levels for LLPAUC and TPAUC.
    bootstrap : int >= 1, optional
        Number of bootstrap resamples of the rankings; adds percentile intervals ``ci_low``,
        ``ci_high`` at level ``ci``.  Stores the values (see the module docstring).
    ci : float in (0, 1)
    progress : bool
        tqdm progress bars.

    Returns
    -------
    pandas.DataFrame
        Columns ``metric, k, beta, r`` (one row per metric x k x beta; with families other
        than OPAUC also ``partial`` and ``alpha`` (NaN for OPAUC); with a bootstrap also
        ``ci_low, ci_high``).  ``r`` is NaN where a column is constant (zero variance).
        ``table.attrs`` records the configuration.

    Examples
    --------
    >>> table = topk_correlations(5, 20, 200, ks=[5], betas=[0.25, 1.0],
    ...                           metrics=("recall", "mrr", "map"), seed=0)
    >>> table[["metric", "k", "beta"]].values.tolist()
    [['recall', 5, 0.25], ['recall', 5, 1.0], ['mrr', 5, 0.25], ['mrr', 5, 1.0], \
['map', 5, 0.25], ['map', 5, 1.0]]
    >>> bool(table.r.between(-1, 1).all())
    True
    """
    spec, n_rankings = _make_spec(n_pos, n_neg, n_rankings, ks, betas, metrics, partial, alphas,
                                  min_rankings=3)
    check_choice(method, "method", METHODS)
    if bootstrap is not None:
        bootstrap = check_int(bootstrap, "bootstrap", low=1)
        ci = check_real(ci, "ci", low=0.0, high=1.0, include_low=False, include_high=False)
    model_obj = get_model(model)
    root = as_seed_sequence(seed)
    store = method != "pearson" or bootstrap is not None
    moments, X, Y = _simulate(spec, n_rankings, model_obj, root, store, progress)

    if method == "pearson":
        r = moments.pearson()
    elif method == "spearman":
        _rank_in_place(X)
        _rank_in_place(Y)
        r = _weighted_corr(X, Y)
        if bootstrap is not None:  # the resamples need the tie groups (int32; floats freed)
            X = _dense_ids(X)  # one at a time: the float array is freed before the next
            Y = _dense_ids(Y)
    else:
        r = _rank_corr("kendall", X, Y)
    low = high = None
    if bootstrap is not None:
        low, high = _bootstrap(method, X, Y, int(bootstrap), float(ci), root, progress)

    table = _table(spec, r, low, high)
    table.attrs.update(n_pos=spec.n_pos, n_neg=spec.n_neg, n_rankings=n_rankings,
                       model=repr(model_obj), method=method, seed=_seed_repr(root),
                       chunk_size=CHUNK_SIZE, bootstrap=bootstrap, ci=ci if bootstrap else None)
    return table


def _seed_repr(root):
    return {"entropy": str(root.entropy), "spawn_key": list(root.spawn_key)}


def _table(spec, r, low=None, high=None):
    extra = spec.partial != ("opauc",)
    rows = []
    for i, (family, alpha, beta) in enumerate(spec.x_labels):
        for j, (metric, k) in enumerate(spec.y_labels):
            row = {"metric": metric, "k": k, "beta": beta, "r": r[i, j]}
            if extra:
                row["partial"] = family
                row["alpha"] = alpha
            if low is not None:
                row["ci_low"] = low[i, j]
                row["ci_high"] = high[i, j]
            rows.append(row)
    table = pd.DataFrame(rows)
    order = (["partial", "alpha"] if extra else []) + ["metric", "k", "beta"]
    table["_m"] = table["metric"].map({m: i for i, m in enumerate(spec.metrics)})
    if extra:
        table["_p"] = table["partial"].map({p: i for i, p in enumerate(spec.partial)})
        sort_by = ["_p", "alpha", "_m", "k", "beta"]
    else:
        sort_by = ["_m", "k", "beta"]
    table = table.sort_values(sort_by, kind="stable", na_position="first")
    table = table.drop(columns=[c for c in ("_m", "_p") if c in table]).reset_index(drop=True)
    cols = order + ["r"] + (["ci_low", "ci_high"] if low is not None else [])
    return table[cols]


def peak_betas(table: pd.DataFrame, left_factor: float = 4.0) -> pd.DataFrame:
    """Peak of each correlation curve: per (metric, k) (and partial, alpha if present).

    Returns a DataFrame with the group keys and

    * ``peak_beta``: the grid beta of the largest r (the smallest such beta on ties),
      ``peak_r`` its r;
    * ``r_auc``: r at beta = 1 when the grid holds it, else NaN;
    * ``r_left``: r at ``peak_beta / left_factor``, linearly interpolated in log(beta) (NaN
      when that beta is below the grid), and ``left_drop = peak_r - r_left``: how fast the
      curve falls left of its peak (paper: NDCG's falls more slowly than Recall's);
    * ``ratio = peak_beta / (k / n_neg)`` when ``table.attrs`` records n_neg;
    * ``ci_low`` / ``ci_high`` at the peak when the table has intervals.

    The rows of one metric, sorted by k, are the curve peak-beta(K).

    Examples
    --------
    The peak of Recall@K moves to smaller beta as K shrinks (paper Fig. 6):

    >>> table = topk_correlations(20, 80, 2000, ks=(5, 20), betas=(0.05, 0.25, 1.0),
    ...                           metrics=("recall",), seed=0)
    >>> peak_betas(table)[["metric", "k", "peak_beta"]]
       metric   k  peak_beta
    0  recall   5       0.05
    1  recall  20       0.25
    """
    if not {"metric", "k", "beta", "r"} <= set(table.columns):
        raise ValueError("table must have columns metric, k, beta, r (a topk_correlations table)")
    left_factor = check_real(left_factor, "left_factor", low=1.0, include_low=False)
    keys = [c for c in ("partial", "alpha", "metric", "k") if c in table.columns]
    n_neg = table.attrs.get("n_neg")
    out = []
    for group, part in table.groupby(keys, sort=False, dropna=False):
        part = part.sort_values("beta")
        betas = part["beta"].to_numpy()
        values = part["r"].to_numpy()
        row = dict(zip(keys, group if isinstance(group, tuple) else (group,)))
        best = None
        if np.all(np.isnan(values)):
            row.update(peak_beta=np.nan, peak_r=np.nan)
        else:
            best = int(np.nanargmax(values))
            row.update(peak_beta=float(betas[best]), peak_r=float(values[best]))
        at_one = values[np.isclose(betas, 1.0, rtol=0.0, atol=1e-12)]
        row["r_auc"] = float(at_one[0]) if at_one.size else np.nan
        r_left = np.nan
        if best is not None:
            target = np.log(betas[best] / left_factor)
            if target >= np.log(betas[0]):
                r_left = float(np.interp(target, np.log(betas), values))
        row["r_left"] = r_left
        row["left_drop"] = row["peak_r"] - r_left
        if n_neg:
            row["ratio"] = row["peak_beta"] / (row["k"] / n_neg)
        if "ci_low" in part and best is not None:
            row["ci_low"] = float(part["ci_low"].iloc[best])
            row["ci_high"] = float(part["ci_high"].iloc[best])
        out.append(row)
    return pd.DataFrame(out)


@dataclass
class RankingSample:
    """Per-ranking metric values of one simulated sample (see :func:`ranking_sample`).

    ``partial[family]``: for "opauc" shape (n_rankings, n_betas); for "llpauc" and "tpauc"
    (n_rankings, n_alphas, n_betas); normalised as in :func:`topk_correlations`.
    ``topk[metric]``: shape (n_rankings, n_ks).
    """

    betas: np.ndarray
    ks: np.ndarray
    alphas: np.ndarray
    partial: dict
    topk: dict


def ranking_sample(n_pos, n_neg, n_rankings, ks, betas=None, model="uniform",
                   metrics=("precision", "recall", "ndcg"), seed=0, *, partial="opauc",
                   alphas=(0.5,)):
    """The per-ranking values behind :func:`topk_correlations` (same draws for the same seed).

    Meant for tests and teaching at small sizes (memory 8 bytes per value); arguments as in
    :func:`topk_correlations` (``n_rankings >= 1`` here).

    Examples
    --------
    Four random rankings of 3 positives among 10 items: OPAUC(0.5) (normalised by beta) and
    Recall@2 of each.

    >>> sample = ranking_sample(3, 7, 4, ks=(2,), betas=(0.5,), metrics=("recall",), seed=0)
    >>> sample.partial["opauc"].ravel().round(4), sample.topk["recall"].ravel().round(4)
    (array([0.2857, 0.4286, 0.381 , 0.1429]), array([0.    , 0.3333, 0.3333, 0.    ]))
    """
    spec, n_rankings = _make_spec(n_pos, n_neg, n_rankings, ks, betas, metrics, partial, alphas,
                                  min_rankings=1)
    _, X, Y = _simulate(spec, n_rankings, get_model(model), as_seed_sequence(seed), True, False)
    n_b, n_a = spec.betas.size, spec.alphas.size
    parts, at = {}, 0
    for family in spec.partial:
        width = n_b if family == "opauc" else n_a * n_b
        block = X[at: at + width].T.copy()
        parts[family] = block if family == "opauc" else block.reshape(n_rankings, n_a, n_b)
        at += width
    n_k = spec.ks.size
    topk = {m: Y[i * n_k: (i + 1) * n_k].T.copy() for i, m in enumerate(spec.metrics)}
    return RankingSample(spec.betas, spec.ks, spec.alphas if any(p != "opauc" for p in spec.partial)
                         else np.empty(0), parts, topk)


def separation_sweep(mus, models=("binormal", "student_t", "mixture"), *, spread=0.0, n_pos=200,
                     n_neg=800, n_rankings=20_000, ks=(5, 10, 20, 50), betas=None,
                     metrics=("recall", "ndcg"), method="pearson", seed=0, progress=False):
    """Peak beta and peak r of score models as the separation mu grows (beyond the paper).

    For each model (a registered name or an instance with ``mu_low`` / ``mu_high`` fields)
    and each mu in ``mus``, the model's separation range is set to
    [mu (1 - spread), mu (1 + spread)] (``spread = 0``: every ranking has separation mu;
    ``spread = 1``: mu ~ U[0, 2 mu], rankings of unequal quality), the correlation study is
    run, and its :func:`peak_betas` rows are returned with columns ``model``, ``mu``,
    ``spread`` added.  Every cell uses the same ``seed`` (common random numbers: curves over
    mu are smooth).

    Examples
    --------
    >>> sweep = separation_sweep([1.0], models="binormal", n_pos=20, n_neg=80, n_rankings=500,
    ...                          ks=(5,), betas=(0.05, 0.25, 1.0), metrics=("recall",))
    >>> sweep[["model", "mu", "k", "peak_beta"]]
          model   mu  k  peak_beta
    0  binormal  1.0  5       0.05
    """
    mus = np.atleast_1d(check_array(mus, "mus", ndim=(0, 1), non_empty=False))
    if mus.size == 0:
        raise ValueError(f"mus must hold at least one separation; got {mus!r}")
    spread = check_real(spread, "spread", low=0.0, high=1.0)
    models = (models,) if isinstance(models, str) else tuple(models)
    out = []
    for model in models:
        base = get_model(model)
        if not ({"mu_low", "mu_high"} <= {f.name for f in dataclasses.fields(base)}
                if dataclasses.is_dataclass(base) else False):
            raise ValueError(f"models must have mu_low / mu_high fields; got {model!r}")
        for mu in mus:
            cell = dataclasses.replace(base, mu_low=float(mu * (1.0 - spread)),
                                       mu_high=float(mu * (1.0 + spread)))
            table = topk_correlations(n_pos, n_neg, n_rankings, ks, betas, model=cell,
                                      metrics=metrics, method=method, seed=seed, progress=progress)
            peaks = peak_betas(table)
            peaks.insert(0, "spread", float(spread))
            peaks.insert(0, "mu", float(mu))
            peaks.insert(0, "model", base.name)
            out.append(peaks)
    return pd.concat(out, ignore_index=True)
