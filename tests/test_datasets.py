"""Tests of training.datasets: data sets by name, resolution order, verified downloads.

No test touches the internet: downloads come from a local HTTP server on 127.0.0.1 (a thread
on an ephemeral port) through $HNSLAB_DATA_URL, and the registry entries are replaced by tiny
files whose sha256 the tests compute with hashlib. Expected matrices are written by hand.
"""
from __future__ import annotations

import dataclasses
import functools
import hashlib
import http.server
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import scipy.io
import scipy.sparse as sp

from training import datasets
from training.datasets import DatasetError, load_dataset, resolve
from training.planted import planted_dataset
from training.split import split_per_user

REAL_SHARED_DATA = datasets.SHARED_DATA  # before any monkeypatching

# A tiny matrix for the fake "gowalla.mat": 10 users x 8 items, 4-6 items per user, so that
# per-user 80/20 splits differ between seeds.
GOWALLA = np.array([[(u * 3 + i * 5) % 7 < 4 for i in range(8)] for u in range(10)])

# A tiny LightGCN pair for the fake "yelp2018", and the matrices it denotes (4 users x 6 items).
YELP_TRAIN = "0 0 1 2\n1 3\n2 1 4 5\n3 0 5\n"
YELP_TEST = "0 4\n1 0 2\n2 3\n3 1\n"
YELP_TRAIN_DENSE = np.zeros((4, 6), bool)
YELP_TEST_DENSE = np.zeros((4, 6), bool)
for _u, _items in {0: [0, 1, 2], 1: [3], 2: [1, 4, 5], 3: [0, 5]}.items():
    YELP_TRAIN_DENSE[_u, _items] = True
for _u, _items in {0: [4], 1: [0, 2], 2: [3], 3: [1]}.items():
    YELP_TEST_DENSE[_u, _items] = True


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def files_under(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file()) if folder.exists() else []


def write(path: Path, data: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def mat_bytes(dense, tmp_path: Path) -> bytes:
    path = tmp_path / "scratch.mat"
    scipy.io.savemat(path, {"data": sp.csc_matrix(dense.astype(np.float64))})
    return path.read_bytes()


def free_port() -> int:
    """A port with nothing listening (bound then released; the kernel does not reuse it soon)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ---------------------------------------------------------------------------
# fixtures
# ---------------------------------------------------------------------------

class Server:
    """A static file server on 127.0.0.1 counting the requests it answers."""

    def __init__(self, root: Path):
        self.root = root
        self.requests: list[str] = []
        server = self

        class Handler(http.server.SimpleHTTPRequestHandler):
            def log_message(self, *args):  # keep the test output clean
                pass

            def do_GET(self):
                server.requests.append(self.path)
                super().do_GET()

        handler = functools.partial(Handler, directory=str(root))
        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()

    def serve(self, relpath: str, data: bytes) -> None:
        write(self.root / relpath, data)

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join()


@pytest.fixture
def env(tmp_path, monkeypatch):
    """Isolated locations: no $HNSLAB_DATA, ../shared/data and the cache under tmp_path, and
    downloads pointed at a port with nothing listening (never the internet)."""
    monkeypatch.delenv("HNSLAB_DATA", raising=False)
    monkeypatch.setattr(datasets, "SHARED_DATA", tmp_path / "shared")
    cache = tmp_path / "cache"
    monkeypatch.setenv("HNSLAB_CACHE", str(cache))
    monkeypatch.setenv("HNSLAB_DATA_URL", f"http://127.0.0.1:{free_port()}")
    return cache


@pytest.fixture
def server(tmp_path, monkeypatch, env):
    srv = Server(tmp_path / "server")
    monkeypatch.setenv("HNSLAB_DATA_URL", srv.url)
    yield srv
    srv.close()


def register(monkeypatch, name: str, hashes: dict[str, str]) -> None:
    """Replace the registry's hashes of data set ``name`` by ``hashes`` (path -> sha256)."""
    info = datasets.REGISTRY[name]
    files = tuple(dataclasses.replace(f, sha256=hashes[f.path]) for f in info.files)
    assert {f.path for f in info.files} == set(hashes)
    monkeypatch.setitem(datasets.REGISTRY, name, dataclasses.replace(info, files=files))


@pytest.fixture
def tiny_gowalla(tmp_path, monkeypatch):
    data = mat_bytes(GOWALLA, tmp_path)
    register(monkeypatch, "gowalla", {"gowalla.mat": sha256(data)})
    return data


@pytest.fixture
def tiny_yelp(monkeypatch):
    files = {"yelp2018/train.txt": YELP_TRAIN.encode(), "yelp2018/test.txt": YELP_TEST.encode()}
    register(monkeypatch, "yelp2018", {k: sha256(v) for k, v in files.items()})
    return files


# ---------------------------------------------------------------------------
# downloads
# ---------------------------------------------------------------------------

def test_good_download_lands_in_the_cache_verified_and_is_reused(server, env, tiny_gowalla,
                                                                 capsys):
    server.serve("gowalla.mat", tiny_gowalla)
    path = resolve("gowalla")
    assert path == env / "gowalla.mat"
    assert path.read_bytes() == tiny_gowalla
    assert files_under(env) == [path]  # no temporary file left beside it
    assert server.requests == ["/gowalla.mat"]
    # The data load as the matrix that was served, split per user with the given seed.
    train, test = load_dataset("gowalla", seed=3)
    assert server.requests == ["/gowalla.mat"]  # second use: from the cache, no request
    np.testing.assert_array_equal(train.toarray() | test.toarray(), GOWALLA)
    assert train.multiply(test).nnz == 0
    expected = split_per_user(GOWALLA, 0.8, 3)
    assert (expected.train != split_per_user(GOWALLA, 0.8, 0).train).nnz  # seeds matter here
    np.testing.assert_array_equal(train.toarray(), expected.train.toarray())
    assert "100%" in capsys.readouterr().err  # tqdm's progress bar went to stderr


def test_lightgcn_pair_is_downloaded_file_by_file(server, env, tiny_yelp):
    for relpath, data in tiny_yelp.items():
        server.serve(relpath, data)
    train, test = load_dataset("yelp2018")
    np.testing.assert_array_equal(train.toarray(), YELP_TRAIN_DENSE)
    np.testing.assert_array_equal(test.toarray(), YELP_TEST_DENSE)
    assert sorted(server.requests) == ["/yelp2018/test.txt", "/yelp2018/train.txt"]
    assert resolve("yelp2018") == env / "yelp2018"


def test_corrupted_download_names_both_hashes_and_leaves_nothing(server, env, tiny_gowalla):
    corrupted = bytearray(tiny_gowalla)
    corrupted[-1] ^= 0xFF  # one flipped byte
    server.serve("gowalla.mat", bytes(corrupted))
    with pytest.raises(DatasetError) as info:
        resolve("gowalla")
    message = str(info.value)
    assert sha256(tiny_gowalla) in message  # expected
    assert sha256(bytes(corrupted)) in message  # actual
    assert str(env / "gowalla.mat") in message  # where to put a good copy by hand
    assert files_under(env) == []


def test_corrupted_second_file_keeps_the_verified_first_and_retries_only_the_second(
        server, env, tiny_yelp):
    server.serve("yelp2018/train.txt", tiny_yelp["yelp2018/train.txt"])
    server.serve("yelp2018/test.txt", b"0 1\n")
    with pytest.raises(DatasetError, match=sha256(b"0 1\n")):
        load_dataset("yelp2018")
    assert files_under(env) == [env / "yelp2018" / "train.txt"]
    server.serve("yelp2018/test.txt", tiny_yelp["yelp2018/test.txt"])
    server.requests.clear()
    _, test = load_dataset("yelp2018")
    assert server.requests == ["/yelp2018/test.txt"]
    np.testing.assert_array_equal(test.toarray(), YELP_TEST_DENSE)


def test_unreachable_server_says_where_to_put_the_file(env, tiny_gowalla):
    start = time.perf_counter()
    with pytest.raises(DatasetError) as info:
        resolve("gowalla")
    assert time.perf_counter() - start < 10  # refused at once; no retries
    message = str(info.value)
    assert "could not download" in message and "ConnectionError" in message
    assert f"save it as {env / 'gowalla.mat'}" in message
    assert "$HNSLAB_DATA" in message
    assert files_under(env) == []


def test_silent_server_times_out_instead_of_hanging(env, tiny_gowalla, monkeypatch):
    # A socket that accepts connections (kernel backlog) but never answers.
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(4)
        monkeypatch.setenv("HNSLAB_DATA_URL", f"http://127.0.0.1:{silent.getsockname()[1]}")
        monkeypatch.setattr(datasets, "TIMEOUT", (2.0, 0.5))
        outcome = []

        def attempt():
            try:
                resolve("gowalla")
            except Exception as exc:
                outcome.append(exc)

        # In a thread, so that a missing timeout fails the test instead of hanging it.
        worker = threading.Thread(target=attempt, daemon=True)
        worker.start()
        worker.join(10)  # 0.5 s read timeout; generous bound for a busy 2-core machine
        assert not worker.is_alive(), "no timeout: the download hangs on a silent server"
    assert len(outcome) == 1 and isinstance(outcome[0], DatasetError)
    assert "Timeout" in str(outcome[0]) and str(env / "gowalla.mat") in str(outcome[0])
    assert files_under(env) == []


def test_ml1m_is_never_downloaded_and_the_message_says_where_to_get_it(server, env):
    server.serve("ml-1m/train.txt", YELP_TRAIN.encode())
    server.serve("ml-1m/test.txt", YELP_TEST.encode())
    with pytest.raises(DatasetError) as info:
        resolve("ml-1m")
    message = str(info.value)
    assert server.requests == []
    assert "forbid redistribution" in message
    assert "github.com/Riwei-HEU/AHNS" in message and "data/ml/" in message
    assert "grouplens.org/datasets/movielens/1m" in message
    assert str(env / "ml-1m" / "train.txt") in message
    assert str(env / "ml-1m" / "test.txt") in message
    # Put by hand where the message says, it is used as it is.
    write(env / "ml-1m" / "train.txt", YELP_TRAIN.encode())
    write(env / "ml-1m" / "test.txt", YELP_TEST.encode())
    train, _ = load_dataset("ml-1m")
    np.testing.assert_array_equal(train.toarray(), YELP_TRAIN_DENSE)
    assert server.requests == []


# ---------------------------------------------------------------------------
# resolution order
# ---------------------------------------------------------------------------

def test_resolution_order_data_env_then_shared_then_cache_then_download(
        server, env, tmp_path, monkeypatch, tiny_gowalla):
    shared = datasets.SHARED_DATA
    own = tmp_path / "own"
    for folder in (own, shared, env):  # different content in each place
        write(folder / "gowalla.mat", folder.name.encode())
    server.serve("gowalla.mat", tiny_gowalla)
    monkeypatch.setenv("HNSLAB_DATA", str(own))
    assert resolve("gowalla") == own / "gowalla.mat"
    monkeypatch.delenv("HNSLAB_DATA")
    assert resolve("gowalla") == shared / "gowalla.mat"
    (shared / "gowalla.mat").unlink()
    assert resolve("gowalla") == env / "gowalla.mat"
    assert (env / "gowalla.mat").read_bytes() == b"cache"  # used as is, not re-verified
    assert server.requests == []
    (env / "gowalla.mat").unlink()
    assert resolve("gowalla") == env / "gowalla.mat"
    assert server.requests == ["/gowalla.mat"]


def test_a_location_counts_only_when_it_holds_every_file(env, tmp_path, monkeypatch, tiny_yelp):
    own = tmp_path / "own"
    write(own / "yelp2018" / "train.txt", b"0 1\n")  # test.txt missing
    for relpath, data in tiny_yelp.items():
        write(datasets.SHARED_DATA / relpath, data)
    monkeypatch.setenv("HNSLAB_DATA", str(own))
    assert resolve("yelp2018") == datasets.SHARED_DATA / "yelp2018"


def test_an_existing_path_beats_a_name(env, tmp_path, monkeypatch):
    folder = tmp_path / "work"
    write(folder / "gowalla", b"not the data set")
    monkeypatch.chdir(folder)
    assert resolve("gowalla") == Path("gowalla")


def test_paths_load_like_the_trainer_always_did(env, tmp_path):
    write(tmp_path / "d" / "train.txt", YELP_TRAIN.encode())
    write(tmp_path / "d" / "test.txt", YELP_TEST.encode())
    for spec in (tmp_path / "d", tmp_path / "d" / "train.txt", str(tmp_path / "d")):
        train, test = load_dataset(spec)
        np.testing.assert_array_equal(train.toarray(), YELP_TRAIN_DENSE)
        np.testing.assert_array_equal(test.toarray(), YELP_TEST_DENSE)
    mat = write(tmp_path / "m.mat", mat_bytes(GOWALLA, tmp_path))
    train, test = load_dataset(mat, seed=1)
    np.testing.assert_array_equal(train.toarray(), split_per_user(GOWALLA, 0.8, 1).train.toarray())
    write(tmp_path / "lonely" / "train.txt", YELP_TRAIN.encode())
    with pytest.raises(FileNotFoundError, match=r"needs test\.txt beside it"):
        load_dataset(tmp_path / "lonely")


def test_planted_and_unknown_names(env):
    train, test = load_dataset("planted", seed=2, planted_users=30, planted_items=20,
                               train_fraction=0.5)
    expected = split_per_user(planted_dataset(30, 20, seed=2).matrix, 0.5, 2)
    np.testing.assert_array_equal(train.toarray(), expected.train.toarray())
    np.testing.assert_array_equal(test.toarray(), expected.test.toarray())
    with pytest.raises(FileNotFoundError, match="gowalla, ml-1m, yelp2018"):
        load_dataset("gowala")
    with pytest.raises(ValueError, match="name must be one of"):
        datasets.fetch("gowala")


def test_cache_default_is_home_dot_cache(monkeypatch, tmp_path):
    monkeypatch.delenv("HNSLAB_CACHE", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    assert datasets.cache_dir() == tmp_path / ".cache" / "hnslab"


# ---------------------------------------------------------------------------
# command line
# ---------------------------------------------------------------------------

def test_cli_fetch_prints_where(server, env, tiny_gowalla, capsys):
    server.serve("gowalla.mat", tiny_gowalla)
    assert datasets.main(["fetch", "gowalla"]) == 0
    assert capsys.readouterr().out == f"gowalla: {env / 'gowalla.mat'}\n"
    assert datasets.main(["fetch", "ml-1m"]) == 1
    assert "forbid redistribution" in capsys.readouterr().err


def test_cli_module_entry_point(env, tmp_path):
    # $HNSLAB_DATA comes first, so the real ../shared/data (when present) does not interfere.
    own = tmp_path / "own"
    write(own / "ml-1m" / "train.txt", YELP_TRAIN.encode())
    write(own / "ml-1m" / "test.txt", YELP_TEST.encode())
    result = subprocess.run([sys.executable, "-m", "training.datasets", "fetch", "ml-1m"],
                            check=False, capture_output=True, text=True, timeout=120,
                            env={**os.environ, "HNSLAB_DATA": str(own)})
    assert (result.returncode, result.stdout) == (0, f"ml-1m: {own / 'ml-1m'}\n"), result.stderr


# ---------------------------------------------------------------------------
# the registry and the real files
# ---------------------------------------------------------------------------

def test_registry_entries_are_well_formed():
    assert set(datasets.REGISTRY) == {"gowalla", "yelp2018", "ml-1m"}
    for name, info in datasets.REGISTRY.items():
        assert info.name == name and info.kind in ("mat", "lightgcn")
        for f in info.files:
            assert len(f.sha256) == 64 and int(f.sha256, 16) >= 0
            assert not Path(f.path).is_absolute() and f.path.startswith(info.root)
            assert f.url.startswith("https://")
    # The authors' repository holds the file as datasets/gowalladata.mat.
    assert datasets.REGISTRY["gowalla"].files[0].url.endswith("/datasets/gowalladata.mat")
    assert not datasets.REGISTRY["ml-1m"].redistributable


def _real_data_folder() -> Path | None:
    for folder in (os.environ.get("HNSLAB_DATA"), REAL_SHARED_DATA):
        if folder and (Path(folder) / "gowalla.mat").is_file():
            return Path(folder)
    return None


@pytest.mark.parametrize("name", ["gowalla", "yelp2018", "ml-1m"])
def test_real_files_have_the_registered_hashes(name):
    """Read-only: hashes of ../shared/data (or $HNSLAB_DATA) against the registry."""
    folder = _real_data_folder()
    if folder is None:
        pytest.skip("the reproduction data (../shared/data or $HNSLAB_DATA) are absent")
    for f in datasets.REGISTRY[name].files:
        path = folder / f.path
        if not path.is_file():
            pytest.skip(f"{path} is absent")
        assert hashlib.sha256(path.read_bytes()).hexdigest() == f.sha256, path


# Counts of ../shared/data/README.md (Gowalla after the paper's per-user split with seed 0).
README_COUNTS = {"gowalla": ((29858, 40988), 822358, 205106),
                 "yelp2018": ((31668, 38048), 1237259, 324147),
                 "ml-1m": ((6040, 3706), 800005, 200204)}


@pytest.mark.parametrize("name", ["gowalla", "yelp2018", "ml-1m"])
def test_real_data_sets_by_name_have_the_published_counts(name, env, monkeypatch):
    folder = _real_data_folder()
    if folder is None or not all((folder / f.path).is_file()
                                 for f in datasets.REGISTRY[name].files):
        pytest.skip("the reproduction data (../shared/data or $HNSLAB_DATA) are absent")
    monkeypatch.setenv("HNSLAB_DATA", str(folder))
    train, test = load_dataset(name, seed=0)
    assert (train.shape, train.nnz, test.nnz) == README_COUNTS[name]
    assert files_under(env) == []  # found locally: nothing downloaded
