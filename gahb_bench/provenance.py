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
        "git_commit": git_commit(),
    }
