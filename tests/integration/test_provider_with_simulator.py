"""TwilioProvider through the production transport against the Twilio simulator on 127.0.0.1.

The seed's integration tests (test credentials and magic numbers), plus what only a server can show: a live
account sends, 429 is retried, a create that was accepted and then answered 500 (or cut off) is reported as
an unknown outcome without a second create, and find_sent() settles it from the message list.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest
import pytest_asyncio
from pydantic import SecretStr

from smsdispatch.adapters.twilio import (
    AuthenticationError,
    MessageRejected,
    OutgoingSms,
    ReconciliationUnavailable,
    RetryPolicy,
    TwilioHttp,
    TwilioProvider,
    UnknownOutcome,
)
from smsdispatch.contract import TenantConfig
from smsdispatch.tools.simulator import RunningSimulator, SimAccount, SimulatorConfig, running_simulator

LIVE_SID = "AC" + "11" * 16
LIVE_TOKEN = "live-token-0123456789"
TRIAL_SID = "AC" + "22" * 16
TRIAL_TOKEN = "trial-token-0123456789"
TEST_SID = "AC" + "33" * 16
TEST_TOKEN = "test-token-0123456789"
API_KEY_SID = "SK" + "44" * 16
API_KEY_SECRET = "key-secret-0123456789"
STANDARD_KEY_SID = "SK" + "66" * 16
LIVE_NUMBER = "+14155550100"
SERVICE_SID = "MG" + "55" * 16
TO_NUMBER = "+14155552671"
PASSING_FROM = "+15005550006"

# Small real delays: these tests run against a real server, but should not wait long.
QUICK_RETRIES = RetryPolicy(max_attempts=5, base_delay=0.01, max_delay=0.05, max_elapsed=5.0)


@pytest_asyncio.fixture
async def sim() -> AsyncIterator[RunningSimulator]:
    config = SimulatorConfig(
        accounts=[
            SimAccount(
                sid=LIVE_SID,
                token=SecretStr(LIVE_TOKEN),
                senders=[LIVE_NUMBER, SERVICE_SID],
                api_keys={API_KEY_SID: SecretStr(API_KEY_SECRET), STANDARD_KEY_SID: SecretStr(API_KEY_SECRET)},
                standard_api_keys=frozenset({STANDARD_KEY_SID}),
            ),
            SimAccount(sid=TRIAL_SID, token=SecretStr(TRIAL_TOKEN), senders=[LIVE_NUMBER], account_type="Trial"),
        ],
        test_accounts=[SimAccount(sid=TEST_SID, token=SecretStr(TEST_TOKEN))],
        latency_ms=0,
        concurrency_limit=None,
        fail_rate=0.0,
    )
    async with running_simulator(config, port=0) as running:
        yield running


@pytest_asyncio.fixture
async def http(sim: RunningSimulator) -> AsyncIterator[TwilioHttp]:
    async with TwilioHttp(sim.base_url) as client:  # the production aiohttp transport
        yield client


def provider_for(http: TwilioHttp, sid: str, token: str, from_number: str) -> TwilioProvider:
    config = TenantConfig(account_sid=sid, auth_token=SecretStr(token), from_number=from_number)
    return TwilioProvider(config, http, QUICK_RETRIES)


@pytest.fixture
def live(http: TwilioHttp) -> TwilioProvider:
    return provider_for(http, LIVE_SID, LIVE_TOKEN, LIVE_NUMBER)


@pytest.fixture
def test_credentials(http: TwilioHttp) -> TwilioProvider:
    return provider_for(http, TEST_SID, TEST_TOKEN, PASSING_FROM)


@pytest.mark.asyncio
async def test_test_credentials_from_the_passing_magic_number_succeed_with_status_queued(
    test_credentials: TwilioProvider,
) -> None:
    result = await test_credentials.send(OutgoingSms(to=TO_NUMBER, body="Hello from the test account"))

    assert result.status == "queued"
    assert result.message_id.startswith("SM")


@pytest.mark.asyncio
async def test_test_credentials_to_the_invalid_magic_number_raise_21211(test_credentials: TwilioProvider) -> None:
    with pytest.raises(MessageRejected) as caught:
        await test_credentials.send(OutgoingSms(to="+15005550001", body="Hello"))

    assert (caught.value.provider_code, caught.value.http_status) == (21211, 400)


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("from_number", "to", "code"),
    [
        ("+15005550001", TO_NUMBER, 21212),
        ("+15005550007", TO_NUMBER, 21606),
        ("+15005550008", TO_NUMBER, 21611),
        ("+14155550199", TO_NUMBER, 21606),
        (PASSING_FROM, "+15005550002", 21612),
        (PASSING_FROM, "+15005550003", 21408),
        (PASSING_FROM, "+15005550004", 21610),
        (PASSING_FROM, "+15005550009", 21614),
    ],
)
async def test_each_magic_number_maps_to_its_twilio_code(
    http: TwilioHttp, from_number: str, to: str, code: int
) -> None:
    provider = provider_for(http, TEST_SID, TEST_TOKEN, from_number)

    with pytest.raises(MessageRejected) as caught:
        await provider.send(OutgoingSms(to=to, body="Hello"))

    assert caught.value.provider_code == code


@pytest.mark.asyncio
async def test_live_account_sends_and_the_simulator_holds_the_sid(live: TwilioProvider, sim: RunningSimulator) -> None:
    result = await live.send(OutgoingSms(to=TO_NUMBER, body="Hello live"))

    assert result.status == "queued"
    [accepted] = sim.accepted_messages()
    assert (accepted["sid"], accepted["from"], accepted["to"], accepted["body"]) == (
        result.message_id,
        LIVE_NUMBER,
        TO_NUMBER,
        "Hello live",
    )


@pytest.mark.asyncio
async def test_messaging_service_sender_is_accepted(http: TwilioHttp, sim: RunningSimulator) -> None:
    provider = provider_for(http, LIVE_SID, LIVE_TOKEN, SERVICE_SID)

    result = await provider.send(OutgoingSms(to=TO_NUMBER, body="Hello via a service"))

    assert result.status == "accepted"
    assert [m["sid"] for m in sim.accepted_messages()] == [result.message_id]


@pytest.mark.asyncio
async def test_api_key_credentials_send_and_verify(http: TwilioHttp) -> None:
    config = TenantConfig(
        account_sid=LIVE_SID,
        api_key_sid=API_KEY_SID,
        api_key_secret=SecretStr(API_KEY_SECRET),
        from_number=LIVE_NUMBER,
    )
    provider = TwilioProvider(config, http, QUICK_RETRIES)

    result = await provider.send(OutgoingSms(to=TO_NUMBER, body="Hello with a key"))
    info = await provider.verify()

    assert result.status == "queued"
    assert (info.verified, info.account_type) == (True, "Full")


@pytest.mark.asyncio
async def test_429_is_retried_and_then_succeeds(live: TwilioProvider, sim: RunningSimulator) -> None:
    sim.inject_faults("rate_limit", 2)

    result = await live.send(OutgoingSms(to=TO_NUMBER, body="Eventually"))

    assert result.attempts == 3
    assert len(sim.accepted_messages()) == 1


@pytest.mark.asyncio
async def test_5xx_after_acceptance_is_an_unknown_outcome_without_a_second_create(
    live: TwilioProvider, sim: RunningSimulator
) -> None:
    sim.inject_faults("error_500_after_accept", 1)

    with pytest.raises(UnknownOutcome) as caught:
        await live.send(OutgoingSms(to=TO_NUMBER, body="Accepted, then 500"))

    assert (caught.value.http_status, caught.value.provider_code, caught.value.attempts) == (500, 20500, 1)
    assert len(sim.accepted_messages()) == 1
    found = await live.find_sent(caught.value.to, caught.value.body, caught.value.sent_after)
    assert found is not None
    assert found.message_id == sim.accepted_messages()[0]["sid"]


@pytest.mark.asyncio
async def test_find_sent_finds_the_message_accepted_before_the_connection_dropped(
    live: TwilioProvider, sim: RunningSimulator
) -> None:
    sim.inject_faults("drop_after_accept", 1)
    with pytest.raises(UnknownOutcome) as caught:
        await live.send(OutgoingSms(to=TO_NUMBER, body="Accepted, then cut off"))
    assert len(sim.accepted_messages()) == 1

    found = await live.find_sent(TO_NUMBER, "Accepted, then cut off", caught.value.sent_after)

    assert found is not None
    assert found.message_id == sim.accepted_messages()[0]["sid"]


@pytest.mark.asyncio
async def test_find_sent_returns_none_after_a_500_before_acceptance(
    live: TwilioProvider, sim: RunningSimulator
) -> None:
    await live.send(OutgoingSms(to=TO_NUMBER, body="An earlier, different message"))
    sim.inject_faults("error_500_before_accept", 1)
    with pytest.raises(UnknownOutcome) as caught:
        await live.send(OutgoingSms(to=TO_NUMBER, body="Refused before acceptance"))

    assert await live.find_sent(caught.value.to, caught.value.body, caught.value.sent_after) is None


@pytest.mark.asyncio
async def test_find_sent_with_test_credentials_is_unavailable(test_credentials: TwilioProvider) -> None:
    with pytest.raises(ReconciliationUnavailable):
        await test_credentials.find_sent(TO_NUMBER, "Hello", datetime.now(UTC))


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("sid", "token", "account_type"), [(LIVE_SID, LIVE_TOKEN, "Full"), (TRIAL_SID, TRIAL_TOKEN, "Trial")]
)
async def test_verify_of_a_live_account_reports_its_type(
    http: TwilioHttp, sid: str, token: str, account_type: str
) -> None:
    info = await provider_for(http, sid, token, LIVE_NUMBER).verify()

    assert (info.verified, info.test_credentials, info.account_type, info.status) == (
        True,
        False,
        account_type,
        "active",
    )


@pytest.mark.asyncio
async def test_verify_of_test_credentials_reports_test_credentials(test_credentials: TwilioProvider) -> None:
    info = await test_credentials.verify()

    assert (info.verified, info.test_credentials, info.account_type) == (True, True, None)


@pytest.mark.asyncio
async def test_verify_with_a_wrong_token_raises_20003(http: TwilioHttp) -> None:
    with pytest.raises(AuthenticationError) as caught:
        await provider_for(http, LIVE_SID, "not-the-token", LIVE_NUMBER).verify()

    assert (caught.value.http_status, caught.value.provider_code) == (401, 20003)
    assert "not-the-token" not in str(caught.value)


@pytest.mark.asyncio
async def test_concurrency_limit_429s_are_absorbed_by_retries() -> None:
    config = SimulatorConfig(
        accounts=[SimAccount(sid=LIVE_SID, token=SecretStr(LIVE_TOKEN), senders=[LIVE_NUMBER])],
        latency_ms=20,
        concurrency_limit=4,
    )
    patient = RetryPolicy(max_attempts=30, base_delay=0.01, max_delay=0.1, max_elapsed=20.0)
    async with running_simulator(config) as limited, TwilioHttp(limited.base_url) as limited_http:
        provider = TwilioProvider(
            TenantConfig(account_sid=LIVE_SID, auth_token=SecretStr(LIVE_TOKEN), from_number=LIVE_NUMBER),
            limited_http,
            patient,
        )
        results = await asyncio.gather(
            *(provider.send(OutgoingSms(to=TO_NUMBER, body=f"message {n}")) for n in range(12))
        )
        accepted = limited.accepted_messages()

    assert len(accepted) == 12
    assert {r.message_id for r in results} == {m["sid"] for m in accepted}
    assert any(r.attempts > 1 for r in results)


@pytest.mark.asyncio
async def test_a_standard_api_key_is_verified_through_the_message_list(http: TwilioHttp) -> None:
    # Standard keys may not read /Accounts (401), but they can send: the list proves the key works.
    key = {"account_sid": LIVE_SID, "api_key_sid": STANDARD_KEY_SID, "from_number": LIVE_NUMBER}
    provider = TwilioProvider(TenantConfig(**key, api_key_secret=SecretStr(API_KEY_SECRET)), http, QUICK_RETRIES)
    wrong = TwilioProvider(TenantConfig(**key, api_key_secret=SecretStr("wrong")), http, QUICK_RETRIES)

    info = await provider.verify()

    assert (info.verified, info.test_credentials, info.account_type) == (True, False, None)
    with pytest.raises(AuthenticationError):
        await wrong.verify()
