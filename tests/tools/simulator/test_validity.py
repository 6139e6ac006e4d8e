"""ValidityPeriod and per-sender throughput: messages wait in their sender's queue, and expire there with 30001."""

from __future__ import annotations

import time
from datetime import datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Any

import aiohttp
import pytest
from twilio.request_validator import RequestValidator

from smsdispatch.adapters.twilio import is_valid_signature
from smsdispatch.tools.simulator import RunningSimulator, running_simulator

from .conftest import (
    LIVE_AUTH,
    LIVE_SID,
    LIVE_TOKEN,
    RECIPIENT,
    SENDER,
    SERVICE,
    TEST_SID,
    TEST_TOKEN,
    CallbackReceiver,
    basic,
    fetch_message,
    make_config,
    messages_url,
    post_message,
)


async def create(
    http: aiohttp.ClientSession,
    simulator: RunningSimulator,
    extra: dict[str, str] | None = None,
    *,
    headers: dict[str, str] = LIVE_AUTH,
    account_sid: str = LIVE_SID,
) -> tuple[int, Any]:
    form = {"To": RECIPIENT, "From": SENDER, "Body": "hello", **(extra or {})}
    return await post_message(http, simulator, form, headers=headers, account_sid=account_sid)


async def sim_messages(http: aiohttp.ClientSession, simulator: RunningSimulator) -> dict[str, dict[str, Any]]:
    async with http.get(f"{simulator.base_url}/_sim/messages") as response:
        return {m["sid"]: m for m in await response.json()}


@pytest.mark.asyncio
@pytest.mark.parametrize("value", ["0", "36001", "-1", "1.5", "abc", "1e3", " 5", "+5", "99999999999"])
async def test_validity_period_outside_1_to_36000_whole_seconds_gets_400_21624(
    simulator: RunningSimulator, http: aiohttp.ClientSession, value: str
) -> None:
    status, body = await create(http, simulator, {"ValidityPeriod": value})

    assert (status, body["code"], body["status"]) == (400, 21624, 400)
    assert body["more_info"] == "https://www.twilio.com/docs/errors/21624"
    assert await sim_messages(http, simulator) == {}


@pytest.mark.asyncio
async def test_validity_period_is_checked_for_test_credentials_too(
    simulator: RunningSimulator, http: aiohttp.ClientSession
) -> None:
    status, body = await create(
        http,
        simulator,
        {"From": "+15005550006", "ValidityPeriod": "0"},
        headers=basic(TEST_SID, TEST_TOKEN),
        account_sid=TEST_SID,
    )

    assert (status, body["code"]) == (400, 21624)


@pytest.mark.asyncio
@pytest.mark.parametrize(("value", "expected"), [("1", 1), ("36000", 36000), ("600", 600), (None, 36000)])
async def test_valid_validity_period_is_accepted_and_listed_in_sim_messages(
    simulator: RunningSimulator, http: aiohttp.ClientSession, value: str | None, expected: int
) -> None:
    status, created = await create(http, simulator, {"ValidityPeriod": value} if value is not None else None)

    listed = (await sim_messages(http, simulator))[created["sid"]]
    assert status == 201
    assert listed["validity_period"] == expected


@pytest.mark.asyncio
async def test_sim_messages_created_at_is_rfc3339_utc_with_microseconds(
    simulator: RunningSimulator, http: aiohttp.ClientSession
) -> None:
    before = time.time()
    _, created = await create(http, simulator)
    after = time.time()

    listed = (await sim_messages(http, simulator))[created["sid"]]
    created_at = listed["created_at"]
    moment = datetime.fromisoformat(created_at)
    assert created_at.endswith("Z")
    assert len(created_at.split(".")[1]) == len("123456Z")
    assert moment.utcoffset() == timedelta(0)
    assert before - 0.001 <= moment.timestamp() <= after + 0.001
    # date_created stays Twilio's whole-second RFC 2822 form, the same second
    assert parsedate_to_datetime(listed["date_created"]).timestamp() == int(moment.timestamp())


@pytest.mark.asyncio
async def test_sender_throughput_holds_messages_queued_and_releases_them_at_n_segments_per_second(
    http: aiohttp.ClientSession, receiver: CallbackReceiver
) -> None:
    async with running_simulator(make_config(sender_mps=4)) as simulator:  # one segment every 0.25 s
        start = time.monotonic()
        sids = []
        for body in ("one", "three " * 66, "last"):  # 1, 3 (396 GSM-7 characters) and 1 segments
            status, created = await create(http, simulator, {"Body": body, "StatusCallback": receiver.url})
            assert (status, created["status"]) == (201, "queued")
            sids.append(created["sid"])
        # The last one waits for 1 + 3 segments at 4/s: a second after the first left, it is still queued.
        still_queued = (await sim_messages(http, simulator))[sids[2]]["status"]
        callbacks = await receiver.wait_for(6)

    assert still_queued == "queued"
    sent = [c for c in callbacks if c.form["MessageStatus"] == "sent"]
    assert [c.form["MessageSid"] for c in sent] == sids
    # Callbacks fire at or after the step they report: lower bounds measured from before the first create.
    assert sent[1].arrived - start >= 0.25
    assert sent[2].arrived - start >= 1.0
    assert all(receiver.statuses_of(sid) == ["sent", "delivered"] for sid in sids)


@pytest.mark.asyncio
async def test_queued_message_past_its_validity_period_ends_failed_30001_with_a_signed_callback(
    http: aiohttp.ClientSession, receiver: CallbackReceiver
) -> None:
    # One segment every 4 s: the first message takes the sender's turn, the next two cannot leave within 1 s.
    async with running_simulator(make_config(sender_mps=0.25)) as simulator:
        form = {"ValidityPeriod": "1", "StatusCallback": receiver.url}
        created = [(await create(http, simulator, form))[1] for _ in range(3)]
        callbacks = await receiver.wait_for(4)
        fetched = {m["sid"]: await fetch_message(http, simulator, m["sid"]) for m in created}
        async with http.get(messages_url(simulator.base_url), headers=LIVE_AUTH) as response:
            listed = {m["sid"]: m for m in (await response.json())["messages"]}
        summaries = await sim_messages(http, simulator)

    first, *expired = (m["sid"] for m in created)
    assert receiver.statuses_of(first) == ["sent", "delivered"]
    for sid in expired:
        assert receiver.statuses_of(sid) == ["failed"]
        assert (fetched[sid]["status"], fetched[sid]["error_code"]) == ("failed", 30001)
        assert (listed[sid]["status"], listed[sid]["error_code"]) == ("failed", 30001)
        assert listed[sid]["error_message"] == "Queue overflow"
        assert (listed[sid]["date_sent"], listed[sid]["price"]) == (None, None)
        assert (summaries[sid]["status"], summaries[sid]["validity_period"]) == ("failed", 1)
    failed = [c for c in callbacks if c.form["MessageStatus"] == "failed"]
    assert len(failed) == 2
    for callback in failed:
        assert callback.form["ErrorCode"] == "30001"
        assert callback.form["SmsStatus"] == "failed"
        assert (callback.form["From"], callback.form["To"]) == (SENDER, RECIPIENT)
        assert callback.signature is not None
        assert is_valid_signature(LIVE_TOKEN, callback.url, callback.form, callback.signature)
        assert RequestValidator(LIVE_TOKEN).validate(callback.url, callback.form, callback.signature)


@pytest.mark.asyncio
async def test_service_message_past_its_validity_goes_accepted_queued_failed_30001(
    http: aiohttp.ClientSession, receiver: CallbackReceiver
) -> None:
    async with running_simulator(make_config(sender_mps=0.25)) as simulator:
        form = {"MessagingServiceSid": SERVICE, "ValidityPeriod": "1", "StatusCallback": receiver.url}
        _, first = await create(http, simulator, form)
        _, second = await create(http, simulator, form)
        await receiver.wait_for(5)
        fetched = await fetch_message(http, simulator, second["sid"])

    assert second["status"] == "accepted"
    assert receiver.statuses_of(first["sid"]) == ["queued", "sent", "delivered"]
    assert receiver.statuses_of(second["sid"]) == ["queued", "failed"]
    assert (fetched["status"], fetched["error_code"], fetched["messaging_service_sid"]) == ("failed", 30001, SERVICE)


@pytest.mark.asyncio
async def test_an_unlimited_sender_sends_short_validity_messages_as_before(
    simulator: RunningSimulator, http: aiohttp.ClientSession, receiver: CallbackReceiver
) -> None:
    form = {"ValidityPeriod": "1", "StatusCallback": receiver.url}
    sids = [(await create(http, simulator, form))[1]["sid"] for _ in range(3)]

    await receiver.wait_for(6)

    assert all(receiver.statuses_of(sid) == ["sent", "delivered"] for sid in sids)


@pytest.mark.asyncio
async def test_a_number_whose_queue_holds_10_hours_refuses_creates_with_21611(http: aiohttp.ClientSession) -> None:
    async with running_simulator(make_config(sender_mps=0.0001)) as simulator:  # 10,000 s per segment
        accepted = [(await create(http, simulator))[0] for _ in range(4)]
        status, body = await create(http, simulator)
        service_status, _ = await create(http, simulator, {"From": SERVICE})

    assert accepted == [201] * 4
    assert (status, body["code"]) == (400, 21611)
    # Through a service the message is accepted; it fails later with 30001 instead (Twilio's 21611 page).
    assert service_status == 201
