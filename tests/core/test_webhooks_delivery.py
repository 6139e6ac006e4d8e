"""WebhookDeliverer: at-least-once with one webhook-id, backoff until retry_hours, tenants isolated."""

from __future__ import annotations

import asyncio
import base64
import secrets
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import httpx
import pytest
import pytest_asyncio
from aiohttp import web
from standardwebhooks import Webhook

from smsdispatch.contract import (
    ErrorCode,
    ErrorInfo,
    SmsDispatched,
)
from smsdispatch.core.tenants import ReadyTenant
from smsdispatch.core.webhook_delivery import (
    DeliveryOptions,
    DeliveryResult,
    WebhookDeliverer,
    new_webhook_client,
)
from smsdispatch.core.webhooks import PendingDelivery, delivery_for
from tests.accounts import dispatched_record, ready_tenant

T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


def new_secret() -> str:
    return "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()


def tenant(tenant_id: str, url: str | None, secret: str | None) -> ReadyTenant:
    return ready_tenant(tenant_id, webhook_url=url, webhook_secret=secret)


def outcome(n: int, tenant_id: str = "acme") -> SmsDispatched:
    return dispatched_record(n, tenant_id=tenant_id, at=T0)


@dataclass
class Hit:
    path: str
    headers: dict[str, str]
    body: bytes
    at: float


@dataclass
class World:
    """Tenants, a store of pending deliveries, and the deliverer with results applied as the runtime would."""

    client: httpx.AsyncClient
    clock: Callable[[], datetime] = lambda: T0
    options: DeliveryOptions = field(default_factory=DeliveryOptions)
    tenants: dict[str, ReadyTenant | ErrorInfo] = field(default_factory=dict)
    secrets: dict[str, str] = field(default_factory=dict)
    store: dict[bytes, bytes] = field(default_factory=dict)
    results: list[DeliveryResult] = field(default_factory=list)
    counted: list[tuple[str, str]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.deliverer = WebhookDeliverer(
            client=self.client,
            tenants=self.lookup,
            options=self.options,
            on_result=self.apply,
            count=lambda tenant_id, result: self.counted.append((tenant_id, result)),
            clock=lambda: self.clock(),
            jitter=lambda: 0.0,
        )

    def lookup(self, tenant_id: str) -> ReadyTenant | ErrorInfo:
        return self.tenants.get(tenant_id) or ErrorInfo(code=ErrorCode.UNKNOWN_TENANT, message="no such tenant")

    def add_tenant(self, tenant_id: str, url: str | None) -> None:
        self.secrets[tenant_id] = new_secret()
        self.tenants[tenant_id] = tenant(tenant_id, url, self.secrets[tenant_id])

    def enqueue(self, record: SmsDispatched, now: datetime | None = None) -> bytes:
        found = delivery_for(record, self.tenants[record.tenant_id], now or self.clock())
        assert found is not None
        self.store[found[0]] = found[1].to_bytes()
        return found[0]

    async def apply(self, result: DeliveryResult) -> None:
        self.results.append(result)
        if self.store.get(result.key) == result.expected:
            if result.value is None:
                del self.store[result.key]
            else:
                self.store[result.key] = result.value

    def pending(self, key: bytes) -> PendingDelivery:
        return PendingDelivery.model_validate_json(self.store[key])


class Script:
    """An endpoint for httpx.MockTransport: answers each POST with the next status (the last repeats)."""

    def __init__(self, *statuses: int | Exception) -> None:
        self.statuses = list(statuses) or [200]
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        answer = self.statuses.pop(0) if len(self.statuses) > 1 else self.statuses[0]
        if isinstance(answer, Exception):
            raise answer
        return httpx.Response(answer)


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now


def scripted_world(script: Script, options: DeliveryOptions | None = None) -> tuple[World, Clock]:
    clock = Clock()
    client = httpx.AsyncClient(transport=httpx.MockTransport(script))
    world = World(client, clock=clock, options=options or DeliveryOptions())
    world.add_tenant("acme", "https://hooks.acme.test/sms")
    return world, clock


@pytest_asyncio.fixture
async def receiver() -> AsyncIterator[tuple[str, list[Hit], asyncio.Event]]:
    """A small HTTP receiver: ``/hang/…`` never answers (until the event is set), anything else answers 204."""
    hits: list[Hit] = []
    release = asyncio.Event()

    async def handle(request: web.Request) -> web.Response:
        hits.append(Hit(request.path, dict(request.headers), await request.read(), time.monotonic()))
        if request.path.startswith("/hang/"):
            await release.wait()
        return web.Response(status=204)

    app = web.Application()
    app.router.add_post("/{tail:.*}", handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        yield f"http://127.0.0.1:{port}", hits, release
    finally:
        release.set()
        await runner.cleanup()


@pytest.mark.asyncio
async def test_a_delivery_reaches_the_endpoint_signed_so_the_standardwebhooks_verifier_accepts_it(
    receiver: tuple[str, list[Hit], asyncio.Event],
) -> None:
    base, hits, _ = receiver
    async with new_webhook_client() as client:
        world = World(client, clock=lambda: datetime.now(UTC))
        world.add_tenant("acme", f"{base}/acme")
        key = world.enqueue(outcome(1))

        [result] = await world.deliverer.deliver_due(world.store, datetime.now(UTC))

    assert result.result == "delivered"
    assert key not in world.store
    [hit] = hits
    assert hit.headers["Content-Type"] == "application/json"
    verified = Webhook(world.secrets["acme"]).verify(hit.body, hit.headers)
    assert (verified["type"], verified["data"]["request_id"]) == ("sms.dispatched", "r-1")


@pytest.mark.asyncio
async def test_an_endpoint_failing_3_times_then_succeeding_gets_the_same_webhook_id_and_body() -> None:
    script = Script(500, 503, httpx.ConnectError("refused"), 200)
    world, clock = scripted_world(script)
    key = world.enqueue(outcome(1))

    while key in world.store:
        clock.now = world.pending(key).next_at
        await world.deliverer.deliver_due(world.store, clock.now)

    assert [result.result for result in world.results] == ["retry", "retry", "retry", "delivered"]
    assert len({request.headers["webhook-id"] for request in script.requests}) == 1
    assert len({request.content for request in script.requests}) == 1
    assert world.counted == [("acme", "retry")] * 3 + [("acme", "delivered")]


@pytest.mark.asyncio
async def test_retries_back_off_5s_30s_2min_5min_30min_then_hourly() -> None:
    world, clock = scripted_world(Script(500))
    key = world.enqueue(outcome(1))
    waits = []

    for _ in range(8):
        clock.now = world.pending(key).next_at
        await world.deliverer.deliver_due(world.store, clock.now)
        waits.append((world.pending(key).next_at - clock.now).total_seconds())

    assert waits == [5, 30, 120, 300, 1800, 3600, 3600, 3600]
    assert world.pending(key).last_error == "HTTP 500"


@pytest.mark.asyncio
async def test_gives_up_after_retry_hours() -> None:
    world, clock = scripted_world(Script(500), DeliveryOptions(retry_hours=2))
    key = world.enqueue(outcome(1))

    while key in world.store:
        clock.now = world.pending(key).next_at
        await world.deliverer.deliver_due(world.store, clock.now)

    assert world.results[-1].result == "gave_up"
    assert clock.now == T0 + timedelta(hours=2)  # the last attempt fell on the deadline
    assert [result.result for result in world.results].count("gave_up") == 1


@pytest.mark.asyncio
async def test_a_hanging_endpoint_of_tenant_a_does_not_delay_tenant_bs_webhooks(
    receiver: tuple[str, list[Hit], asyncio.Event],
) -> None:
    base, hits, _ = receiver
    async with new_webhook_client() as client:
        world = World(client, clock=lambda: datetime.now(UTC))
        world.add_tenant("slow", f"{base}/hang/slow")
        world.add_tenant("fast", f"{base}/fast")
        for n in range(10):
            world.enqueue(outcome(n, "slow"))
        started = time.monotonic()
        world.deliverer.start_due(world.store, datetime.now(UTC))
        await asyncio.sleep(0.1)
        for n in range(10, 20):  # tenant B's records arrive while A's endpoint hangs
            world.enqueue(outcome(n, "fast"))
        # The runtime's timer: due deliveries are started again and again, as slots free up.
        while len([r for r in world.results if r.tenant_id == "fast"]) < 10 and time.monotonic() - started < 5:
            world.deliverer.start_due(world.store, datetime.now(UTC))
            await asyncio.sleep(0.01)

        assert time.monotonic() - started < 1.0
        assert all(result.result == "delivered" for result in world.results)
        assert world.deliverer.in_flight("slow") == 4  # A's hanging requests hold only its own 4 slots
        assert len([hit for hit in hits if hit.path.startswith("/hang/")]) == 4
        await world.deliverer.stop()

    assert len(world.store) == 10  # A's deliveries are still pending, unchanged


@pytest.mark.asyncio
async def test_a_hanging_endpoint_times_out_and_is_retried(receiver: tuple[str, list[Hit], asyncio.Event]) -> None:
    base, _, _ = receiver
    async with new_webhook_client() as client:
        world = World(client, options=DeliveryOptions(timeout=0.2))
        world.add_tenant("acme", f"{base}/hang/acme")
        key = world.enqueue(outcome(1))

        [result] = await asyncio.wait_for(world.deliverer.deliver_due(world.store, T0), 2)

    assert result.result == "retry"
    assert world.pending(key).last_error == "no answer within 0.2s"


@pytest.mark.asyncio
async def test_the_secret_and_url_are_read_at_delivery_time() -> None:
    script = Script(500, 200)
    world, clock = scripted_world(script)
    world.add_tenant("acme", "https://old.acme.test/sms")
    old_secret = world.secrets["acme"]
    key = world.enqueue(outcome(1))
    await world.deliverer.deliver_due(world.store, T0)

    world.add_tenant("acme", "https://new.acme.test/sms")  # a new URL and a rotated secret
    clock.now = world.pending(key).next_at
    await world.deliverer.deliver_due(world.store, clock.now)

    first, second = script.requests
    assert (first.url.host, second.url.host) == ("old.acme.test", "new.acme.test")
    body, webhook_id = second.content.decode(), second.headers["webhook-id"]
    assert second.headers["webhook-signature"] == Webhook(world.secrets["acme"]).sign(webhook_id, clock.now, body)
    assert second.headers["webhook-signature"] != Webhook(old_secret).sign(webhook_id, clock.now, body)
    assert second.headers["webhook-timestamp"] == str(int(clock.now.timestamp()))


@pytest.mark.asyncio
async def test_a_removed_webhook_url_or_tenant_drops_the_pending_deliveries() -> None:
    script = Script(200)
    world, _ = scripted_world(script)
    world.add_tenant("gone", "https://gone.test/")
    first = world.enqueue(outcome(1))
    second = world.enqueue(outcome(2, "gone"))
    world.tenants["acme"] = tenant("acme", None, new_secret())
    del world.tenants["gone"]

    results = await world.deliverer.deliver_due(world.store, T0)

    assert sorted(result.result for result in results) == ["dropped", "dropped"]
    assert first not in world.store
    assert second not in world.store
    assert script.requests == []


@pytest.mark.asyncio
async def test_at_most_k_deliveries_per_tenant_are_in_flight_and_the_rest_start_as_slots_free() -> None:
    gate = asyncio.Event()
    seen = now = most = 0

    async def endpoint(request: httpx.Request) -> httpx.Response:
        nonlocal seen, now, most
        seen, now = seen + 1, now + 1
        most = max(most, now)
        await gate.wait()
        now -= 1
        return httpx.Response(200)

    async with httpx.AsyncClient(transport=httpx.MockTransport(endpoint)) as client:
        world = World(client, options=DeliveryOptions(tenant_concurrency=2))
        world.add_tenant("acme", "https://hooks.acme.test/")
        for n in range(5):
            world.enqueue(outcome(n))

        first = world.deliverer.start_due(world.store, T0)
        again = world.deliverer.start_due(world.store, T0)  # nothing more starts while both slots are taken
        await asyncio.sleep(0.05)
        assert (len(first), len(again), seen) == (2, 0, 2)
        gate.set()
        await asyncio.gather(*first)
        for _ in range(50):
            if seen == 5 and world.deliverer.in_flight() == 0:
                break
            await asyncio.sleep(0.01)

        assert seen == 5, "the other three started as slots freed, without another pass of the timer"
        assert most == 2


@pytest.mark.asyncio
async def test_a_redirect_is_not_followed_and_is_retried() -> None:
    script = Script(302)
    world, _ = scripted_world(script)
    key = world.enqueue(outcome(1))

    [result] = await world.deliverer.deliver_due(world.store, T0)

    assert (result.result, world.pending(key).attempts) == ("retry", 1)
    assert len(script.requests) == 1


@pytest.mark.asyncio
async def test_deliveries_not_due_or_of_tenants_not_owned_are_left_alone() -> None:
    script = Script(200)
    world, _ = scripted_world(script)
    world.enqueue(outcome(1), now=T0 + timedelta(minutes=1))

    assert await world.deliverer.deliver_due(world.store, T0) == []
    assert await world.deliverer.deliver_due(world.store, T0 + timedelta(hours=1), owned=lambda _t: False) == []
    assert script.requests == []


@pytest.mark.asyncio
async def test_an_unreadable_entry_is_dropped() -> None:
    world, _ = scripted_world(Script(200))
    world.store[b"acme\x1fmsg_broken"] = b"{oops"

    [result] = await world.deliverer.deliver_due(world.store, T0)

    assert (result.result, result.tenant_id) == ("dropped", "acme")
    assert world.store == {}


@pytest.mark.asyncio
async def test_deliveries_cut_short_by_stop_are_delivered_after_a_restart_with_the_same_id() -> None:
    gate = asyncio.Event()
    ids: list[str] = []

    async def endpoint(request: httpx.Request) -> httpx.Response:
        ids.append(request.headers["webhook-id"])
        await gate.wait()
        return httpx.Response(200)

    async with httpx.AsyncClient(transport=httpx.MockTransport(endpoint)) as client:
        world = World(client)
        world.add_tenant("acme", "https://hooks.acme.test/")
        key = world.enqueue(outcome(1))
        world.deliverer.start_due(world.store, T0)
        await asyncio.sleep(0.05)
        await world.deliverer.stop()  # the worker goes away mid-delivery
        assert key in world.store
        assert world.results == []

        gate.set()
        restarted = World(client, tenants=world.tenants, store=world.store)
        [result] = await restarted.deliverer.deliver_due(restarted.store, T0)

    assert result.result == "delivered"
    assert len(ids) == 2
    assert ids[0] == ids[1]
