"""Shared test fixtures: where the reproduction data lives."""
import os
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]


def data_dir() -> Path:
    """HNSLAB_DATA if set, else ../shared/data relative to the repository root."""
    return Path(os.environ.get("HNSLAB_DATA", REPO_ROOT.parent / "shared" / "data"))


@pytest.fixture
def gowalla_path() -> Path:
    path = data_dir() / "gowalla.mat"
    if not path.exists():
        pytest.skip(f"Gowalla data not found at {path} (set HNSLAB_DATA)")
    return path
