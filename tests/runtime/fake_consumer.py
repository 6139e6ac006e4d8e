"""An in-memory stand-in for a consumer in no group, for the followers of compacted topics."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from aiokafka import TopicPartition
from aiokafka.errors import KafkaConnectionError


@dataclass(frozen=True)
class Record:
    offset: int
    key: bytes | None
    value: bytes | None


class FakeConsumer:
    """A consumer in no group over an in-memory topic; ``None`` in a partition's log is an offset compaction
    removed, and ``log_start`` a partition's first offset still on disk. It records what it was asked to do.
    ``paused`` (set by default) holds every poll while cleared, as a slow broker would."""

    def __init__(self, partitions: int = 3, fail_starts: int = 0, stop_cancels: bool = False, topic: str = "") -> None:
        self.topic = topic
        self.logs: dict[int, list[Record | None]] = {p: [] for p in range(partitions)}
        self.log_start: dict[int, int] = {}
        self.positions: dict[TopicPartition, int] = {}
        self.assigned: list[TopicPartition] = []
        self.fail_starts = fail_starts
        self.starts = 0
        self.stopped = 0
        self.sought: list[TopicPartition] = []
        self.stop_cancels = stop_cancels
        self.flowing = asyncio.Event()
        self.flowing.set()

    def publish(self, partition: int, key: bytes | None, value: bytes | None) -> None:
        log = self.logs[partition]
        log.append(Record(len(log), key, value))

    def compacted(self, partition: int) -> None:
        self.logs[partition].append(None)

    def deleted_up_to(self, partition: int, offset: int) -> None:
        """Offsets below ``offset`` are gone (retention, or DeleteRecords): the log starts there."""
        log = self.logs[partition]
        log.extend([None] * (offset - len(log)))
        self.log_start[partition] = offset

    async def start(self) -> None:
        self.starts += 1
        if self.starts <= self.fail_starts:
            raise KafkaConnectionError("Unable to bootstrap from 127.0.0.1:9")

    async def stop(self) -> None:
        self.stopped += 1
        if self.stop_cancels:  # as aiokafka does when stopped right after its start (aio-libs/aiokafka#647)
            raise asyncio.CancelledError

    def partitions_for_topic(self, topic: str) -> set[int] | None:
        return set(self.logs) if topic == self.topic else None

    def assign(self, partitions: list[TopicPartition]) -> None:
        self.assigned = list(partitions)

    async def seek_to_beginning(self, *partitions: TopicPartition) -> None:
        self.sought = list(partitions)
        self.positions.update({tp: self.log_start.get(tp.partition, 0) for tp in partitions})

    async def end_offsets(self, partitions: list[TopicPartition]) -> dict[TopicPartition, int]:
        return {tp: len(self.logs[tp.partition]) for tp in partitions}

    async def position(self, tp: TopicPartition) -> int:
        return self.positions[tp]

    async def getmany(self, timeout_ms: int = 0) -> dict[TopicPartition, list[Record]]:
        await self.flowing.wait()
        batch: dict[TopicPartition, list[Record]] = {}
        for tp in self.assigned:
            log = self.logs[tp.partition]
            if self.positions[tp] < len(log):
                found = [record for record in log[self.positions[tp] :] if record is not None]
                self.positions[tp] = len(log)
                if found:  # as Kafka: a partition that returned no record is not in the batch
                    batch[tp] = found
        if not batch:
            await asyncio.sleep(0.01)  # as a long poll finding nothing
        return batch
