"""MF-BPR trainer driven by a negative sampler, with full-ranking evaluation.

Model and objective
-------------------
Matrix factorization: score ``r_ui = U[u] . V[i]``, ``U`` and ``V`` float32 with N(0, 0.1)
entries at init (the authors' ``nn.init.normal_(std=0.1)``).  One epoch is one pass over all
training (user, positive) pairs in a random order, in batches of ``batch_size`` (4096) pairs.
Each pair draws a pool of N negatives and its loss is ``sum_k w_k l(r_ui - r_uk)`` with the
sampler's weights (:mod:`training.sampling`; weights are constants).  The batch loss is the
**sum** over the batch's pairs (the authors' ``reduction=False``); Adam is invariant to that
scale except through its eps and through weight decay, so the choice matters only relative
to ``weight_decay``.

Optimizer (torch.optim.Adam, re-implemented)
--------------------------------------------
``beta1 = 0.9, beta2 = 0.999, eps = 1e-8``, bias-corrected, applied densely to every row of
``U`` and ``V`` at every step, as torch does with the dense gradients of ``nn.Embedding``.
Learning rate ``lr * lr_decay_gamma ** (epoch // lr_decay_step)`` (the authors' ``StepLR(5,
0.95)``; ``lr_decay=False`` keeps it constant).

Weight decay (``weight_decay_mode``):

* ``"adam"`` (default; the authors' code): ``torch.optim.Adam(weight_decay=wd)``, i.e. the
  L2 gradient ``wd * theta`` is added to the gradient of **every** parameter at every step
  (rows absent from the batch included), before the Adam moments.
* ``"batch"``: L2 on the batch's embeddings only (LightGCN style): the gradient of
  ``wd/2 * sum over pairs (|U_u|^2 + |V_i|^2 + sum over the pair's negatives of non-zero
  weight |V_j|^2)``, one term per occurrence.

Parallel kernels without data races
-----------------------------------
Per batch, three parallel regions and one short serial loop:

1. ``_forward``: prange over fixed chunks of :data:`PAIR_CHUNK` (64) pairs.  Each pair draws
   its pool from its chunk's xoshiro256++ state (rejecting training positives with a bit
   mask), scores it (float32 products summed in float64), gets the sampler's weights and loss
   from the shared kernel ``training.sampling.pool_loss_weights`` (losses:
   theory.estimators' ``bpr_loss_scalar``; coefficients ``c = w l'(x)`` with
   ``bpr_loss_grad_scalar``) and writes only its own rows: loss, used negatives,
   coefficients, its user-gradient row.  At the end, the chunk groups its item-gradient
   entries by bucket of 1024 items (a local counting sort into its own slice).
2. ``_accumulate_items``: prange over item buckets; a bucket's owner adds, chunk by chunk in
   order, its entries ``coef * U_u`` to its own rows of the float64 item gradient.
3. ``_accumulate_users`` (serial, one row per pair) adds the user-gradient rows.
4. ``_adam``: dense and elementwise over U and V (rows flagged as touched read and clear
   their gradient).

Every gradient entry is therefore summed by one thread in batch order, and random numbers
depend only on (seed, epoch, batch, chunk): the same seed gives bit-identical factors for
any ``NUMBA_NUM_THREADS`` (tested).  Batches too small to pay for a fork-join run on one
thread (``threads=None``; results are the same).  Parameters and Adam moments are float32
(as the authors' torch model); scores, losses, gradients and Adam arithmetic are float64.

Evaluation: :func:`training.evaluation.evaluate_full_ranking` (theory.metrics kernels):
full ranking over all items, training items masked, averaged over users with test items.
"""
from __future__ import annotations

import argparse
import json
import math
import signal
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

import numpy as np
import scipy.sparse as sp
from numba import njit, prange

from training import sampling as S
from training.evaluation import evaluate_full_ranking
from simulations.rng import as_seed_sequence, branch_seed_sequence
from theory.estimators import _check_int, bpr_loss_grad_scalar

__all__ = [
    "MFModel",
    "TrainResult",
    "BatchResult",
    "MFTrainer",
    "train_mf",
    "batch_loss_and_grad",
    "init_model",
    "load_data",
    "main",
    "PAIR_CHUNK",
    "PARALLEL_MIN_WORK",
    "WEIGHT_DECAY_MODES",
]

PAIR_CHUNK = S.PAIR_CHUNK
WEIGHT_DECAY_MODES = ("adam", "batch")
ADAM_BETAS = (0.9, 0.999)
ADAM_EPS = 1e-8

# Spawn-key branches of the root seed.
_BRANCH_INIT, _BRANCH_ORDER, _BRANCH_POOLS = 0, 1, 2


# --------------------------------------------------------------------------------------
# Kernels
# --------------------------------------------------------------------------------------
# Reassociation lets LLVM vectorize the float64 dot products (products of float32 values are
# exact in float64; only the order of the 32 additions changes, identically on every thread).
_FASTMATH = {"reassoc", "contract", "nsz"}


@njit(cache=True, inline="always", fastmath=_FASTMATH)
def _dot(urow, V, j):
    s = 0.0
    for d in range(urow.shape[0]):
        s += urow[d] * np.float64(V[j, d])
    return s


@njit(parallel=True, cache=True, fastmath=_FASTMATH)
def _forward(U, V, users, pos, pools, draw, states, indptr, indices, exclude,
             code, m, rho, tau, ddof, dns_sum, chunk, l2, shift,
             loss_out, n_used_out, neg_out, coef_out, ub_out, gu_out, counts, starts,
             ent_item, ent_pair, ent_coef):
    """Phase 1, prange over fixed chunks of pairs; every write goes to the pair's own row
    (or the chunk's own row of ``counts``).

    Per pair b: draw the pool (``draw``), score it, weights and loss
    (``sampling.pool_loss_weights``), the used negatives ``neg_out[b, :n_used]`` and their
    coefficients ``c = w * l'(r_ui - r_uj)``, the user's factors ``ub_out[b]`` (float64), the
    user's gradient ``gu_out[b] = sum_t c_t (V_i - V_jt) + l2 U_u`` (the pool's rows are still
    in cache).  At the end of the chunk, its item-gradient entries -- (pos[b], b, sum_t c_t)
    then (negs[b, t], b, -c_t) for each pair b in order -- are grouped by item bucket
    (``item >> shift``) by a local counting sort into the chunk's own slice of the ``ent_*``
    arrays (slice ``c * chunk * (n_used_max + 1)`` onwards): bucket ``bk`` of chunk ``c`` holds
    ``counts[c, bk]`` entries from ``starts[c, bk]``, in batch order.
    """
    n_pairs = users.shape[0]
    n = pools.shape[1]
    dim = U.shape[1]
    n_items = V.shape[0]
    n_chunks = (n_pairs + chunk - 1) // chunk
    for c in prange(n_chunks):
        state = states[c]
        scores = np.empty(n)
        sel = np.empty(n, np.int64)
        weights = np.empty(n)
        losses = np.empty(n)
        vals = np.empty(n)
        urow = np.empty(dim)
        grow = np.empty(dim)
        mask = np.zeros((n_items + 7) // 8 if draw and exclude else 1, np.uint8)
        for t in range(counts.shape[1]):
            counts[c, t] = 0
        for b in range(c * chunk, min(n_pairs, (c + 1) * chunk)):
            u = users[b]
            i = pos[b]
            row = pools[b]
            if draw:
                S.draw_pool_row(state, n_items, indices, indptr[u], indptr[u + 1], exclude, mask,
                                row)
            for d in range(dim):
                urow[d] = U[u, d]
                ub_out[b, d] = urow[d]
                grow[d] = l2 * urow[d]
            pos_score = _dot(urow, V, i)
            for k in range(n):
                scores[k] = _dot(urow, V, row[k])
            loss, n_used = S.pool_loss_weights(code, m, rho, tau, ddof, dns_sum, pos_score,
                                               scores, state, sel, weights, losses, vals)
            loss_out[b] = loss
            n_used_out[b] = n_used
            counts[c, i >> shift] += 1
            csum = 0.0
            for t in range(n_used):
                k = sel[t]
                j = row[k]
                g = weights[t] * bpr_loss_grad_scalar(pos_score - scores[k])
                neg_out[b, t] = j
                coef_out[b, t] = g
                counts[c, j >> shift] += 1
                csum += g
                for d in range(dim):
                    grow[d] -= g * np.float64(V[j, d])
            for d in range(dim):
                gu_out[b, d] = grow[d] + csum * np.float64(V[i, d])
        # Local counting sort of the chunk's entries by bucket.
        e = c * chunk * (neg_out.shape[1] + 1)
        for t in range(counts.shape[1]):
            starts[c, t] = e
            e += counts[c, t]
        cursor = starts[c].copy()
        for b in range(c * chunk, min(n_pairs, (c + 1) * chunk)):
            csum = 0.0
            for t in range(n_used_out[b]):
                csum += coef_out[b, t]
            i = pos[b]
            e = cursor[i >> shift]
            cursor[i >> shift] = e + 1
            ent_item[e] = i
            ent_pair[e] = b
            ent_coef[e] = csum
            for t in range(n_used_out[b]):
                j = neg_out[b, t]
                e = cursor[j >> shift]
                cursor[j >> shift] = e + 1
                ent_item[e] = j
                ent_pair[e] = b
                ent_coef[e] = -coef_out[b, t]


@njit(parallel=True, cache=True)
def _accumulate_items(V, ent_item, ent_pair, ent_coef, counts, starts, ub, l2, gV, touched):
    """Phase 2: prange over item buckets (each owns its rows of ``gV``): for every chunk in
    order, the chunk's entries of the bucket: gV[j] += coef * U_u (+ l2 * V_j per
    occurrence).  Each gradient row is summed by one thread in batch order; a bucket's rows
    (1024 items x dim float64) stay in cache while the scattered updates land."""
    dim = V.shape[1]
    for bk in prange(counts.shape[1]):
        for c in range(counts.shape[0]):
            for e in range(starts[c, bk], starts[c, bk] + counts[c, bk]):
                j = ent_item[e]
                p = ent_pair[e]
                cf = ent_coef[e]
                touched[j] = 1
                for d in range(dim):
                    gV[j, d] += cf * ub[p, d]
                if l2 > 0.0:
                    for d in range(dim):
                        gV[j, d] += l2 * np.float64(V[j, d])


@njit(cache=True)
def _accumulate_users(users, gu, gU, touched):
    """Phase 2c (serial, B rows): gU[u] += gu[b] in batch order."""
    dim = gU.shape[1]
    for b in range(users.shape[0]):
        u = users[b]
        touched[u] = 1
        for d in range(dim):
            gU[u, d] += gu[b, d]


@njit(cache=True, inline="always")
def _adam_entry(p, g, m1_old, m2_old, step_size, beta1, beta2, eps, inv_sqrt_bc2):
    m1 = np.float32(beta1 * np.float64(m1_old) + (1.0 - beta1) * g)
    m2 = np.float32(beta2 * np.float64(m2_old) + (1.0 - beta2) * g * g)
    return (np.float32(p - step_size * np.float64(m1) / (math.sqrt(np.float64(m2)) * inv_sqrt_bc2 + eps)),
            m1, m2)


@njit(cache=True, inline="always")
def _adam_row(P, G, touched, M1, M2, r, step_size, beta1, beta2, eps, inv_sqrt_bc2, wd):
    if touched[r] != 0:
        for d in range(P.shape[1]):
            p = np.float64(P[r, d])
            P[r, d], M1[r, d], M2[r, d] = _adam_entry(
                p, G[r, d] + wd * p, M1[r, d], M2[r, d], step_size, beta1, beta2, eps,
                inv_sqrt_bc2)
            G[r, d] = 0.0
        touched[r] = 0
    else:
        for d in range(P.shape[1]):
            p = np.float64(P[r, d])
            P[r, d], M1[r, d], M2[r, d] = _adam_entry(
                p, wd * p, M1[r, d], M2[r, d], step_size, beta1, beta2, eps, inv_sqrt_bc2)


@njit(parallel=True, cache=True)
def _adam(PU, GU, tU, M1U, M2U, PV, GV, tV, M1V, M2V, step_size, beta1, beta2, eps,
          inv_sqrt_bc2, wd):
    """torch.optim.Adam step on every entry of U and V (one parallel region).

    Dense, as torch with the dense gradients of ``nn.Embedding``: rows outside the batch
    have zero loss gradient but still get ``wd * p`` and the moment updates.  Gradient rows
    flagged in ``tU`` / ``tV`` are read, then zeroed with their flag.  Elementwise (float64
    arithmetic, float32 storage as torch's parameters and moments): no cross-thread
    interaction.
    """
    n_u = PU.shape[0]
    for r in prange(n_u + PV.shape[0]):
        if r < n_u:
            _adam_row(PU, GU, tU, M1U, M2U, r, step_size, beta1, beta2, eps, inv_sqrt_bc2, wd)
        else:
            _adam_row(PV, GV, tV, M1V, M2V, r - n_u, step_size, beta1, beta2, eps,
                      inv_sqrt_bc2, wd)


# --------------------------------------------------------------------------------------
# Data containers
# --------------------------------------------------------------------------------------
@dataclass
class MFModel:
    """Matrix-factorization model: ``score(u, i) = user_factors[u] @ item_factors[i]``."""

    user_factors: np.ndarray  # float32 (n_users, dim)
    item_factors: np.ndarray  # float32 (n_items, dim)

    def scores(self, users=None) -> np.ndarray:
        U = self.user_factors if users is None else self.user_factors[users]
        return U.astype(np.float64) @ self.item_factors.astype(np.float64).T

    def copy(self) -> "MFModel":
        return MFModel(self.user_factors.copy(), self.item_factors.copy())


class BatchResult(NamedTuple):
    """Loss and gradient of one batch (see :func:`batch_loss_and_grad`)."""

    losses: np.ndarray     # (B,) per-pair loss sum_k w_k l(r_ui - r_uk), float64
    grad_user: np.ndarray  # (n_users, dim) float64: gradient of losses.sum()
    grad_item: np.ndarray  # (n_items, dim) float64
    pools: np.ndarray      # (B, N) int64, the pools used


@dataclass
class TrainResult:
    """Outcome of :func:`train_mf`."""

    model: MFModel
    metrics: dict                     # final evaluation (recall@k, ndcg@k, precision@k, opauc@b)
    history: list = field(default_factory=list)  # one dict per completed epoch
    epochs_completed: int = 0
    interrupted: bool = False
    seconds_per_epoch: float = float("nan")  # mean training time per completed epoch
    eval_seconds: float = float("nan")      # time of the final evaluation
    n_train: int = 0
    n_test: int = 0
    config: dict = field(default_factory=dict)

    def summary(self) -> dict:
        """Flat JSON-ready dict: metrics, sizes, timing and configuration."""
        out = dict(self.metrics)
        out.update(n_train=self.n_train, n_test=self.n_test,
                   seconds_per_epoch=self.seconds_per_epoch, eval_seconds=self.eval_seconds,
                   epochs_completed=self.epochs_completed, interrupted=self.interrupted,
                   final_loss=self.history[-1]["loss"] if self.history else None)
        out.update(self.config)
        return out


# --------------------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------------------
def _csr(matrix, name):
    if not sp.issparse(matrix):
        matrix = sp.csr_matrix(np.asarray(matrix))
    m = sp.csr_matrix(matrix, copy=True)
    if m.ndim != 2:
        raise ValueError(f"{name} must be 2-D")
    m.sum_duplicates()
    m.eliminate_zeros()
    m.sort_indices()
    return m


PARALLEL_MIN_WORK = 2_000_000  # batch x pool x dim below which a batch runs on one thread
ITEM_BUCKET_SHIFT = 10  # item-gradient buckets of 1024 items (1024 x 32 float64 = 256 KB)


class _Workspace:
    """Per-batch buffers of the kernels, sized for batches of up to ``max_pairs`` pairs."""

    def __init__(self, max_pairs, pool_size, n_used_max, dim, n_items):
        self.pools = np.empty((max_pairs, pool_size), np.int64)
        self.loss = np.empty(max_pairs)
        self.n_used = np.empty(max_pairs, np.int64)
        self.negs = np.empty((max_pairs, n_used_max), np.int64)
        self.coefs = np.empty((max_pairs, n_used_max))
        self.ub = np.empty((max_pairs, dim))
        self.gu = np.empty((max_pairs, dim))
        self.n_buckets = max(1, (n_items + (1 << ITEM_BUCKET_SHIFT) - 1) >> ITEM_BUCKET_SHIFT)
        n_chunks = -(-max_pairs // PAIR_CHUNK)
        self.counts = np.zeros((n_chunks, self.n_buckets), np.int64)
        self.starts = np.zeros((n_chunks, self.n_buckets), np.int64)
        n_entries = n_chunks * PAIR_CHUNK * (n_used_max + 1)
        self.ent_item = np.empty(n_entries, np.int64)
        self.ent_pair = np.empty(n_entries, np.int64)
        self.ent_coef = np.empty(n_entries)


def _n_used_max(sampler, pool_size):
    if sampler.code == S.CODE_DNS:
        return sampler.m
    if sampler.code == S.CODE_DNS_PICK:
        return 1
    return pool_size


def _batch_gradients(ws, U, V, users, pos, draw, states, indptr, indices, sampler, l2,
                     gU, gV, touchedU, touchedV):
    """Run phases 1-2 on a batch: losses in ``ws.loss[:B]``, gradients added to gU, gV."""
    n = users.size
    n_chunks = -(-n // PAIR_CHUNK)
    counts, starts = ws.counts[:n_chunks], ws.starts[:n_chunks]
    _forward(U, V, users, pos, ws.pools[:n], draw, states, indptr, indices,
             sampler.pool == "negatives", *sampler.kernel_args(), PAIR_CHUNK, l2,
             ITEM_BUCKET_SHIFT, ws.loss[:n], ws.n_used[:n], ws.negs[:n], ws.coefs[:n],
             ws.ub[:n], ws.gu[:n], counts, starts, ws.ent_item, ws.ent_pair, ws.ent_coef)
    _accumulate_items(V, ws.ent_item, ws.ent_pair, ws.ent_coef, counts, starts, ws.ub, l2, gV,
                      touchedV)
    _accumulate_users(users, ws.gu[:n], gU, touchedU)


def _check_finite_scores(model: MFModel, epoch: int) -> None:
    """Raise FloatingPointError if the factors are not finite or their products could
    overflow float32 (Cauchy-Schwarz bound): the evaluation needs finite scores."""
    norms = []
    for name in ("user_factors", "item_factors"):
        f = getattr(model, name)
        if not np.all(np.isfinite(f)):
            raise FloatingPointError(f"training diverged: non-finite {name} after epoch {epoch} "
                                     "(lower the learning rate)")
        norms.append(float(np.sqrt((f.astype(np.float64) ** 2).sum(axis=1).max(initial=0.0))))
    if norms[0] * norms[1] > 1e30:
        raise FloatingPointError(f"training diverged: scores up to {norms[0] * norms[1]:.3g} "
                                 f"after epoch {epoch} (lower the learning rate)")


def init_model(n_users: int, n_items: int, dim: int = 32, init_std: float = 0.1,
               seed=0) -> MFModel:
    """N(0, init_std) float32 factors, from the seed's init branch (users first, then items)."""
    rng = np.random.Generator(np.random.PCG64(branch_seed_sequence(as_seed_sequence(seed),
                                                                   _BRANCH_INIT)))
    U = (rng.standard_normal((n_users, dim)) * init_std).astype(np.float32)
    V = (rng.standard_normal((n_items, dim)) * init_std).astype(np.float32)
    return MFModel(U, V)


def batch_loss_and_grad(model: MFModel, users, pos_items, sampler: S.Sampler, pools=None,
                        train=None, seed=0) -> BatchResult:
    """Per-pair losses and the gradient of their sum, with the trainer's own kernels.

    Parameters
    ----------
    model : MFModel (float32 factors)
    users, pos_items : array_like of int, shape (B,)
    sampler : training.sampling.Sampler
    pools : array_like of int, shape (B, N), optional
        Explicit pools (any N >= the sampler's M for DNS); e.g. every negative of the user
        to compute the exact objectives of Theorems 1-2.  Default: drawn as in training
        (``sampler.n`` draws per pair, rejecting ``train`` positives if ``pool="negatives"``).
    train : sparse matrix, needed when pools are drawn.
    seed : seeds the pools (and the pick-one DNS variant); chunk c of :data:`PAIR_CHUNK` pairs
        uses ``training.sampling.states_from_seed(seed, n_chunks)[c]``.

    Returns
    -------
    BatchResult
        Gradients are those of ``losses.sum()`` with respect to the factors (weights held
        constant), without weight decay.
    """
    U = np.ascontiguousarray(model.user_factors, dtype=np.float32)
    V = np.ascontiguousarray(model.item_factors, dtype=np.float32)
    users = np.ascontiguousarray(users, dtype=np.int64)
    pos = np.ascontiguousarray(pos_items, dtype=np.int64)
    if users.shape != pos.shape or users.ndim != 1:
        raise ValueError("users and pos_items must be 1-D arrays of the same length")
    if users.size and (users.min() < 0 or users.max() >= U.shape[0]
                       or pos.min() < 0 or pos.max() >= V.shape[0]):
        raise ValueError("user or item id out of range")
    n_chunks = (users.size + PAIR_CHUNK - 1) // PAIR_CHUNK
    states = S.states_from_seed(seed, n_chunks)
    if pools is None:
        if train is None:
            raise ValueError("train is needed to draw pools")
        tr = _csr(train, "train")
        pools = np.empty((users.size, sampler.n), np.int64)
        draw = True
        indptr, indices = tr.indptr.astype(np.int64), tr.indices.astype(np.int64)
        if sampler.pool == "negatives" and users.size and np.any(np.diff(indptr)[users] >= V.shape[0]):
            raise ValueError("a user has no negative item")
    else:
        pools = np.array(pools, dtype=np.int64, copy=True)
        if pools.ndim != 2 or pools.shape[0] != users.size or pools.shape[1] < 1:
            raise ValueError(f"pools must have shape (B, N) with B = {users.size}")
        if pools.size and (pools.min() < 0 or pools.max() >= V.shape[0]):
            raise ValueError("pool item id out of range")
        if sampler.kind == "dns" and sampler.m > pools.shape[1]:
            raise ValueError(f"m = {sampler.m} exceeds the pool size {pools.shape[1]}")
        if sampler.kind == "softmax_v" and pools.shape[1] <= sampler.ddof:
            raise ValueError("softmax_v with ddof=1 needs pools of at least 2")
        draw = False
        indptr = np.zeros(U.shape[0] + 1, np.int64)
        indices = np.zeros(0, np.int64)
    ws = _Workspace(max(users.size, 1), pools.shape[1], _n_used_max(sampler, pools.shape[1]),
                    U.shape[1], V.shape[0])
    ws.pools[: users.size] = pools
    gU = np.zeros(U.shape)
    gV = np.zeros(V.shape)
    if users.size:
        _batch_gradients(ws, U, V, users, pos, draw, states, indptr, indices, sampler, 0.0, gU, gV,
                         np.zeros(U.shape[0], np.uint8), np.zeros(V.shape[0], np.uint8))
    loss = ws.loss[: users.size].copy()
    pools = ws.pools[: users.size].copy()
    return BatchResult(loss, gU, gV, pools)


class _InterruptFlag:
    """SIGINT -> set a flag (first press); a second press raises KeyboardInterrupt."""

    def __init__(self):
        self.set = False
        self._old = None

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            self._old = signal.getsignal(signal.SIGINT)
            signal.signal(signal.SIGINT, self._handler)
        return self

    def _handler(self, signum, frame):
        if self.set:
            raise KeyboardInterrupt
        self.set = True
        print("\ninterrupt: stopping after the current batch (press Ctrl-C again to abort)",
              file=sys.stderr, flush=True)

    def __exit__(self, *exc):
        if self._old is not None:
            signal.signal(signal.SIGINT, self._old)
        return False


# --------------------------------------------------------------------------------------
# Trainer
# --------------------------------------------------------------------------------------
class MFTrainer:
    """Stateful MF-BPR trainer (model, Adam state, epoch counter).

    Parameters
    ----------
    train : sparse matrix (n_users, n_items)
        Training interactions (the pairs and, with ``pool="negatives"``, the exclusions).
    sampler : training.sampling.Sampler
    dim : int, embedding dimension (32).
    batch_size : int, pairs per batch (4096).
    lr : float, Adam learning rate (1e-3).
    weight_decay : float >= 0 (0.01, the authors' default).
    weight_decay_mode : {"adam", "batch"}; see the module docstring.
    lr_decay : bool, step decay ``lr * gamma ** (epoch // step)`` (True: the authors' code).
    lr_decay_gamma, lr_decay_step : 0.95, 5.
    init_std : float, N(0, init_std) initialization (0.1).
    seed : int, SeedSequence or Generator.  Init, pair orders and pools come from disjoint
        branches of it; the same seed gives the same model for any thread count.
    threads : int, optional
        numba threads for training.  Default: the current ``numba.get_num_threads()`` when a
        batch is big
        enough to pay for a fork-join (batch x N x dim >= :data:`PARALLEL_MIN_WORK`), else 1
        (tiny batches run faster on one thread, and a fork-join waits for every thread,
        which costs a whole time slice on a busy machine).  Results never depend on it.
    """

    def __init__(self, train, sampler: S.Sampler, *, dim: int = 32, batch_size: int = 4096,
                 lr: float = 1e-3, weight_decay: float = 0.01, weight_decay_mode: str = "adam",
                 lr_decay: bool = True, lr_decay_gamma: float = 0.95, lr_decay_step: int = 5,
                 init_std: float = 0.1, seed=0, threads=None):
        if not isinstance(sampler, S.Sampler):
            raise ValueError("sampler must be a training.sampling.Sampler")
        self.train = _csr(train, "train")
        n_users, n_items = self.train.shape
        self.sampler = sampler
        self.dim = _check_int(dim, "dim", 1)
        self.batch_size = _check_int(batch_size, "batch_size", 1)
        self.lr = S._positive(lr, "lr")
        if not (weight_decay >= 0) or not math.isfinite(weight_decay):
            raise ValueError(f"weight_decay must be >= 0, got {weight_decay!r}")
        self.weight_decay = float(weight_decay)
        if weight_decay_mode not in WEIGHT_DECAY_MODES:
            raise ValueError(f"weight_decay_mode must be one of {WEIGHT_DECAY_MODES}, "
                             f"got {weight_decay_mode!r}")
        self.weight_decay_mode = weight_decay_mode
        self.lr_decay = bool(lr_decay)
        self.lr_decay_gamma = S._positive(lr_decay_gamma, "lr_decay_gamma")
        self.lr_decay_step = _check_int(lr_decay_step, "lr_decay_step", 1)
        self.init_std = S._positive(init_std, "init_std")
        self.root = as_seed_sequence(seed)
        self.indptr = self.train.indptr.astype(np.int64)
        self.indices = self.train.indices.astype(np.int64)
        counts = np.diff(self.indptr)
        if sampler.pool == "negatives" and np.any(counts >= n_items):
            raise ValueError("a user has every item in train: no negative to sample")
        self.pair_users = np.repeat(np.arange(n_users, dtype=np.int64), counts)
        self.pair_items = self.indices.copy()
        if self.pair_users.size == 0:
            raise ValueError("train has no interaction")
        self.model = init_model(n_users, n_items, self.dim, self.init_std, self.root)
        self._m1 = [np.zeros_like(self.model.user_factors), np.zeros_like(self.model.item_factors)]
        self._m2 = [np.zeros_like(self.model.user_factors), np.zeros_like(self.model.item_factors)]
        self._grad = [np.zeros(self.model.user_factors.shape), np.zeros(self.model.item_factors.shape)]
        self._touched = [np.zeros(n_users, np.uint8), np.zeros(n_items, np.uint8)]
        self.step = 0
        self.epoch = 0
        if threads is not None:
            threads = _check_int(threads, "threads", 1)
        self.threads = threads
        n = min(self.batch_size, self.pair_users.size)
        self._ws = _Workspace(n, sampler.n, _n_used_max(sampler, sampler.n), self.dim, n_items)

    @property
    def n_pairs(self) -> int:
        return int(self.pair_users.size)

    @property
    def n_batches(self) -> int:
        return -(-self.n_pairs // self.batch_size)

    def n_threads(self) -> int:
        """Threads the training kernels use (see the ``threads`` parameter)."""
        import numba

        if self.threads is not None:
            return min(self.threads, numba.config.NUMBA_NUM_THREADS)
        work = min(self.batch_size, self.n_pairs) * self.sampler.n * self.dim
        return numba.get_num_threads() if work >= PARALLEL_MIN_WORK else 1

    def current_lr(self, epoch=None) -> float:
        e = self.epoch if epoch is None else epoch
        if not self.lr_decay:
            return self.lr
        return self.lr * self.lr_decay_gamma ** (e // self.lr_decay_step)

    def epoch_plan(self, epoch: int):
        """(pair order, xoshiro states[n_batches * chunks_per_batch, 4]) of an epoch."""
        rng = np.random.Generator(np.random.PCG64(
            branch_seed_sequence(self.root, _BRANCH_ORDER, epoch)))
        order = rng.permutation(self.n_pairs)
        per_batch = -(-self.batch_size // PAIR_CHUNK)
        states = S.states_from_seed(self.root, self.n_batches * per_batch, _BRANCH_POOLS, epoch)
        return order, states, per_batch

    def train_batch(self, users, pos, states, lr) -> float:
        """One Adam step on a batch; returns the summed loss of the batch."""
        U, V = self.model.user_factors, self.model.item_factors
        batch_l2 = self.weight_decay if self.weight_decay_mode == "batch" else 0.0
        adam_wd = self.weight_decay if self.weight_decay_mode == "adam" else 0.0
        _batch_gradients(self._ws, U, V, users, pos, True, states, self.indptr, self.indices,
                         self.sampler, batch_l2, self._grad[0], self._grad[1], self._touched[0],
                         self._touched[1])
        self.step += 1
        b1, b2 = ADAM_BETAS
        step_size = lr / (1.0 - b1 ** self.step)
        inv_sqrt_bc2 = 1.0 / math.sqrt(1.0 - b2 ** self.step)
        _adam(U, self._grad[0], self._touched[0], self._m1[0], self._m2[0],
              V, self._grad[1], self._touched[1], self._m1[1], self._m2[1],
              step_size, b1, b2, ADAM_EPS, inv_sqrt_bc2, adam_wd)
        return float(self._ws.loss[: users.size].sum())

    def run_epoch(self, progress: bool = False, stop=None) -> dict:
        """Train one epoch.  ``stop()`` is polled after every batch; when it returns True the
        epoch ends early and the returned record has ``"completed": False``."""
        lr = self.current_lr()
        order, states, per_batch = self.epoch_plan(self.epoch)
        bar = None
        if progress:
            from tqdm import tqdm
            bar = tqdm(total=self.n_batches, desc=f"epoch {self.epoch + 1}", unit="batch",
                       leave=False, file=sys.stderr)
        import numba

        previous_threads = numba.get_num_threads()
        numba.set_num_threads(self.n_threads())
        start = time.perf_counter()
        total = 0.0
        completed = True
        try:
            for t in range(self.n_batches):
                idx = order[t * self.batch_size:(t + 1) * self.batch_size]
                total += self.train_batch(self.pair_users[idx], self.pair_items[idx],
                                          states[t * per_batch:(t + 1) * per_batch], lr)
                if bar is not None:
                    bar.update(1)
                    if t % 16 == 0:
                        bar.set_postfix(loss=f"{total / min(self.n_pairs, (t + 1) * self.batch_size):.4f}")
                if stop is not None and stop():
                    completed = t == self.n_batches - 1
                    break
        finally:
            numba.set_num_threads(previous_threads)
            if bar is not None:
                bar.close()
        seconds = time.perf_counter() - start
        record = {"epoch": self.epoch + 1, "loss": total / self.n_pairs, "lr": lr,
                  "seconds": seconds, "completed": completed}
        if completed:
            self.epoch += 1
        return record


def _config_dict(trainer: MFTrainer, epochs) -> dict:
    s = trainer.sampler
    return {"sampler": s.kind, "sampler_label": s.label(), "m": s.m, "n": s.n, "rho": s.rho,
            "tau": s.tau, "pool": s.pool, "reduction": s.reduction, "variant": s.variant,
            "ddof": s.ddof, "dim": trainer.dim, "batch_size": trainer.batch_size,
            "lr": trainer.lr, "weight_decay": trainer.weight_decay,
            "weight_decay_mode": trainer.weight_decay_mode, "lr_decay": trainer.lr_decay,
            "epochs": epochs, "n_users": trainer.train.shape[0],
            "n_items": trainer.train.shape[1]}


def train_mf(train, test, sampler: S.Sampler, *, epochs: int = 20, ks=(5, 20, 50), betas=(),
             eval_every: int = 0, progress: bool = False, handle_sigint: bool = True,
             **trainer_options) -> TrainResult:
    """Train MF-BPR with ``sampler`` for ``epochs`` epochs, then evaluate on ``test``.

    Parameters
    ----------
    train, test : sparse matrices (n_users, n_items), disjoint.
    sampler : training.sampling.Sampler
    epochs : int >= 0
    ks : Top-K cut-offs of the evaluation; betas : OPAUC levels (raw area, optional).
    eval_every : evaluate every this many epochs into ``history`` (0: only at the end).
    progress : tqdm bar per epoch (stderr).
    handle_sigint : the first Ctrl-C stops after the current batch (a second one aborts);
        the partial epoch is then discarded: the model of the last completed epoch is
        restored and evaluated (``interrupted=True``, ``epochs_completed`` says how many).
    **trainer_options : passed to :class:`MFTrainer` (dim, batch_size, lr, weight_decay,
        weight_decay_mode, lr_decay, lr_decay_gamma, lr_decay_step, init_std, seed, threads).

    Returns
    -------
    TrainResult
    """
    epochs = _check_int(epochs, "epochs", 0)
    eval_every = _check_int(eval_every, "eval_every", 0)
    trainer = MFTrainer(train, sampler, **trainer_options)
    test = _csr(test, "test")
    if test.shape != trainer.train.shape:
        raise ValueError(f"test must have shape {trainer.train.shape}, got {test.shape}")

    def evaluate(model):
        _check_finite_scores(model, trainer.epoch)
        return evaluate_full_ranking(model.user_factors, model.item_factors, trainer.train, test,
                                     ks=ks, betas=betas).mean()

    history = []
    interrupted = False
    flag = _InterruptFlag()
    snapshot = trainer.model.copy()
    with (flag if handle_sigint else _NullContext()):
        for _ in range(epochs):
            record = trainer.run_epoch(progress=progress, stop=lambda: flag.set)
            if not record["completed"]:
                interrupted = True
                trainer.model.user_factors[...] = snapshot.user_factors
                trainer.model.item_factors[...] = snapshot.item_factors
                break
            if eval_every and trainer.epoch % eval_every == 0 and trainer.epoch < epochs:
                record.update(evaluate(trainer.model))
            history.append(record)
            if flag.set:
                interrupted = trainer.epoch < epochs
                break
            snapshot.user_factors[...] = trainer.model.user_factors
            snapshot.item_factors[...] = trainer.model.item_factors
    start = time.perf_counter()
    metrics = evaluate(trainer.model)
    eval_seconds = time.perf_counter() - start
    if history:
        history[-1].update(metrics)
    secs = [h["seconds"] for h in history]
    return TrainResult(model=trainer.model, metrics=metrics, history=history,
                       epochs_completed=trainer.epoch, interrupted=interrupted,
                       seconds_per_epoch=float(np.mean(secs)) if secs else float("nan"),
                       eval_seconds=eval_seconds, n_train=int(trainer.train.nnz),
                       n_test=int(test.nnz), config=_config_dict(trainer, epochs))


class _NullContext:
    set = False

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


# --------------------------------------------------------------------------------------
# Command line
# --------------------------------------------------------------------------------------
def load_data(path: str, seed: int = 0, *, planted_users: int = 2000, planted_items: int = 1000,
              train_fraction: float = 0.8):
    """(train, test) from a .mat file (split_per_user(seed)), a LightGCN train.txt (test.txt
    beside it; or a folder holding both), or ``"planted"`` (planted_dataset(seed), split)."""
    from training import data as D

    if path == "planted":
        planted = D.planted_dataset(planted_users, planted_items, seed=seed)
        return D.split_per_user(planted.matrix, train_fraction, seed)
    p = Path(path)
    if p.is_dir():
        p = p / "train.txt"
    if p.suffix.lower() == ".mat":
        return D.split_per_user(D.load_mat(p), train_fraction, seed)
    test_path = p.with_name("test.txt")
    if not p.exists():
        raise OSError(f"{p}: no such file")
    if not test_path.exists():
        raise OSError(f"{test_path}: no such file (a LightGCN train.txt needs test.txt beside it)")
    return D.load_lightgcn_split(p, test_path)


def _parser():
    parser = argparse.ArgumentParser(
        prog="python -m training",
        description="Train MF-BPR with a negative sampler and evaluate by full ranking.")
    parser.add_argument("--data", required=True,
                        help=".mat file, LightGCN train.txt (test.txt beside it), or 'planted'")
    parser.add_argument("--sampler", required=True, choices=("uniform", "dns", "softmax_v",
                                                             "score_softmax"))
    parser.add_argument("--m", type=int, default=None, help="M of DNS(M,N) (default 1)")
    parser.add_argument("--n", type=int, default=None,
                        help="pool size N (default 200; 1 for uniform)")
    parser.add_argument("--rho", type=float, default=1.0, help="rho of Softmax-v (default 1)")
    parser.add_argument("--tau", type=float, default=1.0, help="tau of score_softmax (default 1)")
    parser.add_argument("--variant", choices=S.VARIANTS, default="weighted",
                        help="DNS: weight all top M (default) or pick one of them")
    parser.add_argument("--reduction", choices=S.REDUCTIONS, default="mean",
                        help="DNS top-M weights 1/M (mean, the paper) or 1 (sum, the authors' code)")
    parser.add_argument("--ddof", type=int, choices=(0, 1), default=0,
                        help="Softmax-v variance: 0 population (Eq. 18), 1 unbiased (authors)")
    parser.add_argument("--pool", choices=S.POOLS, default="negatives",
                        help="pool over the user's negatives (default) or all items (authors)")
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--dim", type=int, default=32)
    parser.add_argument("--batch-size", type=int, default=4096)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--weight-decay", type=float, default=0.01)
    parser.add_argument("--weight-decay-mode", choices=WEIGHT_DECAY_MODES, default="adam")
    parser.add_argument("--no-lr-decay", action="store_true",
                        help="constant lr (default: x0.95 every 5 epochs, the authors' code)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--ks", type=int, nargs="+", default=[5, 20, 50])
    parser.add_argument("--betas", type=float, nargs="*", default=[])
    parser.add_argument("--eval-every", type=int, default=0)
    parser.add_argument("--threads", type=int, default=None, help="numba threads (default all)")
    parser.add_argument("--planted-users", type=int, default=2000)
    parser.add_argument("--planted-items", type=int, default=1000)
    parser.add_argument("--no-progress", action="store_true")
    parser.add_argument("--save", default=None, help="write the factors to this .npz file")
    parser.add_argument("--json", action="store_true",
                        help="print one JSON object as the last line of stdout")
    return parser


def _validate(parser, args):
    if args.n is None:
        args.n = 1 if args.sampler == "uniform" else 200
    if args.m is None:
        args.m = 1
    if args.n < 1:
        parser.error(f"argument --n: must be >= 1, got {args.n}")
    if args.sampler == "dns" and not 1 <= args.m <= args.n:
        parser.error(f"argument --m: must be in [1, --n = {args.n}], got {args.m}")
    if not (args.rho > 0) or not math.isfinite(args.rho):
        parser.error(f"argument --rho: must be > 0, got {args.rho}")
    if not (args.tau > 0) or not math.isfinite(args.tau):
        parser.error(f"argument --tau: must be > 0, got {args.tau}")
    if args.sampler == "softmax_v" and args.n <= args.ddof:
        parser.error(f"argument --n: Softmax-v with --ddof {args.ddof} needs --n > {args.ddof}")
    for name in ("epochs", "eval_every"):
        if getattr(args, name) < 0:
            parser.error(f"argument --{name.replace('_', '-')}: must be >= 0")
    for name in ("dim", "batch_size", "planted_users", "planted_items"):
        if getattr(args, name) < 1:
            parser.error(f"argument --{name.replace('_', '-')}: must be >= 1")
    if not (args.lr > 0) or not math.isfinite(args.lr):
        parser.error(f"argument --lr: must be > 0, got {args.lr}")
    if not (args.weight_decay >= 0) or not math.isfinite(args.weight_decay):
        parser.error(f"argument --weight-decay: must be >= 0, got {args.weight_decay}")
    if args.seed < 0:
        parser.error(f"argument --seed: must be >= 0, got {args.seed}")
    if any(k < 1 for k in args.ks):
        parser.error("argument --ks: cut-offs must be >= 1")
    if any(not 0 < b <= 1 for b in args.betas):
        parser.error("argument --betas: levels must be in (0, 1]")
    if args.threads is not None and args.threads < 1:
        parser.error("argument --threads: must be >= 1")


def main(argv=None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    _validate(parser, args)
    try:
        train, test = load_data(args.data, args.seed, planted_users=args.planted_users,
                                planted_items=args.planted_items)
    except (OSError, ValueError) as exc:
        parser.error(f"argument --data: cannot read {args.data!r}: {exc}")
    if args.threads is not None:
        import numba

        numba.set_num_threads(min(args.threads, numba.config.NUMBA_NUM_THREADS))
    sampler = S.Sampler(args.sampler, n=args.n, m=args.m if args.sampler == "dns" else 1,
                        rho=args.rho, tau=args.tau, pool=args.pool, reduction=args.reduction,
                        variant=args.variant, ddof=args.ddof)
    try:
        result = train_mf(train, test, sampler, epochs=args.epochs, ks=args.ks, betas=args.betas,
                          eval_every=args.eval_every, progress=not args.no_progress,
                          dim=args.dim, batch_size=args.batch_size, lr=args.lr,
                          weight_decay=args.weight_decay, weight_decay_mode=args.weight_decay_mode,
                          lr_decay=not args.no_lr_decay, seed=args.seed)
    except ValueError as exc:  # e.g. a user without negatives
        parser.error(str(exc))
    except FloatingPointError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    if args.save:
        np.savez(args.save, user_factors=result.model.user_factors,
                 item_factors=result.model.item_factors)
    summary = result.summary()
    summary.update(data=str(args.data), seed=args.seed)
    if not args.json:
        for key in ("recall@5", "recall@20", "recall@50", "ndcg@5", "ndcg@20", "ndcg@50"):
            if key in summary:
                print(f"{key:>10}: {summary[key]:.4f}")
        print(f"seconds/epoch: {summary['seconds_per_epoch']:.3f}")
    else:
        print(json.dumps(summary, default=_json_default))
    return 0


def _json_default(x):
    if isinstance(x, (np.integer,)):
        return int(x)
    if isinstance(x, (np.floating,)):
        return float(x)
    raise TypeError(type(x).__name__)


if __name__ == "__main__":
    sys.exit(main())
