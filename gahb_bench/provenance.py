"""Where a result comes from: versions, device, git commit, times (stored in the store's attrs)."""

from __future__ import annotations

import datetime as _dt
import platform
import subprocess
from pathlib import Path

import numpy as np


def now() -> str:
    """The current UTC time, ISO 8601, to the second."""
    return _dt.datetime.now(_dt.timezone.utc).replace(microsecond=0).isoformat()


def git_commit() -> str | None:
    """The commit of the gahb-bench source tree when it is a git checkout, else None."""
    root = Path(__file__).resolve().parent.parent
    if not (root / ".git").exists():
        return None
    try:
        out = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True,
                             text=True, timeout=5, check=True)
    except (OSError, subprocess.SubprocessError):
        return None
    dirty = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
                           capture_output=True, text=True, timeout=5)
    return out.stdout.strip() + ("-dirty" if dirty.stdout.strip() else "")


def cpu_name() -> str:
    """The CPU's model name and the vector instruction set torch dispatches to (``AVX2``,
    ``AVX512``, …). Recorded because it moves the numbers: the kernels differ by instruction set,
    and so does their rounding, and a training amplifies rounding into differences that a rerun
    on another CPU shows (README, "Reproducing an entry")."""
    import torch

    model = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:  # not Linux: the platform's name
        pass
    return f"{model} ({torch.backends.cpu.get_cpu_capability()})"


def environment(device: str) -> dict[str, str | None]:
    """Versions of what computes the numbers, and the device they ran on."""
    import torch
    import xarray
    import zarr

    from gahb_bench import __version__

    return {
        "gahb_bench_version": __version__,
        "torch_version": torch.__version__,
        "numpy_version": np.__version__,
        "xarray_version": xarray.__version__,
        "zarr_version": zarr.__version__,
        "python_version": platform.python_version(),
        "device": device,
        "device_name": torch.cuda.get_device_name() if device.startswith("cuda") else platform.processor() or platform.machine(),
        "cpu": cpu_name(),
        "git_commit": git_commit(),
    }
