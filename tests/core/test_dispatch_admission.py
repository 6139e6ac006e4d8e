"""The dispatcher's admission: expired requests, opted-out recipients and throttled tenants are answered without
an HTTP call; a 21610 puts the recipient on the tenant's suppression list."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest

from smsdispatch.adapters.twilio import MessageRejected
from smsdispatch.contract import ErrorCode, SmsFailed, topics
from smsdispatch.core.admission import Admission
from smsdispatch.core.rates import SendingRates

from .fakes import T0, TO, Emitted, FakePool, OptOutList, Tenants, harness, inbound, request_json


def failure(emitted: Emitted) -> SmsFailed:
    assert emitted.topic == topics.FAILED
    return SmsFailed.model_validate_json(emitted.value)


@pytest.mark.asyncio
async def test_a_request_that_expired_while_waiting_in_the_topic_fails_expired_without_a_send() -> None:
    h = harness()
    stale = (T0 - timedelta(seconds=1)).isoformat()

    await h.run([inbound(request_json("r-stale", expires_at=stale))])

    (outcome,) = h.publisher.outcomes()
    failed = failure(outcome)
    assert failed.error.code is ErrorCode.EXPIRED
    assert (failed.attempts, failed.provider, failed.error.retryable) == (0, None, False)
    assert h.pool.all_sent() == []
    assert all(b"sending" not in (value or b"") for _, value, _ in h.changelog.writes), "never marked as sending"


@pytest.mark.asyncio
async def test_a_request_sent_in_time_carries_its_expiry_to_the_provider() -> None:
    h = harness()
    expires = T0 + timedelta(minutes=5)

    await h.run([inbound(request_json("r-fresh", expires_at=expires.isoformat()))])

    (sent,) = h.pool.all_sent()
    assert sent.expires_at == expires
    assert h.publisher.outcomes()[0].topic == topics.DISPATCHED


@pytest.mark.asyncio
async def test_a_request_that_expires_while_its_tenant_is_throttled_fails_expired_without_a_send() -> None:
    tenants = Tenants()
    tenants.add("acme", mps=1)
    h = harness(tenants=tenants, admission=Admission(rates=SendingRates()))
    soon = (T0 + timedelta(milliseconds=100)).isoformat()

    # The first takes the tenant's one message this second; the second would wait 1s and expires in 0.1s.
    await h.run([inbound(request_json("r-first")), inbound(request_json("r-late", body="Late", expires_at=soon))])

    outcomes = {emitted.json()["request_id"]: emitted for emitted in h.publisher.outcomes()}
    assert outcomes["r-first"].topic == topics.DISPATCHED
    late = failure(outcomes["r-late"])
    assert late.error.code is ErrorCode.EXPIRED
    assert "rate" in late.error.message
    assert [message.body for message in h.pool.all_sent()] == ["Hello"]


@pytest.mark.asyncio
async def test_a_throttled_tenant_waits_for_its_rate_and_another_tenant_on_the_partition_does_not() -> None:
    tenants = Tenants()
    tenants.add("slow", mps=2)
    tenants.add("fast")
    loop = asyncio.get_running_loop()
    sent_at: dict[str, float] = {}
    events: list[str] = []

    async def note_time() -> None:
        sent_at[events[-1].removeprefix("send ")] = loop.time()

    pool = FakePool(events=events, pause=note_time)
    h = harness(tenants=tenants, pool=pool, admission=Admission(rates=SendingRates()))
    slow = [inbound(request_json(f"s-{n}", tenant_id="slow", body=f"s{n}"), key=b"slow") for n in range(4)]
    fast = [inbound(request_json(f"f-{n}", tenant_id="fast", body=f"f{n}"), key=b"fast") for n in range(3)]
    started = loop.time()

    await h.run(slow + fast)

    fast_done = max(sent_at[f"f{n}"] for n in range(3)) - started
    slow_done = max(sent_at[f"s{n}"] for n in range(4)) - started
    assert fast_done < 0.5, "the fast tenant's requests went out while the slow one's waited"
    assert slow_done >= 1.4, "4 messages at 2/s: released at 0, 0.5, 1.0 and 1.5s"
    assert len(h.pool.sender("slow").sent) == 4
    assert all(emitted.topic == topics.DISPATCHED for emitted in h.publisher.outcomes())


@pytest.mark.asyncio
async def test_a_recipient_on_the_tenants_list_fails_recipient_opted_out_without_a_send() -> None:
    tenants = Tenants()
    tenants.add("acme")
    tenants.add("other")
    opt_outs = OptOutList(("acme", TO))
    h = harness(tenants=tenants, admission=Admission(opt_outs=opt_outs))

    await h.run([inbound(request_json("r-acme")), inbound(request_json("r-other", tenant_id="other"), key=b"other")])

    outcomes = {emitted.json()["request_id"]: emitted for emitted in h.publisher.outcomes()}
    refused = failure(outcomes["r-acme"])
    assert (refused.error.code, refused.error.provider_code) == (ErrorCode.RECIPIENT_OPTED_OUT, 21610)
    assert outcomes["r-other"].topic == topics.DISPATCHED, "one tenant's opt-out never blocks another tenant"
    assert h.pool.sender("acme").sent == []
    assert opt_outs.loads == 1, "the list is loaded before the first check, once"


@pytest.mark.asyncio
async def test_twilios_21610_puts_the_recipient_on_the_list_and_the_next_request_is_not_sent() -> None:
    opt_outs = OptOutList()
    h = harness(admission=Admission(opt_outs=opt_outs))
    unsubscribed = MessageRejected("Attempt to send to unsubscribed recipient (21610)", provider_code=21610)
    h.sender().on_send("Hello", unsubscribed)

    await h.run([inbound(request_json("r-1"))])
    await h.run([inbound(request_json("r-2"))])

    first, second = (failure(emitted) for emitted in h.publisher.outcomes())
    assert (first.error.code, first.error.provider_code) == (ErrorCode.PROVIDER_REJECTED, 21610)
    assert (second.error.code, second.error.provider_code) == (ErrorCode.RECIPIENT_OPTED_OUT, 21610)
    assert opt_outs.added == [("acme", TO)]
    assert len(h.sender().sent) == 1


@pytest.mark.asyncio
async def test_other_rejections_leave_the_list_alone() -> None:
    opt_outs = OptOutList()
    h = harness(admission=Admission(opt_outs=opt_outs))
    h.sender().on_send("Hello", MessageRejected("not a mobile number (21614)", provider_code=21614))

    await h.run([inbound(request_json("r-1"))])

    assert failure(h.publisher.outcomes()[0]).error.provider_code == 21614
    assert opt_outs.added == []
