"""TenantStreamProgress against the real broker: it waits for records already on sms.tenants to be applied."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from aiokafka import AIOKafkaProducer

from smsdispatch.contract.settings import bootstrap_servers
from smsdispatch.contract.topics import TENANTS
from smsdispatch.runtime.tenant_progress import TenantStreamProgress
from smsdispatch.runtime.topics import ensure_topics

pytestmark = [pytest.mark.asyncio, pytest.mark.kafka]


async def test_caught_up_waits_until_the_published_tenant_record_is_applied(kafka_broker_url: str) -> None:
    await ensure_topics(kafka_broker_url, 8)
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap_servers(kafka_broker_url))
    await producer.start()
    try:
        sent = await producer.send_and_wait(TENANTS, b"{}", key=b"acme", partition=3)
    finally:
        await producer.stop()
    progress = TenantStreamProgress(kafka_broker_url, f"group-{uuid.uuid4().hex}", lambda _tenant: 3, timeout=30)
    try:
        waiting = asyncio.create_task(progress.caught_up({"acme"}))
        await asyncio.sleep(0.5)
        still_waiting = not waiting.done()
        progress.applied(3, sent.offset)
        await asyncio.wait_for(waiting, 10)
    finally:
        await progress.close()
    assert still_waiting


async def test_caught_up_gives_up_after_its_timeout_and_says_so(
    kafka_broker_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    await ensure_topics(kafka_broker_url, 8)
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap_servers(kafka_broker_url))
    await producer.start()
    try:
        await producer.send_and_wait(TENANTS, b"{}", key=b"acme", partition=5)
    finally:
        await producer.stop()
    progress = TenantStreamProgress(kafka_broker_url, f"group-{uuid.uuid4().hex}", lambda _tenant: 5, timeout=0.2)
    try:
        await asyncio.wait_for(progress.caught_up({"acme"}), 10)  # returns (not raises) once its time is up
    finally:
        await progress.close()
    assert "still behind sms.tenants" in caplog.text
