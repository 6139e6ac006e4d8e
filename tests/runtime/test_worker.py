"""The worker's wiring that can be checked without Kafka: the home partition rule and the status receiver page
(served by the Faust app's aiohttp application on 127.0.0.1, with publishing replaced by a recorder)."""

from __future__ import annotations

import random
import string
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import pytest_asyncio
from aiohttp.test_utils import TestClient, TestServer
from aiohttp.web import Application, Request
from aiokafka.partitioner import DefaultPartitioner

from smsdispatch.adapters.twilio import SIGNATURE_HEADER, compute_signature
from smsdispatch.contract import SmsStatus, topics
from smsdispatch.contract.settings import Settings
from smsdispatch.core.tenant_view import TenantView
from smsdispatch.runtime.worker import build_worker, home_partition
from tests.accounts import AUTH_TOKEN
from tests.core.fakes import KEYRING, RecordingPublisher, Tenants

PUBLIC_URL = "https://hooks.example.com"
SID = "SM" + "c" * 32


@pytest.mark.parametrize("partitions", [1, 8, 12])
def test_a_tenants_home_partition_is_where_a_producer_keyed_by_tenant_id_puts_its_records(partitions: int) -> None:
    rng = random.Random(partitions)
    tenant_ids = ["acme", "globex", "a", "tenant.with-dots_and_underscores"] + [
        "".join(rng.choices(string.ascii_letters + string.digits + "_.-", k=rng.randint(1, 64))) for _ in range(200)
    ]
    every_partition = list(range(partitions))

    for tenant_id in tenant_ids:
        expected = DefaultPartitioner()(tenant_id.encode(), every_partition, every_partition)
        assert home_partition(tenant_id, partitions) == expected, tenant_id


@dataclass
class Receiver:
    client: TestClient[Request, Application]
    publisher: RecordingPublisher

    async def post(self, path_qs: str, form: dict[str, str], signature: str) -> int:
        response = await self.client.post(path_qs, data=form, headers={SIGNATURE_HEADER: signature})
        return response.status


@pytest_asyncio.fixture
async def receiver(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Receiver]:
    tenants = Tenants()
    tenants.add("acme")
    # The receiver's tenants: a view holding acme, the one record on its topic (so caught up at once).
    view = TenantView(KEYRING.unseal, _one_record_topic)
    view.apply(0, 0, b"acme", tenants.store[b"acme"])
    streams = build_worker(Settings(public_url=PUBLIC_URL, data_dir=str(tmp_path)), KEYRING, tenant_view=view)
    publisher = RecordingPublisher()
    monkeypatch.setattr(streams, "publish", publisher)  # the page publishes through this attribute: no Kafka
    client = TestClient(TestServer(streams.app.web.web_app, host="127.0.0.1"))
    await client.start_server()
    try:
        yield Receiver(client, publisher)
    finally:
        await client.close()


async def _one_record_topic() -> dict[int, int]:
    return {0: 1}


def signed(path_qs: str, form: dict[str, str]) -> str:
    """What Twilio sends: the signature over the public URL exactly as it calls it."""
    return compute_signature(AUTH_TOKEN, PUBLIC_URL + path_qs, form)


@pytest.mark.asyncio
async def test_a_callback_with_a_bad_signature_is_refused_with_403_and_publishes_nothing(receiver: Receiver) -> None:
    form = {"MessageSid": SID, "MessageStatus": "delivered"}

    status = await receiver.post("/twilio/status/acme?request_id=r-1", form, "bm90IGEgc2lnbmF0dXJl")

    assert status == 403
    assert receiver.publisher.sent == []


@pytest.mark.asyncio
async def test_a_signed_status_callback_posted_to_the_worker_is_published_on_sms_status(receiver: Receiver) -> None:
    path_qs = "/twilio/status/acme?request_id=r-1"
    form = {"MessageSid": SID, "MessageStatus": "delivered", "AccountSid": "AC" + "0" * 32}

    status = await receiver.post(path_qs, form, signed(path_qs, form))

    assert 200 <= status < 300  # any 2xx tells Twilio the receipt arrived
    [emitted] = receiver.publisher.sent
    assert (emitted.topic, emitted.key) == (topics.STATUS, b"acme")
    receipt = SmsStatus.model_validate_json(emitted.value)
    assert (receipt.request_id, receipt.provider_message_id, receipt.status) == ("r-1", SID, "delivered")


@pytest.mark.asyncio
async def test_a_callback_for_a_request_id_that_needed_quoting_is_accepted(receiver: Receiver) -> None:
    # Quoted as SenderPool.status_callback_url quotes it; the signature covers the quoted form.
    path_qs = "/twilio/status/acme?request_id=order%2042"
    form = {"MessageSid": SID, "MessageStatus": "sent"}

    status = await receiver.post(path_qs, form, signed(path_qs, form))

    assert 200 <= status < 300  # any 2xx tells Twilio the receipt arrived
    assert [emitted.json()["request_id"] for emitted in receiver.publisher.sent] == ["order 42"]


@pytest.mark.asyncio
async def test_the_status_receiver_answers_only_post(receiver: Receiver) -> None:
    response = await receiver.client.get("/twilio/status/acme?request_id=r-1")

    assert response.status == 405
    assert receiver.publisher.sent == []


@pytest.mark.asyncio
async def test_a_callback_for_an_unknown_tenant_is_refused_with_404(receiver: Receiver) -> None:
    path_qs = "/twilio/status/ghost?request_id=r-1"
    form = {"MessageSid": SID, "MessageStatus": "sent"}

    status = await receiver.post(path_qs, form, signed(path_qs, form))

    assert status == 404
    assert receiver.publisher.sent == []
