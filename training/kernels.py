"""Numba kernels of one training step: pools, scores, sampler weights, loss gradients, Adam.

The kernels work on *embeddings* (``user_emb``, ``item_emb``: float32, C-contiguous, score
``r_ui = user_emb[u] . item_emb[i]``), never on a model's parameters: a model
(:mod:`training.models`) hands its embeddings in and maps the embedding gradients these
kernels accumulate back to its parameters.  For MF the embeddings are the parameters.

Per pair (u, i) the pool of N negatives is scored and the pair's loss is
``sum_k w_k l(r_ui - r_uk)`` (paper Eq. 1 with the sampler's weights, Eqs. 2, 3, 17-18, 25;
weights are constants), ``l`` the BPR loss.  The gradient coefficient of a pool entry is
``c = w l'(r_ui - r_uk)``.

Parallel kernels without data races
-----------------------------------
Per batch, three parallel regions and one short serial loop:

1. :func:`forward`: prange over fixed chunks of :data:`PAIR_CHUNK` (64) pairs.  Each pair
   draws its pool from its chunk's xoshiro256++ state (rejecting training positives with a bit
   mask), scores it (float32 products summed in float64), gets the sampler's weights, loss
   and loss derivatives from the shared kernel ``training.sampling.pool_loss_weights``
   (theory.estimators' BPR loss) and writes only its own rows: loss, used negatives,
   coefficients, its user-gradient row.  At the end, the chunk groups its item-gradient
   entries by bucket of 1024 items (a local counting sort into its own slice).
2. :func:`accumulate_items`: prange over item buckets; a bucket's owner adds, chunk by chunk
   in order, its entries ``coef * user_emb[u]`` to its own rows of the float64 item gradient.
3. :func:`accumulate_users` (serial, one row per pair) adds the user-gradient rows.
4. :func:`adam`: dense and elementwise over two parameter arrays (rows flagged as touched
   read and clear their gradient).

Every gradient entry is therefore summed by one thread in batch order, and random numbers
depend only on (seed, epoch, batch, chunk): the same seed gives bit-identical results for
any ``NUMBA_NUM_THREADS`` (tested).  Parameters and Adam moments are float32 (as the
authors' torch model); scores, losses, gradients and Adam arithmetic are float64.
"""
from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
from numba import njit, prange

from simulations.rng import n_chunks as count_chunks
from training import sampling as S

__all__ = [
    "ITEM_BUCKET_SHIFT",
    "PAIR_CHUNK",
    "PARALLEL_MIN_WORK",
    "ItemEntries",
    "PairBatch",
    "PairOutputs",
    "Workspace",
    "accumulate_items",
    "accumulate_users",
    "adam",
    "batch_gradients",
    "forward",
    "n_used_max",
]

PAIR_CHUNK = S.PAIR_CHUNK
PARALLEL_MIN_WORK = 2_000_000  # batch x pool x dim below which a batch runs on one thread
ITEM_BUCKET_SHIFT = 10  # item-gradient buckets of 1024 items (1024 x 32 float64 = 256 KB)

# Reassociation lets LLVM vectorize the float64 dot products (products of float32 values are
# exact in float64; only the order of the 32 additions changes, identically on every thread).
# The same flags as the sampler kernels it calls (training.sampling.FASTMATH, set explicitly).
_FASTMATH = S.FASTMATH


@njit(cache=True, inline="always", fastmath=_FASTMATH)
def _dot(urow, V, j):
    s = 0.0
    for d in range(urow.shape[0]):
        s += urow[d] * np.float64(V[j, d])
    return s


class PairBatch(NamedTuple):
    """The pairs of a batch and where their pools come from (:func:`forward`'s inputs).

    ``pools`` (B, N) int64 is filled by the kernel when ``draw`` (from the chunk's xoshiro
    state ``states[c]``, rejecting the user's ``indices[indptr[u]:indptr[u + 1]]`` when
    ``exclude``), else read.
    """

    users: np.ndarray    # (B,) int64
    pos: np.ndarray      # (B,) int64
    pools: np.ndarray    # (B, N) int64
    draw: bool
    exclude: bool
    states: np.ndarray   # (n_chunks, 4) uint64
    indptr: np.ndarray   # int64, the training matrix (CSR)
    indices: np.ndarray  # int64


class PairOutputs(NamedTuple):
    """Per-pair outputs of :func:`forward` (row b belongs to pair b).  With ``full_pool``
    ``negs`` and ``coefs`` are not written (the used negatives are the pools, in order)."""

    loss: np.ndarray     # (B,) float64
    n_used: np.ndarray   # (B,) int64
    negs: np.ndarray     # (B, n_used_max) int64, the used negatives
    coefs: np.ndarray    # (B, n_used_max) float64, c = w l'(r_ui - r_uj)
    csum: np.ndarray     # (B,) float64, sum of coefs
    gu: np.ndarray       # (B, dim) float64, the user-gradient row


class ItemEntries(NamedTuple):
    """Item-gradient entries grouped by chunk and item bucket (:func:`forward` writes them,
    :func:`accumulate_items` reads them): bucket ``bk`` (items ``bk << shift`` onwards) of
    chunk ``c`` holds ``counts[c, bk]`` entries from ``starts[c, bk]``, in batch order."""

    counts: np.ndarray   # (n_chunks, n_buckets) int64
    starts: np.ndarray   # (n_chunks, n_buckets) int64
    item: np.ndarray     # int32
    user: np.ndarray     # int32
    coef: np.ndarray     # float64
    shift: int           # bucket of item j: j >> shift (ITEM_BUCKET_SHIFT when built)


@njit(cache=True, inline="always", fastmath=_FASTMATH)
def _score_pair(U, V, u, i, row, urow, grow, scores, l2):
    """Copy the user's row, start its gradient at ``l2 * U_u``, score the positive and the
    pool into ``scores``; returns the positive's score."""
    for d in range(urow.shape[0]):
        urow[d] = U[u, d]
        grow[d] = l2 * urow[d]
    for k in range(row.shape[0]):
        scores[k] = _dot(urow, V, row[k])
    return _dot(urow, V, i)


@njit(cache=True, fastmath=_FASTMATH)
def _pair_gradient(V, b, i, row, scratch, n_used, grow, out, counts_c, shift):
    """Coefficients ``c_t = w_t l'_t`` of the used negatives, their items' bucket counts
    and the user's gradient row ``grow - sum_t c_t V_jt + (sum_t c_t) V_i``."""
    csum = 0.0
    for t in range(n_used):
        j = row[scratch.sel[t]]
        g = scratch.weights[t] * scratch.dls[t]
        out.negs[b, t] = j
        out.coefs[b, t] = g
        counts_c[j >> shift] += 1
        csum += g
        for d in range(grow.shape[0]):
            grow[d] -= g * np.float64(V[j, d])
    out.csum[b] = csum
    for d in range(grow.shape[0]):
        out.gu[b, d] = grow[d] + csum * np.float64(V[i, d])


@njit(cache=True, fastmath=_FASTMATH)
def _sort_chunk_entries(c, batch, out, ent):
    """Local counting sort of chunk ``c``'s item-gradient entries by bucket: (pos[b],
    users[b], csum[b]) then (negs[b, t], users[b], -coefs[b, t]) for each pair b in order,
    into the chunk's own slice (from ``c * PAIR_CHUNK * (n_used_max + 1)``)."""
    n_pairs = batch.users.shape[0]
    e = c * PAIR_CHUNK * (out.negs.shape[1] + 1)
    for t in range(ent.counts.shape[1]):
        ent.starts[c, t] = e
        e += ent.counts[c, t]
    cursor = ent.starts[c].copy()
    for b in range(c * PAIR_CHUNK, min(n_pairs, (c + 1) * PAIR_CHUNK)):
        u = np.int32(batch.users[b])
        i = batch.pos[b]
        e = cursor[i >> ent.shift]
        cursor[i >> ent.shift] = e + 1
        ent.item[e] = i
        ent.user[e] = u
        ent.coef[e] = out.csum[b]
        for t in range(out.n_used[b]):
            j = out.negs[b, t]
            e = cursor[j >> ent.shift]
            cursor[j >> ent.shift] = e + 1
            ent.item[e] = j
            ent.user[e] = u
            ent.coef[e] = -out.coefs[b, t]


@njit(cache=True, fastmath=_FASTMATH)
def _full_pool_chunk(U, V, lo, hi, users, pos, pools, draw, exclude, state, indptr, indices,
                     mask, sampler, l2, scores, scratch, urow, grow, loss_out, n_used_out,
                     csum_out, gu_out, counts_c, starts_c, e0, ent_item, ent_user, ent_coef,
                     shift):
    """Pairs ``lo:hi`` (one chunk) of a full-pool sampler (``SamplerSpec.full_pool``: every
    pool position used, in pool order, and no random draw in the weights), writing the
    item-gradient entries straight into their bucket slots.

    The chunk's pools are drawn first (the same stream as :func:`forward`'s pair-by-pair
    draws, since the weights draw nothing), so the bucket counts -- the positive and the N
    pool items of each pair -- are known before the pairs are scored: no ``negs``/``coefs``
    rows and no second pass over them (:func:`_sort_chunk_entries`).  The entries, their
    order in each bucket (per pair in batch order: the positive, then the pool in order) and
    every float operation are those of the general path, so the results are bit-identical.
    """
    n_items = V.shape[0]
    n = pools.shape[1]
    for b in range(lo, hi):
        u = users[b]
        if draw:
            S.draw_pool_row(state, n_items, indices, indptr[u], indptr[u + 1], exclude, mask,
                            pools[b])
        counts_c[pos[b] >> shift] += 1
        for k in range(n):
            counts_c[pools[b, k] >> shift] += 1
    e = e0
    for t in range(counts_c.shape[0]):
        starts_c[t] = e
        e += counts_c[t]
    cursor = starts_c.copy()
    for b in range(lo, hi):
        u = users[b]
        i = pos[b]
        row = pools[b]
        pos_score = _score_pair(U, V, u, i, row, urow, grow, scores, l2)
        loss, n_used = S.pool_loss_weights(sampler, pos_score, scores, state, scratch)
        loss_out[b] = loss
        n_used_out[b] = n_used
        u32 = np.int32(u)
        e_pos = cursor[i >> shift]  # the positive's entry comes first; its coef is csum
        cursor[i >> shift] = e_pos + 1
        ent_item[e_pos] = i
        ent_user[e_pos] = u32
        # Two passes: the user's gradient first, with no store in its loop that could alias
        # ``grow``, then the entries (about 2 ms of a 25 ms Softmax-v batch, measured).  Same
        # operations, same bits.
        coefs = scratch.vals  # free once the weights are computed
        csum = 0.0
        for t in range(n_used):
            j = row[scratch.sel[t]]
            g = scratch.weights[t] * scratch.dls[t]
            coefs[t] = g
            csum += g
            for d in range(grow.shape[0]):
                grow[d] -= g * np.float64(V[j, d])
        for t in range(n_used):
            j = row[scratch.sel[t]]
            e = cursor[j >> shift]
            cursor[j >> shift] = e + 1
            ent_item[e] = j
            ent_user[e] = u32
            ent_coef[e] = -coefs[t]
        ent_coef[e_pos] = csum
        csum_out[b] = csum
        for d in range(grow.shape[0]):
            gu_out[b, d] = grow[d] + csum * np.float64(V[i, d])


@njit(parallel=True, cache=True, fastmath=_FASTMATH)
def forward(U, V, batch, sampler, l2, out, ent, full_pool=False):
    """Phase 1, prange over fixed chunks of :data:`PAIR_CHUNK` pairs; every write goes to the
    pair's own row of ``out`` (:class:`PairOutputs`) or the chunk's own row of ``ent.counts``.

    Per pair b of ``batch`` (:class:`PairBatch`): draw the pool (if ``batch.draw``), score
    it, weights, loss and loss derivatives (``sampling.pool_loss_weights`` with ``sampler``,
    a :class:`training.sampling.KernelSampler`: one exponential per pool entry serves its
    loss and its derivative), the used negatives ``out.negs[b, :n_used]`` and their
    coefficients ``c = w * l'(r_ui - r_uj)``, their sum ``out.csum[b]``, the user's gradient
    ``out.gu[b] = sum_t c_t (V_i - V_jt) + l2 U_u`` (the pool's rows are still in cache).
    At the end of the chunk, its item-gradient entries are grouped by item bucket
    (``item >> ent.shift``) into ``ent`` (:class:`ItemEntries`).
    """
    # Fields are unpacked before the prange: numba's parfor lowering loses writes made to
    # ``tuple.field[i]`` in a prange body (seen with numba 0.62: the stores never reach the
    # arrays).  The helpers that take the tuples are called, not inlined, for that reason.
    users, pos, pools, draw, exclude, states, indptr, indices = batch
    loss_out, n_used_out, counts, shift = out.loss, out.n_used, ent.counts, ent.shift
    csum_out, gu_out, starts, width = out.csum, out.gu, ent.starts, out.negs.shape[1] + 1
    ent_item, ent_user, ent_coef = ent.item, ent.user, ent.coef
    n_pairs = users.shape[0]
    n = pools.shape[1]
    dim = U.shape[1]
    n_items = V.shape[0]
    n_chunks = (n_pairs + PAIR_CHUNK - 1) // PAIR_CHUNK
    for c in prange(n_chunks):
        state = states[c]
        scores = np.empty(n)
        scratch = S.new_scratch(n)
        urow = np.empty(dim)
        grow = np.empty(dim)
        mask = np.zeros((n_items + 7) // 8 if draw and exclude else 1, np.uint8)
        for t in range(counts.shape[1]):
            counts[c, t] = 0
        if full_pool:
            _full_pool_chunk(U, V, c * PAIR_CHUNK, min(n_pairs, (c + 1) * PAIR_CHUNK), users,
                             pos, pools, draw, exclude, state, indptr, indices, mask, sampler,
                             l2, scores, scratch, urow, grow, loss_out, n_used_out, csum_out,
                             gu_out, counts[c], starts[c], c * PAIR_CHUNK * width, ent_item,
                             ent_user, ent_coef, shift)
        else:
            for b in range(c * PAIR_CHUNK, min(n_pairs, (c + 1) * PAIR_CHUNK)):
                u = users[b]
                i = pos[b]
                row = pools[b]
                if draw:
                    S.draw_pool_row(state, n_items, indices, indptr[u], indptr[u + 1], exclude,
                                    mask, row)
                pos_score = _score_pair(U, V, u, i, row, urow, grow, scores, l2)
                loss, n_used = S.pool_loss_weights(sampler, pos_score, scores, state, scratch)
                loss_out[b] = loss
                n_used_out[b] = n_used
                counts[c, i >> shift] += 1
                _pair_gradient(V, b, i, row, scratch, n_used, grow, out, counts[c], shift)
            _sort_chunk_entries(c, batch, out, ent)


@njit(parallel=True, cache=True, fastmath=False)
def accumulate_items(U, V, ent, l2, gV, touched):
    """Phase 2: prange over item buckets (each owns its rows of ``gV``): for every chunk in
    order, the chunk's entries of the bucket: gV[j] += coef * U_u (+ l2 * V_j per
    occurrence; ``U_u`` read as float32 and widened exactly, half the bytes of a float64
    copy).  Each gradient row is summed by one thread in batch order; a bucket's rows
    (1024 items x dim float64) stay in cache while the scattered updates land."""
    dim = V.shape[1]
    counts, starts, ent_item, ent_user, ent_coef, _ = ent  # unpacked before the prange (forward)
    for bk in prange(counts.shape[1]):
        for c in range(counts.shape[0]):
            for e in range(starts[c, bk], starts[c, bk] + counts[c, bk]):
                j = ent_item[e]
                u = ent_user[e]
                cf = ent_coef[e]
                touched[j] = 1
                for d in range(dim):
                    gV[j, d] += cf * np.float64(U[u, d])
                if l2 > 0.0:
                    for d in range(dim):
                        gV[j, d] += l2 * np.float64(V[j, d])


@njit(cache=True, fastmath=False)  # exact: Adam and the serial passes, as ever
def accumulate_users(users, gu, gU, touched):
    """Phase 2c (serial, B rows): gU[u] += gu[b] in batch order."""
    dim = gU.shape[1]
    for b in range(users.shape[0]):
        u = users[b]
        touched[u] = 1
        for d in range(dim):
            gU[u, d] += gu[b, d]


@njit(cache=True, inline="always", fastmath=False)
def _adam_entry(p, g, m1_old, m2_old, step_size, beta1, beta2, eps, inv_sqrt_bc2):
    m1 = np.float32(beta1 * np.float64(m1_old) + (1.0 - beta1) * g)
    m2 = np.float32(beta2 * np.float64(m2_old) + (1.0 - beta2) * g * g)
    return (np.float32(p - step_size * np.float64(m1) / (math.sqrt(np.float64(m2)) * inv_sqrt_bc2 + eps)),
            m1, m2)


@njit(cache=True, inline="always", fastmath=False)
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


@njit(parallel=True, cache=True, fastmath=False)
def adam(PU, GU, tU, M1U, M2U, PV, GV, tV, M1V, M2V, step_size, beta1, beta2, eps,
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





class Workspace:
    """Per-batch buffers of the kernels, sized for batches of up to ``max_pairs`` pairs."""

    def __init__(self, max_pairs, pool_size, n_used_max, dim, n_items):
        self.pools = np.empty((max_pairs, pool_size), np.int64)
        self.loss = np.empty(max_pairs)
        self.n_used = np.empty(max_pairs, np.int64)
        self.negs = np.empty((max_pairs, n_used_max), np.int64)
        self.coefs = np.empty((max_pairs, n_used_max))
        self.csum = np.empty(max_pairs)
        self.gu = np.empty((max_pairs, dim))
        self.shift = ITEM_BUCKET_SHIFT
        self.n_buckets = max(1, (n_items + (1 << self.shift) - 1) >> self.shift)
        n_chunks = count_chunks(max_pairs, PAIR_CHUNK)
        self.counts = np.zeros((n_chunks, self.n_buckets), np.int64)
        self.starts = np.zeros((n_chunks, self.n_buckets), np.int64)
        n_entries = n_chunks * PAIR_CHUNK * (n_used_max + 1)
        # int32 ids (n_users, n_items < 2**31): 16 bytes per entry instead of 24.
        self.ent_item = np.empty(n_entries, np.int32)
        self.ent_user = np.empty(n_entries, np.int32)
        self.ent_coef = np.empty(n_entries)

    def outputs(self, n: int) -> PairOutputs:
        """The per-pair output rows of a batch of ``n`` pairs."""
        return PairOutputs(self.loss[:n], self.n_used[:n], self.negs[:n], self.coefs[:n],
                           self.csum[:n], self.gu[:n])

    def used_negatives(self, n: int, sampler) -> np.ndarray:
        """The used negatives ``(n, >= n_used)`` of the last batch of ``n`` pairs: the pools
        for a full-pool sampler (``sampler.spec.full_pool``: :func:`forward` does not write
        ``negs`` then), else ``negs``."""
        return self.pools[:n] if sampler.spec.full_pool else self.negs[:n]

    def entries(self, n: int) -> ItemEntries:
        """The item-gradient entries of a batch of ``n`` pairs (its chunks' rows)."""
        n_chunks = count_chunks(n, PAIR_CHUNK)
        return ItemEntries(self.counts[:n_chunks], self.starts[:n_chunks], self.ent_item,
                           self.ent_user, self.ent_coef, self.shift)


def n_used_max(sampler, pool_size: int) -> int:
    """Most used pool positions per pair (``sampler.n_used``): the width of ``negs``."""
    return sampler.n_used(pool_size)


def batch_gradients(ws: Workspace, U, V, batch: PairBatch, sampler, l2: float, gU, gV,
                    touchedU, touchedV) -> None:
    """Run phases 1-2 on a batch: losses in ``ws.loss[:B]``, gradients added to gU, gV.

    ``batch.pools`` must be ``ws.pools[:B]`` (filled by the kernel when ``batch.draw``).
    """
    n = batch.users.size
    out, ent = ws.outputs(n), ws.entries(n)
    forward(U, V, batch, sampler.kernel, l2, out, ent, sampler.spec.full_pool)
    accumulate_items(U, V, ent, l2, gV, touchedV)
    accumulate_users(batch.users, out.gu, gU, touchedU)
