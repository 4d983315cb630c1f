"""Tests of simulations.rankings: the uniform position sampler and the score models.

Oracles: exact enumeration of all C(n, k) subsets (chi-square against the uniform law),
a numpy ``Generator.permutation`` sample (two-sample tests), and the score models' known
distributions (scipy.stats).  Statistical tests use fixed seeds and reject at p < 1e-3 or
beyond 5 standard errors.
"""
from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import scipy.stats

from simulations import rankings as RK
from simulations.rng import CHUNK_SIZE, xoshiro_state


# ======================================================================================
# Uniform rankings
# ======================================================================================
def ref_xoshiro(state, n):
    """xoshiro256++ in plain Python integers (Blackman & Vigna's reference C code)."""
    mask = (1 << 64) - 1
    rotl = lambda x, k: ((x << k) | (x >> (64 - k))) & mask  # noqa: E731
    s = [int(v) for v in state]
    out = []
    for _ in range(n):
        out.append((rotl((s[0] + s[3]) & mask, 23) + s[0]) & mask)
        t = (s[1] << 17) & mask
        s[2] ^= s[0]
        s[3] ^= s[1]
        s[1] ^= s[2]
        s[0] ^= s[3]
        s[2] ^= t
        s[3] = rotl(s[3], 45)
    return out


@pytest.mark.parametrize("n_pos, n_neg", [(1, 1), (1, 9), (9, 1), (3, 61), (64, 1), (33, 32),
                                          (200, 800), (800, 200), (70, 0 + 5)])
def test_positions_are_sorted_distinct_in_range(n_pos, n_neg):
    pos = RK.uniform_positions(n_pos, n_neg, 300, seed=n_pos)
    assert pos.shape == (300, n_pos)
    assert pos.min() >= 0 and pos.max() < n_pos + n_neg
    assert (np.diff(pos, axis=1) > 0).all()


@pytest.mark.parametrize("n_pos, n_neg", [(2, 3), (4, 2), (3, 3)])
def test_every_subset_equally_likely(n_pos, n_neg):
    """Chi-square of the drawn subsets against the uniform law on all C(n, k) of them
    (covers both branches of Floyd's sampling: positives marked, and negatives marked)."""
    n = n_pos + n_neg
    pos = RK.uniform_positions(n_pos, n_neg, 60_000, seed=1)
    index = {s: i for i, s in enumerate(itertools.combinations(range(n), n_pos))}
    counts = np.bincount([index[tuple(row)] for row in pos.tolist()], minlength=len(index))
    assert len(index) == math.comb(n, n_pos)
    assert scipy.stats.chisquare(counts).pvalue > 1e-3


def test_rank_marginals_and_numpy_reference():
    n_pos, n_neg, n = 20, 44, 40_000  # 64 ranks: one full bit-set word
    pos = RK.uniform_positions(n_pos, n_neg, n, seed=2)
    occupied = np.bincount(pos.ravel(), minlength=n_pos + n_neg)
    p = n_pos / (n_pos + n_neg)
    assert np.abs(occupied - n * p).max() < 5 * np.sqrt(n * p * (1 - p))
    # Two-sample comparison with numpy permutations: the sum of positive ranks (AUC) and the
    # rank of the best positive.
    rng = np.random.default_rng(0)
    ref = np.sort(np.stack([rng.permutation(n_pos + n_neg)[:n_pos] for _ in range(n)]), axis=1)
    for stat in (lambda a: a.sum(axis=1), lambda a: a[:, 0]):
        assert scipy.stats.ks_2samp(stat(pos), stat(ref)).pvalue > 1e-3


def test_positions_reproducible_chunk_aligned_and_seed_dependent():
    a = RK.uniform_positions(5, 20, 3000, seed=4)
    assert np.array_equal(a, RK.uniform_positions(5, 20, 3000, seed=4))
    assert np.array_equal(a[:CHUNK_SIZE], RK.uniform_positions(5, 20, CHUNK_SIZE, seed=4))
    assert np.array_equal(a, RK.uniform_positions(5, 20, 3000, seed=np.random.SeedSequence(4)))
    assert not np.array_equal(a, RK.uniform_positions(5, 20, 3000, seed=5))


def test_draw_positions_leaves_scratch_clean():
    state = xoshiro_state(0)
    for n_pos, n_items in ((3, 100), (70, 100), (40, 100), (5, 1000), (995, 1000)):
        scratch = RK.positions_scratch(n_items)  # dense (bytes) and sparse (bits) layouts
        pos = np.empty(n_pos, np.int64)
        assert RK.draw_positions(state, n_pos, n_items, scratch, pos) == n_pos
        assert not scratch.any()


def ref_positions(state, n_pos, n_items, n_rankings):
    """Pure-Python replay of the documented sampler on the reference xoshiro stream:
    Floyd's steps j = n - d .. n - 1, two per 64-bit output (top half for j, bottom half
    for j + 1), Lemire's rule with redraws from the stream, an odd last step alone."""
    raw = ref_xoshiro(state, 2 * n_pos * n_rankings + 64)
    stream = iter(raw)

    def lemire(x, bound):
        m = x * bound
        while (m & 0xFFFFFFFF) < (2**32 - bound) % bound:
            m = (next(stream) >> 32) * bound
        return m >> 32

    out = []
    for _ in range(n_rankings):
        d = min(n_pos, n_items - n_pos)
        chosen = set()
        j = n_items - d
        while j < n_items:
            if j + 1 < n_items:
                x = next(stream)
                draws = [(j, x >> 32)]
                pending = x & 0xFFFFFFFF
            else:
                draws, pending = [(j, next(stream) >> 32)], None
            for step, value in draws:
                t = lemire(value, step + 1)
                chosen.add(step if t in chosen else t)
            if pending is not None:
                t = lemire(pending, j + 2)
                chosen.add(j + 1 if t in chosen else t)
            j += 2
        ranks = chosen if n_pos <= n_items - n_pos else set(range(n_items)) - chosen
        out.append(sorted(ranks))
    return np.array(out)


@pytest.mark.parametrize("n_pos, n_neg", [(200, 800), (7, 993), (3, 4), (60, 5), (1, 1)])
def test_positions_match_pure_python_replay(n_pos, n_neg):
    from simulations.rng import chunk_states

    expected = ref_positions(chunk_states(3, 1)[0], n_pos, n_pos + n_neg, 20)
    assert np.array_equal(RK.uniform_positions(n_pos, n_neg, 20, seed=3), expected)


# ======================================================================================
# Score models
# ======================================================================================
def test_registry_and_errors():
    assert set(RK.MODELS) >= {"uniform", "binormal", "student_t", "mixture"}
    assert RK.get_model("binormal", mu_low=1.0, mu_high=1.0) == RK.Binormal(1.0, 1.0)
    with pytest.raises(ValueError, match="model"):
        RK.get_model("gaussian")
    with pytest.raises(ValueError, match="model"):
        RK.get_model(42)
    with pytest.raises(ValueError, match="mu_low"):
        RK.Binormal(2.0, 1.0)
    with pytest.raises(ValueError, match="df"):
        RK.StudentT(df=0.0)
    with pytest.raises(ValueError, match="hard_fraction"):
        RK.HardNegativeMixture(hard_fraction=1.5)
    # The shared checks of theory.validation: types, NaN and infinities, naming the argument.
    for make, name in [(lambda: RK.Binormal("0", 1.0), "mu_low"),
                       (lambda: RK.Binormal(0.0, float("nan")), "mu_high"),
                       (lambda: RK.StudentT(df=float("inf")), "df"),
                       (lambda: RK.StudentT(df=True), "df"),
                       (lambda: RK.HardNegativeMixture(hard_fraction=-0.1), "hard_fraction"),
                       (lambda: RK.check_sizes(3, 4, 0), "n_rankings"),
                       (lambda: RK.check_sizes(3.0, 4, 5), "n_pos")]:
        with pytest.raises(ValueError, match=name):
            make()
    assert RK.HardNegativeMixture(hard_fraction=0.0).hard_fraction == 0.0  # both ends allowed
    assert RK.HardNegativeMixture(hard_fraction=1).hard_fraction == 1
    assert RK.check_sizes(np.int64(3), 4, 5) == (3, 4, 5)


def test_binormal_moments():
    pos, neg = RK.draw_scores(RK.Binormal(0.5, 1.5), 50, 80, 4000, seed=3)
    assert pos.shape == (4000, 50) and neg.shape == (4000, 80)
    assert scipy.stats.kstest(neg[:, 0], "norm").pvalue > 1e-3
    mu = pos.mean(axis=1)  # per-ranking separation estimate: U[0.5, 1.5] + N(0, 1/50)
    assert abs(mu.mean() - 1.0) < 5 * np.sqrt((1 / 12 + 1 / 50) / 4000)
    within = (pos - mu[:, None]).var(axis=1, ddof=1).mean()
    assert abs(within - 1.0) < 0.02
    resid = pos[:, 0] - pos[:, 1]  # N(0, 2) whatever mu
    assert scipy.stats.kstest(resid / np.sqrt(2), "norm").pvalue > 1e-3


def test_student_t_and_mixture_laws():
    pos, neg = RK.draw_scores(RK.StudentT(3.0, 1.0, 1.0), 5, 10, 5000, seed=4)
    assert scipy.stats.kstest(neg.ravel(), "t", args=(3.0,)).pvalue > 1e-3
    assert scipy.stats.kstest(pos.ravel() - 1.0, "t", args=(3.0,)).pvalue > 1e-3
    pos, neg = RK.draw_scores(RK.HardNegativeMixture(0.25, 2.0, 2.0), 5, 40, 5000, seed=5)
    mixture_cdf = lambda x: 0.75 * scipy.stats.norm.cdf(x) + 0.25 * scipy.stats.norm.cdf(x - 2.0)  # noqa: E731
    assert scipy.stats.kstest(neg.ravel()[:100_000], mixture_cdf).pvalue > 1e-3
    assert scipy.stats.kstest(pos.ravel() - 2.0, "norm").pvalue > 1e-3


def test_uniform_model_draw_gives_uniform_rankings():
    pos, neg = RK.draw_scores("uniform", 3, 4, 20_000, seed=6)
    # Rank of the best positive among 7 items: P(best positive is at rank r) is exact.
    top_rank = (neg > pos.max(axis=1, keepdims=True)).sum(axis=1)
    expected = [math.comb(7 - r - 1, 2) / math.comb(7, 3) for r in range(5)]
    assert scipy.stats.chisquare(np.bincount(top_rank, minlength=5),
                                 np.array(expected) * 20_000).pvalue > 1e-3


def test_draw_scores_reproducible_and_chunk_aligned():
    a = RK.draw_scores("binormal", 4, 6, 2100, seed=8)
    b = RK.draw_scores("binormal", 4, 6, CHUNK_SIZE, seed=8)
    assert np.array_equal(a[0][:CHUNK_SIZE], b[0]) and np.array_equal(a[1][:CHUNK_SIZE], b[1])
    c = RK.draw_scores("binormal", 4, 6, 2100, seed=9)
    assert not np.array_equal(a[0], c[0])


def test_bad_model_output_is_reported():
    class Broken:
        name = "broken"

        def draw(self, rng, n_rankings, n_pos, n_neg):
            return np.zeros((n_rankings, n_pos + 1)), np.zeros((n_rankings, n_neg))

    with pytest.raises(ValueError, match="shapes"):
        RK.draw_scores(Broken(), 3, 4, 10)


@pytest.mark.parametrize("args, name", [((0, 5, 10), "n_pos"), ((5, 0, 10), "n_neg"),
                                        ((5, 5, 0), "n_rankings"), ((2.0, 5, 10), "n_pos")])
def test_size_errors(args, name):
    with pytest.raises(ValueError, match=name):
        RK.uniform_positions(*args)
