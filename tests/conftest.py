"""Shared test fixtures: where the reproduction data lives; a known SIGINT handler."""
import signal
from pathlib import Path

import pytest

from training.datasets import data_folder

REPO_ROOT = Path(__file__).resolve().parents[1]


def data_dir() -> Path:
    """The reproduction data folder: $HNSLAB_DATA, else ../shared/data beside the repository."""
    return data_folder()


@pytest.fixture
def gowalla_path() -> Path:
    path = data_dir() / "gowalla.mat"
    if not path.exists():
        pytest.skip(f"Gowalla data not found at {path} (set HNSLAB_DATA)")
    return path


@pytest.fixture
def default_sigint():
    """Python's default SIGINT handler for the test, whatever the suite started with (a suite
    run under ``nohup`` or as a background job starts with SIGINT ignored); restored after."""
    before = signal.getsignal(signal.SIGINT)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, before)
