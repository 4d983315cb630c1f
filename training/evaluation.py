"""Full-ranking evaluation of a factor model: every item scored, training items masked.

For each user with at least one test item, all items are scored by ``user_factors @
item_factors.T``; the user's training items are removed from the ranking, the test items
are the positives and every other item is a negative (paper Appendix C).  Metrics come from
theory.metrics' row kernels (``blocks_from_row``, ``topk_row``, ``area_curve_row``), so they
follow its conventions exactly (ties: expected value under random tie-breaking).

Scores are computed in blocks of users with one BLAS product each, in float32 when both
factor matrices are float32 (as the trainer's), else in float64; the ranking is that of these
scores.  The pass over a user's ~40,000 scores never sorts them.  The Top-K metrics (K <=
max(ks)) and OPAUC at small beta only depend on the first ``r = max(max(ks), n_test +
ceil(beta_max n_neg))`` positions of the ranking, so the pass selects the items scoring at
least the r-th largest score (``theory.metrics.top_candidates_row``: chunk maxima, then a
quickselect; ties at the boundary included) and builds the ranking's blocks from those few
items; the blocks, and so every metric, are exactly those of the full ranking (see
``_evaluate_block``).  When r exceeds n_items / 64 (OPAUC at beta above about 1.5%) the whole
row is placed between the sorted test scores instead (``blocks_from_row``, O(n_items)).
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np
from numba import njit, prange

from theory.metrics import (
    _SELECT_WIDTH,
    SENTINELS,
    _check_betas,
    _check_ks,
    area_curve_row,
    blocks_from_row,
    discount_table,
    top_candidates_row,
    topk_row,
)
from training.loaders import to_interactions

__all__ = ["Evaluation", "evaluate_full_ranking"]

_USERS_PER_BLOCK = 1024  # one block of scores: 1024 x n_items (170 MB in float32 for Gowalla)
# Rows per parallel work item: fixed, so the work splits the same way on any thread count.
_ROWS_PER_CHUNK = 16


class Evaluation(NamedTuple):
    """Per-user metrics of a full-ranking evaluation, users with test items only."""

    users: np.ndarray       # (n_eval,) user ids evaluated
    ks: np.ndarray          # (n_ks,)
    recall: np.ndarray      # (n_eval, n_ks) hits / n_test  (paper's denominator)
    precision: np.ndarray   # (n_eval, n_ks) hits / k
    ndcg: np.ndarray        # (n_eval, n_ks)
    betas: np.ndarray       # (n_betas,)
    opauc: np.ndarray       # (n_eval, n_betas) raw OPAUC (range [0, beta])

    def mean(self) -> dict[str, float]:
        """Averages over evaluated users, keyed like ``recall@20``, ``ndcg@5``, ``opauc@0.01``."""
        out = {}
        for name in ("recall", "precision", "ndcg"):
            values = getattr(self, name).mean(axis=0)
            out.update({f"{name}@{k}": float(v) for k, v in zip(self.ks, values)})
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


@njit(parallel=True, cache=True)
def _evaluate_block(scores, users, train_indptr, train_indices, test_indptr, test_indices,
                    ks, discounts, betas, hits_out, dcg_out, area_out, n_neg_out):
    """Metrics of each row of a block of scores (overwritten: training items become -inf).

    Exactness of the top-r path: the candidates are all ranked items scoring >= s_(r), the
    r-th largest ranked score, ties included, so their blocks (highest first) are the full
    ranking's blocks down to s_(r), except that the last one may be cut short (a run of one
    label that continues below s_(r)).  ``topk_row`` answers every k <= r inside these
    blocks, with the same arithmetic; ``area_curve_row`` answers every beta inside the
    blocks that hold the first ceil(beta_max n_neg) <= r - n_pos negatives, and a run cut
    short only changes its own length q, which enters its area as ``0.5 * (p / q)`` with
    p = 0 (a negative run) or not at all (q = 0, a positive run).  So the metrics are the
    same floats as on the full row.
    """
    n_rows, n_items = scores.shape
    max_test = 0
    for r in range(n_rows):
        u = users[r]
        max_test = max(max_test, test_indptr[u + 1] - test_indptr[u])
    n_chunks = (n_rows + _ROWS_PER_CHUNK - 1) // _ROWS_PER_CHUNK
    for chunk in prange(n_chunks):
        labels = np.zeros(n_items, np.int8)
        pos_sorted = np.empty(max_test + SENTINELS)
        grid = np.empty(2 * max_test + 2, np.int64)
        counts = np.empty(2 * max_test + 2, np.int64)
        block_pos = np.empty(n_items, np.int64)
        block_neg = np.empty(n_items, np.int64)
        hit_prob = np.empty(ks.shape[0])
        chunk_keys = np.empty(n_items // _SELECT_WIDTH + 1, np.int64)
        cand = np.empty(n_items, np.int64)
        cand_scores = np.empty(n_items)
        cand_labels = np.empty(n_items, np.int8)
        for r in range(chunk * _ROWS_PER_CHUNK, min(n_rows, (chunk + 1) * _ROWS_PER_CHUNK)):
            u = users[r]
            row = scores[r]
            n_pos = test_indptr[u + 1] - test_indptr[u]
            n_neg = n_items - (train_indptr[u + 1] - train_indptr[u]) - n_pos  # disjoint sets
            need = _positions_needed(ks, betas, n_pos, n_neg)
            for t in range(test_indptr[u], test_indptr[u + 1]):
                labels[test_indices[t]] = 1
            # The top-r selection bounds s_(r) by the r-th largest of its chunk maxima, so it
            # needs r <= the number of chunks (measured: 7 us per row at r = 50, 32 us at
            # r = 640, against 150 us for the whole row on 40,988 items).
            if need * _SELECT_WIDTH <= n_items:
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
            topk_row(block_pos, block_neg, nb, ks, discounts, hits_out[r], dcg_out[r], hit_prob)
            if betas.shape[0] > 0:
                area_curve_row(block_pos, block_neg, nb, n_neg, betas, 0.0, area_out[r])
            n_neg_out[r] = n_neg
            for t in range(test_indptr[u], test_indptr[u + 1]):
                labels[test_indices[t]] = 0


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


def evaluate_full_ranking(user_factors, item_factors, train, test, ks=(5, 20, 50), betas=(),
                          users_per_block=_USERS_PER_BLOCK) -> Evaluation:
    """Evaluate a dot-product model on every item, training items masked.

    Parameters
    ----------
    user_factors : array (n_users, dim); item_factors : array (n_items, dim)
    train, test : scipy sparse matrices (n_users, n_items); nonzeros are interactions.
    ks : ints >= 1, the Top-K cut-offs.
    betas : floats in (0, 1], optional OPAUC levels (raw area over FPR in [0, beta]).

    Returns
    -------
    Evaluation
        Per-user Recall@k (hits / number of test items, the paper's convention),
        Precision@k, NDCG@k and raw OPAUC, for the users with at least one test item;
        ``.mean()`` gives the paper's averages.
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
    ks = np.sort(_check_ks(ks))
    if ks.size == 0:
        raise ValueError("ks must hold at least one cut-off")
    betas = np.sort(_check_betas(betas)) if len(np.atleast_1d(betas)) else np.empty(0)
    users = np.flatnonzero(np.diff(test.indptr) > 0)
    kernel_ks = np.minimum(ks, shape[1])
    discounts = discount_table(int(kernel_ks[-1]))
    hits = np.zeros((users.size, ks.size))
    dcg = np.zeros((users.size, ks.size))
    area = np.zeros((users.size, betas.size))
    n_neg = np.zeros(users.size, np.int64)
    args = (train.indptr.astype(np.int64), train.indices.astype(np.int64),
            test.indptr.astype(np.int64), test.indices.astype(np.int64))
    # Score in the factors' precision (float32 models stay float32: half the memory traffic)
    # into one reused buffer.
    dtype = np.float32 if (user_factors.dtype == np.float32 and item_factors.dtype == np.float32) else np.float64
    items_t = np.ascontiguousarray(item_factors.T, dtype=dtype)
    buffer = np.empty((min(users_per_block, max(users.size, 1)), shape[1]), dtype=dtype)
    # Finite factors can still overflow (float32); checking every score costs a third of the
    # product, so it is done only when a bound on the scores does not rule overflow out.
    check_finite = not _overflow_impossible(user_factors, item_factors, dtype)
    for start in range(0, users.size, users_per_block):
        block = users[start:start + users_per_block]
        scores = buffer[: block.size]
        np.matmul(user_factors[block].astype(dtype, copy=False), items_t, out=scores)
        if check_finite and not np.isfinite(scores).all():
            raise ValueError("user_factors @ item_factors.T overflows to inf; the scores must be "
                             "finite (rescale the factors or pass float64)")
        sl = slice(start, start + block.size)
        _evaluate_block(scores, block, *args, kernel_ks, discounts, betas,
                        hits[sl], dcg[sl], area[sl], n_neg[sl])
    n_test = np.diff(test.indptr)[users].astype(np.float64)
    ideal = discount_table(int(kernel_ks[-1]))[np.minimum(n_test[:, None].astype(np.int64), kernel_ks)]
    with np.errstate(divide="ignore", invalid="ignore"):
        opauc = area / (n_test * n_neg)[:, None]
    return Evaluation(users, ks, hits / n_test[:, None], hits / ks, dcg / ideal, betas, opauc)
