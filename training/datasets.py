"""Data sets by name: local copies first, else a sha256-verified download into a cache.

``load_dataset("gowalla")`` (or ``"yelp2018"``, ``"ml-1m"``) finds the files in this order:

1. the name as a path, when such a file or folder exists;
2. a data folder laid out as ``../shared/data`` is (``gowalla.mat``, ``yelp2018/train.txt``,
   ``yelp2018/test.txt``, ``ml-1m/train.txt``, ``ml-1m/test.txt``) at ``$HNSLAB_DATA``;
3. the same layout at ``../shared/data`` relative to the repository root (:data:`SHARED_DATA`);
4. the same layout in the cache folder ``$HNSLAB_CACHE`` (default ``~/.cache/hnslab``);
5. a download from the data set's public source (:data:`REGISTRY`) into the cache, with a
   progress bar, verified by sha256 with :mod:`pooch`. ``$HNSLAB_DATA_URL`` replaces the
   download base address: the files are then fetched from ``$HNSLAB_DATA_URL/gowalla.mat``,
   ``$HNSLAB_DATA_URL/yelp2018/train.txt`` and so on (the data-folder layout).

A location counts only when it holds every file of the data set. Files found locally are used
as they are (a hand-built MovieLens split has its own hash); downloads are verified. pooch
downloads to a temporary file beside the target and renames it only after the hash matched, so
a failed or corrupted download leaves no file in the cache.

MovieLens-1M is never downloaded: the MovieLens terms of use forbid redistribution, so the
fetcher says where to get it and where to put it (:class:`DatasetError`).

Command line: ``python -m training.datasets fetch NAME [NAME ...]`` makes each data set
available (downloading into the cache when no local copy exists) and prints where it is.
"""
from __future__ import annotations

import argparse
import os
import sys
from dataclasses import dataclass
from pathlib import Path

from training.loaders import load_lightgcn_split, load_mat
from training.planted import planted_dataset
from training.split import Split, split_per_user

__all__ = [
    "REGISTRY",
    "DatasetError",
    "DatasetInfo",
    "RemoteFile",
    "cache_dir",
    "data_folder",
    "fetch",
    "load_dataset",
    "main",
    "resolve",
]

#: The repository's sibling data folder (tests monkeypatch it).
SHARED_DATA = Path(__file__).resolve().parent.parent.parent / "shared" / "data"

#: requests timeout in seconds: (connect, read = longest wait between two bytes). An
#: unreachable or silent server fails after this long instead of hanging.
TIMEOUT = (10.0, 60.0)


class DatasetError(OSError):
    """A named data set is not available locally and cannot be downloaded.

    Raised for an unreachable server, a download whose sha256 does not match the registry,
    and a data set whose terms forbid redistribution. The message says where to put the
    files by hand. An ``OSError``, so callers that report unreadable data files report it too.
    """


@dataclass(frozen=True)
class RemoteFile:
    """One file of a data set.

    Attributes
    ----------
    path : str
        Path relative to a data folder, to the cache and to ``$HNSLAB_DATA_URL``
        (``"gowalla.mat"``, ``"yelp2018/train.txt"``).
    url : str
        The public address it is downloaded from by default.
    sha256 : str
        Hex digest of the expected content.
    """

    path: str
    url: str
    sha256: str


@dataclass(frozen=True)
class DatasetInfo:
    """A named data set: its files, format and origin.

    Attributes
    ----------
    name : str
    kind : {"mat", "lightgcn"}
        ``"mat"``: one ``.mat`` file, split per user by :func:`training.split.split_per_user`;
        ``"lightgcn"``: a folder holding ``train.txt`` and ``test.txt`` (a fixed split).
    root : str
        What :func:`resolve` returns, relative to the data folder: the ``.mat`` file or the
        folder holding the LightGCN pair.
    files : tuple of RemoteFile
    source : str
        Where the files come from, for messages.
    redistributable : bool
        False: never downloaded; ``instructions`` say how to get the files.
    instructions : str
    """

    name: str
    kind: str
    root: str
    files: tuple[RemoteFile, ...]
    source: str
    redistributable: bool = True
    instructions: str = ""


_GOWALLA_COMMIT = "dd00aad"  # swt-user/WWW_2023_code; github.com resolves the short hash
_LIGHTGCN_PYTORCH_COMMIT = "ae21737f61af8bdb068549a1ffb9e7a4ba8d5413"  # gusye1234/LightGCN-PyTorch
_LIGHTGCN_RAW = (f"https://raw.githubusercontent.com/gusye1234/LightGCN-PyTorch/"
                 f"{_LIGHTGCN_PYTORCH_COMMIT}/data/yelp2018")

_AHNS_COMMIT = "735b0a75ccedbac6b0578fcc5830bebd3a7e88ac"  # Riwei-HEU/AHNS
_AHNS_RAW = f"https://raw.githubusercontent.com/Riwei-HEU/AHNS/{_AHNS_COMMIT}/data/ml"

#: Known data sets by name. Hashes are those of ../shared/data/README.md. Tests replace
#: entries (``monkeypatch.setitem(REGISTRY, ...)``) to serve tiny files of known hash.
REGISTRY: dict[str, DatasetInfo] = {
    "gowalla": DatasetInfo(
        name="gowalla", kind="mat", root="gowalla.mat",
        files=(RemoteFile(
            "gowalla.mat",
            f"https://github.com/swt-user/WWW_2023_code/raw/{_GOWALLA_COMMIT}/"
            "datasets/gowalladata.mat",
            "8ebdd1780706287eaf824e810633f9ed264d6eb5c32c2a13dbdd549f2695e79e"),),
        source=f"github.com/swt-user/WWW_2023_code, datasets/gowalladata.mat "
               f"(commit {_GOWALLA_COMMIT}), saved as gowalla.mat"),
    "yelp2018": DatasetInfo(
        name="yelp2018", kind="lightgcn", root="yelp2018",
        files=(RemoteFile("yelp2018/train.txt", f"{_LIGHTGCN_RAW}/train.txt",
                          "1e9568725a9e833d0ac3bae01c94cd95367f73b3bb6104fd26b5f65ea5054093"),
               RemoteFile("yelp2018/test.txt", f"{_LIGHTGCN_RAW}/test.txt",
                          "9cd9b37926cd1447a06625ffa7914527573fb097c10cb0bbdb1d1b8ded3742fe")),
        source="LightGCN's Yelp2018 split (github.com/kuandeng/LightGCN, Data/yelp2018/), "
               "as copied in github.com/gusye1234/LightGCN-PyTorch, data/yelp2018/ "
               f"(commit {_LIGHTGCN_PYTORCH_COMMIT[:7]})"),
    "ml-1m": DatasetInfo(
        name="ml-1m", kind="lightgcn", root="ml-1m",
        # The URLs are where a user gets the files by hand; they are never downloaded.
        files=(RemoteFile("ml-1m/train.txt", f"{_AHNS_RAW}/train.txt",
                          "b5d699e7297013759d8fc44b17a87652c1cc9ea496152fa76621b599358da73e"),
               RemoteFile("ml-1m/test.txt", f"{_AHNS_RAW}/test.txt",
                          "862fcad55075f482fec726156063ebae20d33a093262bdd0096613228bc0eb60")),
        source="MovieLens-1M in the AHNS paper's 80/20 split (github.com/Riwei-HEU/AHNS, "
               f"data/ml/, commit {_AHNS_COMMIT[:7]})",
        redistributable=False,
        instructions=(
            "The MovieLens terms of use forbid redistribution, so hnslab does not download "
            "MovieLens-1M. Get the AHNS paper's split: train.txt and test.txt in folder "
            f"data/ml/ of github.com/Riwei-HEU/AHNS ({_AHNS_RAW}/train.txt and test.txt), or "
            "build a split from ratings.dat of https://grouplens.org/datasets/movielens/1m/ "
            "as AHNS's data/ml_1m_random.ipynb does (every rating is an interaction; users "
            "and items numbered from 0 in order of first appearance; each rating goes to "
            "train with probability 0.8, else to test; LightGCN format 'user item item ...' "
            "per line); a split of your own will not have the AHNS files' hashes."),
    ),
}


def cache_dir() -> Path:
    """The download cache: ``$HNSLAB_CACHE``, else ``~/.cache/hnslab``."""
    configured = os.environ.get("HNSLAB_CACHE")
    return Path(configured).expanduser() if configured else Path.home() / ".cache" / "hnslab"


def data_folder() -> Path:
    """The reproduction data folder: ``$HNSLAB_DATA`` if set, else ``../shared/data`` beside the
    repository (:data:`SHARED_DATA`).  The one lookup of the package: tests, checks and
    benchmarks find their data through it (it may not exist; callers skip or say where to put
    the files).

    Examples
    --------
    >>> import os
    >>> os.environ["HNSLAB_DATA"] = "/tmp/my-data"
    >>> str(data_folder())
    '/tmp/my-data'
    >>> del os.environ["HNSLAB_DATA"]
    >>> data_folder() == SHARED_DATA
    True
    """
    configured = os.environ.get("HNSLAB_DATA")
    return Path(configured).expanduser() if configured else SHARED_DATA


def _data_folders() -> list[Path]:
    """The local folders searched for named data sets, in order."""
    configured = [data_folder()] if os.environ.get("HNSLAB_DATA") else []
    return [*configured, SHARED_DATA, cache_dir()]


def _complete(info: DatasetInfo, folder: Path) -> bool:
    return all((folder / f.path).is_file() for f in info.files)


def _dataset_info(name: str) -> DatasetInfo:
    if name not in REGISTRY:
        raise ValueError(f"name must be one of {sorted(REGISTRY)}, got {name!r}")
    return REGISTRY[name]


def fetch(name: str) -> Path:
    """Download a named data set into the cache (only its missing files) and return its root.

    Parameters
    ----------
    name : str
        A key of :data:`REGISTRY`.

    Returns
    -------
    pathlib.Path
        ``cache_dir() / info.root``.

    Raises
    ------
    ValueError
        If ``name`` is not a known data set.
    DatasetError
        If the data set may not be redistributed, the server cannot be reached (or does not
        answer within :data:`TIMEOUT`), or a download does not have the registered sha256.
        No partial or unverified file is left in the cache.
    """
    info = _dataset_info(name)
    cache = cache_dir()
    missing = [f for f in info.files if not (cache / f.path).is_file()]
    if missing and not info.redistributable:
        places = ", ".join(str(cache / f.path) for f in info.files)
        raise DatasetError(
            f"{name}: not found locally. {info.instructions} Then put the files at {places} "
            f"(or in a data folder given by $HNSLAB_DATA: "
            f"{', '.join(f.path for f in info.files)}).")
    # Imported here: only downloads need them, and they take a while to import.
    import pooch
    import requests

    base = os.environ.get("HNSLAB_DATA_URL")
    downloader = pooch.HTTPDownloader(progressbar=True, timeout=TIMEOUT)
    for remote in missing:
        url = f"{base.rstrip('/')}/{remote.path}" if base else remote.url
        target = cache / remote.path
        by_hand = (f"Download {url} by hand and save it as {target}, or put a data folder "
                   f"holding {remote.path} at $HNSLAB_DATA (source: {info.source}).")
        try:
            pooch.retrieve(url, known_hash=f"sha256:{remote.sha256}", fname=target.name,
                           path=target.parent, downloader=downloader)
        except requests.exceptions.RequestException as exc:
            raise DatasetError(f"{name}: could not download {url} "
                               f"({type(exc).__name__}: {exc}). {by_hand}") from exc
        except ValueError as exc:
            if remote.sha256 not in str(exc):  # not a hash mismatch (e.g. an unknown protocol)
                raise DatasetError(f"{name}: could not download {url} ({exc}). "
                                   f"{by_hand}") from exc
            # pooch's message names the expected and the actual sha256; it has deleted the
            # temporary file, so nothing unverified is left in the cache.
            raise DatasetError(f"{name}: the download from {url} is corrupted or has changed: "
                               f"{exc} Nothing was saved as {target}. {by_hand}") from exc
    return cache / info.root


def resolve(name_or_path) -> Path:
    """Where a data set is: a path as given, or a named data set found or downloaded.

    Parameters
    ----------
    name_or_path : str or os.PathLike
        An existing file or folder, or a key of :data:`REGISTRY` (``"gowalla"``,
        ``"yelp2018"``, ``"ml-1m"``).

    Returns
    -------
    pathlib.Path
        The path itself, or for a name the ``.mat`` file or the folder holding
        ``train.txt`` and ``test.txt``, from the first of ``$HNSLAB_DATA``,
        :data:`SHARED_DATA`, :func:`cache_dir` that holds all its files, else from a
        download into the cache (:func:`fetch`).

    Raises
    ------
    FileNotFoundError
        If ``name_or_path`` is neither an existing path nor a known name.
    DatasetError
        As :func:`fetch`.
    """
    path = Path(os.fspath(name_or_path)).expanduser()
    if path.exists():
        return path
    name = os.fspath(name_or_path)
    if name not in REGISTRY:
        raise FileNotFoundError(
            f"{name}: no such file or folder, and not a data set name "
            f"(names: {', '.join(sorted(REGISTRY))}, or 'planted' for synthetic data)")
    info = REGISTRY[name]
    for folder in _data_folders():
        if _complete(info, folder):
            return folder / info.root
    return fetch(name)


def load_dataset(spec, seed=0, *, planted_users: int = 2000, planted_items: int = 1000,
                 train_fraction: float = 0.8) -> Split:
    """Train and test interactions of a data set given by name or path.

    Parameters
    ----------
    spec : str or os.PathLike
        ``"planted"`` (synthetic data, :func:`training.planted.planted_dataset`); a data set
        name (:func:`resolve`); a ``.mat`` file (split per user); a LightGCN ``train.txt``
        with ``test.txt`` beside it, or a folder holding both.
    seed : int, optional
        Seed of the per-user split (``.mat`` files, planted data) and of the planted data.
        LightGCN splits are fixed and do not use it.
    planted_users, planted_items : int, optional
        Shape of the planted data.
    train_fraction : float, optional
        Fraction of each user's items in train for per-user splits (the paper's 0.8).

    Returns
    -------
    Split
        ``(train, test)`` canonical boolean csr matrices of one shape.

    Raises
    ------
    FileNotFoundError
        For a path that does not exist and is not a name, or a ``train.txt`` without its
        ``test.txt``.
    DatasetError
        As :func:`fetch`.
    ValueError
        For malformed files and invalid arguments (as the loaders and the split).
    """
    if os.fspath(spec) == "planted":
        planted = planted_dataset(planted_users, planted_items, seed=seed)
        return split_per_user(planted.matrix, train_fraction, seed)
    path = resolve(spec)
    if path.is_dir():
        path = path / "train.txt"
    if path.suffix.lower() == ".mat":
        return split_per_user(load_mat(path), train_fraction, seed)
    test_path = path.with_name("test.txt")
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file")
    if not test_path.is_file():
        raise FileNotFoundError(f"{test_path}: no such file (a LightGCN train.txt needs "
                                "test.txt beside it)")
    return load_lightgcn_split(path, test_path)


def main(argv=None) -> int:
    """``python -m training.datasets fetch NAME [NAME ...]``: make data sets available.

    Prints ``NAME: PATH`` per data set; returns 0, or 1 after printing the error of the
    first data set that could not be fetched.
    """
    parser = argparse.ArgumentParser(
        prog="python -m training.datasets",
        description="Find or download (into the cache, sha256-verified) the named data sets "
                    "and print where they are.")
    commands = parser.add_subparsers(dest="command", required=True)
    fetch_cmd = commands.add_parser("fetch", help="find or download data sets by name")
    fetch_cmd.add_argument("names", nargs="+", choices=sorted(REGISTRY), metavar="NAME",
                           help=f"one of {', '.join(sorted(REGISTRY))}")
    args = parser.parse_args(argv)
    for name in args.names:
        try:
            print(f"{name}: {resolve(name)}", flush=True)
        except DatasetError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
