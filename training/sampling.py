"""Negative samplers of the paper: Uniform, DNS(M, N), Softmax-v(rho, N), score-softmax(tau).

Every sampler works on a *pool*: N negatives drawn uniformly for one (user, positive) pair
(Algorithms 1 and 2 of the paper).  From the scores of the pool it derives *weights* w_k
(constants: no gradient flows through them), and the pair's loss is

    loss = sum_k w_k * l(r_ui - r_uk),   l(x) = log(1 + exp(-x))   (theory.estimators.bpr_loss)

* ``uniform(n)``: w_k = 1/N (plain BPR; N = 1 is the classic one-negative BPR).
* ``dns(m, n)``: the M highest-scored pool draws get 1/M each (``reduction="mean"``, the
  paper's Eq. 2 weights) or 1 each (``reduction="sum"``, the authors' code); ties at the M-th
  place go to the earlier pool draw (equal scores give equal losses, so only gradients can
  tell).  ``variant="pick_one"``: one of the top M picked uniformly gets all the weight
  (1 for "mean", M for "sum"): the same objective in expectation.
* ``softmax_v(rho, n)``: w = softmax(L / tau) over the pool with tau = sqrt(Var L / (2 rho))
  recomputed per (user, positive) (Eqs. 17-18, 25); ``ddof=0`` population variance (Eq. 18,
  default) or ``ddof=1`` (the authors' ``torch.var``).  All losses equal: uniform weights.
* ``score_softmax(tau, n)``: w = softmax(r_uk / tau) over the pool (Eq. 3, fixed tau).

Pools (``pool=``): ``"negatives"`` (default: the paper's Algorithms draw *negatives*; the
user's training positives are rejected and redrawn) or ``"all"`` (the authors' code:
``torch.randint(0, n_items)``, positives included).  Always with replacement: duplicates are
separate draws, which is what ``theory.estimators.dns_mn_rank_probabilities`` assumes.

Kernels: :func:`pool_loss_weights` (the weights, loss and loss derivatives of one pool,
shared by the trainer, :func:`pool_weights` and :func:`empirical_rank_distribution`),
:func:`draw_pool_row` (one pool, rejection of training positives with a per-chunk bit mask of
the user's row).  Losses (:func:`bpr_loss_and_grad`, bit-identical to theory.estimators'
scalar kernels) and softmax weights are theory.estimators' numba kernels.  Randomness: xoshiro256++ from
:mod:`simulations.rng`, one state per fixed chunk, seeded from a numpy ``SeedSequence``;
results do not depend on the number of threads.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np
import scipy.sparse as sp
from numba import njit, prange

from simulations.rng import as_seed_sequence, branch_seed_sequence, random_bounded
from theory.estimators import _check_int, softmax_weights_row

__all__ = [
    "CHUNK",
    "PAIR_CHUNK",
    "KINDS",
    "POOLS",
    "VARIANTS",
    "REDUCTIONS",
    "Sampler",
    "uniform",
    "dns",
    "softmax_v",
    "score_softmax",
    "pool_weights",
    "draw_pools",
    "empirical_rank_distribution",
    "pool_loss_weights",
    "bpr_loss_and_grad",
    "draw_pool_row",
    "top_m_indices",
    "states_from_seed",
]

KINDS = ("uniform", "dns", "softmax_v", "score_softmax")
POOLS = ("negatives", "all")
VARIANTS = ("weighted", "pick_one")
REDUCTIONS = ("mean", "sum")

# Integer codes of the kernels.
CODE_UNIFORM, CODE_DNS, CODE_DNS_PICK, CODE_SOFTMAX_V, CODE_SCORE_SOFTMAX = 0, 1, 2, 3, 4

#: Repeats per chunk of :func:`empirical_rank_distribution`.
CHUNK = 256
#: (user, positive) pairs per chunk of :func:`draw_pools` and of the trainer's batches: fixed,
#: so which xoshiro stream draws which pool does not depend on the thread count.
PAIR_CHUNK = 64


# --------------------------------------------------------------------------------------
# Sampler specification
# --------------------------------------------------------------------------------------
def _positive(value, name):
    try:
        v = float(value)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name} must be a positive number, got {value!r}") from exc
    if not (v > 0.0) or not math.isfinite(v):
        raise ValueError(f"{name} must be a positive finite number, got {value!r}")
    return v


@dataclass(frozen=True)
class Sampler:
    """A negative sampler (validated on construction; build it with the helpers below).

    Attributes
    ----------
    kind : {"uniform", "dns", "softmax_v", "score_softmax"}
    n : int >= 1
        Pool size N.
    m : int in [1, n]
        M of DNS(M, N) (ignored by the other kinds).
    rho : float > 0
        Radius of Softmax-v (ignored by the other kinds).
    tau : float > 0
        Temperature of score-softmax (ignored by the other kinds).
    pool : {"negatives", "all"}
        Pool drawn over the user's non-positives (default) or over all items.
    reduction : {"mean", "sum"}
        DNS only: top-M weights 1/M (the paper) or 1 (the authors' code).
    variant : {"weighted", "pick_one"}
        DNS only: weight all top M, or give the weight to one of them picked at random.
    ddof : {0, 1}
        Softmax-v only: population (Eq. 18) or unbiased (authors' code) variance.
    """

    kind: str
    n: int = 1
    m: int = 1
    rho: float = 1.0
    tau: float = 1.0
    pool: str = "negatives"
    reduction: str = "mean"
    variant: str = "weighted"
    ddof: int = 0

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS}, got {self.kind!r}")
        object.__setattr__(self, "n", _check_int(self.n, "n", 1, 2**31 - 1))
        if self.kind == "dns":
            object.__setattr__(self, "m", _check_int(self.m, "m", 1, self.n))
        object.__setattr__(self, "rho", _positive(self.rho, "rho"))
        object.__setattr__(self, "tau", _positive(self.tau, "tau"))
        if self.pool not in POOLS:
            raise ValueError(f"pool must be one of {POOLS}, got {self.pool!r}")
        if self.reduction not in REDUCTIONS:
            raise ValueError(f"reduction must be one of {REDUCTIONS}, got {self.reduction!r}")
        if self.variant not in VARIANTS:
            raise ValueError(f"variant must be one of {VARIANTS}, got {self.variant!r}")
        if self.ddof not in (0, 1) or isinstance(self.ddof, bool):
            raise ValueError(f"ddof must be 0 or 1, got {self.ddof!r}")
        if self.kind == "softmax_v" and self.n <= self.ddof:
            raise ValueError(f"softmax_v with ddof={self.ddof} needs n > {self.ddof}")

    @property
    def code(self) -> int:
        """Integer code used by the kernels."""
        if self.kind == "dns":
            return CODE_DNS if self.variant == "weighted" else CODE_DNS_PICK
        return {"uniform": CODE_UNIFORM, "softmax_v": CODE_SOFTMAX_V,
                "score_softmax": CODE_SCORE_SOFTMAX}[self.kind]

    @property
    def beta(self) -> float:
        """Nominal OPAUC level: M / N for DNS(M, N), exp(-rho) for Softmax-v, 1 for uniform."""
        if self.kind == "dns":
            return self.m / self.n
        if self.kind == "softmax_v":
            return math.exp(-self.rho)
        return 1.0

    def kernel_args(self):
        """(code, m, rho, tau, ddof, dns_sum) as passed to :func:`pool_loss_weights`."""
        return (self.code, self.m, self.rho, self.tau, self.ddof, self.reduction == "sum")

    def label(self) -> str:
        """Short name, e.g. ``DNS(5,200)``, ``Softmax-v(1,200)``, ``Uniform(1)``."""
        if self.kind == "dns":
            extra = ",pick-one" if self.variant == "pick_one" else ""
            return f"DNS({self.m},{self.n}{extra})"
        if self.kind == "softmax_v":
            return f"Softmax-v({self.rho:g},{self.n})"
        if self.kind == "score_softmax":
            return f"ScoreSoftmax({self.tau:g},{self.n})"
        return f"Uniform({self.n})"

    def to_dict(self) -> dict:
        return asdict(self)


def uniform(n: int = 1, *, pool: str = "negatives") -> Sampler:
    """Uniform sampling (BPR): N pool draws, weight 1/N each."""
    return Sampler("uniform", n=n, pool=pool)


def dns(m: int, n: int, *, variant: str = "weighted", reduction: str = "mean",
        pool: str = "negatives") -> Sampler:
    """DNS(M, N) (Algorithm 1): the top M of a uniform pool of N share the weight."""
    return Sampler("dns", n=n, m=m, variant=variant, reduction=reduction, pool=pool)


def softmax_v(rho: float, n: int, *, ddof: int = 0, pool: str = "negatives") -> Sampler:
    """Softmax-v(rho, N) (Algorithm 2): loss-softmax weights at tau = sqrt(Var L / (2 rho))."""
    return Sampler("softmax_v", n=n, rho=rho, ddof=ddof, pool=pool)


def score_softmax(tau: float, n: int, *, pool: str = "negatives") -> Sampler:
    """Score-softmax (Eq. 3) over a uniform pool of N: weights softmax(score / tau)."""
    return Sampler("score_softmax", n=n, tau=tau, pool=pool)


# --------------------------------------------------------------------------------------
# Kernels
# --------------------------------------------------------------------------------------
@njit(cache=True)
def top_m_indices(scores, m, sel, vals):
    """Indices of the ``m`` largest ``scores`` into ``sel[:m]`` (ties: lower index first).

    Partial selection: an insertion buffer (``vals``, scratch of length >= m) for small m,
    a stable argsort otherwise.  ``sel[:m]`` is ordered by decreasing score.
    """
    n = scores.shape[0]
    if m >= n:
        order = np.argsort(-scores, kind="mergesort")
        for t in range(n):
            sel[t] = order[t]
        return
    if m > 24:
        order = np.argsort(-scores, kind="mergesort")
        for t in range(m):
            sel[t] = order[t]
        return
    count = 0
    for k in range(n):
        s = scores[k]
        if count < m:
            pos = count
            count += 1
        elif s > vals[m - 1]:
            pos = m - 1
        else:
            continue
        while pos > 0 and vals[pos - 1] < s:  # strict: an earlier equal score stays ahead
            vals[pos] = vals[pos - 1]
            sel[pos] = sel[pos - 1]
            pos -= 1
        vals[pos] = s
        sel[pos] = k


@njit(cache=True, inline="always")
def bpr_loss_and_grad(x):
    """``(l(x), l'(x))`` of the BPR loss from one exponential.

    Bit-identical to ``(theory.estimators.bpr_loss_scalar(x), bpr_loss_grad_scalar(x))``: the
    same branches and operations, sharing the ``exp`` that both compute (tested).
    """
    if x >= 0.0:
        e = math.exp(-x)
        return math.log1p(e), -e / (1.0 + e)
    e = math.exp(x)
    return -x + math.log1p(e), -1.0 / (1.0 + e)


@njit(cache=True)
def pool_loss_weights(code, m, rho, tau, ddof, dns_sum, pos_score, scores, state,
                      sel, weights, losses, dls, vals):
    """Weights and loss of one pool; the core of every sampler.

    Parameters
    ----------
    code : int
        Sampler code (:attr:`Sampler.code`).
    m, rho, tau, ddof, dns_sum
        Sampler parameters (see :meth:`Sampler.kernel_args`).
    pos_score : float
        Score of the positive.
    scores : float64[N]
        Scores of the pool's draws.
    state : uint64[4]
        xoshiro256++ state (used by the pick-one DNS variant only).
    sel, weights, losses, dls, vals : scratch of length >= N (int64, float64 x 4)

    Returns
    -------
    (loss, n_used)
        ``loss = sum_t weights[t] * losses[t]`` over the ``n_used`` pool positions
        ``sel[:n_used]`` with non-zero weight; ``losses[t] = l(pos_score - scores[sel[t]])``
        and ``dls[t] = l'(pos_score - scores[sel[t]])`` (one exponential for both).
    """
    n = scores.shape[0]
    if code == CODE_DNS or code == CODE_DNS_PICK:
        top_m_indices(scores, m, sel, vals)
        if code == CODE_DNS:
            w = 1.0 if dns_sum else 1.0 / m
            total = 0.0
            for t in range(m):
                lt, dls[t] = bpr_loss_and_grad(pos_score - scores[sel[t]])
                losses[t] = lt
                weights[t] = w
                total += w * lt
            return total, m
        pick = random_bounded(state, m) if m > 1 else 0
        sel[0] = sel[pick]
        losses[0], dls[0] = bpr_loss_and_grad(pos_score - scores[sel[0]])
        weights[0] = float(m) if dns_sum else 1.0
        return weights[0] * losses[0], 1
    for k in range(n):
        sel[k] = k
        losses[k], dls[k] = bpr_loss_and_grad(pos_score - scores[k])
    if code == CODE_UNIFORM:
        for k in range(n):
            weights[k] = 1.0 / n
    elif code == CODE_SOFTMAX_V:
        mean = 0.0
        for k in range(n):
            mean += losses[k]
        mean /= n
        var = 0.0
        for k in range(n):
            d = losses[k] - mean
            var += d * d
        var /= (n - ddof)
        softmax_weights_row(losses[:n], math.sqrt(var / (2.0 * rho)), weights[:n])
    else:  # score-softmax, Eq. 3
        softmax_weights_row(scores, tau, weights[:n])
    total = 0.0
    for k in range(n):
        total += weights[k] * losses[k]
    return total, n


@njit(cache=True)
def draw_pool_row(state, n_items, indices, lo, hi, exclude, mask, out):
    """Fill ``out`` with uniform draws in [0, n_items), with replacement.

    ``exclude``: reject (and redraw) the items ``indices[lo:hi]`` (the user's training
    positives), so draws are uniform over the user's negatives.  ``mask`` is a zeroed bit
    array of ``(n_items + 7) // 8`` bytes (scratch: the positives' bits are set, used for the
    O(1) membership test, and cleared again before returning).  The caller guarantees
    ``hi - lo < n_items``.
    """
    if exclude:
        for t in range(lo, hi):
            it = indices[t]
            mask[it >> 3] |= np.uint8(1 << (it & 7))
    for k in range(out.shape[0]):
        j = random_bounded(state, n_items)
        if exclude:
            while mask[j >> 3] & (1 << (j & 7)):
                j = random_bounded(state, n_items)
        out[k] = j
    if exclude:
        for t in range(lo, hi):
            mask[indices[t] >> 3] = 0


@njit(parallel=True, cache=True)
def _draw_pools_kernel(users, n_items, indptr, indices, exclude, states, chunk, out):
    n_rows = users.shape[0]
    n_chunks = (n_rows + chunk - 1) // chunk
    for c in prange(n_chunks):
        state = states[c]
        mask = np.zeros((n_items + 7) // 8, np.uint8)
        for b in range(c * chunk, min(n_rows, (c + 1) * chunk)):
            u = users[b]
            draw_pool_row(state, n_items, indices, indptr[u], indptr[u + 1], exclude, mask,
                          out[b])


@njit(parallel=True, cache=True)
def _rank_law_kernel(scores, pos_score, ranks, n, replace, code, m, rho, tau, ddof, dns_sum,
                     states, n_repeats, chunk, acc):
    n_neg = scores.shape[0]
    n_chunks = acc.shape[0]
    for c in prange(n_chunks):
        state = states[c]
        idx = np.empty(n, np.int64)
        pool_scores = np.empty(n)
        sel = np.empty(n, np.int64)
        weights = np.empty(n)
        losses = np.empty(n)
        dls = np.empty(n)
        vals = np.empty(n)
        marks = np.zeros(n_neg if not replace else 1, np.bool_)
        for rep in range(c * chunk, min(n_repeats, (c + 1) * chunk)):
            if replace:
                for k in range(n):
                    idx[k] = random_bounded(state, n_neg)
            else:  # Floyd's algorithm: n distinct draws, then a uniform order
                t = 0
                for jj in range(n_neg - n, n_neg):
                    v = random_bounded(state, jj + 1)
                    if marks[v]:
                        v = jj
                    marks[v] = True
                    idx[t] = v
                    t += 1
                for k in range(n):
                    marks[idx[k]] = False
                for k in range(n - 1, 0, -1):
                    r = random_bounded(state, k + 1)
                    tmp = idx[k]
                    idx[k] = idx[r]
                    idx[r] = tmp
            for k in range(n):
                pool_scores[k] = scores[idx[k]]
            _, n_used = pool_loss_weights(code, m, rho, tau, ddof, dns_sum, pos_score,
                                          pool_scores, state, sel, weights, losses, dls, vals)
            for t in range(n_used):
                acc[c, ranks[idx[sel[t]]]] += weights[t]


# --------------------------------------------------------------------------------------
# Public helpers
# --------------------------------------------------------------------------------------
def states_from_seed(seed, n_states: int, *branch: int) -> np.ndarray:
    """``n_states`` xoshiro256++ states (uint64[n_states, 4]) from one SeedSequence child.

    The child is ``branch_seed_sequence(as_seed_sequence(seed), *branch)``; its
    ``generate_state`` stream is cut into 4-word states (one hashing pass for all of them).
    """
    ss = branch_seed_sequence(as_seed_sequence(seed), *branch) if branch else as_seed_sequence(seed)
    words = ss.generate_state(4 * max(int(n_states), 1), np.uint64).reshape(-1, 4)
    zero = ~words.any(axis=1)
    words[zero, 0] = np.uint64(0x9E3779B97F4A7C15)  # xoshiro's forbidden all-zero state
    return np.ascontiguousarray(words[: max(int(n_states), 0)] if n_states else words[:0])


def _check_sampler(sampler):
    if not isinstance(sampler, Sampler):
        raise ValueError(f"sampler must be a training.sampling.Sampler, got {type(sampler).__name__}")
    return sampler


def pool_weights(sampler: Sampler, pos_score: float, pool_scores, seed=0):
    """Weights and loss of one pool, as the trainer computes them.

    Parameters
    ----------
    sampler : Sampler
    pos_score : float
        Score of the positive.
    pool_scores : array_like, shape (N,)
        Scores of the pool's draws (``N`` need not equal ``sampler.n``).
    seed : seed for the pick-one DNS variant.

    Returns
    -------
    weights : ndarray, shape (N,)
        The weight of each pool position (zeros off the top M for DNS).
    loss : float
        ``sum_k weights[k] * bpr_loss(pos_score - pool_scores[k])``.
    """
    _check_sampler(sampler)
    s = np.ascontiguousarray(pool_scores, dtype=np.float64)
    if s.ndim != 1 or s.size == 0 or not np.all(np.isfinite(s)):
        raise ValueError("pool_scores must be a non-empty 1-D array of finite numbers")
    n = s.size
    if sampler.kind == "dns" and sampler.m > n:
        raise ValueError(f"m = {sampler.m} exceeds the pool size {n}")
    if sampler.kind == "softmax_v" and n <= sampler.ddof:
        raise ValueError(f"softmax_v with ddof={sampler.ddof} needs a pool of more than {sampler.ddof}")
    state = states_from_seed(seed, 1)[0]
    sel = np.empty(n, np.int64)
    w = np.empty(n)
    losses = np.empty(n)
    vals = np.empty(n)
    loss, n_used = pool_loss_weights(*sampler.kernel_args(), float(pos_score), s, state, sel, w,
                                     losses, np.empty(n), vals)
    out = np.zeros(n)
    np.add.at(out, sel[:n_used], w[:n_used])
    return out, float(loss)


def draw_pools(users, sampler: Sampler, train, seed=0) -> np.ndarray:
    """Pools of ``sampler.n`` draws for each entry of ``users``, as the trainer draws them.

    Parameters
    ----------
    users : array_like of int, shape (B,)
    sampler : Sampler
        Its ``n`` and ``pool`` are used.
    train : scipy sparse matrix (n_users, n_items)
        Training interactions; with ``pool="negatives"`` each user's are excluded.
    seed : int, SeedSequence or Generator

    Returns
    -------
    ndarray of int64, shape (B, sampler.n)
        Chunks of :data:`PAIR_CHUNK` users draw from their own xoshiro state (the states of
        ``states_from_seed(seed, n_chunks)``): the same pools for any thread count, and the
        same pools as ``training.trainer.batch_loss_and_grad(..., seed=seed)`` draws
        (except for the pick-one DNS variant, whose picks share the streams).
    """
    _check_sampler(sampler)
    train = sp.csr_matrix(train, copy=True)  # canonical copy: explicit zeros are not positives
    train.sum_duplicates()
    train.eliminate_zeros()
    train.sort_indices()
    users = np.ascontiguousarray(users, dtype=np.int64)
    n_users, n_items = train.shape
    if users.ndim != 1 or (users.size and (users.min() < 0 or users.max() >= n_users)):
        raise ValueError(f"users must be a 1-D array of ids in [0, {n_users})")
    exclude = sampler.pool == "negatives"
    indptr = train.indptr.astype(np.int64)
    if exclude and users.size and np.any(np.diff(indptr)[users] >= n_items):
        raise ValueError("a user has no negative item (every item is a training positive)")
    n_chunks = (users.size + PAIR_CHUNK - 1) // PAIR_CHUNK
    states = states_from_seed(seed, n_chunks)
    out = np.empty((users.size, sampler.n), np.int64)
    if users.size:
        _draw_pools_kernel(users, n_items, indptr, train.indices.astype(np.int64), exclude,
                           states, PAIR_CHUNK, out)
    return out


def empirical_rank_distribution(sampler: Sampler, neg_scores, pos_score: float = 0.0,
                                n_repeats: int = 10_000, seed=0, *, replace: bool = True):
    """Monte Carlo sampling law over negative ranks for one (user, positive) (paper Fig. 7).

    The sampling is repeated ``n_repeats`` times on fixed scores: each time a pool of
    ``sampler.n`` negatives is drawn uniformly from the given negatives (with replacement
    by default, as in training; ``replace=False`` draws distinct negatives), the sampler's
    weights are computed exactly as in training, and each weight is credited to the rank of
    its negative.

    Parameters
    ----------
    sampler : Sampler
        Its ``pool`` option does not apply here: the pool is drawn over ``neg_scores``.
    neg_scores : array_like, shape (n_neg,)
        Scores of the user's negatives (fixed embeddings).
    pos_score : float
        Score of the positive (Softmax-v's losses depend on it; DNS and score-softmax do not).
    n_repeats : int
    seed : int, SeedSequence or Generator
        Chunks of :data:`CHUNK` repeats draw from their own child seeds: any thread count
        gives the same numbers.
    replace : bool

    Returns
    -------
    ndarray, shape (n_neg,)
        Mean weight on the negative of rank r (index r - 1; rank 1 = highest score, ties
        broken by position, stable).  Sums to 1 for the probability-weighted samplers
        (``M`` for DNS with ``reduction="sum"``).  For DNS(M, N) it estimates
        ``theory.estimators.dns_mn_rank_probabilities(n_neg, M, N, replace=replace)``.
    """
    _check_sampler(sampler)
    s = np.ascontiguousarray(neg_scores, dtype=np.float64)
    if s.ndim != 1 or s.size == 0 or not np.all(np.isfinite(s)):
        raise ValueError("neg_scores must be a non-empty 1-D array of finite numbers")
    n_repeats = _check_int(n_repeats, "n_repeats", 1)
    if not replace and sampler.n > s.size:
        raise ValueError(f"pool size n = {sampler.n} exceeds n_neg = {s.size} with replace=False")
    order = np.argsort(-s, kind="stable")
    ranks = np.empty(s.size, np.int64)
    ranks[order] = np.arange(s.size)
    n_chunks = (n_repeats + CHUNK - 1) // CHUNK
    states = states_from_seed(seed, n_chunks)
    acc = np.zeros((n_chunks, s.size))
    _rank_law_kernel(s, float(pos_score), ranks, sampler.n, bool(replace), *sampler.kernel_args(),
                     states, n_repeats, CHUNK, acc)
    return acc.sum(axis=0) / n_repeats
