"""The worker's own offset commits: only what was reported done, only for partitions it still owns."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import pytest
from aiokafka.errors import CommitFailedError, KafkaConnectionError
from aiokafka.structs import OffsetAndMetadata, TopicPartition
from faust.types import TP

from smsdispatch.runtime.commits import OffsetCommitter

REQUESTED = "sms.requested"


class FakeKafkaConsumer:
    """aiokafka's consumer as the committer uses it: ``commit``, answering as told."""

    def __init__(self, consumer: FakeConsumer) -> None:
        self.faust = consumer

    async def commit(self, offsets: Mapping[TopicPartition, OffsetAndMetadata]) -> None:
        self.faust.commits.append({TP(tp.topic, tp.partition): meta.offset for tp, meta in offsets.items()})
        if self.faust.error is not None:
            raise self.faust.error


class FakeThread:
    def __init__(self, consumer: FakeConsumer) -> None:
        self.client = FakeKafkaConsumer(consumer)

    def _ensure_consumer(self) -> FakeKafkaConsumer:
        return self.client

    async def call_thread(self, fun: Callable[..., Awaitable[Any]], *args: Any) -> Any:
        return await fun(*args)


class FakeConsumer:
    """Faust's consumer as the committer sees it: an assignment, and the thread owning its Kafka client."""

    def __init__(self, assignment: set[TP], error: Exception | None = None) -> None:
        self.owned = assignment
        self.error = error
        self.commits: list[dict[TP, int]] = []
        self._thread = FakeThread(self)

    def assignment(self) -> set[TP]:
        return self.owned


@pytest.mark.asyncio
async def test_the_committed_offset_is_the_one_after_the_last_record_reported_done() -> None:
    consumer = FakeConsumer({TP(REQUESTED, 0), TP(REQUESTED, 1)})
    committer = OffsetCommitter(lambda: consumer)

    committer.done(REQUESTED, 0, 41)
    committer.done(REQUESTED, 0, 42)
    committer.done(REQUESTED, 1, 7)

    assert await committer.flush() is True
    assert consumer.commits == [{TP(REQUESTED, 0): 43, TP(REQUESTED, 1): 8}]


@pytest.mark.asyncio
async def test_a_report_of_an_earlier_offset_never_moves_the_position_back() -> None:
    consumer = FakeConsumer({TP(REQUESTED, 0)})
    committer = OffsetCommitter(lambda: consumer)

    committer.done(REQUESTED, 0, 42)
    committer.done(REQUESTED, 0, 10)  # a re-read after a rebalance reports lower offsets again

    await committer.flush()
    assert consumer.commits == [{TP(REQUESTED, 0): 43}]


@pytest.mark.asyncio
async def test_partitions_no_longer_assigned_are_not_committed() -> None:
    consumer = FakeConsumer({TP(REQUESTED, 1)})
    committer = OffsetCommitter(lambda: consumer)

    committer.done(REQUESTED, 0, 5)  # moved to another worker: its next owner commits it
    committer.done(REQUESTED, 1, 5)

    await committer.flush()
    assert consumer.commits == [{TP(REQUESTED, 1): 6}]


@pytest.mark.asyncio
async def test_nothing_reported_commits_nothing() -> None:
    consumer = FakeConsumer({TP(REQUESTED, 0)})
    committer = OffsetCommitter(lambda: consumer)

    assert await committer.flush() is True
    assert consumer.commits == []


@pytest.mark.asyncio
async def test_a_commit_refused_after_a_rebalance_is_dropped_not_carried_into_the_next_flush() -> None:
    consumer = FakeConsumer({TP(REQUESTED, 0)}, error=CommitFailedError("the group has already rebalanced"))
    committer = OffsetCommitter(lambda: consumer)
    committer.done(REQUESTED, 0, 5)

    assert await committer.flush() is False
    consumer.error = None
    assert await committer.flush() is True

    assert consumer.commits == [{TP(REQUESTED, 0): 6}]
    assert committer.pending() == {}


@pytest.mark.asyncio
async def test_a_commit_that_fails_while_the_broker_is_away_is_retried_by_the_next_flush() -> None:
    consumer = FakeConsumer({TP(REQUESTED, 0)}, error=KafkaConnectionError("broker down"))
    committer = OffsetCommitter(lambda: consumer)
    committer.done(REQUESTED, 0, 5)

    assert await committer.flush() is False
    committer.done(REQUESTED, 0, 9)
    consumer.error = None
    assert await committer.flush() is True

    assert consumer.commits == [{TP(REQUESTED, 0): 6}, {TP(REQUESTED, 0): 10}]
