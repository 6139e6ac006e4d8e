"""Writes a producer has accepted and Kafka has not acknowledged yet, oldest first."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


@dataclass
class StuckWrites:
    """Writes waiting longer than a threshold: how many and the oldest's age per (topic, partition), and how many
    of them crossed the threshold since the last look, per topic (so each is counted once)."""

    by_partition: dict[tuple[str, int | None], tuple[int, float]] = field(default_factory=dict)
    newly_stuck: dict[str, int] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return bool(self.by_partition)


class PendingWrites:
    """Each watched delivery future from its send until it is done (acknowledged, failed or cancelled).

    Cost per write: a dict entry and a done-callback. Entries are kept in the order they were sent, so the oldest
    is the first, and :meth:`stuck` reads only the writes past its threshold plus one.
    """

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._pending: dict[asyncio.Future[Any], tuple[int, str, int | None, float]] = {}
        self._sent = 0
        #: The sequence number up to which stuck writes were counted.
        self._counted = 0

    def __len__(self) -> int:
        return len(self._pending)

    def watch(self, delivery: asyncio.Future[Any], topic: str, partition: int | None) -> None:
        self._sent += 1
        self._pending[delivery] = (self._sent, topic, partition, self._clock())
        delivery.add_done_callback(self._finished)

    def _finished(self, delivery: asyncio.Future[Any]) -> None:
        self._pending.pop(delivery, None)

    def oldest_age(self) -> float:
        """Seconds the oldest unacknowledged write has waited; 0 when none waits."""
        for _, _, _, sent_at in self._pending.values():
            return max(0.0, self._clock() - sent_at)
        return 0.0

    def stuck(self, older_than: float) -> StuckWrites:
        """The writes waiting more than ``older_than`` seconds."""
        found = StuckWrites()
        cutoff = self._clock() - older_than
        counted = self._counted
        for sequence, topic, partition, sent_at in list(self._pending.values()):
            if sent_at >= cutoff:
                break
            count, oldest = found.by_partition.get((topic, partition), (0, 0.0))
            found.by_partition[topic, partition] = (count + 1, max(oldest, self._clock() - sent_at))
            if sequence > counted:
                found.newly_stuck[topic] = found.newly_stuck.get(topic, 0) + 1
                self._counted = max(self._counted, sequence)
        return found
