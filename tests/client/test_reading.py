"""read_topic against the real broker: bounded by time, by offsets and by partition, and telling its size."""

from __future__ import annotations

import uuid

import pytest

from smsdispatch.client import read_topic
from smsdispatch.contract.topics import TopicSpec
from smsdispatch.runtime.topics import ensure_topics
from tests.client.conftest import Produce

BASE_MS = 1_700_000_000_000  # record timestamps chosen by the test: one second apart


async def topic_of_six(broker: str, publish_records: Produce) -> str:
    """A fresh one-partition topic holding values b"0".."5" at offsets 0..5, written at BASE_MS + i seconds."""
    topic = f"test.reading.{uuid.uuid4().hex}"
    await ensure_topics(broker, 1, (TopicSpec(topic),))
    await publish_records([(topic, "k", str(i).encode(), BASE_MS + i * 1000) for i in range(6)])
    return topic


async def values(broker: str, topic: str, **bounds: object) -> list[bytes | None]:
    return [record.value async for record in read_topic(broker, [topic], **bounds)]  # type: ignore[arg-type]


@pytest.mark.asyncio
async def test_read_topic_reads_only_the_offsets_from_and_to_both_inclusive(
    broker: str, publish_records: Produce
) -> None:
    topic = await topic_of_six(broker, publish_records)
    sizes: list[int] = []
    assert await values(broker, topic, from_offset=2, to_offset=4, on_size=sizes.append) == [b"2", b"3", b"4"]
    assert sizes == [3]
    assert await values(broker, topic, from_offset=4, to_offset=100) == [b"4", b"5"]
    assert await values(broker, topic, to_offset=1) == [b"0", b"1"]


@pytest.mark.asyncio
async def test_read_topic_reads_only_the_chosen_partitions(broker: str, publish_records: Produce) -> None:
    topic = await topic_of_six(broker, publish_records)
    sizes: list[int] = []
    assert await values(broker, topic, partitions={1}, on_size=sizes.append) == []
    assert sizes == [0]
    assert len(await values(broker, topic, partitions={0})) == 6


@pytest.mark.asyncio
async def test_read_topic_reads_the_time_window_and_tells_the_offsets_it_spans(
    broker: str, publish_records: Produce
) -> None:
    topic = await topic_of_six(broker, publish_records)
    sizes: list[int] = []
    window = await values(broker, topic, start_ms=BASE_MS + 2000, end_ms=BASE_MS + 3000, on_size=sizes.append)
    assert window == [b"2", b"3"]
    assert sizes == [4]  # it reads on to the end offset seen at the start, keeping what is in the window
    assert await values(broker, topic, start_ms=BASE_MS + 60_000) == []
