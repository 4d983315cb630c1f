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

from simulations.rng import CHUNK_SIZE, MAX_BOUND, chunk_generators, chunk_states, n_chunks
from simulations.rng import random_bounded, random_bounded_pair

__all__ = [
    "RankingModel",
    "Uniform",
    "Binormal",
    "StudentT",
    "HardNegativeMixture",
    "MODELS",
    "register_model",
    "get_model",
    "draw_positions",
    "positions_scratch",
    "uniform_positions",
    "draw_scores",
    "check_sizes",
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


def register_model(cls):
    """Class decorator: make ``cls`` available by its ``name`` in :func:`get_model`."""
    if not isinstance(getattr(cls, "name", None), str):
        raise ValueError(f"model class {cls.__name__} needs a string class attribute 'name'")
    if cls.name in MODELS and MODELS[cls.name] is not cls:
        raise ValueError(f"model name {cls.name!r} is registered twice")
    MODELS[cls.name] = cls
    return cls


def get_model(model, **params):
    """A model instance from a registered name (with parameters) or an instance (as is)."""
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


def _check_mu_range(mu_low, mu_high):
    if not (np.isfinite(mu_low) and np.isfinite(mu_high)) or mu_low > mu_high:
        raise ValueError(f"mu_low and mu_high must be finite with mu_low <= mu_high; "
                         f"got ({mu_low}, {mu_high})")


@register_model
@dataclass(frozen=True)
class Uniform:
    """Uniformly random rankings (all (N+ + N-)! orderings equally likely).

    The simulators use the position kernel (:func:`draw_positions`); ``draw`` gives the same
    law as scores (i.i.d. U(0, 1) for every item), for score-based code paths and checks.
    """

    name: ClassVar[str] = "uniform"

    def draw(self, rng, n_rankings, n_pos, n_neg):
        return rng.random((n_rankings, n_pos)), rng.random((n_rankings, n_neg))


@register_model
@dataclass(frozen=True)
class Binormal:
    """Negatives N(0, 1), positives N(mu, 1), mu ~ U[mu_low, mu_high] per ranking."""

    mu_low: float = 0.0
    mu_high: float = 2.0
    name: ClassVar[str] = "binormal"

    def __post_init__(self):
        _check_mu_range(self.mu_low, self.mu_high)

    def draw(self, rng, n_rankings, n_pos, n_neg):
        mu = rng.uniform(self.mu_low, self.mu_high, size=(n_rankings, 1))
        pos = rng.standard_normal((n_rankings, n_pos))
        pos += mu
        return pos, rng.standard_normal((n_rankings, n_neg))


@register_model
@dataclass(frozen=True)
class StudentT:
    """Negatives t_df, positives mu + t_df, mu ~ U[mu_low, mu_high] per ranking (heavy tails)."""

    df: float = 3.0
    mu_low: float = 0.0
    mu_high: float = 2.0
    name: ClassVar[str] = "student_t"

    def __post_init__(self):
        if not (self.df > 0 and np.isfinite(self.df)):
            raise ValueError(f"df must be a finite number > 0; got {self.df}")
        _check_mu_range(self.mu_low, self.mu_high)

    def draw(self, rng, n_rankings, n_pos, n_neg):
        mu = rng.uniform(self.mu_low, self.mu_high, size=(n_rankings, 1))
        pos = rng.standard_t(self.df, (n_rankings, n_pos))
        pos += mu
        return pos, rng.standard_t(self.df, (n_rankings, n_neg))


@register_model
@dataclass(frozen=True)
class HardNegativeMixture:
    """Positives N(mu, 1); negatives N(mu, 1) with probability hard_fraction, else N(0, 1)."""

    hard_fraction: float = 0.1
    mu_low: float = 0.0
    mu_high: float = 2.0
    name: ClassVar[str] = "mixture"

    def __post_init__(self):
        if not 0.0 <= self.hard_fraction <= 1.0:
            raise ValueError(f"hard_fraction must be in [0, 1]; got {self.hard_fraction}")
        _check_mu_range(self.mu_low, self.mu_high)

    def draw(self, rng, n_rankings, n_pos, n_neg):
        mu = rng.uniform(self.mu_low, self.mu_high, size=(n_rankings, 1))
        pos = rng.standard_normal((n_rankings, n_pos))
        pos += mu
        neg = rng.standard_normal((n_rankings, n_neg))
        neg += mu * (rng.random((n_rankings, n_neg)) < self.hard_fraction)
        return pos, neg


# --------------------------------------------------------------------------------------
# Validation shared with simulations.correlation
# --------------------------------------------------------------------------------------
def _check_int(value, name, minimum):
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        raise ValueError(f"{name} must be an integer >= {minimum}; got {value!r}")
    if value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}; got {value}")
    return int(value)


def check_sizes(n_pos, n_neg, n_rankings, min_rankings=1):
    """Validate (n_pos, n_neg, n_rankings); ValueError naming the bad argument."""
    n_pos = _check_int(n_pos, "n_pos", 1)
    n_neg = _check_int(n_neg, "n_neg", 1)
    n_rankings = _check_int(n_rankings, "n_rankings", min_rankings)
    if n_pos + n_neg > MAX_BOUND:
        raise ValueError(f"n_pos + n_neg must be <= 2**32; got {n_pos + n_neg}")
    return n_pos, n_neg, n_rankings


# --------------------------------------------------------------------------------------
# Uniform rankings: positions of the positives
# --------------------------------------------------------------------------------------
def positions_scratch(n_items: int) -> np.ndarray:
    """Zeroed scratch for :func:`draw_positions`: 64 bytes (8 uint64 words) per 64 ranks."""
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
def draw_positions(state, n_pos, n_items, scratch, positions):
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


def uniform_positions(n_pos, n_neg, n_rankings, seed=0):
    """The 0-based ranks (0 = top) of the positives of uniformly random rankings.

    Returns ``int64[n_rankings, n_pos]``, each row ascending: exactly the rankings that
    :func:`simulations.correlation.topk_correlations` draws for ``model="uniform"`` with the
    same ``seed``.
    """
    n_pos, n_neg, n_rankings = check_sizes(n_pos, n_neg, n_rankings)
    n_ch = n_chunks(n_rankings)
    states = chunk_states(seed, n_ch)
    bounds = np.minimum(np.arange(n_ch + 1, dtype=np.int64) * CHUNK_SIZE, n_rankings)
    out = np.empty((n_rankings, n_pos), np.int64)
    _positions_kernel(states, bounds, n_pos, n_pos + n_neg, out)
    return out


def check_draw(model, pos, neg, rows, n_pos, n_neg):
    """Validate a model's draw: shapes and finite float values; returns float64 arrays."""
    pos = np.asarray(pos, dtype=np.float64)
    neg = np.asarray(neg, dtype=np.float64)
    if pos.shape != (rows, n_pos) or neg.shape != (rows, n_neg):
        raise ValueError(f"model {model!r}: draw must return arrays of shapes ({rows}, {n_pos}) and "
                         f"({rows}, {n_neg}); got {pos.shape} and {neg.shape}")
    if not (np.isfinite(pos).all() and np.isfinite(neg).all()):
        raise ValueError(f"model {model!r}: draw returned non-finite scores")
    return pos, neg


def draw_scores(model, n_pos, n_neg, n_rankings, seed=0):
    """Scores of ``n_rankings`` rankings from a score model, chunk by chunk.

    Returns ``(pos_scores, neg_scores)`` of shapes (n_rankings, n_pos) and (n_rankings,
    n_neg): the scores :func:`simulations.correlation.topk_correlations` ranks for this
    model and seed (one numpy Generator per fixed chunk).
    """
    model = get_model(model)
    n_pos, n_neg, n_rankings = check_sizes(n_pos, n_neg, n_rankings)
    n_ch = n_chunks(n_rankings)
    pos_all = np.empty((n_rankings, n_pos))
    neg_all = np.empty((n_rankings, n_neg))
    for chunk, gen in enumerate(chunk_generators(seed, n_ch)):
        lo, hi = chunk * CHUNK_SIZE, min(n_rankings, (chunk + 1) * CHUNK_SIZE)
        pos, neg = check_draw(model, *model.draw(gen, hi - lo, n_pos, n_neg), hi - lo, n_pos, n_neg)
        pos_all[lo:hi] = pos
        neg_all[lo:hi] = neg
    return pos_all, neg_all
