"""Tests of simulations.rng: xoshiro256++ against an independent pure-Python reference,
unbiased bounded integers (Lemire), uniform floats, and the per-chunk seeding contract.

Statistical tests use fixed seeds (deterministic) and reject at p < 1e-3; the negative
controls show that the same tests do fail on a biased method.
"""
from __future__ import annotations

import numpy as np
import pytest
import scipy.stats

from simulations import rng as R

MASK = (1 << 64) - 1


# ======================================================================================
# Independent reference: xoshiro256++ in plain Python integers (Blackman & Vigna's C code)
# ======================================================================================
def ref_xoshiro(state, n):
    s = [int(v) for v in state]
    out = []
    for _ in range(n):
        rotl = lambda x, k: ((x << k) | (x >> (64 - k))) & MASK  # noqa: E731
        out.append((rotl((s[0] + s[3]) & MASK, 23) + s[0]) & MASK)
        t = (s[1] << 17) & MASK
        s[2] ^= s[0]
        s[3] ^= s[1]
        s[1] ^= s[2]
        s[0] ^= s[3]
        s[2] ^= t
        s[3] = rotl(s[3], 45)
    return out, s


def test_xoshiro_first_output_by_hand():
    # rotl(1 + 4, 23) + 1 = 5 * 2**23 + 1
    out = np.empty(1, np.uint64)
    R.fill_u64(np.array([1, 2, 3, 4], np.uint64), out)
    assert int(out[0]) == 5 * 2**23 + 1 == 41943041


@pytest.mark.parametrize("seed", [0, 1, 12345])
def test_xoshiro_matches_reference(seed):
    state = R.xoshiro_state(seed)
    expected, final = ref_xoshiro(state, 2000)
    out = np.empty(2000, np.uint64)
    R.fill_u64(state, out)  # advances state in place
    assert [int(v) for v in out] == expected
    assert [int(v) for v in state] == final


def test_floats_are_top_53_bits_and_uniform():
    state = R.xoshiro_state(7)
    raw, _ = ref_xoshiro(state.copy(), 1000)
    floats = np.empty(1000)
    R.fill_floats(state.copy(), floats)
    assert np.array_equal(floats, np.array([(v >> 11) * 2.0**-53 for v in raw]))
    big = np.empty(200_000)
    R.fill_floats(R.xoshiro_state(8), big)
    assert big.min() >= 0.0 and big.max() < 1.0
    assert scipy.stats.kstest(big, "uniform").pvalue > 1e-3


# ======================================================================================
# Bounded integers
# ======================================================================================
def chi2_pvalue(counts):
    return scipy.stats.chisquare(counts).pvalue


@pytest.mark.parametrize("bound", [1, 2, 7, 1000, 2**31 + 11])
def test_bounded_range_and_uniformity(bound):
    out = np.empty(120_000, np.int64)
    R.fill_bounded(R.xoshiro_state(bound), bound, out)
    assert out.min() >= 0 and out.max() < bound
    if bound == 1:
        assert not out.any()
        return
    # Uniform over [0, bound): chi-square on at most 50 equal-width classes.
    classes = min(bound, 50)
    cls = (out * classes) // bound
    expected = np.diff(np.ceil(np.arange(classes + 1) * bound / classes))  # values per class
    counts = np.bincount(cls, minlength=classes)
    p = scipy.stats.chisquare(counts, expected / expected.sum() * out.size).pvalue
    assert p > 1e-3


def test_bound_two_to_the_32_uses_the_full_range():
    out = np.empty(100_000, np.int64)
    R.fill_bounded(R.xoshiro_state(3), 2**32, out)
    assert out.max() < 2**32 and out.max() > 2**32 * 0.99
    raw, _ = ref_xoshiro(R.xoshiro_state(3), 5)
    assert [int(v) for v in out[:5]] == [v >> 32 for v in raw]  # never rejects at 2**32


def test_lemire_removes_the_multiply_shift_bias():
    # bound = 3 * 2**30: a plain multiply-shift maps 2 of every 4 32-bit inputs to values
    # = 0 mod 3, so P(v mod 3 == 0) would be 1/2 instead of 1/3.
    bound = 3 * 2**30
    out = np.empty(90_000, np.int64)
    R.fill_bounded(R.xoshiro_state(11), bound, out)
    assert chi2_pvalue(np.bincount(out % 3, minlength=3)) > 1e-3
    # Negative control: the biased method fails the same test.
    raw = np.empty(90_000, np.uint64)
    R.fill_u64(R.xoshiro_state(11), raw)
    biased = ((raw >> np.uint64(32)) * np.uint64(bound)) >> np.uint64(32)
    assert chi2_pvalue(np.bincount((biased % np.uint64(3)).astype(np.int64), minlength=3)) < 1e-10


def test_bounded_matches_reference_rejection_rule():
    """Replay Lemire's rule on the reference stream: same values, rejections included."""
    bound = 3 * 2**30 + 5  # rejection probability about 1/4
    state = R.xoshiro_state(21)
    raw, _ = ref_xoshiro(state.copy(), 400)
    expected, i = [], 0
    while len(expected) < 250:
        m = (raw[i] >> 32) * bound
        i += 1
        if (m & 0xFFFFFFFF) < (2**32 - bound) % bound:
            continue
        expected.append(m >> 32)
    out = np.empty(250, np.int64)
    R.fill_bounded(state, bound, out)
    assert [int(v) for v in out] == expected


def test_pairs_use_both_halves_of_one_draw():
    bound_hi, bound_lo = 3 * 2**30 + 5, 1000
    state = R.xoshiro_state(31)
    raw, _ = ref_xoshiro(state.copy(), 800)
    stream = iter(raw)

    def lemire(x, bound):
        m = x * bound
        while (m & 0xFFFFFFFF) < (2**32 - bound) % bound:
            m = (next(stream) >> 32) * bound
        return m >> 32

    expected = []
    for _ in range(300):
        x = next(stream)
        first = lemire(x >> 32, bound_hi)  # a rejection redraws from the stream first
        expected.append((first, lemire(x & 0xFFFFFFFF, bound_lo)))
    out = np.empty((300, 2), np.int64)
    R.fill_bounded_pairs(state, bound_hi, bound_lo, out)
    assert [tuple(map(int, row)) for row in out] == expected
    big = np.empty((60_000, 2), np.int64)
    R.fill_bounded_pairs(R.xoshiro_state(32), 3 * 2**30, 7, big)
    assert chi2_pvalue(np.bincount(big[:, 0] % 3, minlength=3)) > 1e-3
    assert chi2_pvalue(np.bincount(big[:, 1], minlength=7)) > 1e-3
    # The two halves are independent: chi-square of the 3 x 7 contingency table.
    table = np.zeros((3, 7))
    np.add.at(table, (big[:, 0] % 3, big[:, 1]), 1)
    assert scipy.stats.chi2_contingency(table).pvalue > 1e-3


# ======================================================================================
# Seeding
# ======================================================================================
def test_chunk_states_follow_the_documented_spawn_keys():
    states = R.chunk_states(42, 3, first=5)
    for row, i in enumerate(range(5, 8)):
        ref = np.random.SeedSequence(42, spawn_key=(0, i)).generate_state(4, np.uint64)
        assert np.array_equal(states[row], ref)
    gens = R.chunk_generators(42, 2, first=5)
    ref = np.random.Generator(np.random.PCG64(np.random.SeedSequence(42, spawn_key=(0, 6))))
    assert np.array_equal(gens[1].random(5), ref.random(5))


def test_seed_types():
    a = R.chunk_states(9, 4)
    assert np.array_equal(a, R.chunk_states(9, 4))
    ss = np.random.SeedSequence(9)
    assert np.array_equal(a, R.chunk_states(ss, 4))
    assert np.array_equal(a, R.chunk_states(ss, 4))  # the SeedSequence is not consumed
    assert ss.n_children_spawned == 0
    assert not np.array_equal(a, R.chunk_states(10, 4))
    # A Generator is used to draw a root seed: it advances, and is reproducible.
    g = np.random.default_rng(5)
    first, second = R.chunk_states(g, 2), R.chunk_states(g, 2)
    assert not np.array_equal(first, second)
    assert np.array_equal(first, R.chunk_states(np.random.default_rng(5), 2))
    for bad in (-1, 1.5, "3", True):
        with pytest.raises(ValueError, match="seed"):
            R.as_seed_sequence(bad)


def test_chunk_streams_are_distinct_and_uncorrelated():
    states = R.chunk_states(0, 8)
    assert len({tuple(s) for s in states}) == 8
    streams = np.empty((8, 50_000))
    for i in range(8):
        R.fill_floats(states[i].copy(), streams[i])
    corr = np.corrcoef(streams)
    off = corr[~np.eye(8, dtype=bool)]
    assert np.abs(off).max() < 5 / np.sqrt(50_000)  # SE of r is 1/sqrt(n); 5 SE
    assert len(np.unique(streams[:, :100])) == 800


# ======================================================================================
# The vectorised SeedSequence children against numpy's own SeedSequence (the oracle)
# ======================================================================================
def numpy_child_states(entropy, key, n, first=0, pool_size=4):
    """One numpy SeedSequence per child: the reference that spawn_states must equal bit for bit."""
    rows = [np.random.SeedSequence(entropy, spawn_key=tuple(key) + (i,), pool_size=pool_size)
            .generate_state(4, np.uint64) for i in range(first, first + n)]
    return np.array(rows, dtype=np.uint64).reshape(n, 4)


ENTROPIES = [0, 1, 2**32 - 1, 2**32, 2**64 + 5, 2**200, 12345678901234567890123, [], [7],
             [1, 2, 3], [2**64 - 1, 0, 5, 2**33], list(range(9)),
             np.array([5, 6], np.uint32), np.array([2**40, 3], np.int64)]
KEYS = [(), (0,), (7, 0), (2**32 - 1, 0), (2**40, 3), (1, 2, 3, 4, 5, 6)]


@pytest.mark.parametrize("pool_size", [4, 5, 8])
@pytest.mark.parametrize("key", KEYS)
def test_spawn_states_equal_numpy_seed_sequences(key, pool_size):
    for entropy in ENTROPIES:
        got = R.spawn_states(entropy, key, 12, first=3, pool_size=pool_size)
        assert np.array_equal(got, numpy_child_states(entropy, key, 12, 3, pool_size)), entropy


def _chunk_reference(root, n, first=0, branch=()):
    key = tuple(root.spawn_key) + tuple(branch) + (0,)
    return numpy_child_states(root.entropy, key, n, first, root.pool_size)


def _generator_root(seed):
    words = np.random.default_rng(seed).integers(0, 2**64, size=4, dtype=np.uint64)
    return np.random.SeedSequence([int(w) for w in words])  # as documented for a Generator seed


@pytest.mark.parametrize("seed", [0, 1, 42, 2**32 - 1, 2**32, 2**64 + 5, 2**200, np.uint64(2**63)])
def test_chunk_states_of_int_seeds_equal_numpy_children(seed):
    root = np.random.SeedSequence(int(seed))
    for n, first in [(1, 0), (5, 0), (70, 3), (3, 123_456)]:
        assert np.array_equal(R.chunk_states(seed, n, first), _chunk_reference(root, n, first))


def test_chunk_states_of_other_roots_equal_numpy_children():
    roots = [np.random.SeedSequence(9, spawn_key=(3, 4)),
             np.random.SeedSequence([1, 2**40], spawn_key=(2**33,)),
             np.random.SeedSequence(2**100, pool_size=8),
             np.random.SeedSequence(),  # fresh 128-bit OS entropy
             np.random.SeedSequence(0).spawn(3)[2]]
    for root in roots:
        assert np.array_equal(R.chunk_states(root, 40, 2), _chunk_reference(root, 40, 2))
    for seed in (5, 6, 2**40):  # Generator seeds: the root drawn from the generator
        got = R.chunk_states(np.random.default_rng(seed), 30, 1)
        assert np.array_equal(got, _chunk_reference(_generator_root(seed), 30, 1))


def test_chunk_states_ten_thousand_chunks():
    root = np.random.SeedSequence(2024)
    assert np.array_equal(R.chunk_states(2024, 10_000), _chunk_reference(root, 10_000))


def test_chunk_states_under_a_branch():
    root = np.random.SeedSequence(77, spawn_key=(5,))
    for branch in [(1,), (2, 0), (2, 1), (3, 2**32 + 1)]:
        got = R.chunk_states(root, 16, 4, branch=branch)
        assert np.array_equal(got, _chunk_reference(root, 16, 4, branch))
        gens = R.chunk_generators(root, 2, 4, branch=branch)
        state = gens[1].bit_generator.seed_seq.generate_state(4, np.uint64)
        assert np.array_equal(state, got[1])
        assert [ss.spawn_key for ss in R.chunk_seed_sequences(root, 2, 4, branch=branch)] == [
            (5, *branch, 0, 4), (5, *branch, 0, 5)]
    # Branches never share a stream with each other or with the plain chunks.
    states = {tuple(row) for b in [(), (1,), (2, 0), (2, 1)]
              for row in R.chunk_states(root, 50, branch=b).tolist()}
    assert len(states) == 200


def test_fallback_to_numpy_matches():
    # String entropy and chunk indices of two 32-bit words go through numpy's SeedSequence.
    root = np.random.SeedSequence(["0x1f", 3])
    assert np.array_equal(R.chunk_states(root, 6), _chunk_reference(root, 6))
    first = 2**32 - 3
    assert np.array_equal(R.chunk_states(8, 6, first),
                          _chunk_reference(np.random.SeedSequence(8), 6, first))


def test_seeding_argument_errors():
    for kwargs, name in [({"n": -1}, "n"), ({"n": 2.0}, "n"), ({"first": -1}, "first"),
                         ({"branch": (-1,)}, "branch"), ({"branch": 3}, "branch"),
                         ({"branch": ("a",)}, "branch")]:
        args = {"seed": 1, "n": 2, **kwargs}
        with pytest.raises(ValueError, match=name):
            R.chunk_states(**args)
    with pytest.raises(ValueError, match="spawn_key"):
        R.spawn_states(1, 5, 2)
    with pytest.raises(ValueError, match="pool_size"):
        R.spawn_states(1, (), 2, pool_size=3)
    with pytest.raises(ValueError, match="seed"):
        R.chunk_states(-2, 2)
    assert R.chunk_states(1, 0).shape == (0, 4)


def test_chunk_layout():
    assert R.n_chunks(1) == 1 and R.n_chunks(R.CHUNK_SIZE) == 1 and R.n_chunks(R.CHUNK_SIZE + 1) == 2
    assert R.chunk_bounds(2500).tolist() == [0, 1024, 2048, 2500]
