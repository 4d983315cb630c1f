"""Interaction data loaders, the canonical matrix form and the atomic LightGCN writer.

Every interaction matrix produced by :mod:`training.loaders`, :mod:`training.split`
and :mod:`training.planted` is a canonical ``scipy.sparse.csr_matrix``
of shape ``(n_users, n_items)`` and dtype ``bool``: one stored ``True`` per
observed (user, item) pair, column indices sorted within each row, no duplicate
entries and no explicitly stored zeros (``has_canonical_format`` is true).
``bool`` was chosen because the data are binary and because it matches the
``y_true`` convention of :mod:`theory.metrics` (``matrix[u].toarray().ravel()`` is
a ready ``y_true``). Sums (``matrix.sum(axis=1)``) are integers and products with
float arrays are floats; cast with ``matrix.astype(np.float32)`` before sparse x
sparse products whose *counts* matter (``bool @ bool`` is a logical product).

Public API
----------
to_interactions
    Validate any 2-D sparse or dense array and return the canonical form.
load_mat, load_lightgcn_txt, load_lightgcn_split, load_csv
    Loaders for the authors' ``.mat`` files, LightGCN text files and CSV files.
save_lightgcn_txt
    Atomic writer of the LightGCN text format.

See also :mod:`training.split` (the paper's per-user split), :mod:`training.planted`
(synthetic data) and :mod:`training.datasets` (data sets by name).

Malformed input raises ``ValueError`` whose message names the file (and the line,
``"<path>, line <n>: ..."``, where a line number is meaningful). A path that
cannot be opened raises the ``OSError`` of the operating system, which names it.
"""
from __future__ import annotations

import csv
import math
import os
import re
from collections.abc import Iterator
from typing import TYPE_CHECKING

import numpy as np
import scipy.io
import scipy.sparse as sp

from simulations.files import atomic_path
from theory.validation import check_int, check_real

if TYPE_CHECKING:  # training.split imports this module; see load_lightgcn_split
    from training.split import Split

__all__ = [
    "canonical_csr",
    "interactions_from_pairs",
    "load_csv",
    "load_lightgcn_split",
    "load_lightgcn_txt",
    "load_mat",
    "save_lightgcn_txt",
    "to_interactions",
]

#: Largest accepted user or item id (ids index int32 arrays).
MAX_ID = 2**31 - 2


# ---------------------------------------------------------------------------
# Canonical form
# ---------------------------------------------------------------------------

def interactions_from_pairs(rows, cols, shape: tuple[int, int]) -> sp.csr_matrix:
    """Canonical boolean csr matrix of ``shape`` from (possibly repeated, unsorted) pairs.

    Examples
    --------
    >>> interactions_from_pairs([1, 0, 1], [2, 0, 2], (2, 3)).toarray()
    array([[ True, False, False],
           [False, False,  True]])
    """
    n_users, n_items = int(shape[0]), int(shape[1])
    rows = np.asarray(rows, dtype=np.int64)
    cols = np.asarray(cols, dtype=np.int64)
    keys = np.sort(rows * n_items + cols)  # np.unique is several times slower here
    if keys.size > 1:
        distinct = np.empty(keys.size, dtype=bool)
        distinct[0] = True
        np.not_equal(keys[1:], keys[:-1], out=distinct[1:])
        keys = keys[distinct]
    rows, cols = np.divmod(keys, n_items) if n_items else (keys, keys)
    indptr = np.zeros(n_users + 1, dtype=np.int64)
    np.cumsum(np.bincount(rows, minlength=n_users), out=indptr[1:])
    return canonical_csr(np.ones(keys.size, dtype=bool), cols, indptr, (n_users, n_items))


def canonical_csr(data, indices, indptr, shape) -> sp.csr_matrix:
    """A csr matrix from arrays already in canonical order (sorted, unique indices per row)."""
    out = sp.csr_matrix((data, indices, indptr), shape=shape)
    out.has_canonical_format = True
    return out


def to_interactions(matrix, *, name: str = "matrix") -> sp.csr_matrix:
    """Validate a 2-D array and return it as a canonical boolean csr matrix.

    Parameters
    ----------
    matrix : scipy sparse matrix/array or array_like
        A 2-D array of real, finite, non-negative values. Every stored non-zero
        value is one interaction (ratings or counts become ``True``); duplicate
        entries of a COO matrix are merged; explicit zeros are dropped.
    name : str, optional
        How to call the argument in error messages.

    Returns
    -------
    scipy.sparse.csr_matrix
        Shape ``matrix.shape``, dtype ``bool``, sorted indices, no duplicates.

    Raises
    ------
    ValueError
        If the input is not 2-D, not real-valued, or holds negative or non-finite
        values.
    """
    if sp.issparse(matrix):
        if len(matrix.shape) != 2:
            raise ValueError(f"{name} must be 2-D, got shape {matrix.shape}")
        if (matrix.format == "csr" and matrix.dtype == np.bool_
                and matrix.has_canonical_format and np.all(matrix.data)):
            # Already canonical: copy without re-sorting.
            return canonical_csr(matrix.data.copy(), matrix.indices.copy(), matrix.indptr.copy(),
                        matrix.shape)
        coo = sp.coo_matrix(matrix)
        rows, cols, values = coo.row, coo.col, coo.data
    else:
        try:
            dense = np.asarray(matrix)
        except Exception as exc:  # pragma: no cover - exotic inputs
            raise ValueError(f"{name} must be a 2-D array or sparse matrix: {exc}") from exc
        if dense.ndim != 2:
            raise ValueError(f"{name} must be 2-D, got an array of shape {dense.shape}")
        if dense.dtype.kind not in "biuf":
            raise ValueError(f"{name} must hold real numbers, got dtype {dense.dtype}")
        rows, cols = np.nonzero(dense)
        values = dense[rows, cols]
    if values.dtype.kind not in "biuf":
        raise ValueError(f"{name} must hold real numbers, got dtype {values.dtype}")
    if values.dtype.kind == "f" and not np.all(np.isfinite(values)):
        raise ValueError(f"{name} holds non-finite values (NaN or inf)")
    if values.dtype.kind in "if" and np.any(values < 0):
        raise ValueError(f"{name} holds negative values; expected a binary (0/1) "
                         "or non-negative interaction matrix")
    keep = values != 0
    return interactions_from_pairs(rows[keep], cols[keep], matrix.shape)


# ---------------------------------------------------------------------------
# Loaders
# ---------------------------------------------------------------------------

def _where(path, lineno: int | None = None) -> str:
    return f"{path}, line {lineno}" if lineno is not None else f"{path}"


def _check_size(value, name: str) -> int | None:
    """A positive int or None (for optional shapes)."""
    return None if value is None else check_int(value, name, low=1)


def load_mat(path, key: str = "data") -> sp.csr_matrix:
    """Load an interaction matrix stored in a MATLAB ``.mat`` file.

    This is the format of the authors' repository (``gowalla.mat``: a
    29,858 x 40,988 sparse matrix with 1,027,464 ones under the key ``data``).

    Parameters
    ----------
    path : str or os.PathLike
        The ``.mat`` file (MATLAB v4/v5/v6/v7; v7.3 HDF5 files are not supported).
    key : str, optional
        Name of the variable holding the matrix. Default ``"data"``.

    Returns
    -------
    scipy.sparse.csr_matrix
        Canonical boolean interaction matrix (see :func:`to_interactions`).

    Raises
    ------
    OSError
        If the file cannot be opened (the message names the path).
    ValueError
        If the file is not a readable ``.mat`` file, has no variable ``key``
        (the message lists the variables it has), or the variable is not a 2-D
        sparse or numeric matrix of non-negative finite values.
    """
    path = os.fspath(path)
    with open(path, "rb") as handle:  # OSError names the path
        try:
            contents = scipy.io.loadmat(handle)
        except Exception as exc:  # scipy raises ValueError, TypeError, NotImplementedError...
            raise ValueError(f"{path}: not a readable MATLAB .mat file ({exc})") from exc
    if key not in contents:
        available = sorted(k for k in contents if not k.startswith("__"))
        raise ValueError(f"{path}: no variable {key!r} in the .mat file "
                         f"(variables present: {available})")
    value = contents[key]
    if sp.issparse(value):
        pass
    elif isinstance(value, np.ndarray) and value.ndim == 2 and value.dtype.kind in "biuf":
        pass
    else:
        what = (f"an array of shape {value.shape} and dtype {value.dtype}"
                if isinstance(value, np.ndarray) else type(value).__name__)
        raise ValueError(f"{path}: variable {key!r} is not a 2-D sparse or numeric "
                         f"matrix (got {what})")
    try:
        return to_interactions(value, name=f"variable {key!r}")
    except ValueError as exc:
        raise ValueError(f"{path}: {exc}") from exc


_LIGHTGCN_LINE = re.compile(rb"[ \t]*[0-9]+(?:[ \t]+[0-9]+)*[ \t]*\r?\n?")


def _diagnose_tokens(tokens: list[bytes]) -> str:
    """Explain why a line of integer ids did not parse."""
    for token in tokens:
        text = token.decode("utf-8", errors="replace")
        try:
            value = int(text)
        except ValueError:
            return f"{text!r} is not an integer id"
        if value < 0:
            return f"negative id {value}"
        if not token.isdigit():
            return f"{text!r} is not a plain non-negative integer id"
    return "unexpected characters"  # pragma: no cover - regex and tokens disagree


def _parse_lightgcn(path, n_users, n_items, allow_empty_users):
    """Parse a LightGCN file into (user ids, item ids, largest user, largest item)."""
    users: list[int] = []
    counts: list[int] = []
    items: list[int] = []
    n_lines = 0
    with open(path, "rb") as handle:
        for lineno, raw in enumerate(handle, start=1):
            if not raw.strip():
                continue
            if _LIGHTGCN_LINE.fullmatch(raw) is None:
                problem = _diagnose_tokens(raw.split())
                raise ValueError(f"{_where(path, lineno)}: {problem} "
                                 "(expected 'user item item ...' as non-negative integers)")
            ids = list(map(int, raw.split()))
            user, line_items = ids[0], ids[1:]
            if not line_items and not allow_empty_users:
                raise ValueError(f"{_where(path, lineno)}: user {user} has no items "
                                 "(pass allow_empty_users=True to accept such lines)")
            top = max(ids)
            if top > MAX_ID:
                raise ValueError(f"{_where(path, lineno)}: id {top} exceeds {MAX_ID}")
            if n_users is not None and user >= n_users:
                raise ValueError(f"{_where(path, lineno)}: user id {user} is not below "
                                 f"n_users={n_users}")
            if n_items is not None and line_items and max(line_items) >= n_items:
                raise ValueError(f"{_where(path, lineno)}: item id {max(line_items)} is not "
                                 f"below n_items={n_items}")
            users.append(user)
            counts.append(len(line_items))
            items.extend(line_items)
            n_lines += 1
    if n_lines == 0:
        raise ValueError(f"{path}: empty file (no interaction lines)")
    user_arr = np.asarray(users, dtype=np.int64)
    item_arr = np.asarray(items, dtype=np.int64)
    rows = np.repeat(user_arr, np.asarray(counts, dtype=np.int64))
    max_item = int(item_arr.max()) if item_arr.size else -1
    return rows, item_arr, int(user_arr.max()), max_item


def load_lightgcn_txt(path, n_users: int | None = None, n_items: int | None = None, *,
                      allow_empty_users: bool = False) -> sp.csr_matrix:
    """Load a LightGCN-style text file (one line ``"user item item ..."`` per user).

    Ids are non-negative decimal integers separated by spaces or tabs; blank lines
    are skipped; a user appearing on several lines gets the union of the items and
    repeated items are merged.

    Parameters
    ----------
    path : str or os.PathLike
        The text file.
    n_users, n_items : int, optional
        The shape of the result. By default one more than the largest user and
        item id in the file; give both to make several files share one shape.
    allow_empty_users : bool, optional
        Accept lines holding only a user id (that user gets no items). By default
        such a line is malformed input.

    Returns
    -------
    scipy.sparse.csr_matrix
        Canonical boolean interaction matrix.

    Raises
    ------
    OSError
        If the file cannot be opened (the message names the path).
    ValueError
        With ``"<path>, line <n>: ..."`` for a token that is not a non-negative
        integer, a user without items, or an id outside ``n_users``/``n_items``;
        with ``"<path>: ..."`` for a file without any interaction line; or when
        ``n_users``/``n_items`` are not positive integers.

    Examples
    --------
    >>> import pathlib, tempfile
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "train.txt"
    >>> _ = path.write_text("0 1 2\\n1 0\\n")
    >>> load_lightgcn_txt(path).toarray()
    array([[False,  True,  True],
           [ True, False, False]])
    """
    n_users = _check_size(n_users, "n_users")
    n_items = _check_size(n_items, "n_items")
    path = os.fspath(path)
    rows, cols, max_user, max_item = _parse_lightgcn(path, n_users, n_items, allow_empty_users)
    shape = (n_users if n_users is not None else max_user + 1,
             n_items if n_items is not None else max(max_item + 1, 1))
    return interactions_from_pairs(rows, cols, shape)


def load_lightgcn_split(train_path, test_path, n_users: int | None = None,
                        n_items: int | None = None, *, allow_empty_users: bool = False) -> Split:
    """Load a LightGCN ``train.txt`` / ``test.txt`` pair with one common shape.

    Parameters
    ----------
    train_path, test_path : str or os.PathLike
        The two text files (format of :func:`load_lightgcn_txt`).
    n_users, n_items : int, optional
        The common shape; by default one more than the largest id in either file.
    allow_empty_users : bool, optional
        As in :func:`load_lightgcn_txt`.

    Returns
    -------
    Split
        ``Split(train, test)`` with equal shapes.

    Raises
    ------
    ValueError
        As :func:`load_lightgcn_txt`, and if the two files share a (user, item)
        pair (a train/test split must be disjoint).
    """
    # Imported here because training.split imports this module (to_interactions).
    from training.split import Split

    n_users = _check_size(n_users, "n_users")
    n_items = _check_size(n_items, "n_items")
    train_path, test_path = os.fspath(train_path), os.fspath(test_path)
    parsed = [_parse_lightgcn(p, n_users, n_items, allow_empty_users)
              for p in (train_path, test_path)]
    shape = (n_users if n_users is not None else max(p[2] for p in parsed) + 1,
             n_items if n_items is not None else max(max(p[3] for p in parsed) + 1, 1))
    train, test = (interactions_from_pairs(p[0], p[1], shape) for p in parsed)
    overlap = train.multiply(test).nnz
    if overlap:
        raise ValueError(f"{train_path} and {test_path} share {overlap} (user, item) "
                         "pairs; a train/test split must be disjoint")
    return Split(train, test)


_INT_FIELD = re.compile(r"[0-9]+")


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def load_csv(path, rating_threshold: float | None = None, *, n_users: int | None = None,
             n_items: int | None = None, delimiter: str = ",") -> sp.csr_matrix:
    """Load interactions from a CSV file of ``user,item[,rating[,...]]`` rows.

    Parameters
    ----------
    path : str or os.PathLike
        The CSV file (UTF-8, an optional byte-order mark is ignored). The first
        non-blank row is a header when none of its fields is a number. Ids are
        non-negative decimal integers used as they are (no re-indexing). The third
        column, when present, is a rating (a finite float); further columns
        (e.g. a timestamp) are ignored. Every row must have as many fields as the
        first. Blank lines are skipped; repeated pairs are merged.
    rating_threshold : float, optional
        Keep only rows whose rating is ``>= rating_threshold``; requires a rating
        column. The shape is computed from all rows, so ids keep their meaning
        whatever the threshold.
    n_users, n_items : int, optional
        The shape of the result; by default one more than the largest ids.
    delimiter : str, optional
        Field separator, ``","`` by default.

    Returns
    -------
    scipy.sparse.csr_matrix
        Canonical boolean interaction matrix.

    Raises
    ------
    OSError
        If the file cannot be opened (the message names the path).
    ValueError
        With ``"<path>, line <n>: ..."`` for a row with a wrong number of fields,
        a non-integer or negative id, an id outside ``n_users``/``n_items``, or a
        non-numeric rating; ``"<path>: ..."`` for a file without data rows, or a
        threshold on a file without ratings; and for invalid arguments.

    Examples
    --------
    >>> import pathlib, tempfile
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "ratings.csv"
    >>> _ = path.write_text("user,item,rating\\n0,1,5\\n1,0,2\\n1,2,4\\n")
    >>> load_csv(path, rating_threshold=4).toarray()
    array([[False,  True, False],
           [False, False,  True]])
    """
    n_users = _check_size(n_users, "n_users")
    n_items = _check_size(n_items, "n_items")
    if rating_threshold is not None:
        rating_threshold = check_real(rating_threshold, "rating_threshold")
    path = os.fspath(path)
    linenos, rows = _read_csv_rows(path, delimiter)
    users = _parse_ids(path, linenos, [r[0] for r in rows], "user", n_users, "n_users")
    items = _parse_ids(path, linenos, [r[1] for r in rows], "item", n_items, "n_items")
    has_ratings = len(rows[0]) >= 3
    if rating_threshold is not None and not has_ratings:
        raise ValueError(f"{path}: rating_threshold given but the file has no rating column")
    shape = (n_users if n_users is not None else int(users.max()) + 1,
             n_items if n_items is not None else int(items.max()) + 1)
    if has_ratings:  # checked even without a threshold: a bad rating is malformed input
        ratings = _parse_ratings(path, linenos, [r[2] for r in rows])
        if rating_threshold is not None:
            keep = ratings >= rating_threshold
            users, items = users[keep], items[keep]
    return interactions_from_pairs(users, items, shape)


def _read_csv_rows(path: str, delimiter: str) -> tuple[list[int], list[list[str]]]:
    """The data rows of a CSV file (stripped fields) and their line numbers.

    Skips blank lines and a header (a first row without a number); every row must have as many
    fields as the first, at least two.
    """
    linenos: list[int] = []
    rows: list[list[str]] = []
    n_fields = None
    with open(path, encoding="utf-8-sig", newline="") as handle:
        reader = csv.reader(handle, delimiter=delimiter)
        try:
            for row in reader:
                fields = [f.strip() for f in row]
                if not any(fields):
                    continue
                if n_fields is None:
                    n_fields = len(fields)
                    if n_fields < 2:
                        raise ValueError(f"{_where(path, reader.line_num)}: expected at least 2 "
                                         f"fields (user{delimiter}item), got {n_fields}")
                    if not any(_is_number(f) for f in fields):
                        continue  # header
                if len(fields) != n_fields:
                    raise ValueError(f"{_where(path, reader.line_num)}: expected {n_fields} "
                                     f"fields, got {len(fields)}")
                linenos.append(reader.line_num)
                rows.append(fields)
        except csv.Error as exc:
            raise ValueError(f"{_where(path, reader.line_num)}: {exc}") from exc
        except UnicodeDecodeError as exc:
            raise ValueError(f"{path}: not UTF-8 text ({exc})") from exc
    if not rows:
        raise ValueError(f"{path}: empty file (no data rows)")
    return linenos, rows


def _parse_ids(path: str, linenos: list[int], texts: list[str], what: str,
               limit: int | None, limit_name: str) -> np.ndarray:
    """One id column as int64: non-negative decimal integers <= MAX_ID (and < ``limit``)."""
    for lineno, text in zip(linenos, texts):
        if not _INT_FIELD.fullmatch(text):
            kind = "negative" if text.startswith("-") and _is_number(text) else "invalid"
            raise ValueError(f"{_where(path, lineno)}: {kind} {what} id {text!r} "
                             "(expected a non-negative integer)")
    # Python ints first: an id beyond int64 must be reported, not wrapped.
    ids = np.fromiter((min(int(t), MAX_ID + 1) for t in texts), dtype=np.int64, count=len(texts))
    too_large = np.flatnonzero(ids > MAX_ID)
    if too_large.size:
        row = int(too_large[0])
        raise ValueError(f"{_where(path, linenos[row])}: id {int(texts[row])} exceeds {MAX_ID}")
    if limit is not None:
        outside = np.flatnonzero(ids >= limit)
        if outside.size:
            row = int(outside[0])
            raise ValueError(f"{_where(path, linenos[row])}: {what} id {ids[row]} is not below "
                             f"{limit_name}={limit}")
    return ids


def _parse_ratings(path: str, linenos: list[int], texts: list[str]) -> np.ndarray:
    """The rating column as float64; each a finite number."""
    ratings = np.empty(len(texts))
    for row, text in enumerate(texts):
        try:
            ratings[row] = float(text)
        except ValueError:
            ratings[row] = math.nan
        if not math.isfinite(ratings[row]):
            raise ValueError(f"{_where(path, linenos[row])}: rating {text!r} is not a finite number")
    return ratings


# ---------------------------------------------------------------------------
# Atomic writer
# ---------------------------------------------------------------------------

def _lightgcn_lines(matrix: sp.csr_matrix, users_per_chunk: int = 4096) -> Iterator[str]:
    """Yield the LightGCN text of ``matrix`` in chunks of lines (users without items skipped)."""
    indptr, indices = matrix.indptr, matrix.indices
    n_users = matrix.shape[0]
    for start in range(0, n_users, users_per_chunk):
        lines = []
        for user in range(start, min(start + users_per_chunk, n_users)):
            row = indices[indptr[user]:indptr[user + 1]]
            if row.size:
                lines.append(f"{user} " + " ".join(map(str, row.tolist())) + "\n")
        if lines:
            yield "".join(lines)


def save_lightgcn_txt(matrix, path) -> None:
    """Write an interaction matrix in the LightGCN text format, atomically.

    One line ``"user item item ..."`` per user with at least one item, items in
    increasing order, users in increasing order, ``"\\n"`` line endings. The text
    goes to a temporary file in the target's directory, is flushed and fsynced,
    then renamed over ``path`` with :func:`os.replace`; on any error or interrupt
    the temporary file is removed and ``path`` is left as it was (absent or with
    its old content).

    Users without items are not written, and the format does not store the
    shape: ``load_lightgcn_txt(path, n_users=m.shape[0], n_items=m.shape[1])``
    returns the saved matrix exactly.

    Parameters
    ----------
    matrix : scipy sparse matrix or array_like
        Interaction matrix (validated with :func:`to_interactions`).
    path : str or os.PathLike
        Target file.

    Raises
    ------
    ValueError
        If ``matrix`` is invalid or has no interaction (an empty file would not
        load back).
    OSError
        If the directory is not writable or the rename fails.
    """
    matrix = to_interactions(matrix)
    if matrix.nnz == 0:
        raise ValueError("matrix has no interactions; the LightGCN format cannot represent it")
    with atomic_path(path, fsync=True) as tmp:
        with open(tmp, "w", encoding="ascii", newline="\n") as handle:
            for chunk in _lightgcn_lines(matrix):
                handle.write(chunk)
