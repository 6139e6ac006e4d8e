"""The status receiver over the view of every tenant: same answers as before, and a tenant whose record is still
on its way into the view is waited for (bounded) instead of refused."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient, TestServer

from smsdispatch.adapters.twilio import SIGNATURE_HEADER, compute_signature
from smsdispatch.contract import SmsStatus, TenantConfig, topics
from smsdispatch.contract.settings import Settings
from smsdispatch.core.status import CallbackRejected, status_from_callback
from smsdispatch.core.tenant_view import TenantView
from smsdispatch.runtime.worker import build_worker
from tests.accounts import AUTH_TOKEN, api_key_config
from tests.core.fakes import KEYRING, RecordingPublisher, Tenants

pytestmark = pytest.mark.asyncio

PUBLIC_URL = "https://hooks.example.com"
URL = f"{PUBLIC_URL}/twilio/status/acme?request_id=r-1"
SID = "SM" + "d" * 32
FORM = {"MessageSid": SID, "MessageStatus": "delivered", "AccountSid": "AC" + "0" * 32}


class Topic:
    """sms.tenants as the view sees it: the tenants' records in offset order on one partition."""

    def __init__(self) -> None:
        self.tenants = Tenants()
        self.published = 0
        self.view = TenantView(KEYRING.unseal, self.end_offsets, wait=5)

    async def end_offsets(self) -> dict[int, int]:
        return {0: self.published}

    def register(self, tenant_id: str, *, verified: bool = True, config: TenantConfig | None = None) -> int:
        """Put the tenant's record on the topic (not in the view yet); returns its offset."""
        self.tenants.add(tenant_id, verified=verified, config=config)
        self.published += 1
        return self.published - 1

    def deliver(self, tenant_id: str, offset: int) -> None:
        self.view.apply(0, offset, tenant_id.encode(), self.tenants.store[tenant_id.encode()])

    def registered(self, tenant_id: str, *, verified: bool = True, config: TenantConfig | None = None) -> None:
        self.deliver(tenant_id, self.register(tenant_id, verified=verified, config=config))


@pytest.fixture
def topic() -> Topic:
    topic = Topic()
    topic.registered("acme")
    topic.registered("keyonly", config=api_key_config())
    topic.registered("pending", verified=False)
    return topic


async def receive(topic: Topic, tenant_id: str, form: dict[str, str], signature: str | None) -> SmsStatus:
    tenant = await asyncio.wait_for(topic.view.lookup(tenant_id), 5)
    return status_from_callback(tenant, tenant_id, "r-1", URL, form, signature)


async def test_a_signed_callback_of_a_tenant_in_the_view_becomes_an_sms_status(topic: Topic) -> None:
    status = await receive(topic, "acme", FORM, compute_signature(AUTH_TOKEN, URL, FORM))

    assert (status.tenant_id, status.request_id, status.provider_message_id, status.status) == (
        "acme",
        "r-1",
        SID,
        "delivered",
    )


@pytest.mark.parametrize(
    ("tenant_id", "signature", "expected"),
    [
        pytest.param("acme", "bm90IGEgc2lnbmF0dXJl", 403, id="bad-signature"),
        pytest.param("acme", None, 403, id="no-signature"),
        pytest.param("keyonly", compute_signature("keysecret-0b1c2d3e4f", URL, FORM), 403, id="no-auth-token"),
        pytest.param("ghost", compute_signature(AUTH_TOKEN, URL, FORM), 404, id="unknown"),
        pytest.param("pending", compute_signature(AUTH_TOKEN, URL, FORM), 404, id="unverified"),
    ],
)
async def test_callbacks_the_view_cannot_verify_are_refused_as_before(
    topic: Topic, tenant_id: str, signature: str | None, expected: int
) -> None:
    with pytest.raises(CallbackRejected) as refused:
        await receive(topic, tenant_id, FORM, signature)

    assert refused.value.status == expected


async def test_a_signed_callback_without_message_sid_is_refused_with_400(topic: Topic) -> None:
    form = {"MessageStatus": "delivered"}

    with pytest.raises(CallbackRejected) as refused:
        await receive(topic, "acme", form, compute_signature(AUTH_TOKEN, URL, form))

    assert refused.value.status == 400


async def test_a_callback_for_a_tenant_still_on_its_way_into_the_view_is_accepted_once_it_arrives(
    topic: Topic,
) -> None:
    offset = topic.register("newcomer")  # on the topic: acknowledged before Twilio could call back
    url = URL.replace("/acme?", "/newcomer?")

    async def receive() -> object:
        tenant = await topic.view.lookup("newcomer")
        return status_from_callback(tenant, "newcomer", "r-1", url, FORM, compute_signature(AUTH_TOKEN, url, FORM))

    receiving = asyncio.create_task(receive())
    await asyncio.sleep(0.05)
    waited = not receiving.done()
    topic.deliver("newcomer", offset)

    assert waited
    assert (await asyncio.wait_for(receiving, 5)).tenant_id == "newcomer"


async def test_the_worker_page_answers_from_the_view_of_every_tenant(
    topic: Topic, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    streams = build_worker(Settings(public_url=PUBLIC_URL, data_dir=str(tmp_path)), KEYRING, tenant_view=topic.view)
    publisher = RecordingPublisher()
    monkeypatch.setattr(streams, "publish", publisher)
    client = TestClient(TestServer(streams.app.web.web_app, host="127.0.0.1"))
    await client.start_server()
    try:
        path_qs = "/twilio/status/acme?request_id=r-1"
        signature = compute_signature(AUTH_TOKEN, PUBLIC_URL + path_qs, FORM)
        accepted = await client.post(path_qs, data=FORM, headers={SIGNATURE_HEADER: signature})
        forged = await client.post(
            path_qs, data=FORM, headers={SIGNATURE_HEADER: compute_signature("not-acme", PUBLIC_URL + path_qs, FORM)}
        )
    finally:
        await client.close()

    assert (accepted.status, forged.status) == (200, 403)
    [emitted] = publisher.sent
    assert (emitted.topic, emitted.key, emitted.json()["provider_message_id"]) == (topics.STATUS, b"acme", SID)
