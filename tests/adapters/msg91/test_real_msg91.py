"""Against real MSG91, only when MSG91_AUTHKEY, MSG91_TEMPLATE_ID and MSG91_TEST_NUMBER are set.

MSG91 has no test credentials: a send is a real, billed SMS to MSG91_TEST_NUMBER (E.164, a phone of yours),
so it runs only when that number is given. An unknown auth key is refused without sending anything.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio
from pydantic import SecretStr

from smsdispatch.adapters.msg91 import Msg91Account, Msg91Http, Msg91Provider
from smsdispatch.adapters.sms import AuthenticationError, OutgoingSms, ProviderError

AUTHKEY = os.environ.get("MSG91_AUTHKEY", "")
TEMPLATE_ID = os.environ.get("MSG91_TEMPLATE_ID", "")
TEST_NUMBER = os.environ.get("MSG91_TEST_NUMBER", "")

pytestmark = [
    pytest.mark.msg91_live,
    pytest.mark.skipif(
        not (AUTHKEY and TEMPLATE_ID),
        reason="set MSG91_AUTHKEY and MSG91_TEMPLATE_ID (and MSG91_TEST_NUMBER to send) to run against real MSG91",
    ),
]


@pytest_asyncio.fixture
async def http() -> AsyncIterator[Msg91Http]:
    async with Msg91Http() as client:
        yield client


@pytest.mark.asyncio
async def test_real_msg91_refuses_an_unknown_authkey(http: Msg91Http) -> None:
    account = Msg91Account(authkey=SecretStr("0" * 24), template_id=TEMPLATE_ID)

    with pytest.raises(ProviderError) as caught:
        await Msg91Provider(account, http).send(OutgoingSms(to="+919999999999", body="smsdispatch live test"))

    assert isinstance(caught.value, AuthenticationError), caught.value


@pytest.mark.asyncio
async def test_real_msg91_accepts_a_send_with_a_request_id(http: Msg91Http) -> None:
    if not TEST_NUMBER:
        pytest.skip("set MSG91_TEST_NUMBER: a send to real MSG91 is a real, billed SMS")
    account = Msg91Account(authkey=SecretStr(AUTHKEY), template_id=TEMPLATE_ID)

    result = await Msg91Provider(account, http).send(
        OutgoingSms(to=TEST_NUMBER, body="smsdispatch live test", reference="05smokelive-test")
    )

    assert (result.provider, result.status) == ("msg91", "accepted")
    assert result.message_id
