"""How far the worker has applied ``sms.tenants``, so a request never beats its tenant's registration.

A tenant registered a moment before its first request, or while the worker was down, may still be on its way
into the tenant table when the request is taken: the two topics are read concurrently. Before the dispatcher
answers ``unknown_tenant`` or ``tenant_not_verified`` it waits (bounded) until the table has applied every
record already on the tenant's partition of ``sms.tenants``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from aiokafka import AIOKafkaConsumer, TopicPartition

from smsdispatch.contract.settings import bootstrap_servers
from smsdispatch.contract.topics import TENANTS

log = logging.getLogger(__name__)


class TenantStreamProgress:
    def __init__(
        self, broker_url: str, group_id: str, partition_for: Callable[[str], int], timeout: float = 5.0
    ) -> None:
        self._broker_url = broker_url
        self._group_id = group_id
        self._partition_for = partition_for
        self._timeout = timeout
        self._applied: dict[int, int] = {}
        self._committed: dict[int, int] = {}
        self._consumer: AIOKafkaConsumer | None = None
        # Records are handled concurrently: one check at a time, so they share one consumer and later ones
        # find the table already caught up.
        self._lock = asyncio.Lock()

    def applied(self, partition: int, offset: int) -> None:
        """The tenant agent has applied the record at ``offset``."""
        self._applied[partition] = max(self._applied.get(partition, 0), offset + 1)

    async def caught_up(self, tenant_ids: set[str]) -> None:
        """Wait until the records on these tenants' partitions are applied, at most ``timeout`` seconds."""
        async with self._lock:
            await self._catch_up(tenant_ids)

    async def _catch_up(self, tenant_ids: set[str]) -> None:
        partitions = [TopicPartition(TENANTS, self._partition_for(tenant_id)) for tenant_id in sorted(tenant_ids)]
        try:
            consumer = await self._start()
            ends = await consumer.end_offsets(partitions)
            for tp in partitions:
                if tp.partition not in self._committed:
                    # What the group had applied before this worker started: records below it are in the table.
                    self._committed[tp.partition] = await consumer.committed(tp) or 0
        except Exception as exc:  # an answer a little late is better than none: go on without waiting
            log.warning("could not read sms.tenants offsets (%s); not waiting for tenant updates", type(exc).__name__)
            return
        deadline = asyncio.get_running_loop().time() + self._timeout
        while any(self._position(tp.partition) < ends[tp] for tp in partitions):
            if asyncio.get_running_loop().time() >= deadline:
                log.warning("the tenant table is still behind sms.tenants after %.0fs", self._timeout)
                return
            await asyncio.sleep(0.05)

    def _position(self, partition: int) -> int:
        return max(self._applied.get(partition, 0), self._committed.get(partition, 0))

    async def _start(self) -> AIOKafkaConsumer:
        if self._consumer is None:
            # In the worker's group only to read its committed offsets: it never subscribes, so never joins.
            consumer = AIOKafkaConsumer(
                bootstrap_servers=bootstrap_servers(self._broker_url),
                group_id=self._group_id,
                enable_auto_commit=False,
            )
            await consumer.start()
            self._consumer = consumer
        return self._consumer

    async def close(self) -> None:
        if self._consumer is not None:
            await self._consumer.stop()
            self._consumer = None
