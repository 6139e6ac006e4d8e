"""TwilioProvider.fetch_message(): a message's current status, for polling when callbacks do not come."""

from __future__ import annotations

from datetime import UTC, datetime

import httpx
import pytest

from smsdispatch.adapters.twilio import (
    AuthenticationError,
    MessageRejected,
    MessageStatusInfo,
    ProviderUnavailable,
    ReconciliationUnavailable,
    TwilioProvider,
)
from smsdispatch.tools.testing.twilio_fakes import FakeTwilio, message_json, twilio_error
from tests.accounts import ACCOUNT_SID, FROM_NUMBER

from .conftest import TO_NUMBER, FakeClock

SID = "SM" + "ab" * 16
MESSAGE_PATH = f"/2010-04-01/Accounts/{ACCOUNT_SID}/Messages/{SID}.json"
CREATED = datetime(2024, 5, 1, 12, 0, 0, tzinfo=UTC)


def resource(status: str, error_code: int | None = None) -> httpx.Response:
    document = message_json(
        account_sid=ACCOUNT_SID,
        to=TO_NUMBER,
        from_=FROM_NUMBER,
        body="Hi",
        sid=SID,
        status=status,
        date_created=CREATED,
    )
    document["error_code"] = error_code
    return httpx.Response(200, json=document)


@pytest.mark.asyncio
async def test_fetch_message_gets_the_message_resource_with_the_tenants_credentials(
    provider: TwilioProvider, fake: FakeTwilio
) -> None:
    fake.then(resource("delivered"))

    info = await provider.fetch_message(SID)

    [request] = fake.requests
    assert (request.method, request.url.path) == ("GET", MESSAGE_PATH)
    assert request.headers["Authorization"].startswith("Basic ")
    assert info == MessageStatusInfo(sid=SID, status="delivered", error_code=None, date_updated=CREATED)


@pytest.mark.asyncio
async def test_fetch_message_of_an_undelivered_message_carries_its_30xxx_error_code(
    provider: TwilioProvider, fake: FakeTwilio
) -> None:
    fake.then(resource("undelivered", 30003))

    info = await provider.fetch_message(SID)

    assert (info.status, info.error_code) == ("undelivered", 30003)


@pytest.mark.asyncio
async def test_fetch_message_with_test_credentials_is_reconciliation_unavailable_and_not_retried(
    provider: TwilioProvider, fake: FakeTwilio
) -> None:
    fake.then(twilio_error(403, 20008, "Resource not accessible with Test Account Credentials"))

    with pytest.raises(ReconciliationUnavailable) as caught:
        await provider.fetch_message(SID)

    assert (caught.value.provider_code, caught.value.http_status, caught.value.retryable) == (20008, 403, False)
    assert len(fake.requests) == 1


@pytest.mark.asyncio
async def test_fetch_message_of_an_unknown_sid_raises_a_clear_not_found_error(
    provider: TwilioProvider, fake: FakeTwilio
) -> None:
    # Unscripted, the fake answers a message fetch as Twilio answers an unknown resource: 404 / 20404.
    with pytest.raises(MessageRejected) as caught:
        await provider.fetch_message(SID)

    assert (caught.value.http_status, caught.value.provider_code) == (404, 20404)
    assert SID in caught.value.message
    assert len(fake.requests) == 1


@pytest.mark.asyncio
async def test_fetch_message_with_refused_credentials_raises_authentication_error(
    provider: TwilioProvider, fake: FakeTwilio
) -> None:
    fake.then(twilio_error(401, 20003, "Authenticate"))

    with pytest.raises(AuthenticationError):
        await provider.fetch_message(SID)


@pytest.mark.asyncio
async def test_fetch_message_retries_429_and_5xx_per_the_retry_policy(
    provider: TwilioProvider, fake: FakeTwilio, clock: FakeClock
) -> None:
    fake.then(twilio_error(429, 20429, "Too Many Requests"), httpx.ConnectError("refused"), resource("sent"))

    info = await provider.fetch_message(SID)

    assert info.status == "sent"
    assert len(fake.requests) == 3
    assert len(clock.sleeps) == 2


@pytest.mark.asyncio
async def test_fetch_message_raises_provider_unavailable_once_a_5xx_persists(
    provider: TwilioProvider, fake: FakeTwilio
) -> None:
    fake.then(*[twilio_error(503, 20500, "Service Unavailable")] * 10)

    with pytest.raises(ProviderUnavailable):
        await provider.fetch_message(SID)


@pytest.mark.asyncio
async def test_fetch_message_without_a_status_in_the_answer_is_provider_unavailable(
    provider: TwilioProvider, fake: FakeTwilio
) -> None:
    fake.then(*[httpx.Response(200, text="<html>proxy</html>")] * 10)

    with pytest.raises(ProviderUnavailable):
        await provider.fetch_message(SID)
