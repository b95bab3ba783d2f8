"""Result files: a CSV table plus a JSON sidecar with the run's metadata, written atomically.

Each file is written to a temporary name in the same directory and renamed over the target,
so an interrupted run never leaves a truncated file and never destroys the previous result.
"""

import contextlib
import importlib
import json
import os
import platform
import subprocess
import sys
import tempfile
from datetime import UTC, datetime
from importlib import metadata as importlib_metadata
from pathlib import Path

import pandas as pd

from actbench_ulp.core import DISTRIBUTION

__all__ = ["KERNEL_SOURCES", "SCHEMA_VERSION", "kernels_changed_since", "run_metadata", "source_checkout",
           "write_atomic", "write_table"]

# what readers check (resultset): bumped when a field changes meaning; fields added leave it
SCHEMA_VERSION = 1

_PACKAGES = (DISTRIBUTION, "numpy", "numba", "llvmlite", "mpmath", "gmpy2", "pandas", "scipy")


_UMASK = os.umask(0o022)
os.umask(_UMASK)


def write_atomic(path: Path, data: str | bytes) -> None:
    """``data`` (text as UTF-8, or bytes) into ``path`` whole or not at all."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, 0o666 & ~_UMASK)  # mkstemp makes 0600; results are for everyone to read
        f = (os.fdopen(fd, "wb") if isinstance(data, bytes)
             else os.fdopen(fd, "w", encoding="utf-8", newline=""))
        with f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _versions() -> dict:
    out = {"python": platform.python_version()}
    for name in _PACKAGES:
        try:
            out[name] = importlib_metadata.version(name)
        except importlib_metadata.PackageNotFoundError:
            out[name] = None
    return out


def _compiler_target() -> dict:
    """The CPU the kernels are compiled for as Numba's compiler sees it: its name (LLVM's for
    the host, or NUMBA_CPU_NAME's), vector extensions and the widest vector the kernels get
    (kernels/_target.py)."""
    from actbench_ulp.kernels import _target  # every run that writes results has imported it

    return _target.describe()


_FRAMEWORKS = ("torch", "jax")


def _torch(torch) -> dict:
    # ATen chose its kernels' instruction set once, at import: the CPU's best, or lower where
    # ATEN_CPU_CAPABILITY (in env below) asks
    return {"version": torch.__version__, "cpu_capability": torch.backends.cpu.get_cpu_capability()}


def _jax(jax) -> dict:
    # no dispatch level to report: XLA compiles each computation for the host CPU through
    # LLVM, using every feature it has unless XLA_FLAGS (in env below) caps it
    # (--xla_cpu_max_isa); the device says where the computations ran
    import jaxlib

    device = jax.devices()[0]
    return {"version": jax.__version__, "jaxlib": jaxlib.__version__, "platform": device.platform,
            "device_kind": device.device_kind, "cpu_capability": None}


def _peers(names) -> dict:
    """The framework peers' versions and dispatch levels: those this process imported (an
    audit's peers, a user's callables in them) and those among ``names`` (a benchmark run
    times its peers in another process), imported here for them; the others cost nothing."""
    out = {}
    for name in _FRAMEWORKS:
        if name not in sys.modules and name not in names:
            continue
        try:
            module = importlib.import_module(name)
        except ImportError:  # named by the run but not installed: the run said so already
            out[name] = None
            continue
        out[name] = (_torch if name == "torch" else _jax)(module)
    return out


def _cpu() -> dict:
    model = platform.processor() or ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {"model": model, "machine": platform.machine(), "logical_cores": os.cpu_count(),
            "system": platform.system(), "release": platform.release()}


def source_checkout() -> Path | None:
    """actbench's own git checkout, or None for an installed copy.  An installed actbench sits in
    site-packages, perhaps inside a user's repository: git there would describe the user's code,
    so git is asked only when this file lies in actbench's checkout (bench/core/ -> ../..)."""
    top = Path(__file__).resolve().parents[2]
    if not (top / "pyproject.toml").is_file() or not (top / "kernels").is_dir():
        return None
    try:
        found = subprocess.run(["git", "rev-parse", "--show-toplevel"], cwd=top, capture_output=True,
                               text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    if found.returncode != 0 or Path(found.stdout.strip()).resolve() != top:
        return None
    return top


# the checkout's state when the running command started (``checkout_state_at_start``): a
# sweep of half an hour must not be recorded as the tree its author left an hour later
_STARTED: dict | None = None


@contextlib.contextmanager
def checkout_state_at_start():
    """Within this block, result files record the commit and clean-tree flag read on entry."""
    global _STARTED
    _STARTED = _read_commit()
    try:
        yield
    finally:
        _STARTED = None


def _commit() -> dict:
    return dict(_STARTED) if _STARTED is not None else _read_commit()


def _read_commit() -> dict:
    top = source_checkout()
    if top is None:
        return {"commit": None, "dirty": None}
    try:
        sha = subprocess.run(["git", "rev-parse", "HEAD"], cwd=top, capture_output=True,
                             text=True, timeout=10, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=top,
                               capture_output=True, text=True, timeout=10).stdout.strip() != ""
        return {"commit": sha, "dirty": dirty}
    except (OSError, subprocess.SubprocessError):
        return {"commit": None, "dirty": None}


# what decides a kernel's numbers: its code, its reference, its catalog row (paths from the top)
KERNEL_SOURCES = ("kernels", "reference", "bench/core/catalog.py")


def kernels_changed_since(commit: str) -> bool | None:
    """Whether the kernels' sources differ between ``commit`` and the working tree (None when
    git cannot tell: an installed copy, an unknown commit)."""
    top = source_checkout()
    if top is None:
        return None
    try:
        done = subprocess.run(["git", "diff", "--quiet", commit, "--", *KERNEL_SOURCES],
                              cwd=top, capture_output=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    return {0: False, 1: True}.get(done.returncode)


# settings that change the code the kernels and the peers run (the compiler's target, ATen's
# instruction set, XLA's flags) or how many threads run it
_ENV = ("NUMBA_NUM_THREADS", "OMP_NUM_THREADS", "NUMBA_CPU_NAME", "NUMBA_CPU_FEATURES", "NUMBA_ENABLE_AVX",
        "ATEN_CPU_CAPABILITY", "XLA_FLAGS")


def run_metadata(*, peer_names=(), **extra) -> dict:
    """A result file's metadata; ``peer_names``: the run's implementations (the framework
    peers among them are described, see ``_peers``), ``extra``: the run's own fields."""
    return {
        "schema_version": SCHEMA_VERSION,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "argv": sys.argv,
        "versions": _versions(),
        "cpu": _cpu(),
        "compiler_target": _compiler_target(),
        "peers": _peers(set(peer_names)),
        **_commit(),
        "env": {k: os.environ[k] for k in _ENV if k in os.environ},
        **extra,
    }


def write_table(df: pd.DataFrame, out_dir, name: str, **extra_meta) -> tuple[Path, Path]:
    """Write ``name``.csv and ``name``.json (metadata: ``run_metadata(**extra_meta)``) under
    out_dir; return both paths."""
    out_dir = Path(out_dir)
    csv_path, meta_path = out_dir / f"{name}.csv", out_dir / f"{name}.json"
    # the tree's state before this run's own files replace committed ones (results/exhaustive/
    # and the like are tracked: writing them first would mark every such run dirty)
    meta = run_metadata(table=csv_path.name, rows=len(df), **extra_meta)
    write_atomic(csv_path, df.to_csv(index=False))
    write_atomic(meta_path, json.dumps(meta, indent=2, default=str) + "\n")
    return csv_path, meta_path
