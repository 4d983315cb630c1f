"""theory.vectormath against NumPy / libm: the error bounds its docstring states.

Inputs are dense grids over each function's whole range plus its edges (no randomness needs
a tolerance in standard errors here: every bound is a worst case over the points checked).
The references are NumPy's ``exp`` / ``log1p`` and theory.estimators' exact scalar kernels.
"""
import math

import numpy as np
import pytest
from numba import njit

from theory import estimators as E
from theory import vectormath as VM

EPS = np.finfo(np.float64).eps


def ulps(approx, exact):
    return np.abs(approx - exact) / np.spacing(np.abs(exact))


def _grid(lo, hi, n=400_001, extra=()):
    rng = np.random.default_rng(0)
    return np.concatenate([np.linspace(lo, hi, n), rng.uniform(lo, hi, n), np.asarray(extra)])


def test_exp_within_1_ulp_on_its_range():
    x = _grid(VM.EXP_MIN, VM.EXP_MAX, extra=[0.0, -0.0, 1e-300, -1e-300, math.log(2.0),
                                               -math.log(2.0) / 2, 0.5 * math.log(2.0)])
    x = np.concatenate([x, np.linspace(-1.0, 1.0, 200_001)])  # the reduced range, densely
    out = np.empty_like(x)
    VM.exp_row(x, out)
    # 1 ulp measured (the error analysis allows 2); a polynomial one degree shorter reaches 2
    assert ulps(out, np.exp(x)).max() <= 1.0
    assert VM.exp_scalar(0.0) == 1.0


def test_exp_clips_outside_its_range():
    out = np.empty(4)
    VM.exp_row(np.array([-745.0, -1e308, 710.0, np.inf]), out)
    assert np.all(out[:2] == VM.exp_scalar(VM.EXP_MIN))
    assert out[0] - math.exp(-745.0) < 3.4e-308  # the stated absolute bound
    assert np.all(out[2:] == VM.exp_scalar(VM.EXP_MAX)) and np.isfinite(out[2])


def test_log1p_unit_bounds():
    rng = np.random.default_rng(1)
    e = np.concatenate([np.linspace(0.0, 1.0, 1_000_001),
                        np.exp(-rng.uniform(0.0, 745.0, 400_000)),  # tiny arguments
                        [0.0, 5e-324, 1e-300, 1e-17, EPS / 2, EPS, math.sqrt(2.0) - 1.0,
                         np.nextafter(math.sqrt(2.0) - 1.0, 1.0), 1.0]])
    out = _log1p_rows(e)
    assert np.array_equal(out[-9:-6], e[-9:-6])  # log1p(e) = e exactly for e this small
    exact = np.log1p(e)
    assert np.abs(out - exact).max() <= 2.3e-16
    positive = exact > 0
    assert ulps(out[positive], exact[positive]).max() <= 4.0


@njit(fastmath={"contract"}, error_model="numpy")
def _log1p_rows_kernel(a, out):
    for j in range(a.shape[0]):
        out[j] = VM.log1p_unit(a[j])


def _log1p_rows(e):
    out = np.empty_like(e)
    _log1p_rows_kernel(e, out)
    return out


@pytest.mark.parametrize("lo,hi", [(-40.0, 40.0), (-800.0, 800.0)])
def test_bpr_loss_grad_row_against_exact_scalars(lo, hi):
    x = _grid(lo, hi, n=100_001, extra=[0.0, -0.0, 1e-300, -1e-300, 36.7, 37.0, 745.0])
    loss, grad = np.empty_like(x), np.empty_like(x)
    VM.bpr_loss_grad_row(x, loss, grad)
    exact_loss = np.array([E.bpr_loss_scalar(v) for v in x])
    exact_grad = np.array([E.bpr_loss_grad_scalar(v) for v in x])
    assert np.all(np.abs(loss - exact_loss) <= 4e-16 * np.maximum(1.0, exact_loss))
    assert np.all(np.abs(grad - exact_grad) <= 4 * np.spacing(np.abs(exact_grad)) + 4e-308)


@pytest.mark.parametrize("tau", [1e-3, 0.05, 1.0, 30.0])
def test_softmax_row_against_the_exact_kernel(tau):
    rng = np.random.default_rng(2)
    for n in (1, 2, 7, 200, 1001):
        values = rng.normal(0.0, 1.0, n) * rng.uniform(0.1, 3.0)
        values = np.clip(values, -1e3 * tau / 2, 1e3 * tau / 2)  # |values / tau| <= 1e3
        fast, exact = np.empty(n), np.empty(n)
        VM.softmax_row(values, tau, fast)
        E.softmax_weights_row(values, tau, exact)
        assert np.all(np.abs(fast - exact) <= 1e-14 * exact + 1e-300)
        assert abs(fast.sum() - 1.0) <= 1e-13


def test_softmax_row_tau_zero_is_uniform_on_the_maxima():
    values = np.array([2.0, 1.0, 2.0, -np.inf])
    fast, exact = np.empty(4), np.empty(4)
    VM.softmax_row(values, 0.0, fast)
    E.softmax_weights_row(values, 0.0, exact)
    assert np.array_equal(fast, exact) and np.array_equal(fast, [0.5, 0.0, 0.5, 0.0])
