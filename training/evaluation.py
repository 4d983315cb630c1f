"""Full-ranking evaluation of a factor model: every item scored, training items masked.

For each user with at least one test item, all items are scored by ``user_factors @
item_factors.T``; the user's training items are removed from the ranking, the test items
are the positives and every other item is a negative (paper Appendix C).  Metrics come from
theory.metrics' row kernels (``blocks_from_row``, ``topk_row``, ``area_curve_row``), so they
follow its conventions exactly (ties: expected value under random tie-breaking).

Scores are computed in blocks of ``users_per_block`` users, in float32 when both factor
matrices are float32 (as the trainer's), else in float64; the ranking is that of these
scores.  The pass over a user's ~40,000 scores never sorts them.  The Top-K metrics (K <=
max(ks)) and OPAUC at small beta only depend on the first ``r = max(max(ks), n_test +
ceil(beta_max n_neg))`` positions of the ranking, so the pass selects the items scoring at
least the r-th largest score (``theory.metrics.top_candidates_row``: chunk maxima, then a
quickselect; ties at the boundary included) and builds the ranking's blocks from those few
items; the blocks, and so every metric, are exactly those of the full ranking (see
``_evaluate_row``).  When r exceeds n_items / 64 (OPAUC at beta above about 1.5%) the whole
row is placed between the sorted test scores instead (``blocks_from_row``, O(n_items)).

Cache: in float32, each block's product is split into tiles of 64 users (10 MB of scores
for Gowalla), and each of ``numba.get_num_threads()`` worker threads scores a tile with a
single-threaded BLAS call and scans it at once, while the scores are still in cache
(scanning a 168 MB block after its product read it back from memory: the scan did not scale
with threads).  The tiles are fixed (64 rows from their block's start) and each is one
single-threaded sgemm, so every score has the same bits on any number of threads
(tests/test_evaluation.py checks the score bits against single-threaded products of the
tiles, and the metrics against the implementation before issue 12).  With OpenBLAS 0.3.31's
SkylakeX kernels a row also has the bits it had in the block's product (one product per
block, the implementation before the tiles), partial tiles included; with its Zen kernels
(AMD EPYC) the last bits of some rows differ from the block's product (measured).  In
float64, where dgemm's bits in the last columns do depend on how it splits the rows
(measured: a few rows per 64 differ), each block is still one product (BLAS threads as
configured), scanned by the workers.
"""
from __future__ import annotations

import contextlib
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import NamedTuple

import numba
import numpy as np
from numba import njit

try:  # limits BLAS threads inside the evaluation's workers (see _one_blas_thread)
    from threadpoolctl import threadpool_limits
except ImportError:  # pragma: no cover - installed with scikit-learn (test extra)
    threadpool_limits = None

from theory.metrics import (
    RANK_SOURCES,
    SELECT_WIDTH,
    SENTINELS,
    TOPK_METRICS,
    area_curve_row,
    blocks_from_row,
    discount_table,
    top_candidates_row,
    topk_denominator,
    topk_rank_row,
    topk_row,
)
from theory.validation import check_betas, check_choice, check_grid, check_ks
from training.loaders import to_interactions

__all__ = ["EVALUATION_METRICS", "Evaluation", "evaluate_full_ranking"]

#: Top-K metrics of :data:`theory.metrics.TOPK_METRICS` that the evaluation reports by default
#: (the trainer's): Recall, Precision and NDCG as in the paper, then MRR@K and MAP@K.
EVALUATION_METRICS = ("recall", "precision", "ndcg", "mrr", "map")

_USERS_PER_BLOCK = 1024  # the product's blocks of users, as before the tiles (see below)
# float32: users per tile, scored and scanned by one worker (Gowalla: 64 x 40,988 scores,
# 10 MB).  A multiple of 64 (sgemm's row blocking), so the tiles' products have the bits of
# the blocks' products; fixed, so the work splits the same way on any thread count.
_TILE_ROWS = 64
# float64: rows per parallel work item of the scan of a block.
_ROWS_PER_CHUNK = 16


class Evaluation(NamedTuple):
    """Per-user metrics of a full-ranking evaluation, users with test items only.

    Each Top-K metric is also an attribute: ``ev.recall`` is ``ev.topk["recall"]``
    (hits / n_test, the paper's denominator), likewise ``precision`` (hits / k), ``ndcg``,
    ``mrr``, ``map`` and any other name of :data:`theory.metrics.TOPK_METRICS` computed.
    """

    users: np.ndarray       # (n_eval,) user ids evaluated
    ks: np.ndarray          # (n_ks,)
    topk: dict              # Top-K metric name -> (n_eval, n_ks), in the order asked
    betas: np.ndarray       # (n_betas,)
    opauc: np.ndarray       # (n_eval, n_betas) raw OPAUC (range [0, beta])

    def __getattr__(self, name: str) -> np.ndarray:
        topk = self.topk  # a field: found without recursion
        if name in topk:
            return topk[name]
        raise AttributeError(f"{type(self).__name__} has no attribute {name!r} (Top-K metrics "
                             f"computed: {tuple(topk)})")

    def mean(self) -> dict[str, float]:
        """Averages over evaluated users, keyed like ``recall@20``, ``mrr@5``, ``opauc@0.01``."""
        out = {}
        for name, values in self.topk.items():
            out.update({f"{name}@{k}": float(v) for k, v in zip(self.ks, values.mean(axis=0))})
        values = self.opauc.mean(axis=0)
        out.update({f"opauc@{b:g}": float(v) for b, v in zip(self.betas, values)})
        return out


@njit(cache=True)
def _positions_needed(ks, betas, n_pos, n_neg):
    """How many top positions of a ranking the metrics read: max(ks) for Top-K; for OPAUC at
    beta_max the blocks down to the ceil(beta_max n_neg)-th negative (``area_curve_row``
    stops at the block where ``beta n_neg <= u``, u integer), which lie within the first
    n_pos + ceil(beta_max n_neg) positions."""
    need = ks[ks.shape[0] - 1]
    if betas.shape[0] > 0:
        need = max(need, n_pos + np.int64(np.ceil(betas[betas.shape[0] - 1] * n_neg)))
    return need


@njit(cache=True)
def _evaluate_row(row, u, train_indptr, train_indices, test_indptr, test_indices, ks, discounts,
                  betas, rank, hits_out, dcg_out, hit_prob_out, rr_out, ap_out, area_out, labels,
                  pos_sorted, grid, counts, block_pos, block_neg, chunk_keys, cand, cand_scores,
                  cand_labels):
    """Metrics of user ``u`` from its score row (overwritten: training items become -inf);
    returns the user's number of negatives.  ``labels`` must be all zero (it is left so).

    Exactness of the top-r path: the candidates are all ranked items scoring >= s_(r), the
    r-th largest ranked score, ties included, so their blocks (highest first) are the full
    ranking's blocks down to s_(r), except that the last one may be cut short (a run of one
    label that continues below s_(r)).  ``topk_row`` answers every k <= r inside these
    blocks, with the same arithmetic; ``area_curve_row`` answers every beta inside the
    blocks that hold the first ceil(beta_max n_neg) <= r - n_pos negatives, and a run cut
    short only changes its own length q, which enters its area as ``0.5 * (p / q)`` with
    p = 0 (a negative run) or not at all (q = 0, a positive run).  So the metrics are the
    same floats as on the full row.  ``topk_rank_row`` (when ``rank``) reads positions
    <= max(ks) <= r only, so its values are exact too.
    """
    n_items = row.shape[0]
    n_pos = test_indptr[u + 1] - test_indptr[u]
    n_neg = n_items - (train_indptr[u + 1] - train_indptr[u]) - n_pos  # disjoint sets
    need = _positions_needed(ks, betas, n_pos, n_neg)
    for t in range(test_indptr[u], test_indptr[u + 1]):
        labels[test_indices[t]] = 1
    # The top-r selection bounds s_(r) by the r-th largest of its chunk maxima, so it
    # needs r <= the number of chunks (measured: 7 us per row at r = 50, 32 us at
    # r = 640, against 150 us for the whole row on 40,988 items).
    if need * SELECT_WIDTH <= n_items:
        for t in range(train_indptr[u], train_indptr[u + 1]):
            row[train_indices[t]] = -np.inf  # left out of the ranking
        n_cand, _ = top_candidates_row(row, need, chunk_keys, cand, cand_scores)
        n_top = 0  # test items among the candidates
        for t in range(n_cand):
            item = cand[t]
            cand_scores[t] = row[item]
            cand_labels[t] = labels[item]
            if labels[item] == 1:
                pos_sorted[n_top] = row[item]
                n_top += 1
        pos_sorted[:n_top].sort()
        pos_sorted[n_top:] = np.inf
        nb, _ = blocks_from_row(cand_scores[:n_cand], cand_labels[:n_cand], pos_sorted,
                                n_top, grid[: 2 * n_top + 2], counts, block_pos, block_neg)
    else:  # the whole row, as ranked before the top-r path existed
        for t in range(train_indptr[u], train_indptr[u + 1]):
            labels[train_indices[t]] = -1  # masked: not part of the ranking
        for t in range(n_pos):
            pos_sorted[t] = row[test_indices[test_indptr[u] + t]]
        pos_sorted[:n_pos].sort()  # a handful of test items per user
        pos_sorted[n_pos:] = np.inf
        nb, n_neg = blocks_from_row(row, labels, pos_sorted, n_pos, grid[: 2 * n_pos + 2],
                                    counts, block_pos, block_neg)
        for t in range(train_indptr[u], train_indptr[u + 1]):
            labels[train_indices[t]] = 0
    topk_row(block_pos, block_neg, nb, ks, discounts, hits_out, dcg_out, hit_prob_out)
    if rank:
        topk_rank_row(block_pos, block_neg, nb, ks, rr_out, ap_out)
    if betas.shape[0] > 0:
        area_curve_row(block_pos, block_neg, nb, n_neg, betas, 0.0, area_out)
    for t in range(test_indptr[u], test_indptr[u + 1]):
        labels[test_indices[t]] = 0
    return n_neg


@njit(cache=True, nogil=True)
def _evaluate_rows(scores, users, train_indptr, train_indices, test_indptr, test_indices, ks,
                   discounts, betas, rank, hits_out, dcg_out, hit_prob_out, rr_out, ap_out,
                   area_out, n_neg_out):
    """Metrics of each row of a tile of scores (row r: user ``users[r]``; the rows are
    overwritten), serially: called from a worker thread, without the GIL, right after the
    tile's product (see ``evaluate_full_ranking``)."""
    n_rows, n_items = scores.shape
    max_test = 0
    for r in range(n_rows):
        u = users[r]
        max_test = max(max_test, test_indptr[u + 1] - test_indptr[u])
    labels = np.zeros(n_items, np.int8)
    pos_sorted = np.empty(max_test + SENTINELS)
    grid = np.empty(2 * max_test + 2, np.int64)
    counts = np.empty(2 * max_test + 2, np.int64)
    block_pos = np.empty(n_items, np.int64)
    block_neg = np.empty(n_items, np.int64)
    chunk_keys = np.empty(n_items // SELECT_WIDTH + 1, np.int64)
    cand = np.empty(n_items, np.int64)
    cand_scores = np.empty(n_items)
    cand_labels = np.empty(n_items, np.int8)
    unused = np.empty(0)  # rr_out and ap_out have no rows when ``rank`` is off
    for r in range(n_rows):
        rr_row = rr_out[r] if rank else unused
        ap_row = ap_out[r] if rank else unused
        n_neg_out[r] = _evaluate_row(
            scores[r], users[r], train_indptr, train_indices, test_indptr, test_indices, ks,
            discounts, betas, rank, hits_out[r], dcg_out[r], hit_prob_out[r], rr_row, ap_row,
            area_out[r], labels, pos_sorted, grid, counts, block_pos, block_neg, chunk_keys, cand,
            cand_scores, cand_labels)


def _for_each(n_tasks: int, workers: int, work) -> None:
    """``work(i, worker)`` for i in range(n_tasks), on ``workers`` threads taking the tasks in
    order (``worker`` in range(workers) names the thread, e.g. to pick its buffer).  The
    first exception stops the other threads after their current task and is raised here."""
    if workers <= 1 or n_tasks <= 1:
        for i in range(n_tasks):
            work(i, 0)
        return
    lock = threading.Lock()
    stop = threading.Event()
    next_task = [0]

    def loop(worker):
        while not stop.is_set():
            with lock:
                i = next_task[0]
                next_task[0] += 1
            if i >= n_tasks:
                return
            try:
                work(i, worker)
            except BaseException:
                stop.set()
                raise

    with ThreadPoolExecutor(max_workers=workers) as pool:
        futures = [pool.submit(loop, worker) for worker in range(workers)]
        try:
            for future in futures:
                future.result()
        finally:  # e.g. KeyboardInterrupt in this thread: the workers stop too
            stop.set()


def _one_blas_thread():
    """BLAS limited to one thread inside (the workers are the parallelism); a no-op without
    threadpoolctl (the results are the same, the workers' products may then compete)."""
    if threadpool_limits is None:
        return contextlib.nullcontext()
    return threadpool_limits(limits=1, user_api="blas")


def _overflow_impossible(user_factors, item_factors, dtype) -> bool:
    """True when no score ``u . v`` can overflow in ``dtype``: ``|u . v| <= ||u||_1 max|v|``,
    and rounding in a sum of ``dim`` terms (any order, with or without FMA) grows that by
    at most ``(1 + eps)^dim < 2`` for dim <= 2^16."""
    if user_factors.shape[1] > 2 ** 16:
        return False
    with np.errstate(over="ignore"):
        l1 = np.abs(user_factors, dtype=np.float64).sum(axis=1).max(initial=0.0)
        bound = float(l1) * float(np.abs(item_factors).max(initial=0.0))
    return bound <= float(np.finfo(dtype).max) / 2


def evaluate_full_ranking(user_factors: np.ndarray, item_factors: np.ndarray, train, test,
                          ks: Sequence[int] = (5, 20, 50), betas: Sequence[float] = (),
                          users_per_block: int = _USERS_PER_BLOCK, *,
                          metrics: Sequence[str] = EVALUATION_METRICS) -> Evaluation:
    """Evaluate a dot-product model on every item, training items masked.

    Parameters
    ----------
    user_factors : array (n_users, dim); item_factors : array (n_items, dim)
    train, test : scipy sparse matrices (n_users, n_items); nonzeros are interactions.
    ks : ints >= 1, the Top-K cut-offs.
    betas : floats in (0, 1], optional OPAUC levels (raw area over FPR in [0, beta]).
    metrics : names of :data:`theory.metrics.TOPK_METRICS`
        The Top-K metrics to report (default :data:`EVALUATION_METRICS`).  MRR@K and MAP@K
        (the only ones that need ``topk_rank_row``) cost about one pass over the top max(ks)
        positions per user; leave them out to skip it.

    Returns
    -------
    Evaluation
        Per-user Recall@k (hits / number of test items, the paper's convention),
        Precision@k, NDCG@k, MRR@k, MAP@k (AP over the test items, ranx's map@k) and raw
        OPAUC, for the users with at least one test item; ``.mean()`` gives the paper's
        averages.

    Examples
    --------
    >>> import scipy.sparse as sp
    >>> users = np.array([[1.0], [1.0]])
    >>> items = np.array([[3.0], [2.0], [1.0], [0.0]])  # item 0 scores highest
    >>> train = sp.csr_matrix(np.array([[1, 0, 0, 0], [0, 0, 0, 0]]))
    >>> test = sp.csr_matrix(np.array([[0, 0, 1, 0], [0, 1, 0, 1]]))
    >>> ev = evaluate_full_ranking(users, items, train, test, ks=(1, 2))
    >>> ev.recall.tolist(), ev.mrr.tolist()
    ([[0.0, 1.0], [0.0, 0.5]], [[0.0, 0.5], [0.0, 0.5]])
    >>> ev.mean()["map@2"]
    0.375
    """
    user_factors = np.asarray(user_factors)
    item_factors = np.asarray(item_factors)
    if user_factors.ndim != 2 or item_factors.ndim != 2 or user_factors.shape[1] != item_factors.shape[1]:
        raise ValueError("user_factors and item_factors must be 2-D with the same number of columns; "
                         f"got {user_factors.shape} and {item_factors.shape}")
    for name, factors in (("user_factors", user_factors), ("item_factors", item_factors)):
        if not np.isfinite(factors).all():
            raise ValueError(f"{name} must be finite (no NaN or inf)")
    shape = (user_factors.shape[0], item_factors.shape[0])
    # Canonical copies (sorted, no duplicates, no stored zeros): the caller's matrices are
    # never modified.
    train = to_interactions(train, name="train")
    test = to_interactions(test, name="test")
    for name, m in (("train", train), ("test", test)):
        if m.shape != shape:
            raise ValueError(f"{name} must have shape {shape} (users x items); got {m.shape}")
    if test.multiply(train).nnz:
        raise ValueError("train and test share (user, item) pairs; they must be disjoint")
    ks = check_ks(ks, sort=True, min_size=1)
    betas = check_betas(betas, sort=True, min_size=0)
    names = tuple(dict.fromkeys(check_grid(
        metrics, "metrics", lambda v, n: check_choice(v, n, TOPK_METRICS), dtype=object).tolist()))
    rank = any(TOPK_METRICS[m].source in RANK_SOURCES for m in names)
    users = np.flatnonzero(np.diff(test.indptr) > 0)
    kernel_ks = np.minimum(ks, shape[1])
    discounts = discount_table(int(kernel_ks[-1]))
    sources = {name: np.zeros((users.size, ks.size)) for name in ("hits", "dcg", "hit_prob")}
    for name in RANK_SOURCES:
        sources[name] = np.zeros((users.size, ks.size) if rank else (0, 0))
    area = np.zeros((users.size, betas.size))
    n_neg = np.zeros(users.size, np.int64)
    args = (train.indptr.astype(np.int64), train.indices.astype(np.int64),
            test.indptr.astype(np.int64), test.indices.astype(np.int64))
    outputs = (*(sources[name] for name in ("hits", "dcg", "hit_prob", *RANK_SOURCES)), area, n_neg)

    def scan(scores, start, stop):  # the metrics of users[start:stop] from their score rows
        sl = slice(start, stop)
        _evaluate_rows(scores, users[sl], *args, kernel_ks, discounts, betas, rank,
                       *(out[sl] for out in outputs))

    def check(scores):
        if check_finite and not np.isfinite(scores).all():
            raise ValueError("user_factors @ item_factors.T overflows to inf; the scores must be "
                             "finite (rescale the factors or pass float64)")

    # Score in the factors' precision (float32 models stay float32: half the memory traffic).
    dtype = np.float32 if (user_factors.dtype == np.float32 and item_factors.dtype == np.float32) else np.float64
    items_t = np.ascontiguousarray(item_factors.T, dtype=dtype)
    # Finite factors can still overflow (float32); checking every score costs a third of the
    # product, so it is done only when a bound on the scores does not rule overflow out.
    check_finite = not _overflow_impossible(user_factors, item_factors, dtype)
    workers = max(1, numba.get_num_threads())
    blocks = [(start, min(start + users_per_block, users.size))
              for start in range(0, users.size, users_per_block)]
    if dtype == np.float32:
        # Each worker scores a tile of users (one single-threaded BLAS call into its own
        # buffer, 10 MB for Gowalla) and scans it at once, while the scores are still in
        # cache.  The tiles split each block of users_per_block users at multiples of
        # _TILE_ROWS rows from the block's start, the last one keeping the block's remainder,
        # so that the tiles, hence every score's bits, are the same on any thread count (and
        # with OpenBLAS's SkylakeX kernels the block product's bits: see the module
        # docstring; tests/test_evaluation.py checks them, partial tiles included).
        tiles = [(start, min(start + _TILE_ROWS, stop)) for first, stop in blocks
                 for start in range(first, stop, _TILE_ROWS)]
        rows = max((stop - start for start, stop in tiles), default=0)
        buffers = [np.empty((rows, shape[1]), dtype) for _ in range(min(workers, len(tiles)))]

        def score_and_scan(i, worker):
            start, stop = tiles[i]
            scores = buffers[worker][: stop - start]
            np.matmul(user_factors[users[start:stop]], items_t, out=scores)
            check(scores)
            scan(scores, start, stop)

        with _one_blas_thread():
            _for_each(len(tiles), len(buffers), score_and_scan)
    else:
        # float64: today's product per block (BLAS threads as configured: dgemm's bits in
        # the last columns depend on how it splits the rows), then the workers scan the block.
        buffer = np.empty((max((stop - start for start, stop in blocks), default=0), shape[1]), dtype)
        for first, stop in blocks:
            scores = buffer[: stop - first]
            np.matmul(user_factors[users[first:stop]].astype(dtype, copy=False), items_t, out=scores)
            check(scores)
            parts = [(start, min(start + _ROWS_PER_CHUNK, stop))
                     for start in range(first, stop, _ROWS_PER_CHUNK)]

            def scan_part(i, worker, scores=scores, first=first, parts=parts):
                start, stop = parts[i]
                scan(scores[start - first: stop - first], start, stop)

            _for_each(len(parts), workers, scan_part)
    n_test = np.diff(test.indptr)[users]
    with np.errstate(divide="ignore", invalid="ignore"):
        opauc = area / (n_test.astype(np.float64) * n_neg)[:, None]
    # Every Top-K metric is its source over its denominator (theory.metrics.TOPK_METRICS);
    # every evaluated user has a test item, so none is undefined.
    topk = {}
    for name in names:
        metric = TOPK_METRICS[name]
        topk[name] = sources[metric.source] / topk_denominator(
            metric.normalization, ks[None, :], n_test[:, None], discounts)
    return Evaluation(users, ks, topk, betas, opauc)
