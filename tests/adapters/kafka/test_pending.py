"""Watching a producer's unacknowledged writes, and limiting metadata refreshes, without a broker."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from smsdispatch.adapters.kafka import PendingWrites, RefreshLimiter


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.mark.asyncio
async def test_a_write_is_watched_until_its_delivery_is_done_and_the_oldest_age_follows_the_oldest() -> None:
    clock = Clock()
    pending = PendingWrites(clock)
    loop = asyncio.get_running_loop()
    first, second = loop.create_future(), loop.create_future()
    pending.watch(first, "sms.dispatched", 3)
    clock.now += 5
    pending.watch(second, "sms.status", None)
    clock.now += 1

    assert len(pending) == 2
    assert pending.oldest_age() == 6
    first.set_result(None)
    await asyncio.sleep(0)  # done-callbacks run on the loop
    assert len(pending) == 1
    assert pending.oldest_age() == 1
    second.cancel()
    await asyncio.sleep(0)
    assert (len(pending), pending.oldest_age()) == (0, 0.0)


@pytest.mark.asyncio
async def test_stuck_writes_are_grouped_by_partition_and_each_is_counted_once() -> None:
    clock = Clock()
    pending = PendingWrites(clock)
    loop = asyncio.get_running_loop()
    writes = [loop.create_future() for _ in range(4)]
    pending.watch(writes[0], "sms.dispatched", 3)
    pending.watch(writes[1], "sms.dispatched", 3)
    clock.now += 4
    pending.watch(writes[2], "ledger-changelog", 0)
    clock.now += 3  # 7 s, 7 s, 3 s old

    first = pending.stuck(older_than=5)
    second = pending.stuck(older_than=5)
    pending.watch(writes[3], "sms.dispatched", 3)
    clock.now += 3  # 10, 10, 6 and 3 s old
    third = pending.stuck(older_than=5)

    assert first.by_partition == {("sms.dispatched", 3): (2, 7.0)}
    assert first.newly_stuck == {"sms.dispatched": 2}
    assert second.by_partition == first.by_partition
    assert second.newly_stuck == {}, "already counted"
    assert third.by_partition == {("sms.dispatched", 3): (2, 10.0), ("ledger-changelog", 0): (1, 6.0)}
    assert third.newly_stuck == {"ledger-changelog": 1}
    assert not pending.stuck(older_than=10)


@pytest.mark.asyncio
async def test_refreshes_within_the_interval_of_the_last_one_share_one_that_starts_when_it_is_over() -> None:
    loop = asyncio.get_running_loop()
    started_at: list[float] = []

    def refresh() -> asyncio.Future[Any]:
        started_at.append(loop.time())
        done = loop.create_future()
        done.set_result(True)
        return done

    limiter = RefreshLimiter(refresh, interval=0.2)
    begin = loop.time()
    assert await limiter() is True  # none before: at once
    later = [limiter() for _ in range(50)]  # a sender loop asking again and again
    assert await asyncio.gather(*later) == [True] * 50

    assert len(started_at) == 2
    assert started_at[0] - begin < 0.05
    assert started_at[1] - started_at[0] >= 0.19
    assert limiter.started == 2
