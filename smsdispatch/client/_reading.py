"""Reading topics without a consumer group: to the end (tenants list, replay) or as they grow (tail)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncGenerator, Callable, Collection, Sequence
from dataclasses import dataclass

from aiokafka import AIOKafkaConsumer, TopicPartition

from smsdispatch.contract.settings import bootstrap_servers


@dataclass(frozen=True, slots=True)
class TopicRecord:
    topic: str
    partition: int
    offset: int
    timestamp_ms: int
    key: bytes | None
    value: bytes | None


def _consumer(broker_url: str) -> AIOKafkaConsumer:
    # No group: nothing is committed, so reading never disturbs the worker or another reader.
    return AIOKafkaConsumer(bootstrap_servers=bootstrap_servers(broker_url), group_id=None, enable_auto_commit=False)


async def _assign_all(
    consumer: AIOKafkaConsumer, topics: Sequence[str], only: Collection[int] | None = None
) -> list[TopicPartition]:
    partitions: list[TopicPartition] = []
    for topic in topics:
        ids = consumer.partitions_for_topic(topic)
        if ids is None:
            await consumer._client.force_metadata_update()  # the topic may be new: ask the broker once more
            ids = consumer.partitions_for_topic(topic) or set()
        partitions.extend(TopicPartition(topic, p) for p in sorted(ids) if only is None or p in only)
    consumer.assign(partitions)
    return partitions


async def read_topic(
    broker_url: str,
    topics: Sequence[str],
    *,
    start_ms: int | None = None,
    end_ms: int | None = None,
    from_offset: int | None = None,
    to_offset: int | None = None,
    partitions: Collection[int] | None = None,
    on_size: Callable[[int], None] | None = None,
) -> AsyncGenerator[TopicRecord, None]:
    """Every record of ``topics`` (optionally from ``start_ms``) up to the end offsets seen at the start.

    ``from_offset``/``to_offset`` bound the offsets read in every partition (both inclusive), ``partitions``
    keeps only those partition numbers, and ``on_size`` is told once how many offsets the read spans (an upper
    bound on the records it yields), so a caller can show progress.
    """
    consumer = _consumer(broker_url)
    try:
        await consumer.start()  # inside the try: a consumer whose start failed must still be closed
        assigned = await _assign_all(consumer, topics, partitions)
        if not assigned:
            if on_size is not None:
                on_size(0)
            return
        ends = await consumer.end_offsets(assigned)
        if to_offset is not None:
            ends = {tp: min(end, to_offset + 1) for tp, end in ends.items()}
        starts = await consumer.beginning_offsets(assigned)
        if from_offset is not None:
            # Never seek below the log start: aiokafka would answer OffsetOutOfRange by jumping to the end.
            starts = {tp: max(start, from_offset) for tp, start in starts.items()}
        if start_ms is not None:
            found = await consumer.offsets_for_times(dict.fromkeys(assigned, start_ms))
            for tp in assigned:
                at = found.get(tp)
                starts[tp] = max(starts[tp], at.offset if at is not None else ends[tp])
        for tp in assigned:
            consumer.seek(tp, min(starts[tp], ends[tp]))
        if on_size is not None:
            on_size(sum(max(0, ends[tp] - starts[tp]) for tp in assigned))
        remaining = {tp for tp in assigned if await consumer.position(tp) < ends[tp]}
        while remaining:
            batches = await consumer.getmany(*remaining, timeout_ms=1000)
            for tp, messages in batches.items():
                for message in messages:
                    if message.offset >= ends[tp]:
                        remaining.discard(tp)
                        break
                    if end_ms is None or message.timestamp <= end_ms:
                        yield _record(message)
                if await consumer.position(tp) >= ends[tp]:
                    remaining.discard(tp)
    finally:
        await consumer.stop()


async def tail_topic(
    broker_url: str,
    topics: Sequence[str],
    *,
    from_beginning: bool = False,
    start_ms: int | None = None,
    stop: asyncio.Event | None = None,
) -> AsyncGenerator[TopicRecord, None]:
    """Records of ``topics`` as they arrive, until ``stop`` is set.

    Starts after the current end, or at the beginning, or at the first record written at or after ``start_ms``.
    """
    consumer = _consumer(broker_url)
    try:
        await consumer.start()
        partitions = await _assign_all(consumer, topics)
        if from_beginning:
            await consumer.seek_to_beginning(*partitions)
        elif start_ms is not None:
            # End offsets first: a record written between the two calls is then read, not skipped.
            ends = await consumer.end_offsets(partitions)
            found = await consumer.offsets_for_times(dict.fromkeys(partitions, start_ms))
            for tp in partitions:
                at = found.get(tp)
                consumer.seek(tp, at.offset if at is not None else ends[tp])
        else:
            await consumer.seek_to_end(*partitions)
        while stop is None or not stop.is_set():
            batches = await consumer.getmany(timeout_ms=200)
            for messages in batches.values():
                for message in messages:
                    yield _record(message)
    finally:
        await consumer.stop()


def _record(message: object) -> TopicRecord:
    return TopicRecord(
        topic=message.topic,  # type: ignore[attr-defined]
        partition=message.partition,  # type: ignore[attr-defined]
        offset=message.offset,  # type: ignore[attr-defined]
        timestamp_ms=message.timestamp,  # type: ignore[attr-defined]
        key=message.key,  # type: ignore[attr-defined]
        value=message.value,  # type: ignore[attr-defined]
    )


def json_object(value: bytes | None) -> dict[str, object] | None:
    """A record value as a JSON object, or None when it is missing, not JSON, or not an object."""
    if value is None:
        return None
    try:
        document = json.loads(value)
    except (ValueError, RecursionError):
        return None
    return document if isinstance(document, dict) else None
