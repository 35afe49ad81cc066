"""Fixtures of the store tests."""

from __future__ import annotations

import pytest
from refusing_store import StoreSwitch, refuse_store_writes


@pytest.fixture
def refusing_store(monkeypatch: pytest.MonkeyPatch) -> StoreSwitch:
    """A canonical store that refuses batches while `refusing_store.refusing` is True."""
    return refuse_store_writes(monkeypatch)
