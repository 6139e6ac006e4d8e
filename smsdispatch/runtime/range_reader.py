"""Reading a range of offsets of one partition directly, for :mod:`smsdispatch.core.continuity`.

A consumer of its own, in no group: it commits nothing and joins no rebalance. Offsets in the range that hold
no record (transaction markers, compacted away) are simply not returned.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition

from smsdispatch.runtime.topics import groupless_consumer

log = logging.getLogger(__name__)


class RangeReader:
    def __init__(self, broker_url: str, timeout: float = 30.0) -> None:
        self._broker_url = broker_url
        self._timeout = timeout
        self._consumer: AIOKafkaConsumer | None = None
        self._lock = asyncio.Lock()  # one range at a time: they share the consumer's assignment

    async def read(self, topic: str, partition: int, start: int, end: int) -> list[Any]:
        """The records at offsets ``start`` <= offset < ``end``, in order. Raises when Kafka does not give them
        within ``timeout`` seconds: a record must never be passed over for want of reading it."""
        async with self._lock:
            consumer = await self._start()
            tp = TopicPartition(topic, partition)
            consumer.assign([tp])
            consumer.seek(tp, start)
            records: list[Any] = []
            async with asyncio.timeout(self._timeout):
                while await consumer.position(tp) < end:
                    batch = await consumer.getmany(tp, timeout_ms=500, max_records=max(1, end - start))
                    records.extend(record for record in batch.get(tp, []) if start <= record.offset < end)
            return records

    async def _start(self) -> AIOKafkaConsumer:
        if self._consumer is None:
            consumer = groupless_consumer(self._broker_url)
            await consumer.start()
            self._consumer = consumer
        return self._consumer

    async def close(self) -> None:
        if self._consumer is not None:
            await self._consumer.stop()
            self._consumer = None
