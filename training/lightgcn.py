"""LightGCN (He et al. 2020), the paper's second model (Appendix E, Table 3).

Model
-----
The graph is the bipartite graph of the training interactions: with ``R`` the binary
(n_users, n_items) matrix of training pairs, the adjacency of the n_users + n_items nodes is
``A = [[0, R], [R^T, 0]]`` (no self-loops) and the propagation matrix is the symmetric
normalisation ``A_hat = D^-1/2 A D^-1/2``, ``D = diag(A 1)`` (LightGCN Eq. 7; the paper's
Appendix E).  A node without training interactions has degree 0: its row and column of
``A_hat`` are empty (its propagated embedding is 0), never ``0 / 0``.  Layers
``E^(l+1) = A_hat E^(l)`` (LightGCN Eq. 7), ``E^(0)`` the ego embeddings, and the final
embeddings are the mean of layers 0..L (LightGCN Eq. 4 with ``alpha_l = 1 / (L + 1)``):

    E = (1 / (L + 1)) * sum_{l=0..L} A_hat^l E^(0)

Scores are dot products of final embeddings (LightGCN Eq. 5).  ``L = 0`` is MF.

Since ``A_hat`` is symmetric, the gradient of a loss with respect to the ego embeddings is
the same operator applied to its gradient ``G`` with respect to the final embeddings:
``(1 / (L + 1)) * sum_l A_hat^l G`` (:meth:`LightGCN.backward`).

Initialisation: xavier-normal, as ``torch.nn.init.xavier_normal_`` on an ``(n, dim)``
embedding table (fan_in = dim, fan_out = n): ``N(0, std^2)`` with ``std = sqrt(2 / (n +
dim))``, separately for the user table (n = n_users) and the item table (n = n_items).  The
original LightGCN TensorFlow code uses ``xavier_initializer()`` (uniform) with the same
variance.  Draws: numpy ``Generator(PCG64)`` on spawn-key branch 0 of ``SeedSequence(seed)``
(the branch the trainer's MF initialisation uses), users first, then items, float64 normals
rounded to float32.

Propagation kernel
------------------
``A_hat`` is stored as two CSR matrices, ``R_hat = D_u^-1/2 R D_i^-1/2`` (user rows) and
its transpose (item rows), so the user and item tables stay separate arrays (no
concatenation per call).  One layer is one numba ``prange`` over fixed chunks of the stacked
rows (users, then items; chunk bounds fixed at construction, balanced by nonzeros so that a
static schedule keeps both threads busy).  Every output row is summed by one thread in CSR
order, so the results are bit-identical for any thread count.  Each row sum takes four
nonzeros per step (one read-modify-write of the accumulator per four gathered rows) and
prefetches the neighbour rows 16 nonzeros ahead: the gathers are latency bound.

Precision: the forward pass stores *and accumulates* in float32, like torch's CSR kernel:
measured on Gowalla (degrees up to 1,858), one layer's error against the float64 result
is at most 2.8 (median 0.2) float32 unit roundoffs (2^-24) of the row's sum of |terms|,
and float64 accumulation made the layer 12-15% slower (one layer, 1 thread: float64 accumulation was
on a par with torch's CSR ``@``, float32 slightly ahead), which matters at six propagations
per batch.  The backward pass runs in float64 throughout (storage and sums): the seam's
gradients are float64 and the finite-difference tests use the same float64 path
(:meth:`LightGCN.layer_mean`); it costs about twice the forward pass.

The forward pass fuses the layer mean into the layer kernel (first layer: ``S = E0 + E1``;
middle layers: ``S += E_l``; last layer writes ``(S + E_L) / (L + 1)`` without storing
``E_L``), so an L-layer forward is L passes over the graph and no separate averaging pass.
All buffers are allocated once in the constructor.
"""
from __future__ import annotations

import math

import numpy as np
import scipy.sparse as sp
from llvmlite import ir
from numba import njit, prange, types
from numba.core import cgutils
from numba.extending import intrinsic

from simulations.rng import as_generator, as_seed_sequence, branch_seed_sequence
from theory.validation import check_int
from training.loaders import to_interactions

__all__ = ["ROW_CHUNKS", "LightGCN", "normalized_bipartite"]

#: Target number of fixed row chunks of one propagation (users and items together).
ROW_CHUNKS = 256
# Spawn-key branch of the root seed for the initial parameters (the trainer's _BRANCH_INIT).
_BRANCH_INIT = 0

# Modes of the layer kernel.
_PLAIN, _FIRST, _MIDDLE, _LAST, _ONLY = 0, 1, 2, 3, 4
# Nonzeros ahead whose neighbour rows are prefetched (measured on Gowalla: 8 to 32 give the
# same speed, about 15% faster than no prefetch; the gathers are latency bound).
_PREFETCH_AHEAD = 16


# --------------------------------------------------------------------------------------
# Kernels
# --------------------------------------------------------------------------------------
@intrinsic
def _prefetch_row(typingctx, arr, row):
    """Software prefetch (read, keep in all cache levels) of the first two cache lines of
    row ``row`` of a C-contiguous 2-D array (a dim-32 float32 row is two 64-byte lines).
    A hint only: it never faults and changes no value."""
    sig = types.void(arr, row)

    def codegen(context, builder, signature, args):
        aryty, rowty = signature.args
        ary = context.make_array(aryty)(context, builder, args[0])
        r = context.cast(builder, args[1], rowty, types.intp)
        zero = context.get_constant(types.intp, 0)
        ptr = cgutils.get_item_pointer2(context, builder, ary.data,
                                        cgutils.unpack_tuple(builder, ary.shape),
                                        cgutils.unpack_tuple(builder, ary.strides),
                                        aryty.layout, [r, zero], wraparound=False)
        i8p, i32 = ir.IntType(8).as_pointer(), ir.IntType(32)
        fn = cgutils.get_or_insert_function(
            builder.module, ir.FunctionType(ir.VoidType(), [i8p, i32, i32, i32]),
            "llvm.prefetch.p0")
        p8 = builder.bitcast(ptr, i8p)
        builder.call(fn, [p8, i32(0), i32(3), i32(1)])
        builder.call(fn, [builder.gep(p8, [ir.IntType(64)(64)]), i32(0), i32(3), i32(1)])
        return context.get_dummy_value()

    return sig, codegen


@njit(cache=True, inline="always")
def _row_sum(indptr, indices, data, X, r, acc):
    """acc = sum_p data[p] * X[indices[p]] over row r, in acc's dtype (that of X).

    Four nonzeros per step, ``acc += (w0 x0 + w1 x1) + (w2 x2 + w3 x3)``: a fixed order
    (the same on every thread); one read-modify-write of ``acc`` per four gathered rows
    instead of per row.  Rows ``_PREFETCH_AHEAD`` nonzeros ahead are prefetched."""
    dim = X.shape[1]
    nnz = indices.size
    for d in range(dim):
        acc[d] = 0.0
    p = indptr[r]
    end = indptr[r + 1]
    while p + 4 <= end:
        q = p + _PREFETCH_AHEAD
        if q + 4 <= nnz:
            _prefetch_row(X, indices[q])
            _prefetch_row(X, indices[q + 1])
            _prefetch_row(X, indices[q + 2])
            _prefetch_row(X, indices[q + 3])
        j0, j1, j2, j3 = indices[p], indices[p + 1], indices[p + 2], indices[p + 3]
        w0, w1, w2, w3 = data[p], data[p + 1], data[p + 2], data[p + 3]
        for d in range(dim):
            acc[d] += (w0 * X[j0, d] + w1 * X[j1, d]) + (w2 * X[j2, d] + w3 * X[j3, d])
        p += 4
    while p < end:
        if p + _PREFETCH_AHEAD < nnz:
            _prefetch_row(X, indices[p + _PREFETCH_AHEAD])
        j = indices[p]
        w = data[p]
        for d in range(dim):
            acc[d] += w * X[j, d]
        p += 1


@njit(cache=True, inline="always")
def _rows(indptr, indices, data, X, Xself, Y, S, F, lo, hi, mode, inv, acc):
    """Rows lo..hi-1 of one side: acc = (A_hat X)[r] (:func:`_row_sum`), then by
    ``mode``: _PLAIN Y = acc; _FIRST Y = acc, S = Xself + acc; _MIDDLE Y = acc, S += acc;
    _LAST F = (S + acc) * inv; _ONLY (L = 1) F = (Xself + acc) * inv."""
    dim = X.shape[1]
    for r in range(lo, hi):
        _row_sum(indptr, indices, data, X, r, acc)
        if mode == _PLAIN:
            for d in range(dim):
                Y[r, d] = acc[d]
        elif mode == _FIRST:
            for d in range(dim):
                Y[r, d] = acc[d]
                S[r, d] = Xself[r, d] + acc[d]
        elif mode == _MIDDLE:
            for d in range(dim):
                Y[r, d] = acc[d]
                S[r, d] += acc[d]
        elif mode == _LAST:
            for d in range(dim):
                F[r, d] = (S[r, d] + acc[d]) * inv
        else:
            for d in range(dim):
                F[r, d] = (Xself[r, d] + acc[d]) * inv


# fastmath "contract" only: lets LLVM fuse w * x + acc into one FMA (one rounding fewer);
# no reassociation, so the order of every sum is the one written, on every thread.
@njit(parallel=True, cache=True, fastmath={"contract"})
def _layer(u_indptr, u_indices, u_data, i_indptr, i_indices, i_data, bounds, Xu, Xi, Yu, Yi,
           Su, Si, Fu, Fi, mode, inv):
    """One layer ``Y = A_hat X`` over the stacked rows (users 0..n_users-1, then items):
    user rows ``Yu = R_hat Xi``, item rows ``Yi = R_hat^T Xu`` (plus the layer-mean
    bookkeeping of ``mode``, see :func:`_rows`).  All arrays of one call share one float
    dtype (float32 forward, float64 backward), which is also the accumulation dtype.
    prange over the fixed chunks ``bounds[c]..bounds[c+1]`` (no chunk straddles the
    user/item boundary); each output row is written by one thread only."""
    n_users = Xu.shape[0]
    dim = Xu.shape[1]
    for c in prange(bounds.size - 1):
        acc = np.empty(dim, Xu.dtype)
        lo = bounds[c]
        hi = bounds[c + 1]
        if lo < n_users:
            _rows(u_indptr, u_indices, u_data, Xi, Xu, Yu, Su, Fu, lo, hi, mode, inv, acc)
        else:
            _rows(i_indptr, i_indices, i_data, Xu, Xi, Yi, Si, Fi, lo - n_users, hi - n_users,
                  mode, inv, acc)


# --------------------------------------------------------------------------------------
# Graph
# --------------------------------------------------------------------------------------
def _check_train(train) -> sp.csr_matrix:
    """The binary pattern of ``train`` as float64 CSR (:func:`training.loaders.to_interactions`:
    any stored nonzero is one interaction), with at least one user and one item."""
    m = to_interactions(train, name="train")
    if m.shape[0] < 1 or m.shape[1] < 1:
        raise ValueError(f"train must have at least one user and one item, got shape {m.shape}")
    return m.astype(np.float64)


def normalized_bipartite(train) -> tuple[sp.csr_matrix, sp.csr_matrix]:
    """``R_hat = D_u^-1/2 R D_i^-1/2`` and its transpose, both CSR float64.

    ``A_hat = [[0, R_hat], [R_hat^T, 0]]`` is ``D^-1/2 A D^-1/2`` of the bipartite
    adjacency ``A = [[0, R], [R^T, 0]]`` (LightGCN Eq. 7, no self-loops).  Weights are
    computed on the nonzeros only (both ends have degree >= 1 there), so isolated users
    and items simply have empty rows.

    Parameters
    ----------
    train : sparse or array-like, shape (n_users, n_items)
        Training interactions; every stored nonzero counts as one interaction.

    Returns
    -------
    r_hat, r_hat_t : scipy.sparse.csr_matrix
        Shapes (n_users, n_items) and (n_items, n_users), sorted indices.
    """
    r = _check_train(train)
    deg_u = np.diff(r.indptr).astype(np.float64)
    deg_i = np.bincount(r.indices, minlength=r.shape[1]).astype(np.float64)
    rows = np.repeat(np.arange(r.shape[0]), np.diff(r.indptr))
    r.data = 1.0 / np.sqrt(deg_u[rows] * deg_i[r.indices])
    r_t = r.T.tocsr()
    r_t.sort_indices()
    return r, r_t


def _chunk_bounds(indptr_u: np.ndarray, indptr_i: np.ndarray, n_chunks: int) -> np.ndarray:
    """Fixed row chunks of the stacked rows (users, then items) with about equal work
    (nonzeros + 2 per row), cut at the user/item boundary; int64 bounds."""
    work = np.concatenate([np.diff(indptr_u), np.diff(indptr_i)]).astype(np.float64) + 2.0
    cum = np.concatenate([[0.0], np.cumsum(work)])
    targets = cum[-1] * np.arange(1, n_chunks) / n_chunks
    cuts = np.searchsorted(cum, targets)
    n_users, n_rows = indptr_u.size - 1, work.size
    return np.unique(np.concatenate([[0, n_users, n_rows], cuts])).astype(np.int64)


def _as_dim_table(x, rows: int, dim: int, name: str) -> np.ndarray:
    arr = np.asarray(x)
    if arr.shape != (rows, dim):
        raise ValueError(f"{name} must have shape ({rows}, {dim}), got {arr.shape}")
    if arr.dtype == np.float32 or arr.dtype == np.float64:
        return np.ascontiguousarray(arr)
    return np.ascontiguousarray(arr, dtype=np.float64)


# --------------------------------------------------------------------------------------
# Model
# --------------------------------------------------------------------------------------
class LightGCN:
    """LightGCN on the training graph (He et al. 2020; the paper's Appendix E).

    Parameters
    ----------
    train : scipy.sparse matrix or array-like, shape (n_users, n_items)
        Training interactions (any stored nonzero is one interaction).
    dim : int, default 32
        Embedding size (>= 1).
    layers : int, default 3
        Propagation layers L (>= 0; L = 0 is MF: final = ego embeddings).
    seed : int, SeedSequence or Generator, default 0
        Seed of the xavier-normal initialisation (spawn-key branch 0).

    Attributes
    ----------
    name : str
        ``"lightgcn"``.
    parameters : tuple of ndarray
        ``(ego_users, ego_items)``, float32 C-contiguous, updated in place by the optimizer.
    r_hat, r_hat_t : scipy.sparse.csr_matrix
        The normalised bipartite blocks of ``A_hat`` (:func:`normalized_bipartite`).
    """

    name = "lightgcn"
    # The batch L2 of weight_decay_mode="batch" goes on the ego rows (training.models).
    embeddings_are_parameters = False

    def __init__(self, train, dim: int = 32, layers: int = 3, seed=0):
        self.dim = check_int(dim, "dim", low=1, integral_floats=True)
        self.layers = check_int(layers, "layers", low=0, integral_floats=True)
        self.r_hat, self.r_hat_t = normalized_bipartite(train)
        self.n_users, self.n_items = self.r_hat.shape
        self._bounds = _chunk_bounds(self.r_hat.indptr, self.r_hat_t.indptr, ROW_CHUNKS)
        rng = as_generator(branch_seed_sequence(as_seed_sequence(seed), _BRANCH_INIT))
        std_u = math.sqrt(2.0 / (self.n_users + self.dim))
        std_i = math.sqrt(2.0 / (self.n_items + self.dim))
        ego_u = (rng.standard_normal((self.n_users, self.dim)) * std_u).astype(np.float32)
        ego_i = (rng.standard_normal((self.n_items, self.dim)) * std_i).astype(np.float32)
        self.parameters = (ego_u, ego_i)
        # Buffers, allocated once: final embeddings (float32), one workspace per dtype
        # (float32 forward, float64 backward) and the parameter gradients with their
        # all-ones flags.
        nu, ni, d = self.n_users, self.n_items, self.dim
        self._final = (np.zeros((nu, d), np.float32), np.zeros((ni, d), np.float32))
        # The kernels' CSR index arrays, shared by both dtypes: int64 row pointers, int32
        # columns (less memory traffic; n_users, n_items < 2**31 always fits).
        self._index = tuple((m.indptr.astype(np.int64), m.indices.astype(np.int32))
                            for m in (self.r_hat, self.r_hat_t))
        self._ws = {np.dtype(t): self._workspace(t) for t in (np.float32, np.float64)}
        self._grads = (np.zeros((nu, d)), np.zeros((ni, d)))
        self._touched = (np.ones(nu, np.uint8), np.ones(ni, np.uint8))

    def _workspace(self, dtype) -> dict:
        """Kernel arrays of one dtype: the CSR blocks (shared indices, weights in
        ``dtype``), two ping-pong layer buffers and the layer sum (only needed from L = 2
        on; empty otherwise)."""
        rows = (self.n_users, self.n_items) if self.layers >= 2 else (0, 0)

        def table():
            return tuple(np.zeros((n, self.dim), dtype) for n in rows)

        return {"csr": tuple((ptr, ind, m.data.astype(dtype)) for (ptr, ind), m
                             in zip(self._index, (self.r_hat, self.r_hat_t))),
                "pingpong": [table(), table()], "sum": table(), "inv": np.dtype(dtype).type}

    def _run_layer(self, ws, xu, xi, yu, yi, fu, fi, mode, inv=1.0):
        (r_ptr, r_ind, r_val), (t_ptr, t_ind, t_val) = ws["csr"]
        su, si = ws["sum"]
        _layer(r_ptr, r_ind, r_val, t_ptr, t_ind, t_val, self._bounds, xu, xi, yu, yi, su, si,
               fu, fi, mode, ws["inv"](inv))

    def _mean_into(self, xu, xi, fu, fi):
        """``F = (1 / (L + 1)) sum_{l=0..L} A_hat^l X`` into (fu, fi); X, F and the
        workspace share X's dtype."""
        L = self.layers
        if L == 0:
            fu[...] = xu
            fi[...] = xi
            return
        ws = self._ws[xu.dtype]
        inv = 1.0 / (L + 1)
        if L == 1:
            yu, yi = ws["pingpong"][0]
            self._run_layer(ws, xu, xi, yu, yi, fu, fi, _ONLY, inv)
            return
        cu, ci = xu, xi
        for layer in range(1, L + 1):
            yu, yi = ws["pingpong"][(layer - 1) % 2]
            mode = _FIRST if layer == 1 else (_LAST if layer == L else _MIDDLE)
            self._run_layer(ws, cu, ci, yu, yi, fu, fi, mode, inv)
            cu, ci = yu, yi

    # ----------------------------------------------------------------------------------
    def embeddings(self) -> tuple[np.ndarray, np.ndarray]:
        """Final embeddings ``(1 / (L + 1)) sum_{l=0..L} A_hat^l E^(0)`` (LightGCN Eqs. 4, 7).

        Returns
        -------
        user_emb, item_emb : ndarray, float32 C-contiguous
            Shapes (n_users, dim) and (n_items, dim).  These are the model's buffers: the
            next call overwrites them (copy to keep).
        """
        fu, fi = self._final
        self._mean_into(self.parameters[0], self.parameters[1], fu, fi)
        return fu, fi

    def backward(self, grad_user_emb, grad_item_emb, touched_users, touched_items):
        """Gradient w.r.t. the ego embeddings: ``(1 / (L + 1)) sum_l A_hat^l G``.

        The chain rule through the final embeddings of :meth:`embeddings`; ``A_hat`` is
        symmetric, so the transpose of the forward operator is the operator itself.

        Parameters
        ----------
        grad_user_emb, grad_item_emb : ndarray, float64 C-contiguous
            Shapes (n_users, dim), (n_items, dim): the loss gradient w.r.t. the final
            embeddings (rows not flagged are zero).  Set to zero on return.
        touched_users, touched_items : ndarray, uint8
            Flags of the nonzero rows; set to zero on return.

        Returns
        -------
        param_grads : tuple of ndarray
            float64 gradients w.r.t. ``parameters`` (every row written; the model's
            buffers, which the optimizer may read and zero).
        param_touched : tuple of ndarray
            uint8 ones for every row (propagation reaches every connected row).
        """
        gu = self._check_grad(grad_user_emb, self.n_users, "grad_user_emb")
        gi = self._check_grad(grad_item_emb, self.n_items, "grad_item_emb")
        pu, pi = self._grads
        self._mean_into(gu, gi, pu, pi)
        gu.fill(0.0)  # the next batch starts clean (rows not flagged are zero already)
        gi.fill(0.0)
        np.asarray(touched_users)[...] = 0
        np.asarray(touched_items)[...] = 0
        for t in self._touched:  # the optimizer clears these flags: set them again
            t.fill(1)
        return self._grads, self._touched

    def _check_grad(self, g, rows, name):
        if not (isinstance(g, np.ndarray) and g.dtype == np.float64 and g.shape == (rows, self.dim)
                and g.flags.c_contiguous and g.flags.writeable):
            raise ValueError(f"{name} must be a writeable C-contiguous float64 array of shape "
                             f"({rows}, {self.dim}), got {getattr(g, 'dtype', type(g))} "
                             f"{getattr(g, 'shape', '')}")
        return g

    # ----------------------------------------------------------------------------------
    def _tables(self, user_x, item_x):
        xu = _as_dim_table(user_x, self.n_users, self.dim, "user_x")
        xi = _as_dim_table(item_x, self.n_items, self.dim, "item_x")
        dtype = np.result_type(xu, xi)
        return xu.astype(dtype, copy=False), xi.astype(dtype, copy=False)

    def propagate(self, user_x, item_x) -> tuple[np.ndarray, np.ndarray]:
        """One layer ``A_hat X`` (LightGCN Eq. 7) as new arrays in X's dtype (float32 or
        float64; other dtypes become float64).  For tests and benchmarks."""
        xu, xi = self._tables(user_x, item_x)
        yu, yi = np.empty_like(xu), np.empty_like(xi)
        self._run_layer(self._ws[xu.dtype], xu, xi, yu, yi, yu, yi, _PLAIN)
        return yu, yi

    def layer_mean(self, user_x, item_x) -> tuple[np.ndarray, np.ndarray]:
        """``(1 / (L + 1)) sum_{l=0..L} A_hat^l X`` as new arrays in X's dtype (float32 or
        float64): :meth:`embeddings` of given ego tables (float64 for finite differences).
        Uses the model's workspace: not thread-safe with :meth:`embeddings` /
        :meth:`backward`."""
        xu, xi = self._tables(user_x, item_x)
        fu, fi = np.empty_like(xu), np.empty_like(xi)
        self._mean_into(xu, xi, fu, fi)
        return fu, fi

    def adjacency(self) -> sp.csr_matrix:
        """The full symmetric ``A_hat`` (n_users + n_items square, CSR float64), users
        first: for baselines (scipy, torch) and inspection."""
        return sp.bmat([[None, self.r_hat], [self.r_hat_t, None]], format="csr")

    def state_arrays(self) -> dict:
        """Arrays for ``np.savez``: ego and final embeddings (recomputed from the current
        parameters, copies) and the layer count."""
        fu, fi = self.embeddings()
        return {"ego_users": self.parameters[0].copy(), "ego_items": self.parameters[1].copy(),
                "user_emb": fu.copy(), "item_emb": fi.copy(), "layers": np.int64(self.layers)}
