"""training.evaluation.evaluate_full_ranking against theory.metrics on compacted rows.

Oracle: for each user with test items, drop the user's training items from the score row,
label the test items positive and everything else negative, and apply theory.metrics'
public functions (recall_at_k, precision_at_k, ndcg_at_k, opauc) to that compacted row.
Integer-valued factors make every score exact (small integers, in float32 as in float64), so
ties are frequent and both sides see the same ties.

Second oracle: the implementation before issue 12 (tests/evaluation_reference.py, kept
verbatim).  The fast path must give the *same floats* (np.array_equal), not close ones: it
feeds theory.metrics' kernels the same blocks with the same arithmetic (see
training.evaluation._evaluate_row), so any difference is a bug.

Tiles (float32 scores are computed and scanned 64 users at a time): the tiles' score rows have
the same bits as one product per block of users (the scores the second oracle ranks), and every
Top-K metric (MRR@K and MAP@K included, whose values tests/test_topk_rank_metrics.py checks
against theory.metrics) and OPAUC is the same float whatever the block size and thread count.
"""
from __future__ import annotations

import contextlib
import hashlib
from pathlib import Path

import numba
import numpy as np
import pytest
import scipy.sparse as sp
from evaluation_reference import evaluate_full_ranking_reference
from threadpoolctl import threadpool_limits

import training.evaluation as E
from theory import metrics as M
from training.evaluation import evaluate_full_ranking
from training.loaders import load_mat
from training.split import split_per_user


def _random_split(rng, n_users, n_items, p_train=0.15, p_test=0.08):
    u = rng.random((n_users, n_items))
    train = u < p_train
    test = (u >= p_train) & (u < p_train + p_test)
    test[0] = False  # user 0 has no test item: must be skipped
    return sp.csr_matrix(train), sp.csr_matrix(test)


def _oracle(U, V, train, test, ks, betas):
    scores = U.astype(np.float64) @ V.astype(np.float64).T
    tr, te = train.toarray(), test.toarray()
    users, rows = [], []
    for u in range(U.shape[0]):
        if not te[u].any():
            continue
        keep = ~tr[u]
        y, s = te[u][keep], scores[u][keep]
        row = [M.recall_at_k(y, s, k) for k in ks] + [M.precision_at_k(y, s, k) for k in ks]
        row += [M.ndcg_at_k(y, s, k) for k in ks] + [M.opauc(y, s, b) for b in betas]
        users.append(u)
        rows.append(row)
    return np.array(users), np.array(rows)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("seed", [0, 1])
def test_matches_theory_metrics_with_exact_ties(dtype, seed):
    rng = np.random.default_rng(seed)
    n_users, n_items, dim = 40, 90, 3
    U = rng.integers(-2, 3, size=(n_users, dim)).astype(dtype)
    V = rng.integers(-2, 3, size=(n_items, dim)).astype(dtype)
    train, test = _random_split(rng, n_users, n_items)
    ks, betas = (1, 5, 20, 50, 200), (0.01, 0.1, 0.37, 1.0)
    ev = evaluate_full_ranking(U, V, train, test, ks=ks, betas=betas, users_per_block=7)
    users, oracle = _oracle(U, V, train, test, ks, betas)
    np.testing.assert_array_equal(ev.users, users)
    got = np.hstack([ev.recall, ev.precision, ev.ndcg, ev.opauc])
    np.testing.assert_allclose(got, oracle, rtol=1e-12, atol=1e-12)
    # Ties really happen here (otherwise the test would not test the tie convention).
    scores = U.astype(np.float64) @ V.astype(np.float64).T
    assert np.mean([np.unique(r).size < r.size / 4 for r in scores]) > 0.9
    means = ev.mean()
    assert means["recall@5"] == pytest.approx(oracle[:, 1].mean(), abs=1e-12)
    assert means["opauc@0.1"] == pytest.approx(oracle[:, 3 * len(ks) + 1].mean(), abs=1e-12)


def test_matches_theory_metrics_on_the_top_r_path():
    # 1,400 items: r = max(ks) = 20 and r = n_test + ceil(beta n_neg) stay below the 21
    # chunks of 64 items, so every row takes the top-r selection (above, the whole row).
    rng = np.random.default_rng(7)
    n_users, n_items = 30, 1400
    U = rng.integers(-2, 3, size=(n_users, 3)).astype(np.float32)
    V = rng.integers(-2, 3, size=(n_items, 3)).astype(np.float32)
    train, test = _random_split(rng, n_users, n_items, 0.1, 0.004)
    ks, betas = (1, 5, 20), (0.001, 0.005)
    assert max(ks) * 64 <= n_items
    assert (np.diff(test.indptr) + np.ceil(0.005 * n_items)).max() * 64 <= n_items
    ev = evaluate_full_ranking(U, V, train, test, ks=ks, betas=betas, users_per_block=8)
    users, oracle = _oracle(U, V, train, test, ks, betas)
    np.testing.assert_array_equal(ev.users, users)
    # The oracle sums in another order (theory.metrics' batch path): 1e-12 absolute.
    np.testing.assert_allclose(np.hstack([ev.recall, ev.precision, ev.ndcg, ev.opauc]), oracle,
                               rtol=0, atol=1e-12)


def _same(a, b):
    for name in ("users", "ks", "recall", "precision", "ndcg", "betas", "opauc"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name), err_msg=name)


def _tied_problem(seed, dtype, n_users=300, n_items=5000, dim=8):
    """Quantised factors (multiples of 1/4: exact scores, a few hundred distinct values per
    row) and a split with the edge cases of the top-r path: a user whose ranked items are
    fewer than max(ks), a user with no negative at all, a user whose test items all tie."""
    rng = np.random.default_rng(seed)
    U = (rng.integers(-4, 5, size=(n_users, dim)) / 4).astype(dtype)
    V = (rng.integers(-4, 5, size=(n_items, dim)) / 4).astype(dtype)
    u = rng.random((n_users, n_items))
    train = u < 0.01
    test = (u >= 0.01) & (u < 0.0125)
    train[1] = True                      # user 1: 30 ranked items, 3 of them test items
    train[1, :30] = False
    test[1] = False
    test[1, :3] = True
    train[2] = True                      # user 2: test items only, no negatives (OPAUC NaN)
    train[2, :5] = False
    test[2] = False
    test[2, :5] = True
    V[10:20] = V[9]                      # user 3: ten test items with one score
    test[3] = False
    test[3, 10:20] = True
    train[3, 10:20] = False
    return U, V, sp.csr_matrix(train), sp.csr_matrix(test)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_equals_todays_implementation_with_ties(dtype):
    U, V, train, test = _tied_problem(11, dtype)
    scores = U[:20].astype(np.float64) @ V.T.astype(np.float64)
    assert np.mean([np.unique(r).size for r in scores]) < 200  # ties everywhere
    # betas (): Top-K only; (0.001, 0.01): top-r path with OPAUC; (0.01, 0.5): whole rows.
    for betas in ((), (0.001, 0.01), (0.01, 0.5)):
        for block in (64, 1024):
            args = {"ks": (1, 5, 20, 50), "betas": betas, "users_per_block": block}
            _same(evaluate_full_ranking(U, V, train, test, **args),
                  evaluate_full_ranking_reference(U, V, train, test, **args))


def test_equals_todays_implementation_on_continuous_scores():
    rng = np.random.default_rng(12)
    U = (rng.normal(size=(200, 16)) * 0.1).astype(np.float32)
    V = (rng.normal(size=(6000, 16)) * 0.1).astype(np.float32)
    train, test = _random_split(rng, 200, 6000, 0.01, 0.003)
    for ks, betas in (((5, 20, 50), ()), ((3, 10), (0.002, 0.008))):
        _same(evaluate_full_ranking(U, V, train, test, ks=ks, betas=betas),
              evaluate_full_ranking_reference(U, V, train, test, ks=ks, betas=betas))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_results_do_not_depend_on_the_thread_count(dtype):
    U, V, train, test = _tied_problem(13, dtype, n_users=100)  # a full tile and a partial one
    runs = []
    for threads in THREADS:  # numba workers and BLAS threads
        with _threads(threads):
            runs.append(evaluate_full_ranking(U, V, train, test, betas=(0.005,), metrics=ALL_METRICS))
    _same_everywhere(runs[0], runs[-1])


def test_large_finite_scores_are_checked_and_equal():
    # ||u||_1 max|v| exceeds FLT_MAX / 2, so overflow is not ruled out and every score is
    # checked; the scores themselves stay finite (about 3e37), and the metrics are today's.
    rng = np.random.default_rng(14)
    U = np.full((20, 8), 3e37, np.float32) * rng.choice([-1, 1], size=(20, 8)).astype(np.float32)
    V = (rng.normal(size=(3000, 8)) * 0.1).astype(np.float32)
    train, test = _random_split(rng, 20, 3000, 0.01, 0.005)
    _same(evaluate_full_ranking(U, V, train, test, betas=(0.01,)),
          evaluate_full_ranking_reference(U, V, train, test, betas=(0.01,)))


def test_equals_todays_implementation_on_gowalla(gowalla_path):
    split = split_per_user(load_mat(gowalla_path), 0.8, seed=0)
    keep = np.zeros(split.test.shape[0])
    keep[:3000] = 1.0  # the first 3,000 users: the test's time, not its reach, is the limit
    test = sp.diags(keep) @ split.test
    rng = np.random.default_rng(0)
    U = (rng.normal(size=(split.train.shape[0], 32)) * 0.1).astype(np.float32)
    V = (rng.normal(size=(split.train.shape[1], 32)) * 0.1).astype(np.float32)
    assert _n_eval(test) % E._TILE_ROWS != 0  # 3,000 = 2 x 1,024 + 14 x 64 + 56: a partial tile
    for factors in ((U, V), (np.round(U * 16) / 16, np.round(V * 16) / 16)):  # continuous, tied
        for betas in ((), (0.001, 0.01)):
            _same(evaluate_full_ranking(*factors, split.train, test, betas=betas),
                  evaluate_full_ranking_reference(*factors, split.train, test, betas=betas))
            first = None
            for threads in THREADS:
                with _threads(threads):
                    new = evaluate_full_ranking(*factors, split.train, test, betas=betas,
                                                metrics=ALL_METRICS)
                first = new if first is None else first
                _same_everywhere(new, first)


# --------------------------------------------------------------------------------------
# Tiles (float32: each worker scores and scans 64 users at a time): the score bits of one
# product per block, the same metrics at any block size and on any number of threads.
# --------------------------------------------------------------------------------------
THREADS = sorted({1, min(2, numba.config.NUMBA_NUM_THREADS)})
ALL_METRICS = E.EVALUATION_METRICS  # recall, precision, ndcg, mrr, map


@contextlib.contextmanager
def _threads(n):
    """n numba threads (the evaluation's workers) and n BLAS threads."""
    before = numba.get_num_threads()
    numba.set_num_threads(n)
    try:
        with threadpool_limits(limits=n, user_api="blas"):
            yield
    finally:
        numba.set_num_threads(before)


def _same_everywhere(a, b):
    """The same floats (NaN equal to NaN) in every field and every Top-K metric."""
    for name in ("users", "ks", "betas", "opauc"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name), err_msg=name)
    assert tuple(a.topk) == tuple(b.topk)
    for name in a.topk:
        np.testing.assert_array_equal(a.topk[name], b.topk[name], err_msg=name)


def _n_eval(test):
    return int((np.diff(test.indptr) > 0).sum())


@pytest.mark.parametrize("threads", THREADS)
def test_tiles_give_the_reference_metrics_at_any_block_size_and_thread_count(threads):
    U, V, train, test = _tied_problem(15, np.float32, n_users=300)
    rng = np.random.default_rng(15)
    continuous = ((rng.normal(size=U.shape) * 0.3).astype(np.float32),
                  (rng.normal(size=V.shape) * 0.3).astype(np.float32))
    n = _n_eval(test)
    assert n % E._TILE_ROWS != 0 and n > 4 * E._TILE_ROWS  # full tiles and a partial one
    # users_per_block 1024: one block, tiles of 64 and a partial tile; 200 and 100: a partial
    # tile in every block (200 = 3 * 64 + 8, 100 = 64 + 36); 7: tiles are the blocks.
    for factors in ((U, V), continuous):
        for betas in ((), (0.001, 0.01), (0.01, 0.5)):
            args = {"ks": (1, 5, 20, 50), "betas": betas}
            with _threads(1):
                first = evaluate_full_ranking(*factors, train, test, metrics=ALL_METRICS, **args)
            _same(first, evaluate_full_ranking_reference(*factors, train, test, **args))
            for block in (1024, 200, 100, 7):
                with _threads(threads):
                    new = evaluate_full_ranking(*factors, train, test, metrics=ALL_METRICS,
                                                users_per_block=block, **args)
                _same_everywhere(new, first)


def _digest(row):
    return hashlib.blake2b(row.tobytes(), digest_size=16).digest()


def _blocked_score_digests(U, V, users, block, blas_threads, tile=None):
    """Each user's score row as one np.matmul per block of users (the scores of the
    implementation before the tiles), or with ``tile``, per run of ``tile`` users from each
    block's start (what the tiles compute), into a buffer."""
    items_t = np.ascontiguousarray(V.T)
    step = block if tile is None else tile
    buffer = np.empty((min(step, users.size), V.shape[0]), U.dtype)
    out = {}
    with threadpool_limits(limits=blas_threads, user_api="blas"):
        for start in range(0, users.size, block):
            in_block = users[start:start + block]
            for first in range(0, in_block.size, step):
                ids = in_block[first:first + step]
                scores = buffer[: ids.size]
                np.matmul(U[ids], items_t, out=scores)
                out.update((int(u), _digest(row)) for u, row in zip(ids, scores))
    return out


@pytest.mark.parametrize(("n_users", "n_items", "dim"), [(700, 40_988, 32), (300, 6003, 8)])
def test_tile_scores_have_the_bits_of_single_threaded_tile_products(monkeypatch, n_users,
                                                                    n_items, dim):
    """Every score row the scan sees has the bits of a single-threaded np.matmul of its tile
    (64 users from its block's start), on 1 and 2 threads and for any block size: so the
    evaluation does not depend on the thread count, whatever the CPU.  Where the CPU's sgemm
    gives a row the same bits in any row blocking (OpenBLAS's SkylakeX kernels, measured),
    these are also the bits of one product per block (the implementation before the tiles);
    with OpenBLAS's Zen kernels (AMD EPYC, measured) they are not."""
    # 700 users x Gowalla's 40,988 items, dim 32: 10 full tiles and one of 60 rows in a block
    # of 1,024; the metrics would hide most last-bit differences, the bits do not.
    rng = np.random.default_rng(16)
    U = (rng.normal(size=(n_users, dim)) * 0.1).astype(np.float32)
    V = (rng.normal(size=(n_items, dim)) * 0.1).astype(np.float32)
    train, test = _random_split(rng, n_users, n_items, 0.002, 0.001)
    users = np.flatnonzero(np.diff(test.indptr) > 0)
    assert users.size % E._TILE_ROWS != 0
    seen = {}
    kernel = E._evaluate_rows

    def spy(scores, ids, *rest):  # the rows as scored, before the scan masks training items
        seen.update((int(u), _digest(row)) for u, row in zip(ids, scores))
        kernel(scores, ids, *rest)

    monkeypatch.setattr(E, "_evaluate_rows", spy)
    for block in (1024, 100, 7):
        expected = _blocked_score_digests(U, V, users, block, blas_threads=1, tile=E._TILE_ROWS)
        for threads in THREADS:
            seen.clear()
            with _threads(threads):
                evaluate_full_ranking(U, V, train, test, ks=(5,), users_per_block=block)
            assert seen.keys() == expected.keys()
            differ = [u for u in expected if seen[u] != expected[u]]
            assert not differ, f"block {block}, {threads} thread(s): rows of users {differ[:5]}"


@pytest.mark.filterwarnings("ignore:overflow encountered in matmul:RuntimeWarning")
def test_overflow_in_a_later_tile_raises_value_error():
    # The check runs in the worker that scores the tile; its error reaches the caller.
    rng = np.random.default_rng(17)
    U = (rng.normal(size=(300, 4)) * 0.1).astype(np.float32)
    U[250:] = 1e20  # scores of 1e40 overflow float32 in the fourth 64-user tile
    V = (rng.normal(size=(500, 4)) * 0.1).astype(np.float32)
    V[:, 0] = 1e20
    train, test = _random_split(rng, 300, 500, 0.01, 0.01)
    for threads in THREADS:
        with _threads(threads), pytest.raises(ValueError, match="overflows"):
            evaluate_full_ranking(U, V, train, test)


def test_real_valued_scores_and_users_without_test_items():
    rng = np.random.default_rng(5)
    U, V = rng.normal(size=(30, 4)), rng.normal(size=(60, 4))
    train, test = _random_split(rng, 30, 60, 0.2, 0.1)
    test = test.tolil()
    test[3] = False
    test = test.tocsr()
    ev = evaluate_full_ranking(U, V, train, test, ks=(3, 10))
    users, oracle = _oracle(U, V, train, test, (3, 10), ())
    assert 0 not in ev.users and 3 not in ev.users
    np.testing.assert_array_equal(ev.users, users)
    np.testing.assert_allclose(np.hstack([ev.recall, ev.precision, ev.ndcg]), oracle, atol=1e-12)


def test_float32_and_float64_factors_agree_on_exact_scores():
    rng = np.random.default_rng(2)
    U = rng.integers(-3, 4, size=(25, 4))
    V = rng.integers(-3, 4, size=(50, 4))
    train, test = _random_split(rng, 25, 50)
    a = evaluate_full_ranking(U.astype(np.float32), V.astype(np.float32), train, test)
    b = evaluate_full_ranking(U.astype(np.float64), V.astype(np.float64), train, test)
    for name in ("recall", "precision", "ndcg"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name))


def test_bad_inputs_raise():
    rng = np.random.default_rng(3)
    U, V = rng.normal(size=(10, 3)), rng.normal(size=(20, 3))
    train, test = _random_split(rng, 10, 20, 0.2, 0.2)
    with pytest.raises(ValueError):
        evaluate_full_ranking(U, V[:, :2], train, test)  # dims differ
    with pytest.raises(ValueError):
        evaluate_full_ranking(U[0], V, train, test)  # 1-D factors
    with pytest.raises(ValueError):
        evaluate_full_ranking(U, V, train[:5], test)  # shape mismatch
    with pytest.raises(ValueError):
        evaluate_full_ranking(U, V, train, test[:, :10])
    overlap = test.tolil()
    r, c = train.nonzero()
    overlap[r[0], c[0]] = True
    with pytest.raises(ValueError, match="disjoint"):
        evaluate_full_ranking(U, V, train, overlap.tocsr())
    with pytest.raises(ValueError):
        evaluate_full_ranking(U, V, train, test, ks=(0,))
    with pytest.raises(ValueError):
        evaluate_full_ranking(U, V, train, test, ks=())
    with pytest.raises(ValueError):
        evaluate_full_ranking(U, V, train, test, betas=(1.5,))


def test_inputs_are_not_modified():
    rng = np.random.default_rng(4)
    U, V = rng.normal(size=(12, 3)), rng.normal(size=(15, 3))
    train, test = _random_split(rng, 12, 15, 0.3, 0.2)
    # unsorted indices with a duplicate entry in the caller's matrix
    coo = test.tocoo()
    messy = sp.csr_matrix((np.r_[coo.data, coo.data[:1]], (np.r_[coo.row, coo.row[:1]],
                                                          np.r_[coo.col, coo.col[:1]])),
                          shape=test.shape)
    messy.has_sorted_indices = False
    before = (messy.indices.copy(), messy.data.copy())
    a = evaluate_full_ranking(U, V, train, messy)
    b = evaluate_full_ranking(U, V, train, test)
    np.testing.assert_allclose(a.recall, b.recall)
    np.testing.assert_array_equal(messy.indices, before[0])
    np.testing.assert_array_equal(messy.data, before[1])


# --------------------------------------------------------------------------------------
# Robustness: the caller's matrices are untouched, stored zeros are not interactions,
# non-finite inputs raise instead of crashing the kernel.
# --------------------------------------------------------------------------------------
def test_unsorted_input_is_not_sorted_in_place():
    rng = np.random.default_rng(0)
    U, V = rng.normal(size=(3, 2)), rng.normal(size=(6, 2))
    test = sp.csr_matrix((np.ones(3, bool), np.array([4, 1, 2]), np.array([0, 2, 3, 3])),
                         shape=(3, 6))
    test.has_sorted_indices = False
    evaluate_full_ranking(U, V, sp.csr_matrix((3, 6), dtype=bool), test, ks=(2,))
    np.testing.assert_array_equal(test.indices, [4, 1, 2])


def test_explicit_zeros_are_not_interactions():
    rng = np.random.default_rng(0)
    U, V = rng.normal(size=(3, 2)), rng.normal(size=(6, 2))
    test = sp.csr_matrix((np.array([1.0, 0.0]), np.array([1, 3]), np.array([0, 2, 2, 2])),
                         shape=(3, 6))
    ev = evaluate_full_ranking(U, V, sp.csr_matrix((3, 6)), test, ks=(2,))
    clean = sp.csr_matrix((np.array([1.0]), np.array([1]), np.array([0, 1, 1, 1])), shape=(3, 6))
    np.testing.assert_array_equal(ev.recall, evaluate_full_ranking(U, V, sp.csr_matrix((3, 6)),
                                                                  clean, ks=(2,)).recall)


_CRASH_PROBE = """
import numpy as np, scipy.sparse as sp
from training.evaluation import evaluate_full_ranking
U = np.full((3, 2), {u}, dtype=np.float32); U[0, 0] = {u00}
V = np.full((6, 2), {v}, dtype=np.float32); V[::2] *= -1
test = sp.csr_matrix((np.ones(2, bool), np.array([1, 4]), np.array([0, 2, 2, 2])), shape=(3, 6))
try:
    evaluate_full_ranking(U, V, sp.csr_matrix((3, 6)), test)
except ValueError:
    raise SystemExit(0)
raise SystemExit(1)
"""


def _probe(**values):
    """Run the probe in a subprocess (a crash must not take pytest down)."""
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-c", _CRASH_PROBE.format(**values)],
                          cwd=Path(__file__).resolve().parents[1], capture_output=True,
                          timeout=120, check=False)
    return done.returncode, done.stderr.decode()[-500:]


def test_nan_factors_raise_value_error():
    code, err = _probe(u="1.0", u00="np.nan", v="1.0")
    assert code == 0, err


def test_overflowing_scores_raise_value_error():
    code, err = _probe(u="1e20", u00="1e20", v="1e20")
    assert code == 0, err
