"""LightGCN through the trainer (training.trainer with model="lightgcn"): the batch gradient
w.r.t. the ego embeddings against central finite differences of the batch loss written here
in numpy (float64), the batch L2 on the ego rows, evaluation against a numpy full ranking of
the final embeddings (theory.metrics), E1 (DNS over all negatives = OPAUC surrogate) on
LightGCN's scores, --save, Ctrl-C, thread invariance of a short run, and bad input."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import numba
import numpy as np
import pytest

from theory import estimators as E
from theory import metrics as TM
from training import cli, models
from training import sampling as S
from training import trainer as T
from training.lightgcn import LightGCN
from training.planted import planted_dataset
from training.split import split_per_user

REPO = Path(__file__).resolve().parents[1]


def _tiny(n_users=40, n_items=30, seed=1):
    data = planted_dataset(n_users, n_items, seed=seed, density=0.15)
    return split_per_user(data.matrix, 0.8, seed)


def _dense_layer_mean(train, x, layers):
    """(1 / (L + 1)) sum_l A_hat^l x with A_hat = D^-1/2 A D^-1/2 of A = [[0, R], [R^T, 0]],
    dense, from the definition (isolated nodes: 0, not 0/0)."""
    r = (train.toarray() != 0).astype(np.float64)
    nu, ni = r.shape
    a = np.zeros((nu + ni, nu + ni))
    a[:nu, nu:], a[nu:, :nu] = r, r.T
    deg = a.sum(axis=1)
    d = np.where(deg > 0, 1.0 / np.sqrt(np.maximum(deg, 1.0)), 0.0)
    a_hat = d[:, None] * a * d[None, :]
    out, cur = x.copy(), x.copy()
    for _ in range(layers):
        cur = a_hat @ cur
        out += cur
    return out / (layers + 1)


def _pools(train, users, n, seed):
    """Explicit pools: n negatives of each pair's user, drawn with replacement."""
    rng = np.random.default_rng(seed)
    out = np.empty((users.size, n), np.int64)
    for b, u in enumerate(users):
        negatives = np.setdiff1d(np.arange(train.shape[1]), train[u].indices)
        out[b] = rng.choice(negatives, n)
    return out


def _weights(sampler, s_pos, s_neg):
    """The sampler's (constant) weights of one pool, numpy (as tests/test_trainer.py)."""
    if sampler.kind == "dns":
        w = np.zeros(s_neg.size)
        w[np.argsort(-s_neg, kind="stable")[: sampler.m]] = 1.0 / sampler.m
        return w
    if sampler.kind == "softmax_v":
        losses = E.bpr_loss(s_pos - s_neg)
        return E.softmax_weights(losses, E.softmax_v_tau(losses, sampler.rho, ddof=sampler.ddof))
    return np.full(s_neg.size, 1.0 / s_neg.size)


# --------------------------------------------------------------------------------------
# Batch gradient w.r.t. the ego embeddings
# --------------------------------------------------------------------------------------
@pytest.mark.parametrize("layers", [1, 3])
@pytest.mark.parametrize("sampler,wd", [(S.dns(2, 6), 0.0), (S.softmax_v(1.0, 6), 0.0),
                                        (S.uniform(6), 0.0), (S.dns(2, 6), 0.3)],
                         ids=["dns", "softmax_v", "uniform", "dns-batch-l2"])
def test_batch_gradient_matches_finite_differences(layers, sampler, wd):
    """batch_loss_and_grad(model=LightGCN) against central differences of the batch loss
    f(E0) = sum_b sum_k w_bk l(r_ub - r_uk) (+ wd/2 sum over occurrences of |e0|^2 on the
    ego rows of the batch's users, positives and negatives of non-zero weight), computed
    here in float64 from the dense layer mean; weights held at the base point, as the
    trainer holds them constant."""
    train, _ = _tiny(14, 12, seed=3)
    model = LightGCN(train, dim=3, layers=layers, seed=2)
    rng = np.random.default_rng(5)
    for p in model.parameters:  # larger than xavier, so that scores spread over the BPR loss
        p[...] = rng.standard_normal(p.shape).astype(np.float32)
    users = np.repeat(np.arange(train.shape[0]), np.diff(train.indptr))[::2]
    pos = train.indices[::2].astype(np.int64)
    pools = _pools(train, users, sampler.n, 7)
    got = T.batch_loss_and_grad(model, users, pos, sampler, pools=pools, weight_decay=wd)
    nu = train.shape[0]
    e0 = np.vstack([p.astype(np.float64) for p in model.parameters])
    base = _dense_layer_mean(train, e0, layers)
    weights = [_weights(sampler, base[u] @ base[nu + i], base[nu + pool] @ base[u])
               for u, i, pool in zip(users, pos, pools)]

    def f(e):
        fin = _dense_layer_mean(train, e, layers)
        total = 0.0
        for u, i, pool, w in zip(users, pos, pools, weights):
            total += w @ E.bpr_loss(fin[u] @ fin[nu + i] - fin[nu + pool] @ fin[u])
            rows = [u, nu + i] + [nu + j for j, wk in zip(pool, w) if wk != 0]
            total += wd / 2 * np.sum(e[rows] ** 2)
        return total

    want_losses = [w @ E.bpr_loss(base[u] @ base[nu + i] - base[nu + pool] @ base[u])
                   for u, i, pool, w in zip(users, pos, pools, weights)]
    # The trainer scores float32 final embeddings (float32 propagation, about 1e-7 relative);
    # the reference propagates in float64: 1e-5 relative leaves a margin of 100.
    np.testing.assert_allclose(got.losses, want_losses, rtol=1e-5)
    grad = np.vstack([got.grad_user, got.grad_item])
    h = 1e-5
    fd = np.zeros_like(e0)
    for idx in np.ndindex(e0.shape):
        plus, minus = e0.copy(), e0.copy()
        plus[idx] += h
        minus[idx] -= h
        fd[idx] = (f(plus) - f(minus)) / (2 * h)
    # Central differences: truncation ~h^2 |f'''| ~ 1e-9, rounding ~1e-16 |f| / h ~ 1e-10;
    # the analytic side is evaluated at float32 final embeddings (relative ~1e-7 of the
    # largest entry).  A missing propagation layer or an L2 on the final embeddings instead
    # of the ego rows changes entries by O(0.1).
    scale = np.abs(fd).max()
    np.testing.assert_allclose(grad, fd, rtol=0, atol=1e-5 * scale)


def test_batch_l2_on_ego_rows_at_zero_layers_equals_mf_fused_l2():
    """At L = 0 the ego rows are MF's factors: the ego-row L2 (added after backward) equals
    the L2 fused into MF's kernels, to rounding (the sums run in another order)."""
    train, _ = _tiny()
    lgcn = LightGCN(train, dim=5, layers=0, seed=4)
    mf = models.MF(lgcn.parameters[0].copy(), lgcn.parameters[1].copy())
    users = np.repeat(np.arange(train.shape[0]), np.diff(train.indptr))
    pos = train.indices.astype(np.int64)
    for sampler in (S.dns(3, 8), S.softmax_v(2.0, 8)):
        pools = _pools(train, users, 8, 1)
        a = T.batch_loss_and_grad(lgcn, users, pos, sampler, pools=pools, weight_decay=0.2)
        b = T.batch_loss_and_grad(mf, users, pos, sampler, pools=pools, weight_decay=0.2)
        c = T.batch_loss_and_grad(mf, users, pos, sampler, pools=pools)
        np.testing.assert_array_equal(a.losses, b.losses)
        for ga, gb in ((a.grad_user, b.grad_user), (a.grad_item, b.grad_item)):
            np.testing.assert_allclose(ga, gb, rtol=1e-12, atol=1e-14)  # summation order only
        assert np.abs(b.grad_item - c.grad_item).max() > 1e-3  # the L2 term is not negligible


@pytest.mark.parametrize("mode", ["batch", "adam"])
def test_trainer_steps_with_the_gradient_of_batch_loss_and_grad(mode, monkeypatch):
    """The gradient a LightGCN Trainer hands to Adam is batch_loss_and_grad's on the same
    pools: with the batch L2 in "batch" mode, without any weight decay in "adam" mode (Adam
    adds that itself)."""
    train, _ = _tiny()
    trainer = T.Trainer(train, S.dns(2, 8), model="lightgcn", layers=2, dim=4, batch_size=64,
                        weight_decay=0.1, weight_decay_mode=mode, seed=3)
    seen = {}

    def capture(grads, touched, lr, weight_decay):
        seen["grads"] = [g.copy() for g in grads]
        seen["adam_wd"] = weight_decay

    monkeypatch.setattr(trainer.adam, "step", capture)
    order, states, per_batch = trainer.epoch_plan(0)
    idx = order[:64]
    trainer.train_batch(trainer.pair_users[idx], trainer.pair_items[idx], states[:per_batch], 1e-3)
    pools = trainer._ws.pools[:64].copy()
    ref = T.batch_loss_and_grad(trainer.model, trainer.pair_users[idx], trainer.pair_items[idx],
                                trainer.sampler, pools=pools,
                                weight_decay=0.1 if mode == "batch" else 0.0)
    assert seen["adam_wd"] == (0.1 if mode == "adam" else 0.0)
    np.testing.assert_allclose(seen["grads"][0], ref.grad_user, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(seen["grads"][1], ref.grad_item, rtol=1e-12, atol=1e-15)


# --------------------------------------------------------------------------------------
# Evaluation and the estimator check on LightGCN's scores
# --------------------------------------------------------------------------------------
def test_evaluation_equals_a_numpy_full_ranking_of_the_final_embeddings(tmp_path):
    """A trained LightGCN's metrics equal theory.metrics on dense score rows of its final
    embeddings (dense numpy propagation of the ego embeddings), training items removed."""
    train, test = _tiny(60, 45, seed=2)
    result = T.train_model(train, test, S.dns(2, 10), model="lightgcn", layers=2, epochs=2,
                           dim=8, batch_size=64, lr=0.01, seed=1, ks=(1, 5, 10))
    model = result.model
    ego = np.vstack([p.astype(np.float64) for p in model.parameters])
    fin = _dense_layer_mean(train, ego, 2)
    nu = train.shape[0]
    # float32 propagation against float64: about 1e-7 relative.
    np.testing.assert_allclose(np.vstack(model.embeddings()), fin, rtol=1e-5, atol=1e-7)
    scores = fin[:nu] @ fin[nu:].T
    # Dense rows of the users with test items; training items masked to a score below every
    # other (theory.metrics wants finite scores): Top-K at K <= the number of ranked items
    # does not see them.
    rows = np.flatnonzero(np.diff(test.indptr) > 0)
    masked = np.where(train[rows].toarray(), scores.min() - 1.0, scores[rows])
    y = test[rows].toarray().astype(bool)
    assert (~train[rows].toarray()).sum(axis=1).min() >= 10  # every K below is rankable
    for k in (1, 5, 10):
        for name, metric in (("recall", TM.recall_at_k), ("precision", TM.precision_at_k),
                             ("ndcg", TM.ndcg_at_k)):
            # The evaluation ranks float32 products; the reference float64 ones of the
            # float64 propagation.  Both order every row alike here (checked below), so the
            # means agree to rounding.
            want = metric(y, masked, k).mean()
            assert result.metrics[f"{name}@{k}"] == pytest.approx(want, abs=1e-12), (name, k)
    fu, fi = (f.astype(np.float64) for f in model.embeddings())
    np.testing.assert_array_equal(np.argsort(-(fu @ fi.T), axis=1), np.argsort(-scores, axis=1))


def test_e1_dns_over_all_negatives_is_the_opauc_surrogate_on_lightgcn_scores():
    """E1 on LightGCN: the DNS loss with the pool = all of a user's negatives and
    M = beta * n_neg, summed over the user's positives, equals n_pos x the OPAUC(beta)
    surrogate (theory.estimators) of the final-embedding scores, to 1e-9."""
    train, _ = _tiny(30, 60, seed=4)
    model = LightGCN(train, dim=6, layers=3, seed=0)
    rng = np.random.default_rng(1)
    for p in model.parameters:
        p[...] = rng.standard_normal(p.shape).astype(np.float32)
    fu, fi = (f.astype(np.float64) for f in model.embeddings())
    # The scores are those of the propagated final embeddings (float32 propagation: 1e-7).
    ego = np.vstack([p.astype(np.float64) for p in model.parameters])
    np.testing.assert_allclose(np.vstack([fu, fi]), _dense_layer_mean(train, ego, 3),
                               rtol=1e-5, atol=1e-7)
    worst = 0.0
    # One thread: a fork-join per propagation of this 90-node graph costs a time slice on a
    # busy machine (results do not depend on the thread count).
    threads = numba.get_num_threads()
    numba.set_num_threads(1)
    for u in range(30):
        pos = train[u].indices
        negatives = np.setdiff1d(np.arange(60), pos)
        s = fu[u] @ fi.T
        n_neg = negatives.size
        for m in (1, 3, n_neg // 10, n_neg // 2, n_neg):
            pools = np.tile(negatives, (pos.size, 1))
            got = T.batch_loss_and_grad(model, np.full(pos.size, u), pos, S.dns(m, n_neg),
                                        pools=pools).losses.sum()
            want = pos.size * E.opauc_surrogate(s[pos], s[negatives], m / n_neg)
            worst = max(worst, abs(got - want) / want)
    numba.set_num_threads(threads)
    assert worst < 1e-9


# --------------------------------------------------------------------------------------
# Command line, interruption, threads
# --------------------------------------------------------------------------------------
def test_cli_saves_ego_and_final_embeddings_and_the_layer_count(tmp_path, capsys):
    out_file = tmp_path / "lgcn.npz"
    argv = ["--data", "planted", "--planted-users", "60", "--planted-items", "50",
            "--model", "lightgcn", "--layers", "2", "--sampler", "dns", "--m", "2", "--n", "10",
            "--epochs", "1", "--batch-size", "64", "--no-progress", "--json",
            "--save", str(out_file)]
    assert cli.main(argv) == 0
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert out["model"] == "lightgcn" and out["layers"] == 2
    saved = np.load(out_file)
    assert sorted(saved.files) == ["ego_items", "ego_users", "item_emb", "layers", "user_emb"]
    assert int(saved["layers"]) == 2
    train, _ = split_per_user(planted_dataset(60, 50, seed=0).matrix, 0.8, 0)
    fin = _dense_layer_mean(train, np.vstack([saved["ego_users"], saved["ego_items"]])
                            .astype(np.float64), 2)
    np.testing.assert_allclose(np.vstack([saved["user_emb"], saved["item_emb"]]), fin,
                               rtol=1e-5, atol=1e-7)  # float32 propagation
    assert not list(tmp_path.glob(".*tmp"))


def test_interrupt_keeps_the_last_epoch_and_its_evaluation(monkeypatch, default_sigint):
    """Ctrl-C in the second epoch: the ego embeddings of epoch 1 are restored and the
    evaluation is that of the 1-epoch run (the final embeddings are recomputed from them)."""
    train, test = _tiny()
    kw = dict(model="lightgcn", layers=2, batch_size=16, lr=0.01, dim=6, seed=2)
    one_epoch = T.train_model(train, test, S.dns(2, 10), epochs=1, **kw)
    original = T.Trainer.train_batch
    calls = {"n": 0}

    def interrupting(self, *args):
        loss = original(self, *args)
        calls["n"] += 1
        if calls["n"] == self.n_batches + 3:  # during the 3rd batch of the second epoch
            signal.raise_signal(signal.SIGINT)
        return loss

    monkeypatch.setattr(T.Trainer, "train_batch", interrupting)
    result = T.train_model(train, test, S.dns(2, 10), epochs=5, **kw)
    assert result.interrupted and result.epochs_completed == 1
    for a, b in zip(result.model.parameters, one_epoch.model.parameters):
        np.testing.assert_array_equal(a, b)
    assert result.metrics == one_epoch.metrics
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_a_short_run_does_not_depend_on_the_thread_count(tmp_path):
    """Bit-identical ego and final embeddings and metrics with NUMBA_NUM_THREADS=1 and 2."""
    saved, metrics = [], []
    for threads in (1, 2):
        out = tmp_path / f"l{threads}.npz"
        env = dict(os.environ, NUMBA_NUM_THREADS=str(threads))
        cmd = [sys.executable, "-m", "training", "--data", "planted", "--planted-users", "300",
               "--planted-items", "200", "--model", "lightgcn", "--sampler", "dns", "--m", "3",
               "--n", "20", "--epochs", "2", "--batch-size", "512", "--lr", "0.01",
               "--threads", str(threads), "--no-progress", "--json", "--save", str(out)]
        done = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=600,
                              check=False)
        assert done.returncode == 0, done.stderr[-2000:]
        summary = json.loads(done.stdout.strip().splitlines()[-1])
        metrics.append({k: v for k, v in summary.items() if k.startswith(("recall", "ndcg"))})
        saved.append(np.load(out))
    for key in ("ego_users", "ego_items", "user_emb", "item_emb"):
        np.testing.assert_array_equal(saved[0][key], saved[1][key])
    assert metrics[0] == metrics[1]


# --------------------------------------------------------------------------------------
# Bad input
# --------------------------------------------------------------------------------------
class _UniformOnlyMF(models.MF):
    """A stub model of the seam that supports uniform sampling only."""

    name = "uniform_only"
    samplers = ("uniform",)


def test_bad_model_layers_and_model_sampler_combinations(monkeypatch):
    train, _ = _tiny()
    with pytest.raises(ValueError, match="model must be one of"):
        T.Trainer(train, S.uniform(), model="gcn")
    with pytest.raises(ValueError, match="layers"):
        T.Trainer(train, S.uniform(), model="lightgcn", layers=-1)
    with pytest.raises(ValueError, match="layers"):
        T.Trainer(train, S.uniform(), model="mf", layers=2)
    monkeypatch.setitem(models.MODELS, "uniform_only",
                        lambda n_users, n_items, dim, seed, train: _UniformOnlyMF(
                            np.ones((n_users, dim)), np.ones((n_items, dim))))
    T.Trainer(train, S.uniform(), model="uniform_only")  # supported
    with pytest.raises(ValueError, match="sampler: model 'uniform_only' supports"):
        T.Trainer(train, S.dns(2, 8), model="uniform_only")
    stub = _UniformOnlyMF(np.ones((40, 3)), np.ones((30, 3)))
    with pytest.raises(ValueError, match="sampler"):
        T.batch_loss_and_grad(stub, [0], [0], S.dns(1, 2), pools=[[1, 2]])
    with pytest.raises(ValueError, match="weight_decay"):
        T.batch_loss_and_grad(stub, [0], [0], S.uniform(2), pools=[[1, 2]], weight_decay=-1.0)
    # Every sampler kind trains LightGCN (samplers only see scores).
    for sampler in (S.uniform(), S.dns(2, 8), S.softmax_v(1.0, 8), S.score_softmax(0.5, 8)):
        T.Trainer(train, sampler, model="lightgcn", dim=4)


@pytest.mark.parametrize("argv,option", [
    (["--model", "gcn"], "--model"),
    (["--model", "lightgcn", "--layers", "-1"], "--layers"),
    (["--model", "lightgcn", "--weight-decay-mode", "l1"], "--weight-decay-mode"),
])
def test_cli_bad_model_arguments_exit_2_naming_the_option(argv, option, capsys):
    with pytest.raises(SystemExit) as exc:
        cli.main(["--data", "planted", "--sampler", "dns", *argv, "--json"])
    assert exc.value.code == 2
    assert option in capsys.readouterr().err
