"""A changelog for the idempotency ledger that needs no Kafka: for tests, yours and ours."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable


class InMemoryChangelog:
    """Records every write in order and acknowledges it at once; pass it to ``Ledger(store, changelog)``."""

    def __init__(self) -> None:
        self.writes: list[tuple[bytes, bytes | None, int]] = []

    def __call__(self, key: bytes, value: bytes | None, partition: int) -> Awaitable[None]:
        self.writes.append((key, value, partition))
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        future.set_result(None)
        return future
