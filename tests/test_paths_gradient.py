"""Issue 11, item 4: trainer paths no other test reaches, against numpy written here.

* The item-gradient accumulation over several item buckets (``training.kernels``: the
  entries of a batch are grouped by buckets of ``2**ITEM_BUCKET_SHIFT`` = 1024 items and
  summed bucket by bucket), reached through ``training.trainer.batch_loss_and_grad``.
  Every other test uses at most 400 items (one bucket); Gowalla has 40,988 (41 buckets).
  Here 5,300 items: five full buckets and a partial last one, on synthetic factors,
  against a *dense* numpy gradient of the same loss.
* The authors' loss formula (``model.py`` of github.com/swt-user/WWW_2023_code,
  ``BaseModel.loss_function``) restated in numpy, so the comparison with hnslab runs in
  CI without torch; where torch is installed, the same formula in torch is compared too.

The numpy references below share nothing with hnslab but the definitions: losses with
``np.logaddexp``, weights with ``np.argsort`` / explicit softmaxes, gradients through a
dense (pairs x items) matrix of d loss / d score.
"""
from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from simulations.rng import chunk_states
from training import kernels as K
from training import sampling as S
from training import trainer as T
from training.models import init_model

N_USERS, N_ITEMS, DIM, POOL = 120, 5_300, 12, 24
BUCKET = 1 << 10  # the kernels' documented bucket width (1024 items)


def _model(seed, n_users=N_USERS, n_items=N_ITEMS, dim=DIM):
    # init_std 0.5: scores of order 1, so losses and weights vary across the pool.
    return init_model(n_users, n_items, dim, init_std=0.5, seed=seed)


def _batch(seed, n_pairs=650, n_users=N_USERS, n_items=N_ITEMS, pool=POOL):
    """Users, positives and explicit pools with items from every bucket.

    650 pairs = 10 full chunks of 64 pairs and a partial one.  The first positives are the
    edges of every bucket (0, 1023, 1024, ..., 5119, 5120, and the last item 5299); pools
    are uniform over all items (duplicates and the positive itself may occur, as in the
    authors' pools)."""
    rng = np.random.default_rng(seed)
    users = rng.integers(0, n_users, n_pairs)
    edges = sorted({e for b in range(0, n_items, BUCKET) for e in (b, min(b + BUCKET, n_items) - 1)})
    pos = np.r_[edges, rng.integers(0, n_items, n_pairs - len(edges))]
    pools = rng.integers(0, n_items, (n_pairs, pool))
    pools[0, :3] = [n_items - 1, BUCKET - 1, BUCKET]  # bucket edges as negatives too
    return users, pos, pools


def _softmax(z):
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def _weights(sampler, s_neg, losses):
    """Sampler weights of each pool position (constants), paper conventions."""
    b, n = s_neg.shape
    if sampler.kind == "uniform":
        return np.full((b, n), 1.0 / n)
    if sampler.kind == "dns":
        # top M by score; equal scores: the earlier pool position first (stable sort)
        top = np.argsort(-s_neg, axis=1, kind="stable")[:, : sampler.m]
        w = np.zeros((b, n))
        np.put_along_axis(w, top, 1.0 if sampler.reduction == "sum" else 1.0 / sampler.m, axis=1)
        return w
    if sampler.kind == "softmax_v":
        tau = np.sqrt(losses.var(axis=1, ddof=sampler.ddof) / (2.0 * sampler.rho))
        return _softmax(losses / tau[:, None])
    return _softmax(s_neg / sampler.tau)  # score-softmax, Eq. 3


def dense_reference(sampler, model, users, pos, pools):
    """Per-pair losses and the gradient of their sum, through a dense matrix
    ``A[b, j] = d loss_b / d score(user_b, item j)`` of shape (pairs, items):
    ``grad U[u] = sum_{b: user_b = u} A[b] @ V`` and ``grad V = A.T @ U[users]``."""
    U = model.user_factors.astype(np.float64)
    V = model.item_factors.astype(np.float64)
    Ub = U[users]
    s_pos = np.einsum("bd,bd->b", Ub, V[pos])
    s_neg = np.einsum("bd,bkd->bk", Ub, V[pools])
    x = s_pos[:, None] - s_neg
    losses = np.logaddexp(0.0, -x)  # l(x) = log(1 + exp(-x))
    w = _weights(sampler, s_neg, losses)
    coef = -w / (1.0 + np.exp(x))  # w * l'(x)
    rows = np.arange(users.size)
    A = np.zeros((users.size, V.shape[0]))
    np.add.at(A, (rows, pos), coef.sum(axis=1))
    np.add.at(A, (rows[:, None], pools), -coef)
    gU = np.zeros_like(U)
    np.add.at(gU, users, A @ V)
    return (w * losses).sum(axis=1), gU, A.T @ Ub


def _assert_close(got, want, what):
    # Same float64 quantities summed in another order (the kernel sums a row's entries in
    # batch order, numpy by BLAS blocks): about 1e-16 relative per term and at most a few
    # hundred terms per row, so 1e-9 of the largest entry is a wide margin for rounding and
    # far below the effect of one wrong, missing or sign-flipped pair term.  NaN fails.
    scale = np.abs(want).max()
    assert np.isfinite(got).all(), what
    err = np.abs(got - want).max()
    assert err <= 1e-9 * scale, (what, err, scale)


SAMPLERS = [S.uniform(POOL), S.dns(4, POOL), S.dns(4, POOL, reduction="sum"),
            S.softmax_v(1.0, POOL), S.softmax_v(0.1, POOL, ddof=1), S.score_softmax(0.5, POOL)]


@pytest.mark.parametrize("sampler", SAMPLERS, ids=lambda s: f"{s.label()}-{s.reduction}-{s.ddof}")
def test_multi_bucket_gradient_matches_dense_numpy(sampler):
    assert N_ITEMS > 5 * BUCKET and N_ITEMS % BUCKET  # several buckets, the last one partial
    assert (1 << K.ITEM_BUCKET_SHIFT) == BUCKET
    model = _model(0)
    users, pos, pools = _batch(1)
    got = T.batch_loss_and_grad(model, users, pos, sampler, pools=pools)
    losses, gU, gV = dense_reference(sampler, model, users, pos, pools)
    np.testing.assert_array_equal(got.pools, pools)
    _assert_close(got.losses, losses, "losses")
    _assert_close(got.grad_user, gU, "grad_user")
    _assert_close(got.grad_item, gV, "grad_item")
    # The test reaches what it claims: non-zero item-gradient rows in every bucket,
    # including the partial last one and both edges of each bucket boundary.
    touched = np.flatnonzero(np.abs(gV).sum(axis=1))
    n_buckets = -(-N_ITEMS // BUCKET)
    assert set(touched // BUCKET) == set(range(n_buckets))
    assert {0, BUCKET - 1, BUCKET, N_ITEMS - 1} <= set(touched)


@pytest.mark.parametrize("shift", [3, 13])
def test_gradient_does_not_depend_on_the_bucket_width(monkeypatch, shift):
    """Bucket width 8 items (663 buckets) or 8192 (one bucket): the same sums, bit for bit
    in the per-row order that matters (each row summed in batch order by one thread)."""
    sampler = S.dns(3, POOL)
    model = _model(2)
    users, pos, pools = _batch(3)
    base = T.batch_loss_and_grad(model, users, pos, sampler, pools=pools)
    monkeypatch.setattr(K, "ITEM_BUCKET_SHIFT", shift)
    other = T.batch_loss_and_grad(model, users, pos, sampler, pools=pools)
    np.testing.assert_array_equal(other.grad_item, base.grad_item)
    np.testing.assert_array_equal(other.grad_user, base.grad_user)


# --------------------------------------------------------------------------------------
# The authors' loss formula (model.py, BaseModel.loss_function), restated in numpy
# --------------------------------------------------------------------------------------
def authors_loss_numpy(U, V, users, pos, neg, loss_type, lambda_w=1.0, weighted=False):
    """numpy restatement of ``BaseModel.loss_function(..., reduction=False)`` for MF
    (``BaseMF.forward``: ``pos_rat = <U_u, V_i>``, ``neg_rat = <U_u, V_j>``), with the
    uniform sampler's ``neg_prob = -log(n_items)`` (a constant: it cancels in the softmax):

    * ``loss_type=1`` (DNS): the ``lambda_w`` largest ``neg_rat`` of each row
      (``torch.topk``); ``sum`` over them and over the batch of ``-logsigmoid(pos - neg)``.
    * ``loss_type=2, weighted`` (Softmax-v): ``Z = -logsigmoid(pos - neg)``,
      ``tau = sqrt(var(Z, unbiased) / (2 lambda_w))``, weights ``softmax(Z / tau)``.
    * ``loss_type=0, weighted`` (score softmax): weights ``softmax(-(pos - neg) / lambda_w)``.
    * ``weighted=False`` (uniform): weights ``softmax(ones) = 1 / N``.

    Weights are detached (constants).  Returns (total loss, per-pair losses, dL/dU, dL/dV),
    the gradients by the chain rule through the embedding lookups (as autograd does:
    scattered with np.add.at)."""
    u, vi, vj = U[users], V[pos], V[neg]  # (B, d), (B, d), (B, N, d)
    pos_rat = (u * vi).sum(-1)
    neg_rat = (u[:, None, :] * vj).sum(-1)
    if loss_type == 1:
        k = int(lambda_w)
        top = np.argsort(-neg_rat, axis=1, kind="stable")[:, :k]
        imp = np.zeros_like(neg_rat)
        np.put_along_axis(imp, top, 1.0, axis=1)  # selected terms, summed
    else:
        pred = pos_rat[:, None] - neg_rat
        z = np.logaddexp(0.0, -pred)
        if not weighted:
            imp = np.full_like(pred, 1.0 / pred.shape[1])
        elif loss_type == 2:
            tau = np.sqrt(z.var(axis=1, ddof=1, keepdims=True) / (2 * lambda_w))
            imp = _softmax(z / tau)
        else:
            imp = _softmax(-pred / lambda_w)
    pred = pos_rat[:, None] - neg_rat
    per_pair = (imp * np.logaddexp(0.0, -pred)).sum(-1)
    # d(-logsigmoid(p))/dp = sigmoid(p) - 1 = -1 / (1 + exp(p))
    g = imp * (-1.0 / (1.0 + np.exp(pred)))  # d loss / d pred, (B, N)
    d_pos, d_neg = g.sum(-1), -g  # d loss / d pos_rat, d loss / d neg_rat
    dU = np.zeros_like(U)
    dV = np.zeros_like(V)
    np.add.at(dU, users, d_pos[:, None] * vi + (d_neg[:, :, None] * vj).sum(1))
    np.add.at(dV, pos, d_pos[:, None] * u)
    np.add.at(dV, neg, d_neg[:, :, None] * u[:, None, :])
    return per_pair.sum(), per_pair, dU, dV


# (hnslab sampler, authors' loss_type, lambda_w, weighted): the authors' pools are over all
# items with replacement (pool="all"); DNS sums the top M (reduction="sum"); Softmax-v uses
# torch.var, i.e. the unbiased variance (ddof=1).
AUTHORS = [
    (S.dns(5, 30, reduction="sum", pool="all"), 1, 5, False),
    (S.dns(1, 30, reduction="sum", pool="all"), 1, 1, False),
    (S.softmax_v(1.0, 30, ddof=1, pool="all"), 2, 1.0, True),
    (S.softmax_v(0.01, 30, ddof=1, pool="all"), 2, 0.01, True),
    (S.score_softmax(0.3, 30, pool="all"), 0, 0.3, True),
    (S.uniform(30, pool="all"), 0, 1.0, False),
]


def _authors_batch():
    n_users, n_items = 50, 2_500  # three buckets
    model = _model(4, n_users, n_items, 16)
    rng = np.random.default_rng(5)
    users = rng.integers(0, n_users, 300)
    pos = rng.integers(0, n_items, 300)
    neg = rng.integers(0, n_items, (300, 30))  # torch.randint(0, n_items): positives included
    return model, users, pos, neg


@pytest.mark.parametrize("case", AUTHORS, ids=lambda c: c[0].label())
def test_hnslab_matches_the_authors_formula_in_numpy(case):
    sampler, loss_type, lambda_w, weighted = case
    model, users, pos, neg = _authors_batch()
    got = T.batch_loss_and_grad(model, users, pos, sampler, pools=neg)
    U = model.user_factors.astype(np.float64)
    V = model.item_factors.astype(np.float64)
    total, per_pair, dU, dV = authors_loss_numpy(U, V, users, pos, neg, loss_type, lambda_w,
                                                 weighted)
    # float64 on both sides, different summation orders: relative 1e-12 (see _assert_close
    # for the margin).  The conventions this pins are far coarser: a "mean" DNS reduction
    # is off by a factor M, a ddof=0 variance moves some pair's loss by 4e-3 to 1e-2 here.
    np.testing.assert_allclose(got.losses, per_pair, rtol=1e-12, atol=0)
    assert got.losses.sum() == pytest.approx(total, rel=1e-12)
    _assert_close(got.grad_user, dU, "grad_user")
    _assert_close(got.grad_item, dV, "grad_item")


@pytest.mark.parametrize("case", AUTHORS, ids=lambda c: c[0].label())
def test_numpy_restatement_matches_the_authors_torch_formula(case):
    """Optional (torch is a benchmark extra): the numpy restatement above against the
    authors' formula written with torch ops (float64, so only the formula is compared)."""
    torch = pytest.importorskip("torch")
    import torch.nn.functional as F

    _, loss_type, lambda_w, weighted = case  # the hnslab sampler is not used here
    model, users, pos, neg = _authors_batch()
    U = model.user_factors.astype(np.float64)
    V = model.item_factors.astype(np.float64)
    Ut = torch.nn.Embedding.from_pretrained(torch.from_numpy(U.copy()), freeze=False)
    Vt = torch.nn.Embedding.from_pretrained(torch.from_numpy(V.copy()), freeze=False)
    u, i, j = (torch.from_numpy(np.asarray(a, dtype=np.int64)) for a in (users, pos, neg))
    n = j.shape[1]
    pos_rat = (Ut(u) * Vt(i)).sum(-1)
    neg_rat = (Ut(u.unsqueeze(1).repeat(1, n)) * Vt(j)).sum(-1)
    neg_prob = -torch.log(V.shape[0] * torch.ones(j.shape, dtype=torch.float64))
    if loss_type == 1:
        top, _ = torch.topk(neg_rat, int(lambda_w), dim=-1)
        loss = torch.negative(F.logsigmoid(pos_rat.unsqueeze(1) - top)).sum(-1).sum(-1)
    else:
        pred = pos_rat.unsqueeze(1) - neg_rat
        with torch.no_grad():
            if not weighted:
                imp = F.softmax(torch.ones_like(pred), dim=1)
            elif loss_type == 2:
                Z = torch.negative(F.logsigmoid(pred))
                tau = torch.sqrt(torch.var(Z, dim=1, keepdim=True) / (2 * lambda_w))
                imp = F.softmax(Z / tau - neg_prob, dim=1)
            else:
                imp = F.softmax(torch.negative(pred) / lambda_w - neg_prob, dim=1)
        loss = (imp.detach() * torch.negative(F.logsigmoid(pred))).sum(-1).sum(-1)
    loss.backward()
    total, _, dU, dV = authors_loss_numpy(U, V, users, pos, neg, loss_type, lambda_w, weighted)
    assert loss.item() == pytest.approx(total, rel=1e-12)
    _assert_close(Ut.weight.grad.numpy(), dU, "torch grad_user")
    _assert_close(Vt.weight.grad.numpy(), dV, "torch grad_item")


# --------------------------------------------------------------------------------------
# The one-pass path of full-pool samplers (SamplerSpec.full_pool) against the general one
# --------------------------------------------------------------------------------------
def _run_forward(sampler, model, users, pos, pools, full_pool, draw, train):
    """forward + accumulate with the path forced; every output the kernels write."""
    U, V = model.embeddings()
    n = users.size
    ws = K.Workspace(n, pools.shape[1], sampler.n_used(pools.shape[1]), U.shape[1], V.shape[0])
    ws.pools[:n] = pools
    states = chunk_states(7, -(-n // K.PAIR_CHUNK))
    batch = K.PairBatch(users, pos, ws.pools[:n], draw, True, states,
                        train.indptr.astype(np.int64), train.indices.astype(np.int64))
    out, ent = ws.outputs(n), ws.entries(n)
    K.forward(U, V, batch, sampler.kernel, 0.01, out, ent, full_pool)
    gU, gV = np.zeros(U.shape), np.zeros(V.shape)
    tU, tV = np.zeros(U.shape[0], np.uint8), np.zeros(V.shape[0], np.uint8)
    K.accumulate_items(U, V, ent, 0.01, gV, tV)
    K.accumulate_users(users, out.gu, gU, tU)
    return {"pools": ws.pools[:n].copy(), "loss": out.loss.copy(), "n_used": out.n_used.copy(),
            "csum": out.csum.copy(), "gu": out.gu.copy(), "gU": gU, "gV": gV, "tV": tV,
            "counts": ent.counts.copy(), "states": states}


@pytest.mark.parametrize("draw", [False, True], ids=["given-pools", "drawn-pools"])
@pytest.mark.parametrize("sampler", [S.uniform(POOL), S.softmax_v(1.0, POOL),
                                     S.softmax_v(0.1, POOL, ddof=1), S.score_softmax(0.5, POOL)],
                         ids=lambda s: f"{s.label()}-{s.ddof}")
def test_full_pool_path_is_bit_identical_to_the_general_path(sampler, draw):
    """The one-pass path (pools drawn chunk by chunk first, entries written straight into
    their buckets) must reproduce the general path (negs/coefs rows, then a counting sort)
    bit for bit: the same pools and random streams, the same per-row summation order
    (batch order; per pair the positive first, then the pool in order), in 6 buckets and
    11 chunks, with the fused batch L2.  The general path is itself checked against the
    dense numpy reference above."""
    assert sampler.spec.full_pool
    model = _model(4)
    users, pos, pools = _batch(5)
    rng = np.random.default_rng(6)
    train = sp.csr_matrix((rng.random((N_USERS, N_ITEMS)) < 0.01).astype(bool))
    general = _run_forward(sampler, model, users, pos, pools, False, draw, train)
    one_pass = _run_forward(sampler, model, users, pos, pools, True, draw, train)
    for key, value in general.items():
        assert np.array_equal(value, one_pass[key]), key
    assert np.all(general["n_used"] == POOL)
    if draw:  # the pools were drawn, as the trainer draws them (same streams)
        assert not np.array_equal(general["pools"], pools)
        np.testing.assert_array_equal(general["pools"], S.draw_pools(users, sampler, train, seed=7))
    assert np.count_nonzero(general["counts"]) > 11 * 5  # entries in many (chunk, bucket) cells


@pytest.mark.parametrize("kind", [k for k, spec in S.SAMPLERS.items() if spec.full_pool])
def test_full_pool_samplers_use_every_position_in_order_and_draw_nothing(kind):
    """The contract the one-pass path relies on: n_used = N, sel[t] = t, state untouched."""
    sampler = S.Sampler(kind, 9)
    rng = np.random.default_rng(8)
    for _ in range(20):
        state = chunk_states(3, 1)[0]
        before = state.copy()
        scratch = S.new_scratch(9)
        _, n_used = S.pool_loss_weights(sampler.kernel, float(rng.normal()), rng.normal(size=9),
                                        state, scratch)
        assert n_used == 9
        np.testing.assert_array_equal(scratch.sel[:9], np.arange(9))
        np.testing.assert_array_equal(state, before)
