"""TenantFollower against the real broker: every partition of sms.tenants, records before and after its start."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from aiokafka import AIOKafkaProducer

from smsdispatch.contract import ErrorCode, ErrorInfo
from smsdispatch.contract.settings import bootstrap_servers
from smsdispatch.contract.topics import TENANTS
from smsdispatch.core.tenants import ReadyTenant
from smsdispatch.runtime.followers import TenantFollower
from smsdispatch.runtime.topics import ensure_topics
from smsdispatch.runtime.worker import home_partition
from tests.core.test_tenant_view import KEYRING, record

pytestmark = [pytest.mark.asyncio, pytest.mark.kafka]


async def test_the_follower_holds_tenants_of_every_partition_and_follows_updates_and_removals(
    kafka_broker_url: str,
) -> None:
    await ensure_topics(kafka_broker_url, 8)
    suffix = uuid.uuid4().hex[:8]
    # Enough tenants to land on most partitions (ids are keys: the producer hashes them as the CLI does).
    before = [f"before{n}-{suffix}" for n in range(16)]
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap_servers(kafka_broker_url))
    await producer.start()
    follower = TenantFollower(kafka_broker_url, KEYRING.unseal, partitions=8, wait=10)
    try:
        for tenant_id in before:
            await producer.send_and_wait(TENANTS, record(tenant_id), key=tenant_id.encode())
        await follower.start()
        held = [await follower.view.lookup(tenant_id) for tenant_id in before]

        late = f"late-{suffix}"
        await producer.send_and_wait(TENANTS, record(late, creds="late"), key=late.encode())
        found_late = await follower.view.lookup(late)  # not held yet, maybe: waited for
        await producer.send_and_wait(TENANTS, None, key=before[0].encode())
        assert await follower.view.caught_up()
        removed = await follower.view.lookup(before[0])
    finally:
        await follower.stop()
        await producer.stop()

    assert len({home_partition(tenant_id, 8) for tenant_id in before}) > 4
    assert all(isinstance(answer, ReadyTenant) for answer in held), held
    assert isinstance(found_late, ReadyTenant)
    assert found_late.config.signing_token == "late"
    assert isinstance(removed, ErrorInfo)
    assert removed.code is ErrorCode.UNKNOWN_TENANT


async def test_stopping_the_follower_ends_its_reading(kafka_broker_url: str) -> None:
    await ensure_topics(kafka_broker_url, 8)
    follower = TenantFollower(kafka_broker_url, KEYRING.unseal, partitions=8, wait=10)
    await follower.start()
    assert await follower.view.caught_up()

    await asyncio.wait_for(follower.stop(), 10)

    assert not await follower.view.caught_up()  # its consumer is closed: nothing to ask where the topic ends
