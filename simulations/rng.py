"""Seeding and a small in-kernel random generator for the Monte Carlo simulators.

Seeding: the one scheme of the package (DESIGN.md, "Randomness")
------------------------------------------------------------------
Every public random function takes ``seed`` (:data:`SeedLike`): an int (or ``None``, fresh
OS entropy), a :class:`numpy.random.SeedSequence`, or a :class:`numpy.random.Generator`,
normalised by :func:`as_seed_sequence` into a *root* SeedSequence.

* int / None / SeedSequence: a deterministic root.  A SeedSequence is *not* mutated (no
  ``spawn``): its children are built from its entropy and spawn key, so passing the same
  SeedSequence twice gives the same numbers, as ``np.random.default_rng(ss)`` does.
* Generator (SPEC 7): four 64-bit words are drawn from it to make the root, so the generator
  advances and two calls give different, reproducible-from-the-generator results.

Every random stream is a SeedSequence child of the root, addressed by its spawn key:

* a consumer owns a *branch* (a tuple of non-negative ints; :func:`branch_seed_sequence`),
  so consumers of one seed never share a stream (e.g. the correlation study's bootstrap
  uses ``(1,)``, training its own branches per epoch);
* work is cut into fixed chunks (:data:`CHUNK_SIZE` rankings for the simulators),
  independent of the number of threads, and chunk ``i`` of branch ``b`` draws from the child
  at spawn key ``root.spawn_key + b + (0, i)``: :func:`chunk_states` (xoshiro256++ states,
  ``uint64[4]`` = the child's ``generate_state(4, np.uint64)``), :func:`chunk_generators`
  (PCG64 Generators) and :func:`chunk_seed_sequences` (the children themselves) give the
  same children.  The Monte Carlo simulators use the empty branch, ``(0, i)``.

The numbers of a study therefore depend on (seed, branch, chunk index) only: any thread
count, any scheduling, the same table.

Building one SeedSequence per chunk costs about 9 us in Python, too much for training
(64 chunks per batch).  :func:`spawn_states` computes the children's states without
building them: numpy's SeedSequence hashing (O'Neill's seed_seq replacement, numpy's
``bit_generator.pyx``) transcribed into one small numba kernel that mixes the part shared
by all children (run entropy zero-padded to the pool size, the parent's spawn key) once and
then hashes each child's index; the result equals numpy's bit for bit (tests compare with
numpy's own SeedSequence), in about 5 us for 64 chunks, 13 us for 1024
(``benchmarks/bench_seeding.py``).  Entropy that the kernel does not transcribe (strings,
chunk indices >= 2**32) goes through numpy's own SeedSequence, child by child.

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

from collections.abc import Sequence

import numpy as np
from numba import njit

from theory.validation import check_int

__all__ = [
    "CHUNK_SIZE",
    "MAX_BOUND",
    "SeedLike",
    "as_generator",
    "as_seed_sequence",
    "bounded_from_u32",
    "branch_seed_sequence",
    "chunk_bounds",
    "chunk_generators",
    "chunk_seed_sequences",
    "chunk_states",
    "fill_bounded",
    "fill_bounded_pairs",
    "fill_floats",
    "fill_u64",
    "n_chunks",
    "next_u64",
    "random_bounded",
    "random_bounded_pair",
    "random_float",
    "spawn_states",
    "xoshiro_state",
]

#: Rankings per chunk.  Fixed: it decides which child seed draws which ranking, so changing
#: it changes the random numbers (never the distribution).  1024 rankings keep the per-chunk
#: seeding overhead (about 10 us per PCG64 Generator child, 0.1 us per xoshiro state) below
#: 10 ns per ranking and the per-chunk scratch (1024 x ~60 float64 values) inside the L2 cache.
CHUNK_SIZE = 1024

#: Largest bound accepted by :func:`random_bounded` (a 32-bit multiply-shift).
MAX_BOUND = 2**32

_DEFAULT_POOL_SIZE = 4  # numpy's default SeedSequence pool (4 x 32 bits)

_BRANCH_CHUNKS = 0  # spawn-key branch of the per-chunk streams, under any caller's branch

#: What a public random function accepts as ``seed`` (see :func:`as_seed_sequence`).
SeedLike = int | np.integer | None | np.random.SeedSequence | np.random.Generator


def as_seed_sequence(seed: SeedLike) -> np.random.SeedSequence:
    """The root SeedSequence of ``seed`` (int >= 0, None, SeedSequence or Generator).

    A SeedSequence is returned as is (never spawned from); a Generator is advanced by four
    64-bit draws that become the root's entropy; None gives fresh OS entropy.

    Examples
    --------
    >>> as_seed_sequence(7).entropy
    7
    >>> ss = np.random.SeedSequence(3, spawn_key=(1,))
    >>> as_seed_sequence(ss) is ss
    True
    >>> as_seed_sequence(-1)
    Traceback (most recent call last):
    ...
    ValueError: seed must be an int >= 0; got -1
    """
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


def as_generator(seed: SeedLike) -> np.random.Generator:
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
    """Child of ``root`` at spawn-key ``root.spawn_key + path``, without mutating ``root``.

    Examples
    --------
    >>> child = branch_seed_sequence(np.random.SeedSequence(5, spawn_key=(2,)), 1, 0)
    >>> child.entropy, child.spawn_key
    (5, (2, 1, 0))
    """
    return np.random.SeedSequence(root.entropy, spawn_key=tuple(root.spawn_key) + tuple(path),
                                  pool_size=root.pool_size)


def n_chunks(n_rankings: int, chunk_size: int = CHUNK_SIZE) -> int:
    """Number of fixed chunks covering ``n_rankings``.

    Examples
    --------
    >>> n_chunks(1), n_chunks(1024), n_chunks(1025)
    (1, 1, 2)
    """
    return (int(n_rankings) + chunk_size - 1) // chunk_size


def chunk_bounds(n_rankings: int, chunk_size: int = CHUNK_SIZE) -> np.ndarray:
    """Start index of every chunk and the end: ``int64[n_chunks + 1]``.

    Examples
    --------
    >>> chunk_bounds(2500).tolist()
    [0, 1024, 2048, 2500]
    """
    starts = np.arange(0, n_rankings, chunk_size, dtype=np.int64)
    return np.append(starts, np.int64(n_rankings))


def _check_branch(branch) -> tuple[int, ...]:
    if isinstance(branch, (int, np.integer, str)) or not isinstance(branch, (tuple, list, range)):
        raise ValueError(f"branch must be a tuple of integers >= 0; got {branch!r}")
    return tuple(check_int(b, "branch", low=0) for b in branch)


def chunk_seed_sequences(seed: SeedLike, n: int, first: int = 0, *,
                         branch: Sequence[int] = ()) -> list[np.random.SeedSequence]:
    """Child seeds of chunks ``first .. first + n - 1``: spawn key
    ``root.spawn_key + branch + (0, i)`` for chunk ``i``.

    Examples
    --------
    >>> [ss.spawn_key for ss in chunk_seed_sequences(42, 2, first=5, branch=(3,))]
    [(3, 0, 5), (3, 0, 6)]
    """
    root = as_seed_sequence(seed)
    path = _check_branch(branch) + (_BRANCH_CHUNKS,)
    return [branch_seed_sequence(root, *path, i) for i in range(first, first + n)]


def _state_from(ss: np.random.SeedSequence) -> np.ndarray:
    state = ss.generate_state(4, np.uint64)
    if not state.any():  # xoshiro's one forbidden state; probability 2**-256
        state[0] = _NONZERO_WORD
    return state


def xoshiro_state(seed: SeedLike) -> np.ndarray:
    """A xoshiro256++ state ``uint64[4]`` seeded from ``seed`` (see :func:`as_seed_sequence`).

    Examples
    --------
    >>> np.array_equal(xoshiro_state(3), np.random.SeedSequence(3).generate_state(4, np.uint64))
    True
    """
    return _state_from(as_seed_sequence(seed))


# --------------------------------------------------------------------------------------
# SeedSequence children, many at once
# --------------------------------------------------------------------------------------
# numpy's SeedSequence (numpy/random/bit_generator.pyx, after M. E. O'Neill's seed_seq
# replacement): 32-bit words hashed with these constants.  The 32-bit values are held in
# uint64 and masked after every product, so that numba's integer promotion cannot change
# the arithmetic.
_INIT_A = np.uint64(0x43B0D7E5)
_MULT_A = np.uint64(0x931E8875)
_INIT_B = np.uint64(0x8B51F9DD)
_MULT_B = np.uint64(0x58F38DED)
_MIX_MULT_L = np.uint64(0xCA01F9DD)
_MIX_MULT_R = np.uint64(0x4973F715)
_XSHIFT = np.uint64(16)  # half the bits of a 32-bit word
_MASK32 = np.uint64(0xFFFFFFFF)
_NONZERO_WORD = np.uint64(0x9E3779B97F4A7C15)  # replaces xoshiro's forbidden all-zero state


@njit(cache=True, inline="always")
def _hashmix(value, hash_const):
    """numpy's ``hashmix``: (hashed value, next hash constant); the constant is advanced
    before it multiplies, as in numpy."""
    value = value ^ hash_const
    hash_const = (hash_const * _MULT_A) & _MASK32
    value = (value * hash_const) & _MASK32
    return value ^ (value >> _XSHIFT), hash_const


@njit(cache=True, inline="always")
def _mix(x, y):
    """numpy's ``mix``: (MIX_MULT_L x - MIX_MULT_R y) mod 2**32, then an xor-shift."""
    result = (_MIX_MULT_L * x - _MIX_MULT_R * y) & _MASK32  # uint64 wraps, the mask keeps mod 2**32
    return result ^ (result >> _XSHIFT)


@njit(cache=True)
def _spawn_states_kernel(prefix, pool_size, first, fix_zero, out):
    """Row r of ``out`` = generate_state(4, uint64) of the SeedSequence whose assembled
    entropy is ``prefix`` followed by the one word ``first + r``.

    The prefix (run entropy zero-padded to the pool size, then the parent's spawn key) is
    mixed once: every child's last word enters in numpy's "remaining entropy" loop (its
    index is >= pool_size because of the padding), and the hash constants do not depend on
    the data, so the pool before that word and the constant sequence are shared by all
    children.  Per child: pool_size hashmix + mix steps and 8 output words.
    """
    pool = np.empty(pool_size, np.uint64)
    h = _INIT_A
    for k in range(pool_size):  # the first pool_size words fill the pool
        v, h = _hashmix(prefix[k], h)
        pool[k] = v
    for src in range(pool_size):  # all-to-all mixing
        for dst in range(pool_size):
            if src != dst:
                v, h = _hashmix(pool[src], h)
                pool[dst] = _mix(pool[dst], v)
    for src in range(pool_size, prefix.shape[0]):  # the rest of the entropy, word by word
        for dst in range(pool_size):
            v, h = _hashmix(prefix[src], h)
            pool[dst] = _mix(pool[dst], v)
    child = np.empty(pool_size, np.uint64)
    for row in range(out.shape[0]):
        word = np.uint64(first + row)
        hc = h
        for dst in range(pool_size):  # the child's own word (its spawn index)
            v, hc = _hashmix(word, hc)
            child[dst] = _mix(pool[dst], v)
        hb = _INIT_B
        nonzero = False
        for w in range(4):  # generate_state: 8 words cycling the pool, little-endian pairs
            pair = np.uint64(0)
            for half in range(2):
                v = child[(2 * w + half) % pool_size] ^ hb
                hb = (hb * _MULT_B) & _MASK32
                v = (v * hb) & _MASK32
                v ^= v >> _XSHIFT
                pair |= v << np.uint64(32 * half)
            out[row, w] = pair
            nonzero = nonzero or pair != 0
        if fix_zero and not nonzero:
            out[row, 0] = _NONZERO_WORD


def _uint32_words(value) -> list[int] | None:
    """numpy's reading of SeedSequence entropy or a spawn key as 32-bit words (each int
    split lowest word first, 0 as one word, sequences concatenated); None for what is not
    transcribed here (strings, negative or non-integer values, nested or N-d arrays), which
    then goes through numpy's own SeedSequence."""
    if isinstance(value, np.ndarray):
        if value.ndim != 1 or value.dtype.kind not in "iu":
            return None
        value = value.tolist()
    items = [value] if isinstance(value, (int, np.integer)) else value
    if not isinstance(items, (list, tuple, range)):
        return None
    words = []
    for item in items:
        if not isinstance(item, (int, np.integer)) or item < 0:
            return None
        item = int(item)
        words.append(item & 0xFFFFFFFF)
        item >>= 32
        while item:
            words.append(item & 0xFFFFFFFF)
            item >>= 32
    return words


def _spawn_states(entropy, spawn_key: tuple, n: int, first: int, pool_size: int,
                  fix_zero: bool) -> np.ndarray:
    out = np.empty((n, 4), np.uint64)
    run = _uint32_words(entropy)
    key = _uint32_words(spawn_key)
    if run is None or key is None or first + n > 2**32:
        # Fallback: numpy's own SeedSequence per child (string entropy, child indices of
        # more than one 32-bit word, invalid values that numpy itself must refuse).
        for row in range(n):
            ss = np.random.SeedSequence(entropy, spawn_key=spawn_key + (first + row,),
                                        pool_size=pool_size)
            out[row] = _state_from(ss) if fix_zero else ss.generate_state(4, np.uint64)
        return out
    # A spawn key is present, so numpy zero-pads the run entropy to the pool size.
    prefix = run + [0] * (pool_size - len(run)) + key
    _spawn_states_kernel(np.array(prefix, np.uint64), pool_size, first, fix_zero, out)
    return out


def spawn_states(entropy: int | Sequence[int], spawn_key: Sequence[int], n: int,
                 first: int = 0, *, pool_size: int = 4) -> np.ndarray:
    """``generate_state(4, np.uint64)`` of the children ``first .. first + n - 1`` of a
    SeedSequence, computed together: ``uint64[n, 4]``.

    Row ``r`` equals ``SeedSequence(entropy, spawn_key=tuple(spawn_key) + (first + r,),
    pool_size=pool_size).generate_state(4, np.uint64)`` bit for bit (numpy's hashing,
    transcribed into one numba kernel that mixes the shared part once), about 100 times
    faster than building the children (``benchmarks/bench_seeding.py``).

    Parameters
    ----------
    entropy : int or sequence of int
        The parent's ``entropy`` (non-negative integers of any size).  Values this module
        does not transcribe (strings such as ``"0x1f"``) are passed to numpy's own
        SeedSequence, child by child, with the same result.
    spawn_key : sequence of int
        The parent's spawn key (non-negative integers).
    n, first : int >= 0
        Number of children and the first child's index; indices >= 2**32 also go through
        numpy's own SeedSequence.
    pool_size : int >= 4, default 4

    Returns
    -------
    numpy.ndarray of uint64, shape (n, 4)

    Examples
    --------
    >>> s = spawn_states(42, (0,), 3, first=5)
    >>> bool((s[1] == np.random.SeedSequence(42, spawn_key=(0, 6)).generate_state(4, np.uint64)).all())
    True
    """
    n = check_int(n, "n", low=0)
    first = check_int(first, "first", low=0)
    pool_size = check_int(pool_size, "pool_size", low=4)
    if isinstance(spawn_key, (int, np.integer, str)) or not isinstance(spawn_key,
                                                                       (tuple, list, range)):
        raise ValueError(f"spawn_key must be a sequence of integers >= 0; got {spawn_key!r}")
    return _spawn_states(entropy, tuple(spawn_key), n, first, pool_size, fix_zero=False)


def chunk_states(seed: SeedLike, n: int, first: int = 0, *,
                 branch: Sequence[int] = ()) -> np.ndarray:
    """xoshiro256++ states of chunks ``first .. first + n - 1``: ``uint64[n, 4]``.

    Chunk ``i`` is seeded by its own SeedSequence child, spawn key
    ``root.spawn_key + branch + (0, i)`` (root = :func:`as_seed_sequence` of ``seed``): the
    package's one seeding scheme (module docstring).  Computed by :func:`spawn_states`
    without building the children; identical to
    ``chunk_seed_sequences(seed, n, first, branch=branch)[r].generate_state(4, np.uint64)``
    (the all-zero state, probability 2**-256, is replaced).

    Parameters
    ----------
    seed : int >= 0, None, SeedSequence or Generator
    n : int >= 0
        Number of chunks.
    first : int >= 0, default 0
        Index of the first chunk (a wave of chunks of a longer study).
    branch : tuple of int >= 0, default ()
        Spawn-key branch of the consumer (e.g. ``(pools, epoch)`` in training), so that
        different consumers of one seed never share a stream.

    Returns
    -------
    numpy.ndarray of uint64, shape (n, 4)

    Examples
    --------
    >>> s = chunk_states(42, 3, first=5)
    >>> bool((s[0] == np.random.SeedSequence(42, spawn_key=(0, 5)).generate_state(4, np.uint64)).all())
    True
    >>> t = chunk_states(42, 1, branch=(2, 7))
    >>> bool((t[0] == np.random.SeedSequence(42, spawn_key=(2, 7, 0, 0)).generate_state(4, np.uint64)).all())
    True
    """
    n = check_int(n, "n", low=0)
    first = check_int(first, "first", low=0)
    path = _check_branch(branch) + (_BRANCH_CHUNKS,)
    if isinstance(seed, (int, np.integer)) and not isinstance(seed, (bool, np.bool_)) and seed >= 0:
        # SeedSequence(seed) has entropy seed, no spawn key and the default pool: skip
        # building it (a few microseconds, as much as the hashing itself).
        return _spawn_states(int(seed), path, n, first, _DEFAULT_POOL_SIZE, fix_zero=True)
    root = as_seed_sequence(seed)
    return _spawn_states(root.entropy, tuple(root.spawn_key) + path, n, first, root.pool_size,
                         fix_zero=True)


def chunk_generators(seed: SeedLike, n: int, first: int = 0, *,
                     branch: Sequence[int] = ()) -> list[np.random.Generator]:
    """One numpy Generator (PCG64) per chunk, from the same child seeds as :func:`chunk_states`.

    Examples
    --------
    >>> g = chunk_generators(42, 2, first=5)[1]
    >>> ref = np.random.Generator(np.random.PCG64(np.random.SeedSequence(42, spawn_key=(0, 6))))
    >>> bool(g.random() == ref.random())
    True
    """
    return [np.random.Generator(np.random.PCG64(ss))
            for ss in chunk_seed_sequences(seed, n, first, branch=branch)]


# --------------------------------------------------------------------------------------
# xoshiro256++ in numba (state: uint64[4], updated in place)
# --------------------------------------------------------------------------------------
_TWO32 = np.uint64(1) << np.uint64(32)


@njit(cache=True, inline="always")
def _rotl(x, k):
    return (x << np.uint64(k)) | (x >> np.uint64(64 - k))


@njit(cache=True, inline="always")
def next_u64(state: np.ndarray) -> np.uint64:
    """Next 64-bit output of xoshiro256++; advances ``state`` (uint64[4]) in place.

    Examples
    --------
    By hand: the first output is rotl(s0 + s3, 23) + s0 = 5 * 2**23 + 1 for state (1, 2, 3, 4).

    >>> out = np.empty(1, np.uint64)
    >>> fill_u64(np.array([1, 2, 3, 4], np.uint64), out)  # next_u64 in a loop
    >>> int(out[0]) == 5 * 2**23 + 1
    True
    """
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
def random_float(state: np.ndarray) -> float:
    """Uniform float64 on [0, 1): the top 53 bits of one draw times 2**-53.

    Examples
    --------
    >>> raw, x = np.empty(3, np.uint64), np.empty(3)
    >>> fill_u64(xoshiro_state(1), raw); fill_floats(xoshiro_state(1), x)  # random_float in a loop
    >>> bool((x == (raw >> np.uint64(11)) * 2.0**-53).all())
    True
    """
    return np.float64(next_u64(state) >> np.uint64(11)) * (1.0 / 9007199254740992.0)


@njit(cache=True, inline="always")
def bounded_from_u32(state: np.ndarray, x: np.uint64, bound: int) -> int:
    """Lemire's map of a given 32-bit uniform ``x`` (uint64 < 2**32) to [0, bound).

    ``m = x * bound``; its high 32 bits are the answer unless its low 32 bits fall below
    ``2**32 mod bound``, in which case a fresh x (the top half of the next draw of
    ``state``) replaces it: that rejection is what removes the bias of a plain
    multiply-shift or modulo.  1 <= bound <= 2**32.

    Examples
    --------
    With bound = 2**32 nothing is rejected and the answer is ``x`` itself, the top half
    of each draw:

    >>> raw, out = np.empty(3, np.uint64), np.empty(3, np.int64)
    >>> fill_u64(xoshiro_state(0), raw); fill_bounded(xoshiro_state(0), 2**32, out)
    >>> bool((out == (raw >> np.uint64(32)).astype(np.int64)).all())
    True
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
def random_bounded(state: np.ndarray, bound: int) -> int:
    """Uniform integer in [0, bound), 1 <= bound <= 2**32 (Lemire's method, unbiased).

    One 64-bit draw (its top 32 bits, see :func:`bounded_from_u32`) per value, except in
    the rare rejections (probability < bound / 2**32).

    Examples
    --------
    >>> out = np.empty(1000, np.int64)
    >>> fill_bounded(xoshiro_state(2), 6, out)  # random_bounded in a loop: dice
    >>> sorted(set(out.tolist()))
    [0, 1, 2, 3, 4, 5]
    """
    return bounded_from_u32(state, next_u64(state) >> np.uint64(32), bound)


@njit(cache=True, inline="always")
def random_bounded_pair(state: np.ndarray, bound_hi: int, bound_lo: int) -> tuple[int, int]:
    """Two bounded integers from one 64-bit draw: its top half maps to [0, bound_hi), its
    bottom half to [0, bound_lo) (each exactly uniform, independent: xoshiro256++'s 64
    output bits are all full quality).  Half the generator calls of two random_bounded.

    Examples
    --------
    >>> out = np.empty((500, 2), np.int64)
    >>> fill_bounded_pairs(xoshiro_state(4), 3, 1000, out)  # random_bounded_pair in a loop
    >>> int(out[:, 0].max()) <= 2 and int(out[:, 1].max()) <= 999
    True
    """
    x = next_u64(state)
    first = bounded_from_u32(state, x >> np.uint64(32), bound_hi)
    return first, bounded_from_u32(state, x & _MASK32, bound_lo)


@njit(cache=True)
def fill_u64(state: np.ndarray, out: np.ndarray) -> None:
    """Fill ``out`` (uint64) with raw xoshiro256++ outputs (tests, teaching); advances ``state``.

    Examples
    --------
    >>> state, out = xoshiro_state(5), np.empty(4, np.uint64)
    >>> fill_u64(state, out)
    >>> again = np.empty(4, np.uint64)
    >>> fill_u64(xoshiro_state(5), again)
    >>> bool((out == again).all())
    True
    """
    for i in range(out.shape[0]):
        out[i] = next_u64(state)


@njit(cache=True)
def fill_floats(state: np.ndarray, out: np.ndarray) -> None:
    """Fill ``out`` (float64) with :func:`random_float` draws.

    Examples
    --------
    >>> x = np.empty(10_000)
    >>> fill_floats(xoshiro_state(6), x)
    >>> bool(0.0 <= x.min() and x.max() < 1.0 and abs(x.mean() - 0.5) < 0.015)  # 5 SE
    True
    """
    for i in range(out.shape[0]):
        out[i] = random_float(state)


@njit(cache=True)
def fill_bounded(state: np.ndarray, bound: int, out: np.ndarray) -> None:
    """Fill ``out`` (int64) with :func:`random_bounded` draws in [0, bound).

    Examples
    --------
    >>> out = np.empty(5, np.int64)
    >>> fill_bounded(xoshiro_state(7), 1, out)
    >>> out.tolist()
    [0, 0, 0, 0, 0]
    """
    for i in range(out.shape[0]):
        out[i] = random_bounded(state, bound)


@njit(cache=True)
def fill_bounded_pairs(state: np.ndarray, bound_hi: int, bound_lo: int, out: np.ndarray) -> None:
    """Fill ``out`` (int64, shape (n, 2)) with :func:`random_bounded_pair` draws.

    Examples
    --------
    >>> out = np.empty((3, 2), np.int64)
    >>> fill_bounded_pairs(xoshiro_state(8), 1, 1, out)
    >>> out.tolist()
    [[0, 0], [0, 0], [0, 0]]
    """
    for i in range(out.shape[0]):
        out[i, 0], out[i, 1] = random_bounded_pair(state, bound_hi, bound_lo)
