"""Exact ranking metrics: AUC, one-way / two-way / lower-left partial AUC, Top-K metrics.

Every metric here is a function of the *block sequence* of a ranking, read from the highest
score down: a block is either a run of items of one label, or a group of tied items
holding ``p`` positives and ``q`` negatives.  The empirical ROC curve walks the blocks: a
block moves it from (FPR, TPR) = (u / n_neg, t / n_pos) to ((u + q) / n_neg, (t + p) / n_pos)
along a straight segment, so a tie group is a diagonal segment and every tied
(positive, negative) pair counts 1/2, as in scikit-learn's ``roc_auc_score``.  Top-K
metrics use the same blocks with the *expected value under uniformly random
tie-breaking*: each position of a tie group holds a positive with probability p / (p + q),
the convention of scikit-learn's ``ndcg_score`` (``ignore_ties=False``).

Layout (ranx style): small ``@njit(cache=True)`` row kernels (``blocks_from_row``,
``area_curve_row``, ``topk_row``) that the simulators and the trainer call directly, one
parallel batch driver over fixed chunks of rankings, and thin public functions that share
one validation path (``_check_rankings``).

Conventions of the public functions follow scikit-learn: ``y_true`` first (bool, True =
positive; 0/1 integers accepted), then ``y_score``; both of shape (n_items,) for one ranking
(returns a float) or (n_lists, n_items) for a batch (returns an array with one value per row).

References
----------
Shi et al., "On the Theories Behind Hard Negative Sampling for Recommendation", WWW 2023
(equation numbers below refer to it; see ../shared/PAPER.md).
McClish, "Analyzing a portion of the ROC curve", Medical Decision Making 9(3), 1989.
Yang et al., "When All We Need is a Piece of the Pie", ICML 2021 (two-way partial AUC).
Shi et al., "Lower-Left Partial AUC", WWW 2024 (LLPAUC).
"""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial
from typing import NamedTuple

import numpy as np
from numba import njit, prange

from theory.validation import (
    check_betas,
    check_choice,
    check_fraction,
    check_grid,
    check_int,
    check_ks,
)

__all__ = [
    "OPAUC_NORMALIZATIONS",
    "SELECT_WIDTH",
    "SENTINELS",
    "TOPK_METRICS",
    "TOPK_NORMALIZATIONS",
    "TOPK_SOURCES",
    "RankingMetrics",
    "TopKMetric",
    "area_curve_row",
    "auc",
    "blocks_from_positions",
    "blocks_from_row",
    "discount_table",
    "hit_rate_at_k",
    "llpauc",
    "map_at_k",
    "mrr_at_k",
    "ndcg_at_k",
    "normalize_opauc",
    "opauc",
    "opauc_curve",
    "precision_at_k",
    "ranking_metrics",
    "raw_opauc",
    "recall_at_k",
    "roc_points",
    "top_candidates_row",
    "topk_denominator",
    "topk_rank_row",
    "topk_row",
    "tpauc",
    "untied_row",
]

OPAUC_NORMALIZATIONS = ("none", "beta", "mcclish")
RECALL_DENOMINATORS = ("positives", "min_k_positives")  # Recall@K's two conventions
ON_UNDEFINED = ("raise", "nan")

# Rankings per parallel work item; fixed so that work splits the same way on any thread count.
_CHUNK_ROWS = 64


# --------------------------------------------------------------------------------------
# Row kernels (shared with simulations/ and the trainer: one source of truth)
# --------------------------------------------------------------------------------------
@njit(cache=True)
def _cell(x, low, inv_width, n_cells):
    """Grid cell of a score: monotone non-decreasing in x, clamped to [0, n_cells - 1]."""
    # min/max rather than branches; an infinite t (extreme spread) clamps too.
    t = min(max((x - low) * inv_width, 0.0), n_cells - 0.5)
    return int(t)


@njit(cache=True)
def _build_grid(pos_sorted, n_pos, grid):
    """Bucket the sorted positives on a uniform grid of ``len(grid) - 1`` cells.

    ``grid[c]`` = number of positives whose cell is < c.  Because ``_cell`` is monotone, a
    positive in a lower cell than x is < x and one in a higher cell is > x, so the first
    positive >= x lies in ``[grid[c], grid[c + 1]]`` for x's cell c.
    Returns (low, inv_width, largest number of positives in one cell).
    """
    n_cells = grid.shape[0] - 1
    grid[:] = 0
    if n_pos == 0:
        return 0.0, 0.0, 0
    low = pos_sorted[0]
    spread = pos_sorted[n_pos - 1] - low
    inv_width = n_cells / spread if 0.0 < spread < np.inf else 0.0
    if not inv_width < np.inf:  # a subnormal spread: one cell (binary search) instead
        inv_width = 0.0
    if inv_width == 0.0:
        # One cell for everything. low = 0 keeps (x - low) * 0 from becoming inf * 0 = NaN
        # when x - low overflows.
        low = 0.0
    for i in range(n_pos):
        grid[_cell(pos_sorted[i], low, inv_width, n_cells) + 1] += 1
    crowded = 0
    for c in range(n_cells):
        crowded = max(crowded, grid[c + 1])
        grid[c + 1] += grid[c]
    return low, inv_width, crowded


@njit(cache=True)
def _lower_bound(pos_sorted, grid, low, inv_width, x):
    """Index of the first positive >= x: grid lookup, then binary search inside the cell."""
    c = _cell(x, low, inv_width, grid.shape[0] - 1)
    lo = grid[c]
    hi = grid[c + 1]
    while lo < hi:
        mid = (lo + hi) >> 1
        if pos_sorted[mid] < x:
            lo = mid + 1
        else:
            hi = mid
    return lo


# Positives probed per grid cell on the branch-free path; pos_sorted needs this many +inf
# sentinels after its last positive.
SENTINELS = 4


@njit(cache=True)
def _push_block(block_pos, block_neg, nb, p, q):
    """Append a block, merging a single-label block into a previous one of the same label."""
    if p == 0 and q == 0:
        return nb
    if nb > 0 and (p == 0 or q == 0):
        prev_p = block_pos[nb - 1]
        prev_q = block_neg[nb - 1]
        if (q == 0 and prev_q == 0) or (p == 0 and prev_p == 0):
            block_pos[nb - 1] = prev_p + p
            block_neg[nb - 1] = prev_q + q
            return nb
    block_pos[nb] = p
    block_neg[nb] = q
    return nb + 1


@njit(cache=True)
def blocks_from_row(scores: np.ndarray, labels: np.ndarray, pos_sorted: np.ndarray, n_pos: int, grid: np.ndarray,
                    counts: np.ndarray, block_pos: np.ndarray, block_neg: np.ndarray) -> tuple[int, int]:
    """Blocks of one ranking, highest score first, without sorting the negatives.

    Each negative is placed between the sorted positive scores (a grid lookup, then a
    search within one cell), so a ranking costs about O(n_items) after sorting its
    positives: only the number of negatives between consecutive positives matters to any
    metric here, so the negatives are never sorted.

    Parameters
    ----------
    scores : float64 array (n_items,)
    labels : int8 or bool array (n_items,); 1 = positive, 0 = negative, any other value
        (e.g. -1 for a training item in a full-ranking evaluation) is ignored.
    pos_sorted : float64 array of length >= n_pos + SENTINELS: the positive scores ascending
        in its first ``n_pos`` entries, then +inf (sentinels).
    grid : int64 scratch array of length >= 2; ``2 * n_pos + 1`` gives about half a
        positive per cell.
    counts : int64 scratch array of length >= 2 * n_pos + 2.
    block_pos, block_neg : int64 arrays of length >= n_items, filled in place: block b holds
        ``block_pos[b]`` positives and ``block_neg[b]`` negatives; a block with both > 0 is a
        group of tied scores; consecutive single-label runs are merged.

    Returns
    -------
    (n_blocks, n_neg) : the number of blocks and of negatives.

    Examples
    --------
    Scores 0.9 (positive), 0.5 (a positive tied with a negative), 0.1 (negative):

    >>> scores, labels = np.array([0.9, 0.5, 0.5, 0.1]), np.array([1, 1, 0, 0], np.int8)
    >>> pos_sorted = np.array([0.5, 0.9] + [np.inf] * SENTINELS)
    >>> bp, bn = np.zeros(4, np.int64), np.zeros(4, np.int64)
    >>> blocks_from_row(scores, labels, pos_sorted, 2, np.empty(5, np.int64),
    ...                 np.empty(6, np.int64), bp, bn)
    (3, 2)
    >>> bp[:3].tolist(), bn[:3].tolist()
    ([1, 1, 0], [0, 1, 1])
    """
    # counts[2 i] = negatives strictly between positives i - 1 and i (i = n_pos: above all);
    # counts[2 i + 1] = negatives tied with positive i.  Branch-free: every item is placed,
    # and only negatives add to the counts.
    counts[: 2 * n_pos + 2] = 0
    low, inv_width, crowded = _build_grid(pos_sorted, n_pos, grid)
    n_cells = grid.shape[0] - 1
    n_items = scores.shape[0]
    if crowded <= SENTINELS:
        # Every cell holds <= 4 positives and later cells hold only larger ones, so the
        # lower bound is the cell start plus four comparisons: no branch, no search.
        # Unsigned indices: numba then emits no negative-index wraparound (a compare and a
        # conditional move on every access of this dependency chain); the loop runs about
        # 1.6x faster.  Every operand is uint64, as mixing it with int64 gives float64.
        one, two, three = np.uint64(1), np.uint64(2), np.uint64(3)
        for j in range(n_items):
            x = scores[j]
            lo = np.uint64(grid[np.uint64(_cell(x, low, inv_width, n_cells))])
            idx = (lo + np.uint64(pos_sorted[lo] < x) + np.uint64(pos_sorted[lo + one] < x)
                   + np.uint64(pos_sorted[lo + two] < x) + np.uint64(pos_sorted[lo + three] < x))
            counts[two * idx + np.uint64(pos_sorted[idx] == x)] += np.int64(labels[np.uint64(j)] == 0)
    else:  # clustered or tied positives: search within the crowded cells
        for j in range(n_items):
            x = scores[j]
            idx = _lower_bound(pos_sorted, grid, low, inv_width, x)
            counts[2 * idx + np.int64(pos_sorted[idx] == x)] += np.int64(labels[j] == 0)
    n_neg = 0
    for i in range(2 * n_pos + 2):
        n_neg += counts[i]
    nb = _push_block(block_pos, block_neg, 0, 0, counts[2 * n_pos])
    i = n_pos - 1
    while i >= 0:
        value = pos_sorted[i]
        last = i
        while i >= 0 and pos_sorted[i] == value:
            i -= 1
        first = i + 1
        nb = _push_block(block_pos, block_neg, nb, last - first + 1, counts[2 * first + 1])
        nb = _push_block(block_pos, block_neg, nb, 0, counts[2 * first])
    return nb, n_neg


@njit(cache=True)
def blocks_from_positions(positions: np.ndarray, n_pos: int, n_items: int, block_pos: np.ndarray,
                          block_neg: np.ndarray) -> int:
    """Blocks of an untied ranking given the ranks of its positives.

    Parameters
    ----------
    positions : int array, the 0-based ranks (0 = top) of the positives, strictly
        ascending, in its first ``n_pos`` entries; every other rank below ``n_items`` holds
        a negative.
    block_pos, block_neg : int64 arrays of length >= n_items, filled in place (see
        :func:`blocks_from_row`).

    Returns
    -------
    int
        The number of blocks.

    Examples
    --------
    >>> bp, bn = np.zeros(5, np.int64), np.zeros(5, np.int64)
    >>> blocks_from_positions(np.array([0, 1, 3]), 3, 5, bp, bn)  # ranks 0, 1, 3 positive
    4
    >>> bp[:4].tolist(), bn[:4].tolist()
    ([2, 0, 1, 0], [0, 1, 0, 1])
    """
    nb = 0
    next_rank = 0
    for i in range(n_pos):
        nb = _push_block(block_pos, block_neg, nb, 0, positions[i] - next_rank)
        nb = _push_block(block_pos, block_neg, nb, 1, 0)
        next_rank = positions[i] + 1
    return _push_block(block_pos, block_neg, nb, 0, n_items - next_rank)


@njit(cache=True)
def untied_row(positions: np.ndarray, n_pos: int, n_neg: int, betas: np.ndarray, ks: np.ndarray, discounts: np.ndarray,
               area_out: np.ndarray, hits_out: np.ndarray, dcg_out: np.ndarray) -> None:
    """OPAUC areas and Top-K hits / DCG of an untied ranking, straight from its positives' ranks.

    The fast path of the uniform-ranking simulator; it equals :func:`blocks_from_positions`
    followed by ``area_curve_row(..., level=0, ...)`` and :func:`topk_row` (tested).  With
    ``a_i = positions[i] - i`` negatives above positive i (non-decreasing), the ROC area over
    the top c negatives is ``sum_i max(0, c - a_i)`` (exact for fractional c, Eq. 8), so a
    pointer over the positives serves every ascending beta; the top k holds the positives
    at ranks < k.

    Parameters
    ----------
    positions : int array, 0-based ranks of the positives, strictly ascending (first n_pos).
    betas : ascending floats in (0, 1]; ks : ascending ints; discounts : ``discount_table(m)``
        with m >= min(max(ks), n_pos + n_neg).
    area_out : (n_betas,) pair counts (divide by n_pos * n_neg for the raw OPAUC).
    hits_out, dcg_out : (n_ks,) hits and DCG in the top k.

    Examples
    --------
    >>> area, hits, dcg = np.zeros(1), np.zeros(1), np.zeros(1)
    >>> untied_row(np.array([0, 2]), 2, 2, np.array([1.0]), np.array([2]), discount_table(2),
    ...            area, hits, dcg)
    >>> area.tolist(), hits.tolist()  # 3 of 4 pairs ordered; one positive in the top 2
    ([3.0], [1.0])
    """
    i = 0
    sum_above = 0.0
    for b in range(betas.shape[0]):
        c = betas[b] * n_neg
        while i < n_pos and positions[i] - i < c:
            sum_above += positions[i] - i
            i += 1
        area_out[b] = i * c - sum_above
    j = 0
    dcg = 0.0
    for c in range(ks.shape[0]):
        k = ks[c]
        while j < n_pos and positions[j] < k:
            dcg += discounts[positions[j] + 1] - discounts[positions[j]]
            j += 1
        hits_out[c] = j
        dcg_out[c] = dcg


@njit(cache=True)
def _excess_integral(t0, slope, length, level):
    """Integral over x in [0, length] of max(t0 + slope * x - level, 0), slope >= 0."""
    if length <= 0.0:
        return 0.0
    if slope == 0.0:
        return max(t0 - level, 0.0) * length
    cross = (level - t0) / slope
    if cross <= 0.0:
        return (t0 - level) * length + 0.5 * slope * length * length
    if cross >= length:
        return 0.0
    rest = length - cross
    return 0.5 * slope * rest * rest


@njit(cache=True)
def area_curve_row(block_pos: np.ndarray, block_neg: np.ndarray, n_blocks: int, n_neg: int, betas: np.ndarray,
                   level: float, out: np.ndarray) -> None:
    """Area under the empirical ROC over FPR in [0, beta] and above TPR ``level``, in counts.

    Writes ``out[b] = integral_0^{beta_b n_neg} max(T(u) - level, 0) du`` for each beta_b,
    where u counts negatives and T(u) positives along the ROC walk of the blocks (tie groups
    are straight segments).  Dividing by n_pos * n_neg gives the raw OPAUC (level = 0,
    Eq. 7/8, exact for fractional beta * n_neg) or the raw TPAUC (level = alpha * n_pos).

    ``betas`` must be ascending in (0, 1]; ``out`` has the same length.

    Examples
    --------
    One positive tied with one negative: a diagonal ROC segment, area 1/2 at beta = 1.

    >>> out = np.zeros(2)
    >>> area_curve_row(np.array([1]), np.array([1]), 1, 1, np.array([0.5, 1.0]), 0.0, out)
    >>> out.tolist()
    [0.125, 0.5]
    """
    n_betas = betas.shape[0]
    b = 0
    u = 0.0
    t = 0.0
    area = 0.0
    if level == 0.0:
        # OPAUC, the hot path of the simulators: the whole segment is above the level, so
        # no clipping and no division per block (block areas q (t + p / 2) are exact).
        for k in range(n_blocks):
            p = block_pos[k]
            q = block_neg[k]
            if q == 0:
                t += p
                continue
            u_end = u + q
            while b < n_betas and betas[b] * n_neg <= u_end:
                x = betas[b] * n_neg - u
                out[b] = area + t * x + 0.5 * (p / q) * x * x
                b += 1
            if b == n_betas:
                return
            area += q * (t + 0.5 * p)
            u = u_end
            t += p
        while b < n_betas:
            out[b] = area
            b += 1
        return
    for k in range(n_blocks):
        p = block_pos[k]
        q = block_neg[k]
        if q == 0:
            t += p
            continue
        slope = p / q
        u_end = u + q
        while b < n_betas and betas[b] * n_neg <= u_end:
            out[b] = area + _excess_integral(t, slope, betas[b] * n_neg - u, level)
            b += 1
        if b == n_betas:
            return
        area += _excess_integral(t, slope, float(q), level)
        u = u_end
        t += p
    while b < n_betas:  # only reached through rounding at beta = 1
        out[b] = area
        b += 1


@njit(cache=True)
def discount_table(max_k: int) -> np.ndarray:
    """``D[k] = sum_{p=1..k} 1 / log2(p + 1)`` for k = 0..max_k (cumulative DCG discounts).

    Examples
    --------
    >>> discount_table(3).round(4).tolist()
    [0.0, 1.0, 1.6309, 2.1309]
    """
    table = np.zeros(max_k + 1)
    for p in range(1, max_k + 1):
        table[p] = table[p - 1] + 1.0 / np.log2(p + 1.0)
    return table


@njit(cache=True)
def topk_row(block_pos: np.ndarray, block_neg: np.ndarray, n_blocks: int, ks: np.ndarray, discounts: np.ndarray,
             hits_out: np.ndarray, dcg_out: np.ndarray, hit_prob_out: np.ndarray) -> None:
    """Expected hits, DCG and P(at least one hit) in the top k, for ascending ``ks``.

    Ties are broken uniformly at random and the expectation is taken exactly: in a block of
    p positives and q negatives starting after position s, each of its positions holds a
    positive with probability p / (p + q); the chance that its first t positions hold no
    positive is C(q, t) / C(p + q, t).  For untied rankings these are the plain values.
    ``discounts`` is ``discount_table(m)`` with m >= min(max(ks), n_items).
    A k beyond the ranking's length counts the whole ranking.

    Examples
    --------
    A tie group of one positive and one negative: each top position holds the positive with
    probability 1/2.

    >>> hits, dcg, hit = np.zeros(2), np.zeros(2), np.zeros(2)
    >>> topk_row(np.array([1]), np.array([1]), 1, np.array([1, 2]), discount_table(2),
    ...          hits, dcg, hit)
    >>> hits.tolist(), hit.tolist()
    ([0.5, 1.0], [0.5, 1.0])
    """
    n_ks = ks.shape[0]
    c = 0
    start = 0
    hits = 0.0
    dcg = 0.0
    for blk in range(n_blocks):
        p = block_pos[blk]
        q = block_neg[blk]
        size = p + q
        end = start + size
        frac = p / size
        while c < n_ks and ks[c] <= end:
            taken = ks[c] - start
            hits_out[c] = hits + frac * taken
            dcg_out[c] = dcg + frac * (discounts[ks[c]] - discounts[start])
            if hits > 0.0:
                hit_prob_out[c] = 1.0
            elif p == 0:
                hit_prob_out[c] = 0.0
            else:
                none = 1.0  # C(q, taken) / C(size, taken)
                for i in range(taken):
                    none *= (q - i) / (size - i)
                hit_prob_out[c] = 1.0 - none
            c += 1
        if c == n_ks:  # every k answered: later blocks may lie past the discount table
            return
        hits += p
        dcg += frac * (discounts[end] - discounts[start]) if p > 0 else 0.0
        start = end
    while c < n_ks:  # k beyond the ranking: the whole ranking is the top k
        hits_out[c] = hits
        dcg_out[c] = dcg
        hit_prob_out[c] = 1.0 if hits > 0.0 else 0.0
        c += 1


@njit(cache=True)
def topk_rank_row(block_pos: np.ndarray, block_neg: np.ndarray, n_blocks: int, ks: np.ndarray, rr_out: np.ndarray,
                  ap_out: np.ndarray) -> None:
    """Expected reciprocal rank and expected AP sum in the top k, for ascending ``ks``.

    ``rr_out[c]``: E[1 / rank of the first positive] if that rank is <= ks[c], else 0 (the
    per-ranking term of MRR@K).  ``ap_out[c]``: E[sum over positions i <= ks[c] holding a
    positive of Precision@i] (AP@K times the number of positives).  Expectations over
    uniformly random tie-breaking, exact: a tie group of p positives and q negatives (size
    s = p + q) starting after position ``start`` holds a positive at its t-th position with
    probability p / s; given that, each of its first t - 1 positions holds one with
    probability (p - 1) / (s - 1), so E[rel_i Hits@i] = p / s (above + 1 + (t - 1)(p - 1) /
    (s - 1)) with ``above`` the positives of the blocks above.  The first positive of the
    ranking lies in the first block holding one; it is at the block's t-th position with
    probability C(q, t - 1) / C(s, t - 1) * p / (s - t + 1).  Reads positions up to max(ks)
    only (O(max(ks)) per ranking); a k beyond the ranking counts the whole ranking.

    Examples
    --------
    Two tied items, one positive, then a positive: the first positive is at rank 1 or 2
    with probability 1/2 each, so E[RR@1] = 1/2 and E[RR@3] = (1 + 1/2) / 2 = 3/4.

    >>> bp, bn = np.array([1, 1]), np.array([1, 0])
    >>> rr, ap = np.zeros(2), np.zeros(2)
    >>> topk_rank_row(bp, bn, 2, np.array([1, 3]), rr, ap)
    >>> rr.tolist(), ap.tolist()
    ([0.5, 0.75], [0.5, 1.4166666666666665])
    """
    n_ks = ks.shape[0]
    c = 0
    start = 0      # positions above the current block
    above = 0      # positives above the current block
    rr = 0.0       # running E[RR] over the positions read so far
    ap = 0.0       # running E[sum of Precision@i over positive positions i]
    for blk in range(n_blocks):
        p = block_pos[blk]
        size = p + block_neg[blk]
        if p == 0:  # a run of negatives adds nothing; answer the ks that end inside it
            while c < n_ks and ks[c] <= start + size:
                rr_out[c] = rr
                ap_out[c] = ap
                c += 1
        else:
            frac = p / size
            others = (p - 1) / (size - 1) if size > 1 else 0.0
            none = 1.0  # P(the block's first t - 1 positions hold no positive)
            for t in range(1, size + 1):
                i = start + t
                ap += frac * (above + 1.0 + (t - 1) * others) / i
                if above == 0 and none > 0.0:  # the block that holds the first positive
                    rr += none * (p / (size - t + 1)) / i
                    none *= (size - p - t + 1) / (size - t + 1)
                while c < n_ks and ks[c] == i:
                    rr_out[c] = rr
                    ap_out[c] = ap
                    c += 1
                if c == n_ks:
                    return
        if c == n_ks:
            return
        above += p
        start += size
    while c < n_ks:  # k beyond the ranking: the whole ranking is the top k
        rr_out[c] = rr
        ap_out[c] = ap
        c += 1



# Items per chunk of top_candidates_row's first pass.  A compile-time constant, and 64:
# LLVM's vector loop takes 64 int32 keys per iteration (16 lanes, unrolled 4 times), so a
# run-time width or chunks of 32 leave the pass scalar (both measured about 5x slower).
SELECT_WIDTH = 64


@njit(cache=True)
def _chunk_max_keys(scores, out):
    """``out[c]`` = the largest order key of ``scores[c * W:(c + 1) * W]`` (W =
    ``SELECT_WIDTH``) for every chunk, the last one possibly shorter; returns the number
    of chunks.

    The order key of a float is its bit pattern read as a signed integer, with the
    magnitude bits flipped for negative numbers: integer order is then float order, and
    -0.0 takes +0.0's key so that the two stay tied as in float comparisons (NaN is not
    allowed).  A running maximum of integers vectorizes; LLVM leaves the float
    compare-and-select version scalar (measured 4x slower on 40,988 scores).
    """
    if scores.itemsize == 4:
        return _chunk_max_keys32(scores.view(np.int32), out)
    return _chunk_max_keys64(scores.view(np.int64), out)


@njit(cache=True)
def _key32(b):
    k = np.int32(b ^ np.int32(np.int32(b >> np.int32(31)) & np.int32(0x7FFFFFFF)))
    return np.int32(k + np.int32(k == np.int32(-1)))  # -0.0 -> +0.0


@njit(cache=True)
def _key64(b):
    k = b ^ ((b >> np.int64(63)) & np.int64(0x7FFFFFFFFFFFFFFF))
    return k + np.int64(k == np.int64(-1))  # -0.0 -> +0.0


@njit(cache=True)
def _chunk_max_keys32(bits, out):
    """:func:`_chunk_max_keys` on the bit patterns of float32 scores."""
    n_full = bits.shape[0] // SELECT_WIDTH
    for c in range(n_full):
        best = np.int32(-2147483648)
        for j in range(c * SELECT_WIDTH, (c + 1) * SELECT_WIDTH):  # constant trip count
            k = _key32(bits[j])
            best = k if k > best else best
        out[c] = best
    if n_full * SELECT_WIDTH == bits.shape[0]:
        return n_full
    best = np.int32(-2147483648)
    for j in range(n_full * SELECT_WIDTH, bits.shape[0]):
        k = _key32(bits[j])
        best = k if k > best else best
    out[n_full] = best
    return n_full + 1


@njit(cache=True)
def _chunk_max_keys64(bits, out):
    """:func:`_chunk_max_keys` on the bit patterns of float64 scores."""
    n_full = bits.shape[0] // SELECT_WIDTH
    for c in range(n_full):
        best = np.int64(-9223372036854775808)
        for j in range(c * SELECT_WIDTH, (c + 1) * SELECT_WIDTH):
            k = _key64(bits[j])
            best = k if k > best else best
        out[c] = best
    if n_full * SELECT_WIDTH == bits.shape[0]:
        return n_full
    best = np.int64(-9223372036854775808)
    for j in range(n_full * SELECT_WIDTH, bits.shape[0]):
        k = _key64(bits[j])
        best = k if k > best else best
    out[n_full] = best
    return n_full + 1


@njit(cache=True)
def _float_to_key(x, like):
    """The order key (see ``_chunk_max_keys``) of the float ``x`` in the dtype of ``like``, a
    one-element scratch array (overwritten)."""
    like[0] = x
    if like.itemsize == 4:
        return np.int64(_key32(like.view(np.int32)[0]))
    return _key64(like.view(np.int64)[0])


@njit(cache=True)
def _key_to_float(key, like):
    """The float whose order key (see ``_chunk_max_keys``) is ``key``; ``like`` is a
    one-element scratch array of the scores' dtype, overwritten."""
    if like.itemsize == 4:
        bits = like.view(np.int32)
        k = np.int32(key)
        bits[0] = np.int32(k ^ np.int32(np.int32(k >> np.int32(31)) & np.int32(0x7FFFFFFF)))
    else:
        bits = like.view(np.int64)
        k = np.int64(key)
        bits[0] = k ^ ((k >> np.int64(63)) & np.int64(0x7FFFFFFFFFFFFFFF))
    return like[0]


@njit(cache=True)
def _kth_largest(values, n, k):
    """The k-th largest (1-based) of ``values[:n]``, 1 <= k <= n; reorders ``values[:n]``.

    Quickselect with a median-of-three pivot and a three-way partition (greater | equal |
    less), so runs of tied values cost one pass; expected O(n)."""
    lo = 0
    hi = n - 1
    target = k - 1  # index in descending order
    while lo < hi:
        a = values[lo]
        b = values[(lo + hi) >> 1]
        c = values[hi]
        if a < b:
            a, b = b, a
        if b < c:  # b = median of the three
            b = min(a, c)
        pivot = b
        below = lo  # values[lo:below] > pivot
        i = lo
        above = hi  # values[above + 1:hi + 1] < pivot
        while i <= above:
            v = values[i]
            if v > pivot:
                values[i] = values[below]
                values[below] = v
                below += 1
                i += 1
            elif v < pivot:
                values[i] = values[above]
                values[above] = v
                above -= 1
            else:
                i += 1
        if target < below:
            hi = below - 1
        elif target > above:
            lo = above + 1
        else:
            return pivot
    return values[lo]


# Bit scan by de Bruijn multiplication: _DEBRUIJN_INDEX[((m & -m) * _DEBRUIJN) >> 58] is the
# index of the lowest set bit of a uint64 m != 0 (numba has no count-trailing-zeros).
_DEBRUIJN = np.uint64(0x03F79D71B4CB0A89)
_DEBRUIJN_INDEX = np.zeros(64, np.int64)
_DEBRUIJN_INDEX[[((1 << i) * 0x03F79D71B4CB0A89 % 2 ** 64) >> 58 for i in range(64)]] = np.arange(64)


@njit(cache=True)
def _hit_mask(scores, first, bound):
    """Bit j set iff ``scores[first + j] >= bound`` and > -inf, for j < 64 (a vectorized
    compare with a constant trip count; one uint64 per chunk)."""
    mask = np.uint64(0)
    for j in range(64):
        x = scores[first + j]
        mask |= np.uint64((x >= bound) & (x > -np.inf)) << np.uint64(j)
    return mask


@njit(cache=True)
def top_candidates_row(scores: np.ndarray, r: int, chunk_keys: np.ndarray, idx_out: np.ndarray, vals_out: np.ndarray
                       ) -> tuple[int, float]:
    """Every item of a ranking that can hold one of its top ``r`` positions, without a sort.

    The items whose score is >= the r-th largest score ``s_(r)``: the top r plus every item
    tied with ``s_(r)``, so that the blocks of these items (``blocks_from_row`` on them,
    highest first) are the blocks of the whole ranking down to position r, with ties exactly
    as in the full ranking.  The Top-K metrics with K <= r (Eqs. 16-18) and the OPAUC area
    over the top ``r - n_pos`` negatives (Eq. 8) need nothing else.  Items with score -inf
    are not part of the ranking (mark left-out items, e.g. training items in a full-ranking
    evaluation, with -inf); they are never returned.

    Two passes: the maxima of fixed chunks of 64 items (vectorized, on integer order keys);
    the r-th largest chunk maximum is a lower bound of ``s_(r)`` (r distinct items reach
    it), so only the chunks whose maximum reaches that bound are read item by item; a
    quickselect on the few items found gives ``s_(r)`` exactly.  About O(n_items + 64 r).

    Parameters
    ----------
    scores : float array (n_items,); no NaN.
    r : int >= 1.
    chunk_keys : int64 scratch of length >= n_items // 64 + 1.
    idx_out : int64 array of length >= n_items; receives the item indices, ascending.
    vals_out : float64 scratch of length >= n_items.

    Returns
    -------
    (n_cand, threshold) : the items are ``idx_out[:n_cand]``; ``threshold`` is ``s_(r)``, or
    -inf when fewer than r items have a score above -inf (then all of them are returned).

    Examples
    --------
    The top 2 of five scores, with a tie at the second place (both tied items returned):

    >>> scores = np.array([0.1, 0.7, 0.3, 0.7, 0.9])
    >>> idx, vals = np.empty(5, np.int64), np.empty(5)
    >>> n, threshold = top_candidates_row(scores, 2, np.empty(1, np.int64), idx, vals)
    >>> idx[:n].tolist(), float(threshold)
    ([1, 3, 4], 0.7)
    """
    n_items = scores.shape[0]
    n_chunks = _chunk_max_keys(scores, chunk_keys)
    # Lower bound of s_(r): the r-th largest chunk maximum (r distinct items reach it).
    # Chunks of left-out items only (-inf, the smallest key of a non-NaN) do not count.
    one = np.empty(1, scores.dtype)
    minus_inf = _float_to_key(-np.inf, one)
    n_live = 0
    for c in range(n_chunks):
        if chunk_keys[c] > minus_inf:
            idx_out[n_live] = chunk_keys[c]  # idx_out is free until the second pass
            n_live += 1
    bound_key = _kth_largest(idx_out, n_live, r) if n_live >= r else minus_inf
    bound = _key_to_float(bound_key, one)
    n = 0
    for c in range(n_chunks):
        if chunk_keys[c] < bound_key or chunk_keys[c] == minus_inf:
            continue
        first = c * SELECT_WIDTH
        if first + SELECT_WIDTH <= n_items:
            # The chunk's items >= bound as bits (vectorized), then one step per item found,
            # instead of a compare-and-branch per item.
            mask = _hit_mask(scores, first, bound)
            while mask != np.uint64(0):
                lowest = mask & (~mask + np.uint64(1))
                j = first + _DEBRUIJN_INDEX[(lowest * _DEBRUIJN) >> np.uint64(58)]
                idx_out[n] = j
                vals_out[n] = scores[j]
                n += 1
                mask ^= lowest
        else:  # the last, shorter chunk
            for j in range(first, n_items):
                x = scores[j]
                if x >= bound and x > -np.inf:
                    idx_out[n] = j
                    vals_out[n] = x
                    n += 1
    if n < r:
        return n, -np.inf
    threshold = _kth_largest(vals_out, n, r)
    keep = 0
    for t in range(n):
        j = idx_out[t]
        if scores[j] >= threshold:
            idx_out[keep] = j
            keep += 1
    return keep, threshold


# --------------------------------------------------------------------------------------
# Batch kernels
# --------------------------------------------------------------------------------------
@njit(cache=True)
def _scan_rows(first, last, labels, scores, n_pos_out, bad_out):
    """Rows first..last-1: number of positives and whether any score is non-finite.

    Both are reductions over a contiguous row (the integer OR of ``x - x != 0``, true for
    NaN and +-inf), which LLVM vectorizes: one pass over the data instead of numpy's
    ``isfinite(...).all()`` plus ``count_nonzero(..., axis=1)``."""
    n_items = labels.shape[1]
    for r in range(first, last):
        n_pos = 0
        bad = 0
        for j in range(n_items):
            n_pos += np.int64(labels[r, j])
            x = scores[r, j]
            bad |= np.int64(x - x != 0.0)
        n_pos_out[r] = n_pos
        bad_out[r] = bad


@njit(parallel=True, cache=True)
def _scan_kernel(labels, scores, n_pos_out, bad_out):
    """:func:`_scan_rows` over fixed chunks of rankings, in parallel."""
    n_rows = labels.shape[0]
    n_chunks = (n_rows + _CHUNK_ROWS - 1) // _CHUNK_ROWS
    for chunk in prange(n_chunks):
        _scan_rows(chunk * _CHUNK_ROWS, min(n_rows, (chunk + 1) * _CHUNK_ROWS), labels, scores,
                   n_pos_out, bad_out)


@njit(parallel=True, cache=True)
def _gather_positives(labels, scores, pos_out):
    """Copy each row's positive scores (``labels`` 1; every other label must be 0) to the
    left of ``pos_out``; pad the rest with +inf.

    The padding keeps the real scores first after an ascending sort (scores are checked
    finite before this point).
    """
    n_rows, n_items = labels.shape
    n_chunks = (n_rows + _CHUNK_ROWS - 1) // _CHUNK_ROWS
    for chunk in prange(n_chunks):
        for r in range(chunk * _CHUNK_ROWS, min(n_rows, (chunk + 1) * _CHUNK_ROWS)):
            # Branch-free: write every score at the cursor, advance it past positives only
            # (the row has room: n_pos + SENTINELS entries, and the cursor stays <= n_pos).
            ip = np.uint64(0)  # unsigned: no wraparound check (see blocks_from_row)
            for j in range(n_items):
                pos_out[r, ip] = scores[r, j]
                ip += np.uint64(labels[r, j])
            pos_out[r, ip:] = np.inf


@njit(cache=True)
def _metrics_rows(first, last, scores, labels, pos_sorted, n_pos, betas, levels, ks, discounts,
                  area_out, hits_out, dcg_out, hit_prob_out, rank, rr_out, ap_out):
    """Rows first..last-1: one bucketing pass per ranking, then every requested metric
    (``rank``: also ``topk_rank_row`` into rr_out, ap_out)."""
    n_items = scores.shape[1]
    counts = np.empty(2 * pos_sorted.shape[1] + 2, np.int64)
    grid_buffer = np.empty(2 * pos_sorted.shape[1] + 2, np.int64)
    block_pos = np.empty(n_items, np.int64)
    block_neg = np.empty(n_items, np.int64)
    for r in range(first, last):
        grid = grid_buffer[: 2 * n_pos[r] + 2]
        nb, n_neg = blocks_from_row(scores[r], labels[r], pos_sorted[r], n_pos[r],
                                    grid, counts, block_pos, block_neg)
        if betas.shape[0] > 0:
            for lv in range(levels.shape[0]):
                area_curve_row(block_pos, block_neg, nb, n_neg, betas,
                               levels[lv] * n_pos[r], area_out[r, lv])
        if ks.shape[0] > 0:
            topk_row(block_pos, block_neg, nb, ks, discounts,
                     hits_out[r], dcg_out[r], hit_prob_out[r])
            if rank:
                topk_rank_row(block_pos, block_neg, nb, ks, rr_out[r], ap_out[r])


@njit(parallel=True, cache=True)
def _metrics_kernel(scores, labels, pos_sorted, n_pos, betas, levels, ks, discounts,
                    area_out, hits_out, dcg_out, hit_prob_out, rank, rr_out, ap_out):
    """:func:`_metrics_rows` over fixed chunks of rankings, in parallel."""
    n_rows = scores.shape[0]
    n_chunks = (n_rows + _CHUNK_ROWS - 1) // _CHUNK_ROWS
    for chunk in prange(n_chunks):
        _metrics_rows(chunk * _CHUNK_ROWS, min(n_rows, (chunk + 1) * _CHUNK_ROWS), scores, labels,
                      pos_sorted, n_pos, betas, levels, ks, discounts,
                      area_out, hits_out, dcg_out, hit_prob_out, rank, rr_out, ap_out)


# --------------------------------------------------------------------------------------
# Validation (one path for every public function)
# --------------------------------------------------------------------------------------
def _by_chunks(rows_kernel, parallel_kernel, n_rows):
    """The parallel kernel, or for one chunk of rows or less the serial ``rows_kernel`` on
    rows 0..n_rows-1: the parallel launch costs more than the work there."""
    return parallel_kernel if n_rows > _CHUNK_ROWS else partial(rows_kernel, 0, n_rows)


def _check_rankings(y_true, y_score):
    """Validate labels and scores.

    Returns 2-D C-contiguous (bool, float64) arrays, a 'single' flag (the input was 1-D) and
    the number of positives of each row (int64), counted in the same pass that checks the
    scores are finite.
    """
    y_true = np.asarray(y_true)
    y_score = np.asarray(y_score)
    if y_true.ndim not in (1, 2):
        raise ValueError(f"y_true must be 1-D (one ranking) or 2-D (n_lists, n_items); got ndim={y_true.ndim}")
    if y_true.shape != y_score.shape:
        raise ValueError(f"y_true and y_score must have the same shape; got {y_true.shape} and {y_score.shape}")
    if y_true.shape[-1] == 0:
        raise ValueError("y_true and y_score must hold at least one item per ranking")
    if y_true.dtype != np.bool_:
        if not (np.issubdtype(y_true.dtype, np.integer) or np.issubdtype(y_true.dtype, np.floating)):
            raise ValueError(f"y_true must be boolean or contain only 0 and 1; got dtype {y_true.dtype}")
        if not np.all((y_true == 0) | (y_true == 1)):
            raise ValueError("y_true must be boolean or contain only 0 and 1")
        y_true = y_true == 1
    if not (np.issubdtype(y_score.dtype, np.floating) or np.issubdtype(y_score.dtype, np.integer)):
        raise ValueError(f"y_score must be numeric; got dtype {y_score.dtype}")
    single = y_true.ndim == 1
    y_true = np.ascontiguousarray(np.atleast_2d(y_true))
    y_score = np.ascontiguousarray(np.atleast_2d(y_score), dtype=np.float64)
    n_rows = y_true.shape[0]
    n_pos = np.empty(n_rows, np.int64)
    bad = np.empty(n_rows, np.int64)
    _by_chunks(_scan_rows, _scan_kernel, n_rows)(y_true.view(np.int8), y_score, n_pos, bad)
    if bad.any():
        r = int(np.flatnonzero(bad)[0])
        j = int(np.flatnonzero(~np.isfinite(y_score[r]))[0])
        where = (j,) if single else (r, j)
        raise ValueError(f"y_score must be finite (no NaN or inf); found {y_score[r, j]} at index {where}")
    return y_true, y_score, single, n_pos



def _undefined_rows(mask, on_undefined, what):
    """Raise for the first undefined row, or return the mask for NaN filling."""
    check_choice(on_undefined, "on_undefined", ON_UNDEFINED)
    if on_undefined == "raise" and mask.any():
        row = int(np.flatnonzero(mask)[0])
        raise ValueError(f"ranking (row) {row} has {what}: the metric is undefined there; "
                         "pass on_undefined='nan' to get NaN for such rows")
    return mask


# --------------------------------------------------------------------------------------
# One pass for a batch of rankings
# --------------------------------------------------------------------------------------
class RankingMetrics(NamedTuple):
    """Raw per-ranking quantities from one pass; see :func:`ranking_metrics`."""

    n_pos: np.ndarray          # (n_lists,) positives per ranking
    n_neg: np.ndarray          # (n_lists,) negatives per ranking
    betas: np.ndarray          # (n_betas,) as given
    area: np.ndarray           # (n_lists, n_levels, n_betas) ROC area above each TPR level, in pair counts
    ks: np.ndarray             # (n_ks,) as given
    hits: np.ndarray           # (n_lists, n_ks) expected number of positives in the top k
    dcg: np.ndarray            # (n_lists, n_ks) expected DCG@k (binary gains)
    hit_prob: np.ndarray       # (n_lists, n_ks) P(at least one positive in the top k)
    rr: np.ndarray | None = None      # (n_lists, n_ks) E[reciprocal rank of the first positive, 0 beyond k]
    ap_sum: np.ndarray | None = None  # (n_lists, n_ks) E[sum of Precision@i over positive ranks i <= k]


def _sort_rows(matrix):
    """Sort each row ascending in place with numpy's SIMD sort, two threads (it drops the GIL)."""
    n_rows = matrix.shape[0]
    if n_rows < 256 or matrix.shape[1] < 2:
        matrix.sort(axis=1)
        return
    halves = [matrix[: n_rows // 2], matrix[n_rows // 2:]]
    with ThreadPoolExecutor(max_workers=2) as pool:
        list(pool.map(lambda part: part.sort(axis=1), halves))


def ranking_metrics(y_true: np.ndarray, y_score: np.ndarray, betas=(), ks=(), levels=(0.0,), *,
                    rank_quantities: bool = False) -> RankingMetrics:
    """Compute every block-based quantity of a batch of rankings in one pass.

    One sort of each ranking's positive scores (numpy's SIMD sort, values only), then one
    numba pass per ranking that places each negative between the sorted positives by binary
    search (the negatives are never sorted), parallel over fixed chunks of rankings.

    Parameters
    ----------
    y_true : array of shape (n_items,) or (n_lists, n_items), bool or 0/1.
    y_score : array of the same shape, finite floats; higher ranks first.
    betas : sequence of float in (0, 1], optional
        FPR limits for the ROC areas (any order).
    ks : sequence of int >= 1, optional
        Cut-offs for the Top-K quantities (any order).
    levels : sequence of float in [0, 1]
        TPR levels alpha; ``area[:, l, b]`` is the ROC area over FPR in [0, beta_b] above
        TPR alpha_l, in pair counts (divide by n_pos * n_neg).  Level 0 is OPAUC.
    rank_quantities : bool, default False
        Also the expected reciprocal rank and AP sum (fields ``rr``, ``ap_sum``, from
        :func:`topk_rank_row`); else those fields are None.

    Returns
    -------
    RankingMetrics
        Raw counts; the public metric functions normalise them and handle undefined rows.

    Examples
    --------
    >>> rm = ranking_metrics([True, False, True], [0.9, 0.8, 0.1], betas=[1.0], ks=[1, 2])
    >>> rm.area.tolist(), rm.hits.tolist()  # AUC 1/2 (in pairs: 1 of 2); hits at k = 1, 2
    ([[[1.0]]], [[1.0, 1.0]])
    """
    y_true, y_score, _, n_pos = _check_rankings(y_true, y_score)
    return _ranking_metrics(y_true, y_score, n_pos, betas, ks, levels, rank=rank_quantities)


def _ranking_metrics(y_true, y_score, n_pos, betas=(), ks=(), levels=(0.0,), rank=False):
    """:func:`ranking_metrics` on inputs checked by ``_check_rankings`` (which counts
    ``n_pos``)."""
    betas = check_betas(betas, min_size=0)
    ks = check_ks(ks)
    levels = check_grid(levels, "levels (TPR levels alpha)",
                        partial(check_fraction, allow_zero=True), min_size=0)
    n_rows, n_items = y_true.shape
    labels = y_true.view(np.int8)  # bool is one byte: 1 = positive, 0 = negative
    n_neg = n_items - n_pos
    pos = np.empty((n_rows, (int(n_pos.max()) if n_rows else 0) + SENTINELS))  # + sentinels
    _gather_positives(labels, y_score, pos)
    _sort_rows(pos)

    beta_order = np.argsort(betas, kind="stable")
    k_order = np.argsort(ks, kind="stable")
    sorted_ks = ks[k_order]
    discounts = discount_table(int(min(sorted_ks[-1], n_items)) if ks.size else 0)
    area = np.zeros((n_rows, levels.size, betas.size))
    hits = np.zeros((n_rows, ks.size))
    dcg = np.zeros((n_rows, ks.size))
    hit_prob = np.zeros((n_rows, ks.size))
    rr = np.zeros((n_rows, ks.size) if rank else (0, 0))
    ap_sum = np.zeros((n_rows, ks.size) if rank else (0, 0))
    # ks beyond the ranking are clipped for the kernel's discount lookups and restored after.
    _by_chunks(_metrics_rows, _metrics_kernel, n_rows)(
        y_score, labels, pos, n_pos, betas[beta_order], levels, np.minimum(sorted_ks, n_items),
        discounts, area, hits, dcg, hit_prob, bool(rank), rr, ap_sum)
    if np.any(beta_order != np.arange(betas.size)):
        area[:, :, beta_order] = area.copy()
    if np.any(k_order != np.arange(ks.size)):
        for out in (hits, dcg, hit_prob) + ((rr, ap_sum) if rank else ()):
            out[:, k_order] = out.copy()
    return RankingMetrics(n_pos, n_neg, betas, area, ks, hits, dcg, hit_prob,
                          rr if rank else None, ap_sum if rank else None)


def _finish(values, single):
    return float(values[0]) if single else values


# --------------------------------------------------------------------------------------
# Conversions between OPAUC conventions
# --------------------------------------------------------------------------------------
def normalize_opauc(raw, beta, normalize: str) -> float | np.ndarray:
    """Convert a raw OPAUC (area in [0, beta]) to the named convention.

    ``"none"``: the raw area, range [0, beta] (paper Eq. 8).
    ``"beta"``: raw / beta, range [0, 1].
    ``"mcclish"``: 1/2 (1 + (raw - beta^2/2) / (beta - beta^2/2)) (paper Eqs. 10-11 with
    McClish's chance minimum beta^2/2 and maximum beta), the value of scikit-learn's
    ``roc_auc_score(max_fpr=beta)``; 1/2 at chance, 1 for a perfect ranking.
    Each is a positive affine map of the raw value, so Pearson correlations agree.

    Examples
    --------
    >>> normalize_opauc(0.05, 0.1, "beta"), normalize_opauc(0.005, 0.1, "mcclish")
    (0.5, 0.5)
    """
    check_choice(normalize, "normalize", OPAUC_NORMALIZATIONS)
    beta = np.asarray(beta, dtype=np.float64)
    raw = np.asarray(raw, dtype=np.float64)
    if normalize == "none":
        out = raw
    elif normalize == "beta":
        out = raw / beta
    else:
        chance = 0.5 * beta * beta
        out = 0.5 * (1.0 + (raw - chance) / (beta - chance))
    return float(out) if out.ndim == 0 else out


def raw_opauc(value, beta, normalize: str) -> float | np.ndarray:
    """Inverse of :func:`normalize_opauc`: the raw OPAUC area from a normalised value.

    Examples
    --------
    >>> raw_opauc(0.5, 0.1, "mcclish")  # chance level: beta^2 / 2
    0.005
    """
    check_choice(normalize, "normalize", OPAUC_NORMALIZATIONS)
    beta = np.asarray(beta, dtype=np.float64)
    value = np.asarray(value, dtype=np.float64)
    if normalize == "none":
        out = value
    elif normalize == "beta":
        out = value * beta
    else:
        chance = 0.5 * beta * beta
        out = (2.0 * value - 1.0) * (beta - chance) + chance
    return float(out) if out.ndim == 0 else out


# --------------------------------------------------------------------------------------
# Public metrics
# --------------------------------------------------------------------------------------
def _pairwise_defined(rm, on_undefined):
    missing_pos = rm.n_pos == 0
    missing_neg = rm.n_neg == 0
    _undefined_rows(missing_pos, on_undefined, "no positive item")
    _undefined_rows(missing_neg, on_undefined, "no negative item")
    return missing_pos | missing_neg


def opauc_curve(y_true: np.ndarray, y_score: np.ndarray, betas, normalize: str = "none", *,
                on_undefined: str = "raise") -> np.ndarray:
    """One-way partial AUC for a grid of betas, from one sort per ranking.

    ``OPAUC(beta) = integral_0^beta TPR(FPR^{-1}(s)) ds`` (paper Eq. 7 with alpha = 0),
    computed exactly as the area under the empirical ROC curve, whose tie groups are diagonal
    segments (scikit-learn's convention).  For n_neg * beta an integer and no group of tied
    (positive, negative) scores straddling the cut, it is Eq. 8,
    ``1/(n_pos n_neg) #{(i, j): j among the top n_neg*beta negatives, r_i > r_j}`` with
    tied pairs counting 1/2; for fractional n_neg * beta the next negative gets the
    fractional weight; a cut inside a tie group integrates the diagonal up to the cut
    (e.g. ``opauc([1, 0, 0], [0, 0, 0], 0.5) = 0.125``).  Top-K metrics, by contrast, treat
    ties by uniformly random tie-breaking (see the module docstring).

    Parameters
    ----------
    y_true, y_score : see module docstring.
    betas : sequence of float in (0, 1]
    normalize : {"none", "beta", "mcclish"}
        "none" is the raw area, range [0, beta]; "beta" divides by beta, range [0, 1];
        "mcclish" is scikit-learn's ``roc_auc_score(max_fpr=beta)``, range [0, 1] with
        1/2 at chance (see :func:`normalize_opauc`).
    on_undefined : {"raise", "nan"}
        A ranking without positives or without negatives raises ValueError, or gives NaN.

    Returns
    -------
    ndarray of shape (n_betas,) for one ranking, (n_lists, n_betas) for a batch.

    Examples
    --------
    >>> opauc_curve([True, False, True, False], [0.9, 0.8, 0.7, 0.1], [0.5, 1.0])
    array([0.25, 0.75])
    """
    check_choice(normalize, "normalize", OPAUC_NORMALIZATIONS)
    betas = check_betas(betas)
    y_true, y_score, single, n_pos = _check_rankings(y_true, y_score)
    rm = _ranking_metrics(y_true, y_score, n_pos, betas=betas)
    bad = _pairwise_defined(rm, on_undefined)
    with np.errstate(divide="ignore", invalid="ignore"):
        raw = rm.area[:, 0, :] / (rm.n_pos * rm.n_neg)[:, None]
    values = normalize_opauc(raw, rm.betas[None, :], normalize)
    values[bad] = np.nan
    return values[0] if single else values


def opauc(y_true: np.ndarray, y_score: np.ndarray, beta: float, normalize: str = "none", *,
          on_undefined: str = "raise") -> float | np.ndarray:
    """One-way partial AUC, OPAUC(beta), paper Eqs. 7-8 (see :func:`opauc_curve`).

    Raw range [0, beta] (``normalize="none"``, the paper's Eq. 8); ``"beta"`` divides by
    beta; ``"mcclish"`` equals scikit-learn's ``roc_auc_score(max_fpr=beta)``.

    Examples
    --------
    >>> opauc([True, False, True, False], [0.9, 0.8, 0.7, 0.1], 0.5)
    0.25
    >>> opauc([1, 0, 0], [0, 0, 0], 0.5)  # a cut inside a tie group: the diagonal's area
    0.125
    """
    beta = check_fraction(beta, "beta")
    values = opauc_curve(y_true, y_score, [beta], normalize, on_undefined=on_undefined)
    return _finish(values[..., 0].reshape(-1), np.ndim(values) == 1)


def auc(y_true: np.ndarray, y_score: np.ndarray, *, on_undefined: str = "raise"
        ) -> float | np.ndarray:
    """Area under the ROC curve, paper Eq. 6: ``P(r_i > r_j) + P(r_i = r_j) / 2``.

    The Mann-Whitney statistic over (positive, negative) pairs; equals OPAUC(1) and
    scikit-learn's ``roc_auc_score``.  Range [0, 1].

    Examples
    --------
    >>> auc([True, False, True, False], [0.9, 0.8, 0.7, 0.1])
    0.75
    >>> auc([[True, False], [True, True]], [[0.2, 0.2], [0.1, 0.3]], on_undefined="nan")
    array([0.5, nan])
    """
    return opauc(y_true, y_score, 1.0, on_undefined=on_undefined)


def tpauc(y_true: np.ndarray, y_score: np.ndarray, alpha: float, beta: float, *,
          on_undefined: str = "raise") -> float | np.ndarray:
    """Two-way partial AUC: ROC area inside TPR >= alpha and FPR <= beta (raw area).

    ``TPAUC = integral_0^beta max(TPR(FPR^{-1}(s)) - alpha, 0) ds``, range
    [0, beta (1 - alpha)] (Yang et al., ICML 2021).  ``alpha = 0`` gives OPAUC(beta), so
    alpha may be 0 here: alpha in [0, 1], beta in (0, 1].  Ties count 1/2 (diagonal ROC).

    Examples
    --------
    >>> tpauc([True, False, True, False], [0.9, 0.8, 0.7, 0.1], 0.5, 1.0)
    0.25
    """
    alpha = check_fraction(alpha, "alpha", allow_zero=True)
    beta = check_fraction(beta, "beta")
    y_true, y_score, single, n_pos = _check_rankings(y_true, y_score)
    rm = _ranking_metrics(y_true, y_score, n_pos, betas=[beta], levels=[alpha])
    bad = _pairwise_defined(rm, on_undefined)
    with np.errstate(divide="ignore", invalid="ignore"):
        values = rm.area[:, 0, 0] / (rm.n_pos * rm.n_neg)
    values[bad] = np.nan
    return _finish(values, single)


def llpauc(y_true: np.ndarray, y_score: np.ndarray, alpha: float, beta: float, *,
           on_undefined: str = "raise") -> float | np.ndarray:
    """Lower-left partial AUC: ROC area inside TPR <= alpha and FPR <= beta (raw area).

    ``LLPAUC = integral_0^beta min(TPR(FPR^{-1}(s)), alpha) ds`` = OPAUC(beta) minus the
    two-way area above alpha; range [0, alpha beta] (Shi et al., WWW 2024).  ``alpha = 1``
    gives OPAUC(beta).  alpha and beta in (0, 1].  Ties count 1/2.

    Examples
    --------
    >>> llpauc([True, False, True, False], [0.9, 0.8, 0.7, 0.1], 0.5, 1.0)
    0.5
    """
    alpha = check_fraction(alpha, "alpha")
    beta = check_fraction(beta, "beta")
    y_true, y_score, single, n_pos = _check_rankings(y_true, y_score)
    rm = _ranking_metrics(y_true, y_score, n_pos, betas=[beta], levels=[0.0, alpha])
    bad = _pairwise_defined(rm, on_undefined)
    with np.errstate(divide="ignore", invalid="ignore"):
        values = (rm.area[:, 0, 0] - rm.area[:, 1, 0]) / (rm.n_pos * rm.n_neg)
    values[bad] = np.nan
    return _finish(values, single)


# --------------------------------------------------------------------------------------
# Top-K metrics: one table
# --------------------------------------------------------------------------------------
#: Per-ranking Top-K quantities, in the order the row kernels write them: :func:`topk_row`
#: gives ``hits`` (expected positives in the top k), ``dcg`` (expected DCG@k, binary gains)
#: and ``hit_prob`` (P(a positive in the top k)); :func:`topk_rank_row` gives ``rr``
#: (expected reciprocal rank of the first positive, 0 beyond k) and ``ap_sum`` (expected
#: sum of Precision@i over the ranks i <= k holding a positive).
TOPK_SOURCES = ("hits", "dcg", "hit_prob", "rr", "ap_sum")
#: Sources that need :func:`topk_rank_row` (computed only when a metric asks for them).
RANK_SOURCES = ("rr", "ap_sum")
#: Denominators of the Top-K metrics (see :func:`topk_denominator`).
TOPK_NORMALIZATIONS = ("k", "positives", "min_k_positives", "ideal_dcg", "none")


@dataclass(frozen=True)
class TopKMetric:
    """One row of the Top-K metric table :data:`TOPK_METRICS`.

    A Top-K metric of a ranking is ``source / denominator``: a per-ranking quantity of
    :data:`TOPK_SOURCES` (an expectation over uniformly random tie-breaking, computed
    exactly by the row kernels) divided by a denominator of :data:`TOPK_NORMALIZATIONS`.
    The public ``*_at_k`` functions, :func:`simulations.correlation.topk_correlations` and
    :func:`training.evaluation.evaluate_full_ranking` all read this table, so a metric built
    from an existing source is one new row.

    Attributes
    ----------
    name : str
        Key of the table, the ``metric`` column of the correlation study and the prefix of
        the evaluation's keys (``recall@20``).
    source : str
        One of :data:`TOPK_SOURCES`.
    normalization : str
        One of :data:`TOPK_NORMALIZATIONS`.
    needs_positives : bool
        Undefined for a ranking without positives (``on_undefined`` decides), else 0 there.
    convention : str
        Which library's convention it follows, for the docs.
    doc : str
        One line: what it measures.
    """

    name: str
    source: str
    normalization: str
    needs_positives: bool
    convention: str
    doc: str


TOPK_METRICS: dict[str, TopKMetric] = {m.name: m for m in (
    TopKMetric("precision", "hits", "k", False, "paper Appendix C; a k beyond the ranking "
               "still divides by k", "Precision@K = hits in the top k / k"),
    TopKMetric("recall", "hits", "positives", True, "paper Appendix C (denominator n_pos)",
               "Recall@K = hits in the top k / n_pos"),
    TopKMetric("ndcg", "dcg", "ideal_dcg", True, "scikit-learn's ndcg_score (binary gains, "
               "ignore_ties=False)", "NDCG@K = DCG@k / ideal DCG@min(k, n_pos)"),
    TopKMetric("hit_rate", "hit_prob", "none", False, "ranx hit_rate",
               "Hit rate@K = P(a positive in the top k)"),
    TopKMetric("mrr", "rr", "none", True, "ranx / trec_eval reciprocal rank (recip_rank)",
               "MRR@K = 1 / rank of the first positive if within the top k, else 0"),
    TopKMetric("map", "ap_sum", "positives", True, "ranx map@k / trec_eval map_cut_k: "
               "divided by the number of positives, not min(k, n_pos)",
               "AP@K = sum of Precision@i over positive ranks i <= k / n_pos"),
)}


def topk_denominator(normalization: str, k, n_pos, discounts: np.ndarray | None = None
                     ) -> np.ndarray:
    """The denominator of a Top-K metric (:class:`TopKMetric`), broadcast over k and n_pos.

    ``"k"``: k; ``"positives"``: n_pos; ``"min_k_positives"``: min(k, n_pos);
    ``"ideal_dcg"``: ``discounts[min(k, n_pos)]``, the DCG of a perfect ranking (Eq. 18's
    normaliser); ``"none"``: 1.  Returned as float64, so ``source / denominator`` is the
    same float whoever divides.

    Parameters
    ----------
    normalization : str
        One of :data:`TOPK_NORMALIZATIONS`.
    k, n_pos : int or integer arrays (broadcast together)
    discounts : float array, optional
        ``discount_table(m)`` with m >= max(min(k, n_pos)); computed when omitted.

    Examples
    --------
    >>> topk_denominator("min_k_positives", np.array([1, 5]), 3)
    array([1., 3.])
    >>> float(topk_denominator("ideal_dcg", 2, 5))  # 1 + 1 / log2(3)
    1.6309297535714575
    """
    check_choice(normalization, "normalization", TOPK_NORMALIZATIONS)
    k = np.asarray(k)
    n_pos = np.asarray(n_pos)
    if normalization == "k":
        out = k + np.zeros_like(n_pos)
    elif normalization == "positives":
        out = n_pos + np.zeros_like(k)
    elif normalization == "min_k_positives":
        out = np.minimum(k, n_pos)
    elif normalization == "ideal_dcg":
        cut = np.minimum(k, n_pos).astype(np.int64)
        if discounts is None:
            discounts = discount_table(int(cut.max(initial=0)))
        out = discounts[cut]
    else:
        out = np.ones(np.broadcast_shapes(k.shape, n_pos.shape))
    return np.asarray(out, dtype=np.float64)


def _topk_metric(name, y_true, y_score, k, on_undefined="raise", normalization=None):
    """A Top-K metric of :data:`TOPK_METRICS` at one k: one path for every public function."""
    metric = TOPK_METRICS[name]
    k = check_int(k, "k", low=1)
    y_true, y_score, single, n_pos = _check_rankings(y_true, y_score)
    rm = _ranking_metrics(y_true, y_score, n_pos, ks=[k], rank=metric.source in RANK_SOURCES)
    bad = np.zeros(rm.n_pos.shape, bool)
    if metric.needs_positives:
        bad = _undefined_rows(rm.n_pos == 0, on_undefined, "no positive item")
    denominator = topk_denominator(normalization or metric.normalization, k, rm.n_pos)
    with np.errstate(divide="ignore", invalid="ignore"):
        values = getattr(rm, metric.source)[:, 0] / denominator
    values[bad] = np.nan
    return _finish(values, single)


def precision_at_k(y_true: np.ndarray, y_score: np.ndarray, k: int) -> float | np.ndarray:
    """Precision@K = (positives in the top k) / k (paper Appendix C).

    Ties at the k-th position: expected value under uniformly random tie-breaking (a tie
    group straddling the cut contributes its positive fraction per position taken).  A k
    larger than the ranking takes the whole ranking and still divides by k.  Defined for
    every ranking (0 without positives).  Range [0, 1].

    Examples
    --------
    >>> precision_at_k([True, False, True, False], [0.9, 0.8, 0.7, 0.1], 2)
    0.5
    >>> precision_at_k([True, False], [0.5, 0.5], 1)  # a tie: expected value
    0.5
    """
    return _topk_metric("precision", y_true, y_score, k)


def recall_at_k(y_true: np.ndarray, y_score: np.ndarray, k: int, denominator: str = "positives",
                *, on_undefined: str = "raise") -> float | np.ndarray:
    """Recall@K = (positives in the top k) / D (paper Appendix C).

    ``denominator="positives"`` (the paper's): D = number of positives.
    ``"min_k_positives"``: D = min(k, number of positives), used by some libraries; then
    a perfect ranking scores 1 at every k.  Ties at the k-th position: expected value under
    uniformly random tie-breaking.  Undefined without positives.  Range [0, 1].

    Examples
    --------
    >>> recall_at_k([True, False, True, False], [0.9, 0.8, 0.7, 0.1], 2)
    0.5
    >>> recall_at_k([True, False, True, False], [0.9, 0.8, 0.7, 0.1], 1, "min_k_positives")
    1.0
    """
    check_choice(denominator, "denominator", RECALL_DENOMINATORS)
    return _topk_metric("recall", y_true, y_score, k, on_undefined, normalization=denominator)


def ndcg_at_k(y_true: np.ndarray, y_score: np.ndarray, k: int, *, on_undefined: str = "raise"
              ) -> float | np.ndarray:
    """NDCG@K with binary gains (paper Appendix C).

    ``DCG@k = sum over positions p <= k holding a positive of 1 / log2(p + 1)`` (1-based p),
    divided by the ideal ``sum_{p=1}^{min(n_pos, k)} 1 / log2(p + 1)``.  Ties: expected
    gain under uniformly random tie-breaking, the convention of scikit-learn's
    ``ndcg_score``.  Undefined without positives.  Range [0, 1].

    Examples
    --------
    >>> ndcg_at_k([False, True], [0.9, 0.1], 2)  # (1 / log2(3)) / 1
    0.6309297535714575
    >>> ndcg_at_k([[False, True], [False, False]], [[0.9, 0.1], [0.9, 0.1]], 2,
    ...           on_undefined="nan")
    array([0.63092975,        nan])
    """
    return _topk_metric("ndcg", y_true, y_score, k, on_undefined)


def hit_rate_at_k(y_true: np.ndarray, y_score: np.ndarray, k: int) -> float | np.ndarray:
    """Hit rate@K = 1 if a positive is in the top k, else 0.

    Ties at the k-th position: the probability of a hit under uniformly random
    tie-breaking (hypergeometric).  Defined for every ranking (0 without positives).
    Range [0, 1].

    Examples
    --------
    >>> hit_rate_at_k([False, True, False], [0.5, 0.5, 0.5], 1)
    0.3333333333333333
    """
    return _topk_metric("hit_rate", y_true, y_score, k)


def mrr_at_k(y_true: np.ndarray, y_score: np.ndarray, k: int, *, on_undefined: str = "raise"
             ) -> float | np.ndarray:
    """Reciprocal rank at K: 1 / (rank of the first positive) if that rank is <= k, else 0.

    The per-ranking term of MRR@K (average it over rankings for the mean), in the convention
    of ranx's ``reciprocal_rank`` (``mrr@k``) and trec_eval's ``recip_rank``: ranks are
    1-based; a ranking whose first positive lies below k scores 0.  Ties: the expected value
    under uniformly random tie-breaking, computed exactly (:func:`topk_rank_row`), as for
    every Top-K metric here.  Undefined without positives (like Recall and NDCG; ranx
    returns 0 there): ``on_undefined`` decides.  Range [0, 1].

    Examples
    --------
    >>> mrr_at_k([False, True, True], [0.9, 0.8, 0.1], 3)
    0.5
    >>> mrr_at_k([False, True, True], [0.9, 0.8, 0.1], 1)
    0.0
    >>> mrr_at_k([True, False], [0.5, 0.5], 2)  # rank 1 or 2, each with probability 1/2
    0.75
    """
    return _topk_metric("mrr", y_true, y_score, k, on_undefined)


def map_at_k(y_true: np.ndarray, y_score: np.ndarray, k: int, *, on_undefined: str = "raise"
             ) -> float | np.ndarray:
    """Average precision at K: ``AP@K = (1 / n_pos) sum_{i <= k, rank i positive} Precision@i``.

    The per-ranking term of MAP@K.  Denominator: the number of positives n_pos, the
    convention of ranx's ``map@k`` (``average_precision``, which divides by the number of
    relevant items) and trec_eval's ``map_cut_k``; not min(k, n_pos) (ml_metrics' ``apk``).
    So AP@K <= Recall@K, and AP@K for k >= n_items equals scikit-learn's
    ``average_precision_score`` on an untied ranking.  Ties: the expected value under
    uniformly random tie-breaking, computed exactly (:func:`topk_rank_row`).  Undefined
    without positives: ``on_undefined`` decides.  Range [0, 1].

    Examples
    --------
    >>> map_at_k([True, False, True], [0.9, 0.8, 0.1], 3)  # (1/1 + 2/3) / 2
    0.8333333333333333
    >>> map_at_k([True, False, True], [0.9, 0.8, 0.1], 1)  # (1/1) / 2
    0.5
    """
    return _topk_metric("map", y_true, y_score, k, on_undefined)


def roc_points(y_true: np.ndarray, y_score: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Vertices of the empirical ROC curve of one ranking, from (0, 0) to (1, 1).

    One vertex per block of the ranking (see the module docstring): a run of one label is a
    horizontal or vertical step, a group of tied positive and negative scores a diagonal
    segment, so the straight lines between the vertices are exactly the curve that every
    area here integrates (paper Eqs. 4-7).

    Returns
    -------
    (fpr, tpr) : two float arrays of the same length.

    Examples
    --------
    >>> fpr, tpr = roc_points([True, False, True], [0.9, 0.5, 0.5])  # a tied pair: diagonal
    >>> fpr.tolist(), tpr.tolist()
    ([0.0, 0.0, 1.0], [0.0, 0.5, 1.0])
    """
    y_true, y_score, single, n_pos = _check_rankings(y_true, y_score)
    if not single:
        raise ValueError(f"y_true must be 1-D (one ranking) for roc_points; got shape {y_true.shape}")
    labels = y_true.view(np.int8)[0]
    n_pos = int(n_pos[0])
    n_neg = labels.size - n_pos
    if n_pos == 0 or n_neg == 0:
        raise ValueError("ranking (row) 0 needs a positive and a negative item for a ROC curve")
    pos_sorted = np.full(n_pos + SENTINELS, np.inf)
    pos_sorted[:n_pos] = np.sort(y_score[0][labels == 1])
    block_pos = np.empty(labels.size, np.int64)
    block_neg = np.empty(labels.size, np.int64)
    nb, _ = blocks_from_row(y_score[0], labels, pos_sorted, n_pos, np.empty(2 * n_pos + 2, np.int64),
                            np.empty(2 * n_pos + 2, np.int64), block_pos, block_neg)
    fpr = np.concatenate([[0.0], np.cumsum(block_neg[:nb]) / n_neg])
    tpr = np.concatenate([[0.0], np.cumsum(block_pos[:nb]) / n_pos])
    return fpr, tpr

