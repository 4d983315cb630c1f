"""theory.metrics.untied_row equals the general block path (blocks_from_positions + kernels)."""
import numpy as np
import pytest

from theory.metrics import area_curve_row, blocks_from_positions, discount_table, topk_row, untied_row


@pytest.mark.parametrize("seed", range(30))
def test_untied_row_matches_block_kernels(seed):
    rng = np.random.default_rng(seed)
    n_pos = int(rng.integers(1, 40))
    n_neg = int(rng.integers(1, 60))
    n = n_pos + n_neg
    positions = np.sort(rng.choice(n, n_pos, replace=False)).astype(np.int64)
    # betas: fractional cuts, exact integer cuts, and 1 (AUC)
    betas = np.unique(np.concatenate([rng.random(7), rng.integers(1, n_neg + 1, 3) / n_neg, [1.0]]))
    ks = np.unique(rng.integers(1, n + 1, 5)).astype(np.int64)
    discounts = discount_table(int(ks[-1]))
    area, hits, dcg = np.zeros(betas.size), np.zeros(ks.size), np.zeros(ks.size)
    untied_row(positions, n_pos, n_neg, betas, ks, discounts, area, hits, dcg)

    bp, bq = np.empty(n, np.int64), np.empty(n, np.int64)
    nb = blocks_from_positions(positions, n_pos, n, bp, bq)
    ref_area = np.zeros(betas.size)
    area_curve_row(bp, bq, nb, n_neg, betas, 0.0, ref_area)
    ref_hits, ref_dcg, ref_hit = np.zeros(ks.size), np.zeros(ks.size), np.zeros(ks.size)
    topk_row(bp, bq, nb, ks, discounts, ref_hits, ref_dcg, ref_hit)
    np.testing.assert_allclose(area, ref_area, rtol=1e-13, atol=1e-9)
    np.testing.assert_array_equal(hits, ref_hits)
    np.testing.assert_allclose(dcg, ref_dcg, rtol=1e-13, atol=1e-13)
    # and a brute-force pair count for the integer cuts (paper Eq. 8)
    labels = np.zeros(n, bool)
    labels[positions] = True
    above = np.cumsum(labels)[~labels]  # positives above each negative, in rank order
    for b, beta in enumerate(betas):
        c = beta * n_neg
        if abs(c - round(c)) < 1e-12:
            assert area[b] == pytest.approx(above[: round(c)].sum(), abs=1e-9)
