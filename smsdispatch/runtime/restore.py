"""Restoring a partition of the worker's tables from their changelogs, before the partition's records are handled.

On assignment, each partition the worker gains is restored by :func:`restore_partition`: one consumer of its
own (in no group: it joins no rebalance and commits nothing) reads that partition of every table's changelog from
the offset the local store holds (:meth:`PartitionStore.offset`; the beginning when it holds none) up to the end
offset taken when the restore began, and writes what it reads into the store, records and offset in one batch.

Guarantees: a restore ends only when every changelog partition reached its end offset of the start; the store then
holds everything written to the changelog before that. It is bounded: no progress for ``stall_seconds`` while
records are still missing raises :class:`RestoreFailed` naming the changelog partition, how far it got and how
far it had to go (the caller logs it, retries, and keeps the partition's records waiting). Cancelling the task
(the partition was revoked) stops it at once; what it wrote stays, with its offset, for a later restore to go on
from. A store whose offset is past the changelog's end (a changelog deleted and created again, a data directory
from another cluster) cannot be trusted: it is wiped and restored from the beginning, with a warning.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition

from smsdispatch.adapters.partitions import PartitionStore

log = logging.getLogger("smsdispatch.restore")


class RestoreFailed(Exception):
    """A restore made no progress for too long; the message names the changelog partition."""


@dataclass
class Restored:
    """What one restore of a partition read: records per changelog topic, and how long it took."""

    partition: int
    records: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0


async def restore_partition(
    new_consumer: Callable[[], AIOKafkaConsumer],
    stores: Mapping[str, PartitionStore],
    partition: int,
    *,
    stall_seconds: float = 30.0,
    max_records: int = 2000,
    clock: Callable[[], float] = time.monotonic,
) -> Restored:
    """Restore ``partition`` of every store from its changelog (``stores`` maps changelog topic → store)."""
    began = clock()
    consumer = new_consumer()
    await consumer.start()
    try:
        reading = await _start_positions(consumer, stores, partition, stall_seconds)
        restored = Restored(partition, dict.fromkeys(stores, 0))
        progressed_at = clock()
        while reading:
            batches = await consumer.getmany(*reading, timeout_ms=500, max_records=max_records)
            for tp, records in batches.items():
                if records:
                    stores[tp.topic].write(partition, [(r.key, r.value) for r in records], records[-1].offset)
                    restored.records[tp.topic] += len(records)
                    progressed_at = clock()
            for tp, end in list(reading.items()):
                if await consumer.position(tp) >= end:
                    del reading[tp]
            if reading and clock() - progressed_at > stall_seconds:
                raise RestoreFailed(await _stall_report(consumer, reading, stall_seconds))
        restored.seconds = clock() - began
        return restored
    finally:
        await _stop(consumer)


async def _start_positions(
    consumer: AIOKafkaConsumer, stores: Mapping[str, PartitionStore], partition: int, stall_seconds: float
) -> dict[TopicPartition, int]:
    """Assign and seek each changelog partition; return those with records to read, with their end offsets."""
    tps = {TopicPartition(topic, partition): store for topic, store in stores.items()}
    consumer.assign(list(tps))
    try:
        async with asyncio.timeout(stall_seconds):  # aiokafka waits as long as it takes for a partition it lacks
            ends: dict[TopicPartition, int] = await consumer.end_offsets(list(tps))
            starts: dict[TopicPartition, int] = await consumer.beginning_offsets(list(tps))
    except TimeoutError:
        raise RestoreFailed(
            f"{', '.join(f'{tp.topic}[{partition}]' for tp in tps)}: no end offset within {stall_seconds:.0f} s"
        ) from None
    reading: dict[TopicPartition, int] = {}
    for tp, store in tps.items():
        held, end = store.offset(partition), ends[tp]
        if held is not None and held >= end:  # the last offset applied is always below the end
            log.warning(
                "%s[%d]: the local store holds offset %d, past the changelog's end %d: restoring it from the beginning",
                tp.topic, partition, held, end,
            )  # fmt: skip
            store.wipe(partition)
            held = None
        if (0 if held is None else held + 1) >= end:
            continue  # up to date
        reading[tp] = end
        # From the log's start when the store holds nothing, or when retention deleted what came after its offset
        # (explicit offsets: seek_to_beginning depends on the consumer's auto_offset_reset).
        consumer.seek(tp, starts[tp] if held is None else max(held + 1, starts[tp]))
    return reading


async def _stall_report(consumer: AIOKafkaConsumer, reading: Mapping[TopicPartition, int], stall: float) -> str:
    where = []
    for tp, end in reading.items():
        position: Any = await consumer.position(tp)
        where.append(f"{tp.topic}[{tp.partition}] at offset {position} of {end}")
    return f"nothing read for {stall:.0f} s: {'; '.join(where)}"


async def _stop(consumer: AIOKafkaConsumer) -> None:
    try:
        await consumer.stop()
    except asyncio.CancelledError:
        # aiokafka stopping a consumer in no group right after its start re-raises the cancellation of a task of
        # its own (aio-libs/aiokafka#647): that one is swallowed, a cancellation of ours is not.
        task = asyncio.current_task()
        if task is not None and task.cancelling():
            raise
