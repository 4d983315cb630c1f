"""The paper's random per-user train/test split (Table 1 protocol).

Public API
----------
split_per_user, Split
    The split and the train/test pair it returns.
n_train_items
    How many of a user's items go to train, under a rounding convention.

Matrices are in the canonical boolean csr form described in :mod:`training.loaders`.
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np
import scipy.sparse as sp

from simulations.rng import as_generator
from theory.validation import check_choice, check_real
from training.loaders import canonical_csr, to_interactions

__all__ = [
    "ROUNDING_MODES",
    "Split",
    "n_train_items",
    "split_per_user",
]

#: Rounding conventions accepted by :func:`split_per_user`.
ROUNDING_MODES = ("half_even", "half_up", "floor", "ceil")


class Split(NamedTuple):
    """A train/test pair of interaction matrices of the same shape.

    Attributes
    ----------
    train, test : scipy.sparse.csr_matrix
        Canonical boolean interaction matrices (see the module docstring). For
        splits made by :func:`split_per_user` they are disjoint and their union is
        the input matrix.
    """

    train: sp.csr_matrix
    test: sp.csr_matrix


# ---------------------------------------------------------------------------
# Splitting
# ---------------------------------------------------------------------------

def n_train_items(n_items_per_user, train_fraction: float = 0.8,
                  rounding: str = "half_even") -> np.ndarray:
    """Number of training items per user under a rounding convention.

    Parameters
    ----------
    n_items_per_user : array_like of int
        Interactions per user ``n_u``.
    train_fraction : float, optional
        The fraction ``f`` in (0, 1).
    rounding : {"half_even", "half_up", "floor", "ceil"}, optional
        How to round the float product ``x = f * n_u`` (computed in float64, like
        the authors' Python ``round(ratio * len(row))``): ``"half_even"`` is
        ``numpy.rint``/Python ``round`` (ties to even), ``"half_up"`` is
        ``floor(x + 0.5)``, ``"floor"`` and ``"ceil"`` as named.

    Returns
    -------
    numpy.ndarray of int64

    Examples
    --------
    >>> n_train_items([5, 2, 3], 0.8).tolist()   # 4.0, 1.6 and 2.4 rounded half to even
    [4, 2, 2]
    """
    f = check_real(train_fraction, "train_fraction", low=0.0, high=1.0, include_low=False,
                   include_high=False)
    check_choice(rounding, "rounding", ROUNDING_MODES)
    x = f * np.asarray(n_items_per_user, dtype=np.float64)
    if rounding == "half_even":
        out = np.rint(x)
    elif rounding == "half_up":
        out = np.floor(x + 0.5)
    elif rounding == "floor":
        out = np.floor(x)
    else:
        out = np.ceil(x)
    return out.astype(np.int64)


def split_per_user(matrix, train_fraction: float = 0.8, seed=0, *,
                   rounding: str = "half_even") -> Split:
    """Random per-user train/test split (the paper's Table 1 protocol).

    For each user with ``n_u`` interactions, a uniformly random subset of
    ``n_train(n_u)`` of them goes to train and the rest to test, where
    ``n_train(n_u) = round(train_fraction * n_u)`` with Python's ``round`` on the
    float product (ties to even). This is the authors' code
    (``random.sample(range(n_u), round(ratio * n_u))`` in their
    ``dataloader.py``) and reproduces Table 1 on their Gowalla file exactly:
    822,358 train / 205,106 test interactions (floor gives 810,128 / 217,336,
    ceil 833,031 / 194,433). At ``train_fraction = 0.8`` "half_even" and
    "half_up" coincide for every ``n_u``, since ``0.8 n_u`` is never a half
    integer; other fractions (e.g. 0.5 with odd ``n_u``) can tie, hence the
    ``rounding`` option.

    Small users: at 0.8 a user with 1 or 2 interactions keeps all of them in
    train (``round(0.8) = 1``, ``round(1.6) = 2``) and has no test item; 3 and 4
    interactions give one test item. Users with no interaction stay empty. Such
    users do not count in metrics averaged "over users with test items".

    Parameters
    ----------
    matrix : scipy sparse matrix or array_like
        Interaction matrix (validated with :func:`to_interactions`).
    train_fraction : float, optional
        Fraction in (0, 1) of each user's items that go to train. Default 0.8.
    seed : int, None, numpy.random.SeedSequence or numpy.random.Generator, optional
        Normalised by :func:`simulations.rng.as_generator` (the package's one seed
        normaliser): a Generator is used (and advanced) in place; None draws fresh
        entropy from the operating system (not reproducible). The split is a deterministic function of the seed and the
        matrix (one uniform 64-bit key per interaction in CSR order; each user's
        items with the ``n_train`` smallest keys go to train).
    rounding : {"half_even", "half_up", "floor", "ceil"}, optional
        Rounding of ``train_fraction * n_u``; see :func:`n_train_items`.

    Returns
    -------
    Split
        ``Split(train, test)``: canonical boolean csr matrices of the input's
        shape, disjoint, whose union is the input.

    Raises
    ------
    ValueError
        If ``train_fraction`` is not in (0, 1), ``rounding`` is unknown, the seed
        has an unsupported type, or the matrix is invalid.

    Examples
    --------
    >>> import scipy.sparse as sp
    >>> m = sp.csr_matrix(np.array([[1, 1, 1, 1, 1], [1, 0, 1, 0, 0]], bool))
    >>> split = split_per_user(m, 0.8, seed=0)
    >>> split.train.sum(axis=1).A1.tolist(), split.test.sum(axis=1).A1.tolist()
    ([4, 2], [1, 0])
    >>> (split.train + split.test != m).nnz   # disjoint, and their union is the input
    0
    """
    n_train_items(0, train_fraction, rounding)  # validates both arguments
    rng = as_generator(seed)
    m = to_interactions(matrix)
    n_users = m.shape[0]
    counts = np.diff(m.indptr)
    n_train = n_train_items(counts, train_fraction, rounding)
    # One uniform 64-bit key per interaction in CSR order; the user id goes in the
    # high bits so that one integer sort orders by (user, key) exactly as a lexsort
    # would (ties of the remaining >= 33 random bits are astronomically rare and are
    # broken by position). After the sort user u still occupies indptr[u]:indptr[u+1].
    shift = np.uint64(max(n_users, 1).bit_length())
    keys = rng.integers(0, 2**64 - 1, size=m.nnz, dtype=np.uint64, endpoint=True)
    rows = np.repeat(np.arange(n_users, dtype=np.int64), counts)
    keys = (rows.astype(np.uint64) << (np.uint64(64) - shift)) | (keys >> shift)
    order = np.argsort(keys, kind="stable")
    rank_in_row = np.arange(m.nnz, dtype=np.int64) - m.indptr[rows]
    in_train = np.empty(m.nnz, dtype=bool)
    in_train[order] = rank_in_row < n_train[rows]

    def part(mask, per_user):
        indptr = np.zeros(n_users + 1, dtype=np.int64)
        np.cumsum(per_user, out=indptr[1:])
        return canonical_csr(np.ones(int(indptr[-1]), dtype=bool), m.indices[mask], indptr, m.shape)

    return Split(part(in_train, n_train), part(~in_train, counts - n_train))
