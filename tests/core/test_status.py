"""status_from_callback: only callbacks signed with the tenant's auth token become SmsStatus records."""

from __future__ import annotations

import pytest

from smsdispatch.adapters.twilio import TwilioHttp, compute_signature
from smsdispatch.contract import SmsRequested
from smsdispatch.core.senders import SenderPool
from smsdispatch.core.status import CallbackRejected, status_from_callback
from smsdispatch.core.tenants import TenantDirectory
from tests.accounts import ACCOUNT_SID, AUTH_TOKEN, FROM_NUMBER, api_key_config

from .fakes import TO, Tenants

URL = "https://hooks.example.com/twilio/status/acme?request_id=r-1"
SID = "SM" + "c" * 32


def callback_form(status: str = "delivered", **extra: str) -> dict[str, str]:
    form = {
        "MessageSid": SID,
        "SmsSid": SID,
        "MessageStatus": status,
        "SmsStatus": status,
        "AccountSid": ACCOUNT_SID,
        "From": FROM_NUMBER,
        "To": TO,
        "ApiVersion": "2010-04-01",
    }
    form.update(extra)
    return form


@pytest.fixture
def tenants() -> TenantDirectory:
    store = Tenants()
    store.add("acme")
    store.add("keyonly", config=api_key_config())
    store.add("pending", verified=False)
    return store.directory()


def test_a_signed_callback_becomes_an_sms_status_with_error_code_and_dlr_date(tenants: TenantDirectory) -> None:
    form = callback_form("undelivered", ErrorCode="30007", RawDlrDoneDate="2405011205")

    status = status_from_callback(
        tenants.lookup("acme"), "acme", "r-1", URL, form, compute_signature(AUTH_TOKEN, URL, form)
    )

    assert (status.tenant_id, status.request_id, status.provider_message_id) == ("acme", "r-1", SID)
    assert status.status == "undelivered"
    assert status.provider_code == 30007
    assert status.raw_dlr_done_date == "2405011205"


def test_a_delivered_callback_without_error_code_has_no_provider_code(tenants: TenantDirectory) -> None:
    form = callback_form("delivered")

    status = status_from_callback(
        tenants.lookup("acme"), "acme", None, URL, form, compute_signature(AUTH_TOKEN, URL, form)
    )

    assert (status.status, status.provider_code, status.raw_dlr_done_date, status.request_id) == (
        "delivered",
        None,
        None,
        None,
    )


def test_fields_twilio_adds_without_notice_are_accepted(tenants: TenantDirectory) -> None:
    form = callback_form("sent", ChannelPrefix="sms", MessagingServiceSid="MG" + "0" * 32)

    status = status_from_callback(
        tenants.lookup("acme"), "acme", "r-1", URL, form, compute_signature(AUTH_TOKEN, URL, form)
    )

    assert status.status == "sent"


@pytest.mark.parametrize("error_code", ["²", "30007x", "", "9" * 5000])
def test_an_error_code_that_is_not_a_small_number_is_left_out(tenants: TenantDirectory, error_code: str) -> None:
    form = callback_form("failed", ErrorCode=error_code)

    status = status_from_callback(
        tenants.lookup("acme"), "acme", "r-1", URL, form, compute_signature(AUTH_TOKEN, URL, form)
    )

    assert status.provider_code is None


@pytest.mark.parametrize(
    "signature",
    [
        pytest.param(None, id="missing"),
        pytest.param("", id="empty"),
        pytest.param(compute_signature("another-token", URL, callback_form()), id="other-token"),
        pytest.param(compute_signature(AUTH_TOKEN, URL + "&x=1", callback_form()), id="other-url"),
        pytest.param(compute_signature(AUTH_TOKEN, URL, callback_form("failed")), id="other-form"),
    ],
)
def test_a_callback_without_a_valid_signature_is_refused_with_403(
    tenants: TenantDirectory, signature: str | None
) -> None:
    with pytest.raises(CallbackRejected) as refused:
        status_from_callback(tenants.lookup("acme"), "acme", "r-1", URL, callback_form(), signature)

    assert refused.value.status == 403


@pytest.mark.parametrize("tenant_id", ["ghost", "pending"])
def test_a_callback_for_a_tenant_that_is_not_known_and_verified_is_refused_with_404(
    tenants: TenantDirectory, tenant_id: str
) -> None:
    form = callback_form()

    with pytest.raises(CallbackRejected) as refused:
        status_from_callback(
            tenants.lookup(tenant_id), tenant_id, "r-1", URL, form, compute_signature(AUTH_TOKEN, URL, form)
        )

    assert refused.value.status == 404


def test_a_callback_for_a_tenant_with_only_an_api_key_is_refused_with_403(tenants: TenantDirectory) -> None:
    form = callback_form()
    # No auth token is held for this tenant, so nothing can be checked, whatever was signed with.
    signature = compute_signature("keysecret-0b1c2d3e4f", URL, form)

    with pytest.raises(CallbackRejected) as refused:
        status_from_callback(tenants.lookup("keyonly"), "keyonly", "r-1", URL, form, signature)

    assert refused.value.status == 403


def test_a_signed_callback_without_message_sid_or_status_is_refused_with_400(tenants: TenantDirectory) -> None:
    form = {"AccountSid": ACCOUNT_SID, "To": TO}

    with pytest.raises(CallbackRejected) as refused:
        status_from_callback(tenants.lookup("acme"), "acme", "r-1", URL, form, compute_signature(AUTH_TOKEN, URL, form))

    assert refused.value.status == 400


@pytest.mark.asyncio
async def test_a_callback_to_the_url_the_dispatcher_gave_twilio_is_accepted(tenants: TenantDirectory) -> None:
    async with TwilioHttp("https://api.twilio.test") as http:
        pool = SenderPool(http, public_url="https://hooks.example.com")
    request = SmsRequested(request_id="order 42/7", tenant_id="acme", to=TO, body="Hello")
    url = pool.status_callback_url(request)
    assert url is not None
    form = callback_form()

    # The URL is signed exactly as Twilio called it; the receiver passes the request_id decoded.
    status = status_from_callback(
        tenants.lookup("acme"), "acme", "order 42/7", url, form, compute_signature(AUTH_TOKEN, url, form)
    )

    assert status.request_id == "order 42/7"
