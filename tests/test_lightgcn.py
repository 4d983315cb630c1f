"""LightGCN (training.lightgcn): propagation, layer mean and backward against dense numpy
references written here, finite differences, MF at L = 0, thread invariance, the
xavier-normal initialisation and bad input."""
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp

from training.lightgcn import LightGCN

REPO = Path(__file__).resolve().parents[1]


def _graph(n_users, n_items, density, seed, isolated=True):
    """Random 0/1 interactions; with ``isolated`` the first user and the last item have no
    interaction (degree 0) and stored values other than 1 test that values are ignored."""
    rng = np.random.default_rng(seed)
    dense = (rng.random((n_users, n_items)) < density) * rng.integers(1, 4, (n_users, n_items))
    if isolated:
        dense[0, :] = 0
        dense[:, -1] = 0
    return sp.csr_matrix(dense.astype(np.float64))


def _dense_a_hat(train):
    """D^-1/2 A D^-1/2 of A = [[0, R], [R^T, 0]] (users first), dense, built from the
    definition; isolated nodes get 0 (not 0/0)."""
    r = (train.toarray() != 0).astype(np.float64)
    nu, ni = r.shape
    a = np.zeros((nu + ni, nu + ni))
    a[:nu, nu:] = r
    a[nu:, :nu] = r.T
    deg = a.sum(axis=1)
    d_inv_sqrt = np.zeros_like(deg)
    d_inv_sqrt[deg > 0] = 1.0 / np.sqrt(deg[deg > 0])
    return d_inv_sqrt[:, None] * a * d_inv_sqrt[None, :]


def _dense_layer_mean(a_hat, x, layers):
    """(1 / (L + 1)) sum_{l=0..L} a_hat^l x (LightGCN Eq. 4 with alpha_l = 1/(L+1))."""
    out, cur = x.copy(), x.copy()
    for _ in range(layers):
        cur = a_hat @ cur
        out += cur
    return out / (layers + 1)


GRAPHS = [(7, 9, 0.3, 0), (30, 45, 0.12, 1), (64, 33, 0.05, 2), (120, 200, 0.03, 3)]


@pytest.mark.parametrize("shape", GRAPHS)
def test_propagation_matches_dense_reference(shape):
    train = _graph(*shape)
    model = LightGCN(train, dim=5, layers=1, seed=0)
    a_hat = _dense_a_hat(train)
    nu = train.shape[0]
    rng = np.random.default_rng(10)
    x = rng.standard_normal((a_hat.shape[0], 5))
    yu, yi = model.propagate(x[:nu], x[nu:])
    ref = a_hat @ x
    # float64 kernel: the same products summed in another order, so agreement to a few ulp
    # of the largest term (rows have < 40 terms of size <= 4 here).
    np.testing.assert_allclose(np.vstack([yu, yi]), ref, rtol=0, atol=1e-13)
    assert np.isfinite(yu).all() and np.isfinite(yi).all()
    assert np.all(yu[0] == 0.0) and np.all(yi[-1] == 0.0)  # degree 0: exact zero, not NaN
    # float32 path (float32 products and sums): error <= ~(terms + 1) * 6e-8 of the sum of
    # |terms|; rows here have < 40 terms of size <= 4 / 1: 1e-6 of the largest entry
    # is safe, and 1e-6 is still far below any wrong weight (>= 1e-2 here).
    x32 = x.astype(np.float32)
    yu32, yi32 = model.propagate(x32[:nu], x32[nu:])
    assert yu32.dtype == np.float32
    ref32 = a_hat @ x32.astype(np.float64)
    np.testing.assert_allclose(np.vstack([yu32, yi32]), ref32, rtol=0,
                               atol=1e-6 * np.abs(ref32).max())


def test_propagation_matches_scipy_on_a_skewed_graph():
    """A larger graph with power-law item popularity (long rows, so the 4-way unrolled
    loop and its remainder both run), against scipy's csr @ dense."""
    rng = np.random.default_rng(4)
    nu, ni, nnz = 600, 900, 12_000
    items = np.minimum((rng.pareto(1.2, nnz) * 20).astype(np.int64), ni - 1)
    train = sp.csr_matrix((np.ones(nnz), (rng.integers(0, nu, nnz), items)), shape=(nu, ni))
    model = LightGCN(train, dim=8, layers=1, seed=0)
    r = (train.toarray() != 0).astype(np.float64)
    du, di = r.sum(1), r.sum(0)
    w = sp.csr_matrix(r / np.sqrt(np.outer(np.maximum(du, 1), np.maximum(di, 1))))
    x = rng.standard_normal((nu + ni, 8))
    yu, yi = model.propagate(x[:nu], x[nu:])
    # float64 sums of up to ~1,000 terms in different orders: 1e-12 of the row scale.
    np.testing.assert_allclose(yu, w @ x[nu:], rtol=0, atol=1e-12)
    np.testing.assert_allclose(yi, w.T @ x[:nu], rtol=0, atol=1e-12)


@pytest.mark.parametrize("layers", [1, 2, 3, 4])
@pytest.mark.parametrize("shape", GRAPHS[1:3])
def test_embeddings_are_the_layer_mean(shape, layers):
    train = _graph(*shape)
    model = LightGCN(train, dim=6, layers=layers, seed=3)
    ego = np.vstack(model.parameters).astype(np.float64)
    ref = _dense_layer_mean(_dense_a_hat(train), ego, layers)
    fu, fi = model.embeddings()
    assert fu.dtype == np.float32 and fu.flags.c_contiguous and fi.flags.c_contiguous
    assert fu.shape == (train.shape[0], 6) and fi.shape == (train.shape[1], 6)
    # float32 path: each layer summed and stored in float32 (about 6e-8 relative per
    # rounding, < 40 terms per row, L <= 4 layers; measured errors are ~1e-7 of the scale):
    # 1e-6 of the scale is a safe bound that a wrong weight or layer (>= 1e-2) never meets.
    np.testing.assert_allclose(np.vstack([fu, fi]), ref, rtol=0, atol=1e-6 * np.abs(ref).max())
    # float64 path (the one finite differences use): a few ulp.
    gu, gi = model.layer_mean(*[p.astype(np.float64) for p in model.parameters])
    np.testing.assert_allclose(np.vstack([gu, gi]), ref, rtol=0, atol=1e-14)
    # The state for --save holds the same final embeddings and the layer count.
    state = model.state_arrays()
    np.testing.assert_array_equal(state["user_emb"], fu)
    np.testing.assert_array_equal(state["ego_items"], model.parameters[1])
    assert int(state["layers"]) == layers


def _backward(model, gu, gi):
    tu = np.ones(model.n_users, np.uint8)
    ti = np.ones(model.n_items, np.uint8)
    (pu, pi), (su, si) = model.backward(gu, gi, tu, ti)
    return pu.copy(), pi.copy(), tu, ti, su, si


@pytest.mark.parametrize("layers", [1, 3])
def test_backward_matches_finite_differences(layers):
    """f(E0) = sum(C * sin(F(E0))) on the float64 path; df/dF = C cos(F)."""
    train = _graph(12, 15, 0.25, 5)
    model = LightGCN(train, dim=3, layers=layers, seed=1)
    rng = np.random.default_rng(6)
    e0 = [rng.standard_normal(p.shape) for p in model.parameters]
    c = [rng.standard_normal(p.shape) for p in model.parameters]

    def f(eu, ei):
        fu, fi = model.layer_mean(eu, ei)
        return float(np.sum(c[0] * np.sin(fu)) + np.sum(c[1] * np.sin(fi)))

    fu, fi = model.layer_mean(*e0)
    pu, pi, *_ = _backward(model, c[0] * np.cos(fu), c[1] * np.cos(fi))
    h = 1e-5
    # Central differences: truncation ~h^2 |f'''| ~ 1e-10, rounding ~1e-16 / h ~ 1e-11;
    # 1e-7 absolute leaves a wide margin and still catches any wrong weight (gradient
    # entries are of order 0.1).
    for side, grad in ((0, pu), (1, pi)):
        for idx in np.ndindex(grad.shape):
            plus = [e.copy() for e in e0]
            minus = [e.copy() for e in e0]
            plus[side][idx] += h
            minus[side][idx] -= h
            fd = (f(*plus) - f(*minus)) / (2 * h)
            assert abs(fd - grad[idx]) < 1e-7, (side, idx, fd, grad[idx])


@pytest.mark.parametrize("layers", [1, 2, 3])
def test_backward_is_the_transposed_operator(layers):
    """param grad = (1 / (L + 1)) sum_l (A_hat^T)^l G with the dense transpose, on a graph
    with isolated nodes and only some gradient rows nonzero; contract of the seam: float64
    outputs, all-ones flags, inputs cleared, buffers reused."""
    train = _graph(30, 45, 0.12, 1)
    model = LightGCN(train, dim=4, layers=layers, seed=2)
    a_hat_t = _dense_a_hat(train).T
    rng = np.random.default_rng(7)
    g = rng.standard_normal((75, 4))
    g[rng.random(75) < 0.5] = 0.0
    gu, gi = g[:30].copy(), g[30:].copy()
    tu = (np.abs(gu).sum(1) > 0).astype(np.uint8)
    ti = (np.abs(gi).sum(1) > 0).astype(np.uint8)
    (pu, pi), (su, si) = model.backward(gu, gi, tu, ti)
    ref = _dense_layer_mean(a_hat_t, g, layers)
    assert pu.dtype == np.float64 and pi.dtype == np.float64
    np.testing.assert_allclose(np.vstack([pu, pi]), ref, rtol=0, atol=1e-14)  # a few ulp
    assert su.dtype == np.uint8 and su.all() and si.all()
    assert not gu.any() and not gi.any() and not tu.any() and not ti.any()
    # A second call reuses the same output buffers (the optimizer zeroes them in between).
    su[:] = 0
    pu[:] = 0.0
    (pu2, _), (su2, _) = model.backward(g[:30].copy(), g[30:].copy(), np.ones(30, np.uint8),
                                        np.ones(45, np.uint8))
    assert pu2 is pu and su2 is su and su2.all()
    np.testing.assert_allclose(pu2, ref[:30], rtol=0, atol=1e-14)


def test_zero_layers_is_mf():
    train = _graph(20, 25, 0.2, 8)
    model = LightGCN(train, dim=4, layers=0, seed=4)
    fu, fi = model.embeddings()
    np.testing.assert_array_equal(fu, model.parameters[0])
    np.testing.assert_array_equal(fi, model.parameters[1])
    rng = np.random.default_rng(9)
    gu, gi = rng.standard_normal((20, 4)), rng.standard_normal((25, 4))
    pu, pi, *_ = _backward(model, gu.copy(), gi.copy())
    np.testing.assert_array_equal(pu, gu)
    np.testing.assert_array_equal(pi, gi)


_THREAD_SCRIPT = """
import hashlib, sys
sys.path.insert(0, {repo!r})
import numpy as np, scipy.sparse as sp, numba
from training.lightgcn import LightGCN
rng = np.random.default_rng(0)
nu, ni, nnz = 700, 1100, 15000
items = np.minimum((rng.pareto(1.2, nnz) * 20).astype(np.int64), ni - 1)
train = sp.csr_matrix((np.ones(nnz), (rng.integers(0, nu, nnz), items)), shape=(nu, ni))
m = LightGCN(train, dim=16, layers=3, seed=0)
h = hashlib.sha256()
for a in m.embeddings():
    h.update(a.tobytes())
gu, gi = rng.standard_normal((nu, 16)), rng.standard_normal((ni, 16))
(pu, pi), _ = m.backward(gu, gi, np.ones(nu, np.uint8), np.ones(ni, np.uint8))
h.update(pu.tobytes()); h.update(pi.tobytes())
print(numba.get_num_threads(), h.hexdigest())
"""


def test_results_do_not_depend_on_the_thread_count():
    digests = {}
    for threads in (1, 2):
        env = dict(os.environ, NUMBA_NUM_THREADS=str(threads))
        done = subprocess.run([sys.executable, "-c", _THREAD_SCRIPT.format(repo=str(REPO))],
                              env=env, capture_output=True, text=True, timeout=600,
                              check=False)
        assert done.returncode == 0, done.stderr[-2000:]
        n, digest = done.stdout.split()
        assert int(n) == threads
        digests[threads] = digest
    assert digests[1] == digests[2]


def test_xavier_normal_initialisation():
    """Each table ~ N(0, 2 / (n + dim)) (torch.nn.init.xavier_normal_ on an (n, dim) table),
    float32, seeded: same seed same tables, another seed other tables."""
    nu, ni, dim = 3000, 5000, 32
    train = sp.csr_matrix((np.ones(nu), (np.arange(nu), np.arange(nu) % ni)), shape=(nu, ni))
    model = LightGCN(train, dim=dim, layers=1, seed=11)
    for table, n in zip(model.parameters, (nu, ni)):
        assert table.dtype == np.float32 and table.flags.c_contiguous
        var = 2.0 / (n + dim)
        x = table.astype(np.float64).ravel()
        # Standard errors of the sample mean and variance of k normal draws:
        # sqrt(var / k) and var * sqrt(2 / (k - 1)); tolerance 4 standard errors each.
        k = x.size
        assert abs(x.mean()) < 4 * math.sqrt(var / k)
        assert abs(x.var(ddof=1) - var) < 4 * var * math.sqrt(2.0 / (k - 1))
        # Kurtosis of a normal is 3 (a uniform init, 1.8, would fail): SE ~ sqrt(24 / k).
        assert abs(np.mean((x - x.mean()) ** 4) / x.var() ** 2 - 3.0) < 4 * math.sqrt(24.0 / k)
    again = LightGCN(train, dim=dim, layers=3, seed=11)
    other = LightGCN(train, dim=dim, layers=1, seed=12)
    np.testing.assert_array_equal(again.parameters[0], model.parameters[0])
    np.testing.assert_array_equal(again.parameters[1], model.parameters[1])
    assert not np.array_equal(other.parameters[0], model.parameters[0])


def test_normalisation_ignores_values_and_duplicates():
    """Stored values (ratings, counts, duplicate entries) are one interaction each."""
    rows, cols = np.array([0, 0, 1, 1, 2]), np.array([1, 1, 0, 2, 2])
    dup = sp.coo_matrix((np.array([5.0, 2.0, 1.0, 3.0, 1.0]), (rows, cols)), shape=(3, 3))
    binary = sp.csr_matrix((np.ones(4), ([0, 1, 1, 2], [1, 0, 2, 2])), shape=(3, 3))
    a, b = LightGCN(dup, dim=2, seed=0), LightGCN(binary, dim=2, seed=0)
    np.testing.assert_array_equal(a.r_hat.toarray(), b.r_hat.toarray())
    np.testing.assert_array_equal(a.embeddings()[1], b.embeddings()[1])


@pytest.mark.parametrize(("kwargs", "name"), [
    ({"layers": -1}, "layers"), ({"layers": 1.5}, "layers"), ({"dim": 0}, "dim"),
    ({"dim": "8"}, "dim"), ({"train": np.ones(5)}, "train"),
    ({"train": np.ones((2, 3, 4))}, "train"), ({"train": np.ones((0, 4))}, "train"),
    ({"train": np.array([[1.0, np.nan]])}, "train"), ({"seed": -1}, "seed"),
])
def test_bad_input_names_the_argument(kwargs, name):
    args = {"train": np.eye(3), "dim": 4, "layers": 2, "seed": 0}
    args.update(kwargs)
    with pytest.raises(ValueError, match=name):
        LightGCN(**args)


def test_backward_rejects_wrong_gradient_arrays():
    model = LightGCN(np.eye(3), dim=2, layers=1)
    ok = np.zeros((3, 2))
    flags = np.zeros(3, np.uint8)
    with pytest.raises(ValueError, match="grad_user_emb"):
        model.backward(np.zeros((3, 2), np.float32), ok, flags, flags)
    with pytest.raises(ValueError, match="grad_item_emb"):
        model.backward(ok, np.zeros((2, 3)), flags, flags)
    with pytest.raises(ValueError, match="user_x"):
        model.propagate(np.zeros((4, 2)), ok)

