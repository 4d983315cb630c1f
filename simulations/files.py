"""One way to write a file: to a temporary file beside the target, then a rename.

A reader never sees a half-written file, and an error or an interrupt leaves the target as it
was (absent or with its old content) and no temporary file behind.  Every module of the
package that writes (results CSVs, sweep caches, figures, reports, data sets) goes through
:func:`atomic_path`; :func:`atomic_write_text` is the common case.  It lives in simulations/ because
that is the lowest layer allowed to do I/O (theory/ is pure functions) and every writer
(simulations, training, figures, checks, paper_checks.py) may import it.
"""
from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import Iterator
from pathlib import Path

__all__ = ["atomic_path", "atomic_write_text", "folder_lock", "save_npz"]


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, *, fsync: bool = False) -> Iterator[Path]:
    """A temporary path to write ``path``'s new content to; renamed over ``path`` on success.

    Parameters
    ----------
    path : str or os.PathLike
        The target.  Its folder is created if missing.
    fsync : bool, default False
        Flush the temporary file to disk before the rename and the folder after it (for data
        files that must survive a power cut, at some cost in time).

    Yields
    ------
    pathlib.Path
        A fresh, empty temporary file in the target's folder, with the target's suffix (so that
        writers choosing a format by suffix, such as ``savefig``, pick the right one).

    Examples
    --------
    >>> import tempfile, pathlib
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> with atomic_path(folder / "table.csv") as tmp:
    ...     _ = tmp.write_text("a,b\\n1,2\\n")
    >>> (folder / "table.csv").read_text()
    'a,b\\n1,2\\n'
    >>> sorted(p.name for p in folder.iterdir())   # no temporary file left behind
    ['table.csv']
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _new_temp(path)
    try:
        yield tmp
        if fsync:
            with open(tmp, "rb") as handle:
                os.fsync(handle.fileno())
        os.replace(tmp, path)
        if fsync:
            _fsync_folder(path.parent)
    finally:
        with contextlib.suppress(OSError):
            tmp.unlink()


def save_npz(path: str | os.PathLike, arrays: dict) -> None:
    """Write ``arrays`` (name -> array) to the .npz file ``path`` through :func:`atomic_path`.

    Examples
    --------
    >>> import tempfile, pathlib, numpy as np
    >>> target = pathlib.Path(tempfile.mkdtemp()) / "state.npz"
    >>> save_npz(target, {"w": np.arange(3)})
    >>> np.load(target)["w"].tolist()
    [0, 1, 2]
    """
    import numpy as np  # only the writers of arrays need it

    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        np.savez(f, **arrays)


@contextlib.contextmanager
def folder_lock(path: str | os.PathLike) -> Iterator[None]:
    """Hold an exclusive lock on the folder of ``path`` (created if missing) while inside.

    For read-modify-write updates of a shared file (a results CSV that several processes
    append to): the rename of :func:`atomic_path` keeps readers safe, but two writers that read
    the old content at the same time would each drop the other's change.  POSIX ``flock`` on
    the folder itself, so no lock file is left behind; released when the block ends or the
    process dies.  Where ``fcntl`` is missing (Windows) it does not lock.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> target = pathlib.Path(tempfile.mkdtemp()) / "rows.csv"
    >>> with folder_lock(target):
    ...     atomic_write_text(target, "a\\n1\\n")
    >>> target.read_text()
    'a\\n1\\n'
    """
    try:
        import fcntl
    except ImportError:  # Windows: no advisory locks here
        yield
        return
    folder = Path(path).parent
    folder.mkdir(parents=True, exist_ok=True)
    fd = os.open(folder, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing the descriptor releases the lock


def _fsync_folder(folder: Path) -> None:
    """Make a rename in ``folder`` durable (POSIX; silently skipped where folders cannot be
    opened)."""
    with contextlib.suppress(OSError, AttributeError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _new_temp(path: Path) -> Path:
    """Create a new, empty, private-named file beside ``path``.  Mode 0o666 lets the umask
    apply exactly as for a plain ``open`` (``tempfile.mkstemp`` would leave it 0o600)."""
    for _ in range(100):
        tmp = path.parent / f".{path.name}.{secrets.token_hex(6)}.tmp{path.suffix}"
        try:
            os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
        except FileExistsError:  # pragma: no cover - 48 random bits collided
            continue
        return tmp
    raise FileExistsError(f"could not create a temporary file beside {path}")  # pragma: no cover


def atomic_write_text(path: str | os.PathLike, text: str, *, fsync: bool = False) -> None:
    """Write ``text`` (UTF-8, line endings as given) to ``path`` through :func:`atomic_path`.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> target = pathlib.Path(tempfile.mkdtemp()) / "note.txt"
    >>> atomic_write_text(target, "hello\\n")
    >>> target.read_text()
    'hello\\n'
    """
    with atomic_path(path, fsync=fsync) as tmp:
        with open(tmp, "w", encoding="utf-8", newline="") as handle:
            handle.write(text)
