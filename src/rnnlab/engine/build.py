"""Building and loading the fused engine's C++ kernels.

The kernels (``engine/csrc/*.cpp``) are compiled on first use with ``torch.utils.cpp_extension.load`` (ninja
and a C++ compiler, nothing else) into ``$RNNLAB_CACHE/torch_extensions/<tag>`` (``~/.cache/rnnlab`` without
the variable), where ``<tag>`` names the Python and torch versions, the torch installation (a hash of its path and
of its ``libtorch_cpu``'s size and time: two environments with the same torch version each keep their own build
instead of rebuilding each other's) and the CPU, because the code is built with ``-march=native``. Later
processes load the cached library in well under a second; a source change rebuilds. They register the kernels
``torch.ops.rnnlab.{lstm,gru,rnn}_{forward,backward}`` (no Python module of their own), which the ops of
:mod:`rnnlab.engine.ops` call. The order of the kernels' tensors and their flag bits come from
:func:`rnnlab.engine.ops.layout_header`, written into the build directory as ``rnnlab_layout.h``.

The GEMMs call the BLAS that libtorch_cpu exports (MKL's ``sgemm_``/``dgemm_``) directly; a torch without
those symbols gets ``at::addmm_out`` instead. If the build fails, :func:`load` warns once (``RuntimeWarning``,
an error under the test suite's ``-W error``) and the fused backend runs the reference engine.
"""

from __future__ import annotations

import contextlib
import ctypes
import hashlib
import os
import platform
import sys
import threading
import warnings
from pathlib import Path

import torch

try:
    import fcntl  # POSIX; elsewhere builds run without rnnlab's lock (torch's own still applies)
except ImportError:  # pragma: no cover
    fcntl = None  # type: ignore[assignment]

CSRC = Path(__file__).with_name("csrc")
SOURCES = ("lstm.cpp", "gru.cpp", "rnn.cpp", "linear.cpp", "indrnn.cpp", "slstm.cpp")
HEADERS = ("common.h",)
CACHE_ENV = "RNNLAB_CACHE"

_lock = threading.Lock()
_status: dict[str, object] = {"loaded": None, "error": None}


def _cpu_tag() -> str:
    """A short hash of the CPU model and instruction-set flags (the build uses ``-march=native``)."""
    text = platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            lines = [line for line in handle if line.startswith(("model name", "flags"))]
        text += "".join(sorted(set(lines)))
    except OSError:
        text += platform.processor()
    return hashlib.sha1(text.encode()).hexdigest()[:10]


def torch_tag() -> str:
    """A short hash of the torch installation: its directory and its ``libtorch_cpu``'s size and mtime."""
    root = Path(torch.__file__).resolve().parent
    text = str(root)
    try:
        stat = (root / "lib" / "libtorch_cpu.so").stat()
        text += f"|{stat.st_size}|{stat.st_mtime_ns}"
    except OSError:
        pass
    return hashlib.sha1(text.encode()).hexdigest()[:10]


def build_directory() -> Path:
    """Where the compiled kernels live: ``<cache>/torch_extensions/py<ver>-torch<ver>-<install>-<cpu>``."""
    root = os.environ.get(CACHE_ENV)
    cache = Path(root).expanduser() if root else Path.home() / ".cache" / "rnnlab"
    py = f"{sys.version_info.major}{sys.version_info.minor}"
    tag = f"py{py}-torch{torch.__version__.replace('+', '_')}-{torch_tag()}-{_cpu_tag()}"
    path = cache / "torch_extensions" / tag
    path.mkdir(parents=True, exist_ok=True)
    return path


def _torch_exports_blas() -> bool:
    """True if libtorch_cpu exports the Fortran BLAS GEMMs (MKL builds of torch do)."""
    lib = Path(torch.__file__).parent / "lib" / "libtorch_cpu.so"
    try:
        handle = ctypes.CDLL(str(lib))
        return all(hasattr(handle, name) for name in ("sgemm_", "dgemm_"))
    except OSError:
        return False


LAYOUT_HEADER = "rnnlab_layout.h"


def write_layout_header(directory: Path) -> Path:
    """Write :func:`rnnlab.engine.ops.layout_header` into ``directory`` (only if it changed: a new mtime would
    rebuild the kernels)."""
    from rnnlab.engine import ops

    path = directory / LAYOUT_HEADER
    text = ops.layout_header()
    if not path.exists() or path.read_text(encoding="utf-8") != text:
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, path)
    return path


def compile_flags() -> list[str]:
    """Compiler flags; they carry a hash of the headers (the generated layout too), so that a header change
    rebuilds the kernels."""
    from rnnlab.engine import ops

    blas = 1 if _torch_exports_blas() else 0
    texts = b"".join((CSRC / name).read_bytes() for name in HEADERS) + ops.layout_header().encode()
    headers = hashlib.sha1(texts).hexdigest()[:12]
    # -fno-trapping-math: the kernels never read floating-point exception flags, and with the default
    # (-ftrapping-math) GCC will not if-convert the activations' clamps on AVX2: the gate loops then stay scalar
    # (AVX-512's masked instructions vectorise them either way). Results are unchanged (no reassociation).
    return ["-O3", "-march=native", "-fno-trapping-math", "-fopenmp", f"-DRNNLAB_BLAS={blas}",
            f"-DRNNLAB_HEADERS={headers}"]


TORCH_LOCK = "lock"  # torch.utils.cpp_extension's FileBaton in the build directory
BUILD_LOCK = "rnnlab-build.lock"


@contextlib.contextmanager
def _exclusive_build(directory: Path):
    """Hold an OS lock (``flock``) on ``directory/rnnlab-build.lock`` while building or loading there.

    torch's own build lock is a plain file (``lock``) that a process killed mid-build leaves behind, and every
    later build then waits on it forever. The OS drops a ``flock`` when its process dies, and every rnnlab build
    of this directory runs under it, so a torch ``lock`` found while holding it is stale and is removed.
    """
    if fcntl is None:  # pragma: no cover
        yield
        return
    with open(directory / BUILD_LOCK, "a+b") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            with contextlib.suppress(FileNotFoundError):
                (directory / TORCH_LOCK).unlink()
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def load() -> bool:
    """Compile (first call in a fresh cache) and load the kernels. True if ``torch.ops.rnnlab`` is usable.

    Never raises: a failure is reported once as a ``RuntimeWarning`` and remembered (see :func:`error`).
    """
    if _status["loaded"] is not None:
        return bool(_status["loaded"])
    with _lock:
        if _status["loaded"] is None:
            try:
                from torch.utils import cpp_extension

                directory = build_directory()
                write_layout_header(directory)
                with _exclusive_build(directory):
                    cpp_extension.load(
                        name="rnnlab_fused",
                        sources=[str(CSRC / name) for name in SOURCES],
                        extra_include_paths=[str(CSRC), str(directory)],
                        extra_cflags=compile_flags(),
                        extra_ldflags=["-fopenmp"],
                        build_directory=str(directory),
                        is_python_module=False,
                        verbose=False,
                    )
                _status["loaded"] = True
            except Exception as exc:  # any build or load failure means: use the reference engine
                _status["loaded"], _status["error"] = False, exc
                first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
                warnings.warn(
                    f"rnnlab: could not build the fused engine's C++ kernels ({first_line}); the fused backend "
                    "runs the reference engine instead (correct, slower). A C++ compiler and ninja are needed; "
                    f"build directory: {build_directory()}",
                    RuntimeWarning, stacklevel=3)
    return bool(_status["loaded"])


def error() -> BaseException | None:
    """The exception of a failed build, or None."""
    return _status["error"]  # type: ignore[return-value]
