"""A worker killed in the middle of sending: after a restart every request has its outcome and no SMS is doubled."""

from __future__ import annotations

import asyncio
import re
import urllib.request
import uuid
from collections.abc import Iterator

import pytest

from smsdispatch.client import SmsClient
from smsdispatch.contract import SmsDispatched, SmsRequested
from tests.integration.conftest import Stack, running_stack
from tests.integration.outcomes import collect, now_ms, simulator_messages

pytestmark = [pytest.mark.asyncio, pytest.mark.kafka, pytest.mark.slow]

LATENCY_MS = 1500


#: The restarted worker waits this long (plus 2 s) after a request's "sending" mark before it looks the request
#: up in Twilio: comfortably over a send's LATENCY_MS, and not the default minute.
SEND_DEADLINE_S = 8


@pytest.fixture(scope="module")
def slow_stack(kafka_broker_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    # Twilio answering slowly keeps requests in flight long enough to kill the worker in the middle of them.
    base = tmp_path_factory.mktemp("slow-stack")
    simulator_args = ["--latency-ms", str(LATENCY_MS)]
    env = {"SMSDISPATCH_SEND_DEADLINE_SECONDS": str(SEND_DEADLINE_S)}
    with running_stack(kafka_broker_url, base, simulator_args=simulator_args, env=env) as running:
        yield running


def in_flight(worker_url: str) -> float:
    with urllib.request.urlopen(f"{worker_url}/metrics", timeout=5) as response:  # noqa: S310
        text = response.read().decode()
    return sum(float(value) for value in re.findall(r"^smsdispatch_in_flight\{[^}]*\} (\S+)$", text, re.M))


async def test_a_worker_killed_mid_send_loses_nothing_and_sends_nothing_twice(slow_stack: Stack) -> None:
    tenant = slow_stack.tenant("live")
    requests = [
        SmsRequested(request_id=uuid.uuid4().hex, tenant_id=tenant, to="+14155552671", body=f"crash {uuid.uuid4()}")
        for _ in range(40)
    ]
    start = now_ms() - 1000
    async with SmsClient(slow_stack.broker_url) as client:
        for request in requests:
            await client.publish(request)
    for _ in range(200):  # wait until the worker is inside the HTTP calls
        if in_flight(slow_stack.worker_url) > 0:
            break
        await asyncio.sleep(0.05)
    else:
        pytest.fail("the worker never had a request in flight")
    slow_stack.restart_worker(crash=True)

    ids = {request.request_id for request in requests}
    outcomes = await collect(slow_stack.broker_url, start, lambda o: o.request_id in ids, len(ids), timeout=120)
    by_id = {outcome.request_id: outcome for outcome in outcomes}
    assert set(by_id) == ids
    assert all(isinstance(outcome, SmsDispatched) for outcome in by_id.values()), by_id
    bodies = [message["body"] for message in simulator_messages(slow_stack.simulator_url)]
    assert {request.body: bodies.count(request.body) for request in requests} == {r.body: 1 for r in requests}
