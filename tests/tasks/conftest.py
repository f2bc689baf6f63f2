"""Shared fixtures of the task tests: one torch thread, a file writer, the shared reference data.

The data cache (``$RNNLAB_CACHE``) is left alone: it also holds the fused engine's compiled kernels, which a
private cache per test would rebuild.
"""

from pathlib import Path

import pytest

SHARED_DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"


@pytest.fixture(autouse=True)
def _one_thread(one_thread):
    """torch uses one thread in these tests (see the root conftest's ``one_thread``)."""


@pytest.fixture
def write(tmp_path):
    """write(name, text) -> path of a new file in tmp_path."""

    def _write(name: str, content: str) -> Path:
        path = tmp_path / name
        path.write_text(content, encoding="utf-8")
        return path

    return _write
