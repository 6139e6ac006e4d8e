"""Kafka writes that wait too long are counted once each and logged at most once per interval, naming each
topic-partition and what it waits for."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from typing import Any

import pytest

from smsdispatch.adapters.kafka import PendingWrites
from smsdispatch.runtime.write_watch import WriteWatch

pytestmark = pytest.mark.asyncio


class Clock:
    def __init__(self) -> None:
        self.now = 10.0

    def __call__(self) -> float:
        return self.now


@dataclass
class Producer:
    pending: PendingWrites

    def waiting_for(self, topic: str, partition: int | None) -> str:
        return f"a leader for {topic}"


@dataclass
class Counted:
    by_topic: dict[str, int] = field(default_factory=dict)

    def __call__(self, topic: str, n: int) -> None:
        self.by_topic[topic] = self.by_topic.get(topic, 0) + n


async def test_stuck_writes_are_counted_once_and_logged_once_per_interval_with_their_partition(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = Clock()
    pending = PendingWrites(clock)
    loop = asyncio.get_running_loop()
    writes: list[asyncio.Future[Any]] = [loop.create_future() for _ in range(3)]
    pending.watch(writes[0], "sms.dispatched", 2)
    pending.watch(writes[1], "sms.dispatched", 2)
    pending.watch(writes[2], "sms.status", None)
    counted = Counted()
    watch = WriteWatch(lambda: Producer(pending), counted, log_after=10, log_every=30, clock=clock)
    caplog.set_level(logging.WARNING, logger="smsdispatch.kafka")

    clock.now += 5
    assert not watch.check()
    clock.now += 6
    assert watch.check()
    clock.now += 5
    assert watch.check()  # still stuck: counted already, and the log waits for its interval

    assert counted.by_topic == {"sms.dispatched": 2, "sms.status": 1}
    [line] = [record.getMessage() for record in caplog.records]
    assert "sms.dispatched[2]: 2 waiting, the oldest 11 s, for a leader for sms.dispatched" in line
    assert "sms.status[by key]: 1 waiting" in line
    clock.now += 30
    watch.check()
    assert len(caplog.records) == 2
    assert counted.by_topic == {"sms.dispatched": 2, "sms.status": 1}
    for write in writes:
        write.cancel()


async def test_before_the_producer_starts_nothing_waits() -> None:
    watch = WriteWatch(lambda: None, Counted())

    assert (watch.check(), watch.oldest_age()) == (False, 0.0)
