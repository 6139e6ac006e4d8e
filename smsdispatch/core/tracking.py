"""After the outcome: status polling and tenant webhooks, for the tenants of this worker's partitions.

Every record on ``sms.dispatched``, ``sms.failed`` and ``sms.status`` passes :meth:`Tracker.observe` before the
log sink acks it, so what it enqueues is durable before the record counts as handled:

* a dispatched message of a tenant with real credentials gets a pending poll
  (:mod:`smsdispatch.core.polling`), due ``SMSDISPATCH_STATUS_POLL_SECONDS`` after dispatch; a final status
  (from a callback or a poll) removes it;
* every record of a tenant with a ``webhook_url`` gets a pending delivery
  (:mod:`smsdispatch.core.webhooks`), started at once and retried by :meth:`Tracker.deliver_due`.

Pending work lives in two changelog-backed tables (:class:`~smsdispatch.core.durable_map.DurableMap`) in the
tenant's partition, so the worker owning the partition does it, and the next owner recovers it after a
rebalance, a restart or a crash. An entry is added only when absent (a record read again never restarts its
schedule) and replaced only while it holds what the result was computed from (a callback settling a poll while
the poll runs wins). A polled status is published on ``sms.status`` before its entry changes, so a crash in
between polls again (the status may be published twice; it never moves backwards in the log). Webhooks are
at-least-once with one ``webhook-id`` per record: a crash or a rebalance during a delivery delivers it again.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from functools import partial
from typing import Any

from smsdispatch.contract import ErrorInfo, SmsDispatched, SmsFailed, SmsStatus, topics
from smsdispatch.core.durable_map import ChangelogWrite, DurableMap
from smsdispatch.core.ledger import peek_timestamp
from smsdispatch.core.metrics import DispatchMetrics
from smsdispatch.core.persist import ThrottledWarning, until_taken
from smsdispatch.core.polling import StatusPoller, pending_for, settled_by, should_track
from smsdispatch.core.tenants import ReadyTenant
from smsdispatch.core.webhook_delivery import DeliveryResult, WebhookDeliverer
from smsdispatch.core.webhooks import delivery_for

log = logging.getLogger("smsdispatch.tracking")

Record = SmsDispatched | SmsFailed | SmsStatus
Publish = Callable[[str, bytes, bytes | None], Awaitable[Any]]

#: Entries examined per pass of a timer at most, so one pass never stalls the loop for long.
SCAN_LIMIT = 2000


class Tracker:
    def __init__(
        self,
        *,
        polls: DurableMap,
        webhooks: DurableMap,
        tenants: Callable[[str], ReadyTenant | ErrorInfo],
        poller: StatusPoller,
        deliverer: Callable[[Callable[[DeliveryResult], Awaitable[None]]], WebhookDeliverer],
        publish: Publish,
        partition_for: Callable[[str], int],
        poll_seconds: float,
        metrics: DispatchMetrics | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._polls = polls
        self._webhooks = webhooks
        self._tenants = tenants
        self._poller = poller
        self._deliverer = deliverer(self._delivered)
        self._publish = publish
        self._partition_for = partition_for
        self._poll_seconds = poll_seconds
        self._metrics = metrics or DispatchMetrics()
        self._clock = clock
        self._kafka_trouble = ThrottledWarning(log)

    async def observe(self, record: Record) -> None:
        """Enqueue what ``record`` asks for; returns once that is durable. A failure retrying cannot cure (a bug)
        is logged and the record's poll or webhook skipped: the log sink, which acks the record after this, must
        not stall its partition for it."""
        try:
            await self._observe(record)
        except Exception:
            log.exception("could not enqueue the status poll or webhook of a record of tenant %s", record.tenant_id)

    async def _observe(self, record: Record) -> None:
        tenant_id = record.tenant_id
        if not tenant_id:
            return  # an unreadable request's failure names no tenant: nobody to poll for or call
        tenant = self._tenants(tenant_id)
        partition = self._partition_for(tenant_id)
        if isinstance(record, SmsDispatched) and isinstance(tenant, ReadyTenant) and should_track(record, tenant):
            key, poll = pending_for(record, self._poll_seconds)
            await self._durably(self._polls.add_if_absent(partition, key, poll.to_bytes()))
        elif isinstance(record, SmsStatus) and (settled := settled_by(record)) is not None:
            await self._durably(self._polls.discard(partition, settled))
        delivery = delivery_for(record, tenant, self._clock())
        if delivery is not None:
            key, pending = delivery
            value = pending.to_bytes()
            written = self._webhooks.add_if_absent(partition, key, value)
            if written is not None:
                await self._durably(written)
                self._deliverer.start_due([(key, value)], self._clock())  # now, not at the next timer tick

    async def poll_due(self, owned: Callable[[int], bool]) -> int:
        """Poll what is due among the next entries of the store (of tenants on ``owned`` partitions); publish
        the statuses found, then update the entries. Returns how many entries were polled or settled."""
        now = self._clock()
        items = [(key, raw) for key, raw in self._polls.scan(SCAN_LIMIT) if not _later_than(raw, now)]
        if not items:
            return 0
        results = await self._poller.run_due(items, now, self._owns(owned))
        for result in results:
            if result.status is not None:
                status = result.status
                await self._durably(partial(self._publish, topics.STATUS, status.tenant_id.encode(), status.to_bytes()))
            partition = self._partition_for(result.tenant_id)
            await self._durably(self._polls.replace(partition, result.key, result.expected, result.value))
            if result.result == "gave_up":
                log.warning("gave up polling a message of tenant %s: no final status in 72 hours", result.tenant_id)
        return len(results)

    def deliver_due(self, owned: Callable[[int], bool]) -> int:
        """Start the due deliveries among the next entries of the store; returns how many were started."""
        now = self._clock()
        items = [(key, raw) for key, raw in self._webhooks.scan(SCAN_LIMIT) if not _later_than(raw, now)]
        return len(self._deliverer.start_due(items, now, self._owns(owned))) if items else 0

    async def stop_deliveries(self) -> None:
        """Cancel the deliveries running (a rebalance, a shutdown): their entries stay pending for the owner."""
        await self._deliverer.stop()

    def checkpoint(self) -> None:
        self._polls.checkpoint()
        self._webhooks.checkpoint()

    def pending(self) -> tuple[int, int]:
        """Pending polls and pending deliveries held (estimates for RocksDB)."""
        return len(self._polls), len(self._webhooks)

    async def _delivered(self, result: DeliveryResult) -> None:
        partition = self._partition_for(result.tenant_id)
        await self._durably(self._webhooks.replace(partition, result.key, result.expected, result.value))
        if result.result == "gave_up":
            log.warning(
                "gave up delivering webhook %s of tenant %s: %s", result.webhook_id, result.tenant_id, result.error
            )

    def _owns(self, owned: Callable[[int], bool]) -> Callable[[str], bool]:
        return lambda tenant_id: owned(self._partition_for(tenant_id))

    async def _durably(self, write: ChangelogWrite | None) -> None:
        """See a write through to Kafka (None: there was nothing to write)."""
        if write is not None:
            await until_taken(write, self._kafka_trouble, "a tracking write")


def _later_than(raw: bytes, now: datetime) -> bool:
    """Whether a pending entry is due only after ``now``, read from its JSON without parsing the rest (most
    entries a pass examines are not due, and a full parse of each, every second, cost more than the work). The
    last ``next_at``: a delivery's payload (escaped JSON) comes before it. Unreadable: False, so the full parse
    decides what to do with it."""
    due = peek_timestamp(raw, b"next_at", last=True)
    return due is not None and due > now
