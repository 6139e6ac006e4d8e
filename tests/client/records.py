"""Building and publishing topic records for tests that share the session broker (tests/client, tests/cli).

Other suites write to the same topics, so every helper here works per tenant: use :func:`new_tenant` per test.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Sequence
from contextlib import aclosing

from aiokafka import AIOKafkaProducer
from aiokafka.structs import RecordMetadata

from smsdispatch.client import json_object, read_topic
from smsdispatch.contract import (
    ErrorCode,
    ErrorInfo,
    SmsDispatched,
    SmsFailed,
    SmsRequested,
    SmsStatus,
    WireModel,
    topics,
)
from smsdispatch.contract.settings import Settings
from smsdispatch.runtime.topics import ensure_topics

# (topic, key, value, timestamp_ms or None for now); a WireModel value is published as its JSON.
Record = tuple[str, str | None, WireModel | bytes | None, int | None]


def now_ms() -> int:
    return int(time.time() * 1000)


def new_tenant() -> str:
    return f"t-{uuid.uuid4().hex[:16]}"


def create_contract_topics(broker_url: str) -> None:
    """What the worker does on start; without it the first publish would auto-create one-partition topics."""
    asyncio.run(ensure_topics(broker_url, Settings().partitions))


def requested(tenant: str, request_id: str, body: str = "hello", **fields: object) -> SmsRequested:
    return SmsRequested.model_validate(
        {"request_id": request_id, "tenant_id": tenant, "to": "+14155552671", "body": body, **fields}
    )


def dispatched(tenant: str, request_id: str) -> SmsDispatched:
    return SmsDispatched(
        request_id=request_id,
        tenant_id=tenant,
        provider_message_id="SM" + uuid.uuid4().hex,
        status="queued",
        to="+14155552671",
        segments=1,
        encoding="GSM-7",
        attempts=1,
    )


def failed(
    tenant: str | None, request_id: str | None, code: ErrorCode = ErrorCode.PROVIDER_UNAVAILABLE, **fields: object
) -> SmsFailed:
    return SmsFailed.model_validate(
        {
            "request_id": request_id,
            "tenant_id": tenant,
            "to": "+14155552671",
            "error": ErrorInfo(code=code, message=f"{code.value} in a test", provider_code=None),
            "attempts": 1,
            **fields,
        }
    )


def status(tenant: str, request_id: str, delivery: str = "delivered") -> SmsStatus:
    return SmsStatus(
        tenant_id=tenant, request_id=request_id, provider_message_id="SM" + uuid.uuid4().hex, status=delivery
    )


async def produce(bootstrap: str, records: Sequence[Record]) -> list[RecordMetadata]:
    """Publish ``records`` in order, each acknowledged before the next (as the worker and producers do)."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    try:
        written = []
        for topic, key, value, timestamp_ms in records:
            payload = value.model_dump_json().encode() if isinstance(value, WireModel) else value
            written.append(
                await producer.send_and_wait(
                    topic, payload, key=key.encode() if key is not None else None, timestamp_ms=timestamp_ms
                )
            )
        return written
    finally:
        await producer.stop()


async def requests_of(broker_url: str, tenant: str, since_ms: int) -> list[tuple[bytes | None, dict[str, object]]]:
    """(key, JSON value) of every record on sms.requested for ``tenant`` written since ``since_ms``, in order."""
    found = []
    records = read_topic(broker_url, [topics.REQUESTED], start_ms=since_ms)
    async with aclosing(records):
        async for record in records:
            # Other tests share the topic, and some publish records that are not JSON on purpose.
            document = json_object(record.value)
            if document is not None and document.get("tenant_id") == tenant:
                found.append((record.key, document))
    return found
