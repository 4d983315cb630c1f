"""benchmarks/early_learning.py: its PyTorch version of the authors' step against numpy.

The oracles are written here from the paper's formulas (Eq. 1 with the logistic loss, DNS
weights of Eq. 2 summed over the top M as the authors' code does, Softmax-v weights of Eqs.
17-18 and 25 held constant) and torch.optim.Adam's published update rule; the evaluation and
the split are checked against hnslab's own evaluation and against their definitions.
"""
import importlib.util
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "early_learning.py"


def _module():
    spec = importlib.util.spec_from_file_location("early_learning_under_test", SCRIPT)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _problem(seed=3):
    rng = np.random.default_rng(seed)
    U = rng.normal(0, 0.5, (4, 3))
    V = rng.normal(0, 0.5, (9, 3))
    users = np.array([0, 2, 2, 3])
    pos = np.array([1, 4, 5, 0])
    # Pools over all items, with replacement: a repeated draw (item 7 in row 0) and the
    # pair's own positive (item 4 in row 1) are allowed, as with the authors' randint.
    neg = np.array([[7, 2, 7, 8, 3, 6], [4, 0, 8, 2, 6, 1], [3, 1, 2, 6, 0, 8],
                    [5, 2, 4, 6, 7, 3]])
    return U, V, users, pos, neg


def _numpy_loss_grad(U, V, users, pos, neg, kind, m=1, rho=1.0, ddof=1):
    """Per-pair loss and the gradient of its sum, weights held constant."""
    gU, gV = np.zeros_like(U), np.zeros_like(V)
    per_pair = np.zeros(users.size)
    for b, (u, i) in enumerate(zip(users, pos)):
        s_pos = U[u] @ V[i]
        s_neg = V[neg[b]] @ U[u]
        x = s_pos - s_neg
        loss = np.log1p(np.exp(-x))           # l(x) = log(1 + e^-x)
        dloss = -1.0 / (1.0 + np.exp(x))      # l'(x)
        if kind == "dns":
            w = np.zeros(x.size)
            w[np.argsort(-s_neg, kind="stable")[:m]] = 1.0  # the M highest scores, summed
        elif kind == "softmax_v":
            tau = np.sqrt(np.var(loss, ddof=ddof) / (2 * rho))
            e = np.exp((loss - loss.max()) / tau)
            w = e / e.sum()
        else:
            w = np.full(x.size, 1.0 / x.size)
        per_pair[b] = w @ loss
        c = w * dloss
        gU[u] += c.sum() * V[i] - c @ V[neg[b]]
        gV[i] += c.sum() * U[u]
        np.add.at(gV, neg[b], -c[:, None] * U[u])
    return per_pair, gU, gV


@pytest.mark.parametrize("kind,m,ddof", [("dns", 1, 1), ("dns", 3, 1), ("softmax_v", 1, 1),
                                         ("softmax_v", 1, 0), ("uniform", 1, 1)])
def test_torch_loss_and_gradient_match_numpy(kind, m, ddof):
    torch = pytest.importorskip("torch")
    E = _module()
    U, V, users, pos, neg = _problem()
    Ut = torch.nn.Embedding.from_pretrained(torch.from_numpy(U.copy()), freeze=False)
    Vt = torch.nn.Embedding.from_pretrained(torch.from_numpy(V.copy()), freeze=False)
    total, per_pair = E.authors_batch_loss(torch, Ut, Vt, torch.from_numpy(users),
                                           torch.from_numpy(pos), torch.from_numpy(neg), kind,
                                           m=m, rho=0.7, ddof=ddof)
    total.backward()
    ref_loss, ref_gU, ref_gV = _numpy_loss_grad(U, V, users, pos, neg, kind, m=m, rho=0.7,
                                                ddof=ddof)
    # float64 throughout on both sides: only summation order differs (~1e-16 relative).
    np.testing.assert_allclose(per_pair.detach().numpy(), ref_loss, rtol=1e-12)
    np.testing.assert_allclose(total.item(), ref_loss.sum(), rtol=1e-12)
    np.testing.assert_allclose(Ut.weight.grad.numpy(), ref_gU, rtol=1e-10, atol=1e-14)
    np.testing.assert_allclose(Vt.weight.grad.numpy(), ref_gV, rtol=1e-10, atol=1e-14)


def test_torch_step_is_adam_with_l2_on_every_row():
    """One step of AuthorsTorchTrainer = Adam's first step on grad + wd * theta, applied to
    every row (rows outside the batch move too, by weight decay alone)."""
    torch = pytest.importorskip("torch")
    E = _module()
    from training import sampling as S

    U, V, users, pos, _ = _problem()
    U, V = U.astype(np.float32), V.astype(np.float32)
    train = sp.csr_matrix((np.ones(users.size), (users, pos)), shape=(4, 9))
    sampler = S.dns(2, 6, reduction="sum", pool="all")
    wd, lr, seed = 0.01, 1e-3, 5
    trainer = E.AuthorsTorchTrainer(train, U, V, sampler, weight_decay=wd, lr=lr, seed=seed,
                                    threads=1)
    # The trainer's pools are the first draw of a Generator seeded with `seed`.
    neg = torch.randint(0, 9, (users.size, 6),
                        generator=torch.Generator().manual_seed(seed)).numpy()
    b_users, b_pos = trainer.pair_users, trainer.pair_items  # one batch: every pair, CSR order
    trainer.step(b_users, b_pos)
    _, gU, gV = _numpy_loss_grad(U.astype(np.float64), V.astype(np.float64), b_users.numpy(),
                                 b_pos.numpy(), neg, "dns", m=2)
    U1, V1 = trainer.factors()
    for p0, g, p1 in ((U, gU, U1), (V, gV, V1)):
        g = g + wd * p0
        m1, m2 = (1 - 0.9) * g, (1 - 0.999) * g * g
        expected = p0 - lr * (m1 / (1 - 0.9)) / (np.sqrt(m2 / (1 - 0.999)) + 1e-8)
        # float32 parameters: |step| <= lr = 1e-3 computed from float32 gradients; 1e-7
        # absolute is ~10 float32 ulps at |theta| ~ 1, far below a wrong rule's error (~lr).
        np.testing.assert_allclose(p1, expected, rtol=0, atol=1e-7)
    assert np.all(U1[1] != U[1])  # user 1 has no pair: it moved by weight decay alone


def test_authors_evaluation_matches_hnslab_evaluation():
    """Two independent implementations (numpy top-K vs theory.metrics' kernels) agree when
    scores have no ties; users without test items are dropped by both."""
    E = _module()
    from training.evaluation import evaluate_full_ranking

    rng = np.random.default_rng(11)
    n_users, n_items = 40, 70
    U, V = rng.normal(size=(n_users, 4)), rng.normal(size=(n_items, 4))
    full = sp.csr_matrix(rng.random((n_users, n_items)) < 0.15)
    train = sp.csr_matrix(full.multiply(sp.csr_matrix(rng.random((n_users, n_items)) < 0.7)))
    test = sp.csr_matrix(full - full.multiply(train))
    test = sp.csr_matrix(test.multiply(sp.csr_matrix(np.arange(n_users)[:, None] % 7 != 0)))
    ours = E.authors_evaluation(U, V, train, test, ks=(5, 20, 50))
    ref = evaluate_full_ranking(U.astype(np.float32), V.astype(np.float32), train, test,
                                ks=(5, 20, 50)).mean()
    for key, value in ours.items():
        # float32 scores on both sides, same ranking: only the order of the mean differs.
        assert value == pytest.approx(ref[key], rel=1e-12, abs=1e-15), key


def test_authors_split_counts_and_partition():
    E = _module()
    rng = np.random.default_rng(2)
    matrix = sp.csr_matrix(rng.random((30, 50)) < 0.2)
    train, test = E.authors_split(matrix, 0.8, seed=10)
    n = np.diff(matrix.indptr)
    np.testing.assert_array_equal(np.diff(train.indptr), [round(0.8 * k) for k in n])
    assert (train.multiply(test)).nnz == 0
    assert ((train + test) != matrix).nnz == 0
    again, _ = E.authors_split(matrix, 0.8, seed=10)
    assert (again != train).nnz == 0


def test_help_runs():
    done = subprocess.run([sys.executable, str(SCRIPT), "--help"], capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "--sampler" in done.stdout and "--split" in done.stdout
