"""Tests of training.loaders, .split and .planted: loaders, atomic writer, per-user split,
planted data.

Every expectation is computed independently of the module: hand-written matrices,
plain Python loops over users, closed-form sampling laws.
"""
from __future__ import annotations

import itertools
import math
import stat
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import scipy.io
import scipy.sparse as sp
import scipy.stats

from training import loaders
from training.loaders import (
    load_csv,
    load_lightgcn_split,
    load_lightgcn_txt,
    load_mat,
    save_lightgcn_txt,
    to_interactions,
)
from training.planted import PlantedData, planted_dataset
from training.split import Split, n_train_items, split_per_user

# ---------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------

def dense(matrix) -> np.ndarray:
    return matrix.toarray().astype(bool)


def assert_canonical(matrix, shape=None):
    assert isinstance(matrix, sp.csr_matrix)
    assert matrix.dtype == np.bool_
    if shape is not None:
        assert matrix.shape == shape
    assert matrix.data.all()
    for u in range(matrix.shape[0]):
        row = matrix.indices[matrix.indptr[u]:matrix.indptr[u + 1]]
        assert np.all(np.diff(row) > 0), f"row {u} not strictly increasing: {row}"


def random_dense(rng, n_users, n_items, density) -> np.ndarray:
    return rng.random((n_users, n_items)) < density


def write(tmp_path: Path, name: str, text: str | bytes) -> Path:
    path = tmp_path / name
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text)
    return path


def assert_located(excinfo, path: Path, line: int | None):
    message = str(excinfo.value)
    assert str(path) in message, message
    if line is not None:
        assert f"line {line}:" in message, message


# ---------------------------------------------------------------------------
# canonical form
# ---------------------------------------------------------------------------

def test_to_interactions_from_coo_with_duplicates_zeros_and_counts():
    rows = [0, 2, 0, 1, 2, 2]
    cols = [3, 0, 3, 1, 0, 2]
    vals = [1.0, 2.0, 1.0, 0.0, 5.0, 1.0]  # (0,3) twice, (1,1) explicit zero, (2,0) count
    m = to_interactions(sp.coo_matrix((vals, (rows, cols)), shape=(4, 5)))
    expected = np.zeros((4, 5), bool)
    expected[0, 3] = expected[2, 0] = expected[2, 2] = True
    assert_canonical(m, (4, 5))
    assert m.nnz == 3
    np.testing.assert_array_equal(dense(m), expected)
    np.testing.assert_array_equal(dense(to_interactions(expected.astype(np.int8))), expected)


@pytest.mark.parametrize("bad, words", [
    (np.zeros(3), "2-D"),
    (np.zeros((2, 2, 2)), "2-D"),
    (np.array([[1.0, -1.0]]), "negative"),
    (np.array([[1.0, np.nan]]), "non-finite"),
    (sp.csr_matrix(np.array([[0.0, np.inf]])), "non-finite"),
    (np.array([["a", "b"]]), "real"),
])
def test_to_interactions_rejects(bad, words):
    with pytest.raises(ValueError, match=words):
        to_interactions(bad)


# ---------------------------------------------------------------------------
# LightGCN text format
# ---------------------------------------------------------------------------

def test_lightgcn_text_is_exactly_the_documented_format(tmp_path):
    m = np.zeros((4, 6), bool)
    m[0, [5, 1]] = True
    m[2, [0, 3, 4]] = True  # user 1 and 3 have no items; item 2 unused
    path = tmp_path / "train.txt"
    save_lightgcn_txt(sp.csr_matrix(m), path)
    assert path.read_bytes() == b"0 1 5\n2 0 3 4\n"


def test_lightgcn_round_trip_random(tmp_path):
    rng = np.random.default_rng(11)
    m = random_dense(rng, 57, 33, 0.1)
    m[[3, 56], :] = False  # empty users, including the last one
    m[:, 32] = False       # last item unused
    path = tmp_path / "m.txt"
    save_lightgcn_txt(sp.coo_matrix(m), path)
    back = load_lightgcn_txt(path, n_users=57, n_items=33)
    assert_canonical(back, (57, 33))
    np.testing.assert_array_equal(dense(back), m)
    # Without the shape: one more than the largest ids present.
    inferred = load_lightgcn_txt(path)
    users, items = np.nonzero(m)
    assert inferred.shape == (users.max() + 1, items.max() + 1)
    np.testing.assert_array_equal(dense(inferred), m[:users.max() + 1, :items.max() + 1])


def test_lightgcn_parser_details(tmp_path):
    text = "\n 0 4\t2 2\r\n\n3 1\n0 1\n   \n"  # blank lines, tab, CRLF, duplicate, repeated user
    m = load_lightgcn_txt(write(tmp_path, "x.txt", text))
    expected = np.zeros((4, 5), bool)
    expected[0, [1, 2, 4]] = True
    expected[3, 1] = True
    assert_canonical(m, (4, 5))
    np.testing.assert_array_equal(dense(m), expected)


def test_lightgcn_allow_empty_users(tmp_path):
    path = write(tmp_path, "e.txt", "0 1\n5\n")
    m = load_lightgcn_txt(path, allow_empty_users=True)
    assert m.shape == (6, 2) and m.nnz == 1 and m[0, 1]


@pytest.mark.parametrize("text, line, words", [
    ("0 1 2\n1 x 3\n", 2, "'x' is not an integer"),
    ("0 1\n\n-1 2\n", 3, "negative id -1"),
    ("0 1\n2 -3\n", 2, "negative id -3"),
    ("0 1.5\n", 1, "'1.5' is not an integer"),
    ("0 1\n1 2\n\n7\n", 4, "user 7 has no items"),
    ("0 1,2\n", 1, "'1,2' is not an integer"),
    ("0 99999999999\n", 1, "exceeds"),
])
def test_lightgcn_malformed_lines(tmp_path, text, line, words):
    path = write(tmp_path, "bad_train.txt", text)
    with pytest.raises(ValueError, match=words) as excinfo:
        load_lightgcn_txt(path)
    assert_located(excinfo, path, line)


@pytest.mark.parametrize("text", ["", "\n  \n\t\n"])
def test_lightgcn_empty_file(tmp_path, text):
    path = write(tmp_path, "empty.txt", text)
    with pytest.raises(ValueError, match="empty") as excinfo:
        load_lightgcn_txt(path)
    assert_located(excinfo, path, None)


def test_lightgcn_ids_outside_given_shape(tmp_path):
    path = write(tmp_path, "s.txt", "0 1\n1 2 5\n")
    with pytest.raises(ValueError, match="n_items=5") as excinfo:
        load_lightgcn_txt(path, n_items=5)
    assert_located(excinfo, path, 2)
    with pytest.raises(ValueError, match="n_users=1") as excinfo:
        load_lightgcn_txt(path, n_users=1)
    assert_located(excinfo, path, 2)
    with pytest.raises(ValueError, match="n_users"):
        load_lightgcn_txt(path, n_users=0)


def test_missing_paths_are_named(tmp_path):
    missing = tmp_path / "no_such_file.txt"
    for loader in (load_lightgcn_txt, load_csv, load_mat):
        with pytest.raises((OSError, ValueError)) as excinfo:
            loader(missing)
        assert str(missing) in str(excinfo.value)


def test_lightgcn_split_common_shape_and_disjointness(tmp_path):
    train = write(tmp_path, "train.txt", "0 1 2\n1 0\n")
    test = write(tmp_path, "test.txt", "0 7\n3 4\n")
    split = load_lightgcn_split(train, test)
    assert isinstance(split, Split)
    assert split.train.shape == split.test.shape == (4, 8)
    assert sorted(zip(*split.train.nonzero())) == [(0, 1), (0, 2), (1, 0)]
    assert sorted(zip(*split.test.nonzero())) == [(0, 7), (3, 4)]
    overlapping = write(tmp_path, "test2.txt", "0 2\n")
    with pytest.raises(ValueError, match="share 1") as excinfo:
        load_lightgcn_split(train, overlapping)
    assert str(train) in str(excinfo.value) and str(overlapping) in str(excinfo.value)


# ---------------------------------------------------------------------------
# atomic save
# ---------------------------------------------------------------------------

class Boom(RuntimeError):
    pass


def _failing_lines(matrix, users_per_chunk=4096):
    yield "0 1 2\n"
    raise Boom("disk full in the middle of the write")


def test_atomic_save_failure_leaves_nothing(tmp_path, monkeypatch):
    monkeypatch.setattr(loaders, "_lightgcn_lines", _failing_lines)
    target = tmp_path / "out.txt"
    with pytest.raises(Boom):
        save_lightgcn_txt(sp.eye(3, format="csr"), target)
    assert list(tmp_path.iterdir()) == []


def test_atomic_save_failure_keeps_old_content(tmp_path, monkeypatch):
    target = tmp_path / "out.txt"
    target.write_text("9 9\n")
    monkeypatch.setattr(loaders, "_lightgcn_lines", _failing_lines)
    with pytest.raises(Boom):
        save_lightgcn_txt(sp.eye(3, format="csr"), target)
    assert target.read_text() == "9 9\n"
    assert [p.name for p in tmp_path.iterdir()] == ["out.txt"]


@pytest.mark.parametrize("exc", [OSError("rename refused"), KeyboardInterrupt()])
def test_atomic_save_failed_rename_or_interrupt_removes_temp(tmp_path, monkeypatch, exc):
    def failing_replace(src, dst):
        assert Path(src).parent == tmp_path and Path(src).read_text() == "0 0\n1 1\n"
        raise exc
    monkeypatch.setattr(loaders.os, "replace", failing_replace)
    with pytest.raises(type(exc)):
        save_lightgcn_txt(sp.eye(2, format="csr"), tmp_path / "out.txt")
    assert list(tmp_path.iterdir()) == []


def test_atomic_save_permissions_follow_umask(tmp_path):
    target = tmp_path / "out.txt"
    save_lightgcn_txt(sp.eye(2, format="csr"), target)
    reference = tmp_path / "plain.txt"
    reference.write_text("x")
    assert stat.S_IMODE(target.stat().st_mode) == stat.S_IMODE(reference.stat().st_mode)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.txt", "plain.txt"]


def test_save_rejects_empty_matrix(tmp_path):
    with pytest.raises(ValueError, match="no interactions"):
        save_lightgcn_txt(sp.csr_matrix((3, 3)), tmp_path / "e.txt")
    assert list(tmp_path.iterdir()) == []


# ---------------------------------------------------------------------------
# CSV
# ---------------------------------------------------------------------------

def test_csv_without_header(tmp_path):
    path = write(tmp_path, "plain.csv", "0,2\n1,0\n\n0,2\n3,1\n")
    m = load_csv(path)
    expected = np.zeros((4, 3), bool)
    expected[0, 2] = expected[1, 0] = expected[3, 1] = True
    assert_canonical(m, (4, 3))
    np.testing.assert_array_equal(dense(m), expected)


def test_csv_with_header_bom_spaces_and_threshold(tmp_path):
    text = ("\ufeffuserId, movieId, rating, timestamp\n"
            "1, 10, 4.5, 99\n1,3,2.0,98\n2,3,3.5,97\n4,1,1,96\n")
    path = write(tmp_path, "ratings.csv", text)
    everything = load_csv(path)
    assert everything.shape == (5, 11)
    assert sorted(zip(*everything.nonzero())) == [(1, 3), (1, 10), (2, 3), (4, 1)]
    kept = load_csv(path, rating_threshold=3.5)
    assert kept.shape == (5, 11)  # shape from all rows, whatever the threshold
    assert sorted(zip(*kept.nonzero())) == [(1, 10), (2, 3)]
    assert load_csv(path, rating_threshold=10).nnz == 0


def test_csv_given_shape(tmp_path):
    path = write(tmp_path, "s.csv", "user,item\n0,1\n")
    assert load_csv(path, n_users=3, n_items=4).shape == (3, 4)
    with pytest.raises(ValueError) as excinfo:
        load_csv(path, n_items=1)
    assert_located(excinfo, path, 2)


@pytest.mark.parametrize("text, line, words", [
    ("user,item\n0,1\n2\n", 3, "expected 2 fields"),
    ("0,1,5\n1,2\n", 2, "expected 3 fields"),
    ("0,1\n-2,1\n", 2, "negative user id"),
    ("u,i\n0,1\n1,-1\n", 3, "negative item id"),
    ("0,1\n1,a\n", 2, "invalid item id"),
    ("0,1\n1.5,2\n", 2, "invalid user id"),
    ("0,1,5\n1,2,good\n", 2, "rating 'good'"),
    ("0,1,5\n1,2,nan\n", 2, "rating 'nan'"),
    ("0\n", 1, "at least 2 fields"),
])
def test_csv_malformed(tmp_path, text, line, words):
    path = write(tmp_path, "bad.csv", text)
    with pytest.raises(ValueError, match=words) as excinfo:
        load_csv(path)
    assert_located(excinfo, path, line)


@pytest.mark.parametrize("text, kwargs, words", [
    ("", {}, "empty"),
    ("user,item,rating\n\n", {}, "empty"),
    ("0,1\n", {"rating_threshold": 3}, "no rating column"),
])
def test_csv_file_level_errors(tmp_path, text, kwargs, words):
    path = write(tmp_path, "f.csv", text)
    with pytest.raises(ValueError, match=words) as excinfo:
        load_csv(path, **kwargs)
    assert_located(excinfo, path, None)


def test_csv_bad_threshold_argument(tmp_path):
    path = write(tmp_path, "f.csv", "0,1,2\n")
    for bad in (float("nan"), "3", True):
        with pytest.raises(ValueError, match="rating_threshold"):
            load_csv(path, rating_threshold=bad)


# ---------------------------------------------------------------------------
# .mat
# ---------------------------------------------------------------------------

def test_mat_round_trip_and_key(tmp_path):
    rng = np.random.default_rng(5)
    m = random_dense(rng, 20, 30, 0.2)
    path = tmp_path / "d.mat"
    scipy.io.savemat(path, {"data": sp.csc_matrix(m.astype(float)), "other": np.arange(3)})
    loaded = load_mat(path)
    assert_canonical(loaded, (20, 30))
    np.testing.assert_array_equal(dense(loaded), m)
    scipy.io.savemat(path, {"train": m.astype(np.uint8)})  # dense 2-D is accepted too
    np.testing.assert_array_equal(dense(load_mat(path, key="train")), m)


def test_mat_errors(tmp_path):
    path = tmp_path / "d.mat"
    scipy.io.savemat(path, {"train": sp.eye(3, format="csc"), "cube": np.ones((2, 2, 2)),
                            "name": "gowalla", "cell": np.array([[1, 2]], dtype=object),
                            "neg": -sp.eye(2, format="csc")})
    with pytest.raises(ValueError, match=r"no variable 'data'.*'train'") as excinfo:
        load_mat(path)
    assert_located(excinfo, path, None)
    for key in ("cube", "name", "cell"):
        with pytest.raises(ValueError, match="not a 2-D sparse") as excinfo:
            load_mat(path, key=key)
        assert_located(excinfo, path, None)
    with pytest.raises(ValueError, match="negative") as excinfo:
        load_mat(path, key="neg")
    assert_located(excinfo, path, None)
    garbage = write(tmp_path, "garbage.mat", b"this is not a mat file at all" * 10)
    with pytest.raises(ValueError, match="not a readable") as excinfo:
        load_mat(garbage)
    assert_located(excinfo, garbage, None)


# ---------------------------------------------------------------------------
# split
# ---------------------------------------------------------------------------

def reference_n_train(n: int, f: float, rounding: str) -> int:
    x = f * n
    return {"half_even": round(x), "half_up": math.floor(x + 0.5),
            "floor": math.floor(x), "ceil": math.ceil(x)}[rounding]


def matrix_with_all_small_degrees(rng, n_items=40):
    """Users with 0..12 items, several of each, plus random larger ones."""
    degrees = list(range(13)) * 3 + list(rng.integers(13, n_items, size=20))
    m = np.zeros((len(degrees), n_items), bool)
    for u, d in enumerate(degrees):
        m[u, rng.choice(n_items, size=d, replace=False)] = True
    return m


@pytest.mark.parametrize("fraction", [0.8, 0.5, 0.7, 0.25, 0.9])
@pytest.mark.parametrize("rounding", ["half_even", "half_up", "floor", "ceil"])
def test_split_partition_and_counts(fraction, rounding):
    rng = np.random.default_rng(3)
    m = matrix_with_all_small_degrees(rng)
    split = split_per_user(sp.csr_matrix(m), fraction, seed=1, rounding=rounding)
    train, test = dense(split.train), dense(split.test)
    assert_canonical(split.train, m.shape)
    assert_canonical(split.test, m.shape)
    assert not np.any(train & test)
    np.testing.assert_array_equal(train | test, m)
    for u in range(m.shape[0]):
        n = int(m[u].sum())
        assert train[u].sum() == reference_n_train(n, fraction, rounding), (u, n)


def test_rounding_conventions_differ_on_ties_only():
    n = np.arange(200)
    assert np.array_equal(n_train_items(n, 0.8, "half_even"), n_train_items(n, 0.8, "half_up"))
    # 0.5 * 5 = 2.5 is a tie: ties-to-even gives 2, half-up gives 3.
    assert n_train_items([5], 0.5, "half_even")[0] == 2
    assert n_train_items([5], 0.5, "half_up")[0] == 3
    # Documented small users at 0.8: 1 -> 1/0, 2 -> 2/0, 3 -> 2/1, 4 -> 3/1, 5 -> 4/1.
    assert n_train_items([1, 2, 3, 4, 5], 0.8).tolist() == [1, 2, 2, 3, 4]


def test_split_seeds():
    rng = np.random.default_rng(8)
    m = sp.csr_matrix(random_dense(rng, 200, 50, 0.2))
    a = split_per_user(m, seed=7)
    for same in (7, np.int64(7), np.random.SeedSequence(7), np.random.default_rng(7)):
        b = split_per_user(m, seed=same)
        assert (a.train != b.train).nnz == 0 and (a.test != b.test).nnz == 0
    c = split_per_user(m, seed=8)
    assert (a.train != c.train).nnz > 0
    # A Generator is advanced in place: two splits from one generator differ.
    gen = np.random.default_rng(7)
    first, second = split_per_user(m, seed=gen), split_per_user(m, seed=gen)
    assert (first.train != second.train).nnz > 0


def test_split_subsets_are_uniform():
    # 3,000 users with the same 5 items, 3 to train: each of the C(5,3) = 10 subsets
    # should appear with probability 1/10 (chi-square, 9 degrees of freedom).
    n_users = 3000
    m = np.zeros((n_users, 8), bool)
    m[:, [0, 2, 3, 5, 7]] = True
    train = split_per_user(sp.csr_matrix(m), 0.6, seed=123).train
    counts = Counter(tuple(train.indices[train.indptr[u]:train.indptr[u + 1]])
                     for u in range(n_users))
    assert set(counts) == set(itertools.combinations([0, 2, 3, 5, 7], 3))
    observed = np.array(list(counts.values()))
    p_value = scipy.stats.chisquare(observed).pvalue
    assert p_value > 1e-4, (p_value, counts)


@pytest.mark.parametrize("kwargs, name", [
    ({"train_fraction": 0.0}, "train_fraction"),
    ({"train_fraction": 1.0}, "train_fraction"),
    ({"train_fraction": -0.2}, "train_fraction"),
    ({"train_fraction": float("nan")}, "train_fraction"),
    ({"train_fraction": "0.8"}, "train_fraction"),
    ({"rounding": "bankers"}, "rounding"),
    ({"seed": -1}, "seed"),
    ({"seed": 1.5}, "seed"),
    ({"seed": True}, "seed"),
])
def test_split_bad_arguments(kwargs, name):
    with pytest.raises(ValueError, match=name):
        split_per_user(sp.eye(3, format="csr"), **kwargs)


# ---------------------------------------------------------------------------
# Gowalla (paper Table 1)
# ---------------------------------------------------------------------------

def test_gowalla_table1(gowalla_path):
    m = load_mat(gowalla_path)
    assert m.shape == (29858, 40988)
    assert m.nnz == 1027464
    assert_canonical(m[:50])
    degrees = np.diff(m.indptr)
    split = split_per_user(m, 0.8, seed=0)
    assert split.train.nnz == 822358
    assert split.test.nnz == 205106
    np.testing.assert_array_equal(np.diff(split.train.indptr),
                                  [round(0.8 * int(n)) for n in degrees])
    assert split.train.multiply(split.test).nnz == 0
    assert (split.train + split.test != m).nnz == 0
    # Floor and ceil conventions would not reproduce Table 1.
    assert split_per_user(m, 0.8, seed=0, rounding="floor").train.nnz != 822358
    assert split_per_user(m, 0.8, seed=0, rounding="ceil").train.nnz != 822358


# ---------------------------------------------------------------------------
# planted data
# ---------------------------------------------------------------------------

def test_planted_shapes_determinism_and_activity():
    a = planted_dataset(300, 200, seed=5)
    b = planted_dataset(300, 200, seed=np.random.SeedSequence(5))
    c = planted_dataset(300, 200, seed=6)
    assert isinstance(a, PlantedData)
    assert_canonical(a.matrix, (300, 200))
    assert a.shape == (300, 200)
    assert a.user_factors.shape == (300, 8) and a.item_factors.shape == (200, 8)
    assert a.item_bias.shape == (200,)
    assert a.scores().shape == (300, 200) and a.scores(3).shape == (200,)
    np.testing.assert_allclose(a.scores()[[4, 9]], a.scores([4, 9]))
    np.testing.assert_allclose(
        a.scores(), a.user_factors @ a.item_factors.T / a.temperature + a.item_bias)
    assert (a.matrix != b.matrix).nnz == 0
    np.testing.assert_array_equal(a.user_factors, b.user_factors)
    assert (a.matrix != c.matrix).nnz > 0
    degrees = np.diff(a.matrix.indptr)
    assert degrees.min() >= 5
    # mean items per user = density * n_items = 6 in expectation; SE ~ 0.1.
    assert abs(degrees.mean() - 0.03 * 200) < 1.0
    # Zipf bias: exp(bias) is proportional to 1 / rank for a permutation of ranks.
    ranks = np.sort(np.exp(-(a.item_bias - a.item_bias.max())))
    np.testing.assert_allclose(ranks, np.arange(1, 201), rtol=1e-9)


def _pair_probabilities(scores):
    """P(item set = {i, j}) for two successive draws without replacement."""
    p = np.exp(scores - scores.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    n_items = scores.shape[1]
    out = {}
    for i, j in itertools.combinations(range(n_items), 2):
        out[(i, j)] = float(np.sum(p[:, i] * p[:, j] / (1 - p[:, i])
                                   + p[:, j] * p[:, i] / (1 - p[:, j])))
    return out


def test_planted_sampling_law_is_plackett_luce():
    # Each of 20,000 users draws exactly 2 of 4 items without replacement from
    # softmax(true scores); the expected count of each pair is an independent sum.
    d = planted_dataset(20000, 4, rank=2, density=0.25, popularity_exponent=1.0,
                        temperature=0.7, seed=9, min_items=2)
    assert np.all(np.diff(d.matrix.indptr) == 2)
    expected = _pair_probabilities(d.scores())
    observed = Counter(tuple(d.matrix.indices[2 * u:2 * u + 2]) for u in range(20000))
    pairs = sorted(expected)
    obs = np.array([observed[p] for p in pairs], float)
    exp = np.array([expected[p] for p in pairs])
    p_value = scipy.stats.chisquare(obs, exp).pvalue
    assert p_value > 1e-4, (p_value, obs, exp)
    # The same data under a wrong law (sampling with the scores ignored) is rejected.
    assert scipy.stats.chisquare(obs, np.full(6, 20000 / 6)).pvalue < 1e-6


def test_planted_truth_ranks_held_out_items():
    d = planted_dataset(2000, 1000, seed=1)
    split = split_per_user(d.matrix, 0.8, seed=2)
    train, test = dense(split.train), dense(split.test)
    k = 20

    def recall(scores):
        scores = np.where(train, -np.inf, scores)
        top = np.argpartition(-scores, k, axis=1)[:, :k]
        hits = np.take_along_axis(test, top, axis=1).sum(axis=1)
        return np.mean(hits / test.sum(axis=1))

    assert test.sum(axis=1).min() >= 1  # min_items = 5 leaves a test item to everyone
    truth = recall(d.scores())
    popularity = recall(np.broadcast_to(train.sum(axis=0) + np.arange(1000) * 1e-6,
                                        train.shape))
    # A random ranking of the unseen items has expected Recall@20 = 20 / n_unseen.
    random = np.mean(k / (1000 - train.sum(axis=1)))
    # Measured with these seeds: truth 0.75, popularity 0.16, random 0.020. The
    # per-user recalls lie in [0, 1], so the standard error of each mean over 2,000
    # users is below 0.011; the thresholds leave > 10 standard errors of room.
    assert truth > 0.6
    assert truth > 3 * popularity
    assert truth > 20 * random


@pytest.mark.parametrize("kwargs, name", [
    ({"n_users": 0}, "n_users"),
    ({"n_items": -3}, "n_items"),
    ({"n_items": 2.5}, "n_items"),
    ({"rank": 0}, "rank"),
    ({"density": 0.0}, "density"),
    ({"density": 1.5}, "density"),
    ({"popularity_exponent": -1.0}, "popularity_exponent"),
    ({"temperature": 0.0}, "temperature"),
    ({"temperature": float("inf")}, "temperature"),
    ({"min_items": 0}, "min_items"),
    ({"min_items": 51}, "min_items"),
    ({"dispersion": 0.0}, "dispersion"),
    ({"seed": "abc"}, "seed"),
])
def test_planted_bad_arguments(kwargs, name):
    arguments = {"n_users": 10, "n_items": 50} | kwargs
    with pytest.raises(ValueError, match=name):
        planted_dataset(**arguments)
