"""Reading and writing the compacted ``sms.tenants`` topic (the CLI's ``tenants`` verbs and the demo use it)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping

from pydantic import ValidationError

from smsdispatch.adapters.kafka import TopicTrackingProducer
from smsdispatch.client._reading import read_topic
from smsdispatch.contract import TenantRecord, topics
from smsdispatch.contract.settings import bootstrap_servers

log = logging.getLogger(__name__)


async def latest_tenant_records(broker_url: str) -> dict[str, TenantRecord]:
    """The current record of every tenant: the last value per key, removed tenants left out."""
    latest: dict[str, TenantRecord | None] = {}
    async for record in read_topic(broker_url, [topics.TENANTS]):
        if record.key is None:
            continue
        tenant_id = record.key.decode(errors="replace")
        if record.value is None:
            latest[tenant_id] = None
            continue
        try:
            latest[tenant_id] = TenantRecord.model_validate_json(record.value)
        except ValidationError:
            log.warning("sms.tenants holds an unreadable record for %s; ignoring it", tenant_id)
    return {tenant_id: rec for tenant_id, rec in sorted(latest.items()) if rec is not None}


async def publish_tenant(broker_url: str, tenant_id: str, record: TenantRecord | None) -> None:
    """Publish a tenant's record (None removes the tenant) and wait until Kafka has it."""
    await publish_tenants(broker_url, {tenant_id: record})


async def publish_tenants(broker_url: str, records: Mapping[str, TenantRecord | None]) -> None:
    """Publish several tenants' records through one producer; returns once Kafka has all of them."""
    producer = TopicTrackingProducer(bootstrap_servers=bootstrap_servers(broker_url), acks="all")
    await producer.start()
    try:
        sends = [
            await producer.send(
                topics.TENANTS, record.model_dump_json().encode() if record is not None else None, key=tenant.encode()
            )
            for tenant, record in records.items()
        ]
        await asyncio.gather(*sends)
    finally:
        await producer.stop()
