"""SenderPool: where Twilio reports delivery, and the sender each tenant gets."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import httpx
import pytest
import pytest_asyncio
from pydantic import SecretStr

from smsdispatch.adapters.crypto import Keyring, generate_key
from smsdispatch.adapters.msg91 import Msg91Account, Msg91Http, Msg91Provider
from smsdispatch.adapters.twilio import OutgoingSms, TwilioHttp
from smsdispatch.contract import Msg91Options, PlatformConfig, ProviderOptions, SmsRequested, TenantRecord
from smsdispatch.core.senders import SenderPool
from smsdispatch.core.tenants import ReadyTenant
from smsdispatch.tools.testing.twilio_fakes import FakeTwilio
from tests.accounts import token_config

from .fakes import TO, Tenants


def request(request_id: str = "r-1", tenant_id: str = "acme") -> SmsRequested:
    return SmsRequested(request_id=request_id, tenant_id=tenant_id, to=TO, body="Hello")


def ready(tenants: Tenants, tenant_id: str = "acme") -> ReadyTenant:
    tenant = tenants.directory().lookup(tenant_id)
    assert isinstance(tenant, ReadyTenant)
    return tenant


@pytest_asyncio.fixture
async def twilio_http() -> AsyncIterator[tuple[FakeTwilio, TwilioHttp]]:
    twilio = FakeTwilio()
    async with TwilioHttp("https://api.twilio.test", transport=twilio.transport) as http:
        yield twilio, http


@pytest.mark.asyncio
async def test_the_status_callback_url_is_built_on_the_public_url_with_tenant_and_request_id_quoted(
    twilio_http: tuple[FakeTwilio, TwilioHttp],
) -> None:
    pool = SenderPool(twilio_http[1], public_url="https://hooks.example.com/sms/")

    url = pool.status_callback_url(request("order 42/a&b=c?", tenant_id="acme.eu"))

    assert url == "https://hooks.example.com/sms/twilio/status/acme.eu?request_id=order%2042%2Fa%26b%3Dc%3F"


@pytest.mark.asyncio
async def test_there_is_no_status_callback_without_a_public_url(twilio_http: tuple[FakeTwilio, TwilioHttp]) -> None:
    assert SenderPool(twilio_http[1]).status_callback_url(request()) is None


@pytest.mark.asyncio
async def test_a_send_asks_twilio_to_call_back_on_the_requests_url(twilio_http: tuple[FakeTwilio, TwilioHttp]) -> None:
    twilio, http = twilio_http
    tenants = Tenants()
    tenants.add("acme")
    pool = SenderPool(http, public_url="https://hooks.example.com")

    await pool.sender_for(ready(tenants), request("r-7")).send(OutgoingSms(TO, "Hello"))

    [form] = twilio.creates()
    assert form["StatusCallback"] == "https://hooks.example.com/twilio/status/acme?request_id=r-7"
    assert (form["To"], form["Body"]) == (TO, "Hello")


@pytest.mark.asyncio
async def test_a_send_without_a_public_url_asks_for_no_callback(twilio_http: tuple[FakeTwilio, TwilioHttp]) -> None:
    twilio, http = twilio_http
    tenants = Tenants()
    tenants.add("acme")

    await SenderPool(http).sender_for(ready(tenants), request()).send(OutgoingSms(TO, "Hello"))

    [form] = twilio.creates()
    assert "StatusCallback" not in form


@pytest.mark.asyncio
async def test_a_tenants_new_record_takes_effect_on_its_next_send(twilio_http: tuple[FakeTwilio, TwilioHttp]) -> None:
    twilio, http = twilio_http
    tenants = Tenants()
    tenants.add("acme", config=token_config(from_number="+15005550006"))
    pool = SenderPool(http)
    await pool.sender_for(ready(tenants), request("r-1")).send(OutgoingSms(TO, "first"))

    tenants.add("acme", config=token_config(from_number="+15017122661"))
    await pool.sender_for(ready(tenants), request("r-2")).send(OutgoingSms(TO, "second"))

    assert [form["From"] for form in twilio.creates()] == ["+15005550006", "+15017122661"]


def platform_tenant(tenant_id: str = "acme") -> ReadyTenant:
    sealed = Keyring.from_value(generate_key()).seal(PlatformConfig())
    record = TenantRecord(tenant_id=tenant_id, provider="platform", config=sealed)
    return ReadyTenant(record=record, config=PlatformConfig(), provider="msg91")


@pytest_asyncio.fixture
async def msg91() -> AsyncIterator[tuple[list[httpx.Request], Msg91Provider]]:
    seen: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"type": "success", "message": "5762846b4f8d285d378b4567"})

    account = Msg91Account(authkey=SecretStr("364512AbCdEf"), template_id="tpl_platform")
    provider = Msg91Provider(account, Msg91Http("https://msg91.test", transport=httpx.MockTransport(answer)))
    yield seen, provider
    await provider.aclose()


@pytest.mark.asyncio
async def test_a_platform_tenant_sends_through_msg91_with_its_crqid(
    twilio_http: tuple[FakeTwilio, TwilioHttp], msg91: tuple[list[httpx.Request], Msg91Provider]
) -> None:
    twilio, http = twilio_http
    seen, provider = msg91
    sender = SenderPool(http, msg91=provider).sender_for(platform_tenant(), request("r-7"))

    result = await sender.send(OutgoingSms(TO, "Hello"))

    [sent] = [json.loads(one.content) for one in seen]
    assert (sender.provider, result.provider, twilio.creates()) == ("msg91", "msg91", [])
    assert (sent["CRQID"], sent["template_id"]) == ("04acmer-7", "tpl_platform")


@pytest.mark.asyncio
async def test_a_requests_msg91_options_choose_its_template(
    twilio_http: tuple[FakeTwilio, TwilioHttp], msg91: tuple[list[httpx.Request], Msg91Provider]
) -> None:
    seen, provider = msg91
    options = ProviderOptions(msg91=Msg91Options(template_id="tpl_order", variables={"name": "Asha"}))
    wanted = request().model_copy(update={"provider_options": options})

    await SenderPool(twilio_http[1], msg91=provider).sender_for(platform_tenant(), wanted).send(OutgoingSms(TO, "Hi"))

    [sent] = [json.loads(one.content) for one in seen]
    assert sent["template_id"] == "tpl_order"
    assert sent["recipients"] == [{"name": "Asha", "mobiles": TO.removeprefix("+"), "body": "Hi"}]


def test_a_platform_tenant_without_a_configured_msg91_account_is_a_bug_said_plainly(
    twilio_http: tuple[FakeTwilio, TwilioHttp],
) -> None:
    with pytest.raises(RuntimeError, match="no msg91 account"):
        SenderPool(twilio_http[1]).sender_for(platform_tenant(), request())
