"""Against real Twilio, only when TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN are set.

verify() runs with any credentials. Sends run only with test credentials (magic numbers, nothing is
delivered or billed): with live credentials a send would be a real, paid SMS.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio
from pydantic import SecretStr

from smsdispatch.adapters.twilio import MessageRejected, OutgoingSms, TwilioHttp, TwilioProvider
from smsdispatch.contract import TenantConfig

ACCOUNT_SID = os.environ.get("TWILIO_ACCOUNT_SID", "")
AUTH_TOKEN = os.environ.get("TWILIO_AUTH_TOKEN", "")

pytestmark = [
    pytest.mark.twilio_live,
    pytest.mark.skipif(
        not (ACCOUNT_SID and AUTH_TOKEN),
        reason="set TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN to run against real Twilio",
    ),
]


@pytest_asyncio.fixture
async def provider() -> AsyncIterator[TwilioProvider]:
    config = TenantConfig(account_sid=ACCOUNT_SID, auth_token=SecretStr(AUTH_TOKEN), from_number="+15005550006")
    async with TwilioHttp("https://api.twilio.com") as http:
        yield TwilioProvider(config, http)


@pytest.mark.asyncio
async def test_real_twilio_verifies_the_credentials(provider: TwilioProvider) -> None:
    info = await provider.verify()

    assert info.verified or info.reason
    if not info.test_credentials:
        assert info.account_type in ("Trial", "Full")


@pytest.mark.asyncio
async def test_real_twilio_accepts_a_send_with_test_credentials_and_magic_numbers(
    provider: TwilioProvider,
) -> None:
    if not (await provider.verify()).test_credentials:
        pytest.skip("these are live credentials: a send would be a real, billed SMS")

    result = await provider.send(OutgoingSms(to="+14155552671", body="smsdispatch live test"))

    assert result.status == "queued"
    assert result.message_id.startswith("SM")


@pytest.mark.asyncio
async def test_real_twilio_rejects_the_magic_invalid_to_number_with_21211(provider: TwilioProvider) -> None:
    if not (await provider.verify()).test_credentials:
        pytest.skip("these are live credentials: a send would be a real, billed SMS")

    with pytest.raises(MessageRejected) as caught:
        await provider.send(OutgoingSms(to="+15005550001", body="smsdispatch live test"))

    assert caught.value.provider_code == 21211
