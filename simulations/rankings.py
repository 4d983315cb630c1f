"""Ranking models: uniformly random rankings and score distributions.

A *ranking model* says how one context's N+ positives and N- negatives are ordered.

* :class:`Uniform` (``"uniform"``): every ordering equally likely, the paper's Fig. 6
  setting.  The simulators never shuffle anything: the only randomness that matters is
  *which* ranks hold the positives, so each ranking draws exactly min(N+, N-) bounded
  integers, two per 64-bit generator output (Floyd's algorithm marking the N+ + N- ranks,
  then one pass over 64-bit masks that lists the positives' ranks in ascending order:
  :func:`draw_positions`), with the
  in-kernel xoshiro256++ generator of :mod:`simulations.rng`.
* Score models (beyond the paper; real recommenders are not random): objects with a
  ``draw(rng, n_rankings, n_pos, n_neg) -> (pos_scores, neg_scores)`` method returning two
  float arrays of shapes (n_rankings, n_pos) and (n_rankings, n_neg), drawn with a numpy
  Generator.  The metric kernels only see scores, so a new model is a new small class
  registered with :func:`register_model`; no kernel changes.

  - :class:`Binormal` (``"binormal"``): negatives N(0, 1), positives N(mu, 1), mu drawn per
    ranking uniformly from [mu_low, mu_high] (mu_low == mu_high fixes it).  The classic
    binormal ROC model; mu is the separation (AUC = Phi(mu / sqrt 2)).
  - :class:`StudentT` (``"student_t"``): the same with Student-t noise of ``df`` degrees of
    freedom (heavy tails: a few negatives score very high, a few positives very low).
  - :class:`HardNegativeMixture` (``"mixture"``): positives N(mu, 1); each negative is,
    with probability ``hard_fraction``, a *hard* negative N(mu, 1) indistinguishable from
    the positives, else N(0, 1).

:func:`uniform_positions` and :func:`draw_scores` expose the exact draws the correlation
study uses (same seeding, same chunks), for tests and teaching.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Protocol, runtime_checkable

import numpy as np
from numba import njit, prange
from numba.cpython.unsafe.numbers import trailing_zeros  # the cttz instruction

from simulations.rng import (
    MAX_BOUND,
    SeedLike,
    chunk_bounds,
    chunk_generators,
    chunk_states,
    random_bounded,
    random_bounded_pair,
)
from theory.validation import check_fraction, check_int, check_real

__all__ = [
    "MODELS",
    "Binormal",
    "HardNegativeMixture",
    "RankingModel",
    "StudentT",
    "Uniform",
    "check_sizes",
    "draw_positions",
    "draw_scores",
    "get_model",
    "positions_scratch",
    "register_model",
    "uniform_positions",
]


# --------------------------------------------------------------------------------------
# Models
# --------------------------------------------------------------------------------------
@runtime_checkable
class RankingModel(Protocol):
    """What a model provides: a name and a numpy ``draw``."""

    name: ClassVar[str]

    def draw(self, rng: np.random.Generator, n_rankings: int, n_pos: int,
             n_neg: int) -> tuple[np.ndarray, np.ndarray]:
        ...


MODELS: dict[str, type] = {}


def register_model(cls: type) -> type:
    """Class decorator: make ``cls`` available by its ``name`` in :func:`get_model`.

    Examples
    --------
    >>> @register_model
    ... @dataclass(frozen=True)
    ... class Shifted:
    ...     name: ClassVar[str] = "doc_shifted"
    ...     def draw(self, rng, n_rankings, n_pos, n_neg):
    ...         return rng.random((n_rankings, n_pos)) + 1, rng.random((n_rankings, n_neg))
    >>> get_model("doc_shifted")
    Shifted()
    >>> del MODELS["doc_shifted"]  # keep the registry as it was
    """
    if not isinstance(getattr(cls, "name", None), str):
        raise ValueError(f"model class {cls.__name__} needs a string class attribute 'name'")
    if cls.name in MODELS and MODELS[cls.name] is not cls:
        raise ValueError(f"model name {cls.name!r} is registered twice")
    MODELS[cls.name] = cls
    return cls


def get_model(model: str | RankingModel, **params) -> RankingModel:
    """A model instance from a registered name (with parameters) or an instance (as is).

    Examples
    --------
    >>> get_model("binormal", mu_low=1.0, mu_high=1.0)
    Binormal(mu_low=1.0, mu_high=1.0)
    >>> get_model("gaussian")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ValueError: model must be one of ('uniform', 'binormal', ...) or a model object; got 'gaussian'
    """
    if isinstance(model, str):
        if model not in MODELS:
            raise ValueError(f"model must be one of {tuple(MODELS)} or a model object; got {model!r}")
        return MODELS[model](**params)
    if params:
        raise ValueError("model parameters can only be given with a model name")
    if not callable(getattr(model, "draw", None)):
        raise ValueError(f"model must be one of {tuple(MODELS)} or an object with a "
                         f"draw(rng, n_rankings, n_pos, n_neg) method; got {model!r}")
    return model


def _check_mu_range(mu_low, mu_high) -> None:
    """Both finite reals (theory.validation.check_real), mu_low <= mu_high."""
    check_real(mu_low, "mu_low")
    check_real(mu_high, "mu_high")
    if mu_low > mu_high:
        raise ValueError(f"mu_low must be <= mu_high; got ({mu_low}, {mu_high})")


@register_model
@dataclass(frozen=True)
class Uniform:
    """Uniformly random rankings (all (N+ + N-)! orderings equally likely).

    The simulators use the position kernel (:func:`draw_positions`); ``draw`` gives the same
    law as scores (i.i.d. U(0, 1) for every item), for score-based code paths and checks.

    Examples
    --------
    >>> pos, neg = Uniform().draw(np.random.default_rng(0), 4, 2, 3)
    >>> pos.shape, neg.shape, bool(((0 <= pos) & (pos < 1)).all())
    ((4, 2), (4, 3), True)
    """

    name: ClassVar[str] = "uniform"

    def draw(self, rng: np.random.Generator, n_rankings: int, n_pos: int,
             n_neg: int) -> tuple[np.ndarray, np.ndarray]:
        return rng.random((n_rankings, n_pos)), rng.random((n_rankings, n_neg))


@register_model
@dataclass(frozen=True)
class Binormal:
    """Negatives N(0, 1), positives N(mu, 1), mu ~ U[mu_low, mu_high] per ranking.

    Examples
    --------
    With mu fixed at 2 the mean gap between positive and negative scores is 2 (standard
    error sqrt(2 / 20000) = 0.01; the tolerance is 5 of them):

    >>> pos, neg = Binormal(2.0, 2.0).draw(np.random.default_rng(0), 20_000, 1, 1)
    >>> bool(abs((pos - neg).mean() - 2.0) < 0.05)
    True
    """

    mu_low: float = 0.0
    mu_high: float = 2.0
    name: ClassVar[str] = "binormal"

    def __post_init__(self):
        _check_mu_range(self.mu_low, self.mu_high)

    def draw(self, rng: np.random.Generator, n_rankings: int, n_pos: int,
             n_neg: int) -> tuple[np.ndarray, np.ndarray]:
        mu = rng.uniform(self.mu_low, self.mu_high, size=(n_rankings, 1))
        pos = rng.standard_normal((n_rankings, n_pos))
        pos += mu
        return pos, rng.standard_normal((n_rankings, n_neg))


@register_model
@dataclass(frozen=True)
class StudentT:
    """Negatives t_df, positives mu + t_df, mu ~ U[mu_low, mu_high] per ranking (heavy tails).

    Examples
    --------
    >>> StudentT(df=0)
    Traceback (most recent call last):
    ...
    ValueError: df must be a number in (0.0, inf); got 0.0
    """

    df: float = 3.0
    mu_low: float = 0.0
    mu_high: float = 2.0
    name: ClassVar[str] = "student_t"

    def __post_init__(self):
        check_real(self.df, "df", low=0.0, include_low=False)
        _check_mu_range(self.mu_low, self.mu_high)

    def draw(self, rng: np.random.Generator, n_rankings: int, n_pos: int,
             n_neg: int) -> tuple[np.ndarray, np.ndarray]:
        mu = rng.uniform(self.mu_low, self.mu_high, size=(n_rankings, 1))
        pos = rng.standard_t(self.df, (n_rankings, n_pos))
        pos += mu
        return pos, rng.standard_t(self.df, (n_rankings, n_neg))


@register_model
@dataclass(frozen=True)
class HardNegativeMixture:
    """Positives N(mu, 1); negatives N(mu, 1) with probability hard_fraction, else N(0, 1).

    Examples
    --------
    With every negative hard, negatives and positives share one law (mean gap 0, standard
    error sqrt(2 / 20000) = 0.01; the tolerance is 5 of them):

    >>> pos, neg = HardNegativeMixture(1.0, 3.0, 3.0).draw(np.random.default_rng(1), 20_000, 1, 1)
    >>> bool(abs((pos - neg).mean()) < 0.05)
    True
    """

    hard_fraction: float = 0.1
    mu_low: float = 0.0
    mu_high: float = 2.0
    name: ClassVar[str] = "mixture"

    def __post_init__(self):
        check_fraction(self.hard_fraction, "hard_fraction", allow_zero=True)
        _check_mu_range(self.mu_low, self.mu_high)

    def draw(self, rng: np.random.Generator, n_rankings: int, n_pos: int,
             n_neg: int) -> tuple[np.ndarray, np.ndarray]:
        mu = rng.uniform(self.mu_low, self.mu_high, size=(n_rankings, 1))
        pos = rng.standard_normal((n_rankings, n_pos))
        pos += mu
        neg = rng.standard_normal((n_rankings, n_neg))
        neg += mu * (rng.random((n_rankings, n_neg)) < self.hard_fraction)
        return pos, neg


# --------------------------------------------------------------------------------------
# Validation shared with simulations.correlation
# --------------------------------------------------------------------------------------
def check_sizes(n_pos: int, n_neg: int, n_rankings: int,
                min_rankings: int = 1) -> tuple[int, int, int]:
    """Validate (n_pos, n_neg, n_rankings); ValueError naming the bad argument.

    Examples
    --------
    >>> check_sizes(200, 800, np.int64(1000))
    (200, 800, 1000)
    >>> check_sizes(200, 0, 1000)
    Traceback (most recent call last):
    ...
    ValueError: n_neg must be an integer >= 1; got 0
    """
    n_pos = check_int(n_pos, "n_pos", low=1)
    n_neg = check_int(n_neg, "n_neg", low=1)
    n_rankings = check_int(n_rankings, "n_rankings", low=min_rankings)
    if n_pos + n_neg > MAX_BOUND:
        raise ValueError(f"n_pos + n_neg must be <= 2**32; got {n_pos + n_neg}")
    return n_pos, n_neg, n_rankings


# --------------------------------------------------------------------------------------
# Uniform rankings: positions of the positives
# --------------------------------------------------------------------------------------
def positions_scratch(n_items: int) -> np.ndarray:
    """Zeroed scratch for :func:`draw_positions`: 64 bytes (8 uint64 words) per 64 ranks.

    Examples
    --------
    >>> positions_scratch(65).shape
    (16,)
    """
    return np.zeros(8 * ((int(n_items) + 63) >> 6), np.uint64)


@njit(cache=True, inline="always")
def _floyd_pair_step(state, j, marks_bytes, words, dense):
    """Floyd's steps j and j + 1 from one 64-bit draw (top half for j, bottom for j + 1)."""
    one = np.uint64(1)
    t, u = random_bounded_pair(state, j + 1, j + 2)  # uniform on [0, j] and [0, j + 1]
    if dense:
        t = j if marks_bytes[t] else t
        marks_bytes[t] = 1
        u = j + 1 if marks_bytes[u] else u
        marks_bytes[u] = 1
    else:
        t = j if (words[t >> 6] >> np.uint64(t & 63)) & one else t
        words[t >> 6] |= one << np.uint64(t & 63)
        u = j + 1 if (words[u >> 6] >> np.uint64(u & 63)) & one else u
        words[u >> 6] |= one << np.uint64(u & 63)


@njit(cache=True, inline="always")
def draw_positions(state: np.ndarray, n_pos: int, n_items: int, scratch: np.ndarray,
                   positions: np.ndarray) -> int:
    """Draw the ranks of ``n_pos`` positives among ``n_items``, uniformly, ascending.

    Floyd's algorithm marks a uniformly random d-subset of the ranks with d bounded draws,
    d = min(n_pos, n_items - n_pos) (the negatives are drawn instead when they are fewer),
    two per 64-bit generator output (:func:`simulations.rng.random_bounded_pair`; an odd
    last step uses :func:`simulations.rng.random_bounded`).  One pass then lists the
    positives' ranks in ascending order from 64-bit masks (count-trailing-zeros per set
    bit).  No shuffle, no sort: O(d + n_items / 64) for sparse draws.

    Two layouts of the same marks, chosen by density (the draws, hence the ranks, are the
    same either way): dense (d >= n_items / 16) marks one byte per rank, which avoids the
    read-modify-write chains of a bit set, then packs each 64 bytes into a mask; sparse
    marks bits directly, so that the pass costs n_items / 64 words.

    state : uint64[4] xoshiro256++ state (advanced).
    scratch : :func:`positions_scratch` (n_items): zero on entry and on return.
    positions : int64 array of length >= n_pos; its first n_pos entries are written.
    Returns the number of positions written (n_pos).

    Examples
    --------
    The kernel behind :func:`uniform_positions` (chunk 0 of seed 3 starts from
    ``chunk_states(3, 1)[0]``):

    >>> first_rows = uniform_positions(3, 7, 2, seed=3)
    >>> from simulations.rng import chunk_states
    >>> state, positions = chunk_states(3, 1)[0].copy(), np.empty(3, np.int64)
    >>> draw_positions(state, 3, 10, positions_scratch(10), positions)
    3
    >>> bool((positions == first_rows[0]).all())
    True
    """
    one = np.uint64(1)
    n_neg = n_items - n_pos
    mark_positives = n_pos <= n_neg
    d = n_pos if mark_positives else n_neg
    dense = 16 * d >= n_items
    marks_bytes = scratch.view(np.uint8)
    j = n_items - d
    while j + 1 < n_items:
        _floyd_pair_step(state, j, marks_bytes, scratch, dense)
        j += 2
    if j < n_items:  # odd d: one last single step
        t = random_bounded(state, j + 1)
        if dense:
            t = j if marks_bytes[t] else t
            marks_bytes[t] = 1
        else:
            t = j if (scratch[t >> 6] >> np.uint64(t & 63)) & one else t
            scratch[t >> 6] |= one << np.uint64(t & 63)
    n_groups = (n_items + 63) >> 6
    c = 0
    for g in range(n_groups):
        base = g << 6
        if dense:
            m = np.uint64(0)
            for b in range(64):
                m |= np.uint64(marks_bytes[base + b]) << np.uint64(b)
            for b in range(64):
                marks_bytes[base + b] = 0
        else:
            m = scratch[g]
            scratch[g] = 0
        if not mark_positives:
            m = ~m
            if g == n_groups - 1 and (n_items & 63) != 0:
                m &= (one << np.uint64(n_items & 63)) - one
        while m != 0:
            positions[c] = base + np.int64(trailing_zeros(m))
            c += 1
            m &= m - one
    return c


@njit(parallel=True, cache=True)
def _positions_kernel(states, bounds, n_pos, n_items, out):
    for chunk in prange(states.shape[0]):
        state = states[chunk].copy()
        scratch = np.zeros(8 * ((n_items + 63) >> 6), np.uint64)
        positions = np.empty(n_pos, np.int64)
        for r in range(bounds[chunk], bounds[chunk + 1]):
            draw_positions(state, n_pos, n_items, scratch, positions)
            out[r, :] = positions[:n_pos]


def uniform_positions(n_pos: int, n_neg: int, n_rankings: int, seed: SeedLike = 0) -> np.ndarray:
    """The 0-based ranks (0 = top) of the positives of uniformly random rankings.

    Returns ``int64[n_rankings, n_pos]``, each row ascending: exactly the rankings that
    :func:`simulations.correlation.topk_correlations` draws for ``model="uniform"`` with the
    same ``seed``.

    Examples
    --------
    >>> pos = uniform_positions(2, 3, 4, seed=0)
    >>> pos.shape, bool((pos[:, 0] < pos[:, 1]).all()), bool(((0 <= pos) & (pos < 5)).all())
    ((4, 2), True, True)
    """
    n_pos, n_neg, n_rankings = check_sizes(n_pos, n_neg, n_rankings)
    bounds = chunk_bounds(n_rankings)
    states = chunk_states(seed, bounds.size - 1)
    out = np.empty((n_rankings, n_pos), np.int64)
    _positions_kernel(states, bounds, n_pos, n_pos + n_neg, out)
    return out


def check_draw(model: RankingModel | str, pos, neg, rows: int, n_pos: int,
               n_neg: int) -> tuple[np.ndarray, np.ndarray]:
    """Validate a model's draw: shapes and finite float values; returns float64 arrays.

    Examples
    --------
    >>> check_draw("m", [[1]], [[0, 2]], 1, 1, 2)[1]
    array([[0., 2.]])
    >>> check_draw("m", [[1]], [[0, 2]], 1, 1, 3)
    Traceback (most recent call last):
    ...
    ValueError: model 'm': draw must return arrays of shapes (1, 1) and (1, 3); got (1, 1) and (1, 2)
    """
    pos = np.asarray(pos, dtype=np.float64)
    neg = np.asarray(neg, dtype=np.float64)
    if pos.shape != (rows, n_pos) or neg.shape != (rows, n_neg):
        raise ValueError(f"model {model!r}: draw must return arrays of shapes ({rows}, {n_pos}) and "
                         f"({rows}, {n_neg}); got {pos.shape} and {neg.shape}")
    if not (np.isfinite(pos).all() and np.isfinite(neg).all()):
        raise ValueError(f"model {model!r}: draw returned non-finite scores")
    return pos, neg


def draw_scores(model: str | RankingModel, n_pos: int, n_neg: int, n_rankings: int,
                seed: SeedLike = 0) -> tuple[np.ndarray, np.ndarray]:
    """Scores of ``n_rankings`` rankings from a score model, chunk by chunk.

    Returns ``(pos_scores, neg_scores)`` of shapes (n_rankings, n_pos) and (n_rankings,
    n_neg): the scores :func:`simulations.correlation.topk_correlations` ranks for this
    model and seed (one numpy Generator per fixed chunk).

    Examples
    --------
    Chunk 0 draws from the PCG64 Generator of :func:`simulations.rng.chunk_generators`:

    >>> pos, neg = draw_scores("binormal", 2, 3, 5, seed=1)
    >>> pos.shape, neg.shape
    ((5, 2), (5, 3))
    >>> from simulations.rng import chunk_generators
    >>> ref_pos, ref_neg = Binormal().draw(chunk_generators(1, 1)[0], 5, 2, 3)
    >>> bool((pos == ref_pos).all() and (neg == ref_neg).all())
    True
    """
    model = get_model(model)
    n_pos, n_neg, n_rankings = check_sizes(n_pos, n_neg, n_rankings)
    bounds = chunk_bounds(n_rankings)
    pos_all = np.empty((n_rankings, n_pos))
    neg_all = np.empty((n_rankings, n_neg))
    for chunk, gen in enumerate(chunk_generators(seed, bounds.size - 1)):
        lo, hi = int(bounds[chunk]), int(bounds[chunk + 1])
        pos, neg = check_draw(model, *model.draw(gen, hi - lo, n_pos, n_neg), hi - lo, n_pos, n_neg)
        pos_all[lo:hi] = pos
        neg_all[lo:hi] = neg
    return pos_all, neg_all
