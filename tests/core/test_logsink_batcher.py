"""Batcher: outcomes handed in one at a time are written in batches, one batch at a time, and each caller returns
only once its own batch is in the database."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest

from smsdispatch.contract import SmsStatus
from smsdispatch.core.logsink import Batcher, Loggable

pytestmark = pytest.mark.asyncio


def receipt(n: int) -> SmsStatus:
    return SmsStatus(tenant_id="acme", request_id=f"r-{n}", provider_message_id="SM" + "a" * 32, status="sent")


class SlowDatabase:
    """Writes take ``delay`` seconds; records the batches and how many writes overlapped at most."""

    def __init__(self, delay: float = 0.0) -> None:
        self.batches: list[list[str | None]] = []
        self.delay = delay
        self.writing = 0
        self.most_at_once = 0

    async def write(self, outcomes: Sequence[Loggable]) -> None:
        self.writing += 1
        self.most_at_once = max(self.most_at_once, self.writing)
        await asyncio.sleep(self.delay)
        self.batches.append([outcome.request_id for outcome in outcomes])
        self.writing -= 1


async def test_a_full_batch_is_written_at_once_and_its_callers_return_after_the_write() -> None:
    database = SlowDatabase()
    batcher = Batcher(database.write, max_size=3, within=60)

    await asyncio.wait_for(asyncio.gather(*(batcher.add(receipt(n)) for n in range(3))), 5)

    assert database.batches == [["r-0", "r-1", "r-2"]]


async def test_a_batch_that_never_fills_is_written_after_the_wait() -> None:
    database = SlowDatabase()
    batcher = Batcher(database.write, max_size=100, within=0.05)

    await asyncio.wait_for(batcher.add(receipt(1)), 5)

    assert database.batches == [["r-1"]]


async def test_batches_are_written_one_at_a_time_in_the_order_they_closed() -> None:
    database = SlowDatabase(delay=0.02)
    batcher = Batcher(database.write, max_size=2, within=60)

    await asyncio.wait_for(asyncio.gather(*(batcher.add(receipt(n)) for n in range(6))), 5)

    assert database.batches == [["r-0", "r-1"], ["r-2", "r-3"], ["r-4", "r-5"]]
    assert database.most_at_once == 1


async def test_a_caller_cancelled_while_waiting_leaves_its_batch_to_be_written_for_the_others() -> None:
    database = SlowDatabase(delay=0.02)
    batcher = Batcher(database.write, max_size=2, within=60)
    first = asyncio.create_task(batcher.add(receipt(1)))
    await asyncio.sleep(0)
    second = asyncio.create_task(batcher.add(receipt(2)))
    await asyncio.sleep(0.005)
    first.cancel()

    await asyncio.wait_for(second, 5)

    assert database.batches == [["r-1", "r-2"]]


async def test_an_enqueued_outcome_joins_its_batch_at_once_and_the_wait_ends_when_that_batch_is_written() -> None:
    database = SlowDatabase(delay=0.02)
    batcher = Batcher(database.write, max_size=2, within=60)

    written = batcher.enqueue(receipt(1))
    assert not written.done()
    await asyncio.wait_for(batcher.add(receipt(2)), 5)  # fills the batch the first outcome is already in

    assert database.batches == [["r-1", "r-2"]]
    await asyncio.wait_for(written, 1)


async def test_a_cancelled_enqueue_wait_leaves_its_batch_to_be_written_for_the_others() -> None:
    database = SlowDatabase(delay=0.02)
    batcher = Batcher(database.write, max_size=2, within=60)
    written = batcher.enqueue(receipt(1))
    written.cancel()

    await asyncio.wait_for(batcher.add(receipt(2)), 5)

    assert database.batches == [["r-1", "r-2"]]
