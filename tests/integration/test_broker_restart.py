"""The broker restarts in the middle of traffic: exactly one outcome per request, a quiet log, /health degraded.

The test runs its own broker (the session's is shared by other modules), a simulator answering after 50 ms and
one worker. Counting is done from the outside: outcome records on the topics, messages the simulator accepted.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import tempfile
import time
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from smsdispatch.client import SmsClient
from smsdispatch.tools.localkafka import LocalKafka
from smsdispatch.tools.testing.kafka import free_ports
from smsdispatch.tools.testing.processes import worker_metric
from tests.integration.conftest import Stack, running_stack
from tests.integration.outcomes import now_ms, outcome_records
from tests.integration.scale import duplicates, held, requests_for, sms_per_body, wait_until, where_are

pytestmark = [pytest.mark.asyncio, pytest.mark.kafka, pytest.mark.slow]

OUTAGE_SECONDS = 20  # longer than the group's session timeout (15 s): the group rebalances on the way back
STOP_SECONDS = 12  # the worker's bound on a stop (SMSDISPATCH_STOP_SECONDS; at least the drain + 5 s)


@pytest.fixture(scope="module")
def own_broker() -> Iterator[LocalKafka]:
    port, controller_port = free_ports(2)
    data_dir = Path(tempfile.mkdtemp(prefix="smsdispatch-restart-kafka-"))
    broker = LocalKafka(port, data_dir, controller_port=controller_port, die_with_parent=True)
    broker.start()
    try:
        yield broker
    finally:
        broker.stop()
        shutil.rmtree(data_dir, ignore_errors=True)


@pytest.fixture(scope="module")
def stack(own_broker: LocalKafka, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    base = tmp_path_factory.mktemp("broker-restart")
    # Slow enough (5 tenants x 10 sends x 200 ms: about 250 outcomes/s) that the outage hits work in flight.
    # A short send deadline keeps the fence after a stop that gave up (deadline + 2 s) short; the stop bound is
    # what the second test proves holds with Kafka away, so it need not be the default 30 s.
    env = {
        "SMSDISPATCH_TENANT_CONCURRENCY": "10",
        "SMSDISPATCH_SEND_DEADLINE_SECONDS": "10",
        "SMSDISPATCH_DRAIN_SECONDS": "5",
        "SMSDISPATCH_STOP_SECONDS": str(STOP_SECONDS),
    }
    with running_stack(own_broker.broker_url, base, simulator_args=["--latency-ms", "200"], env=env) as running:
        yield running


def health(stack: Stack) -> dict[str, object]:
    with urllib.request.urlopen(f"{stack.worker_url}/health", timeout=5) as response:  # noqa: S310 - loopback
        answer: dict[str, object] = json.loads(response.read())
    return answer


async def test_a_broker_restart_mid_traffic_gives_each_request_one_outcome_with_a_quiet_log_and_degraded_health(
    stack: Stack, own_broker: LocalKafka
) -> None:
    tenants = stack.register_live_many([f"r{n}" for n in range(5)])
    requests = requests_for(tenants, 4_000, f"restart-{uuid.uuid4().hex[:6]}")
    ids = {request.request_id for request in requests}
    start = now_ms() - 1000
    async with SmsClient(stack.broker_url) as client:
        await client.publish_many(requests[:3_000])
    await wait_until(
        lambda: worker_metric(stack.worker_url, "smsdispatch_outcomes_total") >= 300, 60, "the worker got busy"
    )

    lines_before = len(stack.worker.log_text().splitlines())
    own_broker.stop()
    await wait_until(lambda: health(stack)["status"] == "degraded", 20, "/health saying degraded")
    answered_before_outage = worker_metric(stack.worker_url, "smsdispatch_outcomes_total")
    await asyncio.sleep(OUTAGE_SECONDS)
    lines_during = len(stack.worker.log_text().splitlines()) - lines_before
    degraded = health(stack)
    own_broker.start()
    await wait_until(lambda: health(stack)["status"] == "ok", 60, "/health back to ok")

    async with SmsClient(stack.broker_url) as client:
        await client.publish_many(requests[3_000:])
    try:
        records = await outcome_records(stack.broker_url, start, ids, timeout=180)
    except AssertionError as missing:
        raise AssertionError(f"{missing}\n{await where_are(stack.broker_url, start, ids, stack.app_id)}") from None

    print(f"\n{answered_before_outage:.0f} of 3000 requests answered when Kafka went away")
    print(f"{lines_during} log lines during a {OUTAGE_SECONDS}s outage; /health said {degraded}")
    assert answered_before_outage < 3_000, "the outage hit work in progress"
    kafka = degraded["kafka"]
    assert isinstance(kafka, dict)
    assert kafka["reachable"] is False
    assert kafka["unreachable_seconds"] >= OUTAGE_SECONDS
    assert lines_during < 100, "the outage is summed up, not logged once per failed connection"
    assert duplicates(records) == {}, "no request got a second outcome record"
    assert len(records) == len(ids)
    sent = sms_per_body(stack, {request.body for request in requests})
    assert len(sent) == len(requests), "every request was sent"
    assert set(sent.values()) == {1}, "exactly one SMS per request"
    assert stack.worker.running(), f"the worker exited:\n{stack.worker.log_tail()}"


async def test_a_worker_told_to_stop_while_kafka_is_away_exits_within_its_bound_and_loses_nothing(
    stack: Stack, own_broker: LocalKafka
) -> None:
    tenants = stack.register_live_many([f"s{n}" for n in range(3)])
    requests = requests_for(tenants, 1_500, f"stuck-{uuid.uuid4().hex[:6]}")
    ids = {request.request_id for request in requests}
    start = now_ms() - 1000
    async with SmsClient(stack.broker_url) as client:
        await client.publish_many(requests)
    await wait_until(lambda: held(stack.worker) >= 20, 60, "the worker holding records")

    own_broker.stop()
    await wait_until(lambda: health(stack)["status"] == "degraded", 20, "/health saying degraded")
    in_flight = held(stack.worker)
    stopping = time.monotonic()
    code = stack.worker.stop(timeout=90)
    took = time.monotonic() - stopping
    own_broker.start()
    stack.worker.start(timeout=90)

    try:
        records = await outcome_records(stack.broker_url, start, ids, timeout=180)
    except AssertionError as missing:
        raise AssertionError(f"{missing}\n{await where_are(stack.broker_url, start, ids, stack.app_id)}") from None
    twice = duplicates(records)
    print(f"\nstopped in {took:.1f}s (exit {code}) holding {in_flight:.0f} records; {len(twice)} outcomes twice")
    assert took < STOP_SECONDS + 5, "the stop is bounded (SMSDISPATCH_STOP_SECONDS) even with Kafka away"
    assert len(twice) <= in_flight, "only records held at the stop may be answered twice"
    assert all(len(set(values)) == 1 for values in twice.values()), "a duplicate is byte-identical"
    sent = sms_per_body(stack, {request.body for request in requests})
    assert len(sent) == len(requests), "every request was sent"
    assert set(sent.values()) == {1}, "exactly one SMS per request"
