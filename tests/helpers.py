"""Helpers shared by tests (importable: pyproject puts tests/ on sys.path)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

GAHB = Path(sys.executable).parent / "gahb"


def gahb(*args: str, env: dict | None = None, timeout: float = 600) -> subprocess.CompletedProcess:
    """Run the installed `gahb` console script; returns the completed process (text output)."""
    full_env = {k: v for k, v in os.environ.items() if k != "GAHB_LOAD_PLUGINS"}
    full_env.update(env or {})
    return subprocess.run([str(GAHB), *args], capture_output=True, text=True, env=full_env, timeout=timeout)


def tree_snapshot(path: Path) -> dict[str, bytes]:
    """Every file under ``path`` with its bytes: to prove a store was left untouched."""
    return {str(p.relative_to(path)): p.read_bytes() for p in sorted(path.rglob("*")) if p.is_file()}
