"""The official twilio SDK, pointed at the simulator, works as it does against api.twilio.com.

The SDK's Domain keeps its base URL in ``client.api.base_url``; every request and every ``next_page_uri`` is
resolved against it, so replacing it is the whole redirection. The SDK is blocking, so the simulator runs in a
background thread here.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from twilio.base.exceptions import TwilioException, TwilioRestException
from twilio.rest import Client

from smsdispatch.tools.simulator import RunningSimulator

from .conftest import (
    LIVE_SID,
    LIVE_TOKEN,
    MAIN_KEY,
    MAIN_KEY_SECRET,
    RECIPIENT,
    SENDER,
    SERVICE,
    SUSPENDED_SID,
    SUSPENDED_TOKEN,
    TEST_SID,
    TEST_TOKEN,
    ThreadedSimulator,
)

Threaded = tuple[ThreadedSimulator, RunningSimulator]


def sdk_client(simulator: RunningSimulator, username: str, password: str, account_sid: str | None = None) -> Client:
    client = Client(username, password, account_sid=account_sid)
    client.api.base_url = simulator.base_url
    return client


def test_sdk_creates_a_message_and_reads_twilios_fields(threaded_simulator: Threaded) -> None:
    _, simulator = threaded_simulator
    client = sdk_client(simulator, LIVE_SID, LIVE_TOKEN)

    message = client.messages.create(to=RECIPIENT, from_=SENDER, body="hello from the SDK")

    assert message.sid.startswith("SM")
    assert len(message.sid) == 34
    assert message.status == "queued"
    assert message.num_segments == "1"
    assert message.direction == "outbound-api"
    assert message.api_version == "2010-04-01"
    assert message.error_code is None
    assert isinstance(message.date_created, datetime)  # the SDK parsed the RFC 2822 date
    assert message.date_sent is None


def test_sdk_creates_through_a_messaging_service(threaded_simulator: Threaded) -> None:
    _, simulator = threaded_simulator
    client = sdk_client(simulator, LIVE_SID, LIVE_TOKEN)

    message = client.messages.create(to=RECIPIENT, messaging_service_sid=SERVICE, body="via service")

    assert (message.status, message.num_segments, message.messaging_service_sid) == ("accepted", "0", SERVICE)


def test_sdk_fetches_a_created_message(threaded_simulator: Threaded) -> None:
    _, simulator = threaded_simulator
    client = sdk_client(simulator, LIVE_SID, LIVE_TOKEN)
    created = client.messages.create(to=RECIPIENT, from_=SENDER, body="fetch me")

    fetched = client.messages(created.sid).fetch()

    assert (fetched.sid, fetched.body, fetched.to) == (created.sid, "fetch me", RECIPIENT)


def test_sdk_lists_messages_across_pages_with_filters(threaded_simulator: Threaded) -> None:
    _, simulator = threaded_simulator
    client = sdk_client(simulator, LIVE_SID, LIVE_TOKEN)
    created = [client.messages.create(to=RECIPIENT, from_=SENDER, body=f"n{i}").sid for i in range(5)]
    client.messages.create(to="+14155550124", from_=SENDER, body="someone else")
    yesterday = datetime.now(UTC) - timedelta(days=1)

    listed = client.messages.list(to=RECIPIENT, from_=SENDER, date_sent_after=yesterday, page_size=2)

    assert [m.sid for m in listed] == list(reversed(created))  # newest first, all three pages followed


def test_sdk_date_sent_before_excludes_todays_messages(threaded_simulator: Threaded) -> None:
    _, simulator = threaded_simulator
    client = sdk_client(simulator, LIVE_SID, LIVE_TOKEN)
    client.messages.create(to=RECIPIENT, from_=SENDER, body="today")

    assert client.messages.list(date_sent_before=datetime.now(UTC) - timedelta(days=1)) == []


def test_sdk_fetches_the_account(threaded_simulator: Threaded) -> None:
    _, simulator = threaded_simulator
    client = sdk_client(simulator, LIVE_SID, LIVE_TOKEN)

    account = client.api.accounts(LIVE_SID).fetch()

    assert (account.sid, account.status, account.type, account.friendly_name) == (LIVE_SID, "active", "Full", "Live")


def test_sdk_fetches_a_suspended_account_and_sees_its_status(threaded_simulator: Threaded) -> None:
    _, simulator = threaded_simulator
    client = sdk_client(simulator, SUSPENDED_SID, SUSPENDED_TOKEN)

    assert client.api.accounts(SUSPENDED_SID).fetch().status == "suspended"


def test_sdk_sends_with_an_api_key(threaded_simulator: Threaded) -> None:
    _, simulator = threaded_simulator
    client = sdk_client(simulator, MAIN_KEY, MAIN_KEY_SECRET, account_sid=LIVE_SID)

    assert client.messages.create(to=RECIPIENT, from_=SENDER, body="key").account_sid == LIVE_SID


def test_sdk_gets_20003_for_a_wrong_token(threaded_simulator: Threaded) -> None:
    _, simulator = threaded_simulator
    client = sdk_client(simulator, LIVE_SID, "not-the-token")

    with pytest.raises(TwilioRestException) as raised:
        client.api.accounts(LIVE_SID).fetch()

    assert (raised.value.status, raised.value.code) == (401, 20003)


def test_sdk_test_credentials_send_from_the_passing_magic_number(threaded_simulator: Threaded) -> None:
    _, simulator = threaded_simulator
    client = sdk_client(simulator, TEST_SID, TEST_TOKEN)

    message = client.messages.create(to=RECIPIENT, from_="+15005550006", body="test creds")

    assert (message.status, message.price, message.date_sent) == ("queued", None, None)


@pytest.mark.parametrize(
    ("sender", "recipient", "code"),
    [
        ("+15005550001", RECIPIENT, 21212),
        ("+15005550007", RECIPIENT, 21606),
        ("+15005550008", RECIPIENT, 21611),
        ("+14155550100", RECIPIENT, 21606),  # any other From: the test account owns no numbers
        ("+15005550006", "+15005550001", 21211),
        ("+15005550006", "+15005550002", 21612),
        ("+15005550006", "+15005550003", 21408),
        ("+15005550006", "+15005550004", 21610),
        ("+15005550006", "+15005550009", 21614),
    ],
)
def test_sdk_magic_numbers_raise_twilios_code(
    threaded_simulator: Threaded, sender: str, recipient: str, code: int
) -> None:
    _, simulator = threaded_simulator
    client = sdk_client(simulator, TEST_SID, TEST_TOKEN)

    with pytest.raises(TwilioRestException) as raised:
        client.messages.create(to=recipient, from_=sender, body="magic")

    assert (raised.value.status, raised.value.code) == (400, code)
    assert raised.value.uri.endswith(f"/Accounts/{TEST_SID}/Messages.json")


@pytest.mark.parametrize(
    "call",
    [
        pytest.param(lambda client: client.api.accounts(TEST_SID).fetch(), id="account-fetch"),
        pytest.param(lambda client: client.messages("SM" + "0" * 32).fetch(), id="message-fetch"),
    ],
)
def test_sdk_test_credentials_get_20008_for_everything_but_create(threaded_simulator: Threaded, call: object) -> None:
    _, simulator = threaded_simulator
    client = sdk_client(simulator, TEST_SID, TEST_TOKEN)

    with pytest.raises(TwilioRestException) as raised:
        call(client)  # type: ignore[operator]

    assert (raised.value.status, raised.value.code) == (403, 20008)


def test_sdk_test_credentials_get_20008_when_listing(threaded_simulator: Threaded) -> None:
    _, simulator = threaded_simulator
    client = sdk_client(simulator, TEST_SID, TEST_TOKEN)

    # The SDK wraps a failed page in a plain TwilioException carrying the raw response.
    with pytest.raises(TwilioException) as raised:
        client.messages.list(limit=1)

    response = raised.value.args[1]
    assert (response.status_code, json.loads(response.text)["code"]) == (403, 20008)


def test_sdk_messages_created_are_listed_by_the_sim_endpoint(threaded_simulator: Threaded) -> None:
    runner, simulator = threaded_simulator
    client = sdk_client(simulator, LIVE_SID, LIVE_TOKEN)
    sid = client.messages.create(to=RECIPIENT, from_=SENDER, body="seen").sid

    accepted = runner.call(simulator.accepted_messages)

    assert [(m["sid"], m["from"], m["body"]) for m in accepted] == [(sid, SENDER, "seen")]
