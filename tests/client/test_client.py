"""SmsClient against the real broker: publishing requests, typed outcomes by tenant, waiting for outcomes."""

from __future__ import annotations

import asyncio

import pytest
from pydantic import ValidationError

from smsdispatch.client import SmsClient, TopicRecord, parse_outcome
from smsdispatch.contract import ErrorCode, Outcome, SmsDispatched, SmsFailed, SmsRequested, topics
from tests.client.conftest import Produce
from tests.client.records import dispatched, failed, now_ms, requests_of


@pytest.mark.asyncio
async def test_send_publishes_the_request_on_sms_requested_keyed_by_tenant(broker: str, tenant: str) -> None:
    started = now_ms() - 1000
    async with SmsClient(broker) as client:
        request = await client.send(tenant, "+14155552671", "Your code is 123456", metadata={"order": "42"})

    assert await requests_of(broker, tenant, started) == [
        (
            tenant.encode(),
            {
                "request_id": request.request_id,
                "tenant_id": tenant,
                "to": "+14155552671",
                "body": "Your code is 123456",
                "metadata": {"order": "42"},
            },
        )
    ]


@pytest.mark.asyncio
async def test_send_refuses_an_invalid_request_before_publishing_anything(broker: str, tenant: str) -> None:
    started = now_ms() - 1000
    async with SmsClient(broker) as client:
        with pytest.raises(ValidationError, match="to"):
            await client.send(tenant, "not-a-number", "hello")
        with pytest.raises(ValidationError, match="body"):
            await client.send(tenant, "+14155552671", "")
        await client.send(tenant, "+14155552671", "the one valid request", request_id="valid")

    assert [document["request_id"] for _, document in await requests_of(broker, tenant, started)] == ["valid"]


@pytest.mark.asyncio
async def test_publish_many_publishes_every_request_in_order(broker: str, tenant: str) -> None:
    started = now_ms() - 1000
    requests = [
        SmsRequested(request_id=f"r{i}", tenant_id=tenant, to="+14155552671", body=f"message {i}") for i in range(7)
    ]
    seen: list[int] = []
    async with SmsClient(broker) as client:
        assert await client.publish_many(requests, window=3, on_published=seen.append) == 7

    assert [document["request_id"] for _, document in await requests_of(broker, tenant, started)] == [
        f"r{i}" for i in range(7)
    ]
    assert seen == [3, 6, 7]


@pytest.mark.asyncio
async def test_publishing_outside_async_with_is_refused() -> None:
    client = SmsClient("kafka://127.0.0.1:9")
    with pytest.raises(RuntimeError, match="async with"):
        await client.publish_raw(b"acme", b"{}")


@pytest.mark.asyncio
async def test_outcomes_yields_typed_outcomes_of_one_tenant_only(
    broker: str, tenant: str, publish_records: Produce
) -> None:
    started = now_ms() - 1000
    other = f"{tenant}-other"
    await publish_records(
        [
            (topics.DISPATCHED, other, dispatched(other, "theirs"), None),
            (topics.FAILED, tenant, b"not json at all", None),
            (topics.DISPATCHED, tenant, dispatched(tenant, "ok-1"), None),
            (topics.FAILED, tenant, failed(tenant, "bad-1", ErrorCode.PROVIDER_REJECTED), None),
        ]
    )

    stop = asyncio.Event()
    received: list[Outcome] = []
    async with SmsClient(broker) as client:
        async for outcome in client.outcomes(tenant=tenant, start_ms=started, stop=stop):
            received.append(outcome)
            if len(received) == 2:
                stop.set()

    by_id = {outcome.request_id: outcome for outcome in received}
    assert set(by_id) == {"ok-1", "bad-1"}
    assert isinstance(by_id["ok-1"], SmsDispatched)
    assert isinstance(by_id["bad-1"], SmsFailed)
    assert by_id["bad-1"].error.code is ErrorCode.PROVIDER_REJECTED


@pytest.mark.asyncio
async def test_wait_for_finds_outcomes_written_before_and_after_it_is_called(
    broker: str, tenant: str, publish_records: Produce
) -> None:
    started = now_ms() - 1000
    await publish_records([(topics.DISPATCHED, tenant, dispatched(tenant, "early"), None)])
    async with SmsClient(broker) as client:
        waiting = asyncio.create_task(client.wait_for(["early", "late"], timeout=60, since_ms=started))
        await asyncio.sleep(2)  # let it start reading first, so "late" arrives while it waits
        assert not waiting.done()
        await publish_records([(topics.FAILED, tenant, failed(tenant, "late"), None)])
        found = await waiting

    assert isinstance(found["early"], SmsDispatched)
    assert isinstance(found["late"], SmsFailed)
    assert found["late"].tenant_id == tenant


@pytest.mark.asyncio
async def test_wait_for_raises_timeout_error_saying_how_many_have_no_outcome(broker: str, tenant: str) -> None:
    async with SmsClient(broker) as client:
        with pytest.raises(TimeoutError, match="no outcome for 2 of 2 requests"):
            await client.wait_for([f"{tenant}-a", f"{tenant}-b"], timeout=1.5)


def record(topic: str, value: bytes | None) -> TopicRecord:
    return TopicRecord(topic=topic, partition=0, offset=0, timestamp_ms=0, key=b"acme", value=value)


def test_parse_outcome_reads_dispatched_and_failed_records() -> None:
    sent, failure = dispatched("acme", "r1"), failed("acme", "r2")
    assert parse_outcome(record(topics.DISPATCHED, sent.to_bytes())) == sent
    assert parse_outcome(record(topics.FAILED, failure.to_bytes())) == failure


def test_parse_outcome_ignores_unreadable_records_and_other_topics() -> None:
    assert parse_outcome(record(topics.FAILED, b"{not json")) is None
    assert parse_outcome(record(topics.FAILED, None)) is None
    assert parse_outcome(record(topics.STATUS, failed("acme", "r1").to_bytes())) is None
