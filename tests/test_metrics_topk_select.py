"""theory.metrics.top_candidates_row and its helpers against plain numpy.

Oracle for the selection: sort the ranked scores (those above -inf), take the r-th largest
s_(r), and keep every ranked item scoring >= s_(r) (ties at the boundary included), in
ascending item order.  Every comparison is exact (the kernels only compare and copy scores),
so the tests use array equality, no tolerance.
"""
from __future__ import annotations

import numpy as np
import pytest

from theory.metrics import (
    _DEBRUIJN,
    _DEBRUIJN_INDEX,
    SELECT_WIDTH,
    _chunk_max_keys,
    _float_to_key,
    _hit_mask,
    _key_to_float,
    _kth_largest,
    top_candidates_row,
)


def _select_reference(scores, r):
    ranked = scores > -np.inf
    if ranked.sum() < r:
        return np.flatnonzero(ranked), -np.inf
    threshold = np.sort(scores[ranked])[-r]
    return np.flatnonzero(ranked & (scores >= threshold)), threshold


def _run(scores, r):
    n = scores.shape[0]
    chunk_keys = np.empty(n // SELECT_WIDTH + 1, np.int64)
    idx = np.empty(n, np.int64)
    vals = np.empty(n)
    n_cand, threshold = top_candidates_row(scores, r, chunk_keys, idx, vals)
    return idx[:n_cand].copy(), threshold


def _rows(seed):
    """Rows the selection must get right: continuous scores, heavy ties, +-0.0 at the
    boundary, left-out items (-inf), lengths that are not multiples of the chunk width,
    a row sorted ascending (every chunk maximum at the chunk's end) and descending."""
    rng = np.random.default_rng(seed)
    rows = []
    for dtype in (np.float32, np.float64):
        for n in (1, 63, 64, 65, 1000, 4100):
            rows.append(rng.normal(size=n).astype(dtype))
            rows.append((rng.integers(-3, 4, size=n) / 4).astype(dtype))  # 7 values: ties
            signed_zeros = rng.choice(np.array([-0.0, 0.0, 1.0, -1.0]), size=n).astype(dtype)
            rows.append(signed_zeros)
            masked = rng.normal(size=n).astype(dtype)
            masked[rng.random(n) < 0.3] = -np.inf
            rows.append(masked)
        rows.append(np.sort(rng.normal(size=3000)).astype(dtype))
        rows.append(np.sort(rng.normal(size=3000))[::-1].astype(dtype).copy())
        rows.append(np.full(200, -np.inf, dtype))
        rows.append(np.full(200, 2.5, dtype))
        extreme = np.array([np.finfo(dtype).max, -np.finfo(dtype).max, np.finfo(dtype).tiny,
                            -np.finfo(dtype).tiny, 5e-45 if dtype == np.float32 else 5e-324,
                            0.0, -0.0, -np.inf], dtype)
        rows.append(np.tile(extreme, 40))
    return rows


@pytest.mark.parametrize("seed", [0, 1])
def test_top_candidates_match_sorting(seed):
    checked = 0
    for scores in _rows(seed):
        n = scores.shape[0]
        for r in sorted({1, 2, 5, 50, 417, n // SELECT_WIDTH, n // SELECT_WIDTH + 1, n, n + 3}):
            if r < 1:
                continue
            got, threshold = _run(scores, r)
            want, want_threshold = _select_reference(scores, r)
            np.testing.assert_array_equal(got, want, err_msg=f"{scores.dtype} n={n} r={r}")
            assert threshold == want_threshold, (scores.dtype, n, r)
            checked += 1
    assert checked > 300


def test_signed_zero_ties_at_the_boundary():
    # r = 2: s_(2) = 0.0; -0.0 == 0.0, so both zeros are candidates, wherever they sit.
    for dtype in (np.float32, np.float64):
        scores = np.full(300, -1.0, dtype)
        scores[10] = 1.0
        scores[150] = 0.0
        scores[299] = -0.0
        got, threshold = _run(scores, 2)
        np.testing.assert_array_equal(got, [10, 150, 299])
        assert threshold == 0.0
        scores[150], scores[299] = -0.0, 0.0
        np.testing.assert_array_equal(_run(scores, 2)[0], [10, 150, 299])


def test_order_keys_follow_float_order():
    rng = np.random.default_rng(3)
    for dtype in (np.float32, np.float64):
        info = np.finfo(dtype)
        values = np.concatenate([
            rng.normal(size=400) * 10.0 ** rng.integers(-40, 30, size=400),
            [0.0, -0.0, np.inf, -np.inf, info.max, -info.max, info.tiny, -info.tiny,
             info.smallest_subnormal, -info.smallest_subnormal]]).astype(dtype)
        one = np.empty(1, dtype)
        keys = np.array([_float_to_key(v, one) for v in values])
        # Integer order of the keys is float order (ties included: -0.0 and 0.0).
        np.testing.assert_array_equal(keys[:, None] < keys[None, :],
                                      values[:, None] < values[None, :])
        np.testing.assert_array_equal(keys[:, None] == keys[None, :],
                                      values[:, None] == values[None, :])
        back = np.array([_key_to_float(k, one) for k in keys], dtype)
        same = (back == values) & (np.signbit(back) == np.signbit(values))
        # Only -0.0 maps back to +0.0 (its key is +0.0's).
        assert (same | ((values == 0) & np.signbit(values))).all()


@pytest.mark.parametrize("n", [1, 64, 130, 4100])
def test_chunk_max_keys_match_numpy(n):
    rng = np.random.default_rng(n)
    for dtype in (np.float32, np.float64):
        scores = rng.normal(size=n).astype(dtype)
        scores[rng.random(n) < 0.2] = -np.inf
        scores[rng.random(n) < 0.1] = -0.0
        out = np.empty(n // SELECT_WIDTH + 1, np.int64)
        n_chunks = _chunk_max_keys(scores, out)
        want = [scores[c:c + SELECT_WIDTH].max() for c in range(0, n, SELECT_WIDTH)]
        assert n_chunks == len(want)
        one = np.empty(1, dtype)
        got = np.array([_key_to_float(k, one) for k in out[:n_chunks]], dtype)
        np.testing.assert_array_equal(got, np.array(want, dtype))


def test_kth_largest_matches_sort():
    rng = np.random.default_rng(4)
    for n in (1, 2, 3, 10, 257, 2000):
        for values in (rng.normal(size=n), rng.integers(0, 3, size=n).astype(np.float64),
                       np.arange(n, dtype=np.float64), np.arange(n, dtype=np.float64)[::-1].copy(),
                       rng.integers(-5, 5, size=n)):
            for k in sorted({1, 2, n // 2 + 1, n}):
                if 1 <= k <= n:
                    work = values.copy()
                    assert _kth_largest(work, n, k) == np.sort(values)[-k], (n, k)
                    np.testing.assert_array_equal(np.sort(work), np.sort(values))  # a permutation


def test_hit_mask_and_bit_scan():
    rng = np.random.default_rng(5)
    for dtype in (np.float32, np.float64):
        scores = rng.normal(size=200).astype(dtype)
        scores[rng.random(200) < 0.2] = -np.inf
        for first, bound in ((0, 0.5), (100, -np.inf), (136, 1.5), (7, 0.0)):
            mask = int(_hit_mask(scores, first, bound))
            seg = scores[first:first + 64]
            want = sum(1 << j for j in range(64) if seg[j] >= bound and seg[j] > -np.inf)
            assert mask == want
    # _DEBRUIJN_INDEX finds the lowest set bit of every single-bit word.
    for i in range(64):
        assert _DEBRUIJN_INDEX[((1 << i) * int(_DEBRUIJN) % 2 ** 64) >> 58] == i
