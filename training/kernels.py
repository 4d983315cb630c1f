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

import numpy as np
from numba import njit, prange

from training import sampling as S

__all__ = ["PAIR_CHUNK", "PARALLEL_MIN_WORK", "ITEM_BUCKET_SHIFT", "Workspace", "n_used_max",
           "batch_gradients", "forward", "accumulate_items", "accumulate_users", "adam"]

PAIR_CHUNK = S.PAIR_CHUNK

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
def forward(U, V, users, pos, pools, draw, states, indptr, indices, exclude,
             code, m, rho, tau, ddof, dns_sum, chunk, l2, shift,
            loss_out, n_used_out, neg_out, coef_out, csum_out, gu_out, counts, starts,
            ent_item, ent_user, ent_coef):
    """Phase 1, prange over fixed chunks of pairs; every write goes to the pair's own row
    (or the chunk's own row of ``counts``).

    Per pair b: draw the pool (``draw``), score it, weights, loss and loss derivatives
    (``sampling.pool_loss_weights``: one exponential per pool entry serves its loss and its
    derivative), the used negatives ``neg_out[b, :n_used]`` and their coefficients
    ``c = w * l'(r_ui - r_uj)``, their sum ``csum_out[b]``, the user's gradient
    ``gu_out[b] = sum_t c_t (V_i - V_jt) + l2 U_u`` (the pool's rows are still in cache).
    At the end of the chunk, its item-gradient entries -- (pos[b], users[b], sum_t c_t)
    then (negs[b, t], users[b], -c_t) for each pair b in order -- are grouped by item bucket
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
        dls = np.empty(n)
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
                grow[d] = l2 * urow[d]
            pos_score = _dot(urow, V, i)
            for k in range(n):
                scores[k] = _dot(urow, V, row[k])
            loss, n_used = S.pool_loss_weights(code, m, rho, tau, ddof, dns_sum, pos_score,
                                               scores, state, sel, weights, losses, dls,
                                               vals)
            loss_out[b] = loss
            n_used_out[b] = n_used
            counts[c, i >> shift] += 1
            csum = 0.0
            for t in range(n_used):
                k = sel[t]
                j = row[k]
                g = weights[t] * dls[t]
                neg_out[b, t] = j
                coef_out[b, t] = g
                counts[c, j >> shift] += 1
                csum += g
                for d in range(dim):
                    grow[d] -= g * np.float64(V[j, d])
            csum_out[b] = csum
            for d in range(dim):
                gu_out[b, d] = grow[d] + csum * np.float64(V[i, d])
        # Local counting sort of the chunk's entries by bucket.
        e = c * chunk * (neg_out.shape[1] + 1)
        for t in range(counts.shape[1]):
            starts[c, t] = e
            e += counts[c, t]
        cursor = starts[c].copy()
        for b in range(c * chunk, min(n_pairs, (c + 1) * chunk)):
            u = np.int32(users[b])
            i = pos[b]
            e = cursor[i >> shift]
            cursor[i >> shift] = e + 1
            ent_item[e] = i
            ent_user[e] = u
            ent_coef[e] = csum_out[b]
            for t in range(n_used_out[b]):
                j = neg_out[b, t]
                e = cursor[j >> shift]
                cursor[j >> shift] = e + 1
                ent_item[e] = j
                ent_user[e] = u
                ent_coef[e] = -coef_out[b, t]


@njit(parallel=True, cache=True)
def accumulate_items(U, V, ent_item, ent_user, ent_coef, counts, starts, l2, gV, touched):
    """Phase 2: prange over item buckets (each owns its rows of ``gV``): for every chunk in
    order, the chunk's entries of the bucket: gV[j] += coef * U_u (+ l2 * V_j per
    occurrence; ``U_u`` read as float32 and widened exactly, half the bytes of a float64
    copy).  Each gradient row is summed by one thread in batch order; a bucket's rows
    (1024 items x dim float64) stay in cache while the scattered updates land."""
    dim = V.shape[1]
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


@njit(cache=True)
def accumulate_users(users, gu, gU, touched):
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



PARALLEL_MIN_WORK = 2_000_000  # batch x pool x dim below which a batch runs on one thread
ITEM_BUCKET_SHIFT = 10  # item-gradient buckets of 1024 items (1024 x 32 float64 = 256 KB)


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
        self.n_buckets = max(1, (n_items + (1 << ITEM_BUCKET_SHIFT) - 1) >> ITEM_BUCKET_SHIFT)
        n_chunks = -(-max_pairs // PAIR_CHUNK)
        self.counts = np.zeros((n_chunks, self.n_buckets), np.int64)
        self.starts = np.zeros((n_chunks, self.n_buckets), np.int64)
        n_entries = n_chunks * PAIR_CHUNK * (n_used_max + 1)
        # int32 ids (n_users, n_items < 2**31): 16 bytes per entry instead of 24.
        self.ent_item = np.empty(n_entries, np.int32)
        self.ent_user = np.empty(n_entries, np.int32)
        self.ent_coef = np.empty(n_entries)


def n_used_max(sampler, pool_size):
    if sampler.code == S.CODE_DNS:
        return sampler.m
    if sampler.code == S.CODE_DNS_PICK:
        return 1
    return pool_size


def batch_gradients(ws, U, V, users, pos, draw, states, indptr, indices, sampler, l2,
                     gU, gV, touchedU, touchedV):
    """Run phases 1-2 on a batch: losses in ``ws.loss[:B]``, gradients added to gU, gV."""
    n = users.size
    n_chunks = -(-n // PAIR_CHUNK)
    counts, starts = ws.counts[:n_chunks], ws.starts[:n_chunks]
    forward(U, V, users, pos, ws.pools[:n], draw, states, indptr, indices,
             sampler.pool == "negatives", *sampler.kernel_args(), PAIR_CHUNK, l2,
             ITEM_BUCKET_SHIFT, ws.loss[:n], ws.n_used[:n], ws.negs[:n], ws.coefs[:n],
            ws.csum[:n], ws.gu[:n], counts, starts, ws.ent_item, ws.ent_user, ws.ent_coef)
    accumulate_items(U, V, ws.ent_item, ws.ent_user, ws.ent_coef, counts, starts, l2, gV,
                     touchedV)
    accumulate_users(users, ws.gu[:n], gU, touchedU)


