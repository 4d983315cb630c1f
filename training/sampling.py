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

The registry
------------
:data:`SAMPLERS` maps each sampler's name (the ``kind``, the CLI's ``--sampler`` choice) to
its :class:`SamplerSpec`: its parameters with their checks (:class:`SamplerParam`, through
:mod:`theory.validation`), its label, its hardness knobs and its numba *kernel*, the per-pool
weight and loss code ``kernel(params, pos_score, scores, state, scratch) -> (loss, n_used)``.
The CLI's choices and options, the trainer, the sampling-law tools below and
:mod:`training.hardness` all read the registry.  Adding a sampler is one kernel function,
its branch in :func:`pool_loss_weights` (numba's static dispatch on the spec's
``kernel_id``: njit functions passed as arguments would be recompiled in every process,
numba cannot cache them) and one :func:`register_sampler` call.

Kernels: :func:`pool_loss_weights` (the weights, loss and loss derivatives of one pool,
shared by the trainer, :func:`pool_weights` and :func:`empirical_rank_distribution`),
:func:`draw_pool_row` (one pool, rejection of training positives with a per-chunk bit mask of
the user's row).  Losses: DNS and uniform sampling use :func:`bpr_loss_and_grad`
(bit-identical to theory.estimators' scalar kernels); the full-pool samplers (Softmax-v,
score-softmax), whose rows are N long, use theory.vectormath's vectorized loss and softmax
rows (within a few ulp of those kernels, not bit-identical; from 65a970b, see CHANGELOG).
Randomness: xoshiro256++ from :mod:`simulations.rng`, one state per fixed chunk, seeded from
a numpy ``SeedSequence``
(:func:`simulations.rng.chunk_states`, the package's one seeding scheme);
results do not depend on the number of threads.
"""
from __future__ import annotations

import functools
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np
from numba import njit, prange

from simulations.rng import chunk_states, random_bounded
from simulations.rng import n_chunks as count_chunks
from theory.validation import check_array, check_choice, check_int, check_real
from theory.vectormath import bpr_loss_grad_row, softmax_row
from training.loaders import to_interactions

#: numba's fastmath flags of every training kernel (here and in training.kernels).  Set on each
#: kernel explicitly: a numba function without its own flags inherits its first caller's, and
#: the cache does not key on them, so the bits would depend on which caller compiled it first.
#: Reassociation lets LLVM vectorize the sums; every thread count sums in the same order.
FASTMATH = {"reassoc", "contract", "nsz"}

__all__ = [
    "CHUNK",
    "FASTMATH",
    "INSERTION_MAX_M",
    "PAIR_CHUNK",
    "POOLS",
    "REDUCTIONS",
    "SAMPLERS",
    "VARIANTS",
    "KernelSampler",
    "PoolScratch",
    "Sampler",
    "SamplerParam",
    "SamplerSpec",
    "bpr_loss_and_grad",
    "dns",
    "dns_kernel",
    "draw_pool_row",
    "draw_pools",
    "empirical_rank_distribution",
    "hardness_direction",
    "new_scratch",
    "pool_loss_weights",
    "pool_weights",
    "register_sampler",
    "score_softmax",
    "score_softmax_kernel",
    "softmax_v",
    "softmax_v_kernel",
    "top_m_indices",
    "uniform",
    "uniform_kernel",
]

POOLS = ("negatives", "all")
VARIANTS = ("weighted", "pick_one")
REDUCTIONS = ("mean", "sum")

#: Repeats per chunk of :func:`empirical_rank_distribution`.
CHUNK = 256
#: (user, positive) pairs per chunk of :func:`draw_pools` and of the trainer's batches: fixed,
#: so which xoshiro stream draws which pool does not depend on the thread count.
PAIR_CHUNK = 64
#: Largest M for which :func:`top_m_indices` keeps an insertion buffer (benchmarks/
#: bench_dns_selection.py, N = 200: 1.2-1.5x faster than a full argsort at M = 100, a wash
#: at M = 200; its cost grows with M, the argsort's does not).
INSERTION_MAX_M = 128
#: Largest pool size N (the kernels draw items with 32-bit bounded integers).
MAX_POOL = 2**31 - 1


# --------------------------------------------------------------------------------------
# Kernel arguments
# --------------------------------------------------------------------------------------
class PoolScratch(NamedTuple):
    """Per-pool buffers of the kernels, each of length >= N (one set per chunk of pairs).

    After a kernel returned ``(loss, n_used)``: ``sel[:n_used]`` are the pool positions of
    non-zero weight, ``weights[t]`` the weight of position ``sel[t]``, ``losses[t] =
    l(pos_score - scores[sel[t]])`` and ``dls[t] = l'(pos_score - scores[sel[t]])``.
    ``vals`` is scratch of :func:`top_m_indices`.
    """

    sel: np.ndarray      # int64
    weights: np.ndarray  # float64
    losses: np.ndarray   # float64
    dls: np.ndarray      # float64
    vals: np.ndarray     # float64


class KernelSampler(NamedTuple):
    """What the numba kernels know of a sampler: its kernel id and its kernel parameters
    (float64, in the order of its spec's ``kernel_params``); :attr:`Sampler.kernel`."""

    kernel_id: int
    params: np.ndarray


@njit(cache=True, fastmath=FASTMATH)
def new_scratch(n):
    """A :class:`PoolScratch` for pools of up to ``n`` draws."""
    return PoolScratch(np.empty(n, np.int64), np.empty(n), np.empty(n), np.empty(n),
                       np.empty(n))


# --------------------------------------------------------------------------------------
# Shared kernels
# --------------------------------------------------------------------------------------
@njit(cache=True, fastmath=FASTMATH)
def top_m_indices(scores, m, sel, vals):
    """Indices of the ``m`` largest ``scores`` into ``sel[:m]`` (ties: lower index first).

    ``sel[:m]`` is ordered by decreasing score, as ``np.argsort(-scores, kind="stable")[:m]``
    (tested).  Up to :data:`INSERTION_MAX_M` an insertion buffer in the scratch ``vals``
    (length >= m), which allocates nothing and on pools of N = 200 beats a full argsort up to
    M = 100 (``benchmarks/bench_dns_selection.py``); above it, a stable argsort.
    """
    n = scores.shape[0]
    m = min(m, n)
    if m > INSERTION_MAX_M:
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


@njit(cache=True, inline="always", fastmath=FASTMATH)
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


@njit(cache=True, fastmath=FASTMATH)
def pool_losses(pos_score, scores, scratch):
    """Every pool position used, in order: ``sel[k] = k`` and its loss and derivative."""
    for k in range(scores.shape[0]):
        scratch.sel[k] = k
        scratch.losses[k], scratch.dls[k] = bpr_loss_and_grad(pos_score - scores[k])


@njit(cache=True, fastmath=FASTMATH)
def pool_losses_vectorized(pos_score, scores, scratch):
    """:func:`pool_losses` through :func:`theory.vectormath.bpr_loss_grad_row`: vectorized,
    within a few ulp of it (not bit-identical), for the full-pool samplers' long rows."""
    n = scores.shape[0]
    for k in range(n):
        scratch.sel[k] = k
        scratch.vals[k] = pos_score - scores[k]
    bpr_loss_grad_row(scratch.vals[:n], scratch.losses[:n], scratch.dls[:n])


@njit(cache=True, fastmath=FASTMATH)
def weighted_loss(scratch, n_used):
    """``(sum_t weights[t] * losses[t] over t < n_used, n_used)``: a kernel's return value."""
    total = 0.0
    for t in range(n_used):
        total += scratch.weights[t] * scratch.losses[t]
    return total, n_used


# --------------------------------------------------------------------------------------
# Sampler kernels: kernel(params, pos_score, scores, state, scratch) -> (loss, n_used)
# --------------------------------------------------------------------------------------
@njit(cache=True, fastmath=FASTMATH)
def uniform_kernel(params, pos_score, scores, state, scratch):
    """Uniform weights 1/N (plain BPR); no parameter."""
    n = scores.shape[0]
    pool_losses(pos_score, scores, scratch)
    for k in range(n):
        scratch.weights[k] = 1.0 / n
    return weighted_loss(scratch, n)


@njit(cache=True, fastmath=FASTMATH)
def dns_kernel(params, pos_score, scores, state, scratch):
    """DNS(M, N) (Eq. 2): the top M share the weight; params = (M, sum?, pick_one?).

    Weighted: 1/M each (1 with ``reduction="sum"``).  Pick-one: one of the top M, drawn
    from ``state``, gets weight 1 (M with "sum").
    """
    m = np.int64(params[0])
    dns_sum = params[1] != 0.0
    sel, weights, losses, dls = scratch.sel, scratch.weights, scratch.losses, scratch.dls
    top_m_indices(scores, m, sel, scratch.vals)
    if params[2] == 0.0:
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


@njit(cache=True, fastmath=FASTMATH)
def softmax_v_kernel(params, pos_score, scores, state, scratch):
    """Softmax-v(rho, N) (Eqs. 17-18, 25): softmax(L / tau), tau = sqrt(Var L / (2 rho));
    params = (rho, ddof)."""
    n = scores.shape[0]
    rho = params[0]
    ddof = np.int64(params[1])
    pool_losses_vectorized(pos_score, scores, scratch)
    losses = scratch.losses
    mean = 0.0
    for k in range(n):
        mean += losses[k]
    mean /= n
    var = 0.0
    for k in range(n):
        d = losses[k] - mean
        var += d * d
    var /= (n - ddof)
    softmax_row(losses[:n], math.sqrt(var / (2.0 * rho)), scratch.weights[:n])
    return weighted_loss(scratch, n)


@njit(cache=True, fastmath=FASTMATH)
def score_softmax_kernel(params, pos_score, scores, state, scratch):
    """Score-softmax (Eq. 3): softmax(score / tau) over the pool; params = (tau,)."""
    n = scores.shape[0]
    pool_losses_vectorized(pos_score, scores, scratch)
    softmax_row(scores, params[0], scratch.weights[:n])
    return weighted_loss(scratch, n)


@njit(cache=True, fastmath=FASTMATH)
def pool_loss_weights(sampler, pos_score, scores, state, scratch):
    """Weights and loss of one pool; the core of every sampler (static dispatch).

    Parameters
    ----------
    sampler : KernelSampler
        ``Sampler.kernel``: the kernel id (one branch below per registered kernel) and the
        kernel's parameters.
    pos_score : float
        Score of the positive.
    scores : float64[N]
        Scores of the pool's draws.
    state : uint64[4]
        xoshiro256++ state (used by the pick-one DNS variant only).
    scratch : PoolScratch
        Buffers of length >= N.

    Returns
    -------
    (loss, n_used)
        ``loss = sum_t weights[t] * losses[t]`` over the ``n_used`` pool positions
        ``sel[:n_used]`` with non-zero weight (see :class:`PoolScratch`); ``n_used = 0``
        (and a NaN loss) for an unknown kernel id.
    """
    kid = sampler.kernel_id
    p = sampler.params
    if kid == 0:
        return uniform_kernel(p, pos_score, scores, state, scratch)
    if kid == 1:
        return dns_kernel(p, pos_score, scores, state, scratch)
    if kid == 2:
        return softmax_v_kernel(p, pos_score, scores, state, scratch)
    if kid == 3:
        return score_softmax_kernel(p, pos_score, scores, state, scratch)
    return math.nan, 0


# --------------------------------------------------------------------------------------
# The registry
# --------------------------------------------------------------------------------------
class SamplerParam(NamedTuple):
    """One parameter of a sampler (besides the pool size ``n`` and ``pool``, which all have).

    ``check(value, name, n)`` returns the checked value or raises ValueError naming the
    argument (``n`` is the pool size, for parameters bounded by it); ``default`` is its value
    when not given, and what samplers without this parameter report in the results tables;
    ``help`` and ``choices`` make its ``--name`` option of the CLI.
    """

    name: str
    default: Any
    check: Callable[[Any, str, int], Any]
    help: str
    choices: tuple | None = None


@dataclass(frozen=True)
class SamplerSpec:
    """A registered sampler (see :func:`register_sampler`).

    Attributes
    ----------
    name : str
        The ``kind``; the CLI's ``--sampler`` choice and the results' ``sampler`` column.
    kernel : numba function
        ``kernel(params, pos_score, scores, state, scratch) -> (loss, n_used)``.
    kernel_id : int
        Its branch in :func:`pool_loss_weights`.
    params : tuple of SamplerParam
    kernel_params : callable
        ``f(params: dict) -> tuple of float``: the values the kernel reads from ``params``.
    label : callable
        ``f(sampler) -> str``, e.g. ``DNS(5,200)``.
    hardness : tuple of (parameter, direction)
        The knobs that make the sampler harder (concentrate the weight on the top-scored
        negatives): direction +1 when a larger value is harder, -1 when a smaller one is.
        The first is the sampler's main knob (Guideline 2 tables, :mod:`training.hardness`).
    beta : callable
        ``f(sampler) -> float``: the nominal OPAUC level (1 for samplers without one).
    n_used : callable
        ``f(params: dict, pool_size) -> int``: most pool positions of non-zero weight.
    default_n : int
        Pool size of the CLI when ``--n`` is not given.
    full_pool : bool
        The kernel always uses every pool position, in pool order (``n_used = N``,
        ``sel[t] = t``), and draws no random number: the trainer's kernels then write the
        item-gradient entries in one pass (``training.kernels``) and leave ``negs`` and
        ``coefs`` unwritten (the used negatives are the pools).
    """

    name: str
    kernel: Callable
    kernel_id: int
    params: tuple
    kernel_params: Callable[[dict], tuple]
    label: Callable[[Any], str]
    hardness: tuple = ()
    beta: Callable[[Any], float] = lambda sampler: 1.0
    n_used: Callable[[dict, int], int] = lambda params, pool_size: pool_size
    default_n: int = 200
    full_pool: bool = False


#: The registered samplers by name (registration order).
SAMPLERS: dict[str, SamplerSpec] = {}
_PARAM_DEFAULTS: dict[str, Any] = {}  # every registered parameter's default, by name


def register_sampler(spec: SamplerSpec) -> SamplerSpec:
    """Add ``spec`` to :data:`SAMPLERS` (its name, kernel id and parameters are checked).

    A parameter name shared by several samplers must have the same default (it is one
    column of the results tables).  The kernel must have its ``kernel_id`` branch in
    :func:`pool_loss_weights`.
    """
    if not isinstance(spec, SamplerSpec):
        raise ValueError(f"spec must be a SamplerSpec; got {type(spec).__name__}")
    if spec.name in SAMPLERS:
        raise ValueError(f"spec.name {spec.name!r} is already registered")
    if any(s.kernel_id == spec.kernel_id for s in SAMPLERS.values()):
        raise ValueError(f"spec.kernel_id {spec.kernel_id} is already used")
    for p in spec.params:
        if p.name in ("kind", "n", "pool") or _PARAM_DEFAULTS.get(p.name, p.default) != p.default:
            raise ValueError(f"spec.params: {p.name!r} is reserved or has another default "
                             "in another sampler")
    for p in spec.params:
        _PARAM_DEFAULTS[p.name] = p.default
    SAMPLERS[spec.name] = spec
    return spec


def _same(value, default) -> bool:
    try:
        return bool(value == default)
    except (TypeError, ValueError):  # arrays and other values without a plain ==
        return False


class Sampler:
    """A negative sampler of the registry :data:`SAMPLERS` (validated on construction).

    Build it with the helpers (:func:`uniform`, :func:`dns`, :func:`softmax_v`,
    :func:`score_softmax`) or as ``Sampler(kind, n, pool=..., **params)``.

    Parameters
    ----------
    kind : str
        A name of :data:`SAMPLERS`: "uniform", "dns", "softmax_v", "score_softmax".
    n : int >= 1
        Pool size N.
    pool : {"negatives", "all"}
        Pool drawn over the user's non-positives (default) or over all items.
    **params
        The sampler's own parameters (``SAMPLERS[kind].params``): DNS ``m`` (in [1, n]),
        ``reduction`` ("mean": top-M weights 1/M, the paper; "sum": 1, the authors' code),
        ``variant`` ("weighted" or "pick_one"); Softmax-v ``rho`` > 0 and ``ddof`` (0:
        Eq. 18's population variance, 1: the authors' unbiased one); score-softmax
        ``tau`` > 0.  A parameter of another sampler is accepted only at its default.

    Attributes
    ----------
    kind, n, pool
    params : dict
        The own parameters.  Every registered parameter also reads as an attribute
        (``sampler.m``, ``sampler.rho``, ...): the sampler's value, or the parameter's default
        for samplers without it (as the results tables record them).

    Examples
    --------
    >>> s = Sampler("dns", 200, m=5)
    >>> s.label(), s.beta, s.rho
    ('DNS(5,200)', 0.025, 1.0)
    >>> s == dns(5, 200)
    True
    >>> Sampler("uniform", rho=2.0)
    Traceback (most recent call last):
    ...
    ValueError: rho is not a parameter of uniform (it takes n, pool); got rho=2.0
    """

    __slots__ = ("_kernel", "_params", "kind", "n", "pool")

    def __init__(self, kind: str, n: int = 1, *, pool: str = "negatives", **params: Any):
        spec = SAMPLERS[check_choice(kind, "kind", tuple(SAMPLERS))]
        n = check_int(n, "n", low=1, high=MAX_POOL, integral_floats=True)
        own = {p.name: p.check(params.pop(p.name, p.default), p.name, n) for p in spec.params}
        for name, value in params.items():
            if name not in _PARAM_DEFAULTS or not _same(value, _PARAM_DEFAULTS[name]):
                takes = ", ".join(["n", "pool", *own])
                raise ValueError(f"{name} is not a parameter of {kind} (it takes {takes}); "
                                 f"got {name}={value!r}")
        for slot, value in (("kind", kind), ("n", n), ("pool", check_choice(pool, "pool", POOLS)),
                            ("_params", tuple(own.items())),
                            ("_kernel", KernelSampler(spec.kernel_id, np.array(
                                spec.kernel_params(own), dtype=np.float64)))):
            object.__setattr__(self, slot, value)

    def __getattr__(self, name):
        if name in _PARAM_DEFAULTS:
            return dict(object.__getattribute__(self, "_params")).get(name, _PARAM_DEFAULTS[name])
        raise AttributeError(f"'Sampler' object has no attribute {name!r}")

    def __setattr__(self, name, value):
        raise AttributeError("Sampler is immutable")

    __delattr__ = __setattr__

    def __eq__(self, other):
        return isinstance(other, Sampler) and self._key() == other._key()

    def __hash__(self):
        return hash(self._key())

    def __repr__(self):
        params = "".join(f", {k}={v!r}" for k, v in self._params)
        return f"Sampler({self.kind!r}, n={self.n}, pool={self.pool!r}{params})"

    def __reduce__(self):
        return (functools.partial(Sampler, self.kind, self.n, pool=self.pool, **self.params), ())

    def _key(self):
        return (self.kind, self.n, self.pool, self._params)

    @property
    def spec(self) -> SamplerSpec:
        """The registry entry ``SAMPLERS[kind]``."""
        return SAMPLERS[self.kind]

    @property
    def params(self) -> dict:
        return dict(self._params)

    @property
    def kernel(self) -> KernelSampler:
        """The :class:`KernelSampler` passed to :func:`pool_loss_weights`."""
        return self._kernel

    @property
    def beta(self) -> float:
        """Nominal OPAUC level: M / N for DNS(M, N), exp(-rho) for Softmax-v, 1 otherwise."""
        return self.spec.beta(self)

    def label(self) -> str:
        """Short name, e.g. ``DNS(5,200)``, ``Softmax-v(1,200)``, ``Uniform(1)``."""
        return self.spec.label(self)

    def n_used(self, pool_size: int) -> int:
        """Most pool positions of non-zero weight in a pool of ``pool_size`` draws."""
        return self.spec.n_used(self.params, pool_size)

    def check_pool(self, pool_size: int) -> None:
        """ValueError if the parameters do not fit pools of ``pool_size`` (e.g. m > N)."""
        for p in self.spec.params:
            p.check(self.params[p.name], p.name, pool_size)

    def to_dict(self) -> dict:
        """kind, n, pool and every registered parameter (own value or default)."""
        return {"kind": self.kind, "n": self.n, "pool": self.pool,
                **{name: getattr(self, name) for name in _PARAM_DEFAULTS}}


# --------------------------------------------------------------------------------------
# The samplers of the paper
# --------------------------------------------------------------------------------------
def _check_ddof(value, name: str, n: int) -> int:
    ddof = int(check_choice(value, name, (0, 1)))
    if n <= ddof:
        raise ValueError(f"{name} = {ddof} needs a pool of n > {ddof}; got n = {n}")
    return ddof


def _positive(value, name: str, n: int) -> float:
    return check_real(value, name, low=0.0, include_low=False)


register_sampler(SamplerSpec(
    name="uniform", kernel=uniform_kernel, kernel_id=0, params=(),
    kernel_params=lambda p: (), label=lambda s: f"Uniform({s.n})", default_n=1,
    full_pool=True))

register_sampler(SamplerSpec(
    name="dns", kernel=dns_kernel, kernel_id=1,
    params=(SamplerParam("m", 1, lambda v, name, n: check_int(v, name, low=1, high=n,
                                                              high_name="n",
                                                              integral_floats=True),
                         "M of DNS(M,N) (default 1)"),
            SamplerParam("reduction", "mean", lambda v, name, n: check_choice(v, name, REDUCTIONS),
                         "DNS top-M weights 1/M (mean, the paper) or 1 (sum, the authors' code)",
                         REDUCTIONS),
            SamplerParam("variant", "weighted", lambda v, name, n: check_choice(v, name, VARIANTS),
                         "DNS: weight all top M (default) or pick one of them", VARIANTS)),
    kernel_params=lambda p: (p["m"], p["reduction"] == "sum", p["variant"] == "pick_one"),
    label=lambda s: f"DNS({s.m},{s.n}{',pick-one' if s.variant == 'pick_one' else ''})",
    hardness=(("m", -1), ("n", +1)), beta=lambda s: s.m / s.n,
    n_used=lambda p, pool_size: 1 if p["variant"] == "pick_one" else p["m"]))

register_sampler(SamplerSpec(
    name="softmax_v", kernel=softmax_v_kernel, kernel_id=2,
    params=(SamplerParam("rho", 1.0, _positive, "rho of Softmax-v (default 1)"),
            SamplerParam("ddof", 0, _check_ddof, "Softmax-v variance: 0 population (Eq. 18), "
                         "1 unbiased (authors)", (0, 1))),
    kernel_params=lambda p: (p["rho"], p["ddof"]),
    label=lambda s: f"Softmax-v({s.rho:g},{s.n})",
    hardness=(("rho", +1), ("n", +1)), beta=lambda s: math.exp(-s.rho), full_pool=True))

register_sampler(SamplerSpec(
    name="score_softmax", kernel=score_softmax_kernel, kernel_id=3,
    params=(SamplerParam("tau", 1.0, _positive, "tau of score_softmax (default 1)"),),
    kernel_params=lambda p: (p["tau"],), label=lambda s: f"ScoreSoftmax({s.tau:g},{s.n})",
    hardness=(("tau", -1), ("n", +1)), full_pool=True))


def hardness_direction(kind: str, param: str) -> int:
    """+1 if a larger ``param`` makes sampler ``kind`` harder, -1 if a smaller one does
    (``SAMPLERS[kind].hardness``); ValueError if ``param`` is not one of its hardness knobs.

    Examples
    --------
    >>> hardness_direction("dns", "m"), hardness_direction("dns", "n")
    (-1, 1)
    >>> hardness_direction("softmax_v", "rho")
    1
    """
    knobs = dict(SAMPLERS[check_choice(kind, "kind", tuple(SAMPLERS))].hardness)
    return knobs[check_choice(param, "param", tuple(knobs))]


def uniform(n: int = 1, *, pool: str = "negatives") -> Sampler:
    """Uniform sampling (BPR): N pool draws, weight 1/N each.

    Examples
    --------
    >>> uniform().label(), uniform(5, pool="all").label()
    ('Uniform(1)', 'Uniform(5)')
    """
    return Sampler("uniform", n, pool=pool)


def dns(m: int, n: int, *, variant: str = "weighted", reduction: str = "mean",
        pool: str = "negatives") -> Sampler:
    """DNS(M, N) (Algorithm 1): the top M of a uniform pool of N share the weight.

    Examples
    --------
    >>> dns(5, 200).label(), dns(2, 10, variant="pick_one").label()
    ('DNS(5,200)', 'DNS(2,10,pick-one)')
    >>> dns(5, 4)
    Traceback (most recent call last):
    ...
    ValueError: m must be an integer in [1, n = 4]; got 5
    """
    return Sampler("dns", n, pool=pool, m=m, variant=variant, reduction=reduction)


def softmax_v(rho: float, n: int, *, ddof: int = 0, pool: str = "negatives") -> Sampler:
    """Softmax-v(rho, N) (Algorithm 2): loss-softmax weights at tau = sqrt(Var L / (2 rho)).

    Examples
    --------
    >>> s = softmax_v(1.0, 200)
    >>> s.label(), round(s.beta, 4)
    ('Softmax-v(1,200)', 0.3679)
    """
    return Sampler("softmax_v", n, pool=pool, rho=rho, ddof=ddof)


def score_softmax(tau: float, n: int, *, pool: str = "negatives") -> Sampler:
    """Score-softmax (Eq. 3) over a uniform pool of N: weights softmax(score / tau).

    Examples
    --------
    >>> score_softmax(0.5, 50).label()
    'ScoreSoftmax(0.5,50)'
    """
    return Sampler("score_softmax", n, pool=pool, tau=tau)


# --------------------------------------------------------------------------------------
# Pools and sampling laws
# --------------------------------------------------------------------------------------
@njit(cache=True, fastmath=FASTMATH)
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


@njit(parallel=True, cache=True, fastmath=FASTMATH)
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


@njit(cache=True, fastmath=FASTMATH)
def _draw_law_pool(state, n_neg, replace, marks, idx):
    """Fill ``idx`` with pool draws among ``n_neg`` negatives: uniform with replacement, or
    (``replace=False``) distinct by Floyd's algorithm followed by a uniform order."""
    n = idx.shape[0]
    if replace:
        for k in range(n):
            idx[k] = random_bounded(state, n_neg)
        return
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


@njit(cache=True, fastmath=FASTMATH)
def _credit_ranks(acc_row, ranks, idx, scratch, n_used):
    """Add each used draw's weight to its negative's rank (an ordinary function: numba's
    parfor mishandles NamedTuple fields written or read in a prange body, see kernels)."""
    for t in range(n_used):
        acc_row[ranks[idx[scratch.sel[t]]]] += scratch.weights[t]


@njit(parallel=True, cache=True, fastmath=FASTMATH)
def _rank_law_kernel(scores, pos_score, ranks, n, replace, sampler, states, n_repeats, acc):
    n_neg = scores.shape[0]
    n_chunks = acc.shape[0]
    for c in prange(n_chunks):
        state = states[c]
        idx = np.empty(n, np.int64)
        pool_scores = np.empty(n)
        scratch = new_scratch(n)
        marks = np.zeros(n_neg if not replace else 1, np.bool_)
        for _ in range(c * CHUNK, min(n_repeats, (c + 1) * CHUNK)):
            _draw_law_pool(state, n_neg, replace, marks, idx)
            for k in range(n):
                pool_scores[k] = scores[idx[k]]
            _, n_used = pool_loss_weights(sampler, pos_score, pool_scores, state, scratch)
            _credit_ranks(acc[c], ranks, idx, scratch, n_used)


# --------------------------------------------------------------------------------------
# Public helpers
# --------------------------------------------------------------------------------------
def _check_sampler(sampler) -> Sampler:
    if not isinstance(sampler, Sampler):
        raise ValueError(f"sampler must be a training.sampling.Sampler, got {type(sampler).__name__}")
    return sampler


def pool_weights(sampler: Sampler, pos_score: float, pool_scores, seed=0
                 ) -> tuple[np.ndarray, float]:
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

    Examples
    --------
    >>> w, loss = pool_weights(dns(2, 4), 0.0, [0.5, -1.0, 2.0, 0.0])
    >>> w
    array([0.5, 0. , 0.5, 0. ])
    >>> bool(np.isclose(loss, (np.log1p(np.exp(0.5)) + np.log1p(np.exp(2.0))) / 2))
    True
    """
    _check_sampler(sampler)
    s = check_array(pool_scores, "pool_scores")
    n = s.size
    sampler.check_pool(n)
    state = chunk_states(seed, 1)[0]
    scratch = new_scratch(n)
    loss, n_used = pool_loss_weights(sampler.kernel, float(pos_score), s, state, scratch)
    out = np.zeros(n)
    np.add.at(out, scratch.sel[:n_used], scratch.weights[:n_used])
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
        ``simulations.rng.chunk_states(seed, n_chunks)``): the same pools for any thread count, and the
        same pools as ``training.trainer.batch_loss_and_grad(..., seed=seed)`` draws
        (except for the pick-one DNS variant, whose picks share the streams).

    Examples
    --------
    >>> train = np.array([[1, 1, 0, 0, 0], [0, 0, 0, 0, 1]])
    >>> pools = draw_pools([0, 1], uniform(6), train, seed=1)
    >>> pools.shape, bool(np.all(pools[0] >= 2)), bool(np.all(pools[1] < 4))
    ((2, 6), True, True)
    """
    _check_sampler(sampler)
    train = to_interactions(train, name="train")
    users = np.ascontiguousarray(users, dtype=np.int64)
    n_users, n_items = train.shape
    if users.ndim != 1 or (users.size and (users.min() < 0 or users.max() >= n_users)):
        raise ValueError(f"users must be a 1-D array of ids in [0, {n_users})")
    exclude = sampler.pool == "negatives"
    indptr = train.indptr.astype(np.int64)
    if exclude and users.size and np.any(np.diff(indptr)[users] >= n_items):
        raise ValueError("a user has no negative item (every item is a training positive)")
    n_chunks = count_chunks(users.size, PAIR_CHUNK)
    states = chunk_states(seed, n_chunks)
    out = np.empty((users.size, sampler.n), np.int64)
    if users.size:
        _draw_pools_kernel(users, n_items, indptr, train.indices.astype(np.int64), exclude,
                           states, PAIR_CHUNK, out)
    return out


def empirical_rank_distribution(sampler: Sampler, neg_scores, pos_score: float = 0.0,
                                n_repeats: int = 10_000, seed=0, *, replace: bool = True
                                ) -> np.ndarray:
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
        Chunks of :data:`CHUNK` repeats draw from their own xoshiro states: any thread count
        gives the same numbers.
    replace : bool

    Returns
    -------
    ndarray, shape (n_neg,)
        Mean weight on the negative of rank r (index r - 1; rank 1 = highest score, ties
        broken by position, stable).  Sums to 1 for the probability-weighted samplers
        (``M`` for DNS with ``reduction="sum"``).  For DNS(M, N) it estimates
        ``theory.estimators.dns_mn_rank_probabilities(n_neg, M, N, replace=replace)``.

    Examples
    --------
    DNS(1, 2) picks the better of two draws: rank 1 of 2 with probability 3/4.

    >>> law = empirical_rank_distribution(dns(1, 2), [0.3, 0.9], n_repeats=4000, seed=0)
    >>> bool(abs(law[0] - 0.75) < 0.03), float(law.sum())
    (True, 1.0)
    """
    _check_sampler(sampler)
    s = check_array(neg_scores, "neg_scores")
    n_repeats = check_int(n_repeats, "n_repeats", low=1, integral_floats=True)
    if not replace and sampler.n > s.size:
        raise ValueError(f"pool size n = {sampler.n} exceeds n_neg = {s.size} with replace=False")
    order = np.argsort(-s, kind="stable")
    ranks = np.empty(s.size, np.int64)
    ranks[order] = np.arange(s.size)
    n_chunks = count_chunks(n_repeats, CHUNK)
    states = chunk_states(seed, n_chunks)
    acc = np.zeros((n_chunks, s.size))
    _rank_law_kernel(s, float(pos_score), ranks, sampler.n, bool(replace), sampler.kernel,
                     states, n_repeats, acc)
    return acc.sum(axis=0) / n_repeats
