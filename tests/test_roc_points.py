"""theory.metrics.roc_points against scikit-learn's roc_curve and the exact areas."""
import numpy as np
import pytest
from sklearn.metrics import roc_curve

from theory.metrics import auc, opauc, roc_points


@pytest.mark.parametrize("seed", range(20))
def test_roc_points_match_sklearn_and_areas(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(2, 40))
    y = rng.random(n) < 0.4
    y[0], y[1] = True, False
    s = rng.integers(0, 6, n).astype(float) if seed % 2 else rng.normal(size=n)
    fpr, tpr = roc_points(y, s)
    ref_fpr, ref_tpr, _ = roc_curve(y, s, drop_intermediate=False)
    # sklearn has one vertex per distinct score; ours merges collinear runs: same polyline.
    grid = rng.random(500)  # random abscissae never land exactly on a vertical step
    np.testing.assert_allclose(np.interp(grid, fpr, tpr), np.interp(grid, ref_fpr, ref_tpr), atol=1e-12)
    # Trapezoids under our vertices give AUC and OPAUC(beta) exactly.
    assert np.isclose(np.trapezoid(tpr, fpr), auc(y, s), atol=1e-12)
    beta = 0.37
    cut = np.searchsorted(fpr, beta)
    xs = np.concatenate([fpr[:cut], [beta]])
    ys = np.concatenate([tpr[:cut], [np.interp(beta, fpr, tpr)]])
    assert np.isclose(np.trapezoid(ys, xs), opauc(y, s, beta), atol=1e-12)


def test_roc_points_rejects_batches_and_one_class():
    with pytest.raises(ValueError, match="1-D"):
        roc_points(np.ones((2, 3), bool), np.zeros((2, 3)))
    with pytest.raises(ValueError, match="positive and a negative"):
        roc_points([True, True], [0.1, 0.2])
