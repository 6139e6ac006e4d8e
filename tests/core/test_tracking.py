"""Tracker: what each outcome and status enqueues (polls, webhooks), durable in the tenant's partition, and what
the timers do with it."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from standardwebhooks import Webhook

from smsdispatch.adapters.twilio import MessageStatusInfo
from smsdispatch.contract import ErrorCode, ErrorInfo, SmsDispatched, SmsFailed, SmsStatus, topics
from smsdispatch.core.durable_map import DurableMap
from smsdispatch.core.polling import PollOptions, StatusPoller, poll_key
from smsdispatch.core.tenants import ReadyTenant
from smsdispatch.core.tracking import Tracker
from smsdispatch.core.webhook_delivery import DeliveryResult, WebhookDeliverer, new_webhook_client
from smsdispatch.tools.testing.ledger import InMemoryChangelog
from tests.accounts import WEBHOOK_SECRET, dispatched_record, ready_tenant

from .fakes import RecordingPublisher

T0 = datetime.now(UTC).replace(microsecond=0)  # webhook signatures are checked against the real clock
SID = "SM" + "e" * 32
PARTITION = 5


class StatusAnswers:
    """Twilio's message fetch: the status each SID has now."""

    def __init__(self) -> None:
        self.status: dict[str, MessageStatusInfo] = {}
        self.fetched: list[str] = []

    async def fetch_message(self, sid: str) -> MessageStatusInfo:
        self.fetched.append(sid)
        return self.status[sid]


class Receiver:
    """A tenant's webhook endpoint: answers each POST with the next scripted status (then 200)."""

    def __init__(self, *statuses: int) -> None:
        self.statuses = list(statuses)
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return httpx.Response(self.statuses.pop(0) if self.statuses else 200)


class World:
    def __init__(
        self,
        tenants: dict[str, ReadyTenant],
        receiver: Receiver | None = None,
        lookup: Callable[[str], ReadyTenant | ErrorInfo] | None = None,
    ) -> None:
        self.now = T0
        self.tenants = tenants
        self.answers = StatusAnswers()
        self.publisher = RecordingPublisher()
        self.polls_changelog, self.webhooks_changelog = InMemoryChangelog(), InMemoryChangelog()
        self.polls: dict[bytes, bytes] = {}
        self.webhooks: dict[bytes, bytes] = {}
        self.receiver = receiver or Receiver()
        client = new_webhook_client(httpx.MockTransport(self.receiver))

        def deliverer(on_result: Callable[[DeliveryResult], Awaitable[None]]) -> WebhookDeliverer:
            return WebhookDeliverer(client=client, tenants=self.lookup, on_result=on_result, clock=lambda: self.now)

        self.tracker = Tracker(
            polls=DurableMap(self.polls, self.polls_changelog),
            webhooks=DurableMap(self.webhooks, self.webhooks_changelog),
            tenants=lookup or self.lookup,
            poller=StatusPoller(
                tenants=self.lookup, providers=lambda _tenant: self.answers, options=PollOptions(poll_seconds=2)
            ),
            deliverer=deliverer,
            publish=self.publisher,
            partition_for=lambda _tenant_id: PARTITION,
            poll_seconds=2,
            clock=lambda: self.now,
        )

    def lookup(self, tenant_id: str) -> ReadyTenant | ErrorInfo:
        found = self.tenants.get(tenant_id)
        return found if found is not None else ErrorInfo(code=ErrorCode.UNKNOWN_TENANT, message="no such tenant")

    async def settle(self) -> None:
        """Let deliveries started in the background finish."""
        for _ in range(20):
            await asyncio.sleep(0.01)


def dispatched(tenant_id: str = "acme", request_id: str = "r-1") -> SmsDispatched:
    return dispatched_record(tenant_id=tenant_id, request_id=request_id, sid=SID, at=T0)


@pytest.mark.asyncio
async def test_a_dispatched_message_is_enqueued_for_polling_once_in_its_tenants_partition() -> None:
    world = World({"acme": ready_tenant()})

    await world.tracker.observe(dispatched())
    await world.tracker.observe(dispatched())  # the record read again

    assert list(world.polls) == [poll_key("acme", SID)]
    assert [(key, partition) for key, _, partition in world.polls_changelog.writes] == [(poll_key("acme", SID), 5)]


@pytest.mark.asyncio
async def test_messages_of_test_credential_tenants_are_never_enqueued_for_polling() -> None:
    world = World({"acme": ready_tenant(test_credentials=True)})

    await world.tracker.observe(dispatched())

    assert world.polls == {}


@pytest.mark.asyncio
async def test_a_final_status_from_a_callback_settles_the_pending_poll() -> None:
    world = World({"acme": ready_tenant()})
    await world.tracker.observe(dispatched())

    await world.tracker.observe(SmsStatus(tenant_id="acme", provider_message_id=SID, status="delivered"))

    assert world.polls == {}
    assert world.polls_changelog.writes[-1] == (poll_key("acme", SID), None, PARTITION)


@pytest.mark.asyncio
async def test_a_due_poll_publishes_the_status_on_sms_status_and_removes_the_entry() -> None:
    world = World({"acme": ready_tenant()})
    await world.tracker.observe(dispatched())
    world.answers.status[SID] = MessageStatusInfo(sid=SID, status="undelivered", error_code=30007)

    await world.tracker.poll_due(lambda _partition: True)
    assert world.answers.fetched == [], "not due before poll_seconds"
    world.now = T0 + timedelta(seconds=3)
    await world.tracker.poll_due(lambda _partition: True)

    (published,) = world.publisher.on(topics.STATUS)
    status = SmsStatus.model_validate_json(published.value)
    assert (status.status, status.provider_code, status.request_id, published.key) == (
        "undelivered",
        30007,
        "r-1",
        b"acme",
    )
    assert world.polls == {}


@pytest.mark.asyncio
async def test_polls_of_partitions_this_worker_does_not_own_are_left_alone() -> None:
    world = World({"acme": ready_tenant()})
    await world.tracker.observe(dispatched())
    world.now = T0 + timedelta(seconds=3)

    await world.tracker.poll_due(lambda partition: partition != PARTITION)

    assert world.answers.fetched == []
    assert list(world.polls) == [poll_key("acme", SID)]


@pytest.mark.asyncio
async def test_every_record_of_a_webhook_tenant_is_delivered_at_once_signed_and_then_forgotten() -> None:
    world = World({"acme": ready_tenant(webhook_url="https://hooks.example/acme")})
    failed = SmsFailed(request_id="r-2", tenant_id="acme", error=ErrorInfo(code=ErrorCode.EXPIRED, message="stale"))

    await world.tracker.observe(dispatched())
    await world.tracker.observe(failed)
    await world.settle()

    assert len(world.receiver.requests) == 2
    for request in world.receiver.requests:
        body = Webhook(WEBHOOK_SECRET).verify(request.content, dict(request.headers))
        assert body["type"] in ("sms.dispatched", "sms.failed")
    assert {json.loads(r.content)["data"]["request_id"] for r in world.receiver.requests} == {"r-1", "r-2"}
    assert world.webhooks == {}, "delivered: nothing left pending"


@pytest.mark.asyncio
async def test_a_failed_delivery_stays_pending_and_the_timer_retries_it_with_the_same_webhook_id() -> None:
    world = World({"acme": ready_tenant(webhook_url="https://hooks.example/acme")}, Receiver(500, 503, 500))

    await world.tracker.observe(dispatched())
    await world.settle()
    for _ in range(3):
        world.now += timedelta(hours=2)  # past any backoff
        assert world.tracker.deliver_due(lambda _partition: True) == 1
        await world.settle()

    ids = {request.headers["webhook-id"] for request in world.receiver.requests}
    assert (len(world.receiver.requests), len(ids)) == (4, 1)
    assert world.webhooks == {}


@pytest.mark.asyncio
async def test_tenants_without_a_webhook_get_no_deliveries_and_unknown_tenants_nothing() -> None:
    world = World({"acme": ready_tenant()})

    await world.tracker.observe(dispatched())
    await world.tracker.observe(dispatched(tenant_id="ghost"))
    await world.settle()

    assert world.webhooks == {}
    assert world.receiver.requests == []


@pytest.mark.asyncio
async def test_a_bug_while_tracking_is_logged_and_never_stalls_the_log_sink(caplog: pytest.LogCaptureFixture) -> None:
    def broken(_tenant_id: str) -> ReadyTenant | ErrorInfo:
        raise TypeError("a bug")

    world = World({"acme": ready_tenant()}, lookup=broken)

    await world.tracker.observe(dispatched())  # returns: the log sink acks the record

    assert "could not enqueue" in caplog.text
    assert world.polls == {}


def test_entries_not_yet_due_are_recognised_from_their_json_without_a_full_parse() -> None:
    from smsdispatch.core.polling import pending_for
    from smsdispatch.core.tracking import _later_than
    from smsdispatch.core.webhooks import delivery_for

    _, poll = pending_for(dispatched(), poll_seconds=600)
    _, delivery = delivery_for(dispatched(), ready_tenant(webhook_url="https://hooks.example/a"), T0) or (b"", None)
    assert delivery is not None

    assert _later_than(poll.to_bytes(), T0) is True
    assert _later_than(poll.to_bytes(), T0 + timedelta(seconds=601)) is False
    assert _later_than(delivery.to_bytes(), T0) is False, "due at once"
    assert _later_than(delivery.to_bytes(), T0 - timedelta(seconds=1)) is True
    assert _later_than(b"not json", T0) is False, "unreadable: the full parse decides"
