"""The dispatcher end to end: real Kafka broker, worker process, Twilio simulator process."""

from __future__ import annotations

import asyncio
import json
import os
import sys
import uuid

import httpx
import pytest
from aiokafka import AIOKafkaProducer

from smsdispatch.client import SmsClient, read_topic
from smsdispatch.contract import ErrorCode, SmsDispatched, SmsFailed, SmsRequested, topics
from smsdispatch.contract.settings import bootstrap_servers
from tests.integration.conftest import Stack
from tests.integration.outcomes import (
    collect,
    inject_faults,
    now_ms,
    outcome_records,
    send_and_collect,
    simulator_messages,
)

pytestmark = [pytest.mark.asyncio, pytest.mark.kafka]


def request(tenant_id: str, to: str = "+14155552671", body: str | None = None, **extra: object) -> SmsRequested:
    fields = {"request_id": uuid.uuid4().hex, "tenant_id": tenant_id, "to": to, "body": body or f"hi {uuid.uuid4()}"}
    return SmsRequested.model_validate({**fields, **extra})


MAGIC_TO = {
    "+15005550001": 21211,
    "+15005550002": 21612,
    "+15005550003": 21408,
    "+15005550004": 21610,
    "+15005550009": 21614,
}
MAGIC_FROM = {"from01": 21212, "from07": 21606, "from08": 21611}


async def test_every_magic_number_yields_its_outcome_and_code(stack: Stack) -> None:
    by_to = {to: request(stack.tenant("test"), to=to) for to in MAGIC_TO}
    by_from = {name: request(stack.tenant(name), to="+14155552671") for name in MAGIC_FROM}
    passes = request(stack.tenant("test"), to="+14155552671")
    outcomes = await send_and_collect(stack.broker_url, [*by_to.values(), *by_from.values(), passes])
    for to, code in MAGIC_TO.items():
        outcome = outcomes[by_to[to].request_id]
        assert isinstance(outcome, SmsFailed), to
        assert (outcome.error.code, outcome.error.provider_code) == (ErrorCode.PROVIDER_REJECTED, code), to
    for name, code in MAGIC_FROM.items():
        outcome = outcomes[by_from[name].request_id]
        assert isinstance(outcome, SmsFailed), name
        assert (outcome.error.code, outcome.error.provider_code) == (ErrorCode.PROVIDER_REJECTED, code), name
    ok = outcomes[passes.request_id]
    assert isinstance(ok, SmsDispatched)
    assert ok.status == "queued"


async def test_live_tenant_is_queued_with_a_sid_the_simulator_knows(stack: Stack) -> None:
    sent = request(stack.tenant("live"), metadata={"order": "42"})
    outcome = (await send_and_collect(stack.broker_url, [sent]))[sent.request_id]
    assert isinstance(outcome, SmsDispatched)
    assert outcome.status == "queued"
    assert outcome.metadata == {"order": "42"}
    assert (outcome.segments, outcome.encoding, outcome.attempts) == (1, "GSM-7", 1)
    known = {m["sid"]: m for m in simulator_messages(stack.simulator_url)}
    assert known[outcome.provider_message_id]["body"] == sent.body


async def test_api_key_tenant_dispatches(stack: Stack) -> None:
    sent = request(stack.tenant("apikey"))
    outcome = (await send_and_collect(stack.broker_url, [sent]))[sent.request_id]
    assert isinstance(outcome, SmsDispatched)
    assert outcome.status == "queued"


async def test_messaging_service_tenant_is_accepted(stack: Stack) -> None:
    sent = request(stack.tenant("service"))
    outcome = (await send_and_collect(stack.broker_url, [sent]))[sent.request_id]
    assert isinstance(outcome, SmsDispatched)
    assert outcome.status == "accepted"


async def test_without_a_platform_default_unknown_unverified_and_platform_tenants_fail_without_sending(
    stack: Stack,
) -> None:
    unknown = request(f"nobody-{stack.suffix}")
    unverified = request(stack.tenant("unverified"))
    platform = request(stack.tenant("platform"))  # `tenants add`: no provider of its own, and no default here
    outcomes = await send_and_collect(stack.broker_url, [unknown, unverified, platform])
    assert isinstance(outcomes[unknown.request_id], SmsFailed)
    assert outcomes[unknown.request_id].error.code == ErrorCode.UNKNOWN_TENANT  # type: ignore[union-attr]
    assert outcomes[unverified.request_id].error.code == ErrorCode.TENANT_NOT_VERIFIED  # type: ignore[union-attr]
    assert outcomes[platform.request_id].error.code == ErrorCode.TENANT_NOT_VERIFIED  # type: ignore[union-attr]
    bodies = {m["body"] for m in simulator_messages(stack.simulator_url)}
    assert not {unknown.body, unverified.body, platform.body} & bodies


async def test_malformed_records_each_get_one_failure_and_the_worker_keeps_going(stack: Stack) -> None:
    tenant = stack.tenant("live")
    marker = uuid.uuid4().hex
    bad_values = {
        "bad-e164": {"request_id": f"{marker}-1", "tenant_id": tenant, "to": "4155552671", "body": "x"},
        "empty-body": {"request_id": f"{marker}-2", "tenant_id": tenant, "to": "+14155552671", "body": ""},
        "long-body": {"request_id": f"{marker}-3", "tenant_id": tenant, "to": "+14155552671", "body": "x" * 1601},
        "missing-fields": {"request_id": f"{marker}-4", "tenant_id": tenant},
    }
    raw_values = [b"\xff\xfe" + marker.encode() + b"-garbage", f'["{marker}-array"]'.encode()]
    start = now_ms() - 1000
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap_servers(stack.broker_url))
    await producer.start()
    try:
        for value in bad_values.values():
            await producer.send_and_wait(topics.REQUESTED, json.dumps(value).encode(), key=tenant.encode())
        for raw in raw_values:
            await producer.send_and_wait(topics.REQUESTED, raw, key=tenant.encode())
    finally:
        await producer.stop()
    good = request(tenant)
    failures = await collect(
        stack.broker_url,
        start,
        lambda o: isinstance(o, SmsFailed) and marker in ((o.request_id or "") + (o.raw or "")),
        count=len(bad_values) + len(raw_values),
    )
    assert all(f.error.code == ErrorCode.INVALID_REQUEST for f in failures if isinstance(f, SmsFailed))
    assert sorted(f.request_id for f in failures if f.request_id) == sorted(
        v["request_id"] for v in bad_values.values()
    )
    assert sum(1 for f in failures if f.request_id is None) == len(raw_values)
    outcome = (await send_and_collect(stack.broker_url, [good]))[good.request_id]
    assert isinstance(outcome, SmsDispatched)


async def test_poison_pills_each_get_one_outcome_and_the_requests_behind_them_are_dispatched(stack: Stack) -> None:
    """The three records that once stalled a partition forever (issue: hostile input), through a real worker."""
    tenant = stack.tenant("live")
    marker = uuid.uuid4().hex
    base = {"tenant_id": tenant, "to": "+14155552671", "body": "pill"}
    nul_metadata = {**base, "request_id": f"{marker}-nul", "metadata": {"k": "v\u0000"}}
    long_metadata = {**base, "request_id": f"{marker}-long", "metadata": {"k": "x" * 20_000}}
    # Valid (unknown fields are ignored), about 1 MB, unkeyed: it is forwarded to its tenant's partition.
    huge_unkeyed = {**base, "request_id": f"{marker}-huge", "padding": "x" * 990_000}
    normal = [request(tenant) for _ in range(10)]
    start = now_ms() - 1000
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap_servers(stack.broker_url), max_request_size=2_000_000)
    await producer.start()
    try:
        await producer.send_and_wait(topics.REQUESTED, json.dumps(nul_metadata).encode(), key=tenant.encode())
        await producer.send_and_wait(topics.REQUESTED, json.dumps(long_metadata).encode(), key=tenant.encode())
        await producer.send_and_wait(topics.REQUESTED, json.dumps(huge_unkeyed).encode(), key=None)
        for good in normal:
            await producer.send_and_wait(topics.REQUESTED, good.to_bytes(), key=tenant.encode())
    finally:
        await producer.stop()
    ids = {f"{marker}-nul", f"{marker}-long", f"{marker}-huge"} | {good.request_id for good in normal}

    records = await outcome_records(stack.broker_url, start, ids, timeout=60)

    assert len(records) == len(ids), "exactly one outcome each"
    outcomes = {request_id: parse_outcome_value(value) for request_id, value in records}
    for pill in (f"{marker}-nul", f"{marker}-long"):
        failed = outcomes[pill]
        assert isinstance(failed, SmsFailed)
        assert failed.error.code == ErrorCode.INVALID_REQUEST
        assert failed.metadata == {}, "metadata that breaks the rules is not echoed"
        assert "metadata is not echoed" in failed.error.message
    assert isinstance(outcomes[f"{marker}-huge"], SmsDispatched), "the unknown field is ignored, the request sent"
    assert all(isinstance(outcomes[good.request_id], SmsDispatched) for good in normal)


def parse_outcome_value(value: bytes) -> SmsDispatched | SmsFailed:
    if b'"provider_message_id"' in value:
        return SmsDispatched.model_validate_json(value)
    return SmsFailed.model_validate_json(value)


async def test_same_request_id_twice_sends_one_sms_and_repeats_its_outcome(stack: Stack) -> None:
    once = request(stack.tenant("live"))
    start = now_ms() - 1000
    async with SmsClient(stack.broker_url) as client:
        await client.publish(once)
        first = await collect(stack.broker_url, start, lambda o: o.request_id == once.request_id, 1)
        await client.publish(once)
    both = await collect(stack.broker_url, start, lambda o: o.request_id == once.request_id, 2)
    assert both[0] == both[1] == first[0]
    assert [m["body"] for m in simulator_messages(stack.simulator_url)].count(once.body) == 1


async def test_a_storm_of_429s_is_ridden_out(stack: Stack) -> None:
    inject_faults(stack.simulator_url, "rate_limit", 4)
    sent = request(stack.tenant("live"))
    outcome = (await send_and_collect(stack.broker_url, [sent]))[sent.request_id]
    assert isinstance(outcome, SmsDispatched)
    assert outcome.attempts == 5


@pytest.mark.parametrize("fault", ["drop_after_accept", "error_500_after_accept"])
async def test_a_create_cut_off_after_acceptance_ends_as_one_sms(stack: Stack, fault: str) -> None:
    inject_faults(stack.simulator_url, fault, 1)
    sent = request(stack.tenant("live"))
    outcome = (await send_and_collect(stack.broker_url, [sent]))[sent.request_id]
    assert isinstance(outcome, SmsDispatched), outcome
    assert [m["body"] for m in simulator_messages(stack.simulator_url)].count(sent.body) == 1


async def test_a_500_before_acceptance_is_confirmed_unsent_and_not_resent(stack: Stack) -> None:
    inject_faults(stack.simulator_url, "error_500_before_accept", 1)
    sent = request(stack.tenant("live"))
    outcome = (await send_and_collect(stack.broker_url, [sent]))[sent.request_id]
    assert isinstance(outcome, SmsFailed)
    assert (outcome.error.code, outcome.error.retryable) == (ErrorCode.PROVIDER_UNAVAILABLE, True)
    assert sent.body not in {m["body"] for m in simulator_messages(stack.simulator_url)}


async def test_an_unknown_outcome_with_test_credentials_is_reported_unknown(stack: Stack) -> None:
    inject_faults(stack.simulator_url, "error_500_after_accept", 1)
    sent = request(stack.tenant("test"))
    outcome = (await send_and_collect(stack.broker_url, [sent]))[sent.request_id]
    assert isinstance(outcome, SmsFailed)
    assert outcome.error.code == ErrorCode.OUTCOME_UNKNOWN


async def test_no_secret_reaches_the_tenants_topic_the_worker_log_or_an_outcome(stack: Stack) -> None:
    sent = request(stack.tenant("apikey"))
    await send_and_collect(stack.broker_url, [sent])
    seen = bytearray()
    async for record in read_topic(stack.broker_url, [topics.TENANTS, topics.DISPATCHED, topics.FAILED, topics.STATUS]):
        seen += (record.key or b"") + (record.value or b"")
    seen += stack.worker.log_text().encode()
    assert len(seen) > 1000
    for secret in stack.secrets:
        assert secret.encode() not in seen


async def test_send_wait_prints_the_outcome_and_exits_by_it(stack: Stack) -> None:
    async def send(*args: str) -> tuple[int, str, str]:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "smsdispatch", "send", *args, "--timeout", "60",
            env={**os.environ, **stack.env},
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        out, err = await process.communicate()
        return process.returncode or 0, out.decode(), err.decode()

    ok = await send("--tenant", stack.tenant("live"), "--to", "+14155552671", "--body", "via the CLI", "--wait")
    # Not the 21610 number: an earlier test's 21610 put it on the test tenant's suppression list.
    refused = await send("--tenant", stack.tenant("test"), "--to", "+15005550009", "--body", "landline", "--wait")
    bad = await send("--tenant", stack.tenant("live"), "--to", "12", "--body", "x")

    assert ok[0] == 0
    assert " dispatched " in ok[1]
    assert "queued SM" in ok[1]
    assert refused[0] == 1
    assert "provider_rejected [21614]" in refused[1]
    assert bad[0] == 2
    assert bad[2].startswith("smsdispatch send: --to:")


async def test_health_and_metrics_report_what_the_worker_did(stack: Stack) -> None:
    await send_and_collect(stack.broker_url, [request(stack.tenant("live"))])
    async with httpx.AsyncClient(base_url=stack.worker_url, timeout=5) as web:
        health = (await web.get("/health")).json()
        ready = await web.get("/ready")
        metrics = (await web.get("/metrics")).text
    assert health["status"] == "ok"
    assert (ready.status_code, ready.json()) == (200, {"ready": True, "kafka": True})
    assert health["kafka"] == {"reachable": True}
    assert health["tenants"] >= len(stack.tenants)
    live = stack.tenant("live")
    assert f'smsdispatch_outcomes_total{{code="queued",tenant="{live}",topic="sms.dispatched"}}' in metrics
    assert f'smsdispatch_send_seconds_count{{tenant="{live}"}}' in metrics
    assert "faust_messages_received_total" in metrics, "Faust's own sensors are on the same page"
