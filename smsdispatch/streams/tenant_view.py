"""Every tenant in every worker: the whole compacted ``sms.tenants`` topic, followed into memory.

The tenants table (:mod:`smsdispatch.streams.tenants` over the Faust table) is partitioned: a worker holds only
the tenants of its own partitions. That suits the dispatcher, which reads ``sms.requested`` on the same
partitions, but not the status receiver: Twilio's callbacks reach whichever worker the load balancer picks.
:class:`TenantFollower` reads every partition of ``sms.tenants`` from its beginning with a plain consumer in no
group (so it never takes part in, nor waits for, a rebalance) and keeps following it; :class:`TenantView` keeps
the latest record per tenant_id (a null value removes it) and answers through a :class:`TenantDirectory`, so
configurations are decrypted exactly as for the table, in memory only. Faust's GlobalTable would do the same
but does not recover reliably with several workers.

Guarantee: a lookup that finds no ready tenant waits, at most ``wait`` seconds, until the view has applied
every record that was on the topic when the lookup began, then answers again; a tenant whose registration was
acknowledged before its callback arrived is found. Limits: past the bound (Kafka away, the view still loading
a very large topic) the answer is decided with what the view holds, so a tenant registered that instant may be
refused; a tenant the view already holds is not waited for, so a callback signed with credentials newer than
the view's is refused until the view applies them (normally milliseconds). The whole topic is held in memory,
which is fine for a tenant list.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from aiokafka import TopicPartition
from mode import Service

from smsdispatch.schemas import ErrorInfo
from smsdispatch.streams.tenants import ConfigOpener, ReadyTenant, TenantDirectory
from smsdispatch.streams.topics import TENANTS, groupless_consumer

log = logging.getLogger(__name__)

#: Where each partition of the topic ends now (the offset of its next record).
EndOffsets = Callable[[], Awaitable[Mapping[int, int]]]


class TenantView:
    """The latest record of every tenant, with how far each partition has been applied."""

    def __init__(self, open_config: ConfigOpener, end_offsets: EndOffsets, *, wait: float = 2.0) -> None:
        self._records: dict[bytes, bytes] = {}
        self._positions: dict[int, int] = {}
        self._directory = TenantDirectory(self._records, open_config)
        self._end_offsets = end_offsets
        self._wait = wait
        self._moved = asyncio.Event()
        # The check every new caller joins (it has not read the end offsets yet), and the latest one started.
        self._joinable: asyncio.Future[bool] | None = None
        self._latest: asyncio.Future[bool] | None = None

    def __len__(self) -> int:
        return len(self._records)

    def apply(self, partition: int, offset: int, key: bytes | None, value: bytes | None) -> None:
        """Apply the record at ``offset``: it replaces the tenant's record, or removes it when ``value`` is None."""
        if key is not None:  # a record without a key names no tenant (the tenants agent logs it)
            if value is None:
                self._records.pop(key, None)
            else:
                self._records[key] = value
        self.reached(partition, offset + 1)

    def reached(self, partition: int, position: int) -> None:
        """Everything below ``position`` on ``partition`` is applied (the consumer skips compacted offsets)."""
        if position > self._positions.get(partition, 0):
            self._positions[partition] = position
            self._moved.set()

    def has_reached(self, ends: Mapping[int, int]) -> bool:
        """Whether every partition of ``ends`` is applied up to its end there."""
        return all(self._positions.get(partition, 0) >= end for partition, end in ends.items())

    async def lookup(self, tenant_id: str) -> ReadyTenant | ErrorInfo:
        """The tenant as :meth:`TenantDirectory.lookup` answers; one not ready is looked up again once the view
        has caught up with the topic (bounded, see the module), since its record may be on its way."""
        answer = self._directory.lookup(tenant_id)
        if isinstance(answer, ReadyTenant):
            return answer
        await self.caught_up()
        return self._directory.lookup(tenant_id)

    async def caught_up(self) -> bool:
        """Wait until every record on the topic now is applied: True, or False after ``wait`` seconds (or when
        the end offsets cannot be read).

        Concurrent callers share one check as long as it has not read the end offsets, so a burst of callbacks
        for unknown tenants costs one request to Kafka, not one each. A caller never joins a check that read
        them before it arrived: that one could miss a record published just before.
        """
        check = self._joinable
        if check is None:
            check = self._joinable = self._latest = asyncio.ensure_future(self._check(self._latest))
        # Shielded: a caller giving up (its request cancelled) must not cancel the others' check.
        return await asyncio.shield(check)

    async def _check(self, previous: asyncio.Future[bool] | None) -> bool:
        this = asyncio.current_task()
        try:
            # Counted from the first caller's arrival, so no caller waits longer, however long the previous took.
            async with asyncio.timeout(self._wait):
                if previous is not None:
                    await asyncio.wait([previous])  # one check at a time, each reading the end offsets once
                self._joinable = None  # from here on, callers arriving may be later than the offsets read below
                ends = await self._end_offsets()
                while not self.has_reached(ends):
                    self._moved.clear()
                    await self._moved.wait()
            return True
        except TimeoutError:
            log.warning(
                "the tenant view is still behind sms.tenants after %.1fs; deciding with what it holds", self._wait
            )
        except Exception as exc:  # Kafka away: decide now with what is held rather than not at all
            log.warning("could not read where sms.tenants ends (%s); deciding with what it holds", type(exc).__name__)
        finally:
            if self._joinable is this:  # timed out before reading: nobody may join a finished check
                self._joinable = None
        return False


class TenantFollower(Service):
    """Feeds a :class:`TenantView` (``.view``) from every partition of ``sms.tenants``, from the beginning, for as
    long as the service runs; start and stop it with the app. It never commits and never joins a group."""

    def __init__(
        self,
        broker_url: str,
        open_config: ConfigOpener,
        *,
        partitions: int,
        wait: float = 2.0,
        topic: str = TENANTS,
        consumer_factory: Callable[[], Any] | None = None,
        retry_seconds: float = 1.0,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.view = TenantView(open_config, self.end_offsets, wait=wait)
        self._topic = topic
        self._partition_count = partitions
        self._new_consumer = consumer_factory or (lambda: groupless_consumer(broker_url))
        self._retry_seconds = retry_seconds
        self._consumer: Any = None
        self._partitions: list[TopicPartition] = []
        self._opened = asyncio.Event()
        #: Where the topic ended when reading began, until the view has got there (then None).
        self._loading: dict[int, int] | None = None

    async def on_start(self) -> None:
        # In the background: the app's start must not wait for Kafka (its own clients retry the same way).
        self.add_future(self._follow())

    async def end_offsets(self) -> Mapping[int, int]:
        """Where each partition ends now; waits until the consumer is assigned (the view bounds that wait)."""
        await self._opened.wait()
        if self._consumer is None:  # stopped: asking the closed consumer would open a connection nobody closes
            raise RuntimeError("the tenant view no longer follows sms.tenants")
        ends = await self._consumer.end_offsets(self._partitions)
        return {tp.partition: offset for tp, offset in ends.items()}

    async def _follow(self) -> None:
        delay = self._retry_seconds
        try:
            while not self.should_stop:
                try:
                    if self._consumer is None:
                        await self._open()
                    await self._read_batch()
                    delay = self._retry_seconds
                except asyncio.CancelledError:
                    raise
                except Exception as exc:
                    # Once open, the consumer is kept: reopening would replay the topic over what is held, and a
                    # tenant removed meanwhile (its tombstone compacted away) would stay.
                    log.warning("following sms.tenants failed (%s); retrying in %.1fs", type(exc).__name__, delay)
                    await self.sleep(delay)
                    delay = min(delay * 2, 30.0)
        finally:
            consumer, self._consumer = self._consumer, None
            self._opened.set()  # lookups still waiting are answered at once, with what is held
            if consumer is not None:
                await _stop(consumer)

    async def _open(self) -> None:
        consumer = self._new_consumer()
        # Every partition by number: the worker starts only when the topic has the partitions it is configured
        # with (cli/worker.py), and a consumer assigning by hand has no metadata to list them before it assigns.
        partitions = [TopicPartition(self._topic, partition) for partition in range(self._partition_count)]
        try:
            await consumer.start()  # inside: a failed start may leave connections that only stop() closes
            consumer.assign(partitions)
            await consumer.seek_to_beginning(*partitions)
            # Bounded: aiokafka waits as long as it takes for a partition the broker does not know (yet).
            loading = await asyncio.wait_for(consumer.end_offsets(partitions), 30)
        except BaseException:
            await _stop(consumer)
            raise
        known = consumer.partitions_for_topic(self._topic)
        if known is not None and len(known) != len(partitions):
            log.warning("%s has %d partitions, the tenant view reads %d", self._topic, len(known), len(partitions))
        self._consumer, self._partitions = consumer, partitions
        self._loading = {tp.partition: offset for tp, offset in loading.items()}
        self._opened.set()
        log.info("reading all %d partitions of %s into the tenant view", len(partitions), self._topic)

    async def _read_batch(self) -> None:
        batches = await self._consumer.getmany(timeout_ms=1000)
        for tp, records in batches.items():
            for record in records:
                self.view.apply(tp.partition, record.offset, record.key, record.value)
            # Past what compaction removed at the end of the batch, which no record's offset shows.
            self.view.reached(tp.partition, await self._consumer.position(tp))
        if self._loading is not None and self.view.has_reached(self._loading):
            self._loading = None
            log.info("the tenant view holds the %d tenants on %s and follows it", len(self.view), self._topic)


async def _stop(consumer: Any) -> None:
    try:
        await consumer.stop()
    except asyncio.CancelledError:
        # aiokafka stopping a consumer in no group right after its start re-raises the cancellation of a task of
        # its own (aio-libs/aiokafka#647): that one is swallowed, a cancellation of ours is not.
        task = asyncio.current_task()
        if task is not None and task.cancelling():
            raise
