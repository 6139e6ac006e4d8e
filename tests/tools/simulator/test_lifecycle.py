"""Message lifecycles and the status callbacks that report them, checked with Twilio's own validator."""

from __future__ import annotations

import asyncio
import re
from collections import Counter
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from twilio.request_validator import RequestValidator

from smsdispatch.tools.simulator import RunningSimulator, running_simulator

from .conftest import (
    LIVE_AUTH,
    LIVE_SID,
    LIVE_TOKEN,
    MAIN_KEY,
    MAIN_KEY_SECRET,
    RECIPIENT,
    SENDER,
    SERVICE,
    TEST_SID,
    TEST_TOKEN,
    CallbackReceiver,
    basic,
    fetch_message,
    make_config,
    post_message,
)


async def create(
    http: aiohttp.ClientSession,
    simulator: RunningSimulator,
    callback: str | None,
    *,
    sender: dict[str, str] | None = None,
    headers: dict[str, str] = LIVE_AUTH,
    account_sid: str = LIVE_SID,
) -> dict[str, Any]:
    form = {"To": RECIPIENT, "Body": "track me", **(sender or {"From": SENDER})}
    if callback is not None:
        form["StatusCallback"] = callback
    status, body = await post_message(http, simulator, form, headers=headers, account_sid=account_sid)
    assert status == 201
    created: dict[str, Any] = body
    return created


@pytest.mark.asyncio
async def test_live_message_calls_back_sent_then_delivered_but_not_queued(
    simulator: RunningSimulator, http: aiohttp.ClientSession, receiver: CallbackReceiver
) -> None:
    message = await create(http, simulator, receiver.url)

    callbacks = await receiver.wait_for(2)

    assert receiver.statuses_of(message["sid"]) == ["sent", "delivered"]
    delivered = callbacks[1].form
    assert delivered["SmsSid"] == delivered["MessageSid"] == message["sid"]
    assert delivered["SmsStatus"] == delivered["MessageStatus"] == "delivered"
    assert (delivered["AccountSid"], delivered["From"], delivered["To"]) == (LIVE_SID, SENDER, RECIPIENT)
    assert delivered["ApiVersion"] == "2010-04-01"
    assert re.fullmatch(r"\d{10}", delivered["RawDlrDoneDate"])
    assert "ErrorCode" not in delivered
    assert "RawDlrDoneDate" not in callbacks[0].form


@pytest.mark.asyncio
async def test_callback_signatures_pass_twilios_request_validator(
    simulator: RunningSimulator, http: aiohttp.ClientSession, receiver: CallbackReceiver
) -> None:
    await create(http, simulator, receiver.url)

    callbacks = await receiver.wait_for(2)

    validator = RequestValidator(LIVE_TOKEN)
    for callback in callbacks:
        assert callback.url == receiver.url  # signed over the URL exactly as given, query string included
        assert validator.validate(callback.url, callback.form, callback.signature)
    assert not RequestValidator("another-token").validate(callbacks[0].url, callbacks[0].form, callbacks[0].signature)


@pytest.mark.asyncio
async def test_callbacks_are_signed_with_the_auth_token_even_when_sent_with_an_api_key(
    simulator: RunningSimulator, http: aiohttp.ClientSession, receiver: CallbackReceiver
) -> None:
    await create(http, simulator, receiver.url, headers=basic(MAIN_KEY, MAIN_KEY_SECRET))

    callback = (await receiver.wait_for(1))[0]

    assert RequestValidator(LIVE_TOKEN).validate(callback.url, callback.form, callback.signature)


@pytest.mark.asyncio
async def test_service_message_calls_back_queued_sent_delivered(
    simulator: RunningSimulator, http: aiohttp.ClientSession, receiver: CallbackReceiver
) -> None:
    message = await create(http, simulator, receiver.url, sender={"MessagingServiceSid": SERVICE})

    callbacks = await receiver.wait_for(3)

    assert receiver.statuses_of(message["sid"]) == ["queued", "sent", "delivered"]
    assert {c.form["MessagingServiceSid"] for c in callbacks} == {SERVICE}
    assert {c.form["From"] for c in callbacks} == {SENDER}  # the service sends from the account's number


@pytest.mark.asyncio
async def test_fetched_message_reaches_delivered_with_date_sent_and_price(
    simulator: RunningSimulator, http: aiohttp.ClientSession, receiver: CallbackReceiver
) -> None:
    message = await create(http, simulator, receiver.url)
    await receiver.wait_for(2)

    fetched = await fetch_message(http, simulator, message["sid"])

    assert (fetched["status"], fetched["error_code"]) == ("delivered", None)
    assert fetched["date_sent"] is not None
    assert fetched["price"] == "-0.00790"


@pytest.mark.asyncio
async def test_undelivered_messages_report_a_30xxx_code(
    http: aiohttp.ClientSession, receiver: CallbackReceiver
) -> None:
    async with running_simulator(make_config(undelivered_rate=1.0)) as simulator:
        message = await create(http, simulator, receiver.url)
        callbacks = await receiver.wait_for(2)
        fetched = await fetch_message(http, simulator, message["sid"])

    final = callbacks[-1].form
    assert final["MessageStatus"] == "undelivered"
    assert final["ErrorCode"] in {"30003", "30005", "30006"}
    assert re.fullmatch(r"\d{10}", final["RawDlrDoneDate"])
    assert "ErrorCode" not in callbacks[0].form
    assert (fetched["status"], fetched["error_code"]) == ("undelivered", int(final["ErrorCode"]))
    assert isinstance(fetched["error_message"], str)


@pytest.mark.asyncio
async def test_a_failed_callback_is_retried_once(http: aiohttp.ClientSession, receiver: CallbackReceiver) -> None:
    receiver.statuses = [500, 500, 500]
    async with running_simulator(make_config(status_delay_ms=100)) as simulator:
        message = await create(http, simulator, receiver.url)
        await receiver.wait_for(4)
        await asyncio.sleep(0.3)  # room for a (wrong) third attempt to show up

    # Three 500s over two callbacks: one of them gives up after its retry, the other lands on its retry.
    assert Counter(receiver.statuses_of(message["sid"])) == {"sent": 2, "delivered": 2}


@pytest.mark.asyncio
async def test_test_credentials_never_call_back_and_stay_queued(
    simulator: RunningSimulator, http: aiohttp.ClientSession, receiver: CallbackReceiver
) -> None:
    await create(
        http,
        simulator,
        receiver.url,
        sender={"From": "+15005550006"},
        headers=basic(TEST_SID, TEST_TOKEN),
        account_sid=TEST_SID,
    )
    live = await create(http, simulator, receiver.url)  # a live message to know when callbacks have had time

    await receiver.wait_for(2)

    assert {c.form["MessageSid"] for c in receiver.received} == {live["sid"]}
    assert [m["status"] for m in simulator.accepted_messages() if m["account_sid"] == TEST_SID] == ["queued"]


@pytest.mark.asyncio
async def test_no_callback_is_made_without_a_status_callback(
    simulator: RunningSimulator, http: aiohttp.ClientSession
) -> None:
    await create(http, simulator, None)

    assert simulator.pending_callbacks == 0


@pytest.mark.asyncio
async def test_a_hanging_callback_receiver_does_not_hold_up_creates(http: aiohttp.ClientSession) -> None:
    release = asyncio.Event()

    async def hang(request: web.Request) -> web.Response:
        await release.wait()
        return web.Response(status=204)

    app = web.Application()
    app.router.add_post("/hang", hang)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    hanging_url = f"http://127.0.0.1:{runner.addresses[0][1]}/hang"
    try:
        async with running_simulator(make_config(status_delay_ms=0)) as simulator:
            await create(http, simulator, hanging_url)
            await asyncio.sleep(0.05)  # the first callback is now stuck waiting on the receiver
            second = await asyncio.wait_for(create(http, simulator, None), timeout=5)

            assert second["status"] == "queued"
            assert simulator.pending_callbacks > 0
    finally:
        release.set()
        await runner.cleanup()
