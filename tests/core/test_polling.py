"""StatusPoller: messages without a final status are fetched from Twilio until final, or for 72 hours."""

from __future__ import annotations

import asyncio
from collections import deque
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from smsdispatch.adapters.twilio import (
    AuthenticationError,
    MessageRejected,
    MessageStatusInfo,
    ProviderUnavailable,
    ReconciliationUnavailable,
    RetryPolicy,
    TwilioHttp,
    TwilioProvider,
)
from smsdispatch.contract import (
    ErrorCode,
    ErrorInfo,
    SmsDispatched,
    SmsStatus,
)
from smsdispatch.core.polling import (
    PendingPoll,
    PollBudget,
    PollOptions,
    PollResult,
    StatusPoller,
    next_delay,
    pending_for,
    poll_key,
    settled_by,
    should_track,
)
from smsdispatch.core.tenants import ReadyTenant
from smsdispatch.tools.testing.twilio_fakes import FakeTwilio, message_json
from tests.accounts import ACCOUNT_SID, TO, dispatched_record, ready_tenant

T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
POLL = 600.0
Answer = MessageStatusInfo | Exception


def tenant(tenant_id: str = "acme", *, test_credentials: bool = False) -> ReadyTenant:
    return ready_tenant(tenant_id, test_credentials=test_credentials)


def sid(n: int) -> str:
    return f"SM{n:032x}"


def dispatched(n: int = 1, tenant_id: str = "acme", status: str = "queued") -> SmsDispatched:
    return dispatched_record(n, tenant_id=tenant_id, sid=sid(n), status=status, at=T0)


class FakeFetcher:
    """One tenant's Twilio: scripted answers per SID (the last one repeats); every fetch recorded."""

    def __init__(self) -> None:
        self.answers: dict[str, deque[Answer]] = {}
        self.fetched: list[str] = []
        self.hang = False

    def on(self, message_sid: str, *answers: Answer) -> FakeFetcher:
        self.answers[message_sid] = deque(answers)
        return self

    async def fetch_message(self, sid: str) -> MessageStatusInfo:
        self.fetched.append(sid)
        if self.hang:
            await asyncio.sleep(3600)
        queue = self.answers.get(sid) or deque([MessageStatusInfo(sid=sid, status="sent")])
        answer = queue.popleft() if len(queue) > 1 else queue[0]
        if isinstance(answer, Exception):
            raise answer
        return answer


class World:
    """A store of pending polls, tenants and their fakes, and a poller over them with jitter pinned to 0."""

    def __init__(self, options: PollOptions | None = None) -> None:
        self.store: dict[bytes, bytes] = {}
        self.tenants: dict[str, ReadyTenant | ErrorInfo] = {"acme": tenant("acme")}
        self.fetchers: dict[str, FakeFetcher] = {}
        self.counted: list[tuple[str, str]] = []
        self.poller = StatusPoller(
            tenants=self.lookup,
            providers=lambda ready: self.fetcher(ready.record.tenant_id),
            options=options or PollOptions(poll_seconds=POLL),
            on_result=lambda tenant_id, result: self.counted.append((tenant_id, result)),
            jitter=lambda: 0.0,
        )

    def lookup(self, tenant_id: str) -> ReadyTenant | ErrorInfo:
        return self.tenants.get(tenant_id) or ErrorInfo(code=ErrorCode.UNKNOWN_TENANT, message="no such tenant")

    def fetcher(self, tenant_id: str = "acme") -> FakeFetcher:
        return self.fetchers.setdefault(tenant_id, FakeFetcher())

    def track(self, outcome: SmsDispatched) -> bytes:
        key, pending = pending_for(outcome, POLL)
        self.store[key] = pending.to_bytes()
        return key

    async def run(self, now: datetime) -> list[PollResult]:
        results = await self.poller.run_due(self.store, now)
        for result in results:  # as the runtime applies them: only over the value they were computed from
            if self.store.get(result.key) == result.expected:
                if result.value is None:
                    del self.store[result.key]
                else:
                    self.store[result.key] = result.value
        return results

    def pending(self, key: bytes) -> PendingPoll:
        return PendingPoll.model_validate_json(self.store[key])


def info(status: str, error_code: int | None = None, n: int = 1) -> MessageStatusInfo:
    return MessageStatusInfo(sid=sid(n), status=status, error_code=error_code)


def test_pending_for_schedules_the_first_poll_poll_seconds_after_dispatch() -> None:
    key, pending = pending_for(dispatched(), POLL)

    assert key == poll_key("acme", sid(1))
    assert pending.next_at == T0 + timedelta(seconds=POLL)
    assert (pending.attempts, pending.last_status, pending.request_id) == (0, "queued", "r-1")
    assert PendingPoll.model_validate_json(pending.to_bytes()) == pending


def test_test_credential_tenants_and_final_outcomes_are_not_tracked() -> None:
    assert should_track(dispatched(), tenant())
    assert should_track(dispatched(), tenant().record)
    assert not should_track(dispatched(), tenant(test_credentials=True))
    assert not should_track(dispatched(status="delivered"), tenant())


def test_a_final_status_from_a_callback_settles_the_pending_poll_and_others_do_not() -> None:
    final = SmsStatus(tenant_id="acme", provider_message_id=sid(1), status="undelivered", provider_code=30003)
    early = SmsStatus(tenant_id="acme", provider_message_id=sid(1), status="sent")

    assert settled_by(final) == poll_key("acme", sid(1))
    assert settled_by(early) is None


@pytest.mark.asyncio
async def test_nothing_is_fetched_before_poll_seconds_have_passed() -> None:
    world = World()
    world.track(dispatched())

    assert await world.run(T0 + timedelta(seconds=POLL - 1)) == []
    assert world.fetcher().fetched == []


@pytest.mark.asyncio
async def test_a_final_status_removes_the_pending_poll_and_is_emitted() -> None:
    world = World()
    key = world.track(dispatched())
    world.fetcher().on(sid(1), info("delivered"))

    [result] = await world.run(T0 + timedelta(seconds=POLL))

    assert result.result == "final"
    assert result.status is not None
    assert (result.status.status, result.status.request_id, result.status.provider_message_id) == (
        "delivered",
        "r-1",
        sid(1),
    )
    assert key not in world.store


@pytest.mark.asyncio
async def test_an_undelivered_message_carries_its_30xxx_provider_code() -> None:
    world = World()
    world.track(dispatched())
    world.fetcher().on(sid(1), info("undelivered", 30003))

    [result] = await world.run(T0 + timedelta(seconds=POLL))

    assert result.status is not None
    assert (result.status.status, result.status.provider_code) == ("undelivered", 30003)


@pytest.mark.asyncio
async def test_a_status_not_final_is_emitted_and_rescheduled_with_doubling_backoff() -> None:
    world = World()
    key = world.track(dispatched())
    world.fetcher().on(sid(1), info("sent"))
    now = T0 + timedelta(seconds=POLL)

    [first] = await world.run(now)

    assert first.result == "pending"
    assert first.status is not None
    assert first.status.status == "sent"
    assert world.pending(key).next_at == now + timedelta(seconds=2 * POLL)
    assert (world.pending(key).attempts, world.pending(key).last_status) == (1, "sent")

    now = world.pending(key).next_at
    [second] = await world.run(now)

    assert second.status is None  # "sent" again: not emitted twice
    assert world.pending(key).next_at == now + timedelta(seconds=4 * POLL)


def test_the_backoff_is_capped_at_six_hours_and_jitter_only_shortens_it() -> None:
    assert next_delay(20, POLL, timedelta(hours=6)) == timedelta(hours=6)
    assert next_delay(1, POLL, timedelta(hours=6), 0.2) == timedelta(seconds=2 * POLL * 0.8)


@pytest.mark.asyncio
async def test_after_72_hours_the_poller_gives_up_and_removes_the_entry() -> None:
    world = World()
    key = world.track(dispatched())
    now = T0 + timedelta(seconds=POLL)
    polls = 0
    while key in world.store:
        results = await world.run(now)
        polls += 1
        now = world.pending(key).next_at if key in world.store else now

    assert results[0].result == "gave_up"
    assert now == T0 + timedelta(hours=72)  # the last poll fell on the deadline
    assert 10 < polls < 25
    assert world.counted.count(("acme", "gave_up")) == 1


@pytest.mark.asyncio
async def test_an_entry_overdue_past_72_hours_is_polled_once_more_and_a_final_answer_still_counts() -> None:
    world = World()
    world.track(dispatched())
    world.fetcher().on(sid(1), info("delivered"))

    [result] = await world.run(T0 + timedelta(days=5))  # the worker was down for days

    assert result.result == "final"
    assert result.status is not None
    assert result.status.status == "delivered"


@pytest.mark.asyncio
async def test_a_test_credential_tenant_is_never_polled() -> None:
    world = World()
    key = world.track(dispatched())
    world.tenants["acme"] = tenant(test_credentials=True)

    [result] = await world.run(T0 + timedelta(hours=1))

    assert (result.result, result.value, result.status) == ("dropped", None, None)
    assert world.fetcher().fetched == []
    assert key not in world.store


@pytest.mark.asyncio
async def test_twilio_answering_20008_drops_the_entry() -> None:
    world = World()
    key = world.track(dispatched())
    world.fetcher().on(sid(1), ReconciliationUnavailable("test credentials", provider_code=20008, http_status=403))

    [result] = await world.run(T0 + timedelta(hours=1))

    assert result.result == "dropped"
    assert key not in world.store


@pytest.mark.asyncio
async def test_a_message_twilio_does_not_know_is_dropped() -> None:
    world = World()
    key = world.track(dispatched())
    world.fetcher().on(sid(1), MessageRejected("no such message", provider_code=20404, http_status=404))

    [result] = await world.run(T0 + timedelta(hours=1))

    assert result.result == "dropped"
    assert key not in world.store


@pytest.mark.asyncio
@pytest.mark.parametrize(
    "error",
    [
        ProviderUnavailable("Twilio is down"),
        AuthenticationError("refused", provider_code=20003, http_status=401),
        RuntimeError("a bug"),
    ],
)
async def test_a_failed_fetch_is_rescheduled_with_backoff(error: Exception) -> None:
    world = World()
    key = world.track(dispatched())
    world.fetcher().on(sid(1), error)
    now = T0 + timedelta(seconds=POLL)

    [result] = await world.run(now)

    assert (result.result, result.status) == ("error", None)
    assert world.pending(key).next_at == now + timedelta(seconds=2 * POLL)
    assert world.pending(key).last_status == "queued"


@pytest.mark.asyncio
async def test_a_hanging_fetch_is_cut_off_and_rescheduled() -> None:
    world = World(PollOptions(poll_seconds=POLL, fetch_timeout=0.05))
    key = world.track(dispatched())
    world.fetcher().hang = True

    [result] = await asyncio.wait_for(world.run(T0 + timedelta(hours=1)), 2)

    assert result.result == "error"
    assert key in world.store


@pytest.mark.asyncio
async def test_an_unknown_tenant_is_rescheduled_not_dropped() -> None:
    world = World()
    key = world.track(dispatched(tenant_id="later"))

    [result] = await world.run(T0 + timedelta(hours=1))

    assert result.result == "error"
    assert key in world.store


@pytest.mark.asyncio
async def test_per_tenant_budget_is_respected() -> None:
    world = World()
    world.tenants["busy"] = tenant("busy")
    for n in range(40):
        world.track(dispatched(n, tenant_id="busy"))
    for n in range(100, 105):
        world.track(dispatched(n))
    now = T0 + timedelta(hours=1)

    await world.run(now)

    assert len(world.fetcher("busy").fetched) == 30  # the default budget: 30 a minute
    assert len(world.fetcher("acme").fetched) == 5  # another tenant is not held back by it
    await world.run(now + timedelta(seconds=10))
    assert len(world.fetcher("busy").fetched) == 35  # 30 a minute refill at one every 2 s
    await world.run(now + timedelta(minutes=5))
    assert len(world.fetcher("busy").fetched) == 40


def test_the_budget_never_holds_more_than_a_minutes_worth() -> None:
    budget = PollBudget(per_minute=2)

    taken = [budget.take("acme", T0 + timedelta(hours=1)) for _ in range(3)]

    assert taken == [True, True, False]


@pytest.mark.asyncio
async def test_entries_of_tenants_not_owned_are_left_alone() -> None:
    world = World()
    world.track(dispatched())

    results = await world.poller.run_due(world.store, T0 + timedelta(hours=1), owned=lambda tenant_id: False)

    assert results == []
    assert world.fetcher().fetched == []


@pytest.mark.asyncio
async def test_an_unreadable_entry_is_dropped() -> None:
    world = World()
    world.store[b"acme\x1fSMbroken"] = b"{not json"

    [result] = await world.run(T0)

    assert (result.result, result.tenant_id) == ("dropped", "acme")
    assert world.store == {}


@pytest.mark.asyncio
async def test_results_are_counted_per_tenant() -> None:
    world = World()
    world.tenants["other"] = tenant("other")
    world.track(dispatched(1))
    world.track(dispatched(2, tenant_id="other"))
    world.fetcher().on(sid(1), info("delivered"))

    await world.run(T0 + timedelta(hours=1))

    assert sorted(world.counted) == [("acme", "final"), ("other", "pending")]


@pytest.mark.asyncio
async def test_polling_through_the_twilio_provider_reaches_undelivered_with_its_code() -> None:
    fake = FakeTwilio()
    document = message_json(account_sid=ACCOUNT_SID, to=TO, body="Hi", sid=sid(1), status="undelivered")
    document["error_code"] = 30005
    fake.then(httpx.Response(200, json=document))
    async with TwilioHttp("https://api.twilio.test", transport=fake.transport) as http:
        store: dict[bytes, bytes] = {}
        key, pending = pending_for(dispatched(), POLL)
        store[key] = pending.to_bytes()
        poller = StatusPoller(
            tenants=lambda tenant_id: tenant(tenant_id),
            providers=lambda ready: TwilioProvider(ready.config, http, RetryPolicy(max_attempts=1)),
        )

        [result] = await poller.run_due(store, T0 + timedelta(seconds=POLL))

    assert fake.requests[0].url.path == f"/2010-04-01/Accounts/{ACCOUNT_SID}/Messages/{sid(1)}.json"
    assert result.status is not None
    assert (result.result, result.status.status, result.status.provider_code) == ("final", "undelivered", 30005)
