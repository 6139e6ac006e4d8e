"""The simulator's HTTP surface, byte for byte: shapes and types, validation codes, auth rules, limits."""

from __future__ import annotations

import asyncio
import re
from email.utils import parsedate_to_datetime
from typing import Any

import aiohttp
import pytest

from smsdispatch.tools.simulator import RunningSimulator, running_simulator

from .conftest import (
    LIVE_AUTH,
    LIVE_SID,
    MAIN_KEY,
    MAIN_KEY_SECRET,
    OTHER_SENDER,
    OTHER_SID,
    OTHER_TOKEN,
    RECIPIENT,
    SENDER,
    SERVICE,
    STANDARD_KEY,
    STANDARD_KEY_SECRET,
    SUSPENDED_SID,
    SUSPENDED_TOKEN,
    TEST_SID,
    TEST_TOKEN,
    basic,
    make_config,
    messages_url,
)

RFC_2822 = re.compile(r"^(Mon|Tue|Wed|Thu|Fri|Sat|Sun), \d{2} [A-Z][a-z]{2} \d{4} \d{2}:\d{2}:\d{2} \+0000$")


async def create(
    http: aiohttp.ClientSession,
    simulator: RunningSimulator,
    form: dict[str, str] | None = None,
    *,
    headers: dict[str, str] = LIVE_AUTH,
    account_sid: str = LIVE_SID,
) -> tuple[int, Any]:
    fields = {"To": RECIPIENT, "From": SENDER, "Body": "hello"} if form is None else form
    async with http.post(messages_url(simulator.base_url, account_sid), data=fields, headers=headers) as response:
        return response.status, await response.json()


async def get(http: aiohttp.ClientSession, url: str, headers: dict[str, str] = LIVE_AUTH) -> tuple[int, Any]:
    async with http.get(url, headers=headers) as response:
        return response.status, await response.json()


def assert_twilio_error(status: int, body: Any, http_status: int, code: int) -> None:
    assert (status, body["code"], body["status"]) == (http_status, code, http_status)
    assert body["more_info"] == f"https://www.twilio.com/docs/errors/{code}"
    assert isinstance(body["message"], str)
    assert body["message"]


@pytest.mark.asyncio
async def test_create_answers_201_with_twilios_field_types(
    simulator: RunningSimulator, http: aiohttp.ClientSession
) -> None:
    status, body = await create(http, simulator, {"To": RECIPIENT, "From": SENDER, "Body": "x" * 161})

    assert status == 201
    assert re.fullmatch(r"SM[0-9a-f]{32}", body["sid"])
    assert (body["num_segments"], body["num_media"], body["price"], body["price_unit"]) == ("2", "0", None, "USD")
    assert (body["error_code"], body["error_message"], body["messaging_service_sid"]) == (None, None, None)
    assert (body["direction"], body["api_version"], body["status"]) == ("outbound-api", "2010-04-01", "queued")
    assert (body["from"], body["to"], body["account_sid"]) == (SENDER, RECIPIENT, LIVE_SID)
    assert RFC_2822.match(body["date_created"])
    assert RFC_2822.match(body["date_updated"])
    assert body["date_sent"] is None
    assert body["uri"] == f"/2010-04-01/Accounts/{LIVE_SID}/Messages/{body['sid']}.json"
    assert set(body["subresource_uris"]) == {"media", "feedback"}


@pytest.mark.asyncio
async def test_a_service_sid_in_from_is_sent_through_the_service(
    simulator: RunningSimulator, http: aiohttp.ClientSession
) -> None:
    status, body = await create(http, simulator, {"To": RECIPIENT, "From": SERVICE, "Body": "hi"})

    assert status == 201
    assert (body["status"], body["num_segments"], body["messaging_service_sid"], body["from"]) == (
        "accepted",
        "0",
        SERVICE,
        None,
    )


@pytest.mark.parametrize(
    ("form", "code"),
    [
        ({"From": SENDER, "Body": "b"}, 21604),
        ({"To": "14155550123", "From": SENDER, "Body": "b"}, 21211),
        ({"To": RECIPIENT, "Body": "b"}, 21603),
        ({"To": RECIPIENT, "From": SENDER}, 21602),
        ({"To": RECIPIENT, "From": SENDER, "Body": "x" * 1601}, 21617),
        ({"To": RECIPIENT, "From": "not a number!", "Body": "b"}, 21212),
        ({"To": RECIPIENT, "From": OTHER_SENDER, "Body": "b"}, 21606),
        ({"To": RECIPIENT, "MessagingServiceSid": "MG" + "9" * 32, "Body": "b"}, 21701),
        ({"To": RECIPIENT, "MessagingServiceSid": "MG-short", "Body": "b"}, 21705),
        ({"To": RECIPIENT, "From": SENDER, "Body": "b", "StatusCallback": "ftp://example.test/x"}, 21609),
        ({"To": RECIPIENT, "From": SENDER, "Body": "b", "StatusCallback": "http://bad_host.test/x"}, 21609),
    ],
)
@pytest.mark.asyncio
async def test_invalid_creates_get_twilios_code(
    simulator: RunningSimulator, http: aiohttp.ClientSession, form: dict[str, str], code: int
) -> None:
    status, body = await create(http, simulator, form)

    assert_twilio_error(status, body, 400, code)
    assert simulator.accepted_messages() == []


@pytest.mark.asyncio
async def test_body_of_exactly_1600_characters_is_accepted(
    simulator: RunningSimulator, http: aiohttp.ClientSession
) -> None:
    status, body = await create(http, simulator, {"To": RECIPIENT, "From": SENDER, "Body": "x" * 1600})

    assert (status, body["num_segments"]) == (201, "11")


@pytest.mark.asyncio
async def test_test_credentials_cannot_use_a_messaging_service(
    simulator: RunningSimulator, http: aiohttp.ClientSession
) -> None:
    form = {"To": RECIPIENT, "MessagingServiceSid": SERVICE, "Body": "b"}

    status, body = await create(http, simulator, form, headers=basic(TEST_SID, TEST_TOKEN), account_sid=TEST_SID)

    assert_twilio_error(status, body, 400, 21606)


@pytest.mark.parametrize(
    "headers",
    [
        pytest.param(basic(LIVE_SID, "wrong"), id="wrong-token"),
        pytest.param(basic("AC" + "9" * 32, "whatever"), id="unknown-account"),
        pytest.param(basic(MAIN_KEY, "wrong"), id="wrong-key-secret"),
        pytest.param({}, id="no-credentials"),
        pytest.param({"Authorization": "Basic !!!not-base64"}, id="garbage-header"),
        pytest.param({"Authorization": "Bearer abc"}, id="not-basic"),
    ],
)
@pytest.mark.asyncio
async def test_bad_credentials_get_401_20003(
    simulator: RunningSimulator, http: aiohttp.ClientSession, headers: dict[str, str]
) -> None:
    status, body = await create(http, simulator, headers=headers)

    assert_twilio_error(status, body, 401, 20003)


@pytest.mark.asyncio
async def test_api_key_sends_for_its_own_account(simulator: RunningSimulator, http: aiohttp.ClientSession) -> None:
    status, body = await create(http, simulator, headers=basic(STANDARD_KEY, STANDARD_KEY_SECRET))

    assert (status, body["account_sid"]) == (201, LIVE_SID)


@pytest.mark.asyncio
async def test_api_key_under_another_accounts_path_gets_20003(
    simulator: RunningSimulator, http: aiohttp.ClientSession
) -> None:
    form = {"To": RECIPIENT, "From": OTHER_SENDER, "Body": "b"}

    status, body = await create(http, simulator, form, headers=basic(MAIN_KEY, MAIN_KEY_SECRET), account_sid=OTHER_SID)

    assert_twilio_error(status, body, 401, 20003)


@pytest.mark.asyncio
async def test_account_credentials_under_another_accounts_path_get_20404(
    simulator: RunningSimulator, http: aiohttp.ClientSession
) -> None:
    status, body = await get(http, f"{simulator.base_url}/2010-04-01/Accounts/{OTHER_SID}.json")

    assert_twilio_error(status, body, 404, 20404)


@pytest.mark.asyncio
async def test_main_key_fetches_the_account_but_a_standard_key_cannot(
    simulator: RunningSimulator, http: aiohttp.ClientSession
) -> None:
    url = f"{simulator.base_url}/2010-04-01/Accounts/{LIVE_SID}.json"

    main_status, main_body = await get(http, url, basic(MAIN_KEY, MAIN_KEY_SECRET))
    standard_status, standard_body = await get(http, url, basic(STANDARD_KEY, STANDARD_KEY_SECRET))

    assert (main_status, main_body["sid"]) == (200, LIVE_SID)
    assert_twilio_error(standard_status, standard_body, 401, 20003)


@pytest.mark.asyncio
async def test_account_resource_has_twilios_shape_and_no_token(
    simulator: RunningSimulator, http: aiohttp.ClientSession
) -> None:
    status, body = await get(
        http, f"{simulator.base_url}/2010-04-01/Accounts/{OTHER_SID}.json", basic(OTHER_SID, OTHER_TOKEN)
    )

    assert status == 200
    assert (body["sid"], body["status"], body["type"]) == (OTHER_SID, "active", "Trial")
    assert RFC_2822.match(body["date_created"])
    assert body["uri"].endswith(f"{OTHER_SID}.json")
    assert "auth_token" not in body
    assert OTHER_TOKEN not in str(body)


@pytest.mark.asyncio
async def test_suspended_account_is_fetched_but_cannot_send(
    simulator: RunningSimulator, http: aiohttp.ClientSession
) -> None:
    auth = basic(SUSPENDED_SID, SUSPENDED_TOKEN)

    fetch_status, account = await get(http, f"{simulator.base_url}/2010-04-01/Accounts/{SUSPENDED_SID}.json", auth)
    send_status, refusal = await create(http, simulator, headers=auth, account_sid=SUSPENDED_SID)

    assert (fetch_status, account["status"]) == (200, "suspended")
    assert_twilio_error(send_status, refusal, 403, 20403)


@pytest.mark.asyncio
async def test_fetching_an_unknown_message_gets_20404(simulator: RunningSimulator, http: aiohttp.ClientSession) -> None:
    status, body = await get(http, f"{simulator.base_url}/2010-04-01/Accounts/{LIVE_SID}/Messages/SM{'0' * 32}.json")

    assert_twilio_error(status, body, 404, 20404)


@pytest.mark.asyncio
async def test_another_accounts_message_is_not_found(simulator: RunningSimulator, http: aiohttp.ClientSession) -> None:
    _, created = await create(http, simulator)
    url = f"{simulator.base_url}/2010-04-01/Accounts/{OTHER_SID}/Messages/{created['sid']}.json"

    status, body = await get(http, url, basic(OTHER_SID, OTHER_TOKEN))

    assert_twilio_error(status, body, 404, 20404)


@pytest.mark.asyncio
async def test_unknown_path_gets_twilio_404(simulator: RunningSimulator, http: aiohttp.ClientSession) -> None:
    status, body = await get(http, f"{simulator.base_url}/2010-04-01/Accounts/{LIVE_SID}/Calls.json")

    assert_twilio_error(status, body, 404, 20404)


@pytest.mark.asyncio
async def test_test_credentials_message_fetch_gets_20008(
    simulator: RunningSimulator, http: aiohttp.ClientSession
) -> None:
    auth = basic(TEST_SID, TEST_TOKEN)
    _, created = await create(
        http, simulator, {"To": RECIPIENT, "From": "+15005550006", "Body": "b"}, headers=auth, account_sid=TEST_SID
    )

    status, body = await get(
        http, f"{simulator.base_url}/2010-04-01/Accounts/{TEST_SID}/Messages/{created['sid']}.json", auth
    )

    assert_twilio_error(status, body, 403, 20008)


@pytest.mark.asyncio
async def test_list_envelope_pages_with_a_stable_token(
    simulator: RunningSimulator, http: aiohttp.ClientSession
) -> None:
    sids = [
        (await create(http, simulator, {"To": RECIPIENT, "From": SENDER, "Body": f"{i}"}))[1]["sid"] for i in range(3)
    ]

    _, first = await get(http, messages_url(simulator.base_url) + "?PageSize=2")
    await create(http, simulator)  # a newer message must not shift the next page
    _, second = await get(http, simulator.base_url + first["next_page_uri"])

    assert [m["sid"] for m in first["messages"]] == [sids[2], sids[1]]
    assert (first["page"], first["page_size"], first["start"], first["end"], first["previous_page_uri"]) == (
        0,
        2,
        0,
        1,
        None,
    )
    assert first["uri"].startswith(f"/2010-04-01/Accounts/{LIVE_SID}/Messages.json?")
    assert [m["sid"] for m in second["messages"]] == [sids[0]]
    assert (second["page"], second["next_page_uri"]) == (1, None)


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("To=%2B14155550123", 1),
        ("From=%2B14155550100", 2),
        ("To=%2B19999999999", 0),
        ("DateSent%3E=2000-01-01", 2),
        ("DateSent%3E%3D=2000-01-01", 2),
        ("DateSent%3C=2000-01-01", 0),
        ("DateSent%3C=2999-01-01T00:00:00Z", 2),
    ],
)
@pytest.mark.asyncio
async def test_list_filters_by_to_from_and_date_sent(
    simulator: RunningSimulator, http: aiohttp.ClientSession, query: str, expected: int
) -> None:
    await create(http, simulator, {"To": RECIPIENT, "From": SENDER, "Body": "a"})
    await create(http, simulator, {"To": "+14155550124", "From": SENDER, "Body": "b"})

    status, body = await get(http, f"{messages_url(simulator.base_url)}?{query}")

    assert (status, len(body["messages"])) == (200, expected)


@pytest.mark.parametrize("query", ["PageSize=0", "PageSize=1001", "Page=-1", "DateSent=yesterday"])
@pytest.mark.asyncio
async def test_list_rejects_bad_parameters_with_20001(
    simulator: RunningSimulator, http: aiohttp.ClientSession, query: str
) -> None:
    status, body = await get(http, f"{messages_url(simulator.base_url)}?{query}")

    assert_twilio_error(status, body, 400, 20001)


@pytest.mark.asyncio
async def test_requests_beyond_the_concurrency_limit_get_429(http: aiohttp.ClientSession) -> None:
    # Each request holds its slot for the 300 ms latency, so four at once against a limit of one must collide.
    async with running_simulator(make_config(concurrency_limit=1, latency_ms=300)) as simulator:
        results = await asyncio.gather(*(create(http, simulator) for _ in range(4)))

    statuses = sorted(status for status, _ in results)
    assert statuses[0] == 201
    assert 429 in statuses
    for status, body in results:
        if status == 429:
            assert_twilio_error(status, body, 429, 20429)


@pytest.mark.asyncio
async def test_concurrency_limit_is_per_account(http: aiohttp.ClientSession) -> None:
    async with running_simulator(make_config(concurrency_limit=1, latency_ms=200)) as simulator:
        live, other = await asyncio.gather(
            create(http, simulator),
            create(
                http,
                simulator,
                {"To": RECIPIENT, "From": OTHER_SENDER, "Body": "b"},
                headers=basic(OTHER_SID, OTHER_TOKEN),
                account_sid=OTHER_SID,
            ),
        )

    assert (live[0], other[0]) == (201, 201)


@pytest.mark.asyncio
async def test_sim_messages_endpoint_lists_accepted_messages(
    simulator: RunningSimulator, http: aiohttp.ClientSession
) -> None:
    _, created = await create(http, simulator, {"To": RECIPIENT, "MessagingServiceSid": SERVICE, "Body": "hey"})

    async with http.get(f"{simulator.base_url}/_sim/messages") as response:
        listed = await response.json()

    assert listed == simulator.accepted_messages()
    assert [(m["sid"], m["from"], m["to"], m["body"], m["account_sid"]) for m in listed] == [
        (created["sid"], SERVICE, RECIPIENT, "hey", LIVE_SID)
    ]
    contract_keys = {"sid", "account_sid", "from", "to", "body", "status", "date_created"}
    assert set(listed[0]) == contract_keys | {"validity_period", "created_at"}
    assert parsedate_to_datetime(listed[0]["date_created"]).tzinfo is not None
