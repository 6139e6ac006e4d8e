"""TwilioProvider.verify(): fetching the account tells valid, suspended, test and wrong credentials apart."""

from __future__ import annotations

import httpx
import pytest

from smsdispatch.adapters.twilio import (
    AccountInfo,
    AuthenticationError,
    ProviderUnavailable,
    TwilioHttp,
    TwilioProvider,
)
from smsdispatch.contract import ErrorCode
from smsdispatch.tools.testing.twilio_fakes import FakeTwilio, account_json, twilio_error
from tests.accounts import ACCOUNT_SID, API_KEY_SID, api_key_config

from .conftest import FakeClock, fast_policy

ACCOUNT_PATH = f"/2010-04-01/Accounts/{ACCOUNT_SID}.json"


@pytest.mark.asyncio
async def test_verify_fetches_the_tenants_account(provider: TwilioProvider, fake: FakeTwilio) -> None:
    await provider.verify()

    [request] = fake.requests
    assert (request.method, request.url.path) == ("GET", ACCOUNT_PATH)


@pytest.mark.asyncio
@pytest.mark.parametrize("account_type", ["Full", "Trial"])
async def test_verify_of_an_active_account_is_verified_with_its_type(
    provider: TwilioProvider, fake: FakeTwilio, account_type: str
) -> None:
    fake.account_type = account_type

    info = await provider.verify()

    assert info == AccountInfo(
        verified=True,
        test_credentials=False,
        account_type=account_type,  # type: ignore[arg-type]
        status="active",
        friendly_name="My first Twilio account",
    )


@pytest.mark.asyncio
@pytest.mark.parametrize("status", ["suspended", "closed"])
async def test_verify_of_a_suspended_or_closed_account_is_not_verified_with_the_reason(
    provider: TwilioProvider, fake: FakeTwilio, status: str
) -> None:
    fake.account_status = status

    info = await provider.verify()

    assert (info.verified, info.status, info.test_credentials) == (False, status, False)
    assert info.reason is not None
    assert status in info.reason


@pytest.mark.asyncio
async def test_verify_with_bad_credentials_raises_authentication_error(
    provider: TwilioProvider, fake: FakeTwilio
) -> None:
    fake.then(twilio_error(401, 20003, "Authenticate"))

    with pytest.raises(AuthenticationError) as caught:
        await provider.verify()

    assert (caught.value.http_status, caught.value.provider_code) == (401, 20003)
    assert caught.value.error_code is ErrorCode.PROVIDER_AUTH_FAILED
    assert len(fake.requests) == 1


@pytest.mark.asyncio
async def test_verify_with_test_credentials_is_verified_as_test_credentials(
    provider: TwilioProvider, fake: FakeTwilio
) -> None:
    fake.then(twilio_error(403, 20008, "Resource not accessible with Test Account Credentials"))

    info = await provider.verify()

    assert info == AccountInfo(verified=True, test_credentials=True, account_type=None)


@pytest.mark.asyncio
async def test_verify_of_a_forbidden_account_other_than_test_credentials_raises(
    provider: TwilioProvider, fake: FakeTwilio
) -> None:
    fake.then(twilio_error(403, 20403, "Forbidden"))

    with pytest.raises(AuthenticationError) as caught:
        await provider.verify()

    assert caught.value.provider_code == 20403


@pytest.mark.asyncio
async def test_verify_with_an_api_key_fetches_the_account_of_the_tenant(
    http: TwilioHttp, fake: FakeTwilio, clock: FakeClock
) -> None:
    provider = TwilioProvider(api_key_config(), http, fast_policy(clock))

    info = await provider.verify()

    assert info.verified
    assert fake.requests[0].url.path == ACCOUNT_PATH
    assert fake.requests[0].headers["Authorization"].startswith("Basic ")
    assert API_KEY_SID not in fake.requests[0].url.path


@pytest.mark.asyncio
async def test_verify_retries_a_5xx_because_a_fetch_cannot_send_anything(
    provider: TwilioProvider, fake: FakeTwilio
) -> None:
    fake.then(twilio_error(503, 20503, "Service Unavailable"), httpx.ReadTimeout("slow"))

    info = await provider.verify()

    assert info.verified
    assert len(fake.requests) == 3


@pytest.mark.asyncio
async def test_verify_raises_provider_unavailable_when_twilio_keeps_failing(
    http: TwilioHttp, fake: FakeTwilio, clock: FakeClock
) -> None:
    provider = TwilioProvider(api_key_config(), http, fast_policy(clock, max_attempts=2))
    fake.then(twilio_error(500, 20500, "Internal"), twilio_error(500, 20500, "Internal"))

    with pytest.raises(ProviderUnavailable) as caught:
        await provider.verify()

    assert (caught.value.attempts, caught.value.http_status) == (2, 500)


@pytest.mark.asyncio
async def test_verify_of_an_account_without_a_status_is_not_verified(
    provider: TwilioProvider, fake: FakeTwilio
) -> None:
    document = account_json(ACCOUNT_SID)
    del document["status"]
    fake.then(httpx.Response(200, json=document))

    info = await provider.verify()

    assert not info.verified
    assert info.reason
