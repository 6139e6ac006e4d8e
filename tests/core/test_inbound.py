"""opt_out_from_inbound: a signed STOP from a recipient opts them out of the tenant's messages, START back in."""

from __future__ import annotations

import pytest

from smsdispatch.adapters.twilio import compute_signature
from smsdispatch.core.inbound import OptOutChange, opt_out_from_inbound
from smsdispatch.core.status import CallbackRejected
from smsdispatch.core.tenants import TenantDirectory
from tests.accounts import ACCOUNT_SID, AUTH_TOKEN, FROM_NUMBER, api_key_config

from .fakes import TO, Tenants

URL = "https://hooks.example.com/twilio/inbound/acme"


def inbound_form(body: str, **extra: str) -> dict[str, str]:
    form = {
        "MessageSid": "SM" + "d" * 32,
        "AccountSid": ACCOUNT_SID,
        "From": TO,  # the recipient writes back from their phone...
        "To": FROM_NUMBER,  # ...to the tenant's number
        "Body": body,
        "NumMedia": "0",
        "ApiVersion": "2010-04-01",
    }
    form.update(extra)
    return form


@pytest.fixture
def tenants() -> TenantDirectory:
    store = Tenants()
    store.add("acme")
    store.add("keyonly", config=api_key_config())
    return store.directory()


def signed(form: dict[str, str], url: str = URL, token: str = AUTH_TOKEN) -> str:
    return compute_signature(token, url, form)


@pytest.mark.parametrize(
    ("form", "opted_out"),
    [
        (inbound_form("Stop", OptOutType="STOP"), True),
        (inbound_form("stop"), True),  # no OptOutType: the default keyword in the body decides
        (inbound_form("  unsubscribe "), True),
        (inbound_form("START", OptOutType="START"), False),
        (inbound_form("yes"), False),
    ],
    ids=["opt-out-type-stop", "keyword-stop", "keyword-unsubscribe", "opt-out-type-start", "keyword-yes"],
)
def test_a_signed_opt_out_keyword_changes_the_senders_entry(
    tenants: TenantDirectory, form: dict[str, str], opted_out: bool
) -> None:
    change = opt_out_from_inbound(tenants.lookup("acme"), "acme", URL, form, signed(form))

    assert change == OptOutChange("acme", TO, opted_out=opted_out)


@pytest.mark.parametrize("form", [inbound_form("HELP", OptOutType="HELP"), inbound_form("see you at 5, stop by")])
def test_help_and_ordinary_replies_change_nothing(tenants: TenantDirectory, form: dict[str, str]) -> None:
    assert opt_out_from_inbound(tenants.lookup("acme"), "acme", URL, form, signed(form)) is None


def test_an_unsigned_or_wrongly_signed_stop_is_refused_403(tenants: TenantDirectory) -> None:
    form = inbound_form("STOP")
    for signature in (None, signed(form, token="not-the-token"), signed(form, url=URL + "?x=1")):
        with pytest.raises(CallbackRejected) as caught:
            opt_out_from_inbound(tenants.lookup("acme"), "acme", URL, form, signature)
        assert caught.value.status == 403


def test_a_stop_for_an_unknown_tenant_or_one_without_an_auth_token_is_refused(tenants: TenantDirectory) -> None:
    form = inbound_form("STOP")
    with pytest.raises(CallbackRejected) as unknown:
        opt_out_from_inbound(tenants.lookup("ghost"), "ghost", URL, form, signed(form))
    with pytest.raises(CallbackRejected) as keyless:
        opt_out_from_inbound(tenants.lookup("keyonly"), "keyonly", URL, form, signed(form))
    assert (unknown.value.status, keyless.value.status) == (404, 403)


def test_a_stop_from_something_that_is_not_a_phone_number_is_refused_400(tenants: TenantDirectory) -> None:
    form = inbound_form("STOP", From="whatsapp:+1415")
    with pytest.raises(CallbackRejected) as caught:
        opt_out_from_inbound(tenants.lookup("acme"), "acme", URL, form, signed(form))
    assert caught.value.status == 400
