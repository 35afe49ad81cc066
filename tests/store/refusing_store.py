"""A canonical store that refuses batches on demand, as a full disk would (for outbox tests)."""

from __future__ import annotations

import pytest

from contexta.capture import StoreSink
from contexta.capture._log._batch import CaptureBatch


class StoreSwitch:
    """While `refusing` is True the canonical store refuses every batch as a full disk would, so
    what capture sends it is parked in the outbox (for `replay_outbox()` once it is False again)."""

    def __init__(self) -> None:
        self.refusing = False


def refuse_store_writes(monkeypatch: pytest.MonkeyPatch) -> StoreSwitch:
    switch = StoreSwitch()
    write = StoreSink.write

    def refusing_write(self: StoreSink, batch: CaptureBatch) -> None:
        if switch.refusing:
            raise OSError(28, "No space left on device")
        write(self, batch)

    monkeypatch.setattr(StoreSink, "write", refusing_write)
    return switch
