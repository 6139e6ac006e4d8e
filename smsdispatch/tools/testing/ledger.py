"""A changelog for the idempotency ledger that needs no Kafka: for tests, yours and ours."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from dataclasses import dataclass


@dataclass(frozen=True)
class Acknowledged:
    """What Kafka's record metadata says of a write, as far as a changelog's reader needs: where it landed."""

    partition: int
    offset: int


class InMemoryChangelog:
    """Records every write in order and acknowledges it at once, with its offset in its partition (0, 1, ...);
    pass it to ``Ledger(store, changelog)`` or to a ``ChangelogTable``."""

    def __init__(self) -> None:
        self.writes: list[tuple[bytes, bytes | None, int]] = []
        self._next: dict[int, int] = {}

    def __call__(self, key: bytes, value: bytes | None, partition: int) -> Awaitable[Acknowledged]:
        self.writes.append((key, value, partition))
        offset = self._next.get(partition, 0)
        self._next[partition] = offset + 1
        future: asyncio.Future[Acknowledged] = asyncio.get_running_loop().create_future()
        future.set_result(Acknowledged(partition, offset))
        return future
