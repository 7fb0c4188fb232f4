"""Helpers shared by tests (importable: pyproject puts tests/ on sys.path)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Callable

GAHB = Path(sys.executable).parent / "gahb"


def gahb(*args: str, env: dict | None = None, timeout: float = 600) -> subprocess.CompletedProcess:
    """Run the installed `gahb` console script; returns the completed process (text output)."""
    full_env = {k: v for k, v in os.environ.items() if k != "GAHB_LOAD_PLUGINS"}
    full_env.update(env or {})
    return subprocess.run([str(GAHB), *args], capture_output=True, text=True, env=full_env, timeout=timeout)


def tree_snapshot(path: Path) -> dict[str, bytes]:
    """Every file under ``path`` with its bytes: to prove a store was left untouched."""
    return {str(p.relative_to(path)): p.read_bytes() for p in sorted(path.rglob("*")) if p.is_file()}


XSS = "<script>window.__xss = 1</script>"


def add_hostile_entry(folder: Path, path: Path) -> str:
    """Copy the leaderboard entry at ``path`` as a valid entry whose architecture name, params
    and provenance are markup (its figures copied too); returns the new entry's id."""
    import json

    from gahb_bench.leaderboard.entry import entry_id, seal

    entry = json.loads(path.read_text())
    entry["arch"] = XSS
    entry["arch_params"] = {"<img src=x onerror=alert(1)>": "javascript:alert(1)"}
    entry["provenance"]["device"] = '"><script>alert(2)</script>'
    entry["inductive_biases"] = {"locality": "<script>alert(3)</script>"}
    entry["id"] = entry_id(entry)
    (folder / "entries" / f"{entry['id']}.json").write_text(json.dumps(seal(entry)))
    (folder / "figures" / entry["id"]).mkdir()
    for name in entry["figures"]:
        (folder / "figures" / entry["id"] / name).write_bytes((folder / "figures" / path.stem / name).read_bytes())
    return entry["id"]


def register_battery(battery) -> Callable[[], None]:
    """Register ``battery`` (a :class:`gahb_bench.Battery`) in this process as an in-process
    plugin named after it; returns the undo."""
    import types

    import gahb_bench
    from gahb_bench.registry import register_extra

    @gahb_bench.hookimpl
    def gahb_register_batteries(register):
        register(battery)

    return register_extra(types.SimpleNamespace(gahb_register_batteries=gahb_register_batteries), name=battery.name)
