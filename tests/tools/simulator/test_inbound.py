"""Playing the recipient: ``POST /_sim/inbound`` opt-outs, Twilio's signed incoming-message webhook, and 21610."""

from __future__ import annotations

import re
import socket
from typing import Any

import aiohttp
import pytest
from twilio.request_validator import RequestValidator

from smsdispatch.adapters.twilio import is_valid_signature
from smsdispatch.tools.simulator import RunningSimulator
from smsdispatch.tools.testing.recipients import reply_from_recipient

from .conftest import (
    LIVE_AUTH,
    LIVE_SID,
    LIVE_TOKEN,
    OTHER_SENDER,
    OTHER_SID,
    OTHER_TOKEN,
    RECIPIENT,
    SENDER,
    SERVICE,
    TEST_SID,
    TEST_TOKEN,
    CallbackReceiver,
    basic,
    messages_url,
)


async def create(
    http: aiohttp.ClientSession,
    simulator: RunningSimulator,
    sender: dict[str, str] | None = None,
    *,
    to: str = RECIPIENT,
    headers: dict[str, str] = LIVE_AUTH,
    account_sid: str = LIVE_SID,
) -> tuple[int, Any]:
    form = {"To": to, "Body": "hello", **(sender or {"From": SENDER})}
    async with http.post(messages_url(simulator.base_url, account_sid), data=form, headers=headers) as response:
        return response.status, await response.json()


async def inbound(http: aiohttp.ClientSession, simulator: RunningSimulator, payload: Any) -> tuple[int, Any]:
    async with http.post(f"{simulator.base_url}/_sim/inbound", json=payload) as response:
        return response.status, await response.json()


def reply(body: str, url: str | None, *, to: str = SENDER) -> dict[str, Any]:
    return {"account_sid": LIVE_SID, "from": RECIPIENT, "to": to, "body": body, "url": url}


@pytest.mark.asyncio
async def test_inbound_stop_posts_a_signed_webhook_with_opt_out_type_and_creates_get_21610_until_start(
    simulator: RunningSimulator, http: aiohttp.ClientSession, receiver: CallbackReceiver
) -> None:
    assert (await create(http, simulator))[0] == 201

    status, answer = await inbound(http, simulator, reply("STOP", receiver.url))

    assert (status, answer) == (200, {"delivered": True, "status": 204, "opted_out": True})
    (webhook,) = receiver.received
    form = webhook.form
    assert re.fullmatch(r"SM[0-9a-f]{32}", form["MessageSid"])
    assert form["SmsSid"] == form["SmsMessageSid"] == form["MessageSid"]
    assert (form["AccountSid"], form["From"], form["To"], form["Body"]) == (LIVE_SID, RECIPIENT, SENDER, "STOP")
    assert (form["NumMedia"], form["NumSegments"], form["ApiVersion"]) == ("0", "1", "2010-04-01")
    assert form["OptOutType"] == "STOP"
    assert "MessagingServiceSid" not in form
    assert webhook.signature is not None
    assert is_valid_signature(LIVE_TOKEN, webhook.url, form, webhook.signature)
    assert RequestValidator(LIVE_TOKEN).validate(webhook.url, form, webhook.signature)
    assert not is_valid_signature(OTHER_TOKEN, webhook.url, form, webhook.signature)

    for sender in ({"From": SENDER}, {"MessagingServiceSid": SERVICE}):
        status, refusal = await create(http, simulator, sender)
        assert (status, refusal["code"], refusal["status"]) == (400, 21610, 400)
        assert refusal["message"] == "Attempt to send to unsubscribed recipient"
        assert refusal["more_info"] == "https://www.twilio.com/docs/errors/21610"
    # The opt-out is the account's: another account still reaches the recipient.
    other = await create(
        http, simulator, {"From": OTHER_SENDER}, headers=basic(OTHER_SID, OTHER_TOKEN), account_sid=OTHER_SID
    )
    assert other[0] == 201

    status, answer = await inbound(http, simulator, reply("  start ", receiver.url))

    assert (status, answer["opted_out"]) == (200, False)
    assert receiver.received[1].form["OptOutType"] == "START"
    assert (await create(http, simulator))[0] == 201


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("body", "opt_out_type", "opted_out"),
    [
        ("stop", "STOP", True),
        (" StopAll\n", "STOP", True),
        ("UNSUBSCRIBE", "STOP", True),
        ("cancel", "STOP", True),
        ("End", "STOP", True),
        ("quit", "STOP", True),
        ("optout", "STOP", True),
        ("revoke", "STOP", True),
        ("help", "HELP", False),
        ("INFO", "HELP", False),
        ("stop please", None, False),
        ("Hello there", None, False),
    ],
)
async def test_inbound_keywords_set_opt_out_type_and_state(
    simulator: RunningSimulator, receiver: CallbackReceiver, body: str, opt_out_type: str | None, opted_out: bool
) -> None:
    answer = await simulator.reply_from_recipient(LIVE_SID, RECIPIENT, SENDER, body, receiver.url)

    assert answer == {"delivered": True, "status": 204, "opted_out": opted_out}
    assert simulator.is_opted_out(LIVE_SID, RECIPIENT) is opted_out
    assert receiver.received[0].form.get("OptOutType") == opt_out_type
    assert receiver.received[0].form["Body"] == body


@pytest.mark.asyncio
@pytest.mark.parametrize("body", ["START", "yes", "Unstop"])
async def test_inbound_start_keywords_opt_back_in(
    simulator: RunningSimulator, http: aiohttp.ClientSession, body: str
) -> None:
    await simulator.reply_from_recipient(LIVE_SID, RECIPIENT, SENDER, "STOP")
    assert (await create(http, simulator))[0] == 400

    answer = await simulator.reply_from_recipient(LIVE_SID, RECIPIENT, SENDER, body)

    assert answer == {"delivered": False, "status": None, "opted_out": False}
    assert (await create(http, simulator))[0] == 201


@pytest.mark.asyncio
async def test_inbound_to_a_messaging_service_names_the_service_and_a_number(
    simulator: RunningSimulator, http: aiohttp.ClientSession, receiver: CallbackReceiver
) -> None:
    status, answer = await inbound(http, simulator, reply("STOP", receiver.url, to=SERVICE))

    form = receiver.received[0].form
    assert (status, answer["opted_out"]) == (200, True)
    assert (form["MessagingServiceSid"], form["To"]) == (SERVICE, SENDER)
    assert is_valid_signature(LIVE_TOKEN, receiver.received[0].url, form, receiver.received[0].signature or "")
    assert (await create(http, simulator, {"MessagingServiceSid": SERVICE}))[1]["code"] == 21610


def _closed_port_url() -> str:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{probe.getsockname()[1]}/inbound"


@pytest.mark.asyncio
async def test_inbound_reports_an_unreachable_or_failing_receiver_and_still_opts_out(
    simulator: RunningSimulator, http: aiohttp.ClientSession, receiver: CallbackReceiver
) -> None:
    receiver.statuses.append(500)

    failing = await inbound(http, simulator, reply("STOP", receiver.url))
    unreachable = await inbound(http, simulator, reply("STOP", _closed_port_url()))
    no_url = await inbound(http, simulator, {k: v for k, v in reply("STOP", None).items() if k != "url"})

    assert failing == (200, {"delivered": False, "status": 500, "opted_out": True})
    assert unreachable == (200, {"delivered": False, "status": None, "opted_out": True})
    assert no_url == (200, {"delivered": False, "status": None, "opted_out": True})
    assert len(receiver.received) == 1  # one attempt only: the caller sees the receiver's answer


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("change", "fragment"),
    [
        ({"account_sid": "AC" + "9" * 32}, "account_sid"),
        ({"account_sid": TEST_SID}, "account_sid"),
        ({"from": "not-a-number"}, "from"),
        ({"to": OTHER_SENDER}, "to must be"),
        ({"body": 5}, "body"),
        ({"url": "ftp://example.com/x"}, "url"),
    ],
)
async def test_inbound_refuses_bad_fields_with_400(
    simulator: RunningSimulator, http: aiohttp.ClientSession, change: dict[str, Any], fragment: str
) -> None:
    status, answer = await inbound(http, simulator, {**reply("STOP", None), **change})

    assert status == 400
    assert fragment in answer["error"]
    assert not simulator.is_opted_out(LIVE_SID, RECIPIENT)


@pytest.mark.asyncio
async def test_inbound_refuses_a_body_that_is_not_a_json_object(
    simulator: RunningSimulator, http: aiohttp.ClientSession
) -> None:
    async with http.post(f"{simulator.base_url}/_sim/inbound", data=b"STOP") as response:
        assert response.status == 400
        assert "JSON object" in (await response.json())["error"]


@pytest.mark.asyncio
async def test_magic_test_number_still_gets_21610_and_test_credentials_ignore_opt_outs(
    simulator: RunningSimulator, http: aiohttp.ClientSession
) -> None:
    test_auth = basic(TEST_SID, TEST_TOKEN)
    magic = await create(
        http, simulator, {"From": "+15005550006"}, to="+15005550004", headers=test_auth, account_sid=TEST_SID
    )
    await simulator.reply_from_recipient(LIVE_SID, RECIPIENT, SENDER, "STOP")
    other = await create(http, simulator, {"From": "+15005550006"}, headers=test_auth, account_sid=TEST_SID)

    assert (magic[0], magic[1]["code"]) == (400, 21610)
    assert other[0] == 201


@pytest.mark.asyncio
async def test_testing_helper_replies_over_http_and_raises_on_refusal(
    simulator: RunningSimulator, http: aiohttp.ClientSession, receiver: CallbackReceiver
) -> None:
    answer = await reply_from_recipient(simulator.base_url, LIVE_SID, RECIPIENT, SENDER, "STOP", receiver.url)

    assert answer == {"delivered": True, "status": 204, "opted_out": True}
    assert receiver.received[0].form["OptOutType"] == "STOP"
    assert (await create(http, simulator))[1]["code"] == 21610
    with pytest.raises(ValueError, match="to must be"):
        await reply_from_recipient(simulator.base_url, LIVE_SID, RECIPIENT, OTHER_SENDER, "START")
