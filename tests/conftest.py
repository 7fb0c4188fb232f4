"""Shared fixtures: an isolated registry per test."""

from __future__ import annotations

import pytest

from gahb_bench.registry import reset_registry


@pytest.fixture(autouse=True)
def fresh_registry(monkeypatch):
    """Each test sees the plugins as installed, with no allow-list unless it sets one."""
    monkeypatch.delenv("GAHB_LOAD_PLUGINS", raising=False)
    reset_registry()
    yield
    reset_registry()
