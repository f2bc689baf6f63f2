"""Shared fixtures of the data-layer tests."""

from pathlib import Path

import pytest

SHARED_DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch):
    """Every test gets its own empty cache directory instead of ~/.cache/rnnlab."""
    cache = tmp_path / "cache"
    monkeypatch.setenv("RNNLAB_CACHE", str(cache))
    return cache


@pytest.fixture
def write(tmp_path):
    """write(name, text_or_bytes) -> path of a new file in tmp_path."""

    def _write(name: str, content: str | bytes) -> Path:
        path = tmp_path / name
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content, encoding="utf-8")
        return path

    return _write
