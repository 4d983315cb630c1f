"""Today's training.evaluation.evaluate_full_ranking (revision e41b197), kept verbatim as the
reference that the fast implementation must reproduce exactly (tests/test_evaluation.py and
benchmarks/bench_evaluation.py).  Not part of the package; do not "improve" it: its only job
is to stay what the code computed before issue 12.

Scores: one BLAS product per block of ``users_per_block`` users, in float32 when both factor
matrices are float32 (else float64); metrics from theory.metrics' ``blocks_from_row``,
``topk_row`` and ``area_curve_row`` on the full score row of each user.
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np
from numba import njit, prange

from theory.metrics import (
    SENTINELS,
    area_curve_row,
    blocks_from_row,
    discount_table,
    topk_row,
)
from theory.validation import check_betas, check_ks
from training.loaders import to_interactions

__all__ = ["evaluate_full_ranking_reference"]

_USERS_PER_BLOCK = 1024  # one block of scores: 1024 x n_items (170 MB in float32 for Gowalla)


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


@njit(parallel=True, cache=True)
def _evaluate_block(scores, users, train_indptr, train_indices, test_indptr, test_indices,
                    ks, discounts, betas, hits_out, dcg_out, area_out, n_neg_out):
    n_rows, n_items = scores.shape
    max_test = 0
    for r in range(n_rows):
        u = users[r]
        max_test = max(max_test, test_indptr[u + 1] - test_indptr[u])
    n_chunks = (n_rows + 15) // 16
    for chunk in prange(n_chunks):
        labels = np.zeros(n_items, np.int8)
        pos_sorted = np.empty(max_test + SENTINELS)
        grid = np.empty(2 * max_test + 2, np.int64)
        counts = np.empty(2 * max_test + 2, np.int64)
        block_pos = np.empty(n_items, np.int64)
        block_neg = np.empty(n_items, np.int64)
        hit_prob = np.empty(ks.shape[0])
        for r in range(chunk * 16, min(n_rows, (chunk + 1) * 16)):
            u = users[r]
            row = scores[r]
            for t in range(train_indptr[u], train_indptr[u + 1]):
                labels[train_indices[t]] = -1  # masked: not part of the ranking
            n_pos = test_indptr[u + 1] - test_indptr[u]
            for t in range(n_pos):
                item = test_indices[test_indptr[u] + t]
                labels[item] = 1
                pos_sorted[t] = row[item]
            pos_sorted[:n_pos].sort()  # a handful of test items per user
            pos_sorted[n_pos:] = np.inf
            nb, n_neg = blocks_from_row(row, labels, pos_sorted, n_pos, grid[: 2 * n_pos + 2],
                                        counts, block_pos, block_neg)
            topk_row(block_pos, block_neg, nb, ks, discounts, hits_out[r], dcg_out[r], hit_prob)
            if betas.shape[0] > 0:
                area_curve_row(block_pos, block_neg, nb, n_neg, betas, 0.0, area_out[r])
            n_neg_out[r] = n_neg
            for t in range(train_indptr[u], train_indptr[u + 1]):
                labels[train_indices[t]] = 0
            for t in range(test_indptr[u], test_indptr[u + 1]):
                labels[test_indices[t]] = 0


def evaluate_full_ranking_reference(user_factors, item_factors, train, test, ks=(5, 20, 50), betas=(),
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
    ks = np.sort(check_ks(ks))  # theory.validation (the private checks of e41b197 are gone)
    if ks.size == 0:
        raise ValueError("ks must hold at least one cut-off")
    betas = np.sort(check_betas(betas)) if len(np.atleast_1d(betas)) else np.empty(0)
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
    for start in range(0, users.size, users_per_block):
        block = users[start:start + users_per_block]
        scores = buffer[: block.size]
        np.matmul(user_factors[block].astype(dtype, copy=False), items_t, out=scores)
        if not np.isfinite(scores).all():  # finite factors can still overflow (float32)
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
