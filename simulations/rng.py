"""Seeding and a small in-kernel random generator for the Monte Carlo simulators.

Seeding (DESIGN.md, "Randomness")
---------------------------------
Every public random function takes ``seed``: an int (or ``None``, fresh OS entropy), a
:class:`numpy.random.SeedSequence`, or a :class:`numpy.random.Generator`.

* int / None / SeedSequence: a deterministic root.  A SeedSequence is *not* mutated (no
  ``spawn``): its children are built from its entropy and spawn key, so passing the same
  SeedSequence twice gives the same numbers, as ``np.random.default_rng(ss)`` does.
* Generator (SPEC 7): four 64-bit words are drawn from it to make the root, so the generator
  advances and two calls give different, reproducible-from-the-generator results.

Work is cut into fixed chunks of :data:`CHUNK_SIZE` rankings, independent of the number of
threads; chunk ``i`` draws from its own child ``SeedSequence(entropy, spawn_key=key + (0, i))``
(:func:`chunk_seed_sequences`).  Other consumers (e.g. the bootstrap) use other branches
(:func:`branch_seed_sequence`), so they never overlap with the simulation streams.  The
numbers of a study therefore depend on (seed, chunk index) only: any thread count, any
scheduling, the same table.

The in-kernel generator: xoshiro256++
-------------------------------------
Numba's own ``np.random`` costs 40-55 ns per draw on these machines and its state is per
thread (so results would depend on the scheduling).  The uniform ranking model only needs
bounded integers (Floyd's sampling), about n_pos of them per ranking, so a tiny generator
inside the kernel is both faster than handing over bulk numpy draws (no memory traffic, no
Python per chunk) and deterministic per chunk:

* :func:`next_u64`: xoshiro256++ (Blackman & Vigna, "Scrambled linear pseudorandom number
  generators", ACM TOMS 2021), 256 bits of state held in a ``uint64[4]`` array, one per
  chunk, seeded by ``SeedSequence.generate_state(4, np.uint64)`` (SeedSequence hashes the
  chunk key, so neighbouring chunks get unrelated states; the all-zero state is excluded).
* :func:`random_float`: the top 53 bits times 2**-53, uniform on [0, 1).
* :func:`random_bounded`: Lemire's multiply-shift with rejection ("Fast random integer
  generation in an interval", ACM TOMACS 2019): exactly uniform on [0, bound) for
  1 <= bound <= 2**32, one 64-bit draw (its top 32 bits) per value except in the rare
  rejections (probability < bound / 2**32).  :func:`random_bounded_pair` maps both
  32-bit halves of one draw (top half first), for twice fewer generator calls.

Measured here (one thread): 0.9 ns per raw output, 1.5 ns per bounded integer, about 1 ns
per bounded integer in pairs; Floyd's sampling of the 200 positive ranks among 1,000
(:func:`simulations.rankings.draw_positions`) costs about 0.75 us per ranking, a quarter of
the whole Fig. 6 study per ranking (``benchmarks/bench_correlation.py``).

Bulk numpy draws remain the right tool for score models (normal / Student-t variates, where
numpy's ziggurat is fast): :func:`chunk_generators` gives one ``numpy.random.Generator``
(PCG64) per chunk from the same child seeds.
"""
from __future__ import annotations

import numpy as np
from numba import njit

__all__ = [
    "CHUNK_SIZE",
    "MAX_BOUND",
    "as_generator",
    "as_seed_sequence",
    "branch_seed_sequence",
    "chunk_seed_sequences",
    "chunk_states",
    "chunk_generators",
    "n_chunks",
    "chunk_bounds",
    "xoshiro_state",
    "next_u64",
    "random_float",
    "random_bounded",
    "random_bounded_pair",
    "bounded_from_u32",
    "fill_u64",
    "fill_floats",
    "fill_bounded",
    "fill_bounded_pairs",
]

#: Rankings per chunk.  Fixed: it decides which child seed draws which ranking, so changing
#: it changes the random numbers (never the distribution).  1024 rankings keep the per-chunk
#: seeding overhead (about 10 us per SeedSequence child) below 10 ns per ranking and the
#: per-chunk scratch (1024 x ~60 float64 values) inside the L2 cache.
CHUNK_SIZE = 1024

#: Largest bound accepted by :func:`random_bounded` (a 32-bit multiply-shift).
MAX_BOUND = 2**32

_BRANCH_CHUNKS = 0  # spawn-key branch of the per-chunk simulation streams


def as_seed_sequence(seed) -> np.random.SeedSequence:
    """The root SeedSequence of ``seed`` (int >= 0, None, SeedSequence or Generator)."""
    if isinstance(seed, np.random.SeedSequence):
        return seed
    if isinstance(seed, np.random.Generator):
        words = seed.integers(0, 2**64, size=4, dtype=np.uint64)
        return np.random.SeedSequence([int(w) for w in words])
    if seed is None:
        return np.random.SeedSequence()
    if isinstance(seed, (bool, np.bool_)) or not isinstance(seed, (int, np.integer)):
        raise ValueError(f"seed must be an int >= 0, None, a numpy SeedSequence or Generator; "
                         f"got {seed!r}")
    if seed < 0:
        raise ValueError(f"seed must be an int >= 0; got {seed}")
    return np.random.SeedSequence(int(seed))


def as_generator(seed) -> np.random.Generator:
    """A numpy Generator for ``seed``: the Generator itself (used and advanced), else
    ``np.random.default_rng(as_seed_sequence(seed))``, the same stream as
    ``np.random.default_rng(seed)`` for an int or SeedSequence.

    Examples
    --------
    >>> bool(as_generator(7).integers(1 << 30) == np.random.default_rng(7).integers(1 << 30))
    True
    """
    if isinstance(seed, np.random.Generator):
        return seed
    return np.random.default_rng(as_seed_sequence(seed))


def branch_seed_sequence(root: np.random.SeedSequence, *path: int) -> np.random.SeedSequence:
    """Child of ``root`` at spawn-key ``root.spawn_key + path``, without mutating ``root``."""
    return np.random.SeedSequence(root.entropy, spawn_key=tuple(root.spawn_key) + tuple(path),
                                  pool_size=root.pool_size)


def n_chunks(n_rankings: int, chunk_size: int = CHUNK_SIZE) -> int:
    """Number of fixed chunks covering ``n_rankings``."""
    return (int(n_rankings) + chunk_size - 1) // chunk_size


def chunk_bounds(n_rankings: int, chunk_size: int = CHUNK_SIZE) -> np.ndarray:
    """Start index of every chunk and the end: ``int64[n_chunks + 1]``."""
    starts = np.arange(0, n_rankings, chunk_size, dtype=np.int64)
    return np.append(starts, np.int64(n_rankings))


def chunk_seed_sequences(seed, n: int, first: int = 0) -> list[np.random.SeedSequence]:
    """Child seeds of chunks ``first .. first + n - 1`` (spawn key ``root + (0, i)``)."""
    root = as_seed_sequence(seed)
    return [branch_seed_sequence(root, _BRANCH_CHUNKS, i) for i in range(first, first + n)]


def _state_from(ss: np.random.SeedSequence) -> np.ndarray:
    state = ss.generate_state(4, np.uint64)
    if not state.any():  # xoshiro's one forbidden state; probability 2**-256
        state[0] = np.uint64(0x9E3779B97F4A7C15)
    return state


def xoshiro_state(seed) -> np.ndarray:
    """A xoshiro256++ state ``uint64[4]`` seeded from ``seed`` (see :func:`as_seed_sequence`)."""
    return _state_from(as_seed_sequence(seed))


def chunk_states(seed, n: int, first: int = 0) -> np.ndarray:
    """xoshiro256++ states of chunks ``first .. first + n - 1``: ``uint64[n, 4]``."""
    out = np.empty((n, 4), dtype=np.uint64)
    for row, ss in enumerate(chunk_seed_sequences(seed, n, first)):
        out[row] = _state_from(ss)
    return out


def chunk_generators(seed, n: int, first: int = 0) -> list[np.random.Generator]:
    """One numpy Generator (PCG64) per chunk, from the same child seeds as :func:`chunk_states`."""
    return [np.random.Generator(np.random.PCG64(ss)) for ss in chunk_seed_sequences(seed, n, first)]


# --------------------------------------------------------------------------------------
# xoshiro256++ in numba (state: uint64[4], updated in place)
# --------------------------------------------------------------------------------------
_MASK32 = np.uint64(0xFFFFFFFF)
_TWO32 = np.uint64(1) << np.uint64(32)


@njit(cache=True, inline="always")
def _rotl(x, k):
    return (x << np.uint64(k)) | (x >> np.uint64(64 - k))


@njit(cache=True, inline="always")
def next_u64(state):
    """Next 64-bit output of xoshiro256++; advances ``state`` (uint64[4]) in place."""
    s0 = state[0]
    s1 = state[1]
    s2 = state[2]
    s3 = state[3]
    result = _rotl(s0 + s3, 23) + s0
    t = s1 << np.uint64(17)
    s2 ^= s0
    s3 ^= s1
    s1 ^= s2
    s0 ^= s3
    s2 ^= t
    s3 = _rotl(s3, 45)
    state[0] = s0
    state[1] = s1
    state[2] = s2
    state[3] = s3
    return result


@njit(cache=True, inline="always")
def random_float(state):
    """Uniform float64 on [0, 1): the top 53 bits of one draw times 2**-53."""
    return np.float64(next_u64(state) >> np.uint64(11)) * (1.0 / 9007199254740992.0)


@njit(cache=True, inline="always")
def bounded_from_u32(state, x, bound):
    """Lemire's map of a given 32-bit uniform ``x`` (uint64 < 2**32) to [0, bound).

    ``m = x * bound``; its high 32 bits are the answer unless its low 32 bits fall below
    ``2**32 mod bound``, in which case a fresh x (the top half of the next draw of
    ``state``) replaces it: that rejection is what removes the bias of a plain
    multiply-shift or modulo.  1 <= bound <= 2**32.
    """
    s = np.uint64(bound)
    m = x * s
    low = m & _MASK32
    if low < s:
        threshold = (_TWO32 - s) % s
        while low < threshold:
            m = (next_u64(state) >> np.uint64(32)) * s
            low = m & _MASK32
    return np.int64(m >> np.uint64(32))


@njit(cache=True, inline="always")
def random_bounded(state, bound):
    """Uniform integer in [0, bound), 1 <= bound <= 2**32 (Lemire's method, unbiased).

    One 64-bit draw (its top 32 bits, see :func:`bounded_from_u32`) per value, except in
    the rare rejections (probability < bound / 2**32).
    """
    return bounded_from_u32(state, next_u64(state) >> np.uint64(32), bound)


@njit(cache=True, inline="always")
def random_bounded_pair(state, bound_hi, bound_lo):
    """Two bounded integers from one 64-bit draw: its top half maps to [0, bound_hi), its
    bottom half to [0, bound_lo) (each exactly uniform, independent: xoshiro256++'s 64
    output bits are all full quality).  Half the generator calls of two random_bounded."""
    x = next_u64(state)
    first = bounded_from_u32(state, x >> np.uint64(32), bound_hi)
    return first, bounded_from_u32(state, x & _MASK32, bound_lo)


@njit(cache=True)
def fill_u64(state, out):
    """Fill ``out`` (uint64) with raw xoshiro256++ outputs (tests, teaching)."""
    for i in range(out.shape[0]):
        out[i] = next_u64(state)


@njit(cache=True)
def fill_floats(state, out):
    """Fill ``out`` (float64) with :func:`random_float` draws."""
    for i in range(out.shape[0]):
        out[i] = random_float(state)


@njit(cache=True)
def fill_bounded(state, bound, out):
    """Fill ``out`` (int64) with :func:`random_bounded` draws in [0, bound)."""
    for i in range(out.shape[0]):
        out[i] = random_bounded(state, bound)


@njit(cache=True)
def fill_bounded_pairs(state, bound_hi, bound_lo, out):
    """Fill ``out`` (int64, shape (n, 2)) with :func:`random_bounded_pair` draws."""
    for i in range(out.shape[0]):
        out[i, 0], out[i, 1] = random_bounded_pair(state, bound_hi, bound_lo)
