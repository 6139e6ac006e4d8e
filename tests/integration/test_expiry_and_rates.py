"""Stale and too fast, end to end: expired requests never reach Twilio, sent ones carry ValidityPeriod, and a
tenant's --mps paces what reaches the simulator without delaying another tenant on the same partition."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from smsdispatch.client import SmsClient
from smsdispatch.contract import ErrorCode, SmsDispatched, SmsFailed, SmsRequested
from smsdispatch.runtime.worker import home_partition
from tests.integration.conftest import LIVE_NUMBER, Stack, run_cli, running_stack
from tests.integration.outcomes import collect, now_ms, row_when, send_and_collect, simulator_messages

pytestmark = [pytest.mark.asyncio, pytest.mark.kafka, pytest.mark.slow]

PARTITIONS = 8
TO = "+14155552671"


@pytest.fixture(scope="module")
def stack(kafka_broker_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    with running_stack(kafka_broker_url, tmp_path_factory.mktemp("rates")) as running:
        yield running


def request(tenant_id: str, body: str | None = None, **extra: object) -> SmsRequested:
    return SmsRequested.model_validate(
        {"request_id": uuid.uuid4().hex, "tenant_id": tenant_id, "to": TO, "body": body or uuid.uuid4().hex, **extra}
    )


def register_rated(stack: Stack, name: str, mps: int) -> str:
    sid, token = stack.live_account
    return stack.register(name, "--account-sid", sid, "--auth-token", token, "--from", LIVE_NUMBER, "--mps", str(mps))


def created_at(stack: Stack, bodies: set[str]) -> list[datetime]:
    """When the simulator accepted each message with one of ``bodies`` (sub-second precision), in order."""
    return sorted(
        datetime.fromisoformat(message["created_at"])
        for message in simulator_messages(stack.simulator_url)
        if message["body"] in bodies
    )


def most_in_one_second(moments: list[datetime]) -> int:
    """The most moments any window of one second (sliding, starting at each moment) holds."""
    return max(sum(1 for other in moments if start <= other < start + timedelta(seconds=1)) for start in moments)


async def test_a_request_past_its_expiry_fails_expired_without_reaching_twilio_and_is_logged(stack: Stack) -> None:
    tenant = stack.tenant("live")
    stale = request(tenant, expires_at=datetime.now(UTC) - timedelta(seconds=5))

    outcome = (await send_and_collect(stack.broker_url, [stale]))[stale.request_id]

    assert isinstance(outcome, SmsFailed), outcome
    assert (outcome.error.code, outcome.attempts, outcome.provider) == (ErrorCode.EXPIRED, 0, None)
    assert stale.body not in {message["body"] for message in simulator_messages(stack.simulator_url)}
    row = await row_when(stack.database_url, tenant, stale.request_id, "failed")
    assert row.error_code == "expired"


async def test_a_request_sent_in_time_carries_the_seconds_left_as_validity_period(stack: Stack) -> None:
    fresh = request(stack.tenant("live"), expires_at=datetime.now(UTC) + timedelta(minutes=5))

    outcome = (await send_and_collect(stack.broker_url, [fresh]))[fresh.request_id]

    assert isinstance(outcome, SmsDispatched), outcome
    [sent] = [message for message in simulator_messages(stack.simulator_url) if message["body"] == fresh.body]
    assert 270 <= int(sent["validity_period"]) <= 300, sent


@pytest.mark.timeout(180)
async def test_a_tenant_at_5_mps_reaches_twilio_at_no_more_than_5_segments_a_second(stack: Stack) -> None:
    tenant = register_rated(stack, "mps5", 5)
    requests = [request(tenant, body=f"paced {n} {uuid.uuid4().hex[:6]}") for n in range(60)]

    outcomes = await send_and_collect(stack.broker_url, requests, timeout=120)

    assert all(isinstance(outcome, SmsDispatched) for outcome in outcomes.values())
    moments = created_at(stack, {r.body for r in requests})
    span = (moments[-1] - moments[0]).total_seconds()
    busiest = most_in_one_second(moments)
    print(f"\n60 requests at --mps 5 reached the simulator over {span:.2f}s; the busiest second held {busiest}")
    assert len(moments) == 60
    assert 10.5 <= span <= 20, "60 messages at 5/s are released over about 11.8s"
    assert busiest <= 6, "5 per second, with a margin of one for timing at the window's edge"


@pytest.mark.timeout(180)
async def test_a_throttled_tenant_does_not_delay_another_tenant_on_the_same_partition(stack: Stack) -> None:
    slow = register_rated(stack, "hol-slow", 2)
    partition = home_partition(slow, PARTITIONS)
    name = next(
        f"hol-fast{n}" for n in range(1000) if home_partition(f"hol-fast{n}-{stack.suffix}", PARTITIONS) == partition
    )
    fast = stack.register_live(name)
    started = now_ms() - 1000
    async with SmsClient(stack.broker_url) as client:
        backlog = [request(slow) for _ in range(300)]
        await client.publish_many(backlog)
        fast_requests = []
        for _ in range(40):  # one every 100 ms while the slow tenant's backlog waits for its rate
            fast_requests.append(request(fast))
            await client.publish(fast_requests[-1])
            await asyncio.sleep(0.1)
    ids = {r.request_id for r in fast_requests}

    outcomes = await collect(stack.broker_url, started, lambda o: o.request_id in ids, len(ids), timeout=60)

    assert all(isinstance(outcome, SmsDispatched) for outcome in outcomes)
    latencies = sorted(
        (o.dispatched_at - o.requested_at).total_seconds()
        for o in outcomes
        if isinstance(o, SmsDispatched) and o.requested_at is not None
    )
    p50, p99 = latencies[len(latencies) // 2], latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))]
    slow_sent = len(created_at(stack, {r.body for r in backlog}))
    print(
        f"\nfast tenant beside a 300-request backlog at --mps 2 (partition {partition}): "
        f"p50 {p50:.3f}s p99 {p99:.3f}s; {slow_sent} of the backlog sent meanwhile"
    )
    assert p99 < 1.0
    assert slow_sent < 300, "the backlog was still waiting for its rate while the fast tenant was served"


@pytest.mark.timeout(120)
async def test_a_request_that_expires_while_its_tenant_is_throttled_fails_expired(stack: Stack) -> None:
    tenant = register_rated(stack, "mps1", 1)
    ahead = [request(tenant) for _ in range(3)]  # released at about 0, 1 and 2 s
    late = request(tenant, expires_at=datetime.now(UTC) + timedelta(seconds=2))

    outcomes = await send_and_collect(stack.broker_url, [*ahead, late])

    assert all(isinstance(outcomes[r.request_id], SmsDispatched) for r in ahead)
    expired = outcomes[late.request_id]
    assert isinstance(expired, SmsFailed), expired
    assert expired.error.code is ErrorCode.EXPIRED
    assert late.body not in {message["body"] for message in simulator_messages(stack.simulator_url)}


@pytest.mark.timeout(120)
async def test_tenants_update_changes_the_rate_of_a_running_worker_also_for_requests_already_waiting(
    stack: Stack,
) -> None:
    tenant = register_rated(stack, "retuned", 1)
    requests = [request(tenant) for _ in range(30)]  # 30 s at 1/s
    started = asyncio.get_running_loop().time()
    pending = asyncio.ensure_future(send_and_collect(stack.broker_url, requests, timeout=60))
    await asyncio.sleep(3)

    assert await asyncio.to_thread(run_cli, stack, "tenants", "update", tenant, "--mps", "50") == 0
    outcomes = await pending
    took = asyncio.get_running_loop().time() - started

    assert all(isinstance(outcome, SmsDispatched) for outcome in outcomes.values())
    print(f"\n30 requests at --mps 1, raised to 50 after 3s: all dispatched {took:.1f}s after publishing")
    assert took < 15, "at the old rate they would have taken 30s"
