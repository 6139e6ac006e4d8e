"""A record is handed to the pipeline only after every earlier record of its partition since the restart point."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from smsdispatch.core.continuity import Continuity

T = "sms.requested"


@dataclass(frozen=True)
class Record:
    offset: int


class Kafka:
    """The partition's log as a direct read sees it: ``holes`` are offsets that hold no record (markers)."""

    def __init__(self, holes: frozenset[int] = frozenset()) -> None:
        self.holes = holes
        self.reads: list[tuple[str, int, int, int]] = []

    async def read(self, topic: str, partition: int, start: int, end: int) -> list[Record]:
        self.reads.append((topic, partition, start, end))
        return [Record(offset) for offset in range(start, end) if offset not in self.holes]


@pytest.mark.asyncio
async def test_a_record_arriving_past_a_hole_comes_after_the_missing_records_read_directly() -> None:
    kafka = Kafka()
    guard = Continuity(lambda: {(T, 5): 1523}, kafka.read)

    missed, take = await guard.admit(T, 5, 1524, generation=15)

    assert [record.offset for record in missed] == [1523]
    assert take
    assert kafka.reads == [(T, 5, 1523, 1524)]
    assert guard.filled == 1


@pytest.mark.asyncio
async def test_a_hole_filled_is_reported_with_its_topic_and_record_count_and_none_is_for_records_in_order() -> None:
    gaps: list[tuple[str, int]] = []
    guard = Continuity(lambda: {(T, 5): 100}, Kafka(holes=frozenset({103})).read, on_gap=lambda *gap: gaps.append(gap))

    await guard.admit(T, 5, 100, generation=1)
    await guard.admit(T, 5, 101, generation=1)
    await guard.admit(T, 5, 105, generation=1)  # 102 to 104 missing; 103 holds no record

    assert gaps == [(T, 2)]


@pytest.mark.asyncio
async def test_records_in_order_from_the_restart_point_need_no_read() -> None:
    kafka = Kafka()
    guard = Continuity(lambda: {(T, 5): 100}, kafka.read)

    answers = [await guard.admit(T, 5, offset, generation=3) for offset in (100, 101, 102)]

    assert answers == [([], True)] * 3
    assert kafka.reads == []


@pytest.mark.asyncio
async def test_offsets_without_a_record_are_passed_over_without_a_loop() -> None:
    kafka = Kafka(holes=frozenset({7}))  # a transaction marker at 7
    guard = Continuity(lambda: {(T, 0): 5}, kafka.read)
    assert await guard.admit(T, 0, 5, generation=1) == ([], True)
    assert await guard.admit(T, 0, 6, generation=1) == ([], True)

    missed, take = await guard.admit(T, 0, 8, generation=1)

    assert (missed, take) == ([], True)
    assert await guard.admit(T, 0, 9, generation=1) == ([], True)
    assert kafka.reads == [(T, 0, 7, 8)]


@pytest.mark.asyncio
async def test_a_second_delivery_within_an_assignment_is_not_handed_over_again() -> None:
    guard = Continuity(lambda: {(T, 0): 10}, Kafka().read)
    await guard.admit(T, 0, 10, generation=1)
    await guard.admit(T, 0, 11, generation=1)

    assert await guard.admit(T, 0, 10, generation=1) == ([], False)


@pytest.mark.asyncio
async def test_a_new_assignment_restarts_from_the_committed_offset_it_seeked_to() -> None:
    restarts = {(T, 0): 10}
    kafka = Kafka()
    guard = Continuity(lambda: restarts, kafka.read)
    await guard.admit(T, 0, 10, generation=1)
    await guard.admit(T, 0, 11, generation=1)
    restarts[(T, 0)] = 11  # the rebalance committed 11 and reading restarts there

    assert await guard.admit(T, 0, 11, generation=2) == ([], True), "read again after the seek: handed over"
    assert kafka.reads == []


@pytest.mark.asyncio
async def test_a_partition_never_committed_takes_its_first_record_as_the_start() -> None:
    kafka = Kafka()
    guard = Continuity(lambda: {(T, 0): None}, kafka.read)

    assert await guard.admit(T, 0, 40, generation=1) == ([], True)
    assert kafka.reads == []


class FlakyKafka(Kafka):
    """Fails its first reads as a broker that is away does, then answers."""

    def __init__(self, failures: int) -> None:
        super().__init__()
        self.failures = failures

    async def read(self, topic: str, partition: int, start: int, end: int) -> list[Record]:
        if self.failures:
            self.failures -= 1
            raise TimeoutError("no answer from the broker")
        return await super().read(topic, partition, start, end)


@pytest.mark.asyncio
async def test_a_hole_that_cannot_be_read_yet_is_read_again_until_it_can_never_passed_over() -> None:
    kafka = FlakyKafka(failures=2)
    waits: list[float] = []

    async def sleep(seconds: float) -> None:
        waits.append(seconds)

    guard = Continuity(lambda: {(T, 5): 1523}, kafka.read, sleep=sleep)

    missed, take = await guard.admit(T, 5, 1525, generation=1)

    assert [record.offset for record in missed] == [1523, 1524]
    assert take
    assert len(waits) == 2
